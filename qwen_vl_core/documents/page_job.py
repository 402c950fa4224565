"""One page's job: cache lookup, the page resolved once for the wire, the request, the answer
checked and tidied, and a :class:`~.records.PageResult` whatever happens."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..client import QwenVLClient
from ..types import ChatResult
from .cache import CachedResult, ResultCache, cache_key
from .prepare import Prepared, RenderProcesses
from .prompts import clean_output
from .records import EmptyAnswerError, IncompleteAnswerError, PageResult
from .sources import FileFailure, PageRef

__all__ = ["PageJob"]


class PageJob:
    """What every page of one pipeline is asked, and how one page is done (sync or async)."""

    def __init__(
        self,
        client: QwenVLClient,
        *,
        model: str,
        mode: str,
        prompt_text: str,
        native_ocr: bool,
        options: dict[str, Any],
        cache: Any,
        keep_media: bool,
    ) -> None:
        self.client = client
        self.model = model
        self.mode = mode
        self._prompt_text = prompt_text
        self._native_ocr = native_ocr
        self.options = options
        self.cache = cache
        self.keep_media = keep_media

    def key_for(self, sha256: str) -> str:
        """The cache key of a page with this content under this pipeline's settings."""
        prompt = "" if self._native_ocr else self._prompt_text
        return cache_key(sha256, model=self.model, mode=self.mode, prompt=prompt, options=self.options)

    def _wire_media(self, prepared: Prepared, label: str) -> Any:
        """What goes into the message: the URL as given, or the page resolved exactly once."""
        from ..media import resolve_encoded, resolve_image

        if prepared.url is not None:
            return prepared.url
        assert prepared.data is not None
        if prepared.path == "file":  # a file as the user gave it: the core checks and resizes it
            media = resolve_image(
                prepared.data,
                model=self.model,
                high_resolution=bool(self.options.get("high_resolution")),
                min_pixels=self.options.get("min_pixels"),
                max_pixels=self.options.get("max_pixels"),
                options=self.client.media_options,
                label=label,
            )
        else:
            assert prepared.mime and prepared.width and prepared.height
            media = resolve_encoded(
                prepared.data,
                mime=prepared.mime,
                width=prepared.width,
                height=prepared.height,
                source=label,
                options=self.client.media_options,
            )
        if prepared.width is None:
            prepared.width, prepared.height = media.sent_width, media.sent_height
        return media

    def _messages(self, media: Any) -> list[dict[str, Any]]:
        content: list[dict[str, Any]] = [{"image": media}]
        if not self._native_ocr:
            content.append({"text": self._prompt_text})
        return [{"role": "user", "content": content}]

    def _answer(self, result: ChatResult) -> str:
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
        if not text.strip():
            raise EmptyAnswerError(
                "the model returned no text for this page; not cached, a re-run asks again",
                request_id=result.request_id,
            )
        return text

    def _record(self, ref: PageRef, prepared: Prepared, started: float, **fields: Any) -> PageResult:
        return PageResult(
            source=ref.source,
            page=ref.number,
            total_pages=ref.total,
            mode=self.mode,
            model=self.model,
            name=ref.name,
            kind=ref.kind,
            path=prepared.path,  # type: ignore[arg-type]
            width=prepared.width,
            height=prepared.height,
            sha256=prepared.sha256,
            index=ref.index,
            seconds=time.perf_counter() - started,
            **fields,
        )

    def _cached(self, ref: PageRef, prepared: Prepared, key: str, started: float) -> PageResult | None:
        hit = self.cache.get(key) if self.cache is not None else None
        if hit is None:
            return None
        if prepared.width is None:
            prepared.width, prepared.height = hit.width, hit.height
        media = self._wire_media(prepared, ref.source) if self.keep_media else None
        return self._record(
            ref, prepared, started, text=hit.text, request_id=hit.request_id, usage=dict(hit.usage),
            cache_key=key, cached=True, media=media,
        )  # fmt: skip

    def _store(self, ref: PageRef, prepared: Prepared, key: str, text: str, result: ChatResult, media: Any,
               started: float) -> PageResult:  # fmt: skip
        usage = result.usage.to_dict() if result.usage is not None else {}
        if self.cache is not None:
            entry = CachedResult(text, self.model, result.request_id, usage, prepared.width, prepared.height)
            self.cache.put(key, entry)
        return self._record(
            ref, prepared, started, text=text, request_id=result.request_id, usage=usage, cache_key=key,
            media=media if self.keep_media else None,
        )  # fmt: skip

    def _failed(self, ref: PageRef | FileFailure, error: BaseException, started: float) -> PageResult:
        if isinstance(ref, FileFailure):
            return PageResult(
                source=ref.source, page=None, total_pages=None, mode=self.mode, model=self.model,
                error=error, name=ref.source, index=ref.index,
            )  # fmt: skip
        return PageResult(
            source=ref.source, page=ref.number, total_pages=ref.total, mode=self.mode, model=self.model,
            error=error, name=ref.name, kind=ref.kind, index=ref.index, seconds=time.perf_counter() - started,
        )  # fmt: skip

    def _before_request(
        self, ref: PageRef, processes: RenderProcesses | None, started: float
    ) -> PageResult | tuple[Prepared, str, Any]:
        """The blocking part before the request, in one go: load, key, the caller's or the cache's
        answer (a finished result), else ``(prepared, key, media)`` ready to send."""
        prepared = ref.load(processes)
        key = self.key_for(prepared.sha256)
        if ref.known_key == key:  # the caller has this answer already
            return self._record(ref, prepared, started, cache_key=key, cached=True)
        hit = self._cached(ref, prepared, key, started)
        if hit is not None:
            return hit
        return prepared, key, self._wire_media(prepared, ref.source)

    def run(self, ref: PageRef | FileFailure, processes: RenderProcesses | None) -> PageResult:
        started = time.perf_counter()
        if isinstance(ref, FileFailure):
            return self._failed(ref, ref.error, started)
        try:
            ready = self._before_request(ref, processes, started)
            if isinstance(ready, PageResult):
                return ready
            prepared, key, media = ready
            result = self.client.chat(self._messages(media), model=self.model, **self.options)
            return self._store(ref, prepared, key, self._answer(result), result, media, started)
        except Exception as exc:
            return self._failed(ref, exc, started)

    async def arun(
        self, ref: PageRef | FileFailure, processes: RenderProcesses | None, limit: asyncio.Semaphore
    ) -> PageResult:
        """One page on the loop; ``limit`` is held from loading to the answer, so at most that
        many pages are in memory and in flight. The blocking work runs in one thread hand-off
        before the request (and one after it, only to write the cache)."""
        started = time.perf_counter()
        if isinstance(ref, FileFailure):
            return self._failed(ref, ref.error, started)
        try:
            async with limit:
                ready = await asyncio.to_thread(self._before_request, ref, processes, started)
                if isinstance(ready, PageResult):
                    return ready
                prepared, key, media = ready
                result = await self.client.achat(self._messages(media), model=self.model, **self.options)
                text = self._answer(result)
                if self.cache is None or not isinstance(self.cache, ResultCache):
                    return self._store(ref, prepared, key, text, result, media, started)  # nothing to write
                return await asyncio.to_thread(self._store, ref, prepared, key, text, result, media, started)
        except Exception as exc:
            return self._failed(ref, exc, started)
