"""``QwenVLReader``: images and scanned PDFs to LlamaIndex Documents with a Qwen-VL model."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any, Literal

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.readers.base import BasePydanticReader
from llama_index.core.schema import Document, ImageDocument

from qwen_vl_core.documents import SUPPORTED_SUFFIXES, Mode, PageFailure, PageResult, progress_bar

from ._pipeline_fields import PipelineFields

__all__ = ["QwenVLReader", "EXCLUDED_EMBED_KEYS", "EXCLUDED_LLM_KEYS"]

#: Metadata that describes the processing, not the content: kept out of embeddings and LLM prompts.
EXCLUDED_EMBED_KEYS = (
    "file_path", "page_label", "total_pages", "width", "height", "mode", "model", "request_id",
    "input_tokens", "output_tokens", "total_tokens", "image_tokens", "text_input_tokens",
    "reasoning_tokens", "cached_tokens", "image_sha256", "page_path",
)  # fmt: skip
#: The LLM still sees ``file_name`` and ``page_label`` (for citations).
EXCLUDED_LLM_KEYS = tuple(k for k in EXCLUDED_EMBED_KEYS if k != "page_label")



class QwenVLReader(PipelineFields, BasePydanticReader):
    """Read images and scanned PDFs with a Qwen-VL model: one Document per image or page.

    Modes: ``"caption"`` (a description for search), ``"ocr"`` (the text verbatim), ``"markdown"``
    (the page as Markdown: headings, lists, tables, formulas) and ``"caption+ocr"`` (both, under
    ``## Description`` and ``## Text``). A scanned PDF page's own JPEG is sent as it is; other
    PDF pages are rendered with pypdfium2 at the size the model looks at (``dpi`` caps it);
    multi-page TIFFs give one Document per frame. This is a thin layer over
    :class:`qwen_vl_core.documents.DocumentPipeline`.

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
    dpi: float | None = Field(
        default=None,
        ge=18,
        le=1200,
        description="Highest resolution for PDF pages (default: the model's pixel budget, at most 300 dpi).",
    )
    page_format: Literal["jpeg", "png"] = Field(
        default="jpeg", description="Encoding of rendered PDF pages and TIFF frames: jpeg (q92, 4:4:4) or png."
    )
    processes: int | Literal["auto"] = Field(
        default="auto",
        description="Worker processes rendering PDF pages (auto: when more than one core is usable; 0: none).",
    )
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

    def _begin(self) -> list[PageFailure]:
        if self._active_loads == 0:
            self._failures = []
        self._active_loads += 1
        return self._failures

    def _end(self) -> None:
        self._active_loads -= 1

    def _files(self, file: Any, file_path: Any) -> Any:
        target = file if file is not None else file_path
        if target is None:
            raise ValueError("give a file, a list of files or a directory to read")
        return target

    def _run(self, progress: Any) -> Any:
        return self._pipeline(
            dpi=self.dpi,
            page_format=self.page_format,
            password=self.password,
            keep_media=self.image_documents,
            recursive=self.recursive,
            processes=self.processes,
            progress=progress,
        )

    def _converter(self, extra_info: dict[str, Any] | None) -> Any:
        def convert(result: PageResult) -> list[Document]:
            metadata: dict[str, Any] = dict(extra_info or {})
            metadata.update(result.metadata())
            docs: list[Document] = [
                Document(
                    id_=result.doc_id,
                    text=result.text or "",
                    metadata=metadata,
                    excluded_embed_metadata_keys=list(EXCLUDED_EMBED_KEYS),
                    excluded_llm_metadata_keys=list(EXCLUDED_LLM_KEYS),
                )
            ]
            if self.image_documents:
                docs.append(_image_document(f"{result.doc_id}#image", result, metadata))
            return docs

        return convert

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
        target = self._files(file, file_path)
        failures = self._begin()
        try:
            with progress_bar(self.show_progress) as progress:
                yield from self._run(progress).read(target, self._converter(extra_info), fs=fs, failures=failures)
        finally:
            self._end()

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
        return [doc async for doc in self.alazy_load_data(file, extra_info, fs, file_path=file_path)]

    async def alazy_load_data(
        self,
        file: Any = None,
        extra_info: dict[str, Any] | None = None,
        fs: Any = None,
        *,
        file_path: Any = None,
    ) -> AsyncIterator[Document]:
        """Async :meth:`lazy_load_data`: Documents in file and page order as they are read."""
        target = self._files(file, file_path)
        failures = self._begin()
        try:
            with progress_bar(self.show_progress) as progress:
                pipeline = self._run(progress)
                convert = self._converter(extra_info)
                async for doc in pipeline.aread(target, convert, fs=fs, failures=failures, limit=self._limit()):
                    yield doc
        finally:
            self._end()

    # ---------------------------------------------------------------- SimpleDirectoryReader

    def file_extractor(self, suffixes: Iterable[str] | None = None) -> dict[str, QwenVLReader]:
        """``{".pdf": self, ".png": self, ...}`` for ``SimpleDirectoryReader(file_extractor=...)``."""
        return {suffix: self for suffix in sorted(suffixes or SUPPORTED_SUFFIXES)}


def _image_document(doc_id: str, result: PageResult, metadata: dict[str, Any]) -> ImageDocument:
    media = result.media
    kwargs: dict[str, Any] = {}
    url = getattr(media, "url", media)
    pending = getattr(media, "pending", None)
    if isinstance(url, str) and url.startswith("data:"):
        head, _, payload = url.partition(",")
        kwargs = {"image": payload.encode("ascii"), "image_mimetype": head[5:].split(";")[0]}
    elif pending is not None:
        kwargs = {"image": base64.b64encode(pending.data), "image_mimetype": pending.mime}
    elif isinstance(url, str):
        kwargs = {"image_url": url}
    return ImageDocument(
        id_=doc_id,
        text=result.text or "",
        metadata=dict(metadata),
        excluded_embed_metadata_keys=list(EXCLUDED_EMBED_KEYS),
        excluded_llm_metadata_keys=list(EXCLUDED_LLM_KEYS),
        **kwargs,
    )
