"""Documents in chat (qwen_vl_core.documents.chat_pages, used by normalize_messages and
prepare_chat_media): PDF pages rendered by the document pipeline at the model's budget, scans
passed through, TIFF frames as pages, page selection, and the context-window check before sending."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

from qwen_vl_core import QwenVLClient
from qwen_vl_core.chat_media import prepare_chat_media
from qwen_vl_core.documents.chat_pages import parse_pages
from qwen_vl_core.errors import InputValidationError
from qwen_vl_core.media import LocalFilePolicy, MediaOptions
from qwen_vl_core.messages import MediaSettings, normalize_messages
from qwen_vl_core.tokens import image_pixel_bounds
from tests.fake_dashscope import data_url_image_size
from tests.support.pdfs import scanned_pdf, vector_pdf

KEY = "sk-test-0123456789abcdef"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def tiff(path: Path, frames: int, size: tuple[int, int] = (300, 400)) -> Path:
    images = [Image.new("RGB", size, (40 * i, 90, 160)) for i in range(frames)]
    images[0].save(path, format="TIFF", save_all=True, append_images=images[1:])
    return path


def parts(content) -> list:
    return [p.get("text") or p.get("type") for p in content]


# ---------------------------------------------------------------- page selection


@pytest.mark.parametrize(
    "spec, expected",
    [(None, None), (2, [2]), ("2", [2]), ("1-3", [1, 2, 3]), ("1,3, 5-6", [1, 3, 5, 6]), ([3, 1, 3], [3, 1]),
     (["1-2", 4], [1, 2, 4]), ("5-", [5, 6, 7]), (range(2, 4), [2, 3])],
)  # fmt: skip
def test_parse_pages(spec, expected):
    assert parse_pages(spec, 7) == expected


@pytest.mark.parametrize(
    "spec, match",
    [(0, "start at 1"), ("3-1", "runs backwards"), ("a-b", "not a page number"), ([], "is empty"),
     (9, "page 9 is past the end of 'x.pdf', which has 7 pages"), ("6-9", "'6-9' runs past the end of 'x.pdf', which has 7 pages"), (True, "page numbers")],
)  # fmt: skip
def test_bad_page_selections(spec, match):
    with pytest.raises(InputValidationError, match=match):
        parse_pages(spec, 7, label="'x.pdf'")


# ---------------------------------------------------------------- pages as images


def test_a_pdf_block_becomes_its_page_images_at_the_models_budget(tmp_path):
    pdf = vector_pdf(tmp_path / "report.pdf", 3)
    block = {"type": "file", "mime_type": "application/pdf", "base64": b64(pdf.read_bytes()), "extras": {"filename": "report.pdf"}}
    wire = normalize_messages([{"role": "user", "content": [block, "Summarize."]}], MediaSettings(model="qwen3-vl-plus", max_pixels=500_000))
    content = wire.messages[0]["content"]
    assert parts(content) == ["Document 'report.pdf' (PDF), pages 1-3 of 3:", "Page 1:", "image_url", "Page 2:", "image_url",
                              "Page 3:", "image_url", "Summarize."]  # fmt: skip
    assert [m.source for m in wire.media] == [f"report.pdf#page={n}" for n in (1, 2, 3)]
    _, _, budget = image_pixel_bounds("qwen3-vl-plus", max_pixels=500_000)
    for media in wire.media:
        assert media.width * media.height <= budget and media.width * media.height > 0.9 * budget  # rendered at the budget
        assert data_url_image_size(media.url) == (media.width, media.height)


def test_pages_on_the_block_win_over_the_default(tmp_path):
    pdf = vector_pdf(tmp_path / "r.pdf", 5)
    msgs = [{"role": "user", "content": [{"type": "file", "path": str(pdf), "pages": "2,4"}]}]
    prepared = prepare_chat_media(msgs, model="qwen3-vl-plus", pages=[1])
    assert [(r.document, r.page) for r in prepared.images] == [(str(pdf), 2), (str(pdf), 4)]
    assert parts(prepared.messages[0]["content"])[0] == "Document 'r.pdf' (PDF), pages 2, 4 of 5:"
    prepared = prepare_chat_media([{"role": "user", "content": [{"type": "file", "path": str(pdf)}]}], model="qwen3-vl-plus", pages="4-")
    assert [r.page for r in prepared.images] == [4, 5]
    with pytest.raises(InputValidationError, match="page 8 is past the end of .*r.pdf'.*5 pages"):
        prepare_chat_media([{"role": "user", "content": [{"type": "file", "path": str(pdf), "pages": [8]}]}],
                           model="qwen3-vl-plus")  # fmt: skip


def test_a_scanned_page_is_sent_as_its_own_jpeg(tmp_path):
    pdf = scanned_pdf(tmp_path / "scan.pdf", 2, dpi=100)
    prepared = prepare_chat_media([{"role": "user", "content": [{"type": "file", "url": pdf.as_uri()}]}], model="qwen3-vl-plus")
    media_urls = [p["image"].url for p in prepared.messages[0]["content"] if p.get("type") == "image"]
    assert all(url.startswith("data:image/jpeg;base64,") for url in media_urls)
    raw = base64.b64decode(media_urls[0].split(",", 1)[1])
    assert raw in pdf.read_bytes()  # the scanner's JPEG, byte for byte: no re-render
    assert [r.page for r in prepared.images] == [1, 2]


def test_a_multipage_tiff_is_pages_too(tmp_path):
    path = tiff(tmp_path / "fax.tiff", 3)
    msgs = [{"role": "user", "content": [{"type": "file", "mime_type": "image/tiff", "base64": b64(path.read_bytes()), "filename": "fax.tiff"}]}]
    prepared = prepare_chat_media(msgs, model="qwen3-vl-plus", pages="1-2")
    assert parts(prepared.messages[0]["content"]) == ["Document 'fax.tiff' (TIFF), pages 1-2 of 3:", "Page 1:", "image", "Page 2:", "image"]
    assert [(r.width, r.height, r.page) for r in prepared.images] == [(300, 400, 1), (300, 400, 2)]


def test_openai_shape_images_and_text_files(tmp_path):
    pdf = vector_pdf(tmp_path / "a.pdf", 1)
    openai = {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64," + b64(pdf.read_bytes())}}
    single = {"type": "file", "mime_type": "image/png", "base64": b64(_png(200, 100)), "filename": "one.png"}
    notes = {"type": "file", "mime_type": "text/markdown", "base64": b64("# Notes\nsee page 2".encode()), "filename": "notes.md"}
    prepared = prepare_chat_media([{"role": "user", "content": [openai, single, notes]}], model="qwen3-vl-plus")
    assert parts(prepared.messages[0]["content"]) == [
        "Document 'a.pdf' (PDF), page 1 of 1:", "image", "Document 'one.png' (image), page 1 of 1:", "image",
        "Document 'notes.md':\n# Notes\nsee page 2",
    ]  # fmt: skip
    assert [r.document for r in prepared.images] == ["a.pdf", "one.png"]


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    "block, match",
    [
        ({"type": "file", "url": "https://example.com/a.pdf"}, "given by URL .* not downloaded here"),
        ({"type": "file", "file_id": "file-123"}, "no file store"),
        ({"type": "file", "file": {"file_id": "file-123"}}, "no file store"),
        ({"type": "file", "mime_type": "application/pdf"}, "no base64 data, url or path"),
        ({"type": "file", "base64": "%%%", "mime_type": "application/pdf"}, "base64 data is not valid"),
        ({"type": "file", "path": "/no/such/file.pdf"}, "no such file|does not exist|not found"),
        ({"type": "file", "base64": b64(b"%PDF-1.7 garbage"), "filename": "bad.pdf"}, "cannot be opened"),
        ({"type": "file", "base64": b64(b"PK\x03\x04" + bytes(60)), "filename": "memo.docx",
          "mime_type": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
         "'memo.docx' .* is not a PDF, an image or a text file.*convert it to PDF"),
    ],
)
def test_bad_documents_fail_before_anything_is_sent(block, match):
    with pytest.raises(InputValidationError, match=match):
        prepare_chat_media([{"role": "user", "content": [block]}], model="qwen3-vl-plus")


def test_local_documents_follow_the_file_policy(tmp_path):
    pdf = vector_pdf(tmp_path / "a.pdf", 1)
    allowed = tmp_path / "inbox"
    allowed.mkdir()
    options = MediaOptions(policy=LocalFilePolicy(allowed_dirs=(allowed,)))
    with pytest.raises(InputValidationError, match="outside|allowed"):
        prepare_chat_media([{"role": "user", "content": [{"type": "file", "path": str(pdf)}]}], model="qwen3-vl-plus",
                           media_options=options)  # fmt: skip
    options = MediaOptions(policy=LocalFilePolicy(allow_local_files=False))
    with pytest.raises(InputValidationError, match="local files"):
        prepare_chat_media([{"role": "user", "content": [{"type": "file", "path": str(pdf)}]}], model="qwen3-vl-plus",
                           media_options=options)  # fmt: skip


# ---------------------------------------------------------------- the context window


def test_too_many_pages_are_refused_naming_the_count_the_estimate_and_the_window(tmp_path):
    pdf = vector_pdf(tmp_path / "big.pdf", 40)
    msgs = [{"role": "user", "content": [{"type": "file", "path": str(pdf)}, "Summarize."]}]
    with pytest.raises(InputValidationError) as info:
        prepare_chat_media(msgs, model="qwen-vl-ocr")  # a 38,192-token window, 2,562 tokens a page
    text = str(info.value)
    assert "40 pages of about 2,522 image tokens each come to about 100,880 tokens" in text  # A4 at the 2560-patch budget
    assert "38,192-token context window of 'qwen-vl-ocr'" in text
    assert "about 15 fit: pages='1-15'" in text and "nothing was sent" in text
    prepared = prepare_chat_media(msgs, model="qwen-vl-ocr", pages="1-15")  # fewer pages fit
    assert len(prepared.images) == 15


def test_documents_of_one_request_share_the_window(tmp_path):
    pdf = vector_pdf(tmp_path / "half.pdf", 9)
    block = {"type": "file", "path": str(pdf)}
    settings = MediaSettings(model="qwen-vl-ocr")  # a 38K window: 9 pages of 2,562 tokens fit once, not twice
    normalize_messages([{"role": "user", "content": [block]}], settings)
    with pytest.raises(InputValidationError, match="with .* image tokens of other documents in this request"):
        normalize_messages([{"role": "user", "content": [block, block]}], settings)


def test_unknown_models_are_not_refused(tmp_path):
    pdf = vector_pdf(tmp_path / "big.pdf", 3)
    prepared = prepare_chat_media([{"role": "user", "content": [{"type": "file", "path": str(pdf)}]}], model="my-model")
    assert len(prepared.images) == 3


# ---------------------------------------------------------------- through the client


def test_a_pdf_reaches_the_server_as_page_images(dashscope, tmp_path):
    pdf = vector_pdf(tmp_path / "r.pdf", 2)
    with QwenVLClient(api_key=KEY, base_url=dashscope.url, max_retries=0) as client:
        result = client.chat([{"role": "user", "content": [{"type": "file", "path": str(pdf)}, "What is it?"]}], model="qwen3-vl-plus")
    assert result.text.startswith("I see 2 image(s)")
    content = dashscope.last_body["messages"][0]["content"]
    assert [p["type"] for p in content] == ["text", "text", "image_url", "text", "image_url", "text"]
