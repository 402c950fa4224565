"""Images (and videos) returned by tools: the one rule both adapters use.

DashScope takes image and video parts in ``user`` messages only: a ``tool`` message that carries
one is refused with HTTP 400. Agents need tools that return pictures (a screenshot, a rendered
page, a chart), so :func:`move_tool_media` rewrites the wire messages before anything is sent:

* each ``tool`` message keeps its text; a tool message that had only media gets a short
  placeholder naming them (``[tool call call_7 returned 1 image (page-3.png); it follows in the
  next user message]``), so every tool call still has its result;
* the media follow, in their order, in one ``user`` message placed right after the tool results
  of that turn (the run of consecutive ``tool`` messages), each tool call's media after a line
  saying which call returned them (``Image returned by tool call call_7 (render_page):``).

The rule runs on normalized wire messages (either API mode), inside
:func:`qwen_vl_core.messages.normalize_messages`, so the core client, ``ChatQwenVL`` and
``QwenVL`` all send the same thing. Media keep their order in the request (the moved media sit
where the tool results were), so uploads and token estimates that walk the media in order are
unaffected.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import PurePath
from typing import Any

from .media import ResolvedMedia

__all__ = ["move_tool_media", "media_kind"]


def media_kind(part: Any) -> str | None:
    """``"image"``, ``"video"`` or ``"frames"`` for a wire media part of either mode, else ``None``."""
    if not isinstance(part, Mapping):
        return None
    kind = part.get("type")
    if kind == "text" or (kind is None and "text" in part):
        return None
    if kind == "image_url" or (kind in ("image", None) and "image" in part):
        return "image"
    if kind in ("video", None) and isinstance(part.get("video"), list):
        return "frames"
    if kind == "video_url" or (kind is None and "video" in part):
        return "video"
    return None


def _count(part: Mapping[str, Any], kind: str) -> int:
    return len(part["video"]) if kind == "frames" else 1


def _name(media: ResolvedMedia | None, number: int) -> str:
    """A short name for the placeholder: the file name when the media came from a file."""
    source = media.source if media is not None else ""
    if not source or source.startswith("<") or "://" in source:
        return f"{media.kind if media is not None else 'image'} {number}"
    return PurePath(source).name or source


def _noun(kinds: list[str]) -> str:
    images = sum(1 for k in kinds if k == "image")
    videos = len(kinds) - images
    words = []
    if images:
        words.append(f"{images} image{'s' if images != 1 else ''}")
    if videos:
        words.append(f"{videos} video{'s' if videos != 1 else ''}")
    return " and ".join(words)


def _text_part(text: str, native: bool) -> dict[str, Any]:
    return {"text": text} if native else {"type": "text", "text": text}


def _tool_names(messages: list[dict[str, Any]]) -> dict[str, str]:
    """Tool call id -> function name, from the assistant messages' ``tool_calls``."""
    names: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or []:
            if isinstance(call, Mapping):
                fn = call.get("function") if isinstance(call.get("function"), Mapping) else {}
                if call.get("id") and fn.get("name"):
                    names[str(call["id"])] = str(fn["name"])
    return names


class _MediaWalk:
    """The request's resolved media in order, read along the wire parts that use them."""

    def __init__(self, media: list[ResolvedMedia]) -> None:
        self._it: Iterator[ResolvedMedia] = iter(media)

    def take(self, n: int) -> list[ResolvedMedia | None]:
        return [next(self._it, None) for _ in range(n)]


def move_tool_media(messages: list[dict[str, Any]], media: list[ResolvedMedia], *, native: bool = False) -> None:
    """Move image and video parts out of ``tool`` messages into a ``user`` message right after
    each run of tool results (in place; see the module docs). ``media`` are the request's
    resolved media in wire order (used to name them); ``native`` selects the part shapes of
    DashScope's native API."""
    if not any(m.get("role") == "tool" and isinstance(m.get("content"), list) for m in messages):
        return
    names = _tool_names(messages)
    walk = _MediaWalk(media)
    out: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    for message in messages:
        if message.get("role") != "tool" and pending:
            out.append({"role": "user", "content": pending})
            pending = []
        content = message.get("content")
        if not isinstance(content, list):
            out.append(message)
            continue
        kinds = [media_kind(part) for part in content]
        used = [walk.take(_count(part, kind)) if kind else [] for part, kind in zip(content, kinds)]
        if message.get("role") != "tool" or not any(kinds):
            out.append(message)
            continue
        moved = [part for part, kind in zip(content, kinds) if kind]
        texts = [part.get("text", "") for part, kind in zip(content, kinds) if not kind and isinstance(part, Mapping)]
        call_id = str(message.get("tool_call_id") or "?")
        tool = names.get(call_id)
        found = [k for k in kinds if k]
        media_parts = [(kind, group) for kind, group in zip(kinds, used) if kind]
        label = [
            _name(group[0] if kind != "frames" else None, i) if kind != "frames" else f"video {i}"
            for i, (kind, group) in enumerate(media_parts, 1)
        ]
        text = "\n".join(t for t in texts if isinstance(t, str) and t)
        if not text:
            text = (
                f"[tool call {call_id} returned {_noun(found)} ({', '.join(label)}); "
                f"{'it follows' if len(label) == 1 else 'they follow'} in the next user message]"
            )
        message["content"] = [_text_part(text, True)] if native else text
        what = _noun(found).split(" ", 1)[1] if len(found) == 1 else _noun(found)
        intro = f"{what[0].upper()}{what[1:]} returned by tool call {call_id}" + (f" ({tool})" if tool else "") + ":"
        pending.append(_text_part(intro, native))
        pending.extend(moved)
        out.append(message)
    if pending:
        out.append({"role": "user", "content": pending})
    messages[:] = out
