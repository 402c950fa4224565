"""PDF pages through pypdfium2: a scanned page's own JPEG passed through as it is, or the page
rendered directly at the size the model looks at (never rendered large and scaled down).

PDFium is not thread-safe: every call into it holds one process-wide lock. That is why the
pipeline can render in worker processes (see :mod:`.prepare`).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from ..errors import InputValidationError
from ..media.types import MAX_ASPECT_RATIO, MAX_IMAGE_BYTES, MIN_SIDE_PX

__all__ = ["PDFIUM_LOCK", "open_pdf", "render_scale", "embedded_jpeg", "render_page", "Rendered"]

PDFIUM_LOCK = threading.RLock()

#: Never render more pixels than this, whatever the options (a poster page at the model's
#: high-resolution budget stays far below it).
MAX_RENDER_PIXELS = 40_000_000
#: Without a ``dpi`` a page is rendered at the model's budget, but never above this resolution
#: (a business card would otherwise be rendered at thousands of dpi).
MAX_AUTO_DPI = 300.0
_BOUNDS_TOLERANCE = 0.02  # an embedded image must cover the page to within 2% of each side


def open_pdf(
    source: Any, *, label: str, password: str | None, policy: Any = None, max_bytes: int | None = None
) -> Any:
    """An open ``PdfDocument`` for bytes, an open checked file
    (:class:`~qwen_vl_core.media.local_files.LocalFile`, owned by the document from then on) or a
    path; typed errors that name the file and the fix.

    A path is never handed to PDFium (which would open it again by name): it is opened once under
    ``policy`` (a :class:`~qwen_vl_core.media.LocalFilePolicy`; None: anywhere) and checked, refused
    past ``max_bytes`` (default :data:`~qwen_vl_core.media.types.MAX_DOCUMENT_FILE_BYTES` or the
    policy's ``max_file_bytes``) from its size, and PDFium reads from that descriptor.
    """
    import os

    import pypdfium2 as pdfium

    from ..media.local_files import LocalFile, file_limit, open_local

    if isinstance(source, (str, os.PathLike)):
        limit = max_bytes if max_bytes is not None else file_limit(policy, "document")
        source = open_local(source, policy, label=f"PDF {label!r}", max_bytes=limit)
    local = source if isinstance(source, LocalFile) else None
    if local is not None:
        if max_bytes is not None:
            local.limit(max_bytes)
        source = local.file
        source.seek(0)
    try:
        with PDFIUM_LOCK:
            pdf = pdfium.PdfDocument(source, password=password, autoclose=local is not None)
    except pdfium.PdfiumError as exc:
        if local is not None:
            local.close()
        text = str(exc)
        if "password" in text.lower():
            hint = "pass password=..." if password is None else "the password given is wrong"
            raise InputValidationError(f"PDF {label!r} is encrypted; {hint}") from exc
        raise InputValidationError(f"PDF {label!r} cannot be opened: {text} (damaged or not a PDF)") from exc
    except BaseException:
        if local is not None:
            local.close()
        raise
    return pdf


def render_scale(width_pt: float, height_pt: float, budget_pixels: int, dpi: float | None) -> float:
    """pypdfium2 scale (pixels per point) that renders the page at the model's pixel budget,
    or at ``dpi`` when that is smaller."""
    area = max(width_pt * height_pt, 1.0)
    scale = math.sqrt(min(budget_pixels, MAX_RENDER_PIXELS) / area)
    cap = (dpi if dpi is not None else MAX_AUTO_DPI) / 72.0
    scale = min(scale, cap)
    # stay within the budget after pdfium rounds the bitmap size up
    while math.ceil(width_pt * scale) * math.ceil(height_pt * scale) > budget_pixels and scale > 0.01:
        scale *= 0.998
    return scale


@dataclass
class Rendered:
    """One page image ready to encode or send: either JPEG bytes as found, or a PIL image."""

    data: bytes | None
    image: Any
    width: int
    height: int
    path: str  # "embedded" | "rendered"


def embedded_jpeg(page: Any, budget_pixels: int, dpi: float | None, *, read: bool = True) -> Rendered | None:
    """The page's one full-page JPEG as it is, when sending it is what rendering would do.

    Only for a page that is exactly one image object, DCT-encoded, unrotated, covering the whole
    page, opaque, gray or RGB, within the model's pixel budget (and ``dpi``) and DashScope's size
    limits; anything else (text layers, several images, vector content, masks, other filters) is
    rendered instead. Call with :data:`PDFIUM_LOCK` held. ``read=False`` checks the page
    objects only (a cheap probe; the JPEG's own header is not read).
    """
    import pypdfium2.raw as pdfium_c

    if page.get_rotation() % 360:
        return None
    objects = list(page.get_objects(max_depth=1))
    if len(objects) != 1 or objects[0].type != pdfium_c.FPDF_PAGEOBJ_IMAGE:
        return None
    image = objects[0]
    if image.get_filters() != ["DCTDecode"]:
        return None
    if pdfium_c.FPDFPageObj_HasTransparency(image):
        return None
    a, b, c, d, _e, _f = image.get_matrix().get()
    if abs(b) > 1e-6 or abs(c) > 1e-6 or a <= 0 or d <= 0:
        return None  # rotated, skewed or mirrored on the page
    left, bottom, right, top = image.get_bounds()
    box = page.get_cropbox()
    pw, ph = box[2] - box[0], box[3] - box[1]
    tol_w, tol_h = pw * _BOUNDS_TOLERANCE, ph * _BOUNDS_TOLERANCE
    if (
        abs(left - box[0]) > tol_w
        or abs(right - box[2]) > tol_w
        or abs(bottom - box[1]) > tol_h
        or abs(top - box[3]) > tol_h
    ):
        return None
    width, height = image.get_px_size()
    if width * height > budget_pixels:
        return None
    if dpi is not None and width > pw / 72.0 * dpi * 1.01:
        return None  # the user asked for less than the scan holds
    if min(width, height) <= MIN_SIDE_PX or max(width, height) / min(width, height) > MAX_ASPECT_RATIO:
        return None
    if not read:
        return Rendered(None, None, width, height, "embedded")
    data = bytes(image.get_data(decode_simple=False))
    if len(data) > MAX_IMAGE_BYTES or not _plain_jpeg(data, width, height):
        return None
    return Rendered(data, None, width, height, "embedded")


def _plain_jpeg(data: bytes, width: int, height: int) -> bool:
    """A baseline/progressive gray or RGB JPEG of this size, upright (no EXIF rotation): what
    the server decodes exactly as PDFium shows it. Reads the header only."""
    from PIL import Image

    try:
        with Image.open(BytesIO(data), formats=["JPEG"]) as img:
            if img.size != (width, height) or img.mode not in ("L", "RGB"):
                return False
            orientation = img.getexif().get(0x0112, 1)
            return orientation in (1, None)
    except Exception:
        return False


def render_page(page: Any, scale: float) -> Rendered:
    """The page rendered at ``scale`` (call with :data:`PDFIUM_LOCK` held); RGB or gray."""
    bitmap = page.render(scale=scale, may_draw_forms=True)
    try:
        image = bitmap.to_pil()  # a copy for BGR bitmaps: independent of the bitmap
    finally:
        bitmap.close()
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    return Rendered(None, image, image.width, image.height, "rendered")


def load_pdf_page(pdf: Any, index: int, budget_pixels: int, dpi: float | None) -> Rendered:
    """Page ``index`` (0-based) of an open document: its JPEG as it is, or rendered."""
    with PDFIUM_LOCK:
        page = pdf[index]
        try:
            found = embedded_jpeg(page, budget_pixels, dpi)
            if found is not None:
                return found
            width_pt, height_pt = page.get_size()
            return render_page(page, render_scale(width_pt, height_pt, budget_pixels, dpi))
        finally:
            page.close()
