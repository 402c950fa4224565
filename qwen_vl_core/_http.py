"""The HTTP library the transport uses.

``httpx2`` (the maintained successor of httpx, same API) where it is installed: its connection
pool assigns requests in linear time, while httpcore 1.0.x does quadratic work per assignment and
collapses at 64 concurrent requests (encode/httpcore#1035, unmerged). ``httpx`` otherwise (Python
3.10). Clients of either library passed in by a user work: their exceptions are caught too.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["httpx", "TRANSPORT_ERRORS", "TIMEOUT_ERRORS", "BACKEND", "module_of"]


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


def module_of(obj: object) -> ModuleType:
    """The library (``httpx2`` or ``httpx``) an object such as a user's client comes from."""
    top = type(obj).__module__.split(".", 1)[0]
    return next((m for m in _modules if m.__name__ == top), httpx)
