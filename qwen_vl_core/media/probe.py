"""Facts read from file headers, without decoding: the size and duration of MP4 / MOV files from
their ISO-BMFF boxes (``moov/mvhd``, ``trak/tkhd``; other containers are not probed), and the size,
EXIF orientation and structural completeness of images (:func:`probe_image`)."""

from __future__ import annotations

import io
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["VideoInfo", "probe_mp4", "ImageHeader", "ImageProbeError", "TruncatedImageError", "probe_image"]

_MAX_MOOV = 64 * 1024 * 1024
_CONTAINERS = {b"trak", b"mdia", b"minf", b"stbl", b"edts"}


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    duration_s: float


def _boxes(data: bytes, start: int = 0, end: int | None = None):
    """Yield (type, payload start, payload end) for the boxes in ``data[start:end]``."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                return
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind, pos + header, pos + size
        pos += size


def _find_moov(fh: BinaryIO, file_size: int) -> bytes | None:
    pos = 0
    while pos + 8 <= file_size:
        fh.seek(pos)
        head = fh.read(16)
        if len(head) < 8:
            return None
        size, kind = struct.unpack_from(">I4s", head)
        header = 8
        if size == 1:
            if len(head) < 16:
                return None
            size = struct.unpack_from(">Q", head, 8)[0]
            header = 16
        elif size == 0:
            size = file_size - pos
        if size < header:
            return None
        if kind == b"moov":
            if size > _MAX_MOOV:
                return None
            fh.seek(pos + header)
            return fh.read(size - header)
        pos += size
    return None


def _mvhd_duration(data: bytes, start: int, end: int) -> float | None:
    if end - start < 20:
        return None
    version = data[start]
    if version == 1:
        if end - start < 32:
            return None
        timescale, duration = struct.unpack_from(">IQ", data, start + 20)
    else:
        timescale, duration = struct.unpack_from(">II", data, start + 12)
    if not timescale or duration in (0, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF):
        return None
    return duration / timescale


def _tkhd_size(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    version = data[start] if end > start else 0
    # version 0: 4 flags/version + 20 (times, id, reserved, duration); version 1: 4 + 32
    body = start + (36 if version == 1 else 24)
    matrix = body + 8 + 8  # reserved(8) layer(2) alternate_group(2) volume(2) reserved(2)
    dims = matrix + 36
    if dims + 8 > end:
        return None
    a, b = struct.unpack_from(">ii", data, matrix)
    width, height = struct.unpack_from(">II", data, dims)
    width, height = width >> 16, height >> 16
    if not width or not height:
        return None
    if a == 0 and abs(b) == 0x10000:  # rotated by 90 or 270 degrees: displayed the other way round
        width, height = height, width
    return width, height


def probe_mp4(source: str | Path | bytes) -> VideoInfo | None:
    """Display size and duration of an MP4/MOV file (a path or its bytes), or ``None`` when they
    cannot be read. Only the ``moov`` box is parsed; nothing is decoded."""
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            moov = _find_moov(io.BytesIO(source), len(source))
        else:
            path = Path(source)
            with path.open("rb") as fh:
                moov = _find_moov(fh, path.stat().st_size)
    except OSError:
        return None
    if moov is None:
        return None
    duration = None
    size = None
    for kind, start, end in _boxes(moov):
        if kind == b"mvhd":
            duration = _mvhd_duration(moov, start, end)
        elif kind == b"trak" and size is None:
            for sub, s, e in _boxes(moov, start, end):
                if sub == b"tkhd":
                    size = _tkhd_size(moov, s, e)
    if duration is None or size is None:
        return None
    return VideoInfo(size[0], size[1], duration)


# ------------------------------------------------------------------------------------------ images
#
# What an image needs before it is sent as it is (display size, and that the file is whole) is in
# its header, chunks and segments: read them here without a pixel decoder. Each reader walks the
# file's structure once (PNG chunks, JPEG segments up to the scan, RIFF chunks, the first TIFF
# IFD, ISO-BMFF boxes) and raises ImageProbeError for a malformed file, TruncatedImageError for one
# that ends early (the PNG IEND chunk, the JPEG end-of-image marker, the RIFF size, the BMP
# pixel array, the TIFF strips or tiles, the HEIF boxes). EXIF orientation is read as Pillow's
# ``getexif()`` reads it (EXIF first, then an XMP ``tiff:Orientation``), so both always agree.


class ImageProbeError(ValueError):
    """The bytes are not a well-formed image of the format they were sniffed as."""


class TruncatedImageError(ImageProbeError):
    """The file ends before its structure says it does (cut off while copying or downloading)."""


@dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says, without decoding a pixel."""

    format: str
    width: int  # as stored
    height: int
    orientation: int = 1  # EXIF orientation, 1..8
    frames: int = 1  # animation frames (APNG, animated WEBP); TIFF pages are not counted here
    alpha: bool = False  # an alpha channel or a transparency key

    @property
    def display_size(self) -> tuple[int, int]:
        """``(width, height)`` once the EXIF orientation is applied."""
        if self.orientation in (5, 6, 7, 8):
            return self.height, self.width
        return self.width, self.height


_XMP_ORIENTATION = re.compile(rb'tiff:Orientation(="|>)([0-9])')


def probe_image(data: bytes, fmt: str) -> ImageHeader | None:
    """Header facts of image ``data`` already sniffed as ``fmt`` (a name from ``IMAGE_FORMATS``),
    after checking that the file is structurally whole. ``None`` for HEIC, whose size needs a
    HEIF parser (its boxes are still checked). Raises :class:`TruncatedImageError` or
    :class:`ImageProbeError`."""
    reader = _IMAGE_READERS.get(fmt)
    if reader is None:
        raise ImageProbeError(f"no header reader for {fmt}")
    try:
        return reader(data)
    except ImageProbeError:
        raise
    except (struct.error, IndexError, ValueError, OverflowError) as exc:  # a field points outside the file
        raise TruncatedImageError(f"a header field points past the end of the file ({exc})") from None


def _orientation_from_exif(exif: bytes | None) -> int | None:
    """The Orientation tag (0x0112) of IFD0 in a TIFF-structured EXIF block, or None."""
    if not exif:
        return None
    for _ in range(2):  # as Pillow: one or two "Exif\0\0" prefixes (JPEG APP1 style, and PNGs that keep it)
        if exif.startswith(b"Exif\x00\x00"):
            exif = exif[6:]
    if exif[:4] == b"II*\x00":
        e = "<"
    elif exif[:4] == b"MM\x00*":
        e = ">"
    else:
        return None
    try:
        (ifd,) = struct.unpack_from(e + "I", exif, 4)
        (count,) = struct.unpack_from(e + "H", exif, ifd)
        for i in range(count):
            tag, kind, n = struct.unpack_from(e + "HHI", exif, ifd + 2 + 12 * i)
            if tag != 0x0112:
                continue
            if n != 1 or kind not in (3, 4, 8, 9):
                return None
            code = {3: "H", 4: "I", 8: "h", 9: "i"}[kind]
            return int(struct.unpack_from(e + code, exif, ifd + 10 + 12 * i)[0])
    except struct.error:
        return None
    return None


def _orientation(exif: bytes | None, xmp: bytes | None) -> int:
    value = _orientation_from_exif(exif)
    if value is None and xmp:
        match = _XMP_ORIENTATION.search(xmp)
        value = int(match[2]) if match else None
    return value if value is not None and 1 <= value <= 8 else 1


# ---------------------------------------------------------------------------------------- PNG

_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_PNG_TEXT = (b"tEXt", b"zTXt", b"iTXt")


def _png(data: bytes) -> ImageHeader:
    n = len(data)
    if n < 33 or data[12:16] != b"IHDR":
        raise (TruncatedImageError if n < 33 else ImageProbeError)("no IHDR chunk at the start")
    length, = struct.unpack_from(">I", data, 8)
    crc, = struct.unpack_from(">I", data, 29)
    if length != 13 or zlib.crc32(data[12:29]) != crc:
        raise ImageProbeError("damaged IHDR chunk")
    width, height, depth, color = struct.unpack_from(">IIBB", data, 16)
    if not width or not height or depth not in _PNG_DEPTHS.get(color, ()):
        raise ImageProbeError(f"invalid IHDR ({width}x{height}, bit depth {depth}, colour type {color})")
    exif = xmp = None
    frames = 1
    alpha = color in (4, 6)
    idat = False
    pos = 33
    while True:
        if pos + 8 > n:
            raise TruncatedImageError("the file ends before its IEND chunk")
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if length > 0x7FFFFFFF:
            raise ImageProbeError(f"invalid chunk length at byte {pos}")
        if end > n:
            where = "" if kind == b"IEND" else ", before IEND"
            raise TruncatedImageError(f"the file ends inside its {kind.decode('latin-1')} chunk{where}")
        if kind == b"IDAT":
            idat = True
        elif kind == b"IEND":
            break
        elif kind == b"eXIf":
            exif = b"Exif\x00\x00" + data[pos + 8 : end - 4]  # as Pillow stores it (one prefix is stripped)
        elif kind == b"acTL" and length >= 8:
            frames = max(1, struct.unpack_from(">I", data, pos + 8)[0])
        elif kind == b"tRNS":
            alpha = True
        elif kind in _PNG_TEXT:
            exif, xmp = _png_text(data[pos + 8 : end - 4], kind, exif, xmp)
        pos = end
    if not idat:
        raise ImageProbeError("no image data (IDAT chunk)")
    return ImageHeader("PNG", width, height, _orientation(exif, xmp), frames, alpha)


def _png_text(chunk: bytes, kind: bytes, exif: bytes | None, xmp: bytes | None) -> tuple[bytes | None, bytes | None]:
    """EXIF from ImageMagick's "Raw profile type exif" text, XMP from "XML:com.adobe.xmp" (as Pillow reads them)."""
    keyword, _, rest = chunk.partition(b"\x00")
    if keyword not in (b"Raw profile type exif", b"XML:com.adobe.xmp"):
        return exif, xmp
    try:
        if kind == b"zTXt":
            text = _inflate(rest[1:])
        elif kind == b"iTXt":
            compressed = rest[:1] == b"\x01"
            _lang, _, rest = rest[2:].partition(b"\x00")
            _translated, _, text = rest.partition(b"\x00")
            text = _inflate(text) if compressed else text
        else:
            text = rest
    except (zlib.error, ValueError):
        return exif, xmp
    if keyword == b"XML:com.adobe.xmp":
        return exif, text
    if exif is None:
        try:
            exif = bytes.fromhex("".join(text.decode("latin-1").split("\n")[3:]))
        except ValueError:
            pass
    return exif, xmp


def _inflate(data: bytes, limit: int = 1 << 20) -> bytes:
    """zlib-decompress at most ``limit`` bytes (Pillow's own cap for PNG text): no decompression bombs."""
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, limit)
    if inflater.unconsumed_tail:
        raise ValueError("compressed text chunk too large")
    return out


# ---------------------------------------------------------------------------------------- JPEG

_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}


def _jpeg(data: bytes) -> ImageHeader:
    n = len(data)
    pos = 2
    size = None
    exif = xmp = None
    while True:
        pos = data.find(b"\xff", pos)  # as Pillow (and libjpeg): junk between segments is skipped
        if pos < 0:
            raise TruncatedImageError("the file ends before its image data")
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            raise TruncatedImageError("the file ends before its image data")
        marker = data[pos]
        pos += 1
        if marker in _STANDALONE or marker == 0x00:  # no length; FF 00 is escaped junk
            continue
        if marker in (0xD8, 0xD9):
            raise ImageProbeError("no image data before the end-of-image marker")
        if pos + 2 > n:
            raise TruncatedImageError("the file ends inside a segment header")
        (length,) = struct.unpack_from(">H", data, pos)
        end = pos + length
        if length < 2:
            raise ImageProbeError(f"invalid segment length at byte {pos}")
        if end > n:
            raise TruncatedImageError("the file ends inside a header segment")
        if marker in _SOF and size is None:
            if length < 8:
                raise ImageProbeError("frame header too short")
            height, width = struct.unpack_from(">HH", data, pos + 3)
            size = (width, height)
        elif marker == 0xE1:
            body = data[pos + 2 : end]
            if body.startswith(b"Exif\x00\x00") and exif is None:
                exif = body
            elif body.startswith(b"http://ns.adobe.com/xap/1.0/\x00"):
                xmp = body
        elif marker == 0xDA:
            if size is None:
                raise ImageProbeError("image data before the frame header (no SOF segment)")
            # Entropy-coded data cannot hold FF D9 (an FF there is followed by 00 or a restart
            # marker), so the first FF D9 after the first scan header is the end of this image.
            if data.rfind(b"\xff\xd9", end) < 0:  # from the end: found at once in a whole file
                raise TruncatedImageError("no end-of-image marker: the image data is cut off")
            break
        pos = end
    return ImageHeader("JPEG", size[0], size[1], _orientation(exif, xmp))


# ---------------------------------------------------------------------------------------- WEBP


def _webp(data: bytes) -> ImageHeader:
    n = len(data)
    if n < 20:
        raise TruncatedImageError("the file ends inside its RIFF header")
    (riff,) = struct.unpack_from("<I", data, 4)
    end = 8 + riff
    if end > n:
        raise TruncatedImageError(f"the RIFF header says {end} bytes, the file has {n}")
    size = None
    exif = xmp = None
    frames = 0
    alpha = False
    image = False
    pos = 12
    while pos + 8 <= end:
        kind, length = struct.unpack_from("<4sI", data, pos)
        body = pos + 8
        if body + length > end:
            raise TruncatedImageError(f"the file ends inside its {kind.decode('latin-1').strip()} chunk")
        if kind == b"VP8X" and pos == 12:
            if length < 10:
                raise ImageProbeError("VP8X chunk too short")
            flags = data[body]
            alpha = bool(flags & 0x10)
            width = 1 + int.from_bytes(data[body + 4 : body + 7], "little")
            height = 1 + int.from_bytes(data[body + 7 : body + 10], "little")
            size = (width, height)
        elif kind == b"VP8 ":
            image = True
            if size is None:
                if length < 10 or data[body + 3 : body + 6] != b"\x9d\x01\x2a":
                    raise ImageProbeError("VP8 bitstream without a key frame header")
                w, h = struct.unpack_from("<HH", data, body + 6)
                size = (w & 0x3FFF, h & 0x3FFF)
        elif kind == b"VP8L":
            image = True
            if size is None:
                if length < 5 or data[body] != 0x2F:
                    raise ImageProbeError("VP8L bitstream without its signature")
                (bits,) = struct.unpack_from("<I", data, body + 1)
                size = ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
                alpha = bool(bits >> 28 & 1)
        elif kind == b"ANMF":
            image = True
            frames += 1
        elif kind == b"ALPH":
            alpha = True
        elif kind == b"EXIF" and exif is None:
            exif = data[body : body + length]
        elif kind == b"XMP " and xmp is None:
            xmp = data[body : body + length]
        pos = body + length + (length & 1)
    if not image or size is None:
        raise ImageProbeError("no image data (VP8, VP8L or ANMF chunk)")
    return ImageHeader("WEBP", size[0], size[1], _orientation(exif, xmp), max(frames, 1), alpha)


# ---------------------------------------------------------------------------------------- BMP


def _bmp(data: bytes) -> ImageHeader:
    n = len(data)
    offset, dib = struct.unpack_from("<II", data, 10)
    if 14 + dib > n:
        raise TruncatedImageError("the file ends inside its header")
    if dib == 12:
        width, height, _planes, bpp = struct.unpack_from("<HHHH", data, 18)
        compression = size_image = 0
    else:
        width, height, _planes, bpp, compression, size_image = struct.unpack_from("<iiHHII", data, 18)
    height = abs(height)
    if width <= 0 or not height or bpp not in (1, 2, 4, 8, 16, 24, 32, 64):
        raise ImageProbeError(f"invalid header ({width}x{height}, {bpp} bits per pixel)")
    if compression in (0, 3, 6):  # uncompressed rows, padded to 4 bytes
        needed = offset + (width * bpp + 31) // 32 * 4 * height
    else:  # run-length and embedded codecs: the header's own image size, when given
        needed = offset + size_image
    if needed > n:
        raise TruncatedImageError(f"the pixel data needs {needed} bytes, the file has {n}")
    alpha = bpp == 32 and compression in (3, 6)
    return ImageHeader("BMP", width, height, 1, 1, alpha)


# ---------------------------------------------------------------------------------------- TIFF

_TIFF_TYPES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
_TIFF_INTS = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 13: "I", 16: "Q", 17: "q", 18: "Q"}


def _tiff(data: bytes) -> ImageHeader:
    n = len(data)
    e = "<" if data[:2] == b"II" else ">"
    big = struct.unpack_from(e + "H", data, 2)[0] == 43
    if big:
        (ifd,) = struct.unpack_from(e + "Q", data, 8)
        count_fmt, entry, inline = "Q", 20, 8
    else:
        (ifd,) = struct.unpack_from(e + "I", data, 4)
        count_fmt, entry, inline = "H", 12, 4
    if not ifd:
        raise ImageProbeError("no image directory")
    head = struct.calcsize(count_fmt)
    if ifd + head > n:
        raise TruncatedImageError("the file ends before its first image directory")
    (count,) = struct.unpack_from(e + count_fmt, data, ifd)
    if ifd + head + count * entry > n:
        raise TruncatedImageError("the file ends inside its first image directory")
    tags: dict[int, tuple[int, ...]] = {}
    for i in range(count):
        at = ifd + head + i * entry
        tag, kind = struct.unpack_from(e + "HH", data, at)
        if tag not in (256, 257, 273, 274, 279, 324, 325, 338) or kind not in _TIFF_INTS:
            continue
        (number,) = struct.unpack_from(e + ("Q" if big else "I"), data, at + 4)
        value_at = at + 4 + (8 if big else 4)
        if number * _TIFF_TYPES[kind] > inline:
            (value_at,) = struct.unpack_from(e + ("Q" if big else "I"), data, value_at)
        if value_at + number * _TIFF_TYPES[kind] > n:
            raise TruncatedImageError(f"the file ends before the values of TIFF tag {tag}")
        tags[tag] = struct.unpack_from(f"{e}{number}{_TIFF_INTS[kind]}", data, value_at)
    width, height = (tags.get(256) or (0,))[0], (tags.get(257) or (0,))[0]
    if not width or not height:
        raise ImageProbeError("no image width or height")
    for offsets, counts in ((273, 279), (324, 325)):
        if offsets in tags and counts in tags:
            ends = (o + c for o, c in zip(tags[offsets], tags[counts]))
            last = max(ends, default=0)
            if last > n:
                raise TruncatedImageError(f"the image data needs {last} bytes, the file has {n}")
    orientation = (tags.get(274) or (1,))[0]
    orientation = orientation if 1 <= orientation <= 8 else 1
    return ImageHeader("TIFF", width, height, orientation, 1, bool(tags.get(338)))


# ---------------------------------------------------------------------------------------- HEIC


def _heic(data: bytes) -> None:
    """Walk the top-level ISO-BMFF boxes: each must fit in the file."""
    n = len(data)
    pos = 0
    while pos < n:
        if pos + 8 > n:
            raise TruncatedImageError("the file ends inside a box header")
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > n:
                raise TruncatedImageError("the file ends inside a box header")
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:  # the last box runs to the end of the file
            return None
        if size < header:
            raise ImageProbeError(f"invalid box size at byte {pos}")
        if pos + size > n:
            raise TruncatedImageError(f"the file ends inside its {kind.decode('latin-1')} box")
        pos += size
    return None


_IMAGE_READERS = {"PNG": _png, "JPEG": _jpeg, "WEBP": _webp, "BMP": _bmp, "TIFF": _tiff, "HEIC": _heic}
