"""examples/scanned_pdf_rag.py runs end to end against the local server, with MockEmbedding."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.support.llama_index import KEY, Json, completion, make_pdf, page_number

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


def test_scanned_pdf_rag_with_dashscope_embeddings_retrieves_the_matching_page(dashscope, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    monkeypatch.setenv("DASHSCOPE_BASE_URL", dashscope.url)
    pdf = make_pdf(tmp_path / "lease.pdf", 3)
    topics = {1: "rent is due monthly", 2: "pets are not allowed in the flat", 3: "heating is paid by the landlord"}

    def respond(rec):
        texts = [p.get("text", "") for m in rec.json["messages"] for p in (m["content"] if isinstance(m["content"], list) else [])]
        if any("Markdown" in t for t in texts):
            return Json(completion(f"Page text: {topics[page_number(rec)]}."))
        return Json(completion("Pets are not allowed."))

    dashscope.responder = respond
    code = load_example().main(["--pdf", str(pdf), "--question", "Are pets allowed in the flat?", "--dpi", "72", "--top-k", "1"])
    assert code == 0
    embeds = [r for r in dashscope.requests if r.kind == "embeddings"]
    assert embeds and all(r.headers["authorization"] == f"Bearer {KEY}" for r in embeds)
    assert all(len(r.json["input"]) <= 10 and r.json["model"] == "text-embedding-v4" for r in embeds)
    question = " ".join(m["content"] for m in dashscope.last_body["messages"] if isinstance(m["content"], str))
    assert "pets are not allowed" in question and "rent is due" not in question  # top-1 is the matching page
    assert "lease.pdf page 2 of 3" in capsys.readouterr().out
