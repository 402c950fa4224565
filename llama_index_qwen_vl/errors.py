"""Errors of the reader and the captioner: nothing that succeeded is lost when some pages fail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qwen_vl_core import QwenVLError

__all__ = ["PageFailure", "QwenVLReaderError", "IncompleteAnswerError"]


@dataclass(frozen=True)
class PageFailure:
    """One page (or whole file, ``page=None``) that produced no Document, and why.

    For the captioner ``file`` is the node's file path, image path or URL, else its node id.
    """

    file: str
    page: int | None
    error: BaseException

    @property
    def message(self) -> str:
        return f"{type(self.error).__name__}: {self.error}"

    def where(self) -> str:
        return self.file if self.page is None else f"{self.file} page {self.page}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "page": self.page,
            "error": type(self.error).__name__,
            "message": str(self.error),
            "status": getattr(self.error, "status", None),
            "code": getattr(self.error, "code", None),
            "request_id": getattr(self.error, "request_id", None),
        }


class QwenVLReaderError(QwenVLError):
    """Some pages failed. ``documents`` holds every Document (or, from the captioner, every node)
    that succeeded; ``failures`` lists the pages that did not, with their errors.

    Raised after all other pages were processed (``on_error="raise"``), or at once when an error
    would fail every page (bad key, unknown model), with ``fatal`` set to that error.
    """

    def __init__(
        self,
        failures: list[PageFailure],
        documents: list[Any],
        *,
        total: int | None = None,
        fatal: BaseException | None = None,
    ) -> None:
        self.failures = list(failures)
        self.documents = list(documents)
        self.fatal = fatal
        first = self.failures[0] if self.failures else None
        status = getattr(fatal or (first.error if first else None), "status", None)
        code = getattr(fatal or (first.error if first else None), "code", None)
        request_id = getattr(fatal or (first.error if first else None), "request_id", None)
        super().__init__(self._summary(total), status=status, code=code, request_id=request_id)

    @property
    def nodes(self) -> list[Any]:
        """Alias of ``documents`` for the captioner."""
        return self.documents

    def _summary(self, total: int | None) -> str:
        n = len(self.failures)
        if self.fatal is not None:
            head = f"stopped after an error that would fail every page: {type(self.fatal).__name__}: {self.fatal}"
            return f"{head}; {len(self.documents)} done, {n} failed"
        of = f" of {total}" if total is not None else ""
        shown = "; ".join(f"{f.where()}: {f.message}" for f in self.failures[:5])
        more = f"; and {n - 5} more" if n > 5 else ""
        return f"{n}{of} page(s) failed ({len(self.documents)} succeeded, see .documents and .failures): {shown}{more}"

    def __reduce__(self):  # picklable with its payload
        return (_rebuild, (self.failures, self.documents, self.fatal, self.message))


def _rebuild(failures, documents, fatal, message):
    err = QwenVLReaderError(failures, documents, fatal=fatal)
    err.message = message
    err.args = (message,)
    return err


class IncompleteAnswerError(QwenVLError):
    """The model's answer for a page was cut short (``max_tokens`` reached, or a partial response)."""
