"""QwenVLReader: modes and prompts, inputs (image formats, multi-page TIFF, PDFs, directories),
metadata and exclusions, image documents, SimpleDirectoryReader, concurrency, the CLI."""

from __future__ import annotations

import asyncio
import base64
import io
import json

import pytest
from llama_index.core import SimpleDirectoryReader
from llama_index.core.schema import Document, ImageDocument, MetadataMode
from tests.support.llama_index import (
    KEY,
    PAGE_WIDTH,
    Json,
    PageResponder,
    completion,
    image_bytes,
    make_pdf,
    make_tiff,
    page_height,
    page_image,
    page_number,
    sent_images,
    user_content,
)
from PIL import Image

from llama_index_qwen_vl import QwenVLReader
from qwen_vl_core import InputValidationError
from qwen_vl_core.documents.prompts import PROMPTS, clean_output


def make_reader(dashscope, **kwargs) -> QwenVLReader:
    kwargs.setdefault("dpi", 72)
    return QwenVLReader(api_key=KEY, base_url=dashscope.url, max_retries=0, **kwargs)


# ---------------------------------------------------------------- modes


@pytest.mark.parametrize("mode", ["caption", "ocr", "markdown", "caption+ocr"])
def test_each_mode_sends_its_prompt_after_the_image(dashscope, tmp_path, mode):
    path = tmp_path / "scan.png"
    path.write_bytes(image_bytes("Invoice 42"))
    dashscope.script(Json(completion("answer")))
    docs = make_reader(dashscope, mode=mode).load_data(path)
    assert [d.text for d in docs] == ["answer"]
    parts = user_content(dashscope.last_body)
    assert parts[0]["type"] == "image_url" and parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert parts[1] == {"type": "text", "text": PROMPTS[mode]}
    assert docs[0].metadata["mode"] == mode


def test_prompts_say_what_each_mode_is_for():
    assert "exactly as it appears" in PROMPTS["ocr"] and "do not translate" in PROMPTS["ocr"]
    assert "Markdown tables" in PROMPTS["markdown"] and "verbatim" in PROMPTS["markdown"]
    assert "## Description" in PROMPTS["caption+ocr"] and "## Text" in PROMPTS["caption+ocr"]


def test_custom_prompt_replaces_the_mode_prompt(dashscope, tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(image_bytes())
    make_reader(dashscope, mode="caption", prompt="List the colors.").load_data(path)
    assert user_content(dashscope.last_body)[1]["text"] == "List the colors."


def test_caption_ocr_answers_get_one_stable_layout(dashscope, tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(image_bytes())
    dashscope.script(Json(completion("```markdown\n**Description:**\nA receipt.\n\n**Text:**\nTOTAL 9.99\n```")))
    (doc,) = make_reader(dashscope).load_data(path)
    assert doc.text == "## Description\nA receipt.\n\n## Text\nTOTAL 9.99"


def test_clean_output_keeps_what_does_not_fit_the_layout():
    assert clean_output("Just a caption.", "caption+ocr") == "Just a caption."
    assert clean_output("## Description\nA blank page.\n## Text\n", "caption+ocr") == (
        "## Description\nA blank page.\n\n## Text\n(none)"
    )
    assert clean_output("```\n# Title\n```", "markdown") == "# Title"
    assert clean_output("```python\nprint(1)\n```", "caption") == "```python\nprint(1)\n```"


def test_ocr_on_a_qwen_vl_ocr_model_uses_the_builtin_task(dashscope, tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(image_bytes("TEXT"))
    (doc,) = make_reader(dashscope, mode="ocr", model="qwen-vl-ocr").load_data(path)
    rec = dashscope.chat_requests[-1]
    assert rec.kind == "native"
    assert rec.json["parameters"]["ocr_options"] == {"task": "text_recognition"}
    assert [list(p) for p in rec.json["input"]["messages"][0]["content"]] == [["image"]]
    assert doc.text == "OCR(text_recognition): I see 1 image(s)."


def test_other_qwen_vl_ocr_tasks(dashscope, tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(image_bytes("TABLE"))
    (doc,) = make_reader(dashscope, mode="markdown", model="qwen-vl-ocr", ocr_task="table_parsing").load_data(path)
    assert dashscope.chat_requests[-1].json["parameters"]["ocr_options"] == {"task": "table_parsing"}
    assert doc.text == "OCR(table_parsing): I see 1 image(s)."
    with pytest.raises(InputValidationError, match="ocr_task needs a qwen-vl-ocr model"):
        make_reader(dashscope, ocr_task="table_parsing").load_data(path)
    assert len(dashscope.chat_requests) == 1  # refused before any page was read


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mode"):
        QwenVLReader(api_key=KEY, mode="summary")


# ---------------------------------------------------------------- inputs


@pytest.mark.parametrize("fmt,suffix", [("PNG", ".png"), ("JPEG", ".jpg"), ("BMP", ".bmp"), ("WEBP", ".webp"), ("TIFF", ".tif")])
def test_image_formats(dashscope, tmp_path, fmt, suffix):
    path = tmp_path / f"img{suffix}"
    path.write_bytes(image_bytes("x", fmt=fmt))
    (doc,) = make_reader(dashscope, mode="caption").load_data(str(path))
    assert doc.metadata["file_name"] == f"img{suffix}"
    assert (doc.metadata["width"], doc.metadata["height"]) == (240, 180)
    assert sent_images(dashscope.chat_requests[-1])[0].size == (240, 180)


def test_multipage_tiff_gives_one_document_per_frame(dashscope, tmp_path):
    path = make_tiff(tmp_path / "fax.tiff", 3)
    dashscope.responder = PageResponder()
    docs = make_reader(dashscope).load_data(path)
    assert [d.text for d in docs] == ["text of page 1", "text of page 2", "text of page 3"]
    assert [d.metadata["page_label"] for d in docs] == ["1", "2", "3"]
    assert {d.metadata["total_pages"] for d in docs} == {3}


def test_scanned_pages_are_sent_as_they_are(dashscope, tmp_path):
    """A page that is one JPEG (what scanners write) is sent as that JPEG: no render, no re-encode."""
    path = make_pdf(tmp_path / "doc.pdf", 3)
    dashscope.responder = PageResponder()
    docs = make_reader(dashscope).load_data(path)
    assert [d.text for d in docs] == ["text of page 1", "text of page 2", "text of page 3"]
    assert sorted(page_number(r) for r in dashscope.chat_requests) == [1, 2, 3]
    assert (docs[1].metadata["width"], docs[1].metadata["height"]) == (PAGE_WIDTH, page_height(2))
    assert {d.metadata["page_path"] for d in docs} == {"embedded"}
    import pypdfium2

    pdf = pypdfium2.PdfDocument(str(path))
    (image,) = pdf[1].get_objects()
    (second,) = [r for r in dashscope.chat_requests if page_number(r) == 2]
    sent = base64.b64decode(user_content(json.loads(second.body))[0]["image_url"]["url"].split(",")[1])
    assert sent == bytes(image.get_data(decode_simple=False))  # byte for byte
    pdf.close()


def test_scans_finer_than_the_model_looks_are_rendered_at_its_size(dashscope, tmp_path):
    from tests.support.pdfs import scanned_pdf

    from qwen_vl_core.tokens import image_pixel_bounds

    _, _, budget = image_pixel_bounds("qwen3-vl-plus")
    (doc,) = make_reader(dashscope, dpi=None).load_data(scanned_pdf(tmp_path / "a4.pdf", 1, dpi=200))
    width, height = sent_images(dashscope.chat_requests[-1])[0].size
    assert doc.metadata["page_path"] == "rendered" and (width, height) == (doc.metadata["width"], doc.metadata["height"])
    assert 0.97 * budget < width * height <= budget  # the model's budget, not 200 dpi (3.9 MP)
    assert abs(width / height - 595 / 842) < 0.01


def test_vector_pages_are_rendered_at_the_budget_or_the_dpi_cap(dashscope, tmp_path):
    from tests.support.pdfs import vector_pdf

    from qwen_vl_core.tokens import image_pixel_bounds

    path = vector_pdf(tmp_path / "v.pdf", 2)
    docs = make_reader(dashscope, dpi=None).load_data(path)
    _, _, budget = image_pixel_bounds("qwen3-vl-plus")
    assert [d.metadata["page_path"] for d in docs] == ["rendered", "rendered"]
    assert 0.97 * budget < docs[0].metadata["width"] * docs[0].metadata["height"] <= budget
    (doc,) = make_reader(dashscope, dpi=72).load_data(vector_pdf(tmp_path / "w.pdf", 1))
    assert (doc.metadata["width"], doc.metadata["height"]) == (595, 842)  # 72 dpi: one pixel a point
    _, _, high = image_pixel_bounds("qwen3-vl-plus", high_resolution=True)
    (doc,) = make_reader(dashscope, dpi=None, high_resolution=True).load_data(vector_pdf(tmp_path / "h.pdf", 1))
    assert abs(doc.metadata["width"] - 595 / 72 * 300) <= 1  # the 300 dpi ceiling, below the high-res budget
    assert sent_images(dashscope.chat_requests[-1])[0].size == (doc.metadata["width"], doc.metadata["height"])


def test_directory_list_and_order(dashscope, tmp_path):
    (tmp_path / "sub").mkdir()
    make_pdf(tmp_path / "b.pdf", 2)
    (tmp_path / "a.png").write_bytes(image_bytes())
    (tmp_path / "sub" / "c.jpg").write_bytes(image_bytes(fmt="JPEG"))
    (tmp_path / "notes.txt").write_text("not an image")
    docs = make_reader(dashscope, num_workers=3).load_data(tmp_path)
    assert [(d.metadata["file_name"], d.metadata["page_label"]) for d in docs] == [
        ("a.png", "1"), ("b.pdf", "1"), ("b.pdf", "2"), ("c.jpg", "1"),
    ]  # fmt: skip
    flat = make_reader(dashscope, recursive=False).load_data(tmp_path)
    assert [d.metadata["file_name"] for d in flat] == ["a.png", "b.pdf", "b.pdf"]


def test_metadata_usage_and_exclusions(dashscope, tmp_path):
    path = make_pdf(tmp_path / "report.pdf", 2)
    docs = make_reader(dashscope).load_data(path, extra_info={"source": "archive", "page_label": "ignored"})
    meta = docs[1].metadata
    assert meta["file_path"] == str(path) and meta["file_name"] == "report.pdf"
    assert meta["page_label"] == "2" and meta["total_pages"] == 2
    assert meta["mode"] == "caption+ocr" and meta["model"] == "qwen3-vl-plus"
    assert meta["request_id"] and meta["source"] == "archive"
    assert meta["image_tokens"] > 0 and meta["input_tokens"] > meta["image_tokens"] and meta["output_tokens"] > 0
    assert len(meta["image_sha256"]) == 64
    embed_text = docs[1].get_content(MetadataMode.EMBED)
    llm_text = docs[1].get_content(MetadataMode.LLM)
    for hidden in ("request_id", "image_sha256", "input_tokens", "mode: ", "model: ", str(path)):
        assert hidden not in embed_text and hidden not in llm_text
    assert "file_name: report.pdf" in embed_text and "source: archive" in embed_text
    assert "page_label: 2" in llm_text and "page_label" not in embed_text
    assert docs[0].id_ == f"{path}#page=1"


def test_image_documents_for_multimodal_indexes(dashscope, tmp_path):
    path = make_pdf(tmp_path / "doc.pdf", 2)
    docs = make_reader(dashscope, image_documents=True).load_data(path)
    assert [type(d) for d in docs] == [Document, ImageDocument, Document, ImageDocument]
    image_doc = docs[3]
    img = Image.open(io.BytesIO(base64.b64decode(image_doc.image)))
    assert img.size == (PAGE_WIDTH, page_height(2))
    assert image_doc.text == docs[2].text and image_doc.metadata["page_label"] == "2"


def test_lazy_load_yields_in_order(dashscope, tmp_path):
    path = make_pdf(tmp_path / "doc.pdf", 6)
    dashscope.responder = PageResponder()
    it = make_reader(dashscope, num_workers=3).lazy_load_data(path)
    assert next(iter(it)).text == "text of page 1"
    assert [d.text for d in it] == [f"text of page {n}" for n in range(2, 7)]


# ---------------------------------------------------------------- concurrency


def test_load_data_keeps_num_workers_requests_in_flight(dashscope, tmp_path):
    path = make_pdf(tmp_path / "doc.pdf", 9)
    responder = PageResponder()
    dashscope.responder = responder.track(0.15)
    docs = make_reader(dashscope, num_workers=3).load_data(path)
    assert [d.text for d in docs] == [f"text of page {n}" for n in range(1, 10)]
    assert responder.peak == 3


async def test_aload_data_is_natively_async_and_bounded(dashscope, tmp_path):
    path = make_pdf(tmp_path / "doc.pdf", 12)
    responder = PageResponder()
    dashscope.responder = responder.track(0.2)
    reader = make_reader(dashscope, num_workers=4)
    loop = asyncio.get_running_loop()
    start = loop.time()
    ticks = 0

    async def heartbeat():  # the event loop stays responsive while pages render and upload
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    beat = asyncio.create_task(heartbeat())
    docs = await reader.aload_data(path)
    elapsed = loop.time() - start
    beat.cancel()
    assert [d.text for d in docs] == [f"text of page {n}" for n in range(1, 13)]
    assert responder.peak == 4
    assert ticks > elapsed / 0.01 / 3


async def test_concurrent_aload_data_calls_share_num_workers(dashscope, tmp_path):
    a = make_pdf(tmp_path / "a.pdf", 4)
    b = make_pdf(tmp_path / "b.pdf", 4)
    responder = PageResponder()
    dashscope.responder = responder.track(0.15)
    reader = make_reader(dashscope, num_workers=2)
    docs_a, docs_b = await asyncio.gather(reader.aload_data(a), reader.aload_data(b))
    assert len(docs_a) == len(docs_b) == 4
    assert responder.peak == 2


# ---------------------------------------------------------------- SimpleDirectoryReader


def test_simple_directory_reader_integration(dashscope, tmp_path):
    make_pdf(tmp_path / "scan.pdf", 2)
    (tmp_path / "photo.png").write_bytes(image_bytes())
    (tmp_path / "readme.txt").write_text("plain text stays plain")
    reader = make_reader(dashscope)
    sdr = SimpleDirectoryReader(str(tmp_path), file_extractor=reader.file_extractor(), raise_on_error=True)
    docs = sdr.load_data()
    by_name = {(d.metadata["file_name"], d.metadata.get("page_label")) for d in docs}
    assert by_name == {("photo.png", "1"), ("scan.pdf", "1"), ("scan.pdf", "2"), ("readme.txt", None)}
    pdf_doc = next(d for d in docs if d.metadata["file_name"] == "scan.pdf")
    assert pdf_doc.metadata["file_size"] > 0 and pdf_doc.metadata["mode"] == "caption+ocr"  # SDR's and ours
    assert "file_size" not in pdf_doc.get_content(MetadataMode.EMBED)
    assert "request_id" not in pdf_doc.get_content(MetadataMode.EMBED)
    assert len(dashscope.chat_requests) == 3


async def test_simple_directory_reader_async(dashscope, tmp_path):
    make_pdf(tmp_path / "scan.pdf", 3)
    (tmp_path / "photo.png").write_bytes(image_bytes())
    sdr = SimpleDirectoryReader(str(tmp_path), file_extractor=make_reader(dashscope).file_extractor(), raise_on_error=True)
    docs = await sdr.aload_data(num_workers=2)
    assert sorted((d.metadata["file_name"], d.metadata["page_label"]) for d in docs) == [
        ("photo.png", "1"), ("scan.pdf", "1"), ("scan.pdf", "2"), ("scan.pdf", "3"),
    ]  # fmt: skip


# ---------------------------------------------------------------- page encoding, bounded memory, fsspec


def test_rendered_pages_are_jpeg_by_default_or_png(dashscope, tmp_path):
    from tests.support.pdfs import vector_pdf

    path = vector_pdf(tmp_path / "doc.pdf", 1)
    make_reader(dashscope).load_data(path)
    assert user_content(dashscope.last_body)[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    make_reader(dashscope, page_format="png").load_data(path)
    assert user_content(dashscope.last_body)[0]["image_url"]["url"].startswith("data:image/png;base64,")


@pytest.mark.parametrize("use_async", [False, True])
def test_pages_are_loaded_one_at_a_time_per_worker(dashscope, tmp_path, monkeypatch, use_async):
    """At most num_workers pages are rendered and not yet answered at any moment."""
    import threading

    from qwen_vl_core.documents.page_job import PageJob
    from qwen_vl_core.documents.sources import PageRef

    path = make_pdf(tmp_path / "doc.pdf", 30)
    held = {"now": 0, "peak": 0}
    lock = threading.Lock()
    real_load, real_store = PageRef.load, PageJob._store

    def load(self, processes=None):
        with lock:
            held["now"] += 1
            held["peak"] = max(held["peak"], held["now"])
        return real_load(self, processes)

    def store(self, *args, **kwargs):
        try:
            return real_store(self, *args, **kwargs)
        finally:
            with lock:
                held["now"] -= 1

    monkeypatch.setattr(PageRef, "load", load)
    monkeypatch.setattr(PageJob, "_store", store)
    dashscope.responder = PageResponder().track(0.02)
    reader = make_reader(dashscope, num_workers=3)
    docs = asyncio.run(reader.aload_data(path)) if use_async else reader.load_data(path)
    assert len(docs) == 30
    assert held["peak"] == 3 and held["now"] == 0


def test_fsspec_filesystems_from_simple_directory_reader(dashscope):
    import fsspec

    fs = fsspec.filesystem("memory")
    buf = io.BytesIO()
    page_image("in memory", (PAGE_WIDTH, page_height(1))).save(buf, format="PDF")
    fs.pipe("/docs/mem.pdf", buf.getvalue())
    fs.pipe("/docs/pic.png", image_bytes())
    reader = make_reader(dashscope)
    docs = SimpleDirectoryReader("/docs", fs=fs, file_extractor=reader.file_extractor()).load_data()
    assert sorted(d.metadata["file_name"] for d in docs) == ["mem.pdf", "pic.png"]
    assert len(dashscope.chat_requests) == 2
