"""The framework-free document pipeline (qwen_vl_core.documents) over the local DashScope server:
which pages are passed through and which rendered, records, failures, cache, ordering, progress."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import pickle
import time

import pypdfium2
import pytest

from qwen_vl_core import QwenVLClient
from qwen_vl_core.documents import (
    DocumentPipeline,
    DocumentReadError,
    EmptyAnswerError,
    ImageItem,
    PageResult,
    ResultCache,
)
from qwen_vl_core.documents.pdf import load_pdf_page
from qwen_vl_core.tokens import image_pixel_bounds
from tests.fake_dashscope import Json, completion
from tests.support.llama_index import (
    KEY,
    PageResponder,
    image_bytes,
    make_pdf,
    make_tiff,
    page_number,
    sent_images,
    server_error,
    user_content,
)
from tests.support.pdfs import empty_pdf, jpeg_bytes, jpeg_page_pdf, vector_pdf

BUDGET = image_pixel_bounds("qwen3-vl-plus")[2]


def make_pipeline(dashscope, **kwargs) -> DocumentPipeline:
    client = QwenVLClient(api_key=KEY, base_url=dashscope.url, max_retries=0)
    return DocumentPipeline(client, **kwargs)


# ---------------------------------------------------------------- which path a PDF page takes


@pytest.mark.parametrize(
    ("case", "kwargs", "path"),
    [
        ("one full-page JPEG", {}, "embedded"),
        ("a text layer too", {"extra": b"BT /F1 12 Tf 10 10 Td (hi) Tj ET\n"}, "rendered"),
        ("two images", {"second_image": True}, "rendered"),
        ("a rotated page", {"rotate": 90}, "rendered"),
        ("an image not covering the page", {"page_pt": (600, 800), "rect": (100, 100, 400, 560)}, "rendered"),
    ],
)
def test_scanned_page_passthrough_only_when_it_is_what_rendering_would_send(tmp_path, case, kwargs, path):
    jpeg = jpeg_bytes((400, 560))
    pdf = pypdfium2.PdfDocument(str(jpeg_page_pdf(tmp_path / "p.pdf", jpeg, (400, 560), **kwargs)))
    page = load_pdf_page(pdf, 0, BUDGET, None)
    assert page.path == path, case
    if path == "embedded":
        assert page.data == jpeg and (page.width, page.height) == (400, 560)
    else:
        assert page.data is None and page.width * page.height <= BUDGET
        if kwargs.get("rotate"):
            assert page.width > page.height  # the page as displayed
    pdf.close()


def test_a_scan_over_the_budget_or_above_the_dpi_cap_is_rendered(tmp_path):
    jpeg = jpeg_bytes((400, 560))
    pdf = pypdfium2.PdfDocument(str(jpeg_page_pdf(tmp_path / "p.pdf", jpeg, (400, 560))))
    assert load_pdf_page(pdf, 0, 300 * 400, None).path == "rendered"  # the model looks at fewer pixels
    low = load_pdf_page(pdf, 0, BUDGET, 36)  # the page is 400 pt wide: 36 dpi is 200 px
    assert (low.path, low.width) == ("rendered", 200)
    pdf.close()


def test_rendered_pages_fit_the_budget_of_each_option(dashscope, tmp_path):
    path = vector_pdf(tmp_path / "v.pdf", 1)
    for options in ({}, {"max_pixels": 1_000_000}, {"high_resolution": True}):
        budget = image_pixel_bounds("qwen3-vl-plus", **options)[2]
        (result,) = make_pipeline(dashscope, options=options).results(path)
        assert result.ok and result.path == "rendered"
        (sent,) = sent_images(dashscope.chat_requests[-1])
        assert sent.size == (result.width, result.height)
        assert sent.width * sent.height <= budget
        if not options.get("high_resolution"):
            assert sent.width * sent.height > 0.97 * budget  # rendered at the budget, not below it


# ---------------------------------------------------------------- records and failures


def test_records_carry_page_facts_and_serialize(dashscope, tmp_path):
    dashscope.responder = PageResponder()
    results = list(make_pipeline(dashscope, mode="ocr").results(make_pdf(tmp_path / "doc.pdf", 2)))
    assert [(r.page, r.total_pages, r.text, r.path) for r in results] == [
        (1, 2, "text of page 1", "embedded"), (2, 2, "text of page 2", "embedded"),
    ]  # fmt: skip
    record = results[0].to_dict()
    assert record["id"] == f"{tmp_path / 'doc.pdf'}#page=1" and record["text"] == "text of page 1"
    meta = record["metadata"]
    assert meta["page_label"] == "1" and meta["file_name"] == "doc.pdf" and meta["mode"] == "ocr"
    assert meta["request_id"] and meta["input_tokens"] > 0 and meta["seconds"] >= 0
    json.dumps(record)  # plain data


def test_bytes_inputs_and_tiff_frames(dashscope, tmp_path):
    dashscope.responder = lambda rec: Json(completion(f"{sent_images(rec)[0].height} px high"))
    pdf_bytes = make_pdf(tmp_path / "doc.pdf", 2).read_bytes()
    results = list(make_pipeline(dashscope).results([pdf_bytes, image_bytes("x"), make_tiff(tmp_path / "t.tif", 2)]))
    assert [(r.source, r.page, r.kind) for r in results] == [
        ("<bytes 1>", 1, "pdf"), ("<bytes 1>", 2, "pdf"), ("<bytes 2>", 1, "image"),
        (str(tmp_path / "t.tif"), 1, "tiff"), (str(tmp_path / "t.tif"), 2, "tiff"),
    ]  # fmt: skip
    assert all(r.ok for r in results) and results[3].path == "frame"


def test_empty_answers_fail_the_page_and_are_never_cached(dashscope, tmp_path):
    dashscope.responder = lambda rec: Json(completion(""))
    cache = tmp_path / "cache"
    pipeline = make_pipeline(dashscope, cache_dir=str(cache), on_error="skip")
    (result,) = pipeline.results(image_bytes())
    assert isinstance(result.error, EmptyAnswerError) and "not cached" in str(result.error)
    assert len(ResultCache(cache)) == 0
    dashscope.responder = lambda rec: Json(completion("now it speaks"))
    (result,) = make_pipeline(dashscope, cache_dir=str(cache)).results(image_bytes())
    assert result.text == "now it speaks" and len(dashscope.chat_requests) == 2
    (again,) = make_pipeline(dashscope, cache_dir=str(cache)).results(image_bytes())
    assert again.cached and again.text == "now it speaks" and len(dashscope.chat_requests) == 2


def test_read_keeps_successes_and_lists_each_failure(dashscope, tmp_path):
    dashscope.responder = PageResponder(fail={2: server_error})
    failures: list = []
    pipeline = make_pipeline(dashscope)
    got = []
    with pytest.raises(DocumentReadError) as info:
        for item in pipeline.read(make_pdf(tmp_path / "d.pdf", 3), lambda r: [r.text], failures=failures):
            got.append(item)
    assert got == ["text of page 1", "text of page 3"] == info.value.documents
    assert [(f.page, type(f.error).__name__) for f in failures] == [(2, "ServerError")]
    assert info.value.failures == failures and info.value.status == 500
    restored = pickle.loads(pickle.dumps(info.value))
    assert restored.documents == got and str(restored) == str(info.value)


def test_bad_files_are_failures_named_by_the_input(dashscope, tmp_path):
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7\nnot really")
    empty_pdf(tmp_path / "empty.pdf")
    results = list(make_pipeline(dashscope, on_error="skip").results(
        [tmp_path / "broken.pdf", tmp_path / "empty.pdf", tmp_path / "missing.png"]
    ))  # fmt: skip
    messages = [str(r.error) for r in results]
    assert all(r.page is None for r in results)
    assert "broken.pdf' cannot be opened" in messages[0] and "damaged or not a PDF" in messages[0]
    assert "empty.pdf'" in messages[1] and ("has no pages" in messages[1] or "cannot be opened" in messages[1])
    assert "no such file" in messages[2]
    assert dashscope.chat_requests == []


def test_unknown_options_and_policies_are_refused_before_anything_runs(dashscope):
    with pytest.raises(ValueError, match="unknown page option"):
        make_pipeline(dashscope, options={"temprature": 0.2})
    with pytest.raises(ValueError, match="on_error"):
        make_pipeline(dashscope, on_error="ignore")


def test_failures_are_logged_with_the_callers_name(dashscope, caplog):
    dashscope.responder = lambda rec: server_error()
    with caplog.at_level(logging.WARNING):
        list(make_pipeline(dashscope, on_error="skip", name="MyLoader").results(image_bytes()))
    assert "MyLoader: <bytes> page 1 failed: ServerError" in caplog.text


# ---------------------------------------------------------------- ordering, progress, processes


async def test_async_results_come_in_page_order_whatever_finishes_first(dashscope, tmp_path):
    def slow_first(rec):
        n = page_number(rec)
        time.sleep(0.3 if n == 1 else 0.01)
        return Json(completion(f"text of page {n}"))

    dashscope.responder = slow_first
    pipeline = make_pipeline(dashscope, num_workers=4)
    seen = [r.page async for r in pipeline.aresults(make_pdf(tmp_path / "d.pdf", 6))]
    assert seen == [1, 2, 3, 4, 5, 6]


def test_progress_is_called_once_per_page_failures_included(dashscope, tmp_path):
    dashscope.responder = PageResponder(fail={3: server_error})
    seen: list[PageResult] = []
    pipeline = make_pipeline(dashscope, on_error="skip", progress=seen.append)
    list(pipeline.results(make_pdf(tmp_path / "d.pdf", 4)))
    assert [(r.page, r.ok) for r in seen] == [(1, True), (2, True), (3, False), (4, True)]


def test_render_processes_give_the_same_pages_as_threads(dashscope, tmp_path, monkeypatch):
    from qwen_vl_core.documents import prepare

    started: list[int] = []
    real = prepare._start_pool
    monkeypatch.setattr(prepare, "_start_pool", lambda workers: started.append(workers) or real(workers))
    monkeypatch.setattr(prepare.RenderProcesses, "_shared", {})
    path = vector_pdf(tmp_path / "v.pdf", 3)
    threads = list(make_pipeline(dashscope, processes=0).results(path))
    procs = list(make_pipeline(dashscope, processes=2, num_workers=2).results(path))
    again = list(make_pipeline(dashscope, processes=2, num_workers=2).results(path))
    assert started == [2]  # one pool for the process, reused by the second pipeline
    assert [r.sha256 for r in again] == [r.sha256 for r in threads]
    for pool in prepare.RenderProcesses._shared.values():
        pool._shutdown()
    assert [r.sha256 for r in procs] == [r.sha256 for r in threads] and all(r.path == "rendered" for r in procs)


def test_auto_processes_stay_off_for_small_and_scanned_pdfs(dashscope, tmp_path, monkeypatch):
    from qwen_vl_core.documents import prepare

    monkeypatch.setattr(prepare, "_start_pool", lambda workers: pytest.fail("no pool for a small job"))
    list(make_pipeline(dashscope, num_workers=4).results(vector_pdf(tmp_path / "v.pdf", 2)))
    list(make_pipeline(dashscope, num_workers=4).results(make_pdf(tmp_path / "scan.pdf", 3)))


# ---------------------------------------------------------------- single images (the captioner's path)


def test_image_items_one_page_each_with_known_answers_skipped(dashscope, tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(image_bytes("a"))
    pipeline = make_pipeline(dashscope, mode="caption")
    items = [ImageItem(str(path), "a.png", job="A"), ImageItem("https://example.com/b.jpg", "b", job="B")]
    first = list(pipeline.image_results(items))
    assert [(r.job, r.ok, r.path) for r in first] == [("A", True, "file"), ("B", True, "url")]
    urls = [user_content(json.loads(r.body))[0]["image_url"]["url"] for r in dashscope.chat_requests]
    assert "https://example.com/b.jpg" in urls  # passed by URL, never downloaded
    again = list(pipeline.image_results([ImageItem(str(path), "a.png", known_key=first[0].cache_key)]))
    assert again[0].ok and again[0].text is None and len(dashscope.chat_requests) == 2  # nothing sent


def test_image_item_paths_obey_the_file_policy(dashscope, tmp_path):
    outside = tmp_path / "outside.png"
    outside.write_bytes(image_bytes())
    (tmp_path / "in").mkdir()
    client = QwenVLClient(api_key=KEY, base_url=dashscope.url, allowed_dirs=[tmp_path / "in"])
    (result,) = DocumentPipeline(client, on_error="skip").image_results([ImageItem(str(outside), "x")])
    assert "outside the allowed directories" in str(result.error) and dashscope.chat_requests == []


def test_page_images_are_encoded_once_on_their_way(dashscope, tmp_path, monkeypatch):
    """A rendered page is encoded and base64-encoded once; its format is never sniffed again."""
    from qwen_vl_core.documents import prepare
    from qwen_vl_core.media import resolve

    encodes: list[int] = []
    real_encode = prepare.encode_page
    monkeypatch.setattr(prepare, "encode_page", lambda *a: encodes.append(1) or real_encode(*a))
    monkeypatch.setattr(resolve, "detect_format", lambda *a: pytest.fail("a rendered page was sniffed again"))
    (result,) = make_pipeline(dashscope).results(vector_pdf(tmp_path / "v.pdf", 1))
    assert result.ok and encodes == [1]
    url = user_content(dashscope.last_body)[0]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,") and base64.b64decode(url.split(",")[1])[:2] == b"\xff\xd8"


def test_async_limit_bounds_pages_in_flight(dashscope, tmp_path):
    responder = PageResponder()
    dashscope.responder = responder.track(0.1)

    async def run():
        limit = asyncio.Semaphore(3)
        pipeline = make_pipeline(dashscope, num_workers=8)
        return [r async for r in pipeline.aresults(make_pdf(tmp_path / "d.pdf", 9), limit=limit)]

    results = asyncio.run(run())
    assert len(results) == 9 and responder.peak == 3


def test_settings_are_checked_where_they_are_made(dashscope):
    with pytest.raises(ValueError, match="dpi must be 18 to 1200"):
        make_pipeline(dashscope, dpi=5)
    with pytest.raises(ValueError, match="num_workers must be 1 to 256"):
        make_pipeline(dashscope, num_workers=0)


def test_progress_given_to_one_run_and_metadata_without_unknowns(dashscope):
    seen: list[PageResult] = []
    pipeline = make_pipeline(dashscope)
    (result,) = pipeline.results(image_bytes(), progress=seen.append)
    assert seen == [result]
    (remote,) = pipeline.image_results([ImageItem("https://example.com/a.png", "a")])
    assert remote.metadata()["width"] is None  # a URL is never downloaded: its size is unknown here
    assert "width" not in remote.metadata(include_none=False)
    assert None not in remote.metadata(include_none=False).values()
