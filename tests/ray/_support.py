"""Inputs the server can tell apart by the size of the image it receives, and a responder that
answers each page with its name, records when each request arrived, and fails on demand."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from tests.fake_dashscope import Json, completion
from tests.support.llama_index import sent_images

UNIT = 32  # both sides multiples of Qwen3-VL's patch: the client never resizes them


def page_size(file_id: int, page: int) -> tuple[int, int]:
    return UNIT * (6 + file_id), UNIT * (10 + page)


def which(size: tuple[int, int]) -> tuple[int, int]:
    """(file id, page) of an image the server received."""
    width, height = size
    assert width % UNIT == 0 and height % UNIT == 0, f"not a generated page: {size}"
    return width // UNIT - 6, height // UNIT - 10


def _page(file_id: int, page: int) -> Image.Image:
    img = Image.new("RGB", page_size(file_id, page), "white")
    ImageDraw.Draw(img).text((10, 10), f"file {file_id} page {page}", fill="black")
    return img


def pdf(path: Path, file_id: int, pages: int) -> Path:
    """A scan-like PDF: page n is one JPEG of :func:`page_size` (sent as it is)."""
    images = [_page(file_id, n) for n in range(1, pages + 1)]
    images[0].save(path, format="PDF", save_all=True, append_images=images[1:], resolution=72)
    return path


def png(path: Path, file_id: int) -> Path:
    _page(file_id, 1).save(path, format="PNG")
    return path


def tiff(path: Path, file_id: int, frames: int) -> Path:
    images = [_page(file_id, n) for n in range(1, frames + 1)]
    images[0].save(path, format="TIFF", save_all=True, append_images=images[1:])
    return path


def answer(file_id: int, page: int) -> str:
    return f"file {file_id} page {page}"


class Pages:
    """A responder: ``"file F page N"`` for each request (with image-token usage), ``fail(F, N,
    attempt)`` may return another reply instead; ``arrivals`` are monotonic times of arrival."""

    def __init__(self, fail: Callable[[int, int, int], Any] | None = None, on_request: Callable[[int], None] | None = None):
        self.fail = fail
        self.on_request = on_request
        self.seen: Counter[tuple[int, int]] = Counter()
        self.arrivals: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, rec: Any) -> Any:
        now = time.monotonic()
        images = sent_images(rec)
        assert len(images) == 1
        key = which(images[0].size)
        with self._lock:
            self.arrivals.append(now)
            self.seen[key] += 1
            attempt = self.seen[key]
            count = len(self.arrivals)
        if self.on_request is not None:
            self.on_request(count)
        if self.fail is not None:
            reply = self.fail(*key, attempt)
            if reply is not None:
                return reply
        usage = {"prompt_tokens": 110, "completion_tokens": 4, "total_tokens": 114,
                 "prompt_tokens_details": {"image_tokens": 100, "text_tokens": 10}}
        return Json(completion(answer(*key), usage=usage))


def max_in_window(times: list[float], window: float) -> int:
    """The most requests that arrived within any ``window`` seconds."""
    times = sorted(times)
    return max((sum(1 for t in times[i:] if t < start + window) for i, start in enumerate(times)), default=0)
