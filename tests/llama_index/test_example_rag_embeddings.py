"""examples/scanned_pdf_rag.py: DashScope embeddings through LlamaIndex's OpenAI-compatible embeddings
integration (no hand-written class), a one-line error when the endpoint has no embeddings route,
exit codes as the qwen-vl command's, and the cache folder .gitignore lists."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.fake_dashscope import Json, error_body
from tests.support.llama_index import KEY, completion, make_pdf, page_number

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "scanned_pdf_rag.py"


def load_example():
    spec = importlib.util.spec_from_file_location("scanned_pdf_rag_embeddings", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reads_then_answers(rec):
    texts = [p.get("text", "") for m in rec.json["messages"] for p in (m["content"] if isinstance(m["content"], list) else [])]
    if any("Markdown" in t for t in texts):
        return Json(completion(f"Page {page_number(rec)}: the rent is due monthly."))
    return Json(completion("Monthly."))


def test_embeddings_come_from_the_openai_like_integration(monkeypatch):
    from llama_index.embeddings.openai_like import OpenAILikeEmbedding

    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    example = load_example()
    args = example.parse_args(["--pdf", "x.pdf", "--region", "singapore"])
    embed = example.dashscope_embeddings(args)
    assert isinstance(embed, OpenAILikeEmbedding)
    assert embed.api_base == "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"
    assert (embed.model_name, embed.embed_batch_size, embed.dimensions) == ("text-embedding-v4", 10, 1024)
    source = EXAMPLE.read_text(encoding="utf-8")
    assert "class DashScopeEmbedding" not in source and "BaseEmbedding):" not in source  # no hand-written class


def test_an_endpoint_without_embeddings_gives_one_line_and_exit_3(dashscope, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    monkeypatch.setenv("DASHSCOPE_BASE_URL", dashscope.url)
    pdf = make_pdf(tmp_path / "lease.pdf", 2)
    dashscope.responder = reads_then_answers
    default = dashscope.default_reply

    def no_embeddings(rec):  # a server (vLLM, a proxy) that serves chat but has no /embeddings route
        if rec.kind == "embeddings":
            return Json(error_body(f"Not found: {rec.method} {rec.path}", "not_found"), 404)
        return default(rec)

    monkeypatch.setattr(dashscope, "default_reply", no_embeddings)
    code = load_example().main(["--pdf", str(pdf), "--question", "When is rent due?", "--dpi", "72", "--cache-dir", ""])
    out, err = capsys.readouterr()
    assert code == 3
    assert err.count("\n") == 2, err  # "read 2 page(s) ..." and the one error line
    line = err.splitlines()[-1]
    assert line.startswith("error: ") and "/compatible-mode/v1/embeddings answered HTTP 404" in line
    assert "no embeddings route" in line and "--embed mock" in line and "Traceback" not in err
    assert KEY not in out + err


def test_reading_errors_exit_3_and_bad_settings_exit_2(dashscope, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    monkeypatch.setenv("DASHSCOPE_BASE_URL", dashscope.url)
    pdf = make_pdf(tmp_path / "lease.pdf", 1)
    dashscope.responder = lambda rec: Json(error_body("Invalid API-key provided.", "invalid_api_key"), 401)
    assert load_example().main(["--pdf", str(pdf), "--embed", "mock", "--dpi", "72", "--cache-dir", ""]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error" in err
    assert load_example().main(["--pdf", str(pdf), "--embed", "mock", "--region", "mars"]) == 2
    assert "unknown region 'mars'" in capsys.readouterr().err


def test_the_examples_cache_folder_is_the_one_gitignore_lists():
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    example = load_example()
    default = example.parse_args(["--pdf", "x.pdf"]).cache_dir
    assert default.rstrip("/") + "/" in ignored
    langchain_example = (ROOT / "examples" / "langchain_scanned_pdf_rag.py").read_text(encoding="utf-8")
    assert 'default=".qwen_vl_cache/"' in langchain_example
    for path in (ROOT / "examples").glob("*.py"):
        assert ".qwen-vl-cache" not in path.read_text(encoding="utf-8"), path.name
