"""``qwen-vl tokens``: estimates per model from the core formulas, MP4/MOV probing, no API call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from qwen_vl_cli import main
from qwen_vl_core.media.probe import probe_mp4
from qwen_vl_core.tokens import image_tokens, video_tokens
from tests.support.mp4_samples import write_mp4


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["tokens", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def photo() -> Path:
    path = Path("photo.jpg").resolve()
    Image.new("RGB", (3000, 2000), "green").save(path, quality=50)
    return path


def test_image_estimates_match_the_core_formula_per_model(capsys, photo):
    code, out, err = run(capsys, str(photo), "--json")
    assert code == 0, err
    doc = json.loads(out)
    row = doc["files"][0]
    assert row["kind"] == "image" and (row["width"], row["height"]) == (3000, 2000)
    assert doc["models"] == ["qwen3-vl-plus", "qwen-vl-max", "qvq-max", "qwen-vl-ocr"]
    for model in doc["models"]:
        assert row["tokens"][model] == image_tokens(3000, 2000, model)
    assert row["tokens"]["qwen3-vl-plus"] <= 2562 and row["tokens"]["qvq-max"] <= 1282
    assert doc["total"] == row["tokens"]


def test_image_options_change_the_estimate(capsys, photo):
    _, out, _ = run(capsys, str(photo), "--json", "--model", "qwen3-vl-plus", "--high-resolution")
    assert json.loads(out)["files"][0]["tokens"] == {"qwen3-vl-plus": image_tokens(3000, 2000, "qwen3-vl-plus", high_resolution=True)}
    _, out, _ = run(capsys, str(photo), "--json", "--model", "qwen3-vl-plus", "--detail", "low")
    assert json.loads(out)["files"][0]["tokens"]["qwen3-vl-plus"] <= 512 + 2
    _, out, _ = run(capsys, str(photo), "--json", "--model", "qwen3-vl-plus", "--max-pixels", str(100 * 32 * 32))
    assert json.loads(out)["files"][0]["tokens"]["qwen3-vl-plus"] == image_tokens(3000, 2000, "qwen3-vl-plus", max_pixels=102400)


def test_exif_rotation_is_applied(capsys):
    img = Image.new("RGB", (400, 100), "white")
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90: displayed 100 x 400
    img.save("rotated.jpg", exif=exif)
    _, out, _ = run(capsys, "rotated.jpg", "--json")
    row = json.loads(out)["files"][0]
    assert (row["width"], row["height"]) == (100, 400)


def test_mp4_is_probed_for_size_and_duration(capsys):
    write_mp4(Path("clip.mp4"), 1280, 720, 12.5)
    code, out, err = run(capsys, "clip.mp4", "--fps", "1", "--json")
    assert code == 0, err
    row = json.loads(out)["files"][0]
    assert (row["kind"], row["width"], row["height"], row["duration_s"]) == ("video", 1280, 720, 12.5)
    assert row["tokens"]["qwen3-vl-plus"] == video_tokens(1280, 720, 12.5, "qwen3-vl-plus", fps=1)
    assert row["tokens"]["qwen-vl-ocr"] is None and row["not_supported"] == ["qwen-vl-ocr"]


@pytest.mark.parametrize("version", [0, 1])
def test_probe_reads_both_box_versions_and_rotation(tmp_path, version):
    info = probe_mp4(write_mp4(tmp_path / "r.mov", 1920, 1080, 10, rotate=True, version=version))
    assert info is not None and (info.width, info.height, info.duration_s) == (1080, 1920, 10.0)


def test_probe_gives_up_on_truncated_files(tmp_path):
    path = write_mp4(tmp_path / "t.mp4", 640, 480, 3)
    path.write_bytes(path.read_bytes()[:-40])
    assert probe_mp4(path) is None


def test_unprobed_video_needs_duration_and_size(capsys):
    Path("rec.avi").write_bytes(b"RIFF\0\0\0\0AVI LIST" + b"\0" * 64)
    Image.new("RGB", (64, 64)).save("small.png")
    code, out, err = run(capsys, "small.png", "rec.avi")
    assert code == 2
    assert "needs --duration S and --size WxH" in out  # the table is still printed
    assert "small.png" in out and err.startswith("qwen-vl: error: no estimate for 'rec.avi'")

    code, out, err = run(capsys, "rec.avi", "--duration", "30", "--size", "640x480", "--json")
    assert code == 0, err
    assert json.loads(out)["files"][0]["tokens"]["qwen3-vl-plus"] == video_tokens(640, 480, 30, "qwen3-vl-plus")


def test_table_output_and_totals(capsys, photo):
    write_mp4(Path("clip.mp4"), 640, 360, 4)
    code, out, _ = run(capsys, str(photo), "clip.mp4", "--model", "qwen3-vl-plus", "--model", "qwen-vl-ocr")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["FILE", "KIND", "SIZE", "qwen3-vl-plus", "qwen-vl-ocr"]
    expected = image_tokens(3000, 2000, "qwen3-vl-plus") + video_tokens(640, 360, 4, "qwen3-vl-plus")
    assert lines[-1].split() == ["TOTAL", str(expected), "-"]  # the OCR model takes no video: no total
    assert "n/a" in lines[2]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["missing.png"], "no such file"),
        (["notes.txt"], "not an image or a video"),
        (["clip.mp4", "--size", "big"], "--size must look like 1280x720"),
        (["clip.mp4", "--fps", "30"], "--fps must be from 0.1 to 10"),
    ],
)
def test_errors_exit_2(capsys, argv, message):
    Path("notes.txt").write_text("hello")
    write_mp4(Path("clip.mp4"), 640, 360, 4)
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and err.count("\n") == 1
