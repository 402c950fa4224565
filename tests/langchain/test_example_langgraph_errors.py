"""examples/langgraph_agent.py exits as the qwen-vl command does: 3 on an API error, 2 on bad settings,
one line on stderr and no traceback."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.support.chat import KEY, Json, png_bytes
from tests.fake_dashscope import error_body

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "langgraph_agent.py"


def _load_example():
    spec = importlib.util.spec_from_file_location("langgraph_agent_errors", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_error_exits_3(dashscope, tmp_path, monkeypatch, capsys) -> None:
    path = tmp_path / "receipt.png"
    path.write_bytes(png_bytes(120, 160))
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    dashscope.script(Json(error_body("Invalid API-key provided.", "invalid_api_key"), 401))
    assert _load_example().main([str(path), "--base-url", dashscope.url]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: AuthenticationError") and err.count("\n") == 1 and KEY not in err


def test_bad_settings_exit_2(dashscope, tmp_path, monkeypatch, capsys) -> None:
    path = tmp_path / "receipt.png"
    path.write_bytes(png_bytes(120, 160))
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    assert _load_example().main([str(path), "--base-url", dashscope.url, "--region", "mars"]) == 2
    assert "unknown region 'mars'" in capsys.readouterr().err
    assert dashscope.requests == []
