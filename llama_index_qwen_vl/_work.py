"""The engine shared by the reader and the captioner: one image in, its text out (cache, media
resolution, the call, validation), and runners that keep ``num_workers`` images in flight.

Heavy local work (reading, rendering, hashing, encoding) runs in worker threads; the async runner
awaits ``client.achat`` under a semaphore, so the event loop only moves bytes.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from qwen_vl_core import (
    AuthenticationError,
    ChatResult,
    ConfigurationError,
    NotFoundError,
    PermissionDeniedError,
    QwenVLClient,
    get_capabilities,
)
from qwen_vl_core.media import resolve_image

from ._cache import CachedResult, ResultCache, cache_key
from ._pages import PageImage
from ._prompts import clean_output, prompt_for
from .errors import IncompleteAnswerError

__all__ = ["FATAL_ERRORS", "Done", "Outcome", "ImageWorker", "run_ordered", "run_async", "LoopSemaphores"]

#: Errors that would fail every remaining page too: stop instead of paying for more requests.
FATAL_ERRORS: tuple[type[BaseException], ...] = (
    AuthenticationError,
    PermissionDeniedError,
    NotFoundError,
    ConfigurationError,
)

J = TypeVar("J")


@dataclass
class Done:
    """A successful page: cleaned text plus what metadata needs."""

    text: str
    sha256: str
    width: int | None
    height: int | None
    model: str
    request_id: str | None
    usage: dict[str, int]
    cache_key: str
    media: Any = None  # the image as sent (data URL or bytes), kept only for image documents


@dataclass
class Outcome(Generic[J]):
    job: J
    done: Done | None = None
    error: BaseException | None = None

    @property
    def fatal(self) -> bool:
        return isinstance(self.error, FATAL_ERRORS)


@dataclass
class _Prepared:
    image: PageImage
    key: str
    cached: CachedResult | None
    media: Any = None


@dataclass
class ImageWorker:
    """Turns one :class:`PageImage` into :class:`Done` for a given model, mode and options."""

    client: QwenVLClient
    model: str
    mode: str
    prompt: str | None
    options: dict[str, Any]
    cache: ResultCache | None = None
    keep_media: bool = False
    _prompt_text: str = field(init=False)
    _native_ocr: bool = field(init=False)

    def __post_init__(self) -> None:
        self._prompt_text = prompt_for(self.mode, self.prompt)
        caps = get_capabilities(self.model)
        # qwen-vl-ocr models have a built-in text recognition task (native API): use it for "ocr".
        self._native_ocr = self.mode == "ocr" and caps.ocr_tasks and not self.prompt
        self.options = {k: v for k, v in self.options.items() if v is not None}
        if self._native_ocr:
            self.options.setdefault("ocr_task", "text_recognition")

    # ---------------------------------------------------------------- steps

    def key_for(self, sha256: str) -> str:
        prompt = "" if self._native_ocr else self._prompt_text
        return cache_key(sha256, model=self.model, mode=self.mode, prompt=prompt, options=self.options)

    def _resolve(self, source: Any) -> Any:
        """What goes on the wire: a URL as given, else a data URL made here, in the worker thread
        (the core then finds nothing left to do), or the bytes when they must be uploaded."""
        if isinstance(source, str):
            return source
        media = resolve_image(
            source,
            model=self.model,
            high_resolution=bool(self.options.get("high_resolution")),
            min_pixels=self.options.get("min_pixels"),
            max_pixels=self.options.get("max_pixels"),
            options=self.client.media_options,
        )
        if media.url is not None:
            return media.url
        assert media.pending is not None
        return media.pending.data

    def prepare(self, load: Callable[[], PageImage]) -> _Prepared:
        """Load (read / render), hash, look up the cache and, unless cached, encode. Blocking."""
        image = load()
        key = self.key_for(image.sha256)
        cached = self.cache.get(key) if self.cache is not None else None
        prepared = _Prepared(image, key, cached)
        if cached is None or self.keep_media:
            prepared.media = self._resolve(image.source)
        image.source = None  # release the decoded page: only the encoded one travels on
        return prepared

    def messages(self, media: Any) -> list[dict[str, Any]]:
        content: list[dict[str, Any]] = [{"image": media}]
        if not self._native_ocr:
            content.append({"text": self._prompt_text})
        return [{"role": "user", "content": content}]

    def _done(self, prepared: _Prepared, text: str, request_id: str | None, usage: dict[str, int]) -> Done:
        image = prepared.image
        return Done(
            text=text,
            sha256=image.sha256,
            width=image.width,
            height=image.height,
            model=self.model,
            request_id=request_id,
            usage=usage,
            cache_key=prepared.key,
            media=prepared.media if self.keep_media else None,
        )

    def finish(self, prepared: _Prepared, result: ChatResult) -> Done:
        """Check that the answer is whole, tidy it, cache it."""
        if result.partial:
            raise IncompleteAnswerError(
                "the server returned a partial answer (it timed out while generating); not used",
                request_id=result.request_id,
            )
        if result.finish_reason == "length":
            raise IncompleteAnswerError(
                "the answer was cut off at max_tokens; raise max_tokens to read this page completely",
                request_id=result.request_id,
            )
        text = clean_output(result.text, self.mode)
        usage = result.usage.to_dict() if result.usage is not None else {}
        if self.cache is not None:
            self.cache.put(
                prepared.key, CachedResult(text=text, model=self.model, request_id=result.request_id, usage=usage)
            )
        return self._done(prepared, text, result.request_id, usage)

    def from_cache(self, prepared: _Prepared) -> Done:
        cached = prepared.cached
        assert cached is not None
        return self._done(prepared, cached.text, cached.request_id, dict(cached.usage))

    # ---------------------------------------------------------------- whole runs

    def run(self, load: Callable[[], PageImage]) -> Done:
        prepared = self.prepare(load)
        if prepared.cached is not None:
            return self.from_cache(prepared)
        result = self.client.chat(self.messages(prepared.media), model=self.model, **self.options)
        return self.finish(prepared, result)

    async def arun(self, load: Callable[[], PageImage], semaphore: asyncio.Semaphore) -> Done:
        prepared = await asyncio.to_thread(self.prepare, load)
        if prepared.cached is not None:
            return self.from_cache(prepared)
        messages = self.messages(prepared.media)
        if not self.keep_media:
            prepared.media = None
        async with semaphore:
            result = await self.client.achat(messages, model=self.model, **self.options)
        del messages
        return await asyncio.to_thread(self.finish, prepared, result)


# ---------------------------------------------------------------- runners


def run_ordered(
    jobs: Iterable[J],
    work: Callable[[J], Outcome[J]],
    workers: int,
) -> Iterator[Outcome[J]]:
    """Outcomes in job order, at most ``workers`` jobs in flight (threads). After a fatal outcome no
    new job starts; the ones in flight finish and are yielded, then iteration ends."""
    if workers <= 1:
        for job in jobs:
            outcome = work(job)
            yield outcome
            if outcome.fatal:
                return
        return
    window: deque = deque()
    stop = False
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qwen-vl-read") as pool:
        iterator = iter(jobs)
        try:
            while True:
                while not stop and len(window) < workers:
                    job = next(iterator, _END)
                    if job is _END:
                        stop = True
                        break
                    window.append(pool.submit(work, job))
                if not window:
                    return
                outcome = window.popleft().result()
                if outcome.fatal:
                    stop = True
                yield outcome
        finally:
            for future in window:
                future.cancel()


_END: Any = object()


async def run_async(
    jobs: Iterable[J],
    work: Callable[[J], Any],
    workers: int,
) -> AsyncIterator[Outcome[J]]:
    """Outcomes as they complete, ``workers`` coroutines pulling jobs. Listing jobs may block (it
    opens PDFs), so ``next()`` runs in a thread, one at a time."""
    iterator = iter(jobs)
    pull_lock = asyncio.Lock()
    queue: asyncio.Queue = asyncio.Queue()
    state = {"stop": False, "running": workers}

    async def pull() -> Any:
        async with pull_lock:
            if state["stop"]:
                return _END
            job = await asyncio.to_thread(next, iterator, _END)
            if job is _END:
                state["stop"] = True
            return job

    async def worker() -> None:
        try:
            while True:
                job = await pull()
                if job is _END:
                    return
                outcome = await work(job)
                if outcome.fatal:
                    state["stop"] = True
                await queue.put(outcome)
        finally:
            state["running"] -= 1
            if state["running"] == 0:
                await queue.put(_END)

    tasks = [asyncio.create_task(worker()) for _ in range(max(1, workers))]
    try:
        while True:
            item = await queue.get()
            if item is _END:
                break
            yield item
        for task in tasks:
            task.result()  # surface a bug in a worker instead of hiding it
    finally:
        state["stop"] = True
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# ---------------------------------------------------------------- shared concurrency limit


class LoopSemaphores:
    """One semaphore per running event loop, shared by all concurrent calls on one reader or
    captioner (SimpleDirectoryReader loads files in parallel: they share ``num_workers``).
    Pickling or copying starts empty: semaphores belong to a loop."""

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def get(self, limit: int) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        entry = self._by_loop.get(loop)
        if entry is None or entry[0] != limit:
            entry = (limit, asyncio.Semaphore(limit))
            self._by_loop[loop] = entry
        return entry[1]

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def __deepcopy__(self, memo: dict) -> LoopSemaphores:
        return LoopSemaphores()

    def __repr__(self) -> str:
        return "LoopSemaphores()"
