"""Reading chat messages as DashScope does: content parts, the media URLs in them, the texts."""

from __future__ import annotations

from typing import Any


def content_parts(message: Any) -> list[dict]:
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):
        return [p for p in content if isinstance(p, dict)]
    return []


def part_urls(part: dict) -> list[str]:
    urls: list[str] = []
    for key in ("image_url", "video_url"):
        v = part.get(key)
        if isinstance(v, dict):
            v = v.get("url")
        if isinstance(v, str):
            urls.append(v)
    for key in ("image", "video", "audio"):
        v = part.get(key)
        if isinstance(v, str):
            urls.append(v)
        elif isinstance(v, list):
            urls += [u for u in v if isinstance(u, str)]
    return urls


def is_image(part: dict) -> bool:
    return part.get("type") in ("image_url", "image") or (part.get("type") is None and "image" in part)


def is_video(part: dict) -> bool:
    return part.get("type") in ("video_url", "video") or (part.get("type") is None and "video" in part)


def part_text(part: dict) -> str | None:
    if part.get("type") in (None, "text") and isinstance(part.get("text"), str):
        return part["text"]
    return None


def message_texts(messages: list) -> list[str]:
    texts = []
    for m in messages:
        if isinstance(m, dict) and isinstance(m.get("content"), str):
            texts.append(m["content"])
        for p in content_parts(m):
            t = part_text(p)
            if t is not None:
                texts.append(t)
    return texts


def last_user(messages: list) -> dict:
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            return m
    return {}


def all_urls(messages: list) -> list[str]:
    return [u for m in messages for p in content_parts(m) for u in part_urls(p)]
