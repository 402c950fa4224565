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


# ------------------------------------------------------------------ headers read without decoding (probe_image)

from qwen_vl_core.media.probe import ImageProbeError, TruncatedImageError, probe_image  # noqa: E402
from qwen_vl_core.media.resize import oriented_size  # noqa: E402

_XMP = '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description tiff:Orientation="{}"/></rdf:RDF></x:xmpmeta>'


def _oriented(fmt: str, mode: str, orientation: int, how: str) -> bytes:
    from PIL import PngImagePlugin

    params: dict = {}
    if how == "exif":
        exif = Image.Exif()
        exif[0x0112] = orientation
        params["exif"] = exif.tobytes()
    elif how == "xmp" and fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", _XMP.format(orientation), zip=orientation % 2 == 0)
        params["pnginfo"] = info
    elif how == "xmp":
        params["xmp"] = _XMP.format(orientation).encode()
    if fmt == "WEBP":
        params["lossless"] = orientation % 2 == 0
    buf = io.BytesIO()
    Image.new(mode, (37, 23)).save(buf, fmt, **params)
    return buf.getvalue()


def _corpus():
    for fmt in ("PNG", "JPEG", "WEBP", "BMP", "TIFF"):
        for mode in ("RGB", "RGBA", "L", "LA", "P", "1", "I;16", "CMYK"):
            for orientation in (1, 2, 3, 5, 6, 8):
                for how in ("exif", "xmp", "none"):
                    try:
                        data = _oriented(fmt, mode, orientation, how)
                    except (OSError, ValueError, KeyError):
                        continue  # a mode this format cannot store
                    yield pytest.param(fmt, data, id=f"{fmt}-{mode}-{orientation}-{how}")


@pytest.mark.parametrize("fmt, data", list(_corpus()))
def test_header_reads_agree_with_pillow(fmt, data):
    """Size and display size (EXIF first, then XMP orientation) as Pillow reports them."""
    header = probe_image(data, fmt)
    img = Image.open(io.BytesIO(data))
    if fmt == "TIFF":  # Pillow reports a TIFF upright already (and turns its pixels on load)
        assert header.display_size == img.size
    else:
        assert (header.width, header.height) == img.size
        assert header.display_size == oriented_size(img)


def test_png_exif_after_the_image_data_and_imagemagick_raw_profile():
    img = Image.new("RGB", (40, 20))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    png = buf.getvalue()
    exif = Image.Exif()
    exif[0x0112] = 6
    payload = exif.tobytes()
    chunk = struct.pack(">I", len(payload)) + b"eXIf" + payload
    chunk += struct.pack(">I", __import__("zlib").crc32(chunk[4:]))
    late = png[:-12] + chunk + png[-12:]  # eXIf after IDAT: Pillow only sees it once it has loaded the pixels
    assert probe_image(late, "PNG").display_size == (20, 40) == oriented_size(Image.open(io.BytesIO(late)))
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type exif", f"\nexif\n{len(payload):8}\n{payload.hex()}\n", zip=True)
    buf = io.BytesIO()
    img.save(buf, "PNG", pnginfo=info)
    assert probe_image(buf.getvalue(), "PNG").display_size == (20, 40)


def test_animation_frames_and_alpha_from_headers():
    frames = [Image.new("RGBA", (30, 20), (i * 60, 0, 0, 128)) for i in range(3)]
    for fmt in ("PNG", "WEBP"):
        buf = io.BytesIO()
        frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=100)
        header = probe_image(buf.getvalue(), fmt)
        assert (header.width, header.height, header.frames, header.alpha) == (30, 20, 3, True), fmt
        assert header.frames == Image.open(io.BytesIO(buf.getvalue())).n_frames
    assert not probe_image(_image_bytes("PNG"), "PNG").alpha


def test_big_endian_and_bigtiff_headers():
    buf = io.BytesIO()
    Image.new("L", (50, 30)).save(buf, "TIFF", big_tiff=True)
    assert (probe_image(buf.getvalue(), "TIFF").width, probe_image(buf.getvalue(), "TIFF").height) == (50, 30)
    # a minimal big-endian TIFF: 8x4 L, one uncompressed strip of 32 bytes at offset 8
    entries = [(256, 3, 1, 8 << 16), (257, 3, 1, 4 << 16), (258, 3, 1, 8 << 16), (273, 4, 1, 8), (279, 4, 1, 32)]
    ifd = struct.pack(">H", len(entries)) + b"".join(struct.pack(">HHII", *e) for e in entries) + b"\0\0\0\0"
    tiff = b"MM\x00*" + struct.pack(">I", 40) + b"\x80" * 32 + ifd
    assert probe_image(tiff, "TIFF").width == 8 and Image.open(io.BytesIO(tiff)).size == (8, 4)
    with pytest.raises(TruncatedImageError):
        probe_image(tiff[:30] + tiff[40:], "TIFF")  # the strip is shorter than the directory says


@pytest.mark.parametrize(
    "fmt, data",
    [
        ("PNG", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40),
        ("JPEG", b"\xff\xd8\xff\xd9"),
        ("WEBP", b"RIFF\x0c\x00\x00\x00WEBPJUNK\x00\x00\x00\x00"),
        ("BMP", b"BM" + b"\x00" * 12 + struct.pack("<IiiHH", 40, 0, 10, 1, 24) + b"\x00" * 24),
    ],
)
def test_malformed_headers_are_not_called_truncated(fmt, data):
    with pytest.raises(ImageProbeError) as info:
        probe_image(data, fmt)
    assert not isinstance(info.value, TruncatedImageError)


def test_jpeg_junk_between_segments_is_skipped_as_pillow_does():
    jpeg = _image_bytes("JPEG")
    after_app0 = 4 + int.from_bytes(jpeg[4:6], "big")
    junk = jpeg[:after_app0] + b"\x00\x00junk" + jpeg[after_app0:]
    assert Image.open(io.BytesIO(junk)).size == (32, 24)
    assert (probe_image(junk, "JPEG").width, probe_image(junk, "JPEG").height) == (32, 24)


def test_compressed_png_text_is_inflated_with_a_cap():
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type exif", "0" * (4 << 20), zip=True)  # 4 MB of text in a few KB
    buf = io.BytesIO()
    Image.new("RGB", (20, 20)).save(buf, "PNG", pnginfo=info)
    assert probe_image(buf.getvalue(), "PNG").orientation == 1  # ignored, not inflated whole


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "TIFF"])
def test_damaged_files_raise_only_probe_errors(fmt):
    """Random cuts and byte flips: a header reader answers or raises ImageProbeError, nothing else."""
    import random

    rng = random.Random(fmt)
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (40, 30), (1, 2, 3)).save(buf, fmt, exif=exif.tobytes())
    whole = buf.getvalue()
    for _ in range(300):
        data = bytearray(whole[: rng.randint(1, len(whole))] if rng.random() < 0.5 else whole)
        for _ in range(rng.randint(0, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            probe_image(bytes(data), fmt)
        except ImageProbeError:
            pass
