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
# Video constants of 003's token code ("Rules for converting images and videos to tokens", Videos).
FRAME_FACTOR = 2
DEFAULT_FPS = 2.0
VIDEO_MIN_FRAMES = 4
#: The most for Qwen3-VL, Qwen2.5-VL and QVQ; other models take fewer
#: (:attr:`~qwen_vl_core.models.ModelCapabilities.max_video_frames`, 80).
VIDEO_MAX_FRAMES = 512
#: A frame's pixel bounds. The document states them in 32-px units for every model, 28-px ones
#: included (``VIDEO_MIN_PIXELS = 128 * 32 * 32``, ``VIDEO_MAX_PIXELS = 768 * 32 * 32``).
VIDEO_MIN_PIXELS = 128 * 32 * 32
VIDEO_MAX_PIXELS = 768 * 32 * 32


def smart_resize(height: int, width: int, *, patch: int, min_pixels: float, max_pixels: float) -> tuple[int, int]:
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


def _floor_even(n: float) -> int:
    return math.floor(n / FRAME_FACTOR) * FRAME_FACTOR


def video_frame_count(
    duration_s: float,
    fps: float | None = None,
    *,
    total_frames: int | None = None,
    video_fps: float | None = None,
    max_frames: int = VIDEO_MAX_FRAMES,
) -> int:
    """Frames the server samples from a video of ``duration_s`` seconds at ``fps`` (default 2).

    003's ``smart_nframes``: the duration is cut to whole seconds unless its fraction is more than
    one sampling interval (``1 / fps``); ``duration * fps`` frames are taken, at least 4 and at most
    ``max_frames`` (rounded down to even: 512 for Qwen3-VL, Qwen2.5-VL and QVQ, 80 for other
    models) and never more than the video has. The count itself is not rounded to even.

    With the video's own frame rate (``video_fps``) and frame count (``total_frames``) the count is
    the document's exactly; with the duration alone it is the same rule on the duration (the file's
    frame rate only moves it by rounding).
    """
    fps = DEFAULT_FPS if fps is None else float(fps)
    if video_fps is not None and video_fps > 0:
        if total_frames is None:
            total_frames = max(0, round(duration_s * video_fps))
        duration = total_frames / video_fps
    else:
        duration = float(duration_s)
    cap = max_frames if total_frames is None else min(max_frames, total_frames)
    most = _floor_even(cap)
    least = math.ceil(VIDEO_MIN_FRAMES / FRAME_FACTOR) * FRAME_FACTOR
    whole = int(duration)
    sampled = duration if duration - whole > 1 / fps else whole  # seconds the server samples
    if video_fps is not None and video_fps > 0:
        frames = math.ceil(sampled * video_fps)
        n = min(max(frames / video_fps * fps, least), most, frames)
    else:
        n = min(max(sampled * fps, least), most)
    return max(FRAME_FACTOR, int(n))


def _video_frame_size(width: int, height: int, nframes: int, caps: ModelCapabilities) -> tuple[int, int]:
    """The size each sampled frame is resized to (003's video ``smart_resize``): within
    [VIDEO_MIN_PIXELS, VIDEO_MAX_PIXELS], and the frames together within the model's pixel budget."""
    budget = caps.video_pixel_budget / nframes * FRAME_FACTOR
    max_pixels = max(min(VIDEO_MAX_PIXELS, budget), int(VIDEO_MIN_PIXELS * 1.05))
    return smart_resize(height, width, patch=caps.patch_size, min_pixels=VIDEO_MIN_PIXELS, max_pixels=max_pixels)


def _video_token_count(nframes: int, h: int, w: int, patch: int) -> int:
    """Each pair of frames shares one set of patches, plus the two vision markers."""
    return math.ceil(nframes / FRAME_FACTOR) * (h // patch) * (w // patch) + VISION_MARKERS


def video_tokens(
    width: int,
    height: int,
    duration_s: float,
    model: str | ModelCapabilities = DEFAULT_MODEL,
    *,
    fps: float | None = None,
    total_frames: int | None = None,
    video_fps: float | None = None,
) -> int:
    """Estimated tokens for a video file (003's video token code; an estimate, not exact)."""
    caps = _caps(model)
    nframes = video_frame_count(
        duration_s, fps, total_frames=total_frames, video_fps=video_fps, max_frames=caps.max_video_frames
    )
    h, w = _video_frame_size(width, height, nframes, caps)
    return _video_token_count(nframes, h, w, caps.patch_size)


def frame_list_tokens(
    sizes: list[tuple[int, int]],
    model: str | ModelCapabilities = DEFAULT_MODEL,
) -> int:
    """Estimated tokens for a frame list (each pair of frames shares one temporal patch)."""
    if not sizes:
        return 0
    caps = _caps(model)
    nframes = len(sizes)
    width, height = sizes[0]
    h, w = _video_frame_size(width, height, max(nframes, FRAME_FACTOR), caps)
    return _video_token_count(nframes, h, w, caps.patch_size)
