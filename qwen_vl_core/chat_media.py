"""Chat messages made ready once, before the request: documents expanded into page images and
every image resolved, with a record of each image's sizes.

Both adapters call :func:`prepare_chat_media` (or :func:`aprepare_chat_media`) on the core
messages of a call and send the messages it returns. The request then carries exactly the images
that were recorded: each one is resolved here, once (read, checked, downscaled to what the model
looks at, encoded), and the message builder sends a resolved image as it is. The records
(:class:`~qwen_vl_core.grounding.ImageRecord`: original, sent and model-side sizes) go into the
adapters' response metadata, which is what maps grounding boxes back to the user's image.

* ``file`` parts (PDFs, multi-page TIFFs, images, text files) become their pages
  (:func:`~qwen_vl_core.documents.chat_pages.document_parts`); ``pages`` is the default page
  selection for parts that name none;
* images given by ``http(s)://`` or ``oss://`` URL are left as they are (nothing is downloaded)
  and recorded without sizes;
* videos and frame lists are left to the message builder (they are not images to ground on).

The input messages are not modified.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .documents.chat_pages import document_parts
from .media import MediaOptions, ResolvedMedia, is_remote_url, resolve_image
from .messages import MediaSettings, _classify, _pixels
from .grounding.types import ImageRecord

__all__ = ["ChatMedia", "prepare_chat_media", "aprepare_chat_media", "needs_media_work"]


@dataclass
class ChatMedia:
    """Messages ready to send (images resolved, documents expanded) and one record per image, in
    the order the images appear in the request."""

    messages: list[dict[str, Any]]
    images: list[ImageRecord] = field(default_factory=list)

    def images_metadata(self) -> list[dict[str, Any]]:
        """The records as plain dicts (what the adapters put in response metadata)."""
        return [record.to_dict() for record in self.images]


def _settings(model: str, options: Mapping[str, Any] | None, media_options: MediaOptions) -> MediaSettings:
    opts = options or {}
    return MediaSettings(
        model=model,
        high_resolution=opts.get("high_resolution"),
        min_pixels=opts.get("min_pixels"),
        max_pixels=opts.get("max_pixels"),
        fps=opts.get("fps"),
        options=media_options,
    )


def _with_source(part: Any, media: ResolvedMedia) -> Any:
    """``part`` with its image replaced by the resolved one (detail and pixel options kept)."""
    if not isinstance(part, Mapping):
        return media
    if part.get("type") == "image_url":
        inner = part.get("image_url")
        inner = {**inner, "url": media} if isinstance(inner, Mapping) else {"url": media}
        return {**part, "image_url": inner}
    if "image" in part:
        return {**part, "image": media}
    own = {key: part[key] for key in ("min_pixels", "max_pixels") if key in part}
    return {"type": "image", "image": media, **own}


class _Preparer:
    def __init__(self, settings: MediaSettings, pages: Any) -> None:
        self.settings = settings
        self.pages = pages
        self.images: list[ImageRecord] = []
        self.document_tokens = 0

    def _record(self, media: ResolvedMedia, pixels: Mapping[str, int], **where: Any) -> None:
        self.images.append(
            ImageRecord.of(media, self.settings.model, high_resolution=bool(self.settings.high_resolution),
                           min_pixels=pixels.get("min_pixels"), max_pixels=pixels.get("max_pixels"), **where)
        )  # fmt: skip

    def image(self, source: Any, part: Any, index: int) -> Any:
        raw = part if isinstance(part, Mapping) else {}
        pixels = _pixels(raw, self.settings)
        if isinstance(source, ResolvedMedia):
            self._record(source, pixels, message=index)
            return part
        if is_remote_url(source):
            self.images.append(ImageRecord(str(source), None, None, high_resolution=bool(self.settings.high_resolution),
                                           min_pixels=pixels.get("min_pixels"), max_pixels=pixels.get("max_pixels"),
                                           message=index))  # fmt: skip
            return part
        s = self.settings
        media = resolve_image(
            source,
            model=s.model,
            high_resolution=bool(s.high_resolution),
            min_pixels=pixels.get("min_pixels"),
            max_pixels=pixels.get("max_pixels"),
            options=s.options,
        )
        self._record(media, pixels, message=index)
        return _with_source(part, media)

    def document(self, part: Mapping[str, Any], index: int, role: Any) -> list[Any]:
        doc = document_parts(part, self.settings, pages=self.pages, used_tokens=self.document_tokens,
                             labels=role != "tool")  # fmt: skip
        self.document_tokens += doc.tokens
        pixels = _pixels(part, self.settings)
        for number, media in zip(doc.pages, doc.media):
            self._record(media, pixels, message=index, document=doc.label, page=number)
        return doc.parts

    def content(self, content: Any, index: int, role: Any = "user") -> Any:
        if content is None or isinstance(content, str):
            return content
        if isinstance(content, Mapping) or not isinstance(content, Sequence):
            content = [content]
        out: list[Any] = []
        changed = False
        for part in content:
            kind, source, _ = _classify(part)
            if kind == "image":
                new = self.image(source, part, index)
                out.append(new)
                changed = changed or new is not part
            elif kind == "document":
                out.extend(self.document(part, index, role))
                changed = True
            else:
                out.append(part)
        return out if changed else content


def prepare_chat_media(
    messages: Sequence[Mapping[str, Any]],
    *,
    model: str,
    options: Mapping[str, Any] | None = None,
    media_options: MediaOptions | None = None,
    pages: Any = None,
) -> ChatMedia:
    """Expand documents and resolve images in ``messages`` (core message dicts) for ``model``
    with the request ``options`` (``high_resolution``, ``min_pixels``, ``max_pixels`` apply);
    ``media_options`` are the client's (resize, upload, local-file policy); ``pages`` the default
    page selection of documents. Raises :class:`~qwen_vl_core.errors.InputValidationError` on
    bad input, before anything is sent."""
    preparer = _Preparer(_settings(model, options, media_options or MediaOptions()), pages)
    out: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            out.append(message)  # type: ignore[arg-type]  # refused by the message builder, with its index
            continue
        content = message.get("content")
        new = preparer.content(content, index, message.get("role"))
        out.append(message if new is content else {**message, "content": new})  # type: ignore[arg-type]
    return ChatMedia(out, preparer.images)


def needs_media_work(messages: Any) -> bool:
    """Whether preparing ``messages`` may read, render or encode anything (so async callers run
    :func:`prepare_chat_media` in a thread): any part that is not text, a remote URL or resolved."""
    if isinstance(messages, str) or not isinstance(messages, Sequence):
        return False
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else None
        if content is None or isinstance(content, str):
            continue
        parts = [content] if isinstance(content, Mapping) or not isinstance(content, Sequence) else content
        for part in parts:
            if isinstance(part, (str, ResolvedMedia)):
                continue
            if isinstance(part, Mapping):
                kind = part.get("type")
                if kind == "text" or (kind is None and "text" in part and len(part) == 1):
                    continue
                url = part.get("image_url")
                url = url.get("url") if isinstance(url, Mapping) else url
                for value in (url, part.get("image"), part.get("url")):
                    if value is not None:
                        break
                if kind != "file" and value is not None and (is_remote_url(value) or isinstance(value, ResolvedMedia)):
                    continue
            return True
    return False


async def aprepare_chat_media(
    messages: Sequence[Mapping[str, Any]],
    *,
    model: str,
    options: Mapping[str, Any] | None = None,
    media_options: MediaOptions | None = None,
    pages: Any = None,
) -> ChatMedia:
    """:func:`prepare_chat_media` for async callers: in a worker thread when there is media work
    (reading, rendering, encoding), so the event loop keeps serving; at once otherwise."""
    kwargs = dict(model=model, options=options, media_options=media_options, pages=pages)
    if not needs_media_work(messages):
        return prepare_chat_media(messages, **kwargs)
    return await asyncio.to_thread(prepare_chat_media, messages, **kwargs)
