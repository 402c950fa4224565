"""``qwen-vl read``: its parser, exit codes, error lines and key scrubbing are the command's own;
the extras it needs are checked before anything runs; the pages are read by ``QwenVLReader``.

Runs in-process through :func:`qwen_vl_cli.main`, the one entry point of every subcommand.
"""

from __future__ import annotations

import json
import sys
import typing
from pathlib import Path

import pytest
from llama_index.core.schema import Document
from tests.support.llama_index import (
    KEY,
    Json,
    PageResponder,
    completion,
    error_body,
    image_bytes,
    make_pdf,
    server_error,
)

from qwen_vl_cli import main
from qwen_vl_cli.read import MISSING_EXTRA, MODES, missing_extra_message


def call(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def keyed(dashscope, monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    return dashscope


# ---------------------------------------------------------------- reading (the reader does the pages)


def test_read_writes_jsonl(keyed, tmp_path, capsys):
    make_pdf(tmp_path / "scan.pdf", 3)
    keyed.responder = PageResponder()
    out = tmp_path / "nodes.jsonl"
    code = main(["read", str(tmp_path / "scan.pdf"), "--mode", "ocr", "--out", str(out), "--dpi", "72",
                 "--workers", "2", "--base-url", keyed.url, "--no-progress"])  # fmt: skip
    assert code == 0
    docs = [Document.from_dict(json.loads(line)) for line in out.read_text().splitlines()]
    assert [d.text for d in docs] == ["text of page 1", "text of page 2", "text of page 3"]
    assert docs[0].metadata["mode"] == "ocr" and "request_id" in docs[0].excluded_embed_metadata_keys
    err = capsys.readouterr().err
    assert "3 document(s) written" in err and KEY not in err


def test_read_writes_jsonl_to_stdout(keyed, tmp_path, capsys):
    (tmp_path / "page.png").write_bytes(image_bytes("Invoice 42"))
    keyed.script(Json(completion("Invoice 42")))
    code, out, err = call(capsys, "read", str(tmp_path / "page.png"), "--base-url", keyed.url, "--no-progress")
    assert code == 0, err
    assert [Document.from_dict(json.loads(line)).text for line in out.splitlines()] == ["Invoice 42"]
    assert err == "qwen-vl: 1 document(s) written to stdout; 0 page(s) failed\n"


def test_read_exit_codes(keyed, tmp_path, monkeypatch, capsys):
    make_pdf(tmp_path / "scan.pdf", 3)
    keyed.responder = PageResponder(fail={2: server_error})
    args = ["read", str(tmp_path / "scan.pdf"), "--dpi", "72", "--base-url", keyed.url, "--max-retries", "0"]
    assert main(args + ["--out", str(tmp_path / "a.jsonl")]) == 3
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 2  # the other pages are kept
    assert "scan.pdf page 2: ServerError" in capsys.readouterr().err
    assert main(args + ["--on-error", "skip", "--out", str(tmp_path / "b.jsonl")]) == 0
    assert main(["read", str(tmp_path / "missing.pdf")]) == 2
    assert main(["read", str(tmp_path / "scan.pdf"), "--mode", "caption", "--dpi", "5"]) == 2
    monkeypatch.delenv("DASHSCOPE_API_KEY")
    capsys.readouterr()
    assert main(["read", str(tmp_path / "scan.pdf")]) == 2
    assert "no DashScope API key" in capsys.readouterr().err


def test_read_entry_point_takes_the_words_after_read(keyed, tmp_path, capsys):
    from qwen_vl_cli.read import main as read_main

    make_pdf(tmp_path / "scan.pdf", 1)
    keyed.responder = PageResponder()
    argv = [str(tmp_path / "scan.pdf"), "--dpi", "72", "--base-url", keyed.url, "--out", str(tmp_path / "n.jsonl")]
    assert read_main(argv) == 0 and read_main(["read", *argv]) == 0
    assert len((tmp_path / "n.jsonl").read_text().splitlines()) == 1


def test_read_hands_its_options_to_the_reader(monkeypatch, tmp_path, capsys):
    import llama_index_qwen_vl

    seen: dict = {}

    class FakeReader:
        failures: list = []

        def __init__(self, **kwargs):
            seen["kwargs"] = kwargs
            self.client = type("C", (), {"api_key": type("K", (), {"get_secret_value": lambda self: KEY})()})()

        def lazy_load_data(self, paths):
            seen["paths"] = paths
            yield Document(text=f"the key is {KEY}")

    monkeypatch.setattr(llama_index_qwen_vl, "QwenVLReader", FakeReader)
    (tmp_path / "a.png").write_bytes(image_bytes())
    out = tmp_path / "nodes.jsonl"
    code, _, err = call(
        capsys, "read", str(tmp_path / "a.png"), "--mode", "ocr", "--out", str(out), "--workers", "3",
        "--cache-dir", "c", "--on-error", "skip", "--max-tokens", "99", "--no-recursive", "--progress",
        "--region", "singapore", "--base-url", "http://127.0.0.1:1/v1", "--workspace", "ws", "--timeout", "7",
        "--max-retries", "5", "--model", "qwen3-vl-flash", "--prompt", "Read it.", "--dpi", "96",
    )  # fmt: skip
    assert code == 0, err
    assert seen["paths"] == [str(tmp_path / "a.png")]
    assert seen["kwargs"] == {
        "api_key": None, "region": "singapore", "base_url": "http://127.0.0.1:1/v1", "workspace": "ws",
        "timeout": 7.0, "model": "qwen3-vl-flash", "mode": "ocr", "prompt": "Read it.", "dpi": 96.0,
        "num_workers": 3, "cache_dir": "c", "on_error": "skip", "max_tokens": 99, "recursive": False,
        "show_progress": True, "max_retries": 5,
    }  # fmt: skip
    # Output goes through the command's scrubbing console, file or stdout.
    assert KEY not in out.read_text() and "the key is ***" in out.read_text()
    assert err == f"qwen-vl: 1 document(s) written to {out}; 0 page(s) failed\n"


def test_read_modes_are_the_readers():
    from llama_index_qwen_vl import QwenVLReader

    assert set(MODES) == set(typing.get_args(QwenVLReader.model_fields["mode"].annotation))


# ---------------------------------------------------------------- errors: one line, exit 2, the key never shows


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "the following arguments are required: PATH"),
        (["a.png", "--mode", "poem"], "invalid choice: 'poem'"),
        (["a.png", "--workers", "0"], "must be at least 1, got 0"),
        (["a.png", "--workers", "many"], "invalid int value: 'many'"),
        (["a.png", "--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["a.png", "--progress", "--no-progress"], "not allowed with argument"),
    ],
    ids=["no-path", "bad-mode", "zero-workers", "bad-workers", "unknown-flag", "progress-both"],
)
def test_read_usage_errors_are_one_line_pointing_at_read_help(dashscope, capsys, argv, message):
    code, out, err = call(capsys, "read", *argv)
    assert code == 2 and out == ""
    assert err.startswith("qwen-vl: error: ") and err.endswith(" (see 'qwen-vl read --help')\n") and err.count("\n") == 1
    assert message in err
    assert dashscope.requests == []


def test_read_help_lists_the_shared_connection_flags(capsys):
    code, out, _ = call(capsys, "read", "--help")
    assert code == 0
    for flag in ("--mode", "--cache-dir", "--on-error", "--region", "--base-url", "--workspace", "--api-key-env",
                 "--timeout", "--max-retries", "caption+ocr"):  # fmt: skip
        assert flag in out
    code, out, _ = call(capsys, "--help")
    assert code == 0 and "read" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["missing.png"], "no such file or directory: missing.png"),
        (["page.png", "--api-key-env", "NO_SUCH_VAR"], "--api-key-env NO_SUCH_VAR: the environment variable NO_SUCH_VAR is not set"),
        (["page.png", "--timeout", "0"], "--timeout must be positive, got 0.0"),
        (["page.png", "--dpi", "5"], "greater than or equal to 18"),
        (["page.png", "--out", "no/such/dir/nodes.jsonl"], "cannot write the output file 'no/such/dir/nodes.jsonl'"),
    ],
    ids=["missing-path", "key-env-unset", "bad-timeout", "bad-dpi", "unwritable-out"],
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
    keyed.script(Json(error_body(f"Incorrect API key provided: {KEY}", "invalid_api_key"), 401))
    code, out, err = call(capsys, "read", str(tmp_path / "page.png"), "--base-url", keyed.url, "--max-retries", "0")
    assert code == 3
    assert "qwen-vl: error: AuthenticationError: Incorrect API key provided: ***" in err
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


def test_read_without_the_extra_explains_how_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "llama_index.core", None)  # not installed
    code, out, err = call(capsys, "read", "a.pdf")
    assert code == 2
    assert err == f"qwen-vl: error: {MISSING_EXTRA}\n"
    assert MISSING_EXTRA == "qwen-vl read needs the llama-index extra: pip install 'qwen-vl-integrations[llama-index]'"


def test_read_pdf_without_pypdfium2_names_the_pdf_extra(keyed, monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "pypdfium2", None)  # not installed
    (tmp_path / "docs").mkdir()
    make_pdf(tmp_path / "docs" / "scan.pdf", 1)
    (tmp_path / "renamed.bin").write_bytes((tmp_path / "docs" / "scan.pdf").read_bytes())
    expected = "qwen-vl: error: qwen-vl read needs the pdf extra to read PDFs: pip install 'qwen-vl-integrations[pdf]'\n"
    for target in ("docs/scan.pdf", "docs", "renamed.bin"):  # by name, in a directory, by content
        code, _, err = call(capsys, "read", str(tmp_path / target), "--base-url", keyed.url)
        assert (code, err) == (2, expected), target
    assert keyed.requests == []


def test_read_images_need_no_pdf_extra(keyed, monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "pypdfium2", None)
    (tmp_path / "page.png").write_bytes(image_bytes())
    keyed.script(Json(completion("an image")))
    code, out, err = call(capsys, "read", str(tmp_path), "--base-url", keyed.url, "--no-progress")
    assert code == 0, err
    assert [Document.from_dict(json.loads(line)).text for line in out.splitlines()] == ["an image"]


def test_both_extras_missing_are_named_together(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "llama_index.core", None)
    monkeypatch.setitem(sys.modules, "pypdfium2", None)
    code, _, err = call(capsys, "read", "a.pdf")
    assert code == 2
    assert err == "qwen-vl: error: qwen-vl read needs the llama-index and pdf extras: pip install 'qwen-vl-integrations[llama-index,pdf]'\n"
    assert err == f"qwen-vl: error: {missing_extra_message(['llama-index', 'pdf'])}\n"
