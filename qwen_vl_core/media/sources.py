"""Turn any accepted input form into content bytes (or a pass-through URL) plus a display name.

Forms: ``http(s)://`` and ``oss://`` URLs (passed through, never downloaded), ``data:`` URLs,
local paths (``str`` / ``os.PathLike``), ``file://`` URIs, ``bytes`` / ``bytearray`` /
``memoryview`` and ``PIL.Image.Image``. Local paths are opened once and checked against the
:class:`LocalFilePolicy` for what was opened (:func:`.local_files.open_local`), size first.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_to_bytes, urlsplit
from urllib.request import url2pathname

from ..errors import InputValidationError
from .local_files import file_limit, open_local
from .policy import LocalFilePolicy
from .types import megabytes

__all__ = ["Loaded", "load_source", "is_remote_url", "is_pil_image", "decode_data_url", "display_url", "megabytes"]

_REMOTE_PREFIXES = ("http://", "https://", "oss://")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]+)://")
_BASE64ISH = re.compile(r"^[A-Za-z0-9+/=_\-\s]+$")
_MAX_DISPLAY = 100


@dataclass
class Loaded:
    """One loaded input: exactly one of ``url``, ``data`` or ``image`` is set."""

    source: str
    url: str | None = None
    data: bytes | None = None
    image: Any = None  # PIL.Image.Image
    filename: str | None = None  # basename of a local file, for naming uploads


def is_remote_url(value: Any) -> bool:
    """True for ``http://``, ``https://`` and ``oss://`` strings: these are sent as they are."""
    return isinstance(value, str) and value.strip()[:8].lower().startswith(_REMOTE_PREFIXES)


def is_pil_image(value: Any) -> bool:
    """True for a ``PIL.Image.Image`` (without importing Pillow when nobody has)."""
    module = sys.modules.get("PIL.Image")
    return module is not None and isinstance(value, module.Image)


def display_url(url: str) -> str:
    """A URL shortened for messages."""
    return url if len(url) <= _MAX_DISPLAY else url[: _MAX_DISPLAY - 3] + "..."


def load_source(
    value: Any,
    *,
    what: str,
    policy: LocalFilePolicy,
    allow_pil: bool = True,
    max_file_bytes: int | None = None,
    too_big_hint: str = "",
) -> Loaded:
    """Load ``value`` for a ``what`` input ("image", "video", "frame 3").

    A local file larger than ``max_file_bytes`` (and than the policy's ``max_file_bytes``; without
    either, :data:`~.types.MAX_IMAGE_FILE_BYTES`) is refused from its size, before reading.
    """
    if isinstance(value, str):
        text = value.strip()
        lowered = text[:8].lower()
        if lowered.startswith(_REMOTE_PREFIXES):
            return Loaded(source=display_url(text), url=text)
        if lowered.startswith("data:"):
            named = f"{what} '<data URL>'"
            data, _ = decode_data_url(text, named)  # the content, not the declared type, decides
            return Loaded(source="<data URL>", data=data)
        if lowered.startswith("file:"):
            path = _file_uri_path(text)
            return _load_path(path, str(path), what, policy, max_file_bytes, too_big_hint)
        match = _SCHEME.match(text)
        if match:
            raise InputValidationError(
                f"{what} {display_url(text)!r}: unsupported URL scheme {match.group(1)!r}; "
                "use http(s)://, oss://, data: or file:// URLs, or a local path"
            )
        if len(value) > 1024 and _BASE64ISH.match(value[:4096]) and not os.path.exists(value):
            raise InputValidationError(
                f"{what} {display_url(value)!r} looks like raw base64, not a path: wrap it as a data URL "
                "('data:image/png;base64,...') or pass the decoded bytes"
            )
        if not value:
            raise InputValidationError(f"{what}: empty string is neither a URL nor a file path")
        return _load_path(Path(value), value, what, policy, max_file_bytes, too_big_hint)
    if isinstance(value, os.PathLike):
        path = Path(os.fspath(value))
        return _load_path(path, str(path), what, policy, max_file_bytes, too_big_hint)
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = value.tobytes() if isinstance(value, memoryview) else bytes(value)
        if not data:
            raise InputValidationError(f"{what} '<bytes>' is empty")
        return Loaded(source="<bytes>", data=data)
    if allow_pil and is_pil_image(value):
        return Loaded(source="<PIL image>", image=value)
    accepted = "URL, data URL, oss:// URL, path, file:// URI, bytes" + (" or PIL image" if allow_pil else "")
    raise InputValidationError(f"{what}: unsupported input of type {type(value).__name__}; expected a {accepted}")


def decode_data_url(url: str, named: str) -> tuple[bytes, str | None]:
    """Bytes and declared MIME type of a ``data:`` URL (base64 or percent-encoded)."""
    comma = url.find(",")
    if comma < 0:
        raise InputValidationError(f"{named}: malformed data URL (no ',' before the data)")
    params = [p.strip() for p in url[5:comma].split(";")]
    mime = params[0].lower() or None
    payload = url[comma + 1 :]
    if any(p.lower() == "base64" for p in params[1:]):
        compact = "".join(payload.split())
        compact += "=" * (-len(compact) % 4)
        try:
            if "-" in compact or "_" in compact:
                data = base64.urlsafe_b64decode(compact)
            else:
                data = base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InputValidationError(f"{named}: the data URL payload is not valid base64 ({exc})") from exc
    else:
        data = unquote_to_bytes(payload)
    if not data:
        raise InputValidationError(f"{named}: the data URL holds no data")
    return data, mime


def _file_uri_path(uri: str) -> Path:
    parts = urlsplit(uri)
    path = url2pathname(parts.path)
    netloc = parts.netloc
    if netloc and netloc.lower() != "localhost":
        # "file://images/x.png": read as a relative path, as the DashScope SDK does.
        path = unquote(netloc) + path
    return Path(path)


def _load_path(
    path: Path,
    shown: str,
    what: str,
    policy: LocalFilePolicy,
    max_file_bytes: int | None,
    too_big_hint: str,
) -> Loaded:
    named = f"{what} {shown!r}"
    if max_file_bytes is None:
        limit, hint = file_limit(policy, "image"), ""
    elif policy.max_file_bytes is not None and policy.max_file_bytes < max_file_bytes:
        limit, hint = policy.max_file_bytes, ""
    else:
        limit, hint = max_file_bytes, too_big_hint
    with open_local(path, policy, label=named, max_bytes=limit, too_big_hint=hint) as local:
        data = local.read()
        filename = local.name
    if not data:
        raise InputValidationError(f"{named} is empty (0 bytes)")
    return Loaded(source=shown, data=data, filename=filename)
