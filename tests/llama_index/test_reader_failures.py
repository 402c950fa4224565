"""Nothing lost: a 50-page PDF with injected failures under both error policies (sync and async),
errors that stop a run, answers cut short, files that cannot be read."""

from __future__ import annotations

import logging

import pytest
from tests.support.llama_index import (
    KEY,
    Json,
    PageResponder,
    bad_request,
    completion,
    error_body,
    image_bytes,
    make_pdf,
    server_error,
)

from llama_index_qwen_vl import IncompleteAnswerError, QwenVLReader, QwenVLReaderError
from qwen_vl_core import AuthenticationError, BadRequestError, ContentModerationError, ServerError

PAGES = 50
FAILING = {7: server_error, 23: bad_request, 41: server_error, 50: server_error}
GOOD = [n for n in range(1, PAGES + 1) if n not in FAILING]


def make_reader(dashscope, **kwargs) -> QwenVLReader:
    kwargs.setdefault("num_workers", 8)
    return QwenVLReader(api_key=KEY, base_url=dashscope.url, max_retries=0, dpi=72, **kwargs)


@pytest.fixture(scope="module")
def big_pdf(tmp_path_factory):
    return make_pdf(tmp_path_factory.mktemp("pdf") / "fifty.pdf", PAGES)


def check_raised(info: pytest.ExceptionInfo, dashscope, path) -> None:
    err = info.value
    assert isinstance(err, QwenVLReaderError)
    assert [d.metadata["page_label"] for d in err.documents] == [str(n) for n in GOOD]
    assert [d.text for d in err.documents] == [f"text of page {n}" for n in GOOD]
    assert [(f.file, f.page) for f in err.failures] == [(str(path), n) for n in sorted(FAILING)]
    kinds = {f.page: type(f.error) for f in err.failures}
    assert kinds == {7: ServerError, 23: ContentModerationError, 41: ServerError, 50: ServerError}
    assert issubclass(kinds[23], BadRequestError)
    assert all(f.error.request_id for f in err.failures)  # every error names its request
    assert sorted(dashscope_pages(dashscope)) == list(range(1, PAGES + 1))  # every page was tried
    assert "4 of 50 page(s) failed" in str(err) and "page 7: ServerError" in str(err)
    assert err.fatal is None


def dashscope_pages(dashscope) -> list[int]:
    from tests.support.llama_index import page_number

    return [page_number(r) for r in dashscope.chat_requests]


def test_raise_policy_finishes_the_other_pages_then_raises(dashscope, big_pdf):
    dashscope.responder = PageResponder(fail=FAILING)
    reader = make_reader(dashscope)
    with pytest.raises(QwenVLReaderError) as info:
        reader.load_data(big_pdf)
    check_raised(info, dashscope, big_pdf)
    assert [f.page for f in reader.failures] == sorted(FAILING)


async def test_raise_policy_async(dashscope, big_pdf):
    dashscope.responder = PageResponder(fail=FAILING)
    with pytest.raises(QwenVLReaderError) as info:
        await make_reader(dashscope).aload_data(big_pdf)
    check_raised(info, dashscope, big_pdf)


def test_skip_policy_logs_and_records_failures(dashscope, big_pdf, caplog):
    caplog.set_level(logging.WARNING, logger="llama_index_qwen_vl")
    dashscope.responder = PageResponder(fail=FAILING)
    reader = make_reader(dashscope, on_error="skip")
    docs = reader.load_data(big_pdf)
    assert [d.text for d in docs] == [f"text of page {n}" for n in GOOD]
    assert [(f.page, type(f.error).__name__) for f in reader.failures] == [
        (7, "ServerError"), (23, "ContentModerationError"), (41, "ServerError"), (50, "ServerError"),
    ]  # fmt: skip
    assert caplog.text.count("QwenVLReader: ") == 4 and "fifty.pdf page 23 failed" in caplog.text
    assert KEY not in caplog.text
    for doc in docs:  # an error message never becomes Document text
        assert "overloaded" not in doc.text and "inappropriate" not in doc.text


async def test_skip_policy_async(dashscope, big_pdf):
    dashscope.responder = PageResponder(fail=FAILING)
    reader = make_reader(dashscope, on_error="skip")
    docs = await reader.aload_data(big_pdf)
    assert [d.metadata["page_label"] for d in docs] == [str(n) for n in GOOD]
    assert [f.page for f in reader.failures] == sorted(FAILING)
    assert [f.to_dict()["status"] for f in reader.failures] == [500, 400, 500, 500]


def test_retries_go_through_the_core(dashscope, tmp_path):
    path = make_pdf(tmp_path / "doc.pdf", 2)
    from qwen_vl_core import QwenVLClient

    dashscope.script(server_error())  # the first request fails once, its retry succeeds
    client = QwenVLClient(api_key=KEY, base_url=dashscope.url, max_retries=1, retry_initial_delay=0.01)
    reader = QwenVLReader(client=client, dpi=72, num_workers=1)
    reader_docs = reader.load_data(path)
    assert len(reader_docs) == 2 and reader.failures == []
    assert len(dashscope.chat_requests) == 3


@pytest.mark.parametrize("policy", ["raise", "skip"])
def test_an_error_that_would_fail_every_page_stops_the_run(dashscope, big_pdf, policy):
    dashscope.responder = lambda rec: Json(error_body("Incorrect API key provided.", "invalid_api_key"), 401)
    reader = make_reader(dashscope, on_error=policy, num_workers=2)
    with pytest.raises(QwenVLReaderError) as info:
        reader.load_data(big_pdf)
    assert isinstance(info.value.fatal, AuthenticationError)
    assert isinstance(info.value.__cause__, AuthenticationError)
    assert len(dashscope.chat_requests) <= 4  # not 50 doomed requests
    assert "would fail every page" in str(info.value)


async def test_fatal_error_async(dashscope, big_pdf):
    dashscope.responder = lambda rec: Json(error_body("Model not exist.", "model_not_found"), 404)
    with pytest.raises(QwenVLReaderError) as info:
        await make_reader(dashscope, num_workers=3).aload_data(big_pdf)
    assert info.value.fatal.status == 404
    assert len(dashscope.chat_requests) <= 6


def test_an_answer_cut_short_is_a_failure_not_a_document(dashscope, tmp_path):
    path = make_pdf(tmp_path / "doc.pdf", 2)
    dashscope.script(
        Json(completion("half a pa", finish_reason="length")),
        Json(completion("partial"), headers={"x-dashscope-partialresponse": "true"}),
    )
    reader = make_reader(dashscope, on_error="skip", num_workers=1)
    assert reader.load_data(path) == []
    errors = [f.error for f in reader.failures]
    assert all(isinstance(e, IncompleteAnswerError) for e in errors)
    assert "max_tokens" in str(errors[0]) and "partial" in str(errors[1])


def test_unreadable_inputs_are_failures_and_nothing_is_sent_for_them(dashscope, tmp_path):
    (tmp_path / "anim.gif").write_bytes(image_bytes(fmt="GIF"))
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (tmp_path / "ok.png").write_bytes(image_bytes())
    tiny = tmp_path / "tiny.png"
    tiny.write_bytes(image_bytes(size=(8, 8)))
    reader = make_reader(dashscope, on_error="skip")
    files = [tmp_path / "anim.gif", tmp_path / "broken.pdf", tmp_path / "missing.png", tiny, tmp_path / "ok.png"]
    docs = reader.load_data(files)
    assert [d.metadata["file_name"] for d in docs] == ["ok.png"]
    failures = {f.file.rsplit("/", 1)[-1]: (f.page, f.message) for f in reader.failures}
    assert failures["anim.gif"][1].startswith("InputValidationError") and "GIF" in failures["anim.gif"][1]
    assert failures["broken.pdf"][0] is None  # the whole file
    assert "No such file" in failures["missing.png"][1] or "no such file" in failures["missing.png"][1].lower()
    assert "more than 10 px" in failures["tiny.png"][1]
    assert len(dashscope.chat_requests) == 1
    with pytest.raises(QwenVLReaderError) as info:
        make_reader(dashscope).load_data(files)
    assert len(info.value.failures) == 4 and len(info.value.documents) == 1


def test_reader_error_pickles_with_its_payload(dashscope, tmp_path):
    import pickle

    path = make_pdf(tmp_path / "doc.pdf", 2)
    dashscope.responder = PageResponder(fail={2: server_error})
    with pytest.raises(QwenVLReaderError) as info:
        make_reader(dashscope).load_data(path)
    clone = pickle.loads(pickle.dumps(info.value))
    assert [d.text for d in clone.documents] == ["text of page 1"]
    assert clone.failures[0].page == 2 and str(clone) == str(info.value)


async def test_concurrent_loads_on_one_reader_collect_all_failures(dashscope, tmp_path):
    import asyncio

    a = make_pdf(tmp_path / "a.pdf", 3)
    b = make_pdf(tmp_path / "b.pdf", 3)
    dashscope.responder = PageResponder(fail={2: server_error})
    reader = make_reader(dashscope, on_error="skip", num_workers=2)
    docs_a, docs_b = await asyncio.gather(reader.aload_data(a), reader.aload_data(b))
    assert len(docs_a) == len(docs_b) == 2
    assert sorted((f.file, f.page) for f in reader.failures) == [(str(a), 2), (str(b), 2)]
    await reader.aload_data(make_pdf(tmp_path / "c.pdf", 1))  # a new load starts a new list
    assert reader.failures == []


def test_progress_bar_and_secrecy(dashscope, tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    path = make_pdf(tmp_path / "doc.pdf", 3)
    dashscope.responder = PageResponder(fail={3: server_error})
    reader = make_reader(dashscope, show_progress=True, on_error="skip")
    assert len(reader.load_data(path)) == 2
    err = capsys.readouterr().err
    assert "Reading pages: 3page" in err
    for text in (repr(reader), str(reader), reader.to_json(), caplog.text, err, str(reader.failures)):
        assert KEY not in text


def test_local_file_policy_applies_to_reader_inputs(dashscope, tmp_path):
    inside = tmp_path / "inside"
    inside.mkdir()
    ok = make_pdf(inside / "ok.pdf", 1)
    other = make_pdf(tmp_path / "other.pdf", 1)
    reader = make_reader(dashscope, on_error="skip", allowed_dirs=[str(inside)])
    docs = reader.load_data([ok, other])
    assert [d.metadata["file_name"] for d in docs] == ["ok.pdf"]
    assert reader.failures[0].file == str(other) and "outside the allowed directories" in reader.failures[0].message
    assert len(dashscope.chat_requests) == 1
