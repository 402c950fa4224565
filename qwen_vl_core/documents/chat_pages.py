"""Documents in chat messages: a PDF, a multi-page TIFF (or an image, or a text file) given as a
``file`` content part becomes page images the model reads, one after the other.

Qwen-VL reads images, not files. A part such as

* LangChain v1 ``{"type": "file", "mime_type": "application/pdf", "base64": "..."}`` (or ``"url"``:
  a ``data:`` URL, a ``file://`` URI or a local path; or ``"path"``), with the file name in
  ``extras["filename"]`` or ``"filename"``;
* OpenAI's ``{"type": "file", "file": {"file_data": "data:application/pdf;base64,...", "filename": ...}}``;

is expanded by :func:`document_parts` into a header line (``Document 'report.pdf', pages 1-3 of
12:``) and, for each page, a ``Page n:`` line and the page image. The pages come from the document
pipeline's own sources (:mod:`.sources`, :mod:`.prepare`): a PDF page is rendered at the model's
pixel budget (``high_resolution``, ``min_pixels``, ``max_pixels`` as for any image), a scanned
page's own JPEG is sent as it is, each TIFF frame is one page; every page is encoded once.

Options on the part: ``pages`` (``[1, 3]``, ``"1-3"``, ``"2,5-"``, 1-based; default all; the
adapters also take it as a model option), ``password`` (encrypted PDFs), ``min_pixels`` /
``max_pixels``. Before a page is sent, the pages' image tokens are checked against the model's
context window: past it, an :class:`~qwen_vl_core.errors.InputValidationError` names the page
count, the estimate and the window (and how many pages would fit), before the remaining pages are
rendered. A text file (``text/plain``, markdown, CSV, JSON) becomes a text part. Remote
``http(s)://`` documents are refused (nothing is downloaded): pass the bytes or a local path.

PDFs need the ``pdf`` extra (pypdfium2).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from ..errors import InputValidationError
from ..media import IMAGE_FORMATS, MediaOptions, ResolvedMedia, detect_format, resolve_encoded, resolve_image
from ..media.formats import describe_format
from ..media.sources import decode_data_url
from ..models import ModelCapabilities, get_capabilities
from ..tokens import image_pixel_bounds, image_tokens
from .file_pages import file_pages
from .sources import RenderSettings

__all__ = [
    "DOCUMENT_PART_TYPES",
    "DocumentPages",
    "is_document_part",
    "parse_pages",
    "document_parts",
]

#: Content-part types read as documents.
DOCUMENT_PART_TYPES = frozenset({"file"})
_TEXT_MIMES = frozenset({"application/json", "application/xml", "application/x-yaml", "application/csv"})
_TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".csv", ".tsv", ".json", ".xml", ".yaml", ".yml", ".html", ".htm"})
_PAGES = re.compile(r"^\s*(\d+)\s*(?:(-)\s*(\d+)?\s*)?$")


def is_document_part(part: Any) -> bool:
    return isinstance(part, Mapping) and part.get("type") in DOCUMENT_PART_TYPES


# ---------------------------------------------------------------- page selection


def parse_pages(spec: Any, total: int | None = None, *, label: str = "the document") -> list[int] | None:
    """1-based page numbers from ``spec``: ``None`` (all pages: returns None), an int, a string
    such as ``"1-3"``, ``"1,3,5-7"`` or ``"4-"`` (to the end), or a list of ints / such strings.
    With ``total`` the numbers are checked against it (and ``"4-"`` is expanded). Order is kept,
    repeats dropped."""
    if spec is None:
        return None
    items: Iterable[Any]
    if isinstance(spec, bool):
        raise InputValidationError(f"pages must be page numbers, a range like '1-3' or a list, got {spec!r}")
    if isinstance(spec, (int, str)):
        items = [spec]
    elif isinstance(spec, range):
        items = list(spec)
    elif isinstance(spec, Sequence):
        items = spec
    else:
        raise InputValidationError(f"pages must be page numbers, a range like '1-3' or a list, got {spec!r}")
    numbers: list[int] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            raise InputValidationError(f"pages: {item!r} is not a page number or a range like '1-3'")
        chunks = [item] if isinstance(item, int) else [c for c in item.split(",") if c.strip()]
        if not chunks:
            raise InputValidationError(f"pages: {item!r} names no page")
        for chunk in chunks:
            numbers.extend(_range(chunk, total, label))
    if not numbers:
        raise InputValidationError("pages is empty; name at least one page (or leave it unset for all pages)")
    seen: set[int] = set()
    out = [n for n in numbers if not (n in seen or seen.add(n))]
    if total is not None:
        outside = [n for n in out if n > total]
        if outside:
            raise InputValidationError(
                f"pages: page {outside[0]} is past the end of {label}, which has {total} page{'s' if total != 1 else ''}"
            )
    return out


def _range(chunk: int | str, total: int | None, label: str) -> list[int]:
    if isinstance(chunk, int):
        first = last = chunk
    else:
        match = _PAGES.match(chunk)
        if match is None:
            raise InputValidationError(f"pages: {chunk!r} is not a page number or a range like '1-3' or '4-'")
        first = int(match.group(1))
        if match.group(2) is None:
            last = first
        elif match.group(3) is not None:
            last = int(match.group(3))
        else:  # "4-": to the end
            last = total if total is not None else first  # without the count, only the syntax is checked
    if first < 1:
        raise InputValidationError(f"pages: page numbers start at 1, got {chunk!r}")
    if last < first:
        raise InputValidationError(f"pages: {chunk!r} runs backwards")
    pages = f"{total} page{'s' if total != 1 else ''}"
    if total is not None and first > total:
        raise InputValidationError(f"pages: page {first} is past the end of {label}, which has {pages}")
    if total is not None and last > total:
        raise InputValidationError(f"pages: {chunk!r} runs past the end of {label}, which has {pages}")
    return list(range(first, last + 1))


def _select(spec: Any, total: int, label: str) -> list[int]:
    chosen = parse_pages(spec, total, label=label)
    return list(range(1, total + 1)) if chosen is None else chosen


# ---------------------------------------------------------------- the part's input


@dataclass
class _Input:
    item: str | bytes | None  # a local path or the file's bytes
    label: str
    mime: str | None
    text: str | None = None  # a text document, read already


def _filename(part: Mapping[str, Any]) -> str | None:
    extras = part.get("extras") if isinstance(part.get("extras"), Mapping) else {}
    inner = part.get("file") if isinstance(part.get("file"), Mapping) else {}
    for value in (part.get("filename"), extras.get("filename"), inner.get("filename"), part.get("title"), part.get("name")):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _b64(text: str, label: str) -> bytes:
    compact = "".join(text.split())
    compact += "=" * (-len(compact) % 4)
    try:
        if "-" in compact or "_" in compact:
            return base64.urlsafe_b64decode(compact)
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputValidationError(f"document {label!r}: the base64 data is not valid ({exc})") from None


def _from_string(value: str, label: str, mime: str | None) -> _Input:
    text = value.strip()
    lowered = text[:8].lower()
    if lowered.startswith("data:"):
        data, declared = decode_data_url(text, f"document {label!r}")
        return _Input(data, label, mime or declared)
    if lowered.startswith(("http://", "https://", "oss://")):
        raise InputValidationError(
            f"document {label!r} is given by URL ({text[:80]}); Qwen-VL reads pages as images and the "
            "document is not downloaded here: download it and pass its bytes (base64) or a local path"
        )
    if lowered.startswith("file:"):
        from ..media.sources import _file_uri_path

        return _Input(str(_file_uri_path(text)), label if label != "<document>" else text, mime)
    return _Input(text, label if label != "<document>" else text, mime)


def _document_input(part: Mapping[str, Any]) -> _Input:
    """Where the document of a ``file`` part is: its bytes or a local path, a name, a MIME type."""
    name = _filename(part)
    label = name or "<document>"
    inner = part.get("file") if isinstance(part.get("file"), Mapping) else None
    mime = part.get("mime_type") if isinstance(part.get("mime_type"), str) else None
    if inner is not None:  # OpenAI chat-completions shape
        if inner.get("file_id"):
            raise InputValidationError(
                f"file part with file_id {inner['file_id']!r}: DashScope has no file store; pass the file's data"
            )
        data = inner.get("file_data")
        if isinstance(data, str) and data:
            if data.lstrip()[:5].lower() == "data:":
                return _from_string(data, label, mime)
            return _Input(_b64(data, label), label, mime)
        raise InputValidationError(f"file part without file_data: {_brief(part)}")
    b64 = part.get("base64") if part.get("base64") is not None else part.get("data")
    if isinstance(b64, (bytes, bytearray, memoryview)):
        return _Input(bytes(b64), label, mime)
    if isinstance(b64, str) and b64:
        if b64.lstrip()[:5].lower() == "data:":
            return _from_string(b64, label, mime)
        return _Input(_b64(b64, label), label, mime)
    for key in ("url", "path"):
        value = part.get(key)
        if isinstance(value, PurePath):
            value = str(value)
        if isinstance(value, str) and value:
            return _from_string(value, label if name else "<document>", mime)
    if part.get("file_id") is not None:
        raise InputValidationError(
            f"file block with file_id {part['file_id']!r}: DashScope has no file store; "
            "pass the document as base64 data or a local path"
        )
    if isinstance(part.get("text"), str):
        return _Input(None, label, mime or "text/plain", part["text"])
    raise InputValidationError(f"file block has no base64 data, url or path: {_brief(part)}")


def _brief(part: Any) -> str:
    text = repr(part)
    return text if len(text) <= 120 else text[:117] + "..."


def _is_text(source: _Input) -> bool:
    mime = (source.mime or "").lower().split(";")[0].strip()
    if mime.startswith("text/") or mime in _TEXT_MIMES:
        return True
    if not mime and isinstance(source.item, str):
        return PurePath(source.item).suffix.lower() in _TEXT_SUFFIXES
    return False


def _read_text(source: _Input, options: MediaOptions) -> str:
    if source.text is not None:
        return source.text
    if isinstance(source.item, bytes):
        data = source.item
    else:
        from ..media.local_files import file_limit, read_local

        assert source.item is not None
        data = read_local(source.item, options.policy, label=f"document {source.label!r}",
                          max_bytes=file_limit(options.policy, "document"))  # fmt: skip
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputValidationError(
            f"document {source.label!r} ({source.mime or 'text'}) is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None


# ---------------------------------------------------------------- pages


@dataclass
class DocumentPages:
    """What one ``file`` part became: the wire parts for the message, the page images (in order,
    with their 1-based page numbers), the document's page count and the pages' image tokens."""

    parts: list[Any]
    label: str
    total: int
    pages: list[int] = field(default_factory=list)
    media: list[ResolvedMedia] = field(default_factory=list)
    tokens: int = 0


def _pixels(part: Mapping[str, Any], settings: Any) -> dict[str, int]:
    out = {}
    for key in ("min_pixels", "max_pixels"):
        value = part.get(key, getattr(settings, key, None))
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise InputValidationError(f"{key} must be a positive integer, got {value!r}")
            out[key] = value
    return out


def _page_media(prepared: Any, source: str, settings: Any, pixels: dict[str, int]) -> ResolvedMedia:
    """A loaded page made ready for the wire, exactly once (as the pipeline's page job does): an
    image file as the user gave it is checked and resized by the core; a rendered page, a PDF's
    own JPEG or a TIFF frame is wrapped as encoded."""
    options = settings.options
    if prepared.path == "file":
        return resolve_image(
            prepared.data,
            model=settings.model,
            high_resolution=bool(settings.high_resolution),
            min_pixels=pixels.get("min_pixels"),
            max_pixels=pixels.get("max_pixels"),
            options=options,
            label=source,
        )
    return resolve_encoded(
        prepared.data, mime=prepared.mime, width=prepared.width, height=prepared.height, source=source, options=options
    )


def _span(pages: list[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``"1-3, 5"``."""
    out: list[str] = []
    start = prev = pages[0]
    for n in pages[1:] + [None]:  # type: ignore[list-item]
        if n is not None and n == prev + 1:
            prev = n
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(out)


def _too_many(
    label: str, caps: ModelCapabilities, count: int, estimate: int, per_page: float, used: int, high_res: bool
) -> InputValidationError:
    window = caps.context_window
    room = max(0, window - used)
    fit = int(room // per_page) if per_page else 0
    others = f" (with {used:,} image tokens of other documents in this request)" if used else ""
    return InputValidationError(
        f"document {label!r}: {count} page{'s' if count != 1 else ''} of about {per_page:,.0f} image tokens each come "
        f"to about {estimate:,} tokens{others}, more than the {window:,}-token context window of {caps.name!r}; "
        f"pass fewer pages (about {fit} fit: pages='1-{max(fit, 1)}') or "
        f"{'turn high_resolution off' if high_res else 'a lower max_pixels'} (nothing was sent)"
    )


def document_parts(
    part: Mapping[str, Any],
    settings: Any,
    *,
    native: bool = False,
    pages: Any = None,
    used_tokens: int = 0,
    labels: bool = True,
) -> DocumentPages:
    """Expand one ``file`` part into text and page-image parts (see the module docs).

    ``settings`` carries ``model``, ``high_resolution``, ``min_pixels``, ``max_pixels`` and
    ``options`` (:class:`~qwen_vl_core.media.MediaOptions`), as
    :class:`~qwen_vl_core.messages.MediaSettings` does. ``pages`` is the default page selection
    (the part's own ``pages`` wins). ``used_tokens``: image tokens of documents already in the
    request, counted against the context window with these pages. ``labels=False`` leaves out the
    ``Page n:`` line before each image (for a tool result, whose images are moved to a user
    message: the header names the pages, in order). Image parts hold the resolved
    page (``{"type": "image", "image": ResolvedMedia}``), which the message builder sends as is.
    """
    source = _document_input(part)
    if _is_text(source):
        text = _read_text(source, settings.options)
        header = f"Document {source.label!r}:\n" if source.label != "<document>" else ""
        return DocumentPages([_text(header + text, native)], source.label, 1)
    caps = get_capabilities(settings.model)
    pixels = _pixels(part, settings)
    _, _, budget = image_pixel_bounds(
        caps, high_resolution=bool(settings.high_resolution),
        min_pixels=pixels.get("min_pixels"), max_pixels=pixels.get("max_pixels"),
    )  # fmt: skip
    password = part.get("password") if isinstance(part.get("password"), str) else None
    render = RenderSettings(budget_pixels=budget, password=password)
    spec = part.get("pages", pages)
    assert source.item is not None
    label = source.label  # the file name given, else the path, else "<document>"
    if isinstance(source.item, bytes):
        _check_kind(source.item, label, source.mime)
    with _pages_of(source.item, render, label, settings.options) as refs:
        total = len(refs)
        chosen = _select(spec, total, repr(label))
        kind = refs[0].kind if refs else "image"
        name = PurePath(label).name if label != "<document>" else "document"
        what = {"pdf": "PDF", "tiff": "TIFF"}.get(kind, "image")
        out = DocumentPages(
            [_text(f"Document {name!r} ({what}), page{'s' if len(chosen) != 1 else ''} {_span(chosen)} of {total}"
                   f"{':' if labels or len(chosen) == 1 else ', one image per page in this order'}", native)],
            label, total,
        )  # fmt: skip
        for i, number in enumerate(chosen):
            prepared = refs[number - 1].load()
            media = _page_media(prepared, f"{label}#page={number}", settings, pixels)
            tokens = image_tokens(media.sent_width, media.sent_height, caps, high_resolution=bool(settings.high_resolution),
                                  **pixels)  # fmt: skip
            out.tokens += tokens
            out.pages.append(number)
            out.media.append(media)
            if caps.known and used_tokens + out.tokens > caps.context_window:
                per_page = out.tokens / (i + 1)
                estimate = out.tokens + round(per_page * (len(chosen) - i - 1))
                raise _too_many(label, caps, len(chosen), estimate, per_page, used_tokens, bool(settings.high_resolution))
            if labels and (len(chosen) > 1 or total > 1):
                out.parts.append(_text(f"Page {number}:", native))
            own = {key: part[key] for key in ("min_pixels", "max_pixels") if key in part}
            out.parts.append({"image": media, **own} if native else {"type": "image", "image": media, **own})
    return out


@contextmanager
def _pages_of(item: str | bytes, render: RenderSettings, label: str, options: MediaOptions) -> Iterator[list[Any]]:
    """The document's pages, listed by the pipeline's sources; a missing PDF renderer is named."""
    try:
        with file_pages(item, render, label=label, policy=options.policy) as refs:
            yield refs
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("pypdfium2"):
            raise InputValidationError(
                f"document {label!r} is a PDF: reading PDFs needs the pdf extra "
                "(pip install 'qwen-vl-integrations[pdf]', which installs pypdfium2)"
            ) from None
        raise


def _check_kind(data: bytes, label: str, mime: str | None) -> None:
    """A document's bytes must be a PDF or an image format the model reads (TIFF included)."""
    info = detect_format(data)
    if info is not None and (info[1] == "PDF" or (info[0] == "image" and info[1] in IMAGE_FORMATS)):
        return
    what = mime or describe_format(info)
    raise InputValidationError(
        f"document {label!r} ({what}) is not a PDF, an image or a text file: Qwen-VL reads documents as page "
        "images; convert it to PDF first"
    )


def _text(text: str, native: bool) -> dict[str, Any]:
    return {"text": text} if native else {"type": "text", "text": text}
