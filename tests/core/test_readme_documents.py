"""README.md's "Documents" section runs as written against the local DashScope server."""

from __future__ import annotations

from PIL import Image

from tests.fake_dashscope import Json, completion
from tests.support.llama_index import make_pdf
from tests.support.readme_sections import python_snippets

SNIPPETS = python_snippets("Documents")


def test_the_documents_snippet_reads_every_page(dashscope, tmp_path, monkeypatch, api_key, capsys):
    assert len(SNIPPETS) == 1
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scans").mkdir()
    make_pdf(tmp_path / "scans" / "contract.pdf", 2)
    Image.new("RGB", (320, 480), "white").save(tmp_path / "scans" / "receipt.jpg")
    monkeypatch.setenv("DASHSCOPE_BASE_URL", dashscope.url)
    monkeypatch.setenv("DASHSCOPE_API_KEY", api_key)
    dashscope.responder = lambda rec: Json(completion("# Contract terms"))
    exec(compile(SNIPPETS[0], "README.md Documents snippet", "exec"), {"__name__": "__readme__"})
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1:3] for line in lines] == [["1", "embedded"], ["2", "embedded"], ["1", "file"]]
    assert all(line.endswith("# Contract terms") for line in lines) and len(dashscope.chat_requests) == 3
    assert (tmp_path / ".qwen_vl_cache").is_dir()
