"""Normalize user messages (OpenAI-style dicts whose media may be in any accepted form) into
wire messages for compatible or native mode, resolving every media reference on the way.

Accepted content parts (any mix, any number):

* ``"text"`` strings and ``{"type": "text", "text": ...}`` / native ``{"text": ...}``
* images: ``{"type": "image_url", "image_url": {"url": X} | X}``, ``{"type": "image", "image": X}``,
  native ``{"image": X}``, LangChain v1 ``{"type": "image", "url" | "base64" (+ "mime_type")}``,
  or a bare ``pathlib.Path`` / ``PIL.Image.Image`` / ``bytes``
* videos: ``{"type": "video_url", "video_url": {"url": X} | X}``, ``{"type": "video", "video": X}``,
  native ``{"video": X}``, v1 ``{"type": "video", "url" | "base64"}``; a list of images in
  ``"video"`` is a frame list (4 to 512 images for Qwen3-VL, Qwen2.5-VL and QVQ, 4 to 80 for other
  models: the registry's ``max_video_frames``)
* per part: ``min_pixels`` / ``max_pixels`` on images, ``fps`` on videos
* documents: a ``{"type": "file", ...}`` part (PDF, multi-page TIFF, image or text file; LangChain
  v1 or OpenAI shape, optional ``pages``) becomes its page images, rendered by the document
  pipeline at the model's budget (:mod:`qwen_vl_core.documents.chat_pages`)

Images and videos in ``tool`` messages (which DashScope refuses there) are moved into a ``user``
message right after that turn's tool results (:mod:`qwen_vl_core.tool_media`).

``X`` is anything :mod:`qwen_vl_core.media` resolves: URL, data URL, ``oss://``, path, ``file://``,
bytes or PIL image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Literal

from .errors import InputValidationError
from .media import MediaOptions, ResolvedMedia, resolve_frames, resolve_image, resolve_video
from .media.types import MIN_FRAMES
from .models import ModelCapabilities, get_capabilities

__all__ = ["MediaSettings", "WireMessages", "normalize_messages", "content_has_text"]

Mode = Literal["compatible", "native"]

_PASS_KEYS = ("name", "tool_calls", "tool_call_id", "reasoning_content", "partial")


@dataclass(frozen=True, slots=True)
class MediaSettings:
    """Request-wide media settings; parts may override pixels and fps."""

    model: str
    high_resolution: bool | None = None
    min_pixels: int | None = None
    max_pixels: int | None = None
    fps: float | None = None
    options: MediaOptions = field(default_factory=MediaOptions)


@dataclass(slots=True)
class WireMessages:
    messages: list[dict[str, Any]]
    media: list[ResolvedMedia] = field(default_factory=list)
    # (container, key, media): after an upload, container[key] = media.url
    _slots: list[tuple[Any, Any, ResolvedMedia]] = field(default_factory=list)

    @property
    def pending(self) -> list[ResolvedMedia]:
        return [m for m in self.media if m.pending is not None and m.url is None]

    @property
    def uses_oss(self) -> bool:
        return any((m.url or "").startswith("oss://") or m.pending is not None for m in self.media)

    def fill_uploaded(self) -> None:
        """Write uploaded ``oss://`` URLs into the wire messages."""
        for container, key, media in self._slots:
            if media.url is None:
                raise InputValidationError(f"{media.kind} {media.source!r} was not uploaded")
            container[key] = media.url


def _check_unicode(text: str, where: str) -> None:
    """Refuse text holding a surrogate code point: it cannot be encoded as UTF-8, so the request
    could not be sent (a bare ``UnicodeEncodeError`` deep in the HTTP layer otherwise). ASCII
    text is passed at once; other text is encoded once (C speed) to find the first one."""
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputValidationError(
            f"{where} contains a lone surrogate {text[exc.start]!r} at character {exc.start}; text must be "
            "valid Unicode. This usually comes from bytes decoded with errors='surrogateescape' or a "
            "UTF-16 pair split apart: decode the source as UTF-8 (errors='replace' drops bad bytes) or "
            "join the pair (text.encode('utf-16', 'surrogatepass').decode('utf-16'))"
        ) from None


def _check_strings(value: Any, where: str) -> None:
    """:func:`_check_unicode` on every string inside a passed-through value (tool calls, names)."""
    if isinstance(value, str):
        _check_unicode(value, where)
    elif isinstance(value, Mapping):
        for item in value.values():
            _check_strings(item, where)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_strings(item, where)


def _is_pil(value: Any) -> bool:
    return type(value).__module__.startswith("PIL.")


def _url_of(value: Any) -> Any:
    return value.get("url") if isinstance(value, Mapping) else value


def _v1_source(part: Mapping[str, Any]) -> Any:
    """LangChain v1 standard block source: url, base64 (+mime_type) or path."""
    if part.get("url") is not None:
        return part["url"]
    b64 = part.get("base64") if part.get("base64") is not None else part.get("data")
    if b64 is not None:
        if isinstance(b64, (bytes, bytearray)):
            return bytes(b64)
        mime = part.get("mime_type") or ("image/png" if part.get("type") == "image" else "video/mp4")
        return f"data:{mime};base64,{b64}"
    if part.get("path") is not None:
        return part["path"]
    if part.get("file_id") is not None:
        raise InputValidationError(
            f"{part.get('type')} block with file_id {part['file_id']!r}: DashScope has no file store; "
            "pass a url, base64 data or a local path"
        )
    raise InputValidationError(f"{part.get('type')} block has no url, base64 or path: {_brief(part)}")


def _brief(part: Any) -> str:
    text = repr(part)
    return text if len(text) <= 120 else text[:117] + "..."


def _classify(part: Any) -> tuple[str, Any, Mapping[str, Any]]:
    """-> (kind, source, part) with kind in text | image | video | frames."""
    if isinstance(part, str):
        return "text", part, {}
    if isinstance(part, (PurePath, bytes, bytearray, memoryview, ResolvedMedia)) or _is_pil(part):
        return "image", part, {}
    if not isinstance(part, Mapping):
        raise InputValidationError(f"unsupported content part of type {type(part).__name__}: {_brief(part)}")
    ptype = part.get("type")
    if ptype == "text" or (ptype is None and "text" in part):
        text = part.get("text")
        if not isinstance(text, str):
            raise InputValidationError(f"text part without a string 'text': {_brief(part)}")
        return "text", text, part
    if ptype == "image_url":
        return "image", _url_of(part.get("image_url")), part
    if ptype == "video_url":
        return "video", _url_of(part.get("video_url")), part
    if ptype in ("image", None) and "image" in part:
        return "image", part["image"], part
    if ptype in ("video", None) and "video" in part:
        value = part["video"]
        if isinstance(value, (list, tuple)):
            return "frames", value, part
        return "video", value, part
    if ptype in ("image", "video"):
        return ptype, _v1_source(part), part
    if ptype == "file":
        return "document", part, part
    if ptype in ("input_image", "audio", "input_audio"):
        raise InputValidationError(f"content part type {ptype!r} is not supported by Qwen-VL: {_brief(part)}")
    raise InputValidationError(f"unsupported content part: {_brief(part)}")


def _pixels(part: Mapping[str, Any], settings: MediaSettings) -> dict[str, int]:
    out: dict[str, int] = {}
    inner = part.get("image_url") if isinstance(part.get("image_url"), Mapping) else {}
    for key in ("min_pixels", "max_pixels"):
        value = part.get(key, inner.get(key) if inner else None)
        if value is None:
            value = getattr(settings, key)
        if value is not None:
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise InputValidationError(f"{key} must be a positive integer, got {value!r}")
            out[key] = value
    if "min_pixels" in out and "max_pixels" in out and out["min_pixels"] > out["max_pixels"]:
        raise InputValidationError(f"min_pixels {out['min_pixels']} is larger than max_pixels {out['max_pixels']}")
    return out


MIN_VIDEO_SECONDS = 2.0


def _check_duration(media: ResolvedMedia, caps: ModelCapabilities) -> None:
    """Documented duration limits of one video file (known only where the header was readable)."""
    seconds = media.duration_s
    if seconds is None or not caps.known:
        return
    if seconds < MIN_VIDEO_SECONDS:
        raise InputValidationError(
            f"video {media.source!r} is {seconds:.1f} s long; videos must be at least {MIN_VIDEO_SECONDS:g} s"
        )
    limit = caps.max_video_seconds
    if limit is not None and seconds > limit:
        raise InputValidationError(
            f"video {media.source!r} is {seconds / 60:.1f} min long; {caps.name!r} accepts at most "
            f"{limit / 60:g} min per video (cut it, or send frames as a frame list)"
        )


def _check_frame_count(frames: Sequence[Any], caps: ModelCapabilities) -> None:
    """003, "Image list limits": 4 to 512 images for Qwen3-VL, Qwen2.5-VL and QVQ, 4 to 80 for other
    models (the registry's ``max_video_frames``). Unknown models are held to 512 only, by
    :func:`~qwen_vl_core.media.resolve_frames`."""
    if not caps.known or isinstance(frames, (str, bytes)) or not isinstance(frames, Sequence):
        return
    n, most = len(frames), caps.max_video_frames
    if n > most:
        raise InputValidationError(
            f"video frame list has {n} frames; {caps.name!r} takes {MIN_FRAMES} to {most} images "
            f"(send fewer frames, or a video file)"
        )


def _fps(part: Mapping[str, Any], settings: MediaSettings) -> float | None:
    value = part.get("fps", settings.fps)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.1 <= value <= 10:
        raise InputValidationError(f"fps must be a number from 0.1 to 10, got {value!r}")
    return value


class _Builder:
    def __init__(self, settings: MediaSettings, mode: Mode) -> None:
        self.settings = settings
        self.caps = get_capabilities(settings.model)
        self.mode = mode
        self.out = WireMessages(messages=[])
        self.document_tokens = 0  # image tokens of the documents' pages so far (context-window check)
        self.role = "user"  # of the message being built (a tool result's pages carry no per-page lines)

    def _check_video_model(self) -> None:
        if self.caps.known and not self.caps.video:
            raise InputValidationError(f"model {self.settings.model!r} does not accept video input")

    def _track(self, container: Any, key: Any, media: ResolvedMedia) -> None:
        self.out.media.append(media)
        if media.url is None:
            self.out._slots.append((container, key, media))
        else:
            container[key] = media.url

    def image(self, source: Any, part: Mapping[str, Any]) -> dict[str, Any]:
        s = self.settings
        pixels = _pixels(part, s)
        if isinstance(source, ResolvedMedia):  # resolved once already (document pages)
            if source.kind != "image":
                raise InputValidationError(f"a resolved {source.kind} {source.source!r} was given as an image")
            media = source
        else:
            media = resolve_image(
                source,
                model=s.model,
                high_resolution=bool(s.high_resolution),
                min_pixels=pixels.get("min_pixels"),
                max_pixels=pixels.get("max_pixels"),
                options=s.options,
            )
        if self.mode == "native":
            wire: dict[str, Any] = {"image": None, **pixels}
            self._track(wire, "image", media)
            return wire
        inner: dict[str, Any] = {"url": None}
        detail = part.get("image_url", {}).get("detail") if isinstance(part.get("image_url"), Mapping) else None
        if detail:
            inner["detail"] = detail
        wire = {"type": "image_url", "image_url": inner, **pixels}
        self._track(inner, "url", media)
        return wire

    def video(self, source: Any, part: Mapping[str, Any]) -> dict[str, Any]:
        fps = _fps(part, self.settings)
        self._check_video_model()
        media = resolve_video(source, options=self.settings.options)
        _check_duration(media, self.caps)
        extra = {"fps": fps} if fps is not None else {}
        if self.mode == "native":
            wire: dict[str, Any] = {"video": None, **extra}
            self._track(wire, "video", media)
            return wire
        inner: dict[str, Any] = {"url": None}
        wire = {"type": "video_url", "video_url": inner, **extra}
        self._track(inner, "url", media)
        return wire

    def frames(self, frames: Sequence[Any], part: Mapping[str, Any]) -> dict[str, Any]:
        s = self.settings
        fps = _fps(part, s)
        self._check_video_model()
        _check_frame_count(frames, self.caps)
        resolved = resolve_frames(
            list(frames),
            model=s.model,
            high_resolution=bool(s.high_resolution),
            min_pixels=s.min_pixels,
            max_pixels=s.max_pixels,
            options=s.options,
        )
        urls: list[Any] = [None] * len(resolved)
        for i, media in enumerate(resolved):
            self._track(urls, i, media)
        wire: dict[str, Any] = {"video": urls}
        if self.mode == "compatible":
            wire = {"type": "video", **wire}
        if fps is not None:
            wire["fps"] = fps
        return wire

    def text(self, text: str) -> dict[str, Any]:
        return {"text": text} if self.mode == "native" else {"type": "text", "text": text}

    def document(self, part: Mapping[str, Any]) -> list[dict[str, Any]]:
        """A ``file`` part: its pages as images (resolved once), after a line naming them."""
        from .documents.chat_pages import document_parts

        doc = document_parts(part, self.settings, native=self.mode == "native", used_tokens=self.document_tokens,
                             labels=self.role != "tool")  # fmt: skip
        self.document_tokens += doc.tokens
        out = []
        for item in doc.parts:
            kind, source, raw = _classify(item)
            out.append(self.text(source) if kind == "text" else self.image(source, raw))
        return out

    def content(self, content: Any, where: str = "message") -> Any:
        if content is None or isinstance(content, str):
            if isinstance(content, str):
                _check_unicode(content, f"{where} content")
            if self.mode == "native" and isinstance(content, str):
                return [{"text": content}]
            return content
        if isinstance(content, Mapping) or not isinstance(content, Sequence):
            content = [content]
        parts = []
        for index, part in enumerate(content):
            kind, source, raw = _classify(part)
            if kind == "text":
                _check_unicode(source, f"{where} part {index} (text)")
                parts.append(self.text(source))
            elif kind == "image":
                parts.append(self.image(source, raw))
            elif kind == "video":
                parts.append(self.video(source, raw))
            elif kind == "document":
                parts.extend(self.document(raw))
            else:
                parts.append(self.frames(source, raw))
        return parts


def normalize_messages(
    messages: Sequence[Mapping[str, Any]] | str, settings: MediaSettings, mode: Mode = "compatible"
) -> WireMessages:
    """Resolve media and produce wire messages. Raises :class:`InputValidationError` on bad input."""
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    if not messages:
        raise InputValidationError("messages is empty; give at least one message")
    builder = _Builder(settings, mode)
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping) or "role" not in message:
            raise InputValidationError(f"message {index} must be a dict with a 'role': {_brief(message)}")
        role = message["role"]
        if role not in ("system", "user", "assistant", "tool", "developer"):
            raise InputValidationError(f"message {index} has unknown role {role!r}")
        wire: dict[str, Any] = {"role": "system" if role == "developer" else role}
        where = f"message {index} ({role})"
        builder.role = role
        wire["content"] = builder.content(message.get("content"), where)
        if wire["content"] is None and role != "assistant":
            wire["content"] = ""
        for key in _PASS_KEYS:
            if message.get(key) is not None:
                _check_strings(message[key], f"{where} {key}")
                wire[key] = message[key]
        builder.out.messages.append(wire)
    from .tool_media import move_tool_media

    move_tool_media(builder.out.messages, builder.out.media, native=mode == "native")
    return builder.out


def content_has_text(messages: Sequence[Mapping[str, Any]], needle: str) -> bool:
    """Whether any text in the wire messages contains ``needle`` (case-insensitive)."""
    needle = needle.lower()
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            if needle in content.lower():
                return True
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, Mapping) and isinstance(part.get("text"), str) and needle in part["text"].lower():
                    return True
    return False
