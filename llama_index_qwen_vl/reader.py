"""``QwenVLReader``: images and scanned PDFs to LlamaIndex Documents with a Qwen-VL model."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import aclosing, closing
from typing import Any, Literal

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.readers.base import BasePydanticReader
from llama_index.core.schema import Document, ImageDocument


from ._pages import SUPPORTED_SUFFIXES, FileError, PageRef, _Source, expand_inputs, iter_pages
from ._prompts import Mode
from ._settings import ImageJobSettings
from ._work import Done, ImageWorker, Outcome, run_async, run_ordered
from .errors import PageFailure, QwenVLReaderError

__all__ = ["QwenVLReader", "EXCLUDED_EMBED_KEYS", "EXCLUDED_LLM_KEYS"]

logger = logging.getLogger("llama_index_qwen_vl")

#: Metadata that describes the processing, not the content: kept out of embeddings and LLM prompts.
EXCLUDED_EMBED_KEYS = (
    "file_path", "page_label", "total_pages", "width", "height", "mode", "model", "request_id",
    "input_tokens", "output_tokens", "total_tokens", "image_tokens", "text_input_tokens",
    "reasoning_tokens", "cached_tokens", "image_sha256",
)  # fmt: skip
#: The LLM still sees ``file_name`` and ``page_label`` (for citations).
EXCLUDED_LLM_KEYS = tuple(k for k in EXCLUDED_EMBED_KEYS if k != "page_label")



class QwenVLReader(ImageJobSettings, BasePydanticReader):
    """Read images and scanned PDFs with a Qwen-VL model: one Document per image or page.

    Modes: ``"caption"`` (a description for search), ``"ocr"`` (the text verbatim), ``"markdown"``
    (the page as Markdown: headings, lists, tables, formulas) and ``"caption+ocr"`` (both, under
    ``## Description`` and ``## Text``). PDFs are rendered with pypdfium2 at ``dpi``; multi-page
    TIFFs give one Document per frame.

    Pages are loaded, sent and released one at a time per worker (``num_workers`` in flight).
    With ``on_error="raise"`` failed pages do not stop the others: afterwards one
    :class:`QwenVLReaderError` carries the Documents that succeeded and the failures; with
    ``"skip"`` failures are logged and kept in :attr:`failures`. ``cache_dir`` stores each answer
    under the hash of the page image and the request settings, so a re-run only pays for new pages.

    Example:
        .. code-block:: python

            from llama_index.core import SimpleDirectoryReader
            from llama_index_qwen_vl import QwenVLReader

            reader = QwenVLReader(mode="markdown", cache_dir=".qwen-cache")
            docs = reader.load_data("scans/contract.pdf")
            docs = SimpleDirectoryReader("scans", file_extractor={".pdf": reader, ".png": reader}).load_data()
    """

    mode: Mode = Field(default="caption+ocr", description="caption, ocr, markdown or caption+ocr.")
    dpi: float = Field(default=150, ge=18, le=1200, description="Resolution at which PDF pages are rendered.")
    page_format: Literal["jpeg", "png"] = Field(
        default="jpeg", description="Encoding of rendered PDF pages and TIFF frames: jpeg (q92, 4:4:4) or png."
    )
    show_progress: bool = Field(default=False, description="Show a tqdm progress bar.")
    image_documents: bool = Field(
        default=False, description="Also return an ImageDocument per page (for MultiModalVectorStoreIndex)."
    )
    recursive: bool = Field(default=True, description="Descend into subdirectories of a directory input.")
    password: str | None = Field(default=None, exclude=True, repr=False, description="Password of encrypted PDFs.")

    _active_loads: int = PrivateAttr(default=0)

    @classmethod
    def class_name(cls) -> str:
        return "QwenVLReader"

    @property
    def failures(self) -> list[PageFailure]:
        """Pages that failed in the last load, or in all loads that ran at the same time
        (also set when ``on_error="raise"`` raised)."""
        return list(self._failures)

    def _begin(self) -> None:
        if self._active_loads == 0:
            self._failures = []
        self._active_loads += 1

    def _end(self, failures: list[PageFailure]) -> None:
        self._failures.extend(failures)
        self._active_loads -= 1

    # ---------------------------------------------------------------- building blocks

    def _worker(self) -> ImageWorker:
        return super()._worker(keep_media=self.image_documents)

    def _pages(self, files: list[str], fs: Any, opened: list[_Source], worker: ImageWorker) -> Iterator[PageRef]:
        """Pages of ``files`` one at a time, rendered lazily at ``dpi`` under the client's file policy."""
        return iter_pages(
            files,
            dpi=self.dpi,
            fs=fs,
            password=self.password,
            page_format=self.page_format,
            opened=opened,
            policy=worker.client.media_options.policy,
        )

    def _files(self, file: Any, file_path: Any, fs: Any) -> list[str]:
        target = file if file is not None else file_path
        if target is None:
            raise ValueError("give a file, a list of files or a directory to read")
        return expand_inputs(target, recursive=self.recursive, fs=fs)

    def _documents(self, page: PageRef, done: Done, extra_info: dict[str, Any] | None) -> list[Document]:
        metadata: dict[str, Any] = dict(extra_info or {})
        metadata.update(
            {
                "file_path": page.path,
                "file_name": page.name,
                "page_label": str(page.number),
                "total_pages": page.total,
                "width": done.width,
                "height": done.height,
                "mode": self.mode,
                "model": done.model,
                "request_id": done.request_id,
                "image_sha256": done.sha256,
            }
        )
        for name in ("input_tokens", "output_tokens", "total_tokens", "image_tokens"):
            if name in done.usage:
                metadata[name] = done.usage[name]
        doc_id = f"{page.path}#page={page.number}"
        docs: list[Document] = [
            Document(
                id_=doc_id,
                text=done.text,
                metadata=metadata,
                excluded_embed_metadata_keys=list(EXCLUDED_EMBED_KEYS),
                excluded_llm_metadata_keys=list(EXCLUDED_LLM_KEYS),
            )
        ]
        if self.image_documents:
            docs.append(self._image_document(f"{doc_id}#image", page, done, metadata))
        return docs

    @staticmethod
    def _image_document(doc_id: str, page: PageRef, done: Done, metadata: dict[str, Any]) -> ImageDocument:
        media = done.media
        kwargs: dict[str, Any] = {}
        if isinstance(media, str) and media.startswith("data:"):
            head, _, payload = media.partition(",")
            kwargs = {"image": payload.encode("ascii"), "image_mimetype": head[5:].split(";")[0]}
        elif isinstance(media, (bytes, bytearray)):
            kwargs = {"image": base64.b64encode(media)}
        elif isinstance(media, str):
            kwargs = {"image_url": media}
        return ImageDocument(
            id_=doc_id,
            text=done.text,
            metadata=dict(metadata),
            excluded_embed_metadata_keys=list(EXCLUDED_EMBED_KEYS),
            excluded_llm_metadata_keys=list(EXCLUDED_LLM_KEYS),
            **kwargs,
        )

    def _work_sync(self, worker: ImageWorker) -> Any:
        def work(job: PageRef | FileError) -> Outcome:
            if isinstance(job, FileError):
                return Outcome(job, error=job.error)
            try:
                return Outcome(job, done=worker.run(job.load))
            except Exception as exc:
                return Outcome(job, error=exc)

        return work

    def _work_async(self, worker: ImageWorker) -> Any:
        semaphore = self._semaphores.get(self.num_workers)

        async def work(job: PageRef | FileError) -> Outcome:
            if isinstance(job, FileError):
                return Outcome(job, error=job.error)
            try:
                return Outcome(job, done=await worker.arun(job.load, semaphore))
            except Exception as exc:
                return Outcome(job, error=exc)

        return work

    def _failure(self, outcome: Outcome) -> PageFailure:
        job = outcome.job
        assert outcome.error is not None
        if isinstance(job, FileError):
            failure = PageFailure(job.path, None, outcome.error)
        else:
            failure = PageFailure(job.path, job.number, outcome.error)
        if self.on_error == "skip" or outcome.fatal:
            logger.warning("QwenVLReader: %s failed: %s", failure.where(), failure.message)
        return failure

    def _progress(self) -> Any:
        if not self.show_progress:
            return None
        from tqdm.auto import tqdm

        return tqdm(desc="Reading pages", unit="page")

    @staticmethod
    def _close(opened: list[_Source]) -> None:
        for source in opened:
            source.close()

    # ---------------------------------------------------------------- sync API

    def lazy_load_data(
        self,
        file: Any = None,
        extra_info: dict[str, Any] | None = None,
        fs: Any = None,
        *,
        file_path: Any = None,
    ) -> Iterator[Document]:
        """Documents in file and page order, as they are read (``num_workers`` pages in flight)."""
        files = self._files(file, file_path, fs)
        worker = self._worker()
        opened: list[_Source] = []
        documents: list[Document] = []
        failures: list[PageFailure] = []
        fatal: BaseException | None = None
        bar = self._progress()
        self._begin()
        try:
            pages = self._pages(files, fs, opened, worker)
            with closing(run_ordered(pages, self._work_sync(worker), self.num_workers)) as outcomes:
                for outcome in outcomes:
                    if bar is not None:
                        bar.update(1)
                    if outcome.done is not None:
                        docs = self._documents(outcome.job, outcome.done, extra_info)
                        documents.extend(docs)
                        yield from docs
                    else:
                        failures.append(self._failure(outcome))
                        if outcome.fatal:
                            fatal = outcome.error
        finally:
            self._close(opened)
            self._end(failures)
            if bar is not None:
                bar.close()
        self._raise_if_needed(documents, failures, fatal)

    def load_data(
        self,
        file: Any = None,
        extra_info: dict[str, Any] | None = None,
        fs: Any = None,
        *,
        file_path: Any = None,
    ) -> list[Document]:
        """Read a file, a list of files or a directory (also the call SimpleDirectoryReader makes)."""
        return list(self.lazy_load_data(file, extra_info, fs, file_path=file_path))

    def _raise_if_needed(
        self, documents: list[Document], failures: list[PageFailure], fatal: BaseException | None
    ) -> None:
        if fatal is not None:
            raise QwenVLReaderError(failures, documents, fatal=fatal) from fatal
        if failures and self.on_error == "raise":
            total = len(failures) + sum(1 for d in documents if not isinstance(d, ImageDocument))
            raise QwenVLReaderError(failures, documents, total=total) from failures[0].error

    # ---------------------------------------------------------------- async API

    async def aload_data(
        self,
        file: Any = None,
        extra_info: dict[str, Any] | None = None,
        fs: Any = None,
        *,
        file_path: Any = None,
    ) -> list[Document]:
        """Natively async: ``num_workers`` requests in flight through ``client.achat``."""
        documents: list[Document] = []
        async for doc in self._aiter(file, extra_info, fs, file_path):
            documents.append(doc)
        return documents

    async def _aiter(self, file: Any, extra_info: Any, fs: Any, file_path: Any) -> AsyncIterator[Document]:
        files = self._files(file, file_path, fs)
        worker = self._worker()
        opened: list[_Source] = []
        done: dict[tuple[int, int], list[Document]] = {}
        failed: list[tuple[int, int, PageFailure]] = []
        fatal: BaseException | None = None
        bar = self._progress()
        self._begin()
        try:
            pages = self._pages(files, fs, opened, worker)
            async with aclosing(run_async(pages, self._work_async(worker), self.num_workers)) as outcomes:
                async for outcome in outcomes:
                    if bar is not None:
                        bar.update(1)
                    job = outcome.job
                    if outcome.done is not None:
                        done[(job.file_index, job.number)] = self._documents(job, outcome.done, extra_info)
                    else:
                        failed.append((job.file_index, getattr(job, "number", 0), self._failure(outcome)))
                        if outcome.fatal:
                            fatal = outcome.error
        finally:
            self._close(opened)
            failures = [f for _, _, f in sorted(failed, key=lambda t: (t[0], t[1]))]
            self._end(failures)
            if bar is not None:
                bar.close()
        documents = [doc for key in sorted(done) for doc in done[key]]
        self._raise_if_needed(documents, failures, fatal)
        for doc in documents:
            yield doc

    # ---------------------------------------------------------------- SimpleDirectoryReader

    def file_extractor(self, suffixes: Iterable[str] | None = None) -> dict[str, QwenVLReader]:
        """``{".pdf": self, ".png": self, ...}`` for ``SimpleDirectoryReader(file_extractor=...)``."""
        return {suffix: self for suffix in sorted(suffixes or SUPPORTED_SUFFIXES)}
