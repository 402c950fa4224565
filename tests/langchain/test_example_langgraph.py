"""examples/langgraph_agent.py, offline: the local server scripts a tool call, then the answer."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.chat import KEY, Json, completion, png_bytes

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "langgraph_agent.py"
CALL = {"id": "call_fx", "name": "convert_currency", "arguments": {"amount": 42.6, "from_currency": "CNY", "to_currency": "USD"}}
ANSWER = "The receipt total is 42.60 CNY, which is about 6.00 USD."


def _load_example():
    spec = importlib.util.spec_from_file_location("langgraph_agent_example", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_requests(server, photo: bytes) -> None:
    first, second = (r.json for r in server.chat_requests)
    image_part = first["messages"][1]["content"][0]
    assert image_part["type"] == "image_url"
    assert base64.b64decode(image_part["image_url"]["url"].split(",", 1)[1]) == photo
    assert [t["function"]["name"] for t in first["tools"]] == ["convert_currency"]
    assert first["messages"][0]["role"] == "system"
    roles = [m["role"] for m in second["messages"]]
    assert roles == ["system", "user", "assistant", "tool"]
    assert json.loads(second["messages"][2]["tool_calls"][0]["function"]["arguments"]) == CALL["arguments"]
    assert second["messages"][3] == {"role": "tool", "tool_call_id": "call_fx", "content": "42.60 CNY = 6.00 USD"}


def test_agent_looks_at_the_image_and_calls_the_tool(dashscope, tmp_path, monkeypatch, capsys) -> None:
    photo = png_bytes(192, 288, (250, 250, 240))  # multiples of 32: sent unchanged
    path = tmp_path / "receipt.png"
    path.write_bytes(photo)
    monkeypatch.setenv("DASHSCOPE_BASE_URL", dashscope.url)
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    dashscope.script(Json(completion(tool_calls=[CALL])), Json(completion(ANSWER)))

    example = _load_example()
    assert example.main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "[tool call] convert_currency" in out
    assert "[tool result] 42.60 CNY = 6.00 USD" in out
    assert ANSWER in out
    _check_requests(dashscope, photo)
    assert dashscope.pending == 0


def test_agent_runs_as_a_script(dashscope, tmp_path) -> None:
    photo = png_bytes(120, 160)
    path = tmp_path / "receipt.png"
    path.write_bytes(photo)
    dashscope.script(Json(completion(tool_calls=[CALL])), Json(completion(ANSWER)))
    env = {**os.environ, "DASHSCOPE_BASE_URL": dashscope.url, "DASHSCOPE_API_KEY": KEY, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(path), "What is the total in dollars?"],
        capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert ANSWER in proc.stdout
    assert KEY not in proc.stdout + proc.stderr
    _check_requests(dashscope, photo)
    assert dashscope.chat_requests[0].json["messages"][1]["content"][1]["text"] == "What is the total in dollars?"


def test_missing_image_is_a_usage_error(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        _load_example().main([str(tmp_path / "nope.png")])
    assert info.value.code == 2
    assert "no such image file" in capsys.readouterr().err
