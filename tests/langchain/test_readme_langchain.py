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


# ---------------------------------------------------------------- the document loader, beside the reader

LOADER_HEADING = "### LangChain document loader"


def loader_snippets() -> list[str]:
    """The ```python snippets of the loader's subsection (it sits next to the reader, in the LlamaIndex section)."""
    text = section("LlamaIndex")
    assert LOADER_HEADING in text, "the LlamaIndex section shows the LangChain loader beside the reader"
    sub = text.split(LOADER_HEADING, 1)[1].split("\n### ", 1)[0]
    return re.findall(r"```python\n(.*?)```", sub, re.S)


def test_loader_snippet_runs_beside_the_reader(dashscope, monkeypatch, capsys) -> None:
    from tests.support.llama_index import Json, completion, make_pdf, page_number

    monkeypatch.setenv("DASHSCOPE_BASE_URL", dashscope.url)
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    (Path.cwd() / "scans").mkdir()
    pdf = make_pdf(Path.cwd() / "scans" / "contract.pdf", 3)
    dashscope.responder = lambda rec: Json(completion(f"# Clause {page_number(rec)}\n\nNotice period: 30 days."))
    (snippet,) = loader_snippets()
    assert "QwenVLDocumentLoader" in snippet and "QwenVLReader" in snippet

    exec(compile(snippet, "README.md LangChain document loader", "exec"), {"__name__": "__main__"})  # noqa: S102

    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "scans/contract.pdf#page=1 0 1 # Clause 1",
        "",
        "Notice period: 30 days.",
        "scans/contract.pdf#page=2 1 2 # Clause 2",
        "",
        "Notice period: 30 days.",
        "scans/contract.pdf#page=3 2 3 # Clause 3",
        "",
        "Notice period: 30 days.",
        "['1', '2', '3']",
    ]
    assert sorted(page_number(r) for r in dashscope.chat_requests) == [1, 2, 3]  # the reader sent nothing
    assert pdf.exists() and KEY not in "\n".join(lines)
