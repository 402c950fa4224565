"""LlamaIndex integration for Qwen-VL on DashScope: an LLM, a reader for images and scanned PDFs,
and an image-captioning transformation."""

from .base import QwenVL
from .captioner import QwenVLImageCaptioner
from .errors import EmptyAnswerError, IncompleteAnswerError, PageFailure, QwenVLReaderError
from .page_rows import documents_from_rows
from .reader import QwenVLReader

__all__ = [
    "QwenVL",
    "QwenVLReader",
    "documents_from_rows",
    "QwenVLImageCaptioner",
    "QwenVLReaderError",
    "PageFailure",
    "IncompleteAnswerError",
    "EmptyAnswerError",
]
