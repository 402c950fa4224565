"""``qwen-vl read``: images and scanned PDFs to JSON lines through the core document pipeline.

Its parser, exit codes, error lines and secret scrubbing are the command's own; the pages are read
by :class:`qwen_vl_core.documents.DocumentPipeline` (no adapter is imported); pypdfium2 is checked
before anything runs when a PDF is to be read. Runs in-process through :func:`qwen_vl_cli.main`,
the one entry point of every subcommand (and once as a subprocess, to see what it imports).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from tests.cli._encrypted_pdf import encrypted_pdf
from tests.support.llama_index import (
    KEY,
    Json,
    PageResponder,
    completion,
    error_body,
    image_bytes,
    make_pdf,
    make_tiff,
    page_number,
    sent_images,
    server_error,
)
from tests.support.pdfs import scanned_pdf, vector_pdf

import qwen_vl_core.documents
from qwen_vl_cli import main
from qwen_vl_cli.read import MISSING_PDF_EXTRA, MODES, missing_extras

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "open-sesame-4711"
OVERLOADED = "ServerError: The model is overloaded, try again later. (status=500, code=InternalError, request_id="


def call(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def keyed(dashscope, monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    return dashscope


# ---------------------------------------------------------------- the JSON lines


def test_read_writes_one_record_per_page_in_order(keyed, tmp_path, capsys):
    pdf = make_pdf(tmp_path / "scan.pdf", 3)
    keyed.responder = PageResponder()
    out = tmp_path / "pages.jsonl"
    code = main(["read", str(pdf), "--mode", "ocr", "--out", str(out), "--dpi", "72", "--workers", "2",
                 "--base-url", keyed.url, "--no-progress"])  # fmt: skip
    assert code == 0
    pages = records(out.read_text())
    assert [p["id"] for p in pages] == [f"{pdf}#page={n}" for n in (1, 2, 3)]
    assert [p["text"] for p in pages] == ["text of page 1", "text of page 2", "text of page 3"]
    assert all(set(p) == {"id", "text", "metadata"} for p in pages)  # successes only: no "error"
    meta = pages[1]["metadata"]
    assert meta["file_path"] == str(pdf) and meta["file_name"] == "scan.pdf"
    assert (meta["page_label"], meta["total_pages"], meta["mode"], meta["model"]) == ("2", 3, "ocr", "qwen3-vl-plus")
    assert (meta["width"], meta["height"]) == (224, 384) and meta["cached"] is False
    assert meta["request_id"] and meta["image_sha256"] and meta["page_path"] in ("embedded", "rendered")
    assert meta["input_tokens"] > 0 and meta["output_tokens"] > 0
    assert capsys.readouterr().err == f"qwen-vl: 3 page(s) written to {out}; 0 failed\n"


def test_read_writes_to_stdout(keyed, tmp_path, capsys):
    image = tmp_path / "page.png"
    image.write_bytes(image_bytes("Invoice 42"))
    keyed.script(Json(completion("Invoice 42")))
    code, out, err = call(capsys, "read", str(image), "--base-url", keyed.url, "--no-progress")
    assert code == 0, err
    (page,) = records(out)
    assert (page["id"], page["text"], page["metadata"]["file_name"]) == (f"{image}#page=1", "Invoice 42", "page.png")
    assert err == "qwen-vl: 1 page(s) written to stdout; 0 failed\n"


def test_read_keeps_file_and_page_order_whatever_finishes_first(keyed, tmp_path, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    make_pdf(docs / "a.pdf", 3)
    make_tiff(docs / "b.tif", 2)
    (docs / "c.png").write_bytes(image_bytes(size=(224, 32 * 20)))  # read as "page 10"
    slow = PageResponder()

    def respond(rec):
        if page_number(rec) == 1:  # every first page is slow: later pages finish before it
            time.sleep(0.3)
        return slow(rec)

    keyed.responder = respond
    code, out, err = call(capsys, "read", str(docs), "--dpi", "72", "--workers", "4", "--base-url", keyed.url)
    assert code == 0, err
    assert [p["id"] for p in records(out)] == [
        f"{docs / 'a.pdf'}#page=1", f"{docs / 'a.pdf'}#page=2", f"{docs / 'a.pdf'}#page=3",
        f"{docs / 'b.tif'}#page=1", f"{docs / 'b.tif'}#page=2", f"{docs / 'c.png'}#page=1",
    ]  # fmt: skip


def test_read_writes_each_page_as_it_arrives(keyed, tmp_path):
    pdf = make_pdf(tmp_path / "scan.pdf", 4)
    out = tmp_path / "pages.jsonl"
    lines_on_disk: list[int] = []
    pages = PageResponder()

    def respond(rec):
        lines_on_disk.append(len(out.read_text().splitlines()) if out.exists() else 0)
        time.sleep(0.15)
        return pages(rec)

    keyed.responder = respond
    code = main(["read", str(pdf), "--dpi", "72", "--workers", "1", "--out", str(out), "--base-url", keyed.url])
    assert code == 0
    assert len(out.read_text().splitlines()) == 4
    assert lines_on_disk[0] == 0 and lines_on_disk[-1] >= 1  # earlier pages were on disk while page 4 was asked


def test_the_documented_conversions_to_framework_documents_work(keyed, tmp_path, capsys):
    image = tmp_path / "page.png"
    image.write_bytes(image_bytes())
    keyed.script(Json(completion("A scanned page.")))
    code, out, _ = call(capsys, "read", str(image), "--base-url", keyed.url)
    assert code == 0
    record = json.loads(out.splitlines()[0])
    code, help_text, _ = call(capsys, "read", "--help")
    assert 'Document(page_content=record["text"], metadata=record["metadata"])' in help_text
    assert 'Document(text=record["text"], metadata=record["metadata"], id_=record["id"])' in help_text

    lc = pytest.importorskip("langchain_core.documents")
    doc = lc.Document(page_content=record["text"], metadata=record["metadata"])
    assert doc.page_content == "A scanned page." and doc.metadata["file_name"] == "page.png"
    li = pytest.importorskip("llama_index.core")
    node = li.Document(text=record["text"], metadata=record["metadata"], id_=record["id"])
    assert (node.text, node.id_, node.metadata["page_label"]) == ("A scanned page.", f"{image}#page=1", "1")


def test_read_cache_dir_pays_only_once(keyed, tmp_path, capsys):
    pdf = make_pdf(tmp_path / "scan.pdf", 2)
    keyed.responder = PageResponder()
    argv = ["read", str(pdf), "--dpi", "72", "--cache-dir", str(tmp_path / "cache"), "--base-url", keyed.url]
    code, first, _ = call(capsys, *argv)
    assert code == 0 and len(keyed.chat_requests) == 2
    code, second, err = call(capsys, *argv)
    assert code == 0 and len(keyed.chat_requests) == 2  # nothing sent again
    assert [p["text"] for p in records(second)] == [p["text"] for p in records(first)]
    assert all(p["metadata"]["cached"] for p in records(second))
    assert err == "qwen-vl: 2 page(s) written to stdout (2 from the cache); 0 failed\n"


# ---------------------------------------------------------------- failures and exit codes


def test_read_failed_pages_exit_3_and_the_others_are_written(keyed, tmp_path, capsys):
    pdf = make_pdf(tmp_path / "scan.pdf", 3)
    keyed.responder = PageResponder(fail={2: server_error})
    out = tmp_path / "a.jsonl"
    code = main(["read", str(pdf), "--dpi", "72", "--base-url", keyed.url, "--max-retries", "0", "--out", str(out)])
    assert code == 3
    assert [p["metadata"]["page_label"] for p in records(out.read_text())] == ["1", "3"]  # the others are kept
    failure, summary = capsys.readouterr().err.splitlines()
    assert failure.startswith(f"qwen-vl: failed: {pdf} page 2: {OVERLOADED}")
    assert summary == f"qwen-vl: 2 page(s) written to {out}; 1 failed"


def test_read_on_error_skip_reports_the_failure_and_exits_0(keyed, tmp_path, capsys):
    pdf = make_pdf(tmp_path / "scan.pdf", 3)
    keyed.responder = PageResponder(fail={2: server_error})
    code, out, err = call(capsys, "read", str(pdf), "--dpi", "72", "--base-url", keyed.url, "--max-retries", "0",
                          "--on-error", "skip")  # fmt: skip
    assert code == 0
    assert [p["text"] for p in records(out)] == ["text of page 1", "text of page 3"]
    failure, summary = err.splitlines()
    assert failure.startswith(f"qwen-vl: failed: {pdf} page 2: {OVERLOADED}")
    assert summary == "qwen-vl: 2 page(s) written to stdout; 1 failed"


def test_read_files_that_cannot_be_read_are_one_failure_line_each(keyed, tmp_path, capsys):
    (tmp_path / "a-broken.pdf").write_bytes(b"%PDF-1.7\nthis is not a PDF")  # cannot be opened: the whole file
    (tmp_path / "b-notes.png").write_bytes(b"not an image at all")  # its one page cannot be loaded
    (tmp_path / "c-ok.png").write_bytes(image_bytes())
    keyed.script(Json(completion("fine")))
    code, out, err = call(capsys, "read", str(tmp_path), "--base-url", keyed.url)
    assert code == 3
    assert [p["id"] for p in records(out)] == [f"{tmp_path / 'c-ok.png'}#page=1"]
    broken, notes, summary = err.splitlines()
    assert broken.startswith(f"qwen-vl: failed: {tmp_path / 'a-broken.pdf'}: InputValidationError: PDF ")
    assert notes.startswith(f"qwen-vl: failed: {tmp_path / 'b-notes.png'} page 1: InputValidationError: ")
    assert summary == "qwen-vl: 1 page(s) written to stdout; 2 failed"
    assert len(keyed.chat_requests) == 1


def test_read_an_answer_cut_at_max_tokens_is_a_failure(keyed, tmp_path, capsys):
    (tmp_path / "page.png").write_bytes(image_bytes())
    keyed.script(Json(completion("half a sent", finish_reason="length")))
    code, out, err = call(capsys, "read", str(tmp_path / "page.png"), "--max-tokens", "3", "--base-url", keyed.url)
    assert code == 3 and out == ""
    assert "IncompleteAnswerError: the answer was cut off at max_tokens" in err
    assert keyed.last_body["max_tokens"] == 3


def test_read_exit_codes(keyed, tmp_path, monkeypatch, capsys):
    make_pdf(tmp_path / "scan.pdf", 1)
    assert main(["read", str(tmp_path / "missing.pdf")]) == 2
    assert main(["read", str(tmp_path / "scan.pdf"), "--mode", "caption", "--dpi", "5"]) == 2
    monkeypatch.delenv("DASHSCOPE_API_KEY")
    capsys.readouterr()
    assert main(["read", str(tmp_path / "scan.pdf")]) == 2
    assert "no DashScope API key" in capsys.readouterr().err
    assert keyed.requests == []


def test_read_empty_directory_warns(keyed, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, out, err = call(capsys, "read", str(tmp_path / "empty"), "--base-url", keyed.url)
    assert code == 0 and out == ""
    assert err.splitlines() == [
        f"qwen-vl: warning: no image or PDF files found in {tmp_path / 'empty'}",
        "qwen-vl: 0 page(s) written to stdout; 0 failed",
    ]


def test_read_entry_point_takes_the_words_after_read(keyed, tmp_path, capsys):
    from qwen_vl_cli.read import main as read_main

    make_pdf(tmp_path / "scan.pdf", 1)
    keyed.responder = PageResponder()
    argv = [str(tmp_path / "scan.pdf"), "--dpi", "72", "--base-url", keyed.url, "--out", str(tmp_path / "n.jsonl")]
    assert read_main(argv) == 0 and read_main(["read", *argv]) == 0
    assert len((tmp_path / "n.jsonl").read_text().splitlines()) == 1


# ---------------------------------------------------------------- options reach the pipeline


class FakePipeline:
    seen: dict = {}

    def __init__(self, client, **kwargs):
        FakePipeline.seen = {"client": client, **kwargs}

    def results(self, paths):
        FakePipeline.seen["paths"] = paths
        from qwen_vl_core.documents import PageResult

        yield PageResult(source=paths[0], page=1, total_pages=1, mode="ocr", model="m", text=f"the key is {KEY}",
                         name="a.png")  # fmt: skip


def test_read_hands_its_options_to_the_pipeline(monkeypatch, tmp_path, capsys):
    import qwen_vl_core.client

    made: list = []
    real = qwen_vl_core.client.QwenVLClient

    def client_spy(**kwargs):
        made.append((kwargs, real(**kwargs)))
        return made[-1][1]

    monkeypatch.setattr(qwen_vl_core.client, "QwenVLClient", client_spy)
    monkeypatch.setattr(qwen_vl_core.documents, "DocumentPipeline", FakePipeline)
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    monkeypatch.setenv("PDF_PW", PASSWORD)
    (tmp_path / "a.png").write_bytes(image_bytes())
    out = tmp_path / "pages.jsonl"
    code, _, err = call(
        capsys, "read", str(tmp_path / "a.png"), "--mode", "ocr", "--out", str(out), "--workers", "3",
        "--cache-dir", "c", "--on-error", "skip", "--max-tokens", "99", "--no-recursive", "--no-progress",
        "--region", "singapore", "--base-url", "http://127.0.0.1:1/v1", "--workspace", "ws", "--timeout", "7",
        "--max-retries", "5", "--model", "qwen-vl-ocr", "--prompt", "Read it.", "--dpi", "96",
        "--page-format", "png", "--processes", "2", "--ocr-task", "table_parsing", "--password-env", "PDF_PW",
    )  # fmt: skip
    assert code == 0, err
    seen = dict(FakePipeline.seen)
    client = seen.pop("client")
    assert seen.pop("paths") == [str(tmp_path / "a.png")]
    assert seen == {
        "model": "qwen-vl-ocr", "mode": "ocr", "prompt": "Read it.",
        "options": {"max_tokens": 99, "ocr_task": "table_parsing"}, "dpi": 96.0, "page_format": "png",
        "password": PASSWORD, "num_workers": 3, "on_error": "skip", "cache_dir": "c", "recursive": False,
        "processes": 2, "progress": None, "name": "qwen-vl read",
    }  # fmt: skip
    assert client is made[0][1] and client.api_key.get_secret_value() == KEY
    assert made[0][0] == {
        "api_key": None, "region": "singapore", "base_url": "http://127.0.0.1:1/v1", "workspace": "ws",
        "timeout": 7.0, "max_retries": 5, "upload": False, "resize": True,
    }  # fmt: skip
    # Output goes through the command's scrubbing console, file or stdout.
    assert KEY not in out.read_text() and "the key is ***" in out.read_text()
    assert err == f"qwen-vl: 1 page(s) written to {out}; 0 failed\n"


def test_read_defaults(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(qwen_vl_core.documents, "DocumentPipeline", FakePipeline)
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    (tmp_path / "a.png").write_bytes(image_bytes())
    code, _, err = call(capsys, "read", str(tmp_path / "a.png"))
    assert code == 0, err
    seen = FakePipeline.seen
    assert seen["dpi"] is None  # the model's pixel budget, at most 300 dpi
    assert (seen["mode"], seen["page_format"], seen["processes"], seen["password"]) == ("caption+ocr", "jpeg", "auto", None)
    assert (seen["num_workers"], seen["on_error"], seen["recursive"], seen["cache_dir"]) == (4, "raise", True, None)
    assert seen["options"] == {"max_tokens": None, "ocr_task": None}
    assert seen["progress"] is None  # stderr is not a terminal here


def test_read_modes_are_the_cores():
    assert MODES is qwen_vl_core.documents.MODES


def test_read_progress_bar_counts_pages(keyed, tmp_path, capsys):
    pdf = make_pdf(tmp_path / "scan.pdf", 2)
    keyed.responder = PageResponder(fail={2: server_error})
    code, out, err = call(capsys, "read", str(pdf), "--dpi", "72", "--progress", "--max-retries", "0",
                          "--base-url", keyed.url)  # fmt: skip
    assert code == 3 and len(records(out)) == 1
    assert "Reading pages" in err and "2page" in err.replace(" ", "") and "failed=1" in err
    assert f"qwen-vl: failed: {pdf} page 2: ServerError" in err
    assert err.endswith("qwen-vl: 1 page(s) written to stdout; 1 failed\n")


def test_read_ocr_task_uses_the_builtin_task(keyed, tmp_path, capsys):
    (tmp_path / "form.png").write_bytes(image_bytes("FORM"))
    code, out, err = call(capsys, "read", str(tmp_path / "form.png"), "--model", "qwen-vl-ocr", "--ocr-task",
                          "document_parsing", "--base-url", keyed.url)  # fmt: skip
    assert code == 0, err
    rec = keyed.chat_requests[-1]
    assert rec.kind == "native" and rec.json["parameters"]["ocr_options"] == {"task": "document_parsing"}
    assert records(out)[0]["text"] == "OCR(document_parsing): I see 1 image(s)."


def test_read_page_format_png_and_render_processes(keyed, tmp_path, capsys):
    pdf = vector_pdf(tmp_path / "slides.pdf", 2)  # text and vector content: rendered, not passed through
    code, out, err = call(capsys, "read", str(pdf), "--page-format", "png", "--processes", "1", "--dpi", "36",
                          "--base-url", keyed.url)  # fmt: skip
    assert code == 0, err
    assert [p["metadata"]["page_path"] for p in records(out)] == ["rendered", "rendered"]
    sent = [sent_images(rec)[0] for rec in keyed.chat_requests]
    assert [img.format for img in sent] == ["PNG", "PNG"]
    assert all(img.height <= 842 / 72 * 36 + 32 for img in sent)  # --dpi caps the rendering


def test_read_scanned_pdf_sends_the_pages_own_jpeg(keyed, tmp_path, capsys):
    pdf = scanned_pdf(tmp_path / "scan.pdf", 2, dpi=72)
    code, out, err = call(capsys, "read", str(pdf), "--base-url", keyed.url)
    assert code == 0, err
    assert [p["metadata"]["page_path"] for p in records(out)] == ["embedded", "embedded"]


# ---------------------------------------------------------------- encrypted PDFs


def test_read_encrypted_pdf_with_password(keyed, tmp_path, capsys):
    pdf = encrypted_pdf(tmp_path / "locked.pdf", 2, PASSWORD)
    keyed.responder = PageResponder()
    code, out, err = call(capsys, "read", str(pdf), "--password", PASSWORD, "--dpi", "72", "--base-url", keyed.url)
    assert code == 0, err
    assert [p["text"] for p in records(out)] == ["text of page 1", "text of page 2"]
    assert PASSWORD not in out + err


def test_read_encrypted_pdf_with_password_from_the_environment(keyed, tmp_path, capsys, monkeypatch):
    pdf = encrypted_pdf(tmp_path / "locked.pdf", 1, PASSWORD)
    monkeypatch.setenv("PDF_PASSWORD", PASSWORD)
    keyed.responder = PageResponder()
    code, out, err = call(capsys, "read", str(pdf), "--password-env", "PDF_PASSWORD", "--dpi", "72",
                          "--base-url", keyed.url)  # fmt: skip
    assert code == 0, err
    assert [p["text"] for p in records(out)] == ["text of page 1"]
    assert PASSWORD not in out + err


def test_read_encrypted_pdf_without_password_names_the_flags(keyed, tmp_path, capsys):
    pdf = encrypted_pdf(tmp_path / "locked.pdf", 2, PASSWORD)
    code, out, err = call(capsys, "read", str(pdf), "--base-url", keyed.url)
    assert code == 3 and out == ""
    assert err.splitlines() == [
        f"qwen-vl: failed: {pdf}: InputValidationError: PDF '{pdf}' is encrypted; "
        "give it with --password-env NAME or --password",
        "qwen-vl: 0 page(s) written to stdout; 1 failed",
    ]
    assert keyed.requests == []


def test_read_encrypted_pdf_wrong_password_is_never_printed(keyed, tmp_path, capsys):
    pdf = encrypted_pdf(tmp_path / "locked.pdf", 1, PASSWORD)
    wrong = "not-the-password-42"
    code, out, err = call(capsys, "read", str(pdf), "--password", wrong, "--base-url", keyed.url)
    assert code == 3 and out == ""
    assert f"PDF '{pdf}' is encrypted; the password given is wrong" in err
    assert wrong not in err and PASSWORD not in err
    assert keyed.requests == []


def test_read_password_echoed_by_a_server_is_scrubbed(keyed, tmp_path, capsys):
    pdf = encrypted_pdf(tmp_path / "locked.pdf", 1, PASSWORD)
    keyed.script(Json(error_body(f"bad request: {PASSWORD} {KEY}", "InvalidParameter"), 400))
    code, out, err = call(capsys, "read", str(pdf), "--password", PASSWORD, "--base-url", keyed.url,
                          "--on-error", "skip")  # fmt: skip
    assert code == 0 and out == ""
    assert "bad request: *** ***" in err and PASSWORD not in err and KEY not in err


# ---------------------------------------------------------------- usage and input errors: one line, exit 2


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "the following arguments are required: PATH"),
        (["a.png", "--mode", "poem"], "invalid choice: 'poem'"),
        (["a.png", "--workers", "0"], "must be at least 1, got 0"),
        (["a.png", "--workers", "many"], "invalid int value: 'many'"),
        (["a.png", "--workers", "257"], "argument --workers: must be at most 256, got 257"),
        (["a.png", "--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["a.png", "--progress", "--no-progress"], "not allowed with argument"),
        (["a.png", "--dpi", "5"], "argument --dpi: must be between 18 and 1200 dpi, got 5"),
        (["a.png", "--dpi", "1201"], "argument --dpi: must be between 18 and 1200 dpi, got 1201"),
        (["a.png", "--dpi", "nan"], "argument --dpi: must be between 18 and 1200 dpi, got nan"),
        (["a.png", "--dpi", "high"], "argument --dpi: invalid number: 'high'"),
        (["a.png", "--processes", "-1"], "argument --processes: must be 'auto' or a number of processes"),
        (["a.png", "--processes", "many"], "argument --processes: must be 'auto' or a number of processes"),
        (["a.png", "--page-format", "gif"], "argument --page-format: invalid choice: 'gif'"),
        (["a.png", "--ocr-task", "poetry"], "argument --ocr-task: invalid choice: 'poetry'"),
        (["a.png", "--password", "x", "--password-env", "X"], "not allowed with argument"),
    ],
    ids=["no-path", "bad-mode", "zero-workers", "bad-workers", "many-workers", "unknown-flag", "progress-both",
         "dpi-low", "dpi-high", "dpi-nan", "dpi-word", "processes-negative", "processes-word", "page-format",
         "ocr-task", "password-both"],  # fmt: skip
)
def test_read_usage_errors_are_one_line_pointing_at_read_help(dashscope, capsys, argv, message):
    code, out, err = call(capsys, "read", *argv)
    assert code == 2 and out == ""
    assert err.startswith("qwen-vl: error: ") and err.endswith(" (see 'qwen-vl read --help')\n") and err.count("\n") == 1
    assert message in err
    assert dashscope.requests == []


def test_read_help_lists_the_flags(capsys):
    code, out, _ = call(capsys, "read", "--help")
    assert code == 0
    for flag in ("--mode", "--cache-dir", "--on-error", "--region", "--base-url", "--workspace", "--api-key-env",
                 "--timeout", "--max-retries", "caption+ocr", "--password", "--password-env", "--processes",
                 "--page-format", "--ocr-task", "--dpi", "--workers", "--no-recursive"):  # fmt: skip
        assert flag in out
    assert "llama-index" not in out
    code, out, _ = call(capsys, "--help")
    assert code == 0 and "read" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["missing.png"], "no such file or directory: missing.png"),
        (["page.png", "--api-key-env", "NO_SUCH_VAR"], "--api-key-env NO_SUCH_VAR: the environment variable NO_SUCH_VAR is not set"),
        (["page.png", "--password-env", "NO_SUCH_VAR"], "--password-env NO_SUCH_VAR: the environment variable NO_SUCH_VAR is not set"),
        (["page.png", "--password", ""], "--password is empty"),
        (["page.png", "--timeout", "0"], "--timeout must be positive, got 0.0"),
        (["page.png", "--ocr-task", "table_parsing"], "--ocr-task needs a qwen-vl-ocr model (--model qwen-vl-ocr), not 'qwen3-vl-plus'"),
        (["page.png", "--out", "no/such/dir/pages.jsonl"], "cannot write the output file 'no/such/dir/pages.jsonl'"),
    ],
    ids=["missing-path", "key-env-unset", "password-env-unset", "password-empty", "bad-timeout", "ocr-task-model",
         "unwritable-out"],  # fmt: skip
)
def test_read_input_errors_exit_2_with_one_line_and_send_nothing(keyed, capsys, argv, message):
    Path("page.png").write_bytes(image_bytes())
    code, out, err = call(capsys, "read", *argv, "--base-url", keyed.url)
    assert code == 2 and out == ""
    assert err.startswith("qwen-vl: error: ") and err.count("\n") == 1, err
    assert message in err
    assert keyed.requests == []


def test_read_never_prints_the_key(keyed, tmp_path, capsys):
    # A server that echoes the key back in its error: a fatal error, exit 3, the key scrubbed.
    (tmp_path / "page.png").write_bytes(image_bytes())
    (tmp_path / "page2.png").write_bytes(image_bytes())
    keyed.script(Json(error_body(f"Incorrect API key provided: {KEY}", "invalid_api_key"), 401))
    code, out, err = call(capsys, "read", str(tmp_path), "--base-url", keyed.url, "--max-retries", "0",
                          "--workers", "1")  # fmt: skip
    assert code == 3 and out == ""
    lines = err.splitlines()
    assert lines[0].startswith("qwen-vl: error: AuthenticationError: Incorrect API key provided: *** (status=401")
    assert lines[0].endswith("; check the API key and that it belongs to this region (--region, or --base-url)")
    assert len(lines) == 2
    assert lines[-1] == (f"qwen-vl: stopped at {tmp_path / 'page.png'} page 1, an error that would fail every page: "
                         "0 page(s) written to stdout; 1 failed")  # fmt: skip
    assert len(keyed.chat_requests) == 1  # the second page was not sent
    assert KEY not in out + err


def test_read_key_from_another_variable_is_scrubbed(keyed, tmp_path, capsys, monkeypatch):
    other = "sk-other-key-0123456789"
    monkeypatch.delenv("DASHSCOPE_API_KEY")
    monkeypatch.setenv("MY_QWEN_KEY", other)
    (tmp_path / "page.png").write_bytes(image_bytes())
    keyed.script(Json(error_body(f"Incorrect API key provided: {other}", "invalid_api_key"), 401))
    code, out, err = call(capsys, "read", str(tmp_path / "page.png"), "--base-url", keyed.url, "--api-key-env",
                          "MY_QWEN_KEY", "--max-retries", "0")  # fmt: skip
    assert code == 3 and "***" in err and other not in out + err
    assert keyed.chat_requests[-1].headers["authorization"] == f"Bearer {other}"


# ---------------------------------------------------------------- optional dependencies, checked up front


def test_read_pdf_without_pypdfium2_names_the_pdf_extra(keyed, monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "pypdfium2", None)  # not installed
    (tmp_path / "docs").mkdir()
    make_pdf(tmp_path / "docs" / "scan.pdf", 1)
    (tmp_path / "renamed.bin").write_bytes((tmp_path / "docs" / "scan.pdf").read_bytes())
    expected = "qwen-vl: error: qwen-vl read needs pypdfium2 (the pdf extra) to read PDFs: pip install pypdfium2 (see 'qwen-vl read --help')\n"
    assert expected == f"qwen-vl: error: {MISSING_PDF_EXTRA} (see 'qwen-vl read --help')\n"
    assert missing_extras([str(tmp_path / "docs")]) == ["pdf"] and missing_extras([str(tmp_path / "x.png")]) == []
    for target in ("docs/scan.pdf", "docs", "renamed.bin"):  # by name, in a directory, by content
        code, _, err = call(capsys, "read", str(tmp_path / target), "--base-url", keyed.url)
        assert (code, err) == (2, expected), target
    assert keyed.requests == []


def test_read_images_need_no_extra(keyed, monkeypatch, tmp_path, capsys):
    for module in ("pypdfium2", "llama_index", "llama_index.core", "langchain_core"):
        monkeypatch.setitem(sys.modules, module, None)  # not installed
    (tmp_path / "page.png").write_bytes(image_bytes())
    keyed.script(Json(completion("an image")))
    code, out, err = call(capsys, "read", str(tmp_path), "--base-url", keyed.url, "--no-progress")
    assert code == 0, err
    assert [p["text"] for p in records(out)] == ["an image"]


def test_read_imports_no_framework(keyed, tmp_path):
    """A real run in a fresh interpreter: the pipeline is the core's, no adapter or framework is
    loaded; the pipeline's own log line for a skipped page is not printed twice."""
    pdf = make_pdf(tmp_path / "scan.pdf", 2)
    keyed.responder = PageResponder(fail={2: server_error})
    script = textwrap.dedent(
        """
        import json, sys
        from qwen_vl_cli import main
        code = main(sys.argv[1:])
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in
                        ("llama_index", "langchain", "langchain_core", "llama_index_qwen_vl", "langchain_qwen_vl"))
        print(json.dumps({"code": code, "loaded": loaded}))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DASHSCOPE_API_KEY": KEY}
    proc = subprocess.run(
        [sys.executable, "-c", script, "read", str(pdf), "--dpi", "72", "--out", str(tmp_path / "p.jsonl"),
         "--base-url", keyed.url, "--max-retries", "0", "--on-error", "skip", "--processes", "0"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"code": 0, "loaded": []}
    failure, summary = proc.stderr.splitlines()  # the pipeline's own log line is not printed as well
    assert failure.startswith(f"qwen-vl: failed: {pdf} page 2: {OVERLOADED}")
    assert summary == f"qwen-vl: 1 page(s) written to {tmp_path / 'p.jsonl'}; 1 failed"
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == 1


def test_read_core_warnings_are_scrubbed_lines(monkeypatch, tmp_path, capsys):
    class WarningPipeline(FakePipeline):
        def results(self, paths):
            logging.getLogger("qwen_vl_core.documents").warning("cache entry %s is corrupt (%s)", "x", KEY)
            yield from super().results(paths)

    monkeypatch.setattr(qwen_vl_core.documents, "DocumentPipeline", WarningPipeline)
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    (tmp_path / "page.png").write_bytes(image_bytes())
    code, out, err = call(capsys, "read", str(tmp_path / "page.png"))
    assert code == 0
    assert err.splitlines()[0] == "qwen-vl: warning: cache entry x is corrupt (***)"
    assert KEY not in out + err
    assert not any(isinstance(h, logging.Handler) and type(h).__name__ == "_CoreWarnings"
                   for h in logging.getLogger("qwen_vl_core").handlers)  # removed after the run
