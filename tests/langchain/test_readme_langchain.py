"""Every Python snippet in README.md's LangChain section runs, offline, against the local server.

The snippets find the server through DASHSCOPE_BASE_URL and a fake key through DASHSCOPE_API_KEY,
exactly as a user's environment would provide them; the sample files they name are created in the
working directory first.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.support.chat import KEY, MP4_BYTES, jpeg_bytes, png_bytes, smart_reply

from tests.support.readme_sections import python_snippets, section

SNIPPETS = python_snippets("LangChain")


def test_the_readme_has_the_promised_sections() -> None:
    text = section("LangChain")
    for heading in ("### Images", "### Video", "### Thinking", "### Tools", "### Structured output"):
        assert heading in text
    assert len(SNIPPETS) == 7


@pytest.mark.parametrize("index", range(len(SNIPPETS)), ids=lambda i: f"snippet{i + 1}")
def test_snippet_runs(index: int, dashscope, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DASHSCOPE_BASE_URL", dashscope.url)
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    cwd = Path.cwd()  # a fresh temporary directory (tests/conftest.py)
    (cwd / "receipt.jpg").write_bytes(jpeg_bytes(480, 640))
    (cwd / "tiny.png").write_bytes(png_bytes(8, 8))
    (cwd / "clip.mp4").write_bytes(MP4_BYTES)
    for i in range(1, 5):
        (cwd / f"frame{i}.jpg").write_bytes(jpeg_bytes(320, 240))
    dashscope.responder = smart_reply

    code = compile(SNIPPETS[index], f"README.md LangChain snippet{index + 1}", "exec")
    exec(code, {"__name__": "__main__"})  # noqa: S102 - our own documentation

    out = capsys.readouterr().out
    assert out.strip(), "every snippet prints something"
    assert KEY not in out
    sent = [r.json for r in dashscope.chat_requests]
    if index not in (1, 6):  # token counting and refused input send nothing
        assert sent, "the snippet talked to the server"
    expectations = {
        0: lambda: "'image'" in out and len(sent[0]["messages"][0]["content"]) == 3,
        1: lambda: int(out.split()[-1]) > 0 and not sent,
        2: lambda: sent[0]["messages"][0]["content"][0]["video_url"]["url"].startswith("data:video/mp4")
        and sent[1]["messages"][0]["content"][0]["type"] == "video",
        3: lambda: "reasoning : Thinking about the request." in out and sent[-1]["model"] == "qvq-max",
        4: lambda: [m["role"] for m in sent[-1]["messages"]] == ["user", "assistant", "tool"]
        and sent[-1]["messages"][2]["content"] == "1.50 CNY",
        5: lambda: out.splitlines()[0] == "cats 1.5 cats" and sent[-1]["enable_thinking"] is False,
        6: lambda: out.startswith("bad input:") and "tiny.png" in out and not sent,
    }
    assert expectations[index](), out
