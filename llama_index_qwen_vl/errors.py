"""Errors of the reader and the captioner: the core's, under the names LlamaIndex users know.
Nothing that succeeded is lost when some pages fail (see ``QwenVLReaderError.documents``)."""

from __future__ import annotations

from qwen_vl_core.documents import DocumentReadError, EmptyAnswerError, IncompleteAnswerError, PageFailure

__all__ = ["PageFailure", "QwenVLReaderError", "IncompleteAnswerError", "EmptyAnswerError"]

#: Raised by :class:`QwenVLReader` and :class:`QwenVLImageCaptioner` when pages fail; the same
#: class as :class:`qwen_vl_core.documents.DocumentReadError`.
QwenVLReaderError = DocumentReadError
