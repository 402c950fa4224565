"""Offline prompt-token estimates for normalized wire messages (``get_num_tokens`` of the adapters).

Images use the core's documented formula (:func:`qwen_vl_core.tokens.image_tokens`) on the size
the core resolved locally; nothing is downloaded. Conventions:

* text: about 4 ASCII characters per token, one token per other character (CJK), an approximation
  of Qwen's tokenizer; plus 4 tokens of chat markup per message and 3 for the reply primer;
* an image given as a remote ``http(s)://`` / ``oss://`` URL counts as the most one image can cost
  with the request's settings (the model's token cap, ``max_pixels`` applied): an upper bound;
* a local MP4/MOV video counts from its size and duration (read from the file's header); other
  videos and remote URLs count as :data:`DEFAULT_VIDEO_SECONDS` seconds of 1280x720 at the
  request's fps: a rough default;
* a frame list counts exactly from the frames' sizes; remote frames count as 1280x720.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .messages import WireMessages
from .models import ModelCapabilities
from .tokens import VISION_MARKERS, frame_list_tokens, image_pixel_bounds, image_tokens, video_tokens

__all__ = ["text_tokens", "wire_tokens", "DEFAULT_VIDEO_SECONDS", "MESSAGE_OVERHEAD", "REPLY_PRIMER"]

MESSAGE_OVERHEAD = 4  # <|im_start|>role\n ... <|im_end|>\n
REPLY_PRIMER = 3  # <|im_start|>assistant\n
DEFAULT_VIDEO_SECONDS = 10.0
DEFAULT_FRAME_SIZE = (1280, 720)


def text_tokens(text: str) -> int:
    if not text:
        return 0
    ascii_chars = sum(1 for ch in text if ord(ch) < 128)
    return math.ceil(ascii_chars / 4) + (len(text) - ascii_chars)


def wire_tokens(
    wire: WireMessages,
    caps: ModelCapabilities,
    *,
    high_resolution: bool = False,
    fps: float | None = None,
    tools: Sequence[Any] | None = None,
) -> int:
    """Estimated prompt tokens for normalized (compatible-mode) wire messages."""
    media = iter(wire.media)
    total = REPLY_PRIMER
    for message in wire.messages:
        total += MESSAGE_OVERHEAD
        content = message.get("content")
        if isinstance(content, str):
            total += text_tokens(content)
        elif isinstance(content, list):
            for part in content:
                total += _part_tokens(part, media, caps, high_resolution, fps)
        for call in message.get("tool_calls") or []:
            fn = call.get("function") or {}
            total += text_tokens(fn.get("name") or "") + text_tokens(fn.get("arguments") or "")
    if tools:
        total += text_tokens(json.dumps(list(tools), ensure_ascii=False, default=str))
    return total


def _part_tokens(part: Any, media: Any, caps: ModelCapabilities, high_res: bool, fps: float | None) -> int:
    if not isinstance(part, Mapping):
        return 0
    kind = part.get("type")
    if kind == "text":
        return text_tokens(part.get("text") or "")
    pixels = {"min_pixels": part.get("min_pixels"), "max_pixels": part.get("max_pixels")}
    if kind == "image_url":
        item = next(media)
        if item.width and item.height:
            return image_tokens(item.width, item.height, caps, high_resolution=high_res, **pixels)
        patch, _, upper = image_pixel_bounds(caps, high_resolution=high_res, **pixels)
        return upper // (patch * patch) + VISION_MARKERS
    if kind == "video_url":
        item = next(media)
        width, height = (item.width, item.height) if item.width and item.height else DEFAULT_FRAME_SIZE
        seconds = item.duration_s or DEFAULT_VIDEO_SECONDS
        return video_tokens(width, height, seconds, caps, fps=part.get("fps", fps))
    if kind == "video" and isinstance(part.get("video"), list):
        sizes = []
        for _ in part["video"]:
            item = next(media)
            sizes.append((item.width, item.height) if item.width and item.height else DEFAULT_FRAME_SIZE)
        return frame_list_tokens(sizes, caps)
    return 0
