"""examples/langchain_scanned_pdf_rag.py, offline: run as a script against the local server, which reads
the pages, embeds the chunks and checks that the retrieved page reaches the answering model."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.llama_index import KEY, Json, completion, error_body, make_pdf, page_number

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "langchain_scanned_pdf_rag.py"
TOPICS = {
    1: "Rent is due monthly, before the fifth day of each month.",
    2: "Pets are not allowed in the flat without written consent.",
    3: "Heating is paid by the landlord from October to April.",
}
ANSWER = "No: pets need written consent (lease.pdf, page 2)."


def load_example():
    spec = importlib.util.spec_from_file_location("langchain_scanned_pdf_rag", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def responder(prompts: list[str]):
    def respond(rec):
        if "image_url" in rec.body.decode():  # the loader reading a page
            return Json(completion(f"# Lease, page {page_number(rec)}\n\n{TOPICS[page_number(rec)]}"))
        prompt = " ".join(m["content"] for m in rec.json["messages"] if isinstance(m["content"], str))
        prompts.append(prompt)
        return Json(completion(ANSWER if TOPICS[2] in prompt else "The context does not say."))

    return respond


def run(args: list[str], dashscope, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DASHSCOPE_API_KEY": KEY, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--base-url", dashscope.url, "--top-k", "1"],
        capture_output=True, text=True, env=env, timeout=120, cwd=cwd,
    )  # fmt: skip


def test_the_example_answers_from_the_retrieved_page_and_caches_the_reading(dashscope, tmp_path):
    pdf = make_pdf(tmp_path / "lease.pdf", 3)
    prompts: list[str] = []
    dashscope.responder = responder(prompts)
    proc = run([str(pdf), "Are pets allowed in the flat?"], dashscope, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(ANSWER)
    assert "lease.pdf page 2 of 3" in proc.stdout
    assert "read 3 page(s)" in proc.stderr
    assert KEY not in proc.stdout + proc.stderr
    reads = [r for r in dashscope.chat_requests if "image_url" in r.body.decode()]
    assert sorted(page_number(r) for r in reads) == [1, 2, 3]
    assert len(prompts) == 1 and TOPICS[2] in prompts[0] and TOPICS[1] not in prompts[0]  # top-1 is the page
    embeds = [r for r in dashscope.requests if r.kind == "embeddings"]
    assert embeds and all(r.json["model"] == "text-embedding-v4" for r in embeds)
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in embeds)
    assert (tmp_path / ".qwen_vl_cache").is_dir()  # the default cache, in the working directory

    dashscope.reset()
    dashscope.responder = responder(prompts)
    proc = run([str(pdf), "Who pays for heating?"], dashscope, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not [r for r in dashscope.chat_requests if "image_url" in r.body.decode()]  # pages from the cache
    assert TOPICS[3] in prompts[-1]


def test_an_api_error_exits_3_with_one_line(dashscope, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    pdf = make_pdf(tmp_path / "lease.pdf", 2)
    dashscope.responder = lambda rec: Json(error_body("Incorrect API key provided.", "invalid_api_key"), 401)
    code = load_example().main([str(pdf), "Anything?", "--base-url", dashscope.url, "--cache-dir", ""])
    assert code == 3
    err = capsys.readouterr().err
    assert err.startswith("error: DocumentReadError:") and "AuthenticationError" in err
    assert err.count("\n") == 1 and KEY not in err


def test_no_key_exits_3_and_a_missing_file_is_a_usage_error(dashscope, tmp_path, capsys):
    pdf = make_pdf(tmp_path / "lease.pdf", 1)
    assert load_example().main([str(pdf), "Anything?", "--base-url", dashscope.url]) == 3
    assert capsys.readouterr().err.startswith("error: ConfigurationError: no DashScope API key")
    with pytest.raises(SystemExit) as info:
        load_example().main([str(tmp_path / "nope.pdf"), "Anything?"])
    assert info.value.code == 2 and "no such file" in capsys.readouterr().err
    assert dashscope.requests == []
