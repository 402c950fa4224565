"""Client-side downscale: token-neutral, fewer bytes, OCR-safe encoding, orientation, frames."""

from __future__ import annotations

import base64
import io
import math
import random
import sys
import types
from functools import cache

import pytest
from PIL import Image, ImageChops, ImageDraw, JpegImagePlugin

from qwen_vl_core.errors import InputValidationError
from qwen_vl_core.media import MediaOptions, resolve_frames, resolve_image
from qwen_vl_core.media.resize import plan_downscale, wants_lossless
from qwen_vl_core.tokens import frame_list_tokens, image_geometry, image_tokens

SIZES = [(4032, 3024), (3000, 4000), (12000, 800), (1920, 1080), (640, 480)]
MODELS = ["qwen3-vl-plus", "qwen-vl-max-2025-04-08"]
CONFIGS = [
    {},
    {"high_resolution": True},
    {"max_pixels": 1003520},
    {"max_pixels": 400000},
    {"min_pixels": 1000000, "max_pixels": 1000000},
]
SMALL = {"max_pixels": 300_000}  # a strong downscale of a small image keeps encoding tests fast


def photo_like(w: int, h: int) -> Image.Image:
    """Smooth gradients plus grain: compresses like a photo."""
    r = Image.linear_gradient("L").resize((w, h))
    g = Image.radial_gradient("L").resize((w, h))
    grain = Image.effect_noise((max(1, w // 2), max(1, h // 2)), 12).resize((w, h))
    return Image.merge("RGB", (r, g, Image.blend(grain, r, 0.5)))


def save(img: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


@cache
def jpeg_photo(w: int, h: int) -> bytes:
    return save(photo_like(w, h), "JPEG", quality=100)


def sent_image(media) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(media.url.split(",", 1)[1])))


def document(w: int, h: int, grain: float = 0.0) -> Image.Image:
    """A page of black 'text' strokes on white (what OCR cares about), with optional scanner grain."""
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    for y in range(40, h - 40, 36):
        for x in range(40, w - 200, 90):
            draw.rectangle([x, y, x + 60, y + 3], fill="black")
            draw.line([x, y + 6, x + 50, y + 20], fill=(30, 30, 30), width=2)
    if grain:
        noise = Image.effect_noise((w, h), 40)
        img = Image.blend(img, Image.merge("RGB", (noise, noise, noise)), grain)
    return img


# ------------------------------------------------------------------ token neutrality


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "default")
def test_resize_is_token_neutral_and_matches_smart_resize(model, config):
    for w, h in SIZES:
        media = resolve_image(jpeg_photo(w, h), model=model, **config)
        sent = (media.sent_width, media.sent_height)
        assert image_tokens(*sent, model, **config) == image_tokens(w, h, model, **config), (w, h)
        geo = image_geometry(w, h, model, **config)
        again = image_geometry(geo.width, geo.height, model, **config)
        shrinks = geo.width <= w and geo.height <= h and geo.width * geo.height < w * h
        stable = (again.width, again.height) == (geo.width, geo.height)
        over_cap = w * h > geo.max_pixels  # within the cap the server only rounds to the patch
        assert media.resized == (shrinks and stable and over_cap), (w, h)
        if media.resized:
            assert sent == (geo.width, geo.height)
            assert sent_image(media).size == sent  # the payload really is that size
        else:
            assert sent == (w, h)


def test_image_within_the_pixel_cap_is_not_re_encoded():
    # 1000x1000 is under qwen3-vl-plus's 2560-token cap: the server only rounds it to 992x992,
    # which is not worth a decode and re-encode on the client
    media = resolve_image(jpeg_photo(1000, 1000))
    assert not media.resized and (media.sent_width, media.sent_height) == (1000, 1000)
    # 4032x3024 in high-resolution mode (16384-token cap) likewise goes as it is
    assert not resolve_image(jpeg_photo(4032, 3024), high_resolution=True).resized


def test_default_photo_is_resized_to_the_server_size():
    media = resolve_image(jpeg_photo(4032, 3024))
    assert media.resized and (media.sent_width, media.sent_height) == (1856, 1376)
    assert (media.width, media.height) == (4032, 3024)


def test_plan_never_upscales_and_never_changes_tokens():
    rng = random.Random(7)
    planned = 0
    options = [
        {},
        {"high_resolution": True},
        {"max_pixels": 500_000},
        {"min_pixels": 200_000},
        {"min_pixels": 900_000, "max_pixels": 1_000_000},
    ]
    for _ in range(3000):
        w, h = rng.randint(11, 14000), rng.randint(11, 14000)
        model = rng.choice(["qwen3-vl-plus", "qwen2.5-vl-72b-instruct", "qvq-max"])
        opts = rng.choice(options)
        target = plan_downscale(w, h, model, **opts)
        if target is None:
            continue
        planned += 1
        tw, th = target
        assert tw <= w and th <= h and tw * th < w * h
        assert image_tokens(tw, th, model, **opts) == image_tokens(w, h, model, **opts)
        assert image_geometry(tw, th, model, **opts).width == tw
    assert planned > 1000


# ------------------------------------------------------------------ bytes and encoding


def test_photo_shrinks_a_lot_with_high_quality_444_jpeg():
    w, h = 4032, 3024
    r, g = Image.linear_gradient("L").resize((w, h)), Image.radial_gradient("L").resize((w, h))
    grain = Image.effect_noise((w, h), 20)
    photo = Image.merge("RGB", (Image.blend(grain, r, 0.6), Image.blend(grain, g, 0.7), Image.blend(grain, r, 0.5)))
    original = save(photo, "JPEG", quality=90)  # about 3.6 MB, like a 12 MP phone photo
    assert len(original) > 3_000_000
    media = resolve_image(original)
    assert media.mime == "image/jpeg" and media.url.startswith("data:image/jpeg;base64,")
    assert media.sent_bytes * 4 < len(original), (media.sent_bytes, len(original))
    sent = sent_image(media)
    assert sent.format == "JPEG" and JpegImagePlugin.get_sampling(sent) == 0  # 4:4:4 chroma


def test_resize_off_sends_the_original_bytes():
    original = jpeg_photo(4032, 3024)
    media = resolve_image(original, options=MediaOptions(resize=False))
    assert not media.resized and media.sent_bytes == len(original)
    assert base64.b64decode(media.url.split(",", 1)[1]) == original


def test_png_document_is_resized_losslessly():
    page = document(1400, 1900, grain=0.1)  # a scanned page
    media = resolve_image(save(page, "PNG", compress_level=1), **SMALL)
    assert media.resized and media.mime == "image/png"
    # Pillow's default (bicubic) resize is the server's own: below a 4x reduction the model sees
    # exactly the pixels it would have made itself from the original, and no lossy step at all
    expected = page.resize((media.sent_width, media.sent_height))
    assert sent_image(media).convert("RGB").tobytes() == expected.tobytes()


def test_small_png_is_sent_byte_for_byte():
    original = save(document(640, 480), "PNG")
    media = resolve_image(original)
    assert not media.resized and base64.b64decode(media.url.split(",", 1)[1]) == original


def test_bmp_is_recompressed_to_identical_png_pixels():
    page = document(800, 600)
    media = resolve_image(save(page, "BMP"))
    assert media.mime == "image/png" and not media.resized and media.sent_bytes < 800 * 600 * 3
    assert sent_image(media).convert("RGB").tobytes() == page.tobytes()


def test_original_is_kept_when_reencoding_is_not_smaller():
    rough = Image.frombytes("RGB", (3000, 2000), random.Random(1).randbytes(3000 * 2000 * 3))
    original = save(rough, "JPEG", quality=5)
    media = resolve_image(original)
    assert not media.resized and (media.sent_width, media.sent_height) == (3000, 2000)
    assert base64.b64decode(media.url.split(",", 1)[1]) == original
    assert any("not smaller" in note for note in media.notes)


def test_lossy_webp_photo_becomes_jpeg():
    media = resolve_image(save(photo_like(1200, 900), "WEBP", quality=95), **SMALL)
    assert media.resized and media.mime == "image/jpeg"


def test_which_sources_stay_lossless():
    rgb, rgba = Image.new("RGB", (20, 20)), Image.new("RGBA", (20, 20))
    assert wants_lossless("PNG", rgb) and wants_lossless("BMP", rgb) and wants_lossless("TIFF", rgb)
    assert wants_lossless("WEBP", rgb, save(rgb, "WEBP", lossless=True))
    assert not wants_lossless("WEBP", rgb, save(rgb, "WEBP", quality=80))
    assert wants_lossless("WEBP", rgba, save(rgba, "WEBP", quality=80))  # alpha
    assert not wants_lossless("JPEG", rgb) and not wants_lossless("JPEG", rgb.convert("L"))
    assert not wants_lossless(None, rgb) and not wants_lossless(None, rgb.convert("CMYK"))
    for mode in ("L", "LA", "P", "1", "I;16", "RGBA"):
        assert wants_lossless(None, Image.new(mode, (20, 20))), mode


def test_alpha_and_palette_stay_png():
    rgba = photo_like(1200, 900).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize((1200, 900)))
    media = resolve_image(save(rgba, "PNG", compress_level=1), **SMALL)
    assert media.resized and media.mime == "image/png" and sent_image(media).mode == "RGBA"
    palette = document(1200, 900, grain=0.1).quantize(64)
    media = resolve_image(save(palette, "PNG", compress_level=1), **SMALL)
    assert media.mime == "image/png"  # never JPEG; here the 64-colour original is smaller, so it is kept


def test_sixteen_bit_and_cmyk_sources():
    deep = Image.linear_gradient("L").resize((1200, 900)).convert("I").point(lambda v: v * 196 + 17)
    media = resolve_image(save(deep.convert("I;16"), "PNG", compress_level=1), **SMALL)
    assert media.resized and media.mime == "image/png"
    assert 150 < sent_image(media).getextrema()[1] < 255  # scaled to 8 bits, not clipped to white
    cmyk = photo_like(1200, 900).convert("CMYK")
    media = resolve_image(save(cmyk, "JPEG", quality=95), **SMALL)
    assert media.resized and sent_image(media).mode == "RGB"


# ------------------------------------------------------------------ PIL images


def test_pil_images_resized_by_kind():
    assert resolve_image(photo_like(1200, 900), **SMALL).mime == "image/jpeg"  # RGB photo: JPEG once resized
    page = document(1200, 900)
    for img in (page.convert("L"), page.convert("1"), Image.open(io.BytesIO(save(page, "PNG")))):
        media = resolve_image(img, **SMALL)  # grayscale, bilevel, or opened from a lossless file
        assert media.resized and media.mime == "image/png"


def test_callers_pil_image_is_not_modified():
    img = Image.open(io.BytesIO(jpeg_photo(4032, 3024)))  # lazy: draft() would shrink it
    media = resolve_image(img)
    assert media.resized and img.size == (4032, 3024)
    assert img.load() is not None and img.size == (4032, 3024)


# ------------------------------------------------------------------ orientation, pages, HEIC


def _oriented_jpeg(size, orientation: int) -> bytes:
    img = Image.new("RGB", size, (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, size[0] // 4, size[1] // 4))  # red block at the stored top-left
    exif = Image.Exif()
    exif[0x0112] = orientation
    return save(img, "JPEG", quality=95, exif=exif.tobytes())


def test_exif_orientation_is_applied_before_geometry():
    media = resolve_image(_oriented_jpeg((4000, 3000), 6))  # 6: rotate 90 degrees clockwise to display
    assert (media.width, media.height) == (3000, 4000)
    geo = image_geometry(3000, 4000)
    assert (media.sent_width, media.sent_height) == (geo.width, geo.height)
    sent = sent_image(media).convert("RGB")
    w, h = sent.size
    assert sent.getpixel((w - 20, 20))[0] > 200  # red is now top-right
    assert sent.getpixel((20, 20))[2] > 200  # top-left is blue
    assert 0x0112 not in sent.getexif()


def test_exif_orientation_without_resize_reports_display_size():
    media = resolve_image(_oriented_jpeg((640, 480), 8))
    assert not media.resized and (media.width, media.height) == (480, 640)


def test_multipage_tiff_sends_the_first_page(tmp_path):
    pages = [Image.new("RGB", (300, 200), color) for color in ("red", "green", "blue")]
    path = tmp_path / "fax.tiff"
    pages[0].save(path, save_all=True, append_images=pages[1:])
    media = resolve_image(path)
    assert media.mime == "image/png" and media.format == "TIFF"
    assert sent_image(media).convert("RGB").getpixel((10, 10)) == (255, 0, 0)
    assert any("3 pages" in note for note in media.notes)


def test_single_page_tiff_with_resize():
    media = resolve_image(save(document(1200, 900), "TIFF"), **SMALL)
    assert media.resized and media.mime == "image/png"


HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 100


def test_heic_without_plugin_is_sent_as_is(monkeypatch):
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # import fails
    media = resolve_image(HEIC)
    assert media.mime == "image/heic" and not media.resized and media.width is None
    assert base64.b64decode(media.url.split(",", 1)[1]) == HEIC
    assert any("pillow-heif" in note for note in media.notes)


def _fake_heif(size):
    class HeifFile:
        def __init__(self):
            self.size = size

        def to_pillow(self):
            return photo_like(*size)

    return types.SimpleNamespace(open_heif=lambda fp, convert_hdr_to_8bit=True: HeifFile())


def test_heic_with_plugin_is_checked_and_resized(monkeypatch):
    monkeypatch.setitem(sys.modules, "pillow_heif", _fake_heif((6, 900)))
    with pytest.raises(InputValidationError, match=r"is 6x900 px; each side must be more than 10 px"):
        resolve_image(HEIC)
    monkeypatch.setitem(sys.modules, "pillow_heif", _fake_heif((4032, 3024)))
    media = resolve_image(HEIC + b"\x00" * 2_000_000)
    assert media.resized and media.mime == "image/jpeg" and (media.sent_width, media.sent_height) == (1856, 1376)


# ------------------------------------------------------------------ frames


@pytest.mark.parametrize("size, resized", [((5000, 3000), True), ((4032, 3024), False)])
def test_frames_are_resized_only_when_both_token_rules_agree(size, resized):
    """A frame may be resized by image rules or video rules: a downscale must leave both unchanged."""
    out = resolve_frames([jpeg_photo(*size)] * 4)
    assert [m.resized for m in out] == [resized] * 4
    sent = [(m.sent_width, m.sent_height) for m in out]
    assert frame_list_tokens(sent, "qwen3-vl-plus") == frame_list_tokens([size] * 4, "qwen3-vl-plus")
    assert image_tokens(*sent[0]) == image_tokens(*size)
    # the image-rule target for 4032x3024 (1856x1376) would move the frame-list estimate:
    assert frame_list_tokens([(1856, 1376)] * 4) != frame_list_tokens([(4032, 3024)] * 4)


# ------------------------------------------------------------------ upright once, whatever the format


def _marked(size, fmt, orientation, **params) -> bytes:
    """Blue, with a red block at the stored top-left, saved with an EXIF orientation."""
    img = Image.new("RGB", size, (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, size[0] // 4, size[1] // 4))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return save(img, fmt, exif=exif.tobytes(), **params)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "WEBP", "JPEG"])
def test_oriented_images_are_turned_upright_exactly_once(fmt):
    # orientation 6: turn 90 degrees clockwise to display, so the red block ends top-right
    for options in ({}, SMALL):  # TIFF is always re-encoded; the others when downscaled
        media = resolve_image(_marked((1200, 900), fmt, 6), **options)
        assert (media.width, media.height) == (900, 1200), (fmt, options)
        if media.url.startswith(("data:image/png", "data:image/jpeg")) and media.mime != f"image/{fmt.lower()}":
            sent = sent_image(media).convert("RGB")
            w, h = sent.size
            assert h > w, (fmt, options)
            assert sent.getpixel((w - 5, 5))[0] > 200 and sent.getpixel((5, 5))[2] > 200, (fmt, options)


# ------------------------------------------------------------------ the resize filter is the server's


def _psnr(a: Image.Image, b: Image.Image) -> float:
    hist = ImageChops.difference(a.convert("RGB"), b.convert("RGB")).histogram()
    mse = sum(count * (i % 256) ** 2 for i, count in enumerate(hist)) / (a.width * a.height * 3)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def test_downscale_matches_what_the_server_would_make():
    """The model sees the server's bicubic resize of the original: below a 4x reduction the client's
    resize gives exactly those pixels; above it (integer pre-reduction) it stays above 42 dB (a full
    LANCZOS, the filter used before, gives 37.5 dB here)."""
    page = document(1600, 2200, grain=0.1)
    media = resolve_image(save(page, "PNG", compress_level=1), max_pixels=1_000_000)
    server = page.resize((media.sent_width, media.sent_height), Image.Resampling.BICUBIC)
    assert media.resized and _psnr(sent_image(media), server) == math.inf
    big = document(3200, 4400, grain=0.1)  # about 4.7x per side down to the same budget
    media = resolve_image(save(big, "PNG", compress_level=1), max_pixels=640_000)
    server = big.resize((media.sent_width, media.sent_height), Image.Resampling.BICUBIC)
    assert big.width / media.sent_width > 4
    assert _psnr(sent_image(media), server) > 42
    # a photo: JPEG decoded at a reduced scale, then bicubic; sent as JPEG quality 92
    photo = photo_like(4032, 3024)
    media = resolve_image(save(photo, "JPEG", quality=95))
    server = photo.resize((media.sent_width, media.sent_height), Image.Resampling.BICUBIC)
    assert _psnr(sent_image(media), server) > 40
