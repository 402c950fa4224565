"""Page results as flat table rows (what the Ray Data path writes: one row per page, failures
included), and rows back to the ``(id, text, metadata)`` both adapters build Documents from.

A row holds plain values only (strings, numbers, booleans, None), so it goes into Arrow, Parquet,
JSON lines or a DataFrame as it is. ``error_type`` / ``error_message`` are None on success; a file
that could not be opened at all is one row with ``page`` None.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import PurePath
from typing import Any

from .. import errors as _errors
from . import records as _records
from .records import PageFailure, PageResult

__all__ = ["ROW_COLUMNS", "page_row", "failure_row", "row_schema", "rows_table", "row_document", "row_failure",
           "split_rows", "iter_rows"]

#: Column name -> Arrow type name, in order.
ROW_COLUMNS: dict[str, str] = {
    "source": "string",
    "page": "int32",
    "total_pages": "int32",
    "mode": "string",
    "model": "string",
    "text": "large_string",
    "input_tokens": "int64",
    "image_tokens": "int64",
    "output_tokens": "int64",
    "request_id": "string",
    "cached": "bool_",
    "page_path": "string",
    "width": "int32",
    "height": "int32",
    "sha256": "string",
    "seconds": "float64",
    "error_type": "string",
    "error_message": "string",
    "error_status": "int32",
    "error_code": "string",
}


def page_row(result: PageResult) -> dict[str, Any]:
    """One :class:`~.records.PageResult` as a row of :data:`ROW_COLUMNS`."""
    error = result.error
    return {
        "source": result.source,
        "page": result.page,
        "total_pages": result.total_pages,
        "mode": result.mode,
        "model": result.model,
        "text": result.text if error is None else None,
        "input_tokens": result.usage.get("input_tokens"),
        "image_tokens": result.usage.get("image_tokens"),
        "output_tokens": result.usage.get("output_tokens"),
        "request_id": result.request_id or getattr(error, "request_id", None),
        "cached": bool(result.cached),
        "page_path": result.path,
        "width": result.width,
        "height": result.height,
        "sha256": result.sha256,
        "seconds": round(result.seconds, 4) if result.seconds is not None else None,
        "error_type": type(error).__name__ if error is not None else None,
        "error_message": _message(error) if error is not None else None,
        "error_status": getattr(error, "status", None) if error is not None else None,
        "error_code": getattr(error, "code", None) if error is not None else None,
    }


def _message(error: BaseException) -> str:
    message = getattr(error, "message", None)  # a QwenVLError: status, code, request id have columns
    return message if isinstance(message, str) else str(error)


def failure_row(source: str, error: BaseException, *, page: int | None = None, total_pages: int | None = None,
                mode: str, model: str) -> dict[str, Any]:  # fmt: skip
    """A row for a page (or, with ``page`` None, a whole file) that failed before any request."""
    return page_row(PageResult(source=source, page=page, total_pages=total_pages, mode=mode, model=model,
                               error=error, name=PurePath(source).name))  # fmt: skip


def row_schema() -> Any:
    """The Arrow schema of :data:`ROW_COLUMNS` (needs pyarrow)."""
    import pyarrow as pa

    return pa.schema([(name, getattr(pa, kind)()) for name, kind in ROW_COLUMNS.items()])


def rows_table(rows: list[Mapping[str, Any]]) -> Any:
    """Rows as a ``pyarrow.Table`` with :func:`row_schema` (the same types in every batch)."""
    import pyarrow as pa

    columns = {name: [row.get(name) for row in rows] for name in ROW_COLUMNS}
    return pa.Table.from_pydict(columns, schema=row_schema())


def iter_rows(rows: Any) -> Iterator[Mapping[str, Any]]:
    """Rows from a list of dicts, a ``ray.data.Dataset`` (``iter_rows``), a pandas DataFrame or a
    ``pyarrow.Table``."""
    if hasattr(rows, "iter_rows"):  # ray.data.Dataset
        yield from rows.iter_rows()
    elif hasattr(rows, "to_pylist"):  # pyarrow.Table
        yield from rows.to_pylist()
    elif hasattr(rows, "to_dict") and hasattr(rows, "columns"):  # pandas.DataFrame
        yield from rows.to_dict("records")
    else:
        yield from rows


def _value(row: Mapping[str, Any], name: str) -> Any:
    value = row.get(name)
    try:
        if value != value:  # NaN, as pandas writes a missing number
            return None
    except (TypeError, ValueError):
        pass
    return value.item() if hasattr(value, "item") else value  # numpy scalars


def row_document(row: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """``(id, text, metadata)`` of a successful row, with the metadata keys the readers use
    (``file_path``, ``file_name``, ``page_label``, ``total_pages``, sizes, ``mode``, ``model``,
    ``request_id``, ``image_sha256``, ``page_path``, token counts)."""
    source = str(_value(row, "source"))
    page = _value(row, "page")
    metadata: dict[str, Any] = {
        "file_path": source,
        "file_name": PurePath(source).name,
        "page_label": str(int(page)) if page is not None else None,
        "total_pages": _value(row, "total_pages"),
        "width": _value(row, "width"),
        "height": _value(row, "height"),
        "mode": _value(row, "mode"),
        "model": _value(row, "model"),
        "request_id": _value(row, "request_id"),
        "image_sha256": _value(row, "sha256"),
        "page_path": _value(row, "page_path"),
    }
    for name in ("input_tokens", "output_tokens", "image_tokens"):
        value = _value(row, name)
        if value is not None:
            metadata[name] = int(value)
    for name in ("total_pages", "width", "height"):
        if metadata[name] is not None:
            metadata[name] = int(metadata[name])
    doc_id = source if page is None else f"{source}#page={int(page)}"
    return doc_id, str(_value(row, "text") or ""), metadata


def row_failure(row: Mapping[str, Any]) -> PageFailure | None:
    """The failure a row records (its typed error rebuilt by class name), or None on success."""
    kind = _value(row, "error_type")
    if kind is None:
        return None
    cls = getattr(_errors, str(kind), None) or getattr(_records, str(kind), None)
    if not (isinstance(cls, type) and issubclass(cls, _errors.QwenVLError)):
        cls = _errors.QwenVLError
    page = _value(row, "page")
    error = cls(
        str(_value(row, "error_message") or kind),
        status=_value(row, "error_status"),
        code=_value(row, "error_code"),
        request_id=_value(row, "request_id"),
    )
    return PageFailure(str(_value(row, "source")), int(page) if page is not None else None, error)


def split_rows(rows: Iterable[Mapping[str, Any]]) -> tuple[list[tuple[str, str, dict[str, Any]]], list[PageFailure]]:
    """Successful rows as ``(id, text, metadata)`` and failed rows as failures, in row order."""
    documents: list[tuple[str, str, dict[str, Any]]] = []
    failures: list[PageFailure] = []
    for row in rows:
        failure = row_failure(row)
        if failure is None:
            documents.append(row_document(row))
        else:
            failures.append(failure)
    return documents, failures
