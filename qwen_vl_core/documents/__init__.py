"""The document pipeline: images, multi-page TIFFs and scanned PDFs to text, markdown or
captions with a Qwen-VL model, page by page, concurrently, cached, with nothing lost.

.. code-block:: python

    from qwen_vl_core import QwenVLClient
    from qwen_vl_core.documents import DocumentPipeline

    pipeline = DocumentPipeline(QwenVLClient(), mode="markdown", cache_dir=".qwen_vl_cache")
    for page in pipeline.results(["scans/contract.pdf", "scans/photo.jpg"]):
        print(page.source, page.page, page.text if page.ok else page.error)

PDF pages need the ``pdf`` extra (pypdfium2).
"""

from .cache import CachedResult, MemoryCache, ResultCache, cache_key
from .pipeline import OPTION_NAMES, DocumentPipeline, ImageItem
from .progress import progress_bar
from .prompts import MODES, PROMPTS, Mode, clean_output, prompt_for
from .records import (
    FATAL_ERRORS,
    DocumentReadError,
    EmptyAnswerError,
    IncompleteAnswerError,
    PageFailure,
    PageResult,
)
from .sources import IMAGE_SUFFIXES, PDF_SUFFIXES, SUPPORTED_SUFFIXES, expand_inputs

__all__ = [
    "DocumentPipeline",
    "ImageItem",
    "PageResult",
    "PageFailure",
    "DocumentReadError",
    "IncompleteAnswerError",
    "EmptyAnswerError",
    "FATAL_ERRORS",
    "Mode",
    "MODES",
    "PROMPTS",
    "OPTION_NAMES",
    "prompt_for",
    "progress_bar",
    "clean_output",
    "ResultCache",
    "MemoryCache",
    "CachedResult",
    "cache_key",
    "expand_inputs",
    "IMAGE_SUFFIXES",
    "PDF_SUFFIXES",
    "SUPPORTED_SUFFIXES",
]
