"""The Ray path's two stages and its rows, run in this process without Ray: files to page rows,
page rows to result rows through one long-lived actor object, and rows back to Documents."""

from __future__ import annotations

import json
import pickle

import pytest

pytest.importorskip("pyarrow")

import pyarrow as pa  # noqa: E402

from qwen_vl_core.documents.ray_data.stages import PageReader, ReadSpec, expand_file  # noqa: E402
from qwen_vl_core.documents.rows import ROW_COLUMNS, row_document, row_failure, rows_table  # noqa: E402
from tests.fake_dashscope import Json, error_body  # noqa: E402
from tests.ray import _support  # noqa: E402


def spec_for(server, **kwargs) -> ReadSpec:
    settings = {"model": "qwen3-vl-plus", "mode": "ocr", "client": {"base_url": server.url, "max_retries": 0},
                "in_flight": 4, "chunk_pages": 3}
    settings.update(kwargs)
    return ReadSpec(**settings)


@pytest.fixture
def keyed(monkeypatch, api_key):
    monkeypatch.setenv("DASHSCOPE_API_KEY", api_key)  # what runtime_env gives a worker


def test_files_become_page_rows_without_bytes_and_byte_rows_in_chunks(tmp_path, dashscope):
    spec = spec_for(dashscope)
    path = _support.pdf(tmp_path / "a.pdf", 1, 7)
    rows = expand_file({"path": str(path)}, spec)
    assert [(r["first"], r["count"], r["total"]) for r in rows] == [(n, 1, 7) for n in range(1, 8)]
    assert all("data" not in r and r["failure"] == "" and r["source"] == str(path) for r in rows)
    data = path.read_bytes()
    rows = expand_file({"path": "bucket/a.pdf", "bytes": data}, spec)
    assert [(r["first"], r["count"]) for r in rows] == [(1, 3), (4, 3), (7, 1)]
    assert all(r["data"] == data and r["source"] == "bucket/a.pdf" for r in rows)
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.7 not really")
    [bad] = expand_file({"path": str(tmp_path / "bad.pdf")}, spec)
    failure = json.loads(bad["failure"])
    assert failure["error_type"] == "InputValidationError" and failure["page"] is None
    assert "cannot be opened" in failure["error_message"]


def _batch(rows):
    return pa.Table.from_pylist(rows)


def test_the_reader_answers_each_page_once_on_one_loop_and_keeps_failures(tmp_path, dashscope, keyed):
    pages = _support.Pages(fail=lambda f, p, a: Json(error_body("bad page", "invalid_parameter"), 400)
                           if (f, p) == (1, 2) else None)  # fmt: skip
    dashscope.responder = pages
    spec = spec_for(dashscope)
    path = _support.pdf(tmp_path / "a.pdf", 1, 4)
    image = _support.png(tmp_path / "b.png", 2)
    reader = PageReader(spec)
    out = []
    for rows in (expand_file({"path": str(path)}, spec), expand_file({"path": str(image)}, spec)):
        out.extend(reader(_batch(rows)).to_pylist())
    loop = reader._loop
    reader(_batch(expand_file({"path": str(image)}, spec)))
    assert reader._loop is loop and loop.is_running()  # one loop (and one pool) for the actor's life
    assert len(pages.seen) == 5 and pages.seen[(2, 1)] == 2 and sum(pages.seen.values()) == 6
    by_page = {(r["source"], r["page"]): r for r in out}
    assert by_page[(str(path), 2)]["error_type"] == "BadRequestError"
    assert by_page[(str(path), 2)]["text"] is None and by_page[(str(path), 2)]["error_status"] == 400
    for n in (1, 3, 4):
        row = by_page[(str(path), n)]
        assert (row["text"], row["error_type"], row["image_tokens"], row["total_pages"]) == \
            (_support.answer(1, n), None, 100, 4)
    assert by_page[(str(image), 1)]["text"] == _support.answer(2, 1)
    assert list(reader(_batch(expand_file({"path": str(image)}, spec))).schema.names) == list(ROW_COLUMNS)


def test_byte_rows_and_listing_failures_pass_through(tmp_path, dashscope, keyed):
    dashscope.responder = _support.Pages()
    spec = spec_for(dashscope, chunk_pages=2)
    data = _support.pdf(tmp_path / "a.pdf", 1, 3).read_bytes()
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.7 broken")
    rows = expand_file({"path": "s3/a.pdf", "bytes": data}, spec)
    bad = expand_file({"path": str(tmp_path / "bad.pdf")}, spec)
    reader = PageReader(spec)
    out = reader(_batch(rows)).to_pylist() + reader(_batch(bad)).to_pylist()
    assert [(r["source"], r["page"], r["text"]) for r in out[:3]] == \
        [("s3/a.pdf", n, _support.answer(1, n)) for n in (1, 2, 3)]
    assert out[3]["page"] is None and out[3]["error_type"] == "InputValidationError"


def test_after_a_fatal_error_the_actor_sends_nothing_more(tmp_path, dashscope, keyed):
    dashscope.responder = lambda rec: Json(error_body("Invalid API-key provided.", "invalid_api_key"), 401)
    spec = spec_for(dashscope, in_flight=1)
    path = _support.pdf(tmp_path / "a.pdf", 1, 3)
    out = PageReader(spec)(_batch(expand_file({"path": str(path)}, spec))).to_pylist()
    assert len(dashscope.chat_requests) == 1
    assert [r["error_type"] for r in out] == ["AuthenticationError"] * 3
    assert [r["error_message"].startswith("not sent: ") for r in out] == [False, True, True]


def test_without_a_key_the_first_batch_raises_a_clear_error(tmp_path, dashscope):
    spec = spec_for(dashscope)
    reader = PageReader(spec)
    with pytest.raises(Exception, match="DASHSCOPE_API_KEY"):
        reader(_batch(expand_file({"path": str(_support.png(tmp_path / "a.png", 1))}, spec)))


def test_settings_pickle_without_any_key(dashscope, api_key, monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", api_key)
    spec = spec_for(dashscope)
    assert api_key.encode() not in pickle.dumps(spec)
    from qwen_vl_core.documents.ray_data import read_pages

    with pytest.raises(ValueError, match="never travels inside a pickled object"):
        read_pages("x.pdf", client={"api_key": api_key})


def test_rows_round_trip_to_documents_for_both_frameworks():
    ok = {"source": "scans/a.pdf", "page": 2, "total_pages": 3, "mode": "ocr", "model": "qwen3-vl-plus",
          "text": "hello", "input_tokens": 110, "image_tokens": 100, "output_tokens": 4, "request_id": "r1",
          "cached": False, "page_path": "embedded", "width": 224, "height": 384, "sha256": "ab",
          "seconds": 0.1, "error_type": None, "error_message": None, "error_status": None, "error_code": None}
    failed = dict(ok, page=3, text=None, error_type="RateLimitError", error_message="slow down",
                  error_status=429, error_code="Throttling", request_id="r2")
    table = rows_table([ok, failed])
    doc_id, text, meta = row_document(table.to_pylist()[0])
    assert (doc_id, text, meta["page_label"], meta["file_name"], meta["image_tokens"]) == \
        ("scans/a.pdf#page=2", "hello", "2", "a.pdf", 100)
    failure = row_failure(failed)
    assert failure is not None and failure.page == 3
    assert (type(failure.error).__name__, failure.error.status, failure.error.code) == ("RateLimitError", 429, "Throttling")
    assert row_failure(ok) is None

    pytest.importorskip("langchain_core")
    pytest.importorskip("llama_index.core")
    from langchain_qwen_vl import DocumentReadError, documents_from_rows as lc_documents
    from llama_index_qwen_vl import documents_from_rows as li_documents

    [lc] = lc_documents([ok, failed], on_error="skip")
    assert (lc.page_content, lc.metadata["source"], lc.metadata["page"], lc.id) == \
        ("hello", "scans/a.pdf", 1, "scans/a.pdf#page=2")
    with pytest.raises(DocumentReadError) as info:
        lc_documents(table)
    assert len(info.value.documents) == 1 and info.value.failures[0].where() == "scans/a.pdf page 3"
    [li] = li_documents(table.to_pandas(), on_error="skip")
    assert (li.id_, li.text, li.metadata["page_label"]) == ("scans/a.pdf#page=2", "hello", "2")


def test_files_on_a_pyarrow_or_fsspec_filesystem(tmp_path, dashscope, keyed):
    import pyarrow.fs as pafs

    from qwen_vl_core.documents.ray_data.read import _filesystem

    fs, paths = _filesystem(pafs.LocalFileSystem(), [str(tmp_path)])
    assert type(fs).__name__ == "ArrowFSWrapper" and paths == [str(tmp_path)]
    assert _filesystem(None, ["file://" + str(tmp_path)]) == (None, [str(tmp_path)])
    fs2, path2 = _filesystem(None, "memory://bucket/scans")
    assert type(fs2).__name__ == "MemoryFileSystem" and path2 == "/bucket/scans"
    with pytest.raises(ValueError, match="mix local paths and remote URLs"):
        _filesystem(None, ["a.pdf", "s3://bucket/b.pdf"])

    dashscope.responder = _support.Pages()
    path = _support.pdf(tmp_path / "f1.pdf", 1, 2)
    spec = spec_for(dashscope, filesystem=fs)  # pages read through the filesystem, not open()
    rows = expand_file({"path": str(path)}, spec)
    out = PageReader(spec)(_batch(rows)).to_pylist()
    assert [(r["page"], r["text"]) for r in out] == [(1, _support.answer(1, 1)), (2, _support.answer(1, 2))]
