"""Image and video token estimates from the documented formulas (seed 003), no network.

``smart_resize`` is the server's resize rule: both the token estimate and the client-side
downscale in :mod:`qwen_vl_core.media` use it, so what we send is exactly what the model sees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .models import DEFAULT_MODEL, ModelCapabilities, get_capabilities

__all__ = [
    "ImageGeometry",
    "image_geometry",
    "image_tokens",
    "smart_resize",
    "video_frame_count",
    "video_tokens",
    "frame_list_tokens",
]

MIN_IMAGE_TOKENS = 4
VISION_MARKERS = 2  # <vision_bos> and <vision_eos>
FRAME_FACTOR = 2
DEFAULT_FPS = 2.0
VIDEO_MIN_FRAMES = 4
VIDEO_MAX_FRAMES = 512
VIDEO_MIN_TOKENS = 128
VIDEO_MAX_TOKENS = 768
VIDEO_TOTAL_TOKENS = 65536


def smart_resize(height: int, width: int, *, patch: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Target (height, width): multiples of ``patch`` with a pixel count in [min_pixels, max_pixels]."""
    h_bar = max(patch, round(height / patch) * patch)
    w_bar = max(patch, round(width / patch) * patch)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(patch, math.floor(height / beta / patch) * patch)
        w_bar = max(patch, math.floor(width / beta / patch) * patch)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / patch) * patch
        w_bar = math.ceil(width * beta / patch) * patch
    return h_bar, w_bar


@dataclass(frozen=True, slots=True)
class ImageGeometry:
    """What the server does with one image: the size it resizes to and the tokens billed."""

    height: int
    width: int
    tokens: int
    patch: int
    max_pixels: int


def _caps(model: str | ModelCapabilities) -> ModelCapabilities:
    return model if isinstance(model, ModelCapabilities) else get_capabilities(model)


def image_pixel_bounds(
    model: str | ModelCapabilities,
    *,
    high_resolution: bool = False,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
) -> tuple[int, int, int]:
    """(patch, min_pixels, max_pixels) the server applies for these options.

    ``max_pixels`` lowers the cap (it takes effect when ``high_resolution`` is off, as documented);
    ``min_pixels`` raises the floor.
    """
    caps = _caps(model)
    patch = caps.patch_size
    unit = patch * patch
    cap = caps.high_res_token_cap if high_resolution else caps.image_token_cap
    upper = cap * unit
    if max_pixels is not None and not high_resolution:
        upper = max(MIN_IMAGE_TOKENS * unit, min(upper, int(max_pixels)))
    lower = MIN_IMAGE_TOKENS * unit
    if min_pixels is not None:
        lower = min(max(lower, int(min_pixels)), upper)
    return patch, lower, upper


def image_geometry(
    width: int,
    height: int,
    model: str | ModelCapabilities = DEFAULT_MODEL,
    *,
    high_resolution: bool = False,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
) -> ImageGeometry:
    patch, lower, upper = image_pixel_bounds(
        model, high_resolution=high_resolution, min_pixels=min_pixels, max_pixels=max_pixels
    )
    h, w = smart_resize(height, width, patch=patch, min_pixels=lower, max_pixels=upper)
    return ImageGeometry(h, w, (h * w) // (patch * patch) + VISION_MARKERS, patch, upper)


def image_tokens(width: int, height: int, model: str | ModelCapabilities = DEFAULT_MODEL, **options) -> int:
    """Tokens billed for one ``width`` x ``height`` image (exact, per the documented formula)."""
    return image_geometry(width, height, model, **options).tokens


def video_frame_count(duration_s: float, fps: float | None = None, *, total_frames: int | None = None) -> int:
    """Frames the server samples from a video of ``duration_s`` seconds at ``fps`` (default 2)."""
    fps = DEFAULT_FPS if fps is None else float(fps)
    n = duration_s * fps
    if total_frames is not None:
        n = min(n, total_frames)
    n = max(n, VIDEO_MIN_FRAMES)
    n = min(n, VIDEO_MAX_FRAMES)
    return max(FRAME_FACTOR, int(n) // FRAME_FACTOR * FRAME_FACTOR)


def _video_frame_size(width: int, height: int, nframes: int, patch: int) -> tuple[int, int]:
    unit = patch * patch
    min_pixels = VIDEO_MIN_TOKENS * unit
    total = VIDEO_TOTAL_TOKENS * unit
    max_pixels = max(min(VIDEO_MAX_TOKENS * unit, total / nframes * FRAME_FACTOR), int(min_pixels * 1.05))
    return smart_resize(height, width, patch=patch, min_pixels=min_pixels, max_pixels=int(max_pixels))


def video_tokens(
    width: int,
    height: int,
    duration_s: float,
    model: str | ModelCapabilities = DEFAULT_MODEL,
    *,
    fps: float | None = None,
) -> int:
    """Estimated tokens for a video file (the documented formula; an estimate, not exact)."""
    patch = _caps(model).patch_size
    nframes = video_frame_count(duration_s, fps)
    h, w = _video_frame_size(width, height, nframes, patch)
    return math.ceil(nframes / FRAME_FACTOR) * (h * w) // (patch * patch) + VISION_MARKERS


def frame_list_tokens(
    sizes: list[tuple[int, int]],
    model: str | ModelCapabilities = DEFAULT_MODEL,
) -> int:
    """Estimated tokens for a frame list (each pair of frames shares one temporal patch)."""
    if not sizes:
        return 0
    patch = _caps(model).patch_size
    nframes = len(sizes)
    width, height = sizes[0]
    h, w = _video_frame_size(width, height, max(nframes, FRAME_FACTOR), patch)
    return math.ceil(nframes / FRAME_FACTOR) * (h * w) // (patch * patch) + VISION_MARKERS
