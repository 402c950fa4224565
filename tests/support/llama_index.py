"""Shared helpers for the LlamaIndex tests (not a test module): generated images and PDFs whose
pages the fake server can tell apart, factories bound to the local server, and responders."""

from __future__ import annotations

import base64
import io
import re
import threading
from pathlib import Path
from typing import Any, Callable

from PIL import Image, ImageDraw

from tests.fake_dashscope import Json, Sse, chunks, completion, error_body  # noqa: F401

KEY = "sk-test-0123456789abcdef"

# A minimal MP4 header: enough for the core's format sniffing (the server never decodes videos).
MP4_BYTES = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 256

# Page n (1-based) of generated PDFs and TIFFs is PAGE_WIDTH x page_height(n) (points = pixels at
# 72 DPI), so the height of the image the server receives tells which page it is. Both sides are
# multiples of 32 px, Qwen3-VL's patch, so the client never resizes them.
PAGE_WIDTH = 224
PAGE_UNIT = 32
PAGE_BASE = 10


def page_height(n: int, scale: int = 1) -> int:
    return (PAGE_BASE + n) * PAGE_UNIT * scale


def page_image(text: str, size: tuple[int, int] = (240, 180), color: str = "white") -> Image.Image:
    img = Image.new("RGB", size, color)
    draw = ImageDraw.Draw(img)
    if min(size) > 10:
        draw.rectangle([4, 4, size[0] - 5, size[1] - 5], outline="black")
    draw.text((12, 12), text, fill="black")
    return img


def image_bytes(text: str = "hello", fmt: str = "PNG", size: tuple[int, int] = (240, 180), color: str = "white") -> bytes:
    buf = io.BytesIO()
    page_image(text, size, color).save(buf, format=fmt)
    return buf.getvalue()


def make_pdf(path: Path, pages: int) -> Path:
    """A PDF whose page n (1-based) is PAGE_WIDTH x page_height(n) pt, with "Page n" drawn on it."""
    images = [page_image(f"Page {n}", (PAGE_WIDTH, page_height(n))) for n in range(1, pages + 1)]
    images[0].save(path, format="PDF", save_all=True, append_images=images[1:], resolution=72)
    return path


def make_tiff(path: Path, frames: int) -> Path:
    images = [page_image(f"Frame {n}", (PAGE_WIDTH, page_height(n))) for n in range(1, frames + 1)]
    images[0].save(path, format="TIFF", save_all=True, append_images=images[1:])
    return path


_DATA_URL = re.compile(r"data:image/[a-z]+;base64,([A-Za-z0-9+/=]+)")


def sent_images(rec: Any) -> list[Image.Image]:
    """The images in a recorded request (decoded from their data URLs)."""
    return [Image.open(io.BytesIO(base64.b64decode(m))) for m in _DATA_URL.findall(rec.body.decode("utf-8"))]


def page_number(rec: Any) -> int:
    """Which generated page a request is about (from the height of the image it carries)."""
    images = sent_images(rec)
    assert images, "the request carries no inline image"
    height = images[0].height
    assert height % PAGE_UNIT == 0, f"image height {height} is not one of the generated page heights"
    return height // PAGE_UNIT - PAGE_BASE


class PageResponder:
    """Answers ``"text of page N"``, fails the pages in ``fail`` with the given reply, and records
    how many requests were in flight at once."""

    def __init__(self, fail: dict[int, Callable[[], Any]] | None = None, text: Callable[[int], str] | None = None):
        self.fail = fail or {}
        self.text = text or (lambda n: f"text of page {n}")
        self.seen: list[int] = []
        self.active = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __call__(self, rec: Any) -> Any:
        n = page_number(rec)
        with self._lock:
            self.seen.append(n)
        if n in self.fail:
            return self.fail[n]()
        return Json(completion(self.text(n)))

    def track(self, latency: float) -> Callable[[Any], Any]:
        """A responder that also measures concurrency (holds each request ``latency`` seconds)."""
        import time

        def respond(rec: Any) -> Any:
            with self._lock:
                self.active += 1
                self.peak = max(self.peak, self.active)
            try:
                time.sleep(latency)
                return self(rec)
            finally:
                with self._lock:
                    self.active -= 1

        return respond


def server_error() -> Any:
    return Json(error_body("The model is overloaded, try again later.", "InternalError", type_="server_error"), 500)


def bad_request() -> Any:
    return Json(error_body("Input data may contain inappropriate content.", "data_inspection_failed"), 400)


def user_content(body: dict) -> list[dict]:
    return [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
