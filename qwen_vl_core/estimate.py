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

Compatible-mode and native-mode wire messages are both understood.

:func:`check_context_window` refuses, before anything is sent, a prompt that cannot fit the
model's context window (known models only). It refuses only when a count that leans low (see
:data:`LOW_ASCII_CHARS_PER_TOKEN`) already exceeds the window, so a prompt that might fit is never
refused on the estimate's account; it reads no file and decodes no image, and counts characters
only when cheap bounds leave the answer open.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import InputValidationError
from .messages import WireMessages
from .models import ModelCapabilities, get_capabilities
from .tokens import (
    MIN_IMAGE_TOKENS,
    VISION_MARKERS,
    frame_list_tokens,
    image_pixel_bounds,
    image_tokens,
    video_tokens,
)

__all__ = [
    "text_tokens",
    "wire_tokens",
    "check_context_window",
    "check_prepared",
    "DEFAULT_VIDEO_SECONDS",
    "MESSAGE_OVERHEAD",
    "REPLY_PRIMER",
    "LOW_ASCII_CHARS_PER_TOKEN",
    "LOW_OTHER_CHARS_PER_TOKEN",
]

MESSAGE_OVERHEAD = 4  # <|im_start|>role\n ... <|im_end|>\n
REPLY_PRIMER = 3  # <|im_start|>assistant\n
DEFAULT_VIDEO_SECONDS = 10.0
DEFAULT_FRAME_SIZE = (1280, 720)
#: The low count behind :func:`check_context_window`: Qwen's tokenizer averages about 4 ASCII
#: characters (English, code) and 1.5 to 1.8 Chinese characters per token, so 6 and 2 lean low.
LOW_ASCII_CHARS_PER_TOKEN = 6
LOW_OTHER_CHARS_PER_TOKEN = 2


def _ascii_count(text: str) -> int:
    """ASCII characters in ``text``, at C speed (a 30 MB prompt takes milliseconds)."""
    return len(text) if text.isascii() else len(text.encode("ascii", "ignore"))


def text_tokens(text: str) -> int:
    if not text:
        return 0
    ascii_chars = _ascii_count(text)
    return math.ceil(ascii_chars / 4) + (len(text) - ascii_chars)


def _low_text_tokens(text: str) -> int:
    ascii_chars = _ascii_count(text)
    return ascii_chars // LOW_ASCII_CHARS_PER_TOKEN + (len(text) - ascii_chars) // LOW_OTHER_CHARS_PER_TOKEN


def wire_tokens(
    wire: WireMessages,
    caps: ModelCapabilities,
    *,
    high_resolution: bool = False,
    fps: float | None = None,
    tools: Sequence[Any] | None = None,
) -> int:
    """Estimated prompt tokens for normalized wire messages (either mode)."""
    total = REPLY_PRIMER
    for text in _texts(wire, tools):
        total += text_tokens(text)
    return total + _structure_tokens(wire, caps, high_resolution, fps, low=False)


def _texts(wire: WireMessages, tools: Sequence[Any] | None) -> list[str]:
    """Every text the prompt carries: contents, text parts, tool-call names and arguments, and the
    tools' JSON."""
    out: list[str] = []
    for message in wire.messages:
        content = message.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out.extend(
                part["text"] for part in content
                if isinstance(part, Mapping) and _kind(part) == "text" and isinstance(part.get("text"), str)
            )  # fmt: skip
        for call in message.get("tool_calls") or []:
            fn = call.get("function") or {}
            for value in (fn.get("name"), fn.get("arguments")):
                if isinstance(value, str):
                    out.append(value)
    if tools:
        out.append(json.dumps(list(tools), ensure_ascii=False, default=str))
    return out


def _structure_tokens(
    wire: WireMessages, caps: ModelCapabilities, high_res: bool, fps: float | None, *, low: bool
) -> int:
    """Chat markup and media of the prompt. ``low``: media of unknown size count as the least
    they can cost instead of the most (images) or a default (videos)."""
    media = iter(wire.media)
    total = 0
    for message in wire.messages:
        total += MESSAGE_OVERHEAD
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                if isinstance(part, Mapping):
                    total += _media_tokens(part, media, caps, high_res, fps, low)
    return total


def _kind(part: Mapping[str, Any]) -> str | None:
    """text | image | video | frames for a wire part of either mode."""
    kind = part.get("type")
    if kind == "text" or (kind is None and "text" in part):
        return "text"
    if kind == "image_url" or (kind is None and "image" in part):
        return "image"
    if kind in ("video", None) and isinstance(part.get("video"), list):
        return "frames"
    if kind == "video_url" or (kind is None and "video" in part):
        return "video"
    return None


def _media_tokens(
    part: Mapping[str, Any], media: Any, caps: ModelCapabilities, high_res: bool, fps: float | None, low: bool
) -> int:
    kind = _kind(part)
    pixels = {"min_pixels": part.get("min_pixels"), "max_pixels": part.get("max_pixels")}
    if kind == "image":
        item = next(media)
        if item.width and item.height:
            return image_tokens(item.width, item.height, caps, high_resolution=high_res, **pixels)
        if low:
            return MIN_IMAGE_TOKENS + VISION_MARKERS
        patch, _, upper = image_pixel_bounds(caps, high_resolution=high_res, **pixels)
        return upper // (patch * patch) + VISION_MARKERS
    if kind == "video":
        item = next(media)
        known = bool(item.width and item.height and item.duration_s)
        if low and not known:
            return 0
        width, height = (item.width, item.height) if item.width and item.height else DEFAULT_FRAME_SIZE
        seconds = item.duration_s or DEFAULT_VIDEO_SECONDS
        return video_tokens(width, height, seconds, caps, fps=part.get("fps", fps))
    if kind == "frames":
        sizes = []
        for _ in part["video"]:
            item = next(media)
            sizes.append((item.width, item.height) if item.width and item.height else DEFAULT_FRAME_SIZE)
        return frame_list_tokens(sizes, caps)
    return 0


# ---------------------------------------------------------------- the context-window check


def check_context_window(
    wire: WireMessages,
    caps: ModelCapabilities,
    *,
    high_resolution: bool = False,
    fps: float | None = None,
    tools: Sequence[Any] | None = None,
) -> None:
    """Refuse a prompt that cannot fit ``caps.context_window`` (an :class:`InputValidationError`
    naming the estimate and the window). Unknown models are not checked.

    The refusal needs a low count (:data:`LOW_ASCII_CHARS_PER_TOKEN` ASCII characters or
    :data:`LOW_OTHER_CHARS_PER_TOKEN` other characters per token; media by the documented formula
    where their size is known, else at their least) above the window. Cheap bounds come first:
    with ``n`` characters of text the low count lies between ``n / 6`` and ``n / 2``, so the
    characters are only classified when the window falls in between.
    """
    if not caps.known:
        return
    window = caps.context_window
    texts = _texts(wire, tools)
    fixed = REPLY_PRIMER + _structure_tokens(wire, caps, high_resolution, fps, low=True)
    chars = sum(len(t) for t in texts)
    if fixed + chars // LOW_OTHER_CHARS_PER_TOKEN <= window:
        return  # fits even if all the text were non-ASCII (the low count's most)
    if fixed + chars // LOW_ASCII_CHARS_PER_TOKEN <= window:
        low = fixed + sum(_low_text_tokens(t) for t in texts)
        if low <= window:
            return
    estimate = wire_tokens(wire, caps, high_resolution=high_resolution, fps=fps, tools=tools)
    raise InputValidationError(
        f"the prompt is about {estimate:,} tokens (offline estimate: {chars:,} characters of text"
        f"{_media_note(wire)}), more than the {window:,}-token context window of {caps.name!r}; "
        "shorten it or split it over several requests (nothing was sent)"
    )


def _media_note(wire: WireMessages) -> str:
    n = len(wire.media)
    return f" and {n} media item{'s' if n != 1 else ''}" if n else ""


def check_prepared(request: Any) -> None:
    """:func:`check_context_window` for a prepared request (``model``, ``wire`` and ``body`` of a
    :class:`~qwen_vl_core.client.PreparedRequest`), with the body's high-resolution switch and tools."""
    body = request.body
    params = body.get("parameters") if isinstance(body.get("parameters"), Mapping) else body
    check_context_window(
        request.wire,
        get_capabilities(request.model),
        high_resolution=bool(params.get("vl_high_resolution_images")),
        tools=body.get("tools"),
    )
