"""The HTTP library the transport uses, and the mechanics of one attempt: a deadline's clock, read
timeouts capped by it, and bodies read piece by piece within a size limit.

``httpx2`` (the maintained successor of httpx, same API) where it is installed: its connection
pool assigns requests in linear time, while httpcore 1.0.x does quadratic work per assignment and
collapses at 64 concurrent requests (encode/httpcore#1035, unmerged). ``httpx`` otherwise (Python
3.10). Clients of either library passed in by a user work: their exceptions are caught too.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = [
    "httpx", "TRANSPORT_ERRORS", "TIMEOUT_ERRORS", "READ_TIMEOUT_ERRORS", "BACKEND", "module_of",
    "Clock", "cap_read", "read_body", "aread_body", "fail_after",
]  # fmt: skip


def _load(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


_modules = [m for m in (_load("httpx2"), _load("httpx")) if m is not None]
if not _modules:  # pragma: no cover - a dependency is always installed
    raise ImportError("qwen_vl_core needs httpx2 (Python 3.11+) or httpx")

httpx = _modules[0]
BACKEND: str = httpx.__name__
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = tuple(m.TransportError for m in _modules)
TIMEOUT_ERRORS: tuple[type[BaseException], ...] = tuple(m.TimeoutException for m in _modules)
# The request went out whole and the answer did not come in time: the server may be generating it (and billing it).
READ_TIMEOUT_ERRORS: tuple[type[BaseException], ...] = tuple(m.ReadTimeout for m in _modules)


def module_of(obj: object) -> ModuleType:
    """The library (``httpx2`` or ``httpx``) an object such as a user's client comes from."""
    top = type(obj).__module__.split(".", 1)[0]
    return next((m for m in _modules if m.__name__ == top), httpx)


# ---------------------------------------------------------------- one attempt: time and size


class Clock:
    """The deadline of one call (``seconds`` None: no deadline), on the monotonic clock."""

    __slots__ = ("seconds", "_end")

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._end = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        return None if self._end is None else self._end - time.monotonic()

    def expired(self) -> bool:
        return self._end is not None and time.monotonic() >= self._end

    def would_pass(self, delay: float) -> bool:
        """Whether waiting ``delay`` seconds from now would reach the deadline."""
        return self._end is not None and time.monotonic() + delay >= self._end

    def capped(self, timeouts: dict[str, float | None]) -> dict[str, float | None]:
        """httpx timeouts (``connect``, ``read``, ...) each cut to the time left."""
        left = self.remaining()
        if left is None:
            return timeouts
        left = max(left, 0.001)
        return {name: left if value is None else min(value, left) for name, value in timeouts.items()}


def cap_read(resp: Any, seconds: float | None) -> None:
    """Cap the read timeout for the rest of a response's body. httpcore takes it from the request's
    ``timeout`` extension when the body is first read, so this works between the head and the body."""
    if seconds is None:
        return
    extensions = getattr(resp.request, "extensions", None)
    if not isinstance(extensions, dict):
        return
    timeouts = dict(extensions.get("timeout") or {})
    read = timeouts.get("read")
    timeouts["read"] = max(seconds, 0.001) if read is None else min(read, max(seconds, 0.001))
    extensions["timeout"] = timeouts


TooLarge = Callable[[int | None], BaseException]  # the error for a body over its limit (declared size or None)


def _declared_over(resp: Any, limit: int | None, truncate: bool, too_large: TooLarge) -> None:
    if limit is None or truncate:
        return
    try:
        declared = int(resp.headers.get("content-length", ""))
    except ValueError:
        return
    if declared > limit:
        raise too_large(declared)


def read_body(resp: Any, limit: int | None, clock: Clock, *, truncate: bool, too_large: TooLarge,
              deadline: Callable[[], BaseException]) -> bytes:
    """A whole (decoded) body, piece by piece: refused by its declared length or as it grows past
    ``limit`` (``too_large``), or cut there with ``truncate``. ``deadline`` is raised when a piece
    arrives after the clock ran out, so a server dribbling bytes cannot stretch the call; a body
    whose last piece came in time is returned whole."""
    _declared_over(resp, limit, truncate, too_large)
    body = bytearray()
    late = False
    for chunk in resp.iter_bytes():
        if late:
            raise deadline()
        body += chunk
        if limit is not None and len(body) > limit:
            if truncate:
                return bytes(body[:limit])
            raise too_large(None)
        late = clock.expired()
    return bytes(body)


async def aread_body(resp: Any, limit: int | None, *, truncate: bool, too_large: TooLarge) -> bytes:
    """:func:`read_body` for async responses (their deadline is a cancel scope: see :func:`fail_after`)."""
    _declared_over(resp, limit, truncate, too_large)
    body = bytearray()
    async for chunk in resp.aiter_bytes():
        body += chunk
        if limit is not None and len(body) > limit:
            if truncate:
                return bytes(body[:limit])
            raise too_large(None)
    return bytes(body)


def fail_after(seconds: float | None) -> Any:
    """A cancel scope raising ``TimeoutError`` after ``seconds`` (None: never), on asyncio and trio alike."""
    import anyio  # httpx's own dependency; imported here so that sync users never load it

    return anyio.fail_after(None if seconds is None else max(seconds, 0.0))
