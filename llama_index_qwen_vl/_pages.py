"""Pages of the reader's inputs, one at a time: image files, frames of multi-page TIFFs, and PDF
pages rendered with pypdfium2 at a chosen DPI.

Listing pages is cheap (a PDF is opened to count its pages; an image file is not read at all);
``PageRef.load()`` reads or renders one page, so pages are held in memory only while a worker
handles them. PDFium is not thread-safe: every call into it holds one process-wide lock.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path, PurePath
from typing import Any, Literal

__all__ = [
    "IMAGE_SUFFIXES",
    "PDF_SUFFIXES",
    "SUPPORTED_SUFFIXES",
    "PageImage",
    "PageRef",
    "FileError",
    "expand_inputs",
    "iter_pages",
    "encode_page",
]

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".heic", ".heif"}
)
PDF_SUFFIXES = frozenset({".pdf"})
SUPPORTED_SUFFIXES = IMAGE_SUFFIXES | PDF_SUFFIXES

#: Renders are capped at this many pixels (a poster-sized page at 300 DPI would need gigabytes).
MAX_RENDER_PIXELS = 40_000_000

_PDFIUM_LOCK = threading.RLock()
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


PageFormat = Literal["jpeg", "png"]


@dataclass
class PageImage:
    """One page ready to send: its encoded bytes (or a URL), their sha256, its size in pixels."""

    source: Any  # bytes (an image file, or a rendered page / TIFF frame encoded here) | str (URL)
    sha256: str
    width: int | None
    height: int | None


def encode_page(image: Any, page_format: PageFormat) -> bytes:
    """A rendered page as file bytes: JPEG quality 92 without chroma subsampling (fast, small,
    sharp enough for OCR at the model's resolution) or PNG (lossless, slower and larger)."""
    buf = BytesIO()
    if page_format == "png":
        image.save(buf, format="PNG", compress_level=3)
    else:
        if image.mode not in ("RGB", "L"):
            from PIL import Image

            rgb = Image.new("RGB", image.size, "white")
            rgb.paste(image, mask=image.getchannel("A") if "A" in image.getbands() else None)
            image = rgb
        image.save(buf, format="JPEG", quality=92, subsampling=0)
    return buf.getvalue()


def _page(image: Any, page_format: PageFormat) -> PageImage:
    data = encode_page(image, page_format)
    return PageImage(data, hashlib.sha256(data).hexdigest(), image.width, image.height)


@dataclass
class FileError:
    """A file that could not be listed (missing, unreadable, not a PDF or image)."""

    path: str
    error: BaseException
    file_index: int = 0


@dataclass
class PageRef:
    path: str
    name: str
    number: int  # 1-based
    total: int
    kind: Literal["image", "tiff", "pdf"]
    _source: _Source = field(repr=False)
    file_index: int = 0  # position of the file in the input list (for ordering)

    def load(self) -> PageImage:
        """Read or render this page (blocking; thread-safe)."""
        try:
            return self._source.load(self.number - 1)
        finally:
            self._source.done()


# ---------------------------------------------------------------- sources


def _read_bytes(path: str, fs: Any) -> bytes:
    if fs is not None:
        with fs.open(path, "rb") as fh:
            return fh.read()
    return Path(path).read_bytes()


def _head(path: str, fs: Any, n: int = 8) -> bytes:
    if fs is not None:
        with fs.open(path, "rb") as fh:
            return fh.read(n)
    with open(path, "rb") as fh:
        return fh.read(n)


class _Source:
    def __init__(self, path: str, fs: Any, page_format: PageFormat = "jpeg") -> None:
        self.path = path
        self.fs = fs
        self.page_format = page_format

    def load(self, index: int) -> PageImage:
        raise NotImplementedError

    def done(self) -> None:
        """One page finished (loaded or failed)."""

    def close(self) -> None:
        pass


class _ImageFile(_Source):
    def load(self, index: int) -> PageImage:
        data = _read_bytes(self.path, self.fs)
        width = height = None
        try:
            from PIL import Image

            with Image.open(BytesIO(data)) as img:
                width, height = img.size
        except Exception:  # HEIC without pillow-heif, or not an image: the core says what is wrong
            pass
        return PageImage(data, hashlib.sha256(data).hexdigest(), width, height)


class _TiffFile(_Source):
    def load(self, index: int) -> PageImage:
        from PIL import Image, ImageOps

        with Image.open(BytesIO(_read_bytes(self.path, self.fs))) as img:
            img.seek(index)
            frame = ImageOps.exif_transpose(img.copy()) or img.copy()
        if frame.mode not in ("RGB", "L", "RGBA", "LA"):
            frame = frame.convert("RGBA" if "A" in frame.getbands() else "RGB")
        return _page(frame, self.page_format)


class _PdfFile(_Source):
    """An open PDF shared by the workers rendering its pages; closed after its last page."""

    def __init__(self, path: str, fs: Any, dpi: float, password: str | None, page_format: PageFormat) -> None:
        super().__init__(path, fs, page_format)
        import pypdfium2 as pdfium

        self.dpi = dpi
        source: Any = _read_bytes(path, fs) if fs is not None else path
        with _PDFIUM_LOCK:
            self.pdf = pdfium.PdfDocument(source, password=password)
            self.total = len(self.pdf)
        self._remaining = self.total
        self._count_lock = threading.Lock()

    def load(self, index: int) -> PageImage:
        with _PDFIUM_LOCK:
            if self.pdf is None:
                raise RuntimeError(f"{self.path} was closed")
            page = self.pdf[index]
            try:
                width_pt, height_pt = page.get_size()
                scale = self.dpi / 72
                if width_pt * height_pt * scale * scale > MAX_RENDER_PIXELS:
                    scale = math.sqrt(MAX_RENDER_PIXELS / (width_pt * height_pt))
                bitmap = page.render(scale=scale)
                try:
                    image = bitmap.to_pil()  # a copy for BGR bitmaps: independent of the bitmap
                    if image.mode != "RGB":
                        image = image.convert("RGB")
                finally:
                    bitmap.close()
            finally:
                page.close()
        return _page(image, self.page_format)  # encoded outside the lock

    def done(self) -> None:
        with self._count_lock:
            self._remaining -= 1
            last = self._remaining <= 0
        if last:
            self.close()

    def close(self) -> None:
        with _PDFIUM_LOCK:
            if self.pdf is not None:
                self.pdf.close()
                self.pdf = None


# ---------------------------------------------------------------- listing


def _is_dir(path: str, fs: Any) -> bool:
    return fs.isdir(path) if fs is not None else os.path.isdir(path)


def expand_inputs(inputs: Any, *, recursive: bool = True, fs: Any = None) -> list[str]:
    """Files from a path, a list of paths, or directories (their supported files, sorted)."""
    if isinstance(inputs, (str, os.PathLike, PurePath)):
        inputs = [inputs]
    out: list[str] = []
    for item in inputs:
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


def _open(path: str, fs: Any, dpi: float, password: str | None, page_format: PageFormat) -> tuple[_Source, int, str]:
    head = _head(path, fs)
    if head.startswith(b"%PDF-") or (not head and PurePath(path).suffix.lower() in PDF_SUFFIXES):
        pdf = _PdfFile(path, fs, dpi, password, page_format)
        return pdf, pdf.total, "pdf"
    if head.startswith(_TIFF_MAGIC):
        from PIL import Image

        with Image.open(BytesIO(_read_bytes(path, fs))) as img:
            frames = getattr(img, "n_frames", 1)
        if frames > 1:
            return _TiffFile(path, fs, page_format), frames, "tiff"
    return _ImageFile(path, fs), 1, "image"


def iter_pages(
    files: Iterable[str],
    *,
    dpi: float = 150,
    fs: Any = None,
    password: str | None = None,
    page_format: PageFormat = "jpeg",
    opened: list[_Source] | None = None,
    policy: Any = None,
) -> Iterator[PageRef | FileError]:
    """Pages in file order. Files that cannot be opened come out as :class:`FileError`.

    ``policy`` (a :class:`qwen_vl_core.media.LocalFilePolicy`) is checked for local files first.

    ``opened`` collects the sources so the caller can close them all if it stops early.
    """
    for file_index, path in enumerate(files):
        try:
            if policy is not None and fs is None:
                policy.check(Path(path), label=f"file {path!r}")
            source, total, kind = _open(path, fs, dpi, password, page_format)
        except Exception as exc:  # missing, unreadable, encrypted, damaged
            yield FileError(path, exc, file_index)
            continue
        if opened is not None:
            opened.append(source)
        if total == 0:
            source.close()
            yield FileError(path, ValueError(f"{path} has no pages"), file_index)
            continue
        name = PurePath(path).name
        for number in range(1, total + 1):
            yield PageRef(path, name, number, total, kind, source, file_index)
