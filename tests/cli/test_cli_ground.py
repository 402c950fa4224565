"""``qwen-vl ground IMAGE PROMPT``: boxes in pixels of IMAGE, as lines, as JSON, drawn with --draw."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from qwen_vl_cli import main
from tests.fake_dashscope import Json, completion
from tests.support.grounding import grounding_responder, png, scene, shapes_for

ROOT = Path(__file__).resolve().parents[2]
SIZE = (2000, 1500)


@pytest.fixture
def form(tmp_path) -> Path:
    path = tmp_path / "form.png"
    path.write_bytes(png(scene(*SIZE, shapes_for(*SIZE))))
    return path


def call(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_lines_of_boxes_in_pixels_of_the_image(cli_env, form, capsys):
    shapes = shapes_for(*SIZE)
    cli_env.responder = grounding_responder(cli_env, shapes, SIZE, "relative-1000")
    code, out, err = call(capsys, "ground", str(form), "find every signature and stamp")
    assert code == 0, err
    lines = [line.split("\t") for line in out.splitlines()]
    assert [label for label, _ in lines] == ["signature", "signature", "stamp"]
    for (_, coords), shape in zip(lines, shapes):
        assert all(abs(int(c) - t) <= 1 for c, t in zip(coords.split(), shape.box))


def test_json_and_draw(cli_env, form, tmp_path, capsys):
    shapes = shapes_for(*SIZE)
    cli_env.responder = grounding_responder(cli_env, shapes, SIZE, "absolute-resized")
    out_png = tmp_path / "boxes.png"
    code, out, err = call(capsys, "ground", str(form), "find them", "--model", "qwen-vl-max", "--json", "--draw", str(out_png))
    assert code == 0, err
    doc = json.loads(out)
    assert doc["model"] == "qwen-vl-max" and doc["convention"] == "absolute-resized" and doc["notes"] == []
    assert (doc["image"]["width"], doc["image"]["height"]) == SIZE and doc["image"]["sent_width"] < SIZE[0]
    assert [b["label"] for b in doc["boxes"]] == ["signature", "signature", "stamp"]
    assert all(abs(g - t) <= 1 for b, s in zip(doc["boxes"], shapes) for g, t in zip(b["bbox"], s.box))
    assert doc["boxes"][0]["raw"] and "bbox_2d" in doc["text"]
    assert f"drew 3 items on {out_png}" in err
    with Image.open(out_png) as drawn, Image.open(form) as original:
        assert drawn.size == SIZE
        x1, y1, x2, _ = shapes[2].box
        edge = ((x1 + x2) // 2, y1 + 1)
        assert drawn.getpixel(edge) != original.getpixel(edge)  # the stamp's outline, in its label's colour


def test_points_high_resolution_and_pixels_reach_the_request(cli_env, form, capsys):
    shapes = shapes_for(*SIZE)
    seen: list = []
    cli_env.responder = grounding_responder(cli_env, shapes, SIZE, "relative-1000", points=True, seen=seen)
    code, out, err = call(capsys, "ground", str(form), "each mark", "--points", "--high-resolution", "--max-tokens", "500")
    assert code == 0, err
    assert len(out.splitlines()) == 3
    assert seen[0]["vl_high_resolution_images"] is True and seen[0]["max_tokens"] == 500
    assert "point_2d" in seen[0]["messages"][0]["content"][1]["text"]


def test_an_unknown_model_warns_which_convention_it_assumed(cli_env, form, capsys):
    shapes = shapes_for(*SIZE)
    cli_env.responder = grounding_responder(cli_env, shapes, SIZE, "relative-1000")
    with pytest.warns(UserWarning):
        code, _, err = call(capsys, "ground", str(form), "find them", "--model", "my-finetune")
    assert code == 0 and "qwen-vl: warning: model 'my-finetune' is not in the registry: assumed 'relative-1000'" in err


def test_an_answer_without_boxes_is_an_api_error(cli_env, form, capsys):
    cli_env.script(Json(completion("No signatures here.")))
    code, out, err = call(capsys, "ground", str(form), "find every signature")
    assert code == 3 and out == "" and "no boxes or points in the answer" in err


def test_usage_errors(cli_env, form, tmp_path, capsys):
    code, _, err = call(capsys, "ground", str(form), "x", "--draw", str(tmp_path / "out.gif"))
    assert code == 2 and "--draw" in err
    code, _, err = call(capsys, "ground", str(tmp_path / "missing.png"), "x")
    assert code == 2 and "missing.png" in err
    code, _, err = call(capsys, "ground", str(form), "x", "--max-pixels", "0")
    assert code == 2 and "--max-pixels must be positive" in err
    assert cli_env.chat_requests == []


def test_runs_as_the_console_script(dashscope, form, api_key, tmp_path):
    shapes = shapes_for(*SIZE)
    dashscope.responder = grounding_responder(dashscope, shapes, SIZE, "relative-1000")
    env = {**os.environ, "DASHSCOPE_BASE_URL": dashscope.url, "DASHSCOPE_API_KEY": api_key, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "qwen_vl_cli", "ground", str(form), "find them", "--json"],
                          capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["boxes"]) == 3 and api_key not in proc.stdout + proc.stderr
