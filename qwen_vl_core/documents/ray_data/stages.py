"""The two stages of :func:`~.read.read_pages`: files to page rows (cheap: pages are counted, not
rendered), and page rows to result rows in an actor pool (each actor: one client, one event loop,
one connection pool, for its whole life; pages loaded, rendered and sent there).

Everything here is built from plain settings (:class:`ReadSpec`): no client, no key and no open
file travels through Ray. Each actor builds its :class:`~qwen_vl_core.QwenVLClient` from
``ReadSpec.client`` and the key it finds itself (``DASHSCOPE_API_KEY`` from ``runtime_env`` or the
node's environment, ``.env``, ``~/.alibabacloud/credentials``).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from ...client import QwenVLClient
from ...errors import ConfigurationError
from ..file_pages import file_pages
from ..pipeline import DocumentPipeline
from ..records import PageResult
from ..rows import failure_row, page_row, rows_table
from ..sources import RenderSettings

__all__ = ["ReadSpec", "expand_file", "PageReader"]


@dataclass(frozen=True)
class ReadSpec:
    """What every page is asked and how files are read: plain, picklable settings."""

    model: str
    mode: str
    prompt: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    dpi: float | None = None
    page_format: str = "jpeg"
    password: str | None = None
    client: Mapping[str, Any] = field(default_factory=dict)  # QwenVLClient settings, never the key
    cache_dir: str | None = None
    in_flight: int = 16
    chunk_pages: int = 8  # pages per row when a row carries the file's bytes
    filesystem: Any = None  # fsspec-style, for paths that are not local

    def pipeline(self, client: QwenVLClient) -> DocumentPipeline:
        return DocumentPipeline(
            client,
            model=self.model,
            mode=self.mode,
            prompt=self.prompt,
            options=dict(self.options),
            dpi=self.dpi,
            page_format=self.page_format,  # type: ignore[arg-type]
            password=self.password,
            num_workers=self.in_flight,
            on_error="skip",
            cache_dir=self.cache_dir,
            processes=0,  # the actor pool is the parallelism: one renderer per actor process
            name="qwen-vl ray reader",
        )

    def render_settings(self) -> RenderSettings:
        """The pipeline's render settings, worked out without a client (no key needed)."""
        return self.pipeline(QwenVLClient(api_key="not-used-for-counting", **self.client)).render


# ---------------------------------------------------------------- stage 1: files -> page rows


def expand_file(row: dict[str, Any], spec: ReadSpec) -> list[dict[str, Any]]:
    """One file row (``path``, ``source`` naming it as the user gave it, and ``bytes`` when the
    dataset carries the files) -> its page rows: ``source``, ``path``, ``first``, ``count``,
    ``total``, ``failure`` (a JSON result row when the file cannot be opened, else ""), and ``data``
    (the file's bytes, one row per ``chunk_pages`` pages) for rows that carry bytes. Rows for files
    on a filesystem carry one page each and no bytes: the page is read again where it is rendered."""
    data = row.get("bytes")
    path = str(row.get("path") or "<bytes>")
    source = str(row.get("source") or path)
    item: str | bytes = bytes(data) if data is not None else path
    fs = spec.filesystem if data is None else None
    client = QwenVLClient(api_key="not-used-for-counting", **spec.client)
    try:
        with file_pages(item, spec.render_settings(), label=source, fs=fs,
                        policy=client.media_options.policy) as pages:  # fmt: skip
            total = len(pages)
    except Exception as exc:  # the file cannot be opened: one failed row, nothing sent
        failure = failure_row(source, exc, mode=spec.mode, model=spec.model)
        out = {"source": source, "path": path, "first": 0, "count": 0, "total": 0, "failure": json.dumps(failure)}
        if data is not None:
            out["data"] = b""
        return [out]
    step = spec.chunk_pages if data is not None else 1
    rows = []
    for first in range(1, total + 1, step):
        out = {"source": source, "path": path, "first": first, "count": min(step, total - first + 1), "total": total,
               "failure": ""}  # fmt: skip
        if data is not None:
            out["data"] = item
        rows.append(out)
    return rows


# ---------------------------------------------------------------- stage 2: page rows -> results


class PageReader:
    """A ``map_batches`` callable class: page rows in, result rows out (see :mod:`..rows`).

    One event loop runs in a thread of the actor for its whole life; every batch's pages are jobs
    on it, sharing one semaphore of ``in_flight`` requests and one connection pool, so an actor
    keeps ``in_flight`` requests going across batch boundaries (Ray calls it from several threads
    at once). After an error that would fail every page (bad key, unknown model), later pages are
    not sent: their rows carry that error.
    """

    def __init__(self, spec: ReadSpec, limiter: Any = None) -> None:
        self._spec = spec
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="qwen-vl-pages", daemon=True)
        self._thread.start()
        self._limit: _Gate | None = None
        self._fatal: BaseException | None = None
        self._error: BaseException | None = None
        try:
            client = QwenVLClient(**spec.client, rate_limit=limiter)
        except ConfigurationError as exc:  # raised on the first batch, where Ray reports it
            self._error = exc
            return
        self._pipeline = spec.pipeline(client)
        self._policy = client.media_options.policy

    def __call__(self, batch: Any) -> Any:
        if self._error is not None:
            raise self._error
        rows = batch.to_pylist()
        results = asyncio.run_coroutine_threadsafe(self._read(rows), self._loop).result()
        return rows_table(results)

    async def _read(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self._limit is None:
            self._limit = _Gate(self._spec.in_flight, self)
        # consecutive rows of one file are read from one opening of it
        groups = [list(group) for _, group in groupby(rows, key=lambda r: (r["path"], r.get("data") is not None))]
        out: list[dict[str, Any]] = []
        for done in await asyncio.gather(*(self._file(group) for group in groups)):
            out.extend(done)
        return out

    async def _file(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        failed = [json.loads(r["failure"]) for r in rows if r["failure"]]
        rows = [r for r in rows if not r["failure"]]
        if not rows:
            return failed
        first = rows[0]
        wanted = {n for r in rows for n in range(r["first"], r["first"] + r["count"])}
        data = first.get("data")
        item: str | bytes = data if data is not None else first["path"]
        fs = self._spec.filesystem if data is None else None
        context = file_pages(item, self._pipeline.render, label=first["source"], fs=fs, policy=self._policy)
        try:
            pages = await asyncio.to_thread(context.__enter__)
        except Exception as exc:  # readable when listed, not now: every wanted page fails with it
            return failed + [
                failure_row(first["source"], exc, page=n, total_pages=first["total"], mode=self._spec.mode,
                            model=self._spec.model)  # fmt: skip
                for n in sorted(wanted)
            ]
        try:
            chosen = [ref for ref in pages if ref.number in wanted]
            results = await asyncio.gather(*(self._page(ref) for ref in chosen))
        finally:
            await asyncio.to_thread(context.__exit__, None, None, None)
        return failed + [page_row(result) for result in results]

    async def _page(self, ref: Any) -> PageResult:
        assert self._limit is not None
        result = await self._pipeline.job.arun(ref, None, self._limit)
        if result.fatal and self._fatal is None:
            self._fatal = result.error
        return result

    def __del__(self) -> None:  # the actor ends: stop the loop
        loop = getattr(self, "_loop", None)
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(loop.stop)


class _Gate:
    """The actor's semaphore of ``in_flight`` pages, which a page passes only while no error that
    fails every page has been seen (a page refused here becomes a row with that error)."""

    def __init__(self, size: int, reader: PageReader) -> None:
        self._semaphore = asyncio.Semaphore(size)
        self._reader = reader

    async def __aenter__(self) -> None:
        await self._semaphore.acquire()
        fatal = self._reader._fatal
        if fatal is not None:
            self._semaphore.release()
            raise _not_sent(fatal)

    async def __aexit__(self, *exc: Any) -> None:
        self._semaphore.release()


def _not_sent(error: BaseException) -> BaseException:
    message = getattr(error, "message", str(error))
    try:
        return type(error)(
            f"not sent: an earlier page failed with {message}",
            status=getattr(error, "status", None),
            code=getattr(error, "code", None),
        )
    except TypeError:
        return error
