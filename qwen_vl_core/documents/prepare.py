"""The CPU stage of reading: one page task in, the page's bytes as they will be sent out.

A task is small and picklable (a path or bytes, a page index, the render settings), so it can
run in a worker thread or, for PDF pages to render, in a worker process: PDFium holds one
process-wide lock, so only processes render in parallel. Each page is encoded once here; the
pipeline then wraps those bytes for the wire without decoding them again.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import sys
import time
from collections import OrderedDict
import threading
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from io import BytesIO
from typing import Any, Literal

from .pdf import PDFIUM_LOCK, load_pdf_page, open_pdf

__all__ = ["PageTask", "Prepared", "prepare_page", "encode_page", "PageFormat", "RenderProcesses", "usable_cores"]

logger = logging.getLogger("qwen_vl_core.documents")

PageFormat = Literal["jpeg", "png"]


@dataclass(frozen=True)
class PageTask:
    """What to load for one page. ``data`` (bytes) or ``path`` (a local file) holds the file;
    ``url`` is a remote image, passed to the model by URL and never downloaded. A ``path`` is read
    under ``policy`` (a :class:`~qwen_vl_core.media.LocalFilePolicy`; None: anywhere), opened once
    and checked wherever the task runs (this process or a render process), at most ``max_bytes``
    (None: the policy's or the documented default for the kind)."""

    kind: Literal["image", "tiff", "pdf", "url"]
    label: str
    index: int = 0  # 0-based page or frame
    path: str | None = None
    data: bytes | None = None
    url: str | None = None
    password: str | None = None
    budget_pixels: int = 2560 * 32 * 32
    dpi: float | None = None
    page_format: PageFormat = "jpeg"
    policy: Any = None
    max_bytes: int | None = None

    def __repr__(self) -> str:  # never dump a file's bytes into logs
        return f"PageTask(kind={self.kind!r}, label={self.label!r}, index={self.index})"


@dataclass
class Prepared:
    """A page ready for the cache lookup and the wire."""

    data: bytes | None  # None for a URL
    url: str | None
    mime: str | None
    width: int | None
    height: int | None
    sha256: str
    path: str  # how the page was made: file | embedded | rendered | frame | url
    seconds: float = 0.0

    def __repr__(self) -> str:
        size = len(self.data) if self.data is not None else 0
        return f"Prepared(path={self.path!r}, {self.width}x{self.height}, {size} bytes)"


def encode_page(image: Any, page_format: PageFormat) -> tuple[bytes, str]:
    """A rendered page as file bytes: JPEG quality 92 without chroma subsampling (fast, small,
    sharp enough for OCR at the model's resolution) or PNG (lossless, slower and larger)."""
    from ..media.resize import JPEG_QUALITY

    buf = BytesIO()
    if page_format == "png":
        image.save(buf, format="PNG", compress_level=3)
        return buf.getvalue(), "image/png"
    if image.mode not in ("RGB", "L"):
        from PIL import Image

        rgb = Image.new("RGB", image.size, "white")
        rgb.paste(image, mask=image.getchannel("A") if "A" in image.getbands() else None)
        image = rgb
    image.save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    return buf.getvalue(), "image/jpeg"


def _limit(task: PageTask) -> int:
    from ..media.local_files import file_limit

    if task.max_bytes is not None:
        return task.max_bytes
    return file_limit(task.policy, "image" if task.kind == "image" else "document")


def _read(task: PageTask) -> bytes:
    """The task's file: its bytes, or its path opened once, checked and read (bounded)."""
    if task.data is not None:
        return task.data
    from ..media.local_files import read_local

    assert task.path is not None
    what = "TIFF" if task.kind == "tiff" else "image"
    return read_local(task.path, task.policy, label=f"{what} {task.label!r}", max_bytes=_limit(task))


def _tiff_frame(task: PageTask) -> Prepared:
    from PIL import Image, ImageOps

    from ..media.resize import downscale

    with Image.open(BytesIO(_read(task))) as img:
        img.seek(task.index)
        frame = ImageOps.exif_transpose(img.copy()) or img.copy()
    if frame.mode not in ("RGB", "L", "RGBA", "LA"):
        frame = frame.convert("RGBA" if "A" in frame.getbands() else "RGB")
    if frame.width * frame.height > task.budget_pixels:  # decoded anyway: send only what the model sees
        frame = downscale(frame, _fit(frame.width, frame.height, task.budget_pixels))
    data, mime = encode_page(frame, task.page_format)
    return Prepared(data, None, mime, frame.width, frame.height, hashlib.sha256(data).hexdigest(), "frame")


def _fit(width: int, height: int, budget: int) -> tuple[int, int]:
    ratio = (budget / (width * height)) ** 0.5
    return max(1, int(width * ratio)), max(1, int(height * ratio))


# A worker process keeps the last few documents it rendered from open.
_OPEN: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_KEEP_OPEN = 4


def _document(task: PageTask) -> Any:
    """The task's PDF in this (worker) process: opened once under the task's policy, checked."""
    assert task.path is not None
    key = (task.path, task.password, task.policy, task.max_bytes)
    pdf = _OPEN.get(key)
    if pdf is not None:
        _OPEN.move_to_end(key)
        return pdf
    pdf = open_pdf(task.path, label=task.label, password=task.password, policy=task.policy, max_bytes=_limit(task))
    _OPEN[key] = pdf
    while len(_OPEN) > _KEEP_OPEN:
        _, old = _OPEN.popitem(last=False)
        with PDFIUM_LOCK:
            old.close()
    return pdf


def pdf_page(pdf: Any, task: PageTask) -> Prepared:
    """Page ``task.index`` of an open document, made ready to send."""
    found = load_pdf_page(pdf, task.index, task.budget_pixels, task.dpi)
    if found.data is not None:
        data, mime = found.data, "image/jpeg"
    else:
        data, mime = encode_page(found.image, task.page_format)
    return Prepared(data, None, mime, found.width, found.height, hashlib.sha256(data).hexdigest(), found.path)


def prepare_page(task: PageTask, pdf: Any = None) -> Prepared:
    """Load, render or read one page (blocking). ``pdf`` is an already open document for PDF
    tasks in this process; without it the document is opened here (worker processes)."""
    started = time.perf_counter()
    if task.kind == "url":
        assert task.url is not None
        digest = hashlib.sha256(task.url.encode("utf-8")).hexdigest()
        prepared = Prepared(None, task.url, None, None, None, digest, "url")
    elif task.kind == "pdf":
        prepared = pdf_page(pdf if pdf is not None else _document(task), task)
    elif task.kind == "tiff":
        prepared = _tiff_frame(task)
    else:
        data = _read(task)
        prepared = Prepared(data, None, None, None, None, hashlib.sha256(data).hexdigest(), "file")
    prepared.seconds = time.perf_counter() - started
    return prepared


# ---------------------------------------------------------------- worker processes


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _warm() -> int:
    import time

    import pypdfium2  # noqa: F401  (imported once per worker, before the first page)

    time.sleep(0.05)  # hold this worker so the next warm-up task starts another one
    return os.getpid()


def _start_pool(workers: int) -> Executor:
    """``workers`` processes, all started now. ``forkserver`` where available (never forks a
    process that runs threads), else ``spawn``. The workers need nothing from the caller's
    ``__main__``, so it is hidden while they start: a script without an
    ``if __name__ == "__main__":`` guard is not run again in each of them."""
    import multiprocessing

    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":  # workers fork from a server that imported the renderer once
        context.set_forkserver_preload([__name__])
    main = sys.modules.get("__main__")
    saved = {name: main.__dict__[name] for name in ("__file__", "__spec__") if main and name in main.__dict__}
    try:
        if main is not None:
            main.__dict__.pop("__file__", None)
            main.__dict__["__spec__"] = None
        pool = ProcessPoolExecutor(workers, mp_context=context)
        started = [pool.submit(_warm) for _ in range(workers)]  # one per worker: all spawn now
        for future in started:
            future.result(timeout=120)
    finally:
        if main is not None:
            main.__dict__.update(saved)
            if "__spec__" not in saved:
                main.__dict__.pop("__spec__", None)
    return pool


class RenderProcesses:
    """Worker processes for rendering PDF pages, started on first use; where they cannot be
    started or die, pages are rendered in threads instead (with one warning).

    :meth:`shared` gives one pool per size for the whole process, kept until the interpreter
    exits: starting processes costs a second or more, so every run of every pipeline reuses it.
    """

    _shared: dict[tuple[int, int], RenderProcesses] = {}
    _shared_lock = threading.Lock()

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: Executor | None = None
        self._failed = False
        self._lock = threading.Lock()
        self._owned = True

    @classmethod
    def shared(cls, workers: int) -> RenderProcesses:
        """The process-wide pool of ``workers`` processes (a forked child gets its own)."""
        key = (os.getpid(), workers)
        with cls._shared_lock:
            found = cls._shared.get(key)
            if found is None:
                if not cls._shared:
                    atexit.register(cls._close_shared)
                found = cls._shared[key] = cls(workers)
                found._owned = False
            return found

    @classmethod
    def _close_shared(cls) -> None:
        for (pid, _), pool in list(cls._shared.items()):
            if pid == os.getpid():
                pool._shutdown()

    def _get(self) -> Executor | None:
        with self._lock:
            if self._pool is None and not self._failed:
                try:
                    self._pool = _start_pool(self.workers)
                except Exception as exc:  # no semaphores in a sandbox, ...
                    self._give_up(exc)
            return self._pool

    def _give_up(self, exc: BaseException) -> None:
        if not self._failed:
            logger.warning("rendering in threads: worker processes could not be used (%s: %s)", type(exc).__name__, exc)
        self._failed = True

    def run(self, task: PageTask) -> Prepared | None:
        """The page prepared in a worker process, or None to prepare it in this one."""
        pool = self._get()
        if pool is None:
            return None
        try:
            return pool.submit(prepare_page, task).result()
        except BrokenProcessPool as exc:
            with self._lock:
                self._give_up(exc)
            return None

    def close(self) -> None:
        """Stop the workers of a pool made for one run; a shared pool stays up until exit."""
        if self._owned:
            self._shutdown()

    def _shutdown(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None
