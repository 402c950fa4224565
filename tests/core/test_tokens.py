import math

import pytest

from qwen_vl_core.tokens import image_geometry, image_tokens, smart_resize, video_frame_count, video_tokens


def documented_image_tokens(width, height, patch, cap):
    """The estimator from seed 003, transcribed literally (with the 32 swapped for ``patch``)."""
    h_bar = round(height / patch) * patch
    w_bar = round(width / patch) * patch
    min_pixels = patch * patch * 4
    max_pixels = cap * patch * patch
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = math.floor(height / beta / patch) * patch
        w_bar = math.floor(width / beta / patch) * patch
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / patch) * patch
        w_bar = math.ceil(width * beta / patch) * patch
    return int((h_bar * w_bar) / (patch * patch)) + 2


SIZES = [(4032, 3024), (3024, 4032), (1920, 1080), (1024, 1024), (640, 480), (64, 64), (100, 30),
         (12000, 800), (2481, 3508), (800, 20000), (33, 33), (4000, 4000)]


@pytest.mark.parametrize(("w", "h"), SIZES)
@pytest.mark.parametrize(
    ("model", "patch", "cap", "opts"),
    [
        ("qwen3-vl-plus", 32, 2560, {}),
        ("qwen3-vl-plus", 32, 16384, {"high_resolution": True}),
        ("qwen-vl-max-2025-04-08", 28, 1280, {}),
        ("qvq-max", 28, 16384, {"high_resolution": True}),
        ("qwen3.5-flash", 32, 2560, {}),
    ],
)
def test_image_tokens_match_documented_formula(w, h, model, patch, cap, opts):
    assert image_tokens(w, h, model, **opts) == documented_image_tokens(w, h, patch, cap)


def test_max_pixels_lowers_the_cap():
    full = image_tokens(4032, 3024, "qwen3-vl-plus")
    capped = image_tokens(4032, 3024, "qwen3-vl-plus", max_pixels=1024 * 1024)
    assert capped < full
    assert capped <= 1024 * 1024 // (32 * 32) + 2


def test_max_pixels_ignored_in_high_resolution_mode():
    assert image_tokens(4032, 3024, "qwen3-vl-plus", high_resolution=True, max_pixels=1024 * 1024) == \
        image_tokens(4032, 3024, "qwen3-vl-plus", high_resolution=True)


def test_min_pixels_raises_the_floor():
    assert image_tokens(64, 64, "qwen3-vl-plus", min_pixels=512 * 512) > image_tokens(64, 64, "qwen3-vl-plus")


def test_geometry_is_a_fixed_point():
    for w, h in SIZES:
        geo = image_geometry(w, h, "qwen3-vl-plus")
        again = image_geometry(geo.width, geo.height, "qwen3-vl-plus")
        assert (again.width, again.height, again.tokens) == (geo.width, geo.height, geo.tokens)


def test_unknown_model_uses_32px_defaults():
    assert image_tokens(1000, 1000, "some-new-model") == documented_image_tokens(1000, 1000, 32, 2560)


def test_smart_resize_multiples_of_patch():
    h, w = smart_resize(3024, 4032, patch=28, min_pixels=4 * 784, max_pixels=1280 * 784)
    assert h % 28 == 0 and w % 28 == 0 and h * w <= 1280 * 784


def test_video_frames_and_tokens():
    assert video_frame_count(10, 2) == 20
    assert video_frame_count(1, 2) == 4  # minimum 4 frames
    assert video_frame_count(3600, 2) == 512  # maximum 512
    assert video_frame_count(10, 0.5) == 5  # not rounded to even (003's smart_nframes)
    t = video_tokens(1280, 720, 10, "qwen3-vl-plus", fps=2)
    # 20 frames -> 10 temporal patches of a frame resized within [128, 768] tokens
    assert 10 * 128 + 2 <= t <= 10 * 768 + 2
    assert video_tokens(1280, 720, 60, "qwen3-vl-plus", fps=2) > t
