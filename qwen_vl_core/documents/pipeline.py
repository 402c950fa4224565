"""``DocumentPipeline``: images, TIFFs and scanned PDFs to text, page by page, concurrently,
cached, with nothing lost. Framework-free; the LangChain loader, the LlamaIndex reader and
captioner and the ``qwen-vl read`` command are thin layers over it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, TypeVar

from ..client import QwenVLClient
from ..models import DEFAULT_MODEL, get_capabilities
from ..planning import plan_request
from ..tokens import image_pixel_bounds
from .cache import ResultCache
from .page_job import PageJob
from .prepare import PageTask, RenderProcesses, usable_cores
from .prompts import prompt_for
from .records import DocumentReadError, PageFailure, PageResult
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

MIN_DPI, MAX_DPI = 18, 1200
MAX_WORKERS = 256


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
        if not 1 <= num_workers <= MAX_WORKERS:
            raise ValueError(f"num_workers must be 1 to {MAX_WORKERS}, got {num_workers}")
        if dpi is not None and not MIN_DPI <= dpi <= MAX_DPI:
            raise ValueError(f"dpi must be {MIN_DPI} to {MAX_DPI} (or None: the model's pixel budget), got {dpi}")
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
        plan_request(get_capabilities(model), opts, stream=False)  # a bad option fails here, not per page
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
        self.job = PageJob(
            client, model=model, mode=mode, prompt_text=self._prompt_text, native_ocr=self._native_ocr,
            options=opts, cache=self.cache, keep_media=keep_media,
        )  # fmt: skip
        self.recursive = recursive
        self.processes = processes
        self.progress = progress
        self.name = name  # names the caller in log lines

    def key_for(self, sha256: str) -> str:
        """The cache key of a page with this content under this pipeline's settings."""
        return self.job.key_for(sha256)

    # ---------------------------------------------------------------- whole runs

    def _processes(self) -> RenderProcesses | None:
        wanted = self.processes
        if wanted == "auto":
            cores = usable_cores()
            wanted = min(cores, self.num_workers) if cores > 1 and self.num_workers > 1 else 0
        return RenderProcesses.shared(int(wanted)) if int(wanted) > 0 else None

    def _refs(self, inputs: Any, fs: Any, opened: list) -> Iterator[PageRef | FileFailure]:
        files = expand_inputs(inputs, recursive=self.recursive, fs=fs)
        return iter_pages(files, self.render, fs=fs, policy=self.client.media_options.policy, opened=opened)

    def _use_processes(self, ref: PageRef | FileFailure, processes: RenderProcesses | None) -> RenderProcesses | None:
        if processes is None or isinstance(ref, FileFailure) or ref.kind != "pdf":
            return None
        if self.processes == "auto" and (ref.total < AUTO_PROCESS_MIN_PAGES or ref.document.scanned):  # type: ignore[union-attr]
            return None
        return processes

    def _report(self, result: PageResult, progress: Progress | None = None) -> PageResult:
        if not result.ok and (self.on_error == "skip" or result.fatal):
            failure = result.failure()
            logger.warning("%s: %s failed: %s", self.name, failure.where(), failure.message)
        progress = progress or self.progress
        if progress is not None:
            progress(result)
        return result

    def results(self, inputs: Any, *, fs: Any = None, progress: Progress | None = None) -> Iterator[PageResult]:
        """Every page of ``inputs`` (paths, directories, bytes, or a list of them), in file and
        page order, successes and failures alike; stops early only after a fatal error.
        ``progress`` (default: the pipeline's) is called with each result."""
        opened: list = []
        processes = self._processes()
        try:
            work = lambda ref: self.job.run(ref, self._use_processes(ref, processes))  # noqa: E731
            for result in _ordered(self._refs(inputs, fs, opened), work, self.num_workers):
                yield self._report(result, progress)
        finally:
            for document in opened:
                document.close()

    async def aresults(
        self,
        inputs: Any,
        *,
        fs: Any = None,
        limit: asyncio.Semaphore | None = None,
        progress: Progress | None = None,
    ) -> AsyncIterator[PageResult]:
        """Async :meth:`results`: requests on the running loop (``num_workers`` in flight, or
        ``limit`` shared with other runs), loading and rendering in threads or processes."""
        from .engine import arun_ordered

        limit = limit or asyncio.Semaphore(self.num_workers)
        opened: list = []
        processes = self._processes()

        async def work(ref: PageRef | FileFailure) -> PageResult:
            return await self.job.arun(ref, self._use_processes(ref, processes), limit)

        try:
            async for result in arun_ordered(self._refs(inputs, fs, opened), work, self.num_workers):
                yield self._report(result, progress)
        finally:
            for document in opened:
                document.close()

    # ---------------------------------------------------------------- single images (captioner)

    def _image_refs(self, items: Iterable[ImageItem]) -> Iterator[PageRef]:
        for index, item in enumerate(items):
            image = item.image
            if isinstance(image, str) and image.startswith(("http://", "https://", "oss://")):
                task = PageTask(kind="url", label=item.label, url=image)
            elif isinstance(image, str):
                task = PageTask(kind="image", label=item.label, path=image, policy=self.client.media_options.policy)
            else:
                task = PageTask(kind="image", label=item.label, data=bytes(image))
            yield PageRef(item.label, item.label, 1, 1, task, index, job=item.job, known_key=item.known_key)

    def image_results(self, items: Iterable[ImageItem]) -> Iterator[PageResult]:
        """One result per image, in order (each image is one page, whatever its format)."""
        for result in _ordered(self._image_refs(items), lambda ref: _tag(self.job.run(ref, None), ref), self.num_workers):
            yield self._report(result)

    async def aimage_results(
        self, items: Iterable[ImageItem], *, limit: asyncio.Semaphore | None = None
    ) -> AsyncIterator[PageResult]:
        from .engine import arun_ordered

        limit = limit or asyncio.Semaphore(self.num_workers)

        async def work(ref: PageRef) -> PageResult:
            return _tag(await self.job.arun(ref, None, limit), ref)

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
             failures: list[PageFailure] | None = None, progress: Progress | None = None) -> Iterator[T]:  # fmt: skip
        """``convert(result)`` of every successful page, as they are read; at the end the error
        policy applies (failures are appended to ``failures`` as they happen)."""
        failures = failures if failures is not None else []
        documents: list[T] = []
        fatal: BaseException | None = None
        pages = 0
        for result in self.results(inputs, fs=fs, progress=progress):
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
                    failures: list[PageFailure] | None = None, limit: asyncio.Semaphore | None = None,
                    progress: Progress | None = None) -> AsyncIterator[T]:  # fmt: skip
        failures = failures if failures is not None else []
        documents: list[T] = []
        fatal: BaseException | None = None
        pages = 0
        async for result in self.aresults(inputs, fs=fs, limit=limit, progress=progress):
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
