"""Find a file's real format from its content bytes, never from its name.

:func:`detect_format` knows the formats DashScope accepts (images BMP, JPEG, PNG, TIFF, WEBP,
HEIC; videos MP4, AVI, MKV, MOV, FLV, WMV) and a few common ones it refuses (GIF, AVIF, WEBM,
PDF, SVG, text), so that a refusal can say what the file actually is.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "Kind",
    "FormatInfo",
    "IMAGE_FORMATS",
    "VIDEO_FORMATS",
    "LOSSLESS_IMAGE_FORMATS",
    "EXTENSIONS",
    "detect_format",
    "describe_format",
    "webp_is_lossless",
]

Kind = Literal["image", "video", "other"]
FormatInfo = tuple[Kind, str, str]

#: Accepted formats (name -> MIME type), in the order the documentation lists them.
IMAGE_FORMATS: dict[str, str] = {
    "BMP": "image/bmp",
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "TIFF": "image/tiff",
    "WEBP": "image/webp",
    "HEIC": "image/heic",
}
VIDEO_FORMATS: dict[str, str] = {
    "MP4": "video/mp4",
    "AVI": "video/x-msvideo",
    "MKV": "video/x-matroska",
    "MOV": "video/quicktime",
    "FLV": "video/x-flv",
    "WMV": "video/x-ms-wmv",
}
LOSSLESS_IMAGE_FORMATS = frozenset({"PNG", "BMP", "TIFF"})

#: File extension to use when naming a payload of this MIME type (uploads).
EXTENSIONS: dict[str, str] = {
    "image/bmp": ".bmp",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/tiff": ".tiff",
    "image/webp": ".webp",
    "image/heic": ".heic",
    "video/mp4": ".mp4",
    "video/x-msvideo": ".avi",
    "video/x-matroska": ".mkv",
    "video/quicktime": ".mov",
    "video/x-flv": ".flv",
    "video/x-ms-wmv": ".wmv",
}

_HEIC_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_ASF_GUID = bytes.fromhex("3026B2758E66CF11A6D900AA0062CE6C")
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_BMP_DIB_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
_CLASSIC_QT_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"pnot"})


def detect_format(data: bytes) -> FormatInfo | None:
    """``(kind, format name, MIME type)`` of ``data`` sniffed from its leading bytes, or ``None``.

    ``kind`` is ``"image"`` or ``"video"`` for pictures and films (accepted or not: check the name
    against :data:`IMAGE_FORMATS` / :data:`VIDEO_FORMATS`) and ``"other"`` for documents and text.
    """
    head = bytes(data[:4096])
    if head.startswith(b"\xff\xd8\xff"):
        return "image", "JPEG", "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", "PNG", "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image", "GIF", "image/gif"
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "image", "TIFF", "image/tiff"
    if _is_bmp(head):
        return "image", "BMP", "image/bmp"
    if head[:4] == b"RIFF" and len(head) >= 12:
        form = head[8:12]
        if form == b"WEBP":
            return "image", "WEBP", "image/webp"
        if form == b"AVI ":
            return "video", "AVI", "video/x-msvideo"
        if form == b"WAVE":
            return "other", "WAV audio", "audio/wav"
        return None
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _iso_bmff(head)
    if len(head) >= 8 and head[4:8] in _CLASSIC_QT_ATOMS:
        return "video", "MOV", "video/quicktime"
    if head.startswith(_EBML_MAGIC):
        doctype = _ebml_doctype(head)
        if doctype == "webm":
            return "video", "WEBM", "video/webm"
        if doctype in ("matroska", None):
            return "video", "MKV", "video/x-matroska"
        return None
    if head.startswith(b"FLV\x01"):
        return "video", "FLV", "video/x-flv"
    if head.startswith(_ASF_GUID):
        return "video", "WMV", "video/x-ms-wmv"
    if head.startswith(b"\x00\x00\x01\xba") or head.startswith(b"\x00\x00\x01\xb3"):
        return "video", "MPEG", "video/mpeg"
    if head.startswith(b"\x00\x00\x01\x00") and len(head) > 6 and head[4] > 0:
        return "image", "ICO", "image/vnd.microsoft.icon"
    if head.startswith(b"%PDF-"):
        return "other", "PDF", "application/pdf"
    if head.startswith(b"PK\x03\x04"):
        return "other", "ZIP archive", "application/zip"
    return _text(head)


def describe_format(info: FormatInfo | None) -> str:
    """Short phrase for error messages: ``"GIF image"``, ``"MP4 video"``, ``"text file"``."""
    if info is None:
        return "an unrecognized format"
    kind, name, _ = info
    if kind == "other":
        return {"text": "text file", "SVG": "SVG image", "PDF": "PDF document"}.get(name, name)
    return f"{name} {kind}"


def webp_is_lossless(data: bytes) -> bool:
    """True when a WEBP file's image data is VP8L (lossless) rather than VP8 (lossy)."""
    pos = 12
    end = min(len(data), 1 << 20)
    while pos + 8 <= end:
        fourcc = data[pos : pos + 4]
        if fourcc == b"VP8L":
            return True
        if fourcc == b"VP8 ":
            return False
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        pos += 8 + size + (size & 1)
    return False


def _is_bmp(head: bytes) -> bool:
    if not head.startswith(b"BM") or len(head) < 18:
        return False
    dib = int.from_bytes(head[14:18], "little")
    return dib in _BMP_DIB_SIZES


def _iso_bmff(head: bytes) -> FormatInfo:
    size = int.from_bytes(head[0:4], "big")
    major = head[8:12]
    end = min(len(head), size if 16 <= size <= 4096 else 64)
    compatible = {head[i : i + 4] for i in range(16, end - 3, 4)}
    brands = {major} | compatible
    if major in _AVIF_BRANDS or (major in (b"mif1", b"msf1") and brands & _AVIF_BRANDS):
        return "image", "AVIF", "image/avif"
    if major in _HEIC_BRANDS:
        return "image", "HEIC", "image/heic"
    if major == b"qt  ":
        return "video", "MOV", "video/quicktime"
    if major in (b"M4A ", b"M4B ", b"M4P "):
        return "other", "M4A audio", "audio/mp4"
    if major in (b"jp2 ", b"jpx ", b"jpm "):
        return "image", "JPEG 2000", "image/jp2"
    if major == b"crx ":
        return "image", "CR3 raw", "image/x-canon-cr3"
    if not brands & {b"isom", b"iso2", b"mp41", b"mp42", b"avc1"} and brands & _HEIC_BRANDS:
        return "image", "HEIC", "image/heic"
    return "video", "MP4", "video/mp4"


def _read_vint(buf: bytes, pos: int, keep_marker: bool) -> tuple[int, int] | None:
    """EBML variable-length integer at ``pos``: (value, next position)."""
    if pos >= len(buf):
        return None
    first = buf[pos]
    length = 1
    mask = 0x80
    while length <= 8 and not first & mask:
        mask >>= 1
        length += 1
    if length > 8 or pos + length > len(buf):
        return None
    value = first if keep_marker else first & (mask - 1)
    for b in buf[pos + 1 : pos + length]:
        value = (value << 8) | b
    return value, pos + length


def _ebml_doctype(head: bytes) -> str | None:
    """The DocType of an EBML header ("matroska", "webm"), or None when not found."""
    size = _read_vint(head, 4, keep_marker=False)
    if size is None:
        return None
    header_size, pos = size
    end = min(len(head), pos + header_size)
    while pos < end:
        element = _read_vint(head, pos, keep_marker=True)
        if element is None:
            return None
        element_id, pos = element
        length = _read_vint(head, pos, keep_marker=False)
        if length is None:
            return None
        n, pos = length
        if element_id == 0x4282:
            return head[pos : pos + n].rstrip(b"\x00").decode("ascii", "replace").lower()
        pos += n
    return None


def _text(head: bytes) -> FormatInfo | None:
    if not head or b"\x00" in head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the 4 KB boundary
            return None
        text = head[: exc.start].decode("utf-8")
    if any(ord(c) < 32 and c not in "\t\n\r\f\x1b" for c in text):
        return None
    lowered = text.lstrip("\ufeff \t\r\n").lower()
    if lowered.startswith("<svg") or (lowered.startswith("<?xml") and "<svg" in lowered):
        return "other", "SVG", "image/svg+xml"
    return "other", "text", "text/plain"
