"""Bounded, ordered concurrency for page jobs, sync (threads) and async (one event loop).

Both runners keep at most ``workers`` jobs working and at most ``2 * workers`` started, and
yield results in job order, so memory stays flat in the number of pages however slow one page
is. After a result whose ``fatal`` is true no new job starts; the ones started finish and are
yielded, then iteration ends.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

__all__ = ["run_ordered", "arun_ordered"]


class _HasFatal(Protocol):
    @property
    def fatal(self) -> bool: ...


J = TypeVar("J")
R = TypeVar("R", bound=_HasFatal)

_END: Any = object()


def run_ordered(jobs: Iterable[J], work: Callable[[J], R], workers: int) -> Iterator[R]:
    """``work(job)`` for each job in threads, results in job order."""
    if workers <= 1:
        for job in jobs:
            result = work(job)
            yield result
            if result.fatal:
                return
        return
    window: deque = deque()
    stop = False
    iterator = iter(jobs)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qwen-vl-pages") as pool:
        try:
            while True:
                while not stop and len(window) < 2 * workers:
                    job = next(iterator, _END)
                    if job is _END:
                        stop = True
                        break
                    window.append(pool.submit(work, job))
                if not window:
                    return
                result = window.popleft().result()
                if result.fatal:
                    stop = True
                yield result
        finally:
            for future in window:
                future.cancel()


async def arun_ordered(jobs: Iterable[J], work: Callable[[J], Awaitable[R]], workers: int) -> AsyncIterator[R]:
    """``await work(job)`` for each job on the running loop, results in job order.

    ``work`` holds its own semaphore of ``workers`` around the part that must be bounded (the
    request); listing jobs may block (it opens PDFs), so ``next()`` runs in a thread.
    """
    iterator = iter(jobs)
    window: deque[asyncio.Task] = deque()
    stop = False
    try:
        while True:
            while not stop and len(window) < 2 * max(1, workers):
                job = await asyncio.to_thread(next, iterator, _END)
                if job is _END:
                    stop = True
                    break
                window.append(asyncio.ensure_future(work(job)))
            if not window:
                return
            result = await window.popleft()
            if result.fatal:
                stop = True
            yield result
    finally:
        for task in window:
            task.cancel()
        if window:
            await asyncio.gather(*window, return_exceptions=True)
