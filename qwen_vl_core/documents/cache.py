"""Content-addressed result cache: one JSON file per (image bytes, model, mode, prompt, options).

A re-run finds the pages it already paid for and sends only the rest, so an interrupted
1,000-page job resumes where it stopped. Files are written atomically (temp file + rename), so a
killed run never leaves a half-written entry; an unreadable entry is treated as missing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CACHE_VERSION", "CachedResult", "ResultCache", "MemoryCache", "cache_key"]

logger = logging.getLogger("qwen_vl_core.documents")

CACHE_VERSION = 1


def cache_key(image_sha256: str, *, model: str, mode: str, prompt: str, options: Mapping[str, Any]) -> str:
    """sha256 over the page image hash and everything that shapes the answer."""
    material = json.dumps(
        {
            "v": CACHE_VERSION,
            "image": image_sha256,
            "model": model,
            "mode": mode,
            "prompt": prompt,
            "options": dict(options),
        },
        sort_keys=True,
        ensure_ascii=True,
        default=str,
    )
    return hashlib.sha256(material.encode("ascii")).hexdigest()


@dataclass
class CachedResult:
    text: str
    model: str | None = None
    request_id: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    width: int | None = None  # the page as sent
    height: int | None = None


class ResultCache:
    """``<dir>/<key[:2]>/<key>.json``. Safe for concurrent writers (last rename wins, same content)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory).expanduser()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> CachedResult | None:
        path = self._path(key)
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            logger.warning("cache entry %s unreadable (%s); calling the model again", path, exc)
            return None
        try:
            data = json.loads(raw)
            if data.get("key") != key or not isinstance(data.get("text"), str):
                raise ValueError("not an entry for this key")
            if not data["text"].strip():
                raise ValueError("empty answer")
            usage = {k: int(v) for k, v in (data.get("usage") or {}).items()}
            return CachedResult(
                text=data["text"],
                model=data.get("model"),
                request_id=data.get("request_id"),
                usage=usage,
                width=data.get("width"),
                height=data.get("height"),
            )
        except (ValueError, TypeError, AttributeError) as exc:
            logger.warning("cache entry %s is corrupt (%s); calling the model again", path, exc)
            return None

    def put(self, key: str, result: CachedResult) -> None:
        """Store an answer. An empty answer is never stored: a re-run asks again."""
        if not result.text.strip():
            raise ValueError("an empty answer is not cached")
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"key": key, "version": CACHE_VERSION, **asdict(result)}, ensure_ascii=False)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(payload)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def __contains__(self, key: str) -> bool:
        return self._path(key).is_file()

    def __len__(self) -> int:
        if not self.directory.is_dir():
            return 0
        return sum(1 for _ in self.directory.glob("??/*.json"))


class MemoryCache:
    """The :class:`ResultCache` interface in memory (the newest ``limit`` answers), for callers
    that re-send the same images within one process and keep no cache directory."""

    def __init__(self, limit: int = 10_000) -> None:
        from collections import OrderedDict

        self.limit = limit
        self._entries: OrderedDict[str, CachedResult] = OrderedDict()

    def get(self, key: str) -> CachedResult | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: str, result: CachedResult) -> None:
        if not result.text.strip():
            raise ValueError("an empty answer is not cached")
        self._entries[key] = result
        self._entries.move_to_end(key)
        while len(self._entries) > self.limit:
            self._entries.popitem(last=False)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __getstate__(self) -> dict[str, Any]:
        return {"limit": self.limit}  # answers stay in the process that paid for them

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state.get("limit", 10_000))  # type: ignore[misc]
