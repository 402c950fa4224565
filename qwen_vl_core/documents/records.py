"""What reading produces: one plain record per page (success or failure), and the error that
keeps every success when some pages fail. Adapters turn records into framework objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import (
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    PermissionDeniedError,
    QwenVLError,
)

__all__ = [
    "FATAL_ERRORS",
    "PagePath",
    "PageResult",
    "PageFailure",
    "DocumentReadError",
    "IncompleteAnswerError",
    "EmptyAnswerError",
]

#: Errors that would fail every remaining page too: stop instead of paying for more requests.
FATAL_ERRORS: tuple[type[BaseException], ...] = (
    AuthenticationError,
    PermissionDeniedError,
    NotFoundError,
    ConfigurationError,
)

#: How a page reached the wire: an image file as it is (or resized by the core), a PDF page's
#: own embedded JPEG as it is, a PDF page rendered at the model's size, a TIFF frame, a URL.
PagePath = Literal["file", "embedded", "rendered", "frame", "url"]


class IncompleteAnswerError(QwenVLError):
    """The model's answer for a page was cut short (``max_tokens`` reached, or a partial response)."""


class EmptyAnswerError(QwenVLError):
    """The model answered a page with no text at all: counted as a failed page, never cached."""


@dataclass
class PageResult:
    """One page (or one image) read by the pipeline; ``error`` is set when it failed.

    ``source`` is the input as given (path, URL, or a label such as ``<bytes>``), ``page`` is
    1-based (``None`` for a file that could not be opened at all), ``width``/``height`` the page as
    sent. ``path`` says how the page reached the wire (see :data:`PagePath`); ``seconds`` is the
    time from starting the page to its answer; ``cached`` marks answers served from the cache.
    """

    source: str
    page: int | None
    total_pages: int | None
    mode: str
    model: str
    text: str | None = None
    error: BaseException | None = None
    name: str = ""
    kind: str = "image"
    path: PagePath | None = None
    width: int | None = None
    height: int | None = None
    sha256: str | None = None
    request_id: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    cache_key: str | None = None
    cached: bool = False
    seconds: float | None = None
    media: Any = field(default=None, repr=False)  # the page as sent, kept only when asked for
    index: int = 0  # position of the file in the input list (ordering)
    job: Any = field(default=None, repr=False, compare=False)  # the caller's own item (captioner nodes)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def fatal(self) -> bool:
        return isinstance(self.error, FATAL_ERRORS)

    @property
    def doc_id(self) -> str:
        return self.source if self.page is None else f"{self.source}#page={self.page}"

    def failure(self) -> PageFailure:
        assert self.error is not None, "a successful page has no failure"
        return PageFailure(self.source, self.page, self.error)

    def metadata(self, *, include_none: bool = True) -> dict[str, Any]:
        """The page's facts under the keys both adapters use (``page_label`` as a string).
        ``include_none=False`` leaves out unknown values (some vector stores refuse None)."""
        meta: dict[str, Any] = {
            "file_path": self.source,
            "file_name": self.name,
            "page_label": str(self.page) if self.page is not None else None,
            "total_pages": self.total_pages,
            "width": self.width,
            "height": self.height,
            "mode": self.mode,
            "model": self.model,
            "request_id": self.request_id,
            "image_sha256": self.sha256,
            "page_path": self.path,
        }
        for name in ("input_tokens", "output_tokens", "total_tokens", "image_tokens"):
            if name in self.usage:
                meta[name] = self.usage[name]
        return meta if include_none else {k: v for k, v in meta.items() if v is not None}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"id", "text", "metadata"}`` on success, plus ``"error"`` on failure."""
        out: dict[str, Any] = {"id": self.doc_id, "text": self.text, "metadata": self.metadata()}
        out["metadata"]["cached"] = self.cached
        out["metadata"]["seconds"] = round(self.seconds, 4) if self.seconds is not None else None
        if self.error is not None:
            out["error"] = self.failure().to_dict()
        return out


@dataclass(frozen=True)
class PageFailure:
    """One page (or whole file, ``page=None``) that produced no document, and why.

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


class DocumentReadError(QwenVLError):
    """Some pages failed. ``documents`` holds everything that succeeded (framework Documents,
    nodes or :class:`PageResult` records, as the caller produced them); ``failures`` lists the
    pages that did not, with their errors.

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
        first = fatal or (self.failures[0].error if self.failures else None)
        super().__init__(
            self._summary(total),
            status=getattr(first, "status", None),
            code=getattr(first, "code", None),
            request_id=getattr(first, "request_id", None),
        )

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
        return (_rebuild, (type(self), self.failures, self.documents, self.fatal, self.message))


def _rebuild(cls, failures, documents, fatal, message):
    err = cls(failures, documents, fatal=fatal)
    err.message = message
    err.args = (message,)
    return err
