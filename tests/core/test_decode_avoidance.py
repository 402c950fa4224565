"""An image that needs no resize is never pixel-decoded: size, orientation, truncation and the
documented limits come from its header and chunks. Asserted by counting decoder calls, never by timing."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image, ImageFile, PngImagePlugin, WebPImagePlugin

from qwen_vl_core import QwenVLClient
from qwen_vl_core.errors import InputValidationError
from qwen_vl_core.media import MediaOptions, resolve_frames, resolve_image


@pytest.fixture
def decodes(monkeypatch) -> Counter:
    """Counts Image.open calls and pixel loads (every plugin's decoder runs through one of these)."""
    calls: Counter = Counter()

    def counting(name, original):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return original(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(Image, "open", counting("open", Image.open))
    monkeypatch.setattr(ImageFile.ImageFile, "load", counting("load", ImageFile.ImageFile.load))
    monkeypatch.setattr(WebPImagePlugin.WebPImageFile, "load", counting("load", WebPImagePlugin.WebPImageFile.load))
    monkeypatch.setattr(Image.Image, "load", counting("load", Image.Image.load))
    return calls


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def _photo(size=(1280, 800)) -> Image.Image:
    grain = Image.effect_noise(size, 40)
    return Image.merge("RGB", (grain, Image.linear_gradient("L").resize(size), grain))


def _save(img: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def _png_with_late_exif(orientation: int) -> bytes:
    png = _save(_photo(), "PNG", compress_level=1)
    payload = _exif(orientation)[6:]
    chunk = struct.pack(">I", len(payload)) + b"eXIf" + payload
    chunk += struct.pack(">I", zlib.crc32(chunk[4:]))
    return png[:-12] + chunk + png[-12:]  # after IDAT: Pillow's getexif() would load the pixels to find it


def _png_with_xmp(orientation: int) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", f'<x:xmpmeta><rdf:Description tiff:Orientation="{orientation}"/></x:xmpmeta>')
    return _save(_photo(), "PNG", compress_level=1, pnginfo=info)


def _apng() -> bytes:
    frames = [_photo((640, 480)).convert("RGBA") for _ in range(2)]
    return _save(frames[0], "PNG", save_all=True, append_images=frames[1:], compress_level=1)


# (file bytes, MIME, display size): each below the default pixel cap, so it is sent as it is
NO_RESIZE = {
    "png": (lambda: _save(_photo(), "PNG", compress_level=1), "image/png", (1280, 800)),
    "png, eXIf orientation 6 after IDAT": (lambda: _png_with_late_exif(6), "image/png", (800, 1280)),
    "png, XMP orientation 8": (lambda: _png_with_xmp(8), "image/png", (800, 1280)),
    "png, animated": (_apng, "image/png", (640, 480)),
    "jpeg, EXIF orientation 6": (lambda: _save(_photo(), "JPEG", quality=90, exif=_exif(6)), "image/jpeg", (800, 1280)),
    "webp lossy, EXIF orientation 5": (lambda: _save(_photo(), "WEBP", quality=80, exif=_exif(5)), "image/webp", (800, 1280)),
    "webp lossless": (lambda: _save(_photo(), "WEBP", lossless=True), "image/webp", (1280, 800)),
}


@pytest.mark.parametrize("name", sorted(NO_RESIZE))
def test_an_image_sent_as_it_is_is_never_decoded(name, decodes, tmp_path: Path):
    make, mime, size = NO_RESIZE[name]
    data = make()
    path = tmp_path / "picture.bin"
    path.write_bytes(data)
    data_url = "data:application/octet-stream;base64," + base64.b64encode(data).decode()
    decodes.clear()
    for value in (str(path), path, data, data_url):
        media = resolve_image(value)
        assert not media.resized and media.mime == mime
        assert (media.width, media.height) == (media.sent_width, media.sent_height) == size
        assert base64.b64decode(media.url.split(",", 1)[1]) == data  # the file's own bytes
    assert decodes == Counter()  # not even opened with Pillow


def test_the_counters_do_see_a_decode(decodes):
    """Control: an image that must be downscaled is opened and decoded once."""
    data = _save(_photo((4032, 3024)), "PNG", compress_level=1)
    decodes.clear()
    media = resolve_image(data)
    assert media.resized
    assert decodes["open"] == 1 and decodes["load"] >= 1


def test_resize_off_never_decodes_even_a_large_image(decodes):
    data = _save(_photo((4032, 3024)), "JPEG", quality=80, exif=_exif(6))
    decodes.clear()
    media = resolve_image(data, options=MediaOptions(resize=False))
    assert not media.resized and (media.width, media.height) == (3024, 4032)
    assert decodes == Counter()


def test_limits_and_truncation_are_checked_without_decoding(decodes):
    thin = _save(Image.new("RGB", (6, 900)), "PNG")
    long = _save(Image.new("RGB", (11, 2212)), "JPEG")
    whole = _save(_photo(), "WEBP", quality=80)
    decodes.clear()
    with pytest.raises(InputValidationError, match=r"is 6x900 px; each side must be more than 10 px"):
        resolve_image(thin)
    with pytest.raises(InputValidationError, match=r"aspect ratio of 201\.1:1"):
        resolve_image(long)
    with pytest.raises(InputValidationError, match=r"the WEBP file is truncated"):
        resolve_image(whole[:-100])
    with pytest.raises(InputValidationError, match=r"the PNG file is truncated"):
        resolve_image(thin[:-12])
    assert decodes == Counter()


def test_decompression_bomb_limit_holds_without_decoding(decodes):
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"")

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    decodes.clear()
    with pytest.raises(InputValidationError, match=r"image '<bytes>' is too large to decode safely \(20000x20000"):
        resolve_image(bomb, options=MediaOptions(resize=False))
    assert decodes == Counter()


def test_frames_and_prepared_requests_decode_nothing_either(decodes, tmp_path: Path):
    frame = _save(_photo((640, 480)), "JPEG", quality=85)
    path = tmp_path / "page.png"
    path.write_bytes(_png_with_late_exif(6))
    decodes.clear()
    assert [m.resized for m in resolve_frames([frame] * 4)] == [False] * 4
    client = QwenVLClient(api_key="sk-test-decodes", base_url="http://127.0.0.1:9")
    req = client.prepare(
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": str(path)}}, "What is this?"]}],
        model="qwen3-vl-plus",
        stream=False,
    )
    assert req.wire.media[0].width == 800
    assert decodes == Counter()
