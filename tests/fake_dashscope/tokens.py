"""The token oracle: the image sizes and image/video token counts the fake server reports in ``usage``.

Image parts sent as base64 data URLs are decoded for their size and counted with :mod:`qwen_vl_core.tokens`
(the documented formula, per model, honouring ``min_pixels`` / ``max_pixels`` and high resolution); a video
sent as a list of frames is counted frame by frame. Anything the oracle cannot decode or price counts as a
fixed fallback.
"""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass

from .messages import content_parts, is_image, is_video, part_text, part_urls

FALLBACK_IMAGE_TOKENS = 100
FALLBACK_VIDEO_TOKENS = 100

_DATA_URL = re.compile(r"^data:([^;,]*)(;[^,]*)?,", re.S)


def data_url_image_size(url: str) -> tuple[int, int] | None:
    """``(width, height)`` of the image in a base64 ``data:`` URL, or ``None`` when it is not one or does not
    decode."""
    m = _DATA_URL.match(url)
    if not m or "base64" not in (m.group(2) or ""):
        return None
    try:
        from PIL import Image

        raw = base64.b64decode(url[m.end() :], validate=False)
        with Image.open(io.BytesIO(raw)) as im:
            return im.size
    except Exception:  # noqa: BLE001 - anything undecodable falls back
        return None


def _pixel_option(part: dict, name: str) -> int | None:
    for holder in (part, part.get("image_url") if isinstance(part.get("image_url"), dict) else {}):
        v = holder.get(name)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return int(v)
    return None


def _image_part_tokens(part: dict, model: str, high_res: bool) -> int:
    urls = part_urls(part)
    size = data_url_image_size(urls[0]) if urls else None
    if size is None:
        return FALLBACK_IMAGE_TOKENS
    from qwen_vl_core import tokens as _tokens  # lazily: the server must start even while the package is broken

    try:
        return _tokens.image_tokens(
            size[0],
            size[1],
            model,
            high_resolution=high_res,
            min_pixels=_pixel_option(part, "min_pixels"),
            max_pixels=_pixel_option(part, "max_pixels"),
        )
    except Exception:  # noqa: BLE001 - unknown model names and the like
        return FALLBACK_IMAGE_TOKENS


def _video_part_tokens(part: dict, model: str) -> int:
    frames = part.get("video")
    if isinstance(frames, list) and frames:
        sizes = [data_url_image_size(u) if isinstance(u, str) else None for u in frames]
        if all(sizes):
            from qwen_vl_core import tokens as _tokens

            try:
                return _tokens.frame_list_tokens(sizes, model)  # type: ignore[arg-type]
            except Exception:  # noqa: BLE001
                pass
    return FALLBACK_VIDEO_TOKENS


@dataclass
class Media:
    """What the last user message holds: media counts, their tokens, and its text."""

    images: int = 0
    videos: int = 0
    image_tokens: int = 0
    video_tokens: int = 0
    text: str | None = None


def inspect_user(message: dict, model: str, high_res: bool) -> Media:
    """Count the images and videos in ``message`` and price them for ``model``."""
    media = Media()
    texts = []
    if isinstance(message.get("content"), str):
        texts.append(message["content"])
    for part in content_parts(message):
        if is_image(part):
            media.images += 1
            media.image_tokens += _image_part_tokens(part, model, high_res)
        elif is_video(part):
            media.videos += 1
            media.video_tokens += _video_part_tokens(part, model)
        else:
            t = part_text(part)
            if t is not None:
                texts.append(t)
    if texts:
        media.text = " ".join(texts)
    return media
