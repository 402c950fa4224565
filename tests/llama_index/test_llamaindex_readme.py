"""Every ```python snippet of README.md's LlamaIndex section runs as written against the local server (and the
``qwen-vl read`` line through the CLI entry point)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from tests.support.llama_index import KEY, MP4_BYTES, Json, Sse, chunks, completion, image_bytes, make_pdf

from qwen_vl_cli.read import main as cli_main
from tests.support.readme_sections import section

TEXT = section("LlamaIndex")
SNIPPETS = re.findall(r"```python\n(.*?)```", TEXT, re.S)
CLI_LINES = [line for block in re.findall(r"```bash\n(.*?)```", TEXT, re.S) for line in block.splitlines()
             if line.startswith("qwen-vl read")]  # fmt: skip


def instance(schema: dict) -> object:
    kind = schema.get("type", "object")
    if kind == "object":
        return {k: instance(v) for k, v in schema.get("properties", {}).items()}
    return {"string": "example", "number": 1.5, "integer": 1, "boolean": True}.get(kind)


def responder(rec):
    body = rec.json or {}
    rf = body.get("response_format") or {}
    if rf.get("type") == "json_schema":
        text = json.dumps(instance(rf["json_schema"]["schema"]))
        return Sse(chunks(text)) if rec.wants_stream else Json(completion(text))
    return None  # the server's default answer


@pytest.fixture
def readme_env(dashscope, tmp_path, monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    monkeypatch.setenv("DASHSCOPE_BASE_URL", dashscope.url)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "chart.png").write_bytes(image_bytes("Q1 Q2 Q3 Q4", size=(320, 240)))
    (tmp_path / "receipt.jpg").write_bytes(image_bytes("TOTAL 12.00 USD", fmt="JPEG"))
    (tmp_path / "scans").mkdir()
    make_pdf(tmp_path / "scans" / "contract.pdf", 3)
    (tmp_path / "scans" / "page.png").write_bytes(image_bytes("scanned page"))
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "whiteboard.jpg").write_bytes(image_bytes("TODO", fmt="JPEG"))
    (tmp_path / "demo.mp4").write_bytes(MP4_BYTES)
    dashscope.responder = responder
    return dashscope


def test_readme_has_snippets():
    assert len(SNIPPETS) >= 8 and CLI_LINES
    for name in ("QwenVL", "QwenVLReader", "QwenVLImageCaptioner", "QwenVLReaderError", "SimpleDirectoryReader"):
        assert any(name in s for s in SNIPPETS), name


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_snippet_runs(readme_env, index, capsys):
    exec(compile(SNIPPETS[index], f"README.md LlamaIndex snippet {index}", "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out
    assert out.strip()  # every snippet shows something
    assert readme_env.chat_requests  # and went through the server
    assert KEY not in out


def test_readme_cli_line_runs(readme_env, capsys):
    argv = shlex.split(CLI_LINES[0])[2:]  # drop "qwen-vl read"
    assert cli_main(argv) == 0
    records = [json.loads(line) for line in Path(argv[argv.index("--out") + 1]).read_text().splitlines()]
    # contract.pdf (3 pages) + page.png, as page records that become Documents as the README says
    assert [r["id"] for r in records] == [f"scans/contract.pdf#page={n}" for n in (1, 2, 3)] + ["scans/page.png#page=1"]
    from llama_index.core import Document

    docs = [Document(text=r["text"], metadata=r["metadata"], id_=r["id"]) for r in records]
    assert docs[1].metadata["page_label"] == "2" and docs[1].text
    assert 'Document(text=record["text"], metadata=record["metadata"], id_=record["id"])' in TEXT
