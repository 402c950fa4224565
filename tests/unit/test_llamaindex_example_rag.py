"""examples/scanned_pdf_rag.py runs end to end against the local server, with MockEmbedding."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from llamaindex_support import KEY, Json, completion, make_pdf, page_number

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "scanned_pdf_rag.py"


def load_example():
    spec = importlib.util.spec_from_file_location("scanned_pdf_rag", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scanned_pdf_rag_offline(dashscope, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    monkeypatch.setenv("DASHSCOPE_BASE_URL", dashscope.url)
    pdf = make_pdf(tmp_path / "contract.pdf", 4)

    def respond(rec):
        texts = [p.get("text", "") for m in rec.json["messages"] for p in (m["content"] if isinstance(m["content"], list) else [])]
        if any("Markdown" in t for t in texts):  # the reader
            n = page_number(rec)
            return Json(completion(f"# Section {n}\n\nClause {n}: notice period is {n * 30} days."))
        return Json(completion("The notice period is 60 days (page 2)."))  # the query engine

    dashscope.responder = respond
    code = load_example().main(
        ["--pdf", str(pdf), "--question", "What is the notice period?", "--embed", "mock", "--dpi", "72",
         "--cache-dir", str(tmp_path / "cache"), "--top-k", "2"]  # fmt: skip
    )
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("The notice period is 60 days (page 2).")
    assert "contract.pdf page" in out and "of 4" in out
    reads = [r for r in dashscope.chat_requests if "image_url" in r.body.decode()]
    assert len(reads) == 4
    question = dashscope.last_body["messages"]
    prompt = " ".join(m["content"] if isinstance(m["content"], str) else "" for m in question)
    assert "What is the notice period?" in prompt and "notice period is" in prompt  # retrieved page text
    assert "request_id" not in prompt and "image_sha256" not in prompt  # excluded from the LLM's context
    dashscope.reset()
    dashscope.responder = respond
    assert load_example().main(["--pdf", str(pdf), "--embed", "mock", "--dpi", "72", "--cache-dir", str(tmp_path / "cache")]) == 0
    assert not [r for r in dashscope.chat_requests if "image_url" in r.body.decode()]  # pages come from the cache
