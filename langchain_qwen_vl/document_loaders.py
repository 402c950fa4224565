"""``QwenVLDocumentLoader``: images and scanned PDFs to LangChain Documents with a Qwen-VL model.

A thin layer over :class:`qwen_vl_core.documents.DocumentPipeline` (the same engine as the
LlamaIndex ``QwenVLReader`` and ``qwen-vl read``): the core renders, sends, caches and applies
the error policy; this module only turns page records into ``Document`` objects.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Literal

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document
from pydantic import SecretStr

from qwen_vl_core import DEFAULT_MODEL, QwenVLClient
from qwen_vl_core.documents import (
    DocumentPipeline,
    PageFailure,
    PageResult,
    progress_bar,
)
from qwen_vl_core.transport import DEFAULT_TIMEOUT

__all__ = ["QwenVLDocumentLoader"]

FilePath = str | os.PathLike | bytes | Sequence[str | os.PathLike | bytes]

_CONNECTION = ("region", "base_url", "workspace", "timeout", "max_retries", "allowed_dirs")


class QwenVLDocumentLoader(BaseLoader):
    """Read images and scanned PDFs with a Qwen-VL model: one ``Document`` per image or page.

    Setup: ``pip install "qwen-vl-integrations[langchain,pdf]"`` and set ``DASHSCOPE_API_KEY``
    (or pass ``api_key``; ``region`` / ``base_url`` as for :class:`~langchain_qwen_vl.ChatQwenVL`).

    ``file_path``: a file (PDF, multi-page TIFF, PNG/JPEG/WebP/... image), a directory (its
    supported files, sorted; subdirectories too unless ``recursive=False``), the ``bytes`` of one
    file, or a list of any of these. ``mode``: ``"markdown"`` (the page as Markdown: headings,
    lists, tables, formulas), ``"ocr"`` (the text verbatim; ``qwen-vl-ocr`` models use their
    built-in task), ``"caption"`` (a description for search) or ``"caption+ocr"`` (both);
    ``prompt`` replaces the mode's instruction. A scanned PDF page's own JPEG is sent as it is;
    other pages are rendered at the size the model looks at (``dpi`` caps it).

    ``num_workers`` pages are in flight at once (``alazy_load``: on the event loop); Documents
    come in file and page order. ``cache_dir`` stores each answer under the hash of the page image
    and the request settings, so a re-run pays only for new pages (the LlamaIndex reader with the
    same model, mode and options shares the cache). Failed pages never stop the others: with
    ``on_error="raise"`` a :class:`~qwen_vl_core.documents.DocumentReadError` is raised after the
    last page, carrying every ``Document`` read (``.documents``) and each failure
    (``.failures``); with ``"skip"`` failures are logged and kept in :attr:`failures`. An error
    that would fail every page (bad key, unknown model) stops at once.

    Also: the connection (``api_key``, ``region``, ``base_url``, ``workspace``, ``timeout``,
    ``max_retries``, ``allowed_dirs``, or a ready ``client``); request options sent only when set
    (``enable_thinking``, ``thinking_budget``, ``high_resolution``, ``min_pixels``, ``max_pixels``,
    ``max_tokens``, ``temperature``, ``ocr_task``); ``page_format`` of rendered pages, ``password``
    of encrypted PDFs, ``processes`` rendering PDF pages, ``fs`` (an fsspec filesystem for the
    paths), ``show_progress`` (a tqdm bar). Bad settings raise before anything is sent.

    Document ``id``: ``"<source>#page=<n>"``. Metadata (keys with no value are left out):

    - ``source``: the file as given (``"<bytes>"`` for bytes); ``file_path``: the same;
      ``file_name``: its name;
    - ``page``: 0-based page index, as LangChain's PDF loaders have it; ``page_label``: the
      1-based page number as a string; ``total_pages``;
    - ``width``, ``height``: the image sent, in pixels; ``page_path``: how it reached the model
      (``embedded`` JPEG, ``rendered``, TIFF ``frame``, image ``file``); ``image_sha256``;
    - ``mode``, ``model``, ``request_id``, and the token counts ``input_tokens``,
      ``output_tokens``, ``total_tokens``, ``image_tokens`` when the server reported them.

    Example:
        .. code-block:: python

            from langchain_qwen_vl import QwenVLDocumentLoader

            loader = QwenVLDocumentLoader("scans/contract.pdf", mode="markdown", cache_dir=".qwen_vl_cache")
            for doc in loader.lazy_load():
                print(doc.metadata["page_label"], doc.page_content[:80])

    The key is never printed, logged or pickled: a pickled loader finds its key again as a new
    one would (``DASHSCOPE_API_KEY``, ``./.env``, ``~/.alibabacloud/credentials``).
    """

    def __init__(
        self,
        file_path: FilePath,
        *,
        mode: Literal["caption", "ocr", "markdown", "caption+ocr"] = "markdown",
        model: str = DEFAULT_MODEL,
        prompt: str | None = None,
        api_key: str | SecretStr | None = None,
        region: str | None = None,
        base_url: str | None = None,
        workspace: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        allowed_dirs: list[str] | None = None,
        num_workers: int = 4,
        on_error: Literal["raise", "skip"] = "raise",
        cache_dir: str | os.PathLike | None = None,
        dpi: float | None = None,
        page_format: Literal["jpeg", "png"] = "jpeg",
        password: str | None = None,
        recursive: bool = True,
        processes: int | Literal["auto"] = "auto",
        show_progress: bool = False,
        enable_thinking: bool | None = None,
        thinking_budget: int | None = None,
        high_resolution: bool | None = None,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        ocr_task: str | None = None,
        fs: Any = None,
        client: QwenVLClient | None = None,
    ) -> None:
        self.file_path = file_path
        self.mode, self.model, self.prompt = mode, model, prompt
        self.region, self.base_url, self.workspace = region, base_url, workspace
        self.timeout, self.max_retries, self.allowed_dirs = timeout, max_retries, allowed_dirs
        self.num_workers, self.on_error = num_workers, on_error
        self.cache_dir = os.fspath(cache_dir) if cache_dir is not None else None
        self.dpi, self.page_format, self.recursive, self.processes = dpi, page_format, recursive, processes
        self.show_progress, self.fs = show_progress, fs
        self.options = {  # sent with every page when set (None: not sent, the model's default)
            "enable_thinking": enable_thinking, "thinking_budget": thinking_budget,
            "high_resolution": high_resolution, "min_pixels": min_pixels, "max_pixels": max_pixels,
            "max_tokens": max_tokens, "temperature": temperature, "ocr_task": ocr_task,
        }  # fmt: skip
        self._api_key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        self._password = SecretStr(password) if password is not None else None
        # An injected client is used as it is; otherwise one is built now, so a missing key fails here.
        self._client = client if client is not None else self._build_client()
        self._failures: list[PageFailure] = []
        self._pipeline()  # check mode, dpi, options and policy before anything is read

    # ---------------------------------------------------------------- client and pipeline

    def _build_client(self) -> QwenVLClient:
        settings = {name: getattr(self, name) for name in _CONNECTION}
        return QwenVLClient(api_key=self._api_key, **settings)

    @property
    def client(self) -> QwenVLClient:
        """The :class:`~qwen_vl_core.QwenVLClient` pages are sent through."""
        if self._client is None:  # after unpickling
            self._client = self._build_client()
        return self._client

    @property
    def failures(self) -> list[PageFailure]:
        """Pages that failed in the last load (also set when ``on_error="raise"`` raised)."""
        return list(self._failures)

    def _pipeline(self) -> DocumentPipeline:
        return DocumentPipeline(
            self.client,
            model=self.model,
            mode=self.mode,
            prompt=self.prompt,
            options=self.options,
            dpi=self.dpi,
            page_format=self.page_format,
            password=self._password.get_secret_value() if self._password is not None else None,
            num_workers=self.num_workers,
            on_error=self.on_error,
            cache_dir=self.cache_dir,
            recursive=self.recursive,
            processes=self.processes,
            name=type(self).__name__,
        )

    def _begin(self) -> list[PageFailure]:
        self._failures = []
        return self._failures

    # ---------------------------------------------------------------- loading

    def lazy_load(self) -> Iterator[Document]:
        """Documents in file and page order, as they are read (``num_workers`` pages in flight)."""
        failures = self._begin()
        with progress_bar(self.show_progress) as progress:
            pages = self._pipeline().read(self.file_path, _documents, fs=self.fs, failures=failures, progress=progress)
            yield from pages

    async def alazy_load(self) -> AsyncIterator[Document]:
        """Natively async :meth:`lazy_load`: ``num_workers`` requests in flight on the running loop."""
        failures = self._begin()
        with progress_bar(self.show_progress) as progress:
            pages = self._pipeline().aread(
                self.file_path, _documents, fs=self.fs, failures=failures, progress=progress
            )
            async for document in pages:
                yield document

    # ---------------------------------------------------------------- repr and pickling

    def __repr__(self) -> str:
        target = self.file_path
        shown = f"<{len(target)} bytes>" if isinstance(target, (bytes, bytearray)) else repr(target)
        where = self.base_url or self.region
        return f"{type(self).__name__}({shown}, mode={self.mode!r}, model={self.model!r}, endpoint={where!r})"

    def __getstate__(self) -> dict[str, Any]:
        """Everything but the key and the client (its connection pools, and the key again)."""
        state = dict(self.__dict__)
        state.update(_api_key=None, _client=None, _failures=[])
        return state


def _documents(result: PageResult) -> list[Document]:
    """One page record -> one LangChain Document (``page`` 0-based, ``page_label`` 1-based)."""
    metadata: dict[str, Any] = {"source": result.source, "page": (result.page or 1) - 1}
    metadata.update(result.metadata(include_none=False))
    return [Document(page_content=result.text or "", metadata=metadata, id=result.doc_id)]
