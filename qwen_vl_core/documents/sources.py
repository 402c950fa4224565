"""Inputs to pages: files (every accepted image format, multi-page TIFF, PDF), directories,
``bytes``, and paths on an ``fsspec`` filesystem the caller gives.

Listing is lazy and cheap: a PDF is opened to count its pages, a TIFF's header to count its
frames, an image file is not read at all. Each page becomes a :class:`PageRef` whose
:class:`~.prepare.PageTask` is loaded by a worker only when its turn comes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from io import BytesIO
from pathlib import Path, PurePath
from typing import Any

from ..errors import InputValidationError
from ..media.local_files import file_limit, open_local
from ..media.types import megabytes
from .pdf import PDFIUM_LOCK, embedded_jpeg, open_pdf
from .prepare import PageTask, Prepared, prepare_page

__all__ = [
    "IMAGE_SUFFIXES",
    "PDF_SUFFIXES",
    "SUPPORTED_SUFFIXES",
    "PageRef",
    "FileFailure",
    "expand_inputs",
    "iter_pages",
]

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".heic", ".heif"}
)
PDF_SUFFIXES = frozenset({".pdf"})
SUPPORTED_SUFFIXES = IMAGE_SUFFIXES | PDF_SUFFIXES

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


class _OpenDocument:
    """A PDF open in this process, shared by the threads rendering its pages; closed after its
    last page (or by :meth:`close` when a run stops early)."""

    def __init__(self, pdf: Any, total: int, scanned: bool = False) -> None:
        self.pdf = pdf
        self.scanned = scanned  # its first page is one JPEG sent as it is: nothing to render
        self.remaining = total
        self._lock = threading.Lock()

    def done(self) -> None:
        with self._lock:
            self.remaining -= 1
            last = self.remaining <= 0
        if last:
            self.close()

    def close(self) -> None:
        with PDFIUM_LOCK:
            if self.pdf is not None:
                self.pdf.close()
                self.pdf = None


@dataclass
class PageRef:
    """One page of one input, not loaded yet."""

    source: str
    name: str
    number: int  # 1-based
    total: int
    task: PageTask
    index: int = 0  # position of the file in the input list (for ordering)
    document: _OpenDocument | None = field(default=None, repr=False)
    job: Any = field(default=None, repr=False)  # the caller's own item (captioner nodes)
    known_key: str | None = None  # see ImageItem

    @property
    def kind(self) -> str:
        return self.task.kind

    def load(self, processes: Any = None) -> Prepared:
        """Read, render or pass through this page (blocking). With ``processes`` (a
        :class:`~.prepare.RenderProcesses`) a local PDF page is rendered in a worker process."""
        try:
            if self.document is not None:
                if processes is not None and self.task.path is not None:
                    prepared = processes.run(self.task)
                    if prepared is not None:
                        return prepared
                if self.document.pdf is None:
                    raise RuntimeError(f"{self.source} was closed")
                return prepare_page(self.task, self.document.pdf)
            return prepare_page(self.task)
        finally:
            if self.document is not None:
                self.document.done()


@dataclass
class FileFailure:
    """A file that could not be listed (missing, unreadable, encrypted, not a PDF or image)."""

    source: str
    error: BaseException
    index: int = 0


def _is_dir(path: str, fs: Any) -> bool:
    return fs.isdir(path) if fs is not None else os.path.isdir(path)


def expand_inputs(inputs: Any, *, recursive: bool = True, fs: Any = None) -> list[str | bytes]:
    """Files from a path, bytes, a list of them, or directories (their supported files, sorted)."""
    if isinstance(inputs, (str, bytes, bytearray, memoryview, os.PathLike, PurePath)):
        inputs = [inputs]
    out: list[str | bytes] = []
    for item in inputs:
        if isinstance(item, (bytes, bytearray, memoryview)):
            out.append(bytes(item))
            continue
        path = os.fspath(item)
        if _is_dir(path, fs):
            if fs is not None:
                found = fs.find(path) if recursive else fs.ls(path, detail=False)
                names = sorted(str(p) for p in found)
            else:
                pattern = "**/*" if recursive else "*"
                names = sorted(str(p) for p in Path(path).glob(pattern) if p.is_file())
            out.extend(n for n in names if PurePath(n).suffix.lower() in SUPPORTED_SUFFIXES)
        else:
            out.append(path)
    return out


@dataclass(frozen=True)
class RenderSettings:
    """How pages become images: the model's pixel budget, an optional dpi cap, the encoding."""

    budget_pixels: int
    dpi: float | None = None
    page_format: str = "jpeg"
    password: str | None = None


def _read(path: str, fs: Any, limit: int | None = None, *, max_bytes: int | None = None, label: str = "") -> bytes:
    """The first ``limit`` bytes, or all of a file on ``fs`` (refused past ``max_bytes``)."""
    with fs.open(path, "rb") as fh:
        if limit is not None:
            return fh.read(limit)
        data = fh.read() if max_bytes is None else fh.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise InputValidationError(
            f"file {label or path!r} is larger than {megabytes(max_bytes)} ({max_bytes} bytes); "
            "raise max_file_bytes to read larger files"
        )
    return data


def _open(
    item: str | bytes, label: str, fs: Any, settings: RenderSettings, policy: Any = None
) -> tuple[PageTask, int, _OpenDocument | None]:
    """The file's first page task, its page count and, for a PDF, the open document.

    A local path is opened once and checked (:func:`~qwen_vl_core.media.local_files.open_local`);
    its kind is sniffed from that descriptor and its size checked for the kind before anything
    else is read; a PDF is read by PDFium from that same descriptor. A page that is read later
    (an image, a TIFF frame, a PDF page in a render process) is opened and checked the same way.
    """
    base = PageTask(
        kind="image",
        label=label,
        budget_pixels=settings.budget_pixels,
        dpi=settings.dpi,
        page_format=settings.page_format,  # type: ignore[arg-type]
        password=settings.password,
    )
    if fs is None and isinstance(item, str):
        return _open_local(item, label, settings, policy, base)
    data = item if isinstance(item, bytes) else None
    head = data[:8] if data is not None else _read(item, fs, 8)  # type: ignore[arg-type]
    is_pdf = head.startswith(b"%PDF-") or (not head and PurePath(label).suffix.lower() in PDF_SUFFIXES)
    if data is None:
        kind = "document" if is_pdf or head.startswith(_TIFF_MAGIC) else "image"
        data = _read(item, fs, max_bytes=file_limit(policy, kind), label=label)  # type: ignore[arg-type]
    if is_pdf:
        pdf = open_pdf(data, label=label, password=settings.password)
        total, scanned = _count_pages(pdf, label, settings)
        return replace(base, kind="pdf"), total, _OpenDocument(pdf, total, scanned)
    if head.startswith(_TIFF_MAGIC):
        frames = _tiff_frames(BytesIO(data), label)
        if frames > 1:
            return replace(base, kind="tiff", data=data), frames, None
    return replace(base, data=data), 1, None


def _open_local(
    item: str, label: str, settings: RenderSettings, policy: Any, base: PageTask
) -> tuple[PageTask, int, _OpenDocument | None]:
    local = open_local(item, policy, label=f"file {item!r}")
    try:
        head = local.head(8)
        doc_limit = file_limit(policy, "document")
        base = replace(base, path=item, policy=policy)
        if head.startswith(b"%PDF-") or (not head and PurePath(label).suffix.lower() in PDF_SUFFIXES):
            local.limit(doc_limit)
            pdf = open_pdf(local, label=label, password=settings.password)  # the document owns the file now
            local = None
            total, scanned = _count_pages(pdf, label, settings)
            return replace(base, kind="pdf", max_bytes=doc_limit), total, _OpenDocument(pdf, total, scanned)
        if head.startswith(_TIFF_MAGIC):
            local.limit(doc_limit)
            frames = _tiff_frames(local.file, label)
            return replace(base, kind="tiff" if frames > 1 else "image", max_bytes=doc_limit), frames, None
        image_limit = file_limit(policy, "image")
        local.limit(image_limit)  # refused now, from its size, rather than when its page is read
        return replace(base, max_bytes=image_limit), 1, None
    finally:
        if local is not None:
            local.close()


def _count_pages(pdf: Any, label: str, settings: RenderSettings) -> tuple[int, bool]:
    with PDFIUM_LOCK:
        total = len(pdf)
        if total == 0:
            pdf.close()
            raise InputValidationError(f"PDF {label!r} has no pages")
        first = pdf[0]
        try:
            scanned = embedded_jpeg(first, settings.budget_pixels, settings.dpi, read=False) is not None
        finally:
            first.close()
    return total, scanned


def _tiff_frames(file: Any, label: str) -> int:
    from PIL import Image

    try:
        with Image.open(file) as img:
            return getattr(img, "n_frames", 1)
    except Exception as exc:
        raise InputValidationError(f"TIFF {label!r} cannot be read ({exc})") from exc


def iter_pages(
    files: Iterable[str | bytes],
    settings: RenderSettings,
    *,
    fs: Any = None,
    policy: Any = None,
    opened: list[_OpenDocument] | None = None,
) -> Iterator[PageRef | FileFailure]:
    """Pages in file order. Files that cannot be opened come out as :class:`FileFailure`.

    ``policy`` (a :class:`qwen_vl_core.media.LocalFilePolicy`) applies to every read of a local file.
    ``opened`` collects open documents so the caller can close them if it stops early.
    """
    files = list(files)
    count_bytes = sum(1 for f in files if isinstance(f, bytes))
    seen_bytes = 0
    for index, item in enumerate(files):
        if isinstance(item, bytes):
            seen_bytes += 1
            label = "<bytes>" if count_bytes == 1 else f"<bytes {seen_bytes}>"
            name = label
        else:
            label, name = item, PurePath(item).name
        try:
            task, total, document = _open(item, label, fs, settings, policy)
        except FileNotFoundError:
            yield FileFailure(label, InputValidationError(f"no such file: {label!r}"), index)
            continue
        except Exception as exc:  # unreadable, encrypted, damaged
            yield FileFailure(label, exc, index)
            continue
        if document is not None and opened is not None:
            opened.append(document)
        for number in range(1, total + 1):
            yield PageRef(label, name, number, total, replace(task, index=number - 1), index, document)
