"""PDFs written byte by byte for tests: pages of vector content and text (which must be
rendered), and scans at a chosen resolution (one full-page JPEG per page, as scanners write)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw

A4_PT = (595.0, 842.0)


def write_pdf(objects: list[bytes], *, trailer: bytes = b"", version: bytes = b"1.7") -> bytes:
    """A PDF from numbered objects (object 1 is the catalog); offsets and xref computed here.
    ``trailer`` adds entries to the trailer dictionary (e.g. ``/Encrypt 3 0 R /ID [...]``)."""
    out = io.BytesIO()
    out.write(b"%PDF-" + version + b"\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R " % (len(objects) + 1) + trailer + b">>\nstartxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def _stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def vector_pdf(path: Path, pages: int, size: tuple[float, float] = A4_PT) -> Path:
    """Pages with a heading ("Page n"), a line of body text and a filled rectangle: no images."""
    width, height = size
    n_pages = pages
    # 1 catalog, 2 pages, 3 font, then (page, content) per page
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(n_pages)).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % n_pages,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i in range(n_pages):
        content = (
            b"BT /F1 28 Tf 60 %d Td (Page %d) Tj ET\n" % (int(height) - 90, i + 1)
            + b"BT /F1 12 Tf 60 %d Td (The quick brown fox jumps over the lazy dog.) Tj ET\n" % (int(height) - 130)
            + b"0.2 0.3 0.8 rg 60 100 %d 120 re f\n" % int(width - 120)
        )
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.2f %.2f] /Resources << /Font << /F1 3 0 R >> >> "
            b"/Contents %d 0 R >>" % (width, height, 5 + 2 * i)
        )
        objects.append(_stream(content))
    path.write_bytes(write_pdf(objects))
    return path


def text_page_image(n: int, dpi: int, size_pt: tuple[float, float] = A4_PT) -> Image.Image:
    """A page of text lines as a scanner at ``dpi`` would see it (grayish paper, black text)."""
    w, h = round(size_pt[0] / 72 * dpi), round(size_pt[1] / 72 * dpi)
    img = Image.new("RGB", (w, h), (246, 244, 238))
    draw = ImageDraw.Draw(img)
    step = max(12, dpi // 6)
    draw.text((dpi // 2, dpi // 2), f"Page {n}", fill="black")
    for row, y in enumerate(range(dpi, h - dpi, step)):
        draw.text((dpi // 2, y), f"{row:03d} Lorem ipsum dolor sit amet, consectetur adipiscing elit {n}.", fill=(20, 20, 20))
    return img


def scanned_pdf(path: Path, pages: int, dpi: int = 200, quality: int = 85) -> Path:
    """A scan: each page one full-page JPEG at ``dpi`` (how scanners write PDFs)."""
    images = [text_page_image(n, dpi) for n in range(1, pages + 1)]
    images[0].save(path, format="PDF", save_all=True, append_images=images[1:], resolution=dpi, quality=quality)
    return path


def jpeg_page_pdf(
    path: Path,
    jpeg: bytes,
    pixel_size: tuple[int, int],
    *,
    page_pt: tuple[float, float] | None = None,
    rect: tuple[float, float, float, float] | None = None,
    rotate: int = 0,
    extra: bytes = b"",
    second_image: bool = False,
) -> Path:
    """One page holding ``jpeg`` (DCTDecode) drawn at ``rect`` (x, y, w, h in points; default:
    the whole page), optionally rotated, with extra content (text) or a second copy of the image."""
    w, h = pixel_size
    pw, ph = page_pt or (float(w), float(h))
    x, y, rw, rh = rect or (0.0, 0.0, pw, ph)
    draw = b"q %.2f 0 0 %.2f %.2f %.2f cm /Im1 Do Q\n" % (rw, rh, x, y)
    if second_image:
        draw += b"q %.2f 0 0 %.2f %.2f %.2f cm /Im1 Do Q\n" % (rw / 4, rh / 4, x, y)
    content = draw + extra
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.2f %.2f] /Rotate %d "
        b"/Resources << /XObject << /Im1 4 0 R >> /Font << /F1 6 0 R >> >> /Contents 5 0 R >>" % (pw, ph, rotate),
        _stream(jpeg, b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB "
                      b"/BitsPerComponent 8 /Filter /DCTDecode " % (w, h)),
        _stream(content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    path.write_bytes(write_pdf(objects))
    return path


def jpeg_bytes(size: tuple[int, int] = (400, 560), quality: int = 85) -> bytes:
    buf = io.BytesIO()
    text_page_image(1, 72, (size[0], size[1])).resize(size).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def empty_pdf(path: Path) -> Path:
    """A well-formed PDF with no pages."""
    path.write_bytes(write_pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]))
    return path
