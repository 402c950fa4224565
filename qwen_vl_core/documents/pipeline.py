"""``DocumentPipeline``: images, TIFFs and scanned PDFs to text, page by page, concurrently,
cached, with nothing lost. Framework-free; the LangChain loader, the LlamaIndex reader and
captioner and the ``qwen-vl read`` command are thin layers over it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, TypeVar

from ..client import QwenVLClient
from ..models import DEFAULT_MODEL, get_capabilities
from ..tokens import image_pixel_bounds
from ..types import ChatResult
from .cache import CachedResult, ResultCache, cache_key
from .prepare import PageTask, Prepared, RenderProcesses, prepare_page, usable_cores
from .prompts import clean_output, prompt_for
from .records import DocumentReadError, EmptyAnswerError, IncompleteAnswerError, PageFailure, PageResult
from .sources import FileFailure, PageRef, RenderSettings, expand_inputs, iter_pages

__all__ = ["DocumentPipeline", "ImageItem", "OPTION_NAMES"]

logger = logging.getLogger("qwen_vl_core.documents")

T = TypeVar("T")

#: Request options a pipeline passes with every page (None: not sent, the model's default).
OPTION_NAMES = (
    "enable_thinking", "thinking_budget", "high_resolution", "min_pixels", "max_pixels", "max_tokens",
    "temperature", "ocr_task",
)  # fmt: skip

#: ``processes="auto"`` starts worker processes (about a second or two, once) only for a PDF with
#: at least this many pages to render; a scanned PDF (pages that are one JPEG) renders nothing.
AUTO_PROCESS_MIN_PAGES = 64

Progress = Callable[[PageResult], Any]


class ImageItem:
    """One image to read as a single page (what the captioner sends): ``image`` is bytes, a
    local path or a URL; ``label`` names it in records and errors; ``job`` is the caller's own."""

    __slots__ = ("image", "label", "job", "known_key")

    def __init__(self, image: bytes | str, label: str, job: Any = None, known_key: str | None = None) -> None:
        self.image, self.label, self.job = image, label, job
        self.known_key = known_key  # an answer under this key is already there: send nothing


class DocumentPipeline:
    """Read pages with a Qwen-VL model: one :class:`PageResult` per image, TIFF frame or PDF page.

    ``mode``: ``caption``, ``ocr``, ``markdown`` or ``caption+ocr`` (see
    :mod:`qwen_vl_core.documents.prompts`); with a ``qwen-vl-ocr`` model ``ocr`` uses its built-in
    task (``options["ocr_task"]`` picks another one). PDF pages are rendered at the model's pixel
    budget (``dpi`` caps it), or a scanned page's own JPEG is sent as it is. ``num_workers`` pages
    are in flight at once; ``cache_dir`` keys answers by page content and settings (``cache``:
    another object with ``get``/``put``, e.g. a :class:`~.cache.MemoryCache`);
    ``processes`` renders PDF pages in worker processes (PDFium renders one page at a time per
    process): "auto" when more than one core is usable and a PDF has many pages to render, a
    number to always use that many, 0 never. ``progress`` is called with each result.
    """

    def __init__(
        self,
        client: QwenVLClient,
        *,
        model: str = DEFAULT_MODEL,
        mode: str = "caption+ocr",
        prompt: str | None = None,
        options: Mapping[str, Any] | None = None,
        dpi: float | None = None,
        page_format: Literal["jpeg", "png"] = "jpeg",
        password: str | None = None,
        num_workers: int = 4,
        on_error: Literal["raise", "skip"] = "raise",
        cache_dir: str | None = None,
        cache: Any = None,
        keep_media: bool = False,
        recursive: bool = True,
        processes: int | Literal["auto"] = "auto",
        progress: Progress | None = None,
        name: str = "DocumentPipeline",
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        if num_workers < 1:
            raise ValueError(f"num_workers must be at least 1, got {num_workers}")
        self.client = client
        self.model = model
        self.mode = mode
        self.prompt = prompt
        self._prompt_text = prompt_for(mode, prompt)
        opts = {k: v for k, v in (options or {}).items() if v is not None}
        unknown = sorted(set(opts) - set(OPTION_NAMES))
        if unknown:
            raise ValueError(f"unknown page option(s) {', '.join(unknown)}; accepted: {', '.join(OPTION_NAMES)}")
        # qwen-vl-ocr models have built-in recognition tasks (native API): use one for "ocr".
        self._native_ocr = get_capabilities(model).ocr_tasks and (
            "ocr_task" in opts or (mode == "ocr" and not prompt)
        )
        if self._native_ocr:
            opts.setdefault("ocr_task", "text_recognition")
        self.options = opts
        _, _, budget = image_pixel_bounds(
            model,
            high_resolution=bool(opts.get("high_resolution")),
            min_pixels=opts.get("min_pixels"),
            max_pixels=opts.get("max_pixels"),
        )
        self.render = RenderSettings(budget_pixels=budget, dpi=dpi, page_format=page_format, password=password)
        self.num_workers = num_workers
        self.on_error = on_error
        self.cache = ResultCache(cache_dir) if cache_dir else cache
        self.keep_media = keep_media
        self.recursive = recursive
        self.processes = processes
        self.progress = progress
        self.name = name  # names the caller in log lines

    # ---------------------------------------------------------------- one page

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

    def _check_path(self, ref: PageRef) -> None:
        if ref.check_path and ref.task.path is not None:
            from pathlib import Path

            self.client.media_options.policy.check(Path(ref.task.path), label=f"image {ref.task.path!r}")

    def _page(self, ref: PageRef | FileFailure, processes: RenderProcesses | None) -> PageResult:
        started = time.perf_counter()
        if isinstance(ref, FileFailure):
            return self._failed(ref, ref.error, started)
        try:
            self._check_path(ref)
            prepared = ref.load(processes)
            key = self.key_for(prepared.sha256)
            if ref.known_key == key:  # the caller has this answer already
                return self._record(ref, prepared, started, cache_key=key, cached=True)
            hit = self._cached(ref, prepared, key, started)
            if hit is not None:
                return hit
            media = self._wire_media(prepared, ref.source)
            result = self.client.chat(self._messages(media), model=self.model, **self.options)
            return self._store(ref, prepared, key, self._answer(result), result, media, started)
        except Exception as exc:
            return self._failed(ref, exc, started)

    async def _apage(
        self, ref: PageRef | FileFailure, processes: RenderProcesses | None, limit: asyncio.Semaphore
    ) -> PageResult:
        """One page on the loop; ``limit`` is held from loading to the answer, so at most that
        many pages are in memory and in flight (loading and encoding run in a thread)."""
        started = time.perf_counter()
        if isinstance(ref, FileFailure):
            return self._failed(ref, ref.error, started)
        try:
            async with limit:
                self._check_path(ref)
                prepared = await asyncio.to_thread(ref.load, processes)
                key = self.key_for(prepared.sha256)
                if ref.known_key == key:  # the caller has this answer already
                    return self._record(ref, prepared, started, cache_key=key, cached=True)
                hit = await asyncio.to_thread(self._cached, ref, prepared, key, started)
                if hit is not None:
                    return hit
                media = await asyncio.to_thread(self._wire_media, prepared, ref.source)
                result = await self.client.achat(self._messages(media), model=self.model, **self.options)
                text = self._answer(result)
                return await asyncio.to_thread(self._store, ref, prepared, key, text, result, media, started)
        except Exception as exc:
            return self._failed(ref, exc, started)

    # ---------------------------------------------------------------- whole runs

    def _processes(self) -> RenderProcesses | None:
        wanted = self.processes
        if wanted == "auto":
            cores = usable_cores()
            return RenderProcesses(min(cores, self.num_workers)) if cores > 1 and self.num_workers > 1 else None
        return RenderProcesses(int(wanted)) if int(wanted) > 0 else None

    def _refs(self, inputs: Any, fs: Any, opened: list) -> Iterator[PageRef | FileFailure]:
        files = expand_inputs(inputs, recursive=self.recursive, fs=fs)
        return iter_pages(files, self.render, fs=fs, policy=self.client.media_options.policy, opened=opened)

    def _use_processes(self, ref: PageRef | FileFailure, processes: RenderProcesses | None) -> RenderProcesses | None:
        if processes is None or isinstance(ref, FileFailure) or ref.kind != "pdf":
            return None
        if self.processes == "auto" and (ref.total < AUTO_PROCESS_MIN_PAGES or ref.document.scanned):  # type: ignore[union-attr]
            return None
        return processes

    def _report(self, result: PageResult) -> PageResult:
        if not result.ok and (self.on_error == "skip" or result.fatal):
            failure = result.failure()
            logger.warning("%s: %s failed: %s", self.name, failure.where(), failure.message)
        if self.progress is not None:
            self.progress(result)
        return result

    def results(self, inputs: Any, *, fs: Any = None) -> Iterator[PageResult]:
        """Every page of ``inputs`` (paths, directories, bytes, or a list of them), in file and
        page order, successes and failures alike; stops early only after a fatal error."""
        opened: list = []
        processes = self._processes()
        try:
            work = lambda ref: self._page(ref, self._use_processes(ref, processes))  # noqa: E731
            for result in _ordered(self._refs(inputs, fs, opened), work, self.num_workers):
                yield self._report(result)
        finally:
            for document in opened:
                document.close()
            if processes is not None:
                processes.close()

    async def aresults(
        self, inputs: Any, *, fs: Any = None, limit: asyncio.Semaphore | None = None
    ) -> AsyncIterator[PageResult]:
        """Async :meth:`results`: requests on the running loop (``num_workers`` in flight, or
        ``limit`` shared with other runs), loading and rendering in threads or processes."""
        from .engine import arun_ordered

        limit = limit or asyncio.Semaphore(self.num_workers)
        opened: list = []
        processes = self._processes()

        async def work(ref: PageRef | FileFailure) -> PageResult:
            return await self._apage(ref, self._use_processes(ref, processes), limit)

        try:
            async for result in arun_ordered(self._refs(inputs, fs, opened), work, self.num_workers):
                yield self._report(result)
        finally:
            for document in opened:
                document.close()
            if processes is not None:
                await asyncio.to_thread(processes.close)

    # ---------------------------------------------------------------- single images (captioner)

    def _image_refs(self, items: Iterable[ImageItem]) -> Iterator[PageRef]:
        for index, item in enumerate(items):
            image = item.image
            if isinstance(image, str) and image.startswith(("http://", "https://", "oss://")):
                task = PageTask(kind="url", label=item.label, url=image)
            elif isinstance(image, str):
                task = PageTask(kind="image", label=item.label, path=image)
            else:
                task = PageTask(kind="image", label=item.label, data=bytes(image))
            yield PageRef(
                item.label, item.label, 1, 1, task, index, job=item.job, check_path=task.path is not None,
                known_key=item.known_key,
            )  # fmt: skip

    def image_results(self, items: Iterable[ImageItem]) -> Iterator[PageResult]:
        """One result per image, in order (each image is one page, whatever its format)."""
        for result in _ordered(self._image_refs(items), lambda ref: _tag(self._page(ref, None), ref), self.num_workers):
            yield self._report(result)

    async def aimage_results(
        self, items: Iterable[ImageItem], *, limit: asyncio.Semaphore | None = None
    ) -> AsyncIterator[PageResult]:
        from .engine import arun_ordered

        limit = limit or asyncio.Semaphore(self.num_workers)

        async def work(ref: PageRef) -> PageResult:
            return _tag(await self._apage(ref, None, limit), ref)

        async for result in arun_ordered(self._image_refs(items), work, self.num_workers):
            yield self._report(result)

    # ---------------------------------------------------------------- error policy

    def check(self, documents: Sequence[Any], failures: Sequence[PageFailure], *, fatal: BaseException | None,
              total: int | None = None) -> None:  # fmt: skip
        """Raise :class:`DocumentReadError` as the error policy says, carrying ``documents``."""
        if fatal is not None:
            raise DocumentReadError(list(failures), list(documents), fatal=fatal) from fatal
        if failures and self.on_error == "raise":
            raise DocumentReadError(list(failures), list(documents), total=total) from failures[0].error

    def read(self, inputs: Any, convert: Callable[[PageResult], Sequence[T]], *, fs: Any = None,
             failures: list[PageFailure] | None = None) -> Iterator[T]:  # fmt: skip
        """``convert(result)`` of every successful page, as they are read; at the end the error
        policy applies (failures are appended to ``failures`` as they happen)."""
        failures = failures if failures is not None else []
        documents: list[T] = []
        fatal: BaseException | None = None
        pages = 0
        for result in self.results(inputs, fs=fs):
            pages += 1
            if result.ok:
                converted = convert(result)
                documents.extend(converted)
                yield from converted
            else:
                failures.append(result.failure())
                fatal = result.error if result.fatal else fatal
        self.check(documents, failures, fatal=fatal, total=pages)

    async def aread(self, inputs: Any, convert: Callable[[PageResult], Sequence[T]], *, fs: Any = None,
                    failures: list[PageFailure] | None = None,
                    limit: asyncio.Semaphore | None = None) -> AsyncIterator[T]:  # fmt: skip
        failures = failures if failures is not None else []
        documents: list[T] = []
        fatal: BaseException | None = None
        pages = 0
        async for result in self.aresults(inputs, fs=fs, limit=limit):
            pages += 1
            if result.ok:
                converted = convert(result)
                documents.extend(converted)
                for item in converted:
                    yield item
            else:
                failures.append(result.failure())
                fatal = result.error if result.fatal else fatal
        self.check(documents, failures, fatal=fatal, total=pages)


def _ordered(refs: Iterable[Any], work: Callable[[Any], PageResult], workers: int) -> Iterator[PageResult]:
    from .engine import run_ordered

    return run_ordered(refs, work, workers)


def _tag(result: PageResult, ref: PageRef) -> PageResult:
    result.job = ref.job
    return result
