"""Format sniffing from content bytes (qwen_vl_core.media.formats)."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image

from qwen_vl_core.media import IMAGE_FORMATS, VIDEO_FORMATS, detect_format
from qwen_vl_core.media.formats import describe_format, webp_is_lossless


def _image_bytes(fmt: str, **save) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 120, 200)).save(buf, fmt, **save)
    return buf.getvalue()


def _ebml(doctype: bytes) -> bytes:
    body = b"\x42\x86\x81\x01" + b"\x42\xf7\x81\x01" + b"\x42\x82" + bytes([0x80 | len(doctype)]) + doctype
    body += b"\x42\x87\x81\x04\x42\x85\x81\x02"
    return b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(body)]) + body + b"\x18\x53\x80\x67" + b"\x00" * 32


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    payload = major + b"\x00\x00\x02\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(payload)) + b"ftyp" + payload + b"\x00\x00\x00\x08free"


VIDEO_HEADERS = {
    "MP4": _ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41"),
    "MOV": _ftyp(b"qt  ", b"qt  "),
    "MKV": _ebml(b"matroska"),
    "AVI": b"RIFF" + struct.pack("<I", 1000) + b"AVI LIST" + b"\x00" * 40,
    "FLV": b"FLV\x01\x05\x00\x00\x00\x09" + b"\x00" * 20,
    "WMV": bytes.fromhex("3026B2758E66CF11A6D900AA0062CE6C") + b"\x00" * 40,
}


@pytest.mark.parametrize("fmt", ["BMP", "JPEG", "PNG", "TIFF", "WEBP"])
def test_pillow_written_images_are_detected(fmt):
    assert detect_format(_image_bytes(fmt)) == ("image", fmt, IMAGE_FORMATS[fmt])


def test_big_endian_tiff_and_lossless_webp():
    assert detect_format(b"MM\x00*\x00\x00\x00\x08" + b"\x00" * 16)[1] == "TIFF"
    assert webp_is_lossless(_image_bytes("WEBP", lossless=True))
    assert not webp_is_lossless(_image_bytes("WEBP", quality=80))


@pytest.mark.parametrize("name", sorted(VIDEO_HEADERS))
def test_video_containers(name):
    assert detect_format(VIDEO_HEADERS[name]) == ("video", name, VIDEO_FORMATS[name])


def test_mp4_with_other_brands_and_classic_quicktime():
    assert detect_format(_ftyp(b"mp42", b"mp42", b"isom"))[1] == "MP4"
    assert detect_format(_ftyp(b"M4V ", b"M4V "))[1] == "MP4"
    assert detect_format(b"\x00\x00\x00\x10moov" + b"\x00" * 16)[1] == "MOV"


@pytest.mark.parametrize("brand", [b"heic", b"heix", b"hevc", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"])
def test_heic_brands(brand):
    assert detect_format(_ftyp(brand, b"mif1", brand)) == ("image", "HEIC", "image/heic")


def test_avif_is_not_heic_even_with_mif1():
    assert detect_format(_ftyp(b"avif", b"avif", b"mif1"))[1] == "AVIF"
    assert detect_format(_ftyp(b"mif1", b"mif1", b"avif", b"miaf"))[1] == "AVIF"


def test_webm_is_not_mkv():
    assert detect_format(_ebml(b"webm")) == ("video", "WEBM", "video/webm")
    assert "WEBM" not in VIDEO_FORMATS


@pytest.mark.parametrize(
    "data, expected",
    [
        (_image_bytes("GIF"), ("image", "GIF", "image/gif")),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", ("other", "PDF", "application/pdf")),
        (b"hello, this is a text file\nwith two lines\n", ("other", "text", "text/plain")),
        ("na\u00efve caf\u00e9 \u4e2d\u6587".encode(), ("other", "text", "text/plain")),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', ("other", "SVG", "image/svg+xml")),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", ("other", "WAV audio", "audio/wav")),
    ],
)
def test_refused_formats_are_named(data, expected):
    assert detect_format(data) == expected


def test_garbage_is_unknown():
    assert detect_format(b"") is None
    assert detect_format(b"\x00\x01\x02\x03\x04binary\xff\xfe") is None
    assert detect_format(b"BM but not a bitmap header at all") == ("other", "text", "text/plain")


def test_describe_format():
    assert describe_format(("image", "GIF", "image/gif")) == "GIF image"
    assert describe_format(("video", "MP4", "video/mp4")) == "MP4 video"
    assert describe_format(("other", "text", "text/plain")) == "text file"
    assert describe_format(None) == "an unrecognized format"
