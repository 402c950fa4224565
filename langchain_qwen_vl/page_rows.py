"""Result rows of the Ray Data reader (``qwen_vl_core.documents.ray_data.read_pages``) back to
LangChain Documents, the same Documents ``QwenVLDocumentLoader`` makes for those pages."""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.documents import Document

from qwen_vl_core.documents.records import DocumentReadError
from qwen_vl_core.documents.rows import iter_rows, split_rows

__all__ = ["documents_from_rows"]


def documents_from_rows(rows: Any, *, on_error: Literal["raise", "skip"] = "raise") -> list[Document]:
    """One Document per successful row (``rows``: a ``ray.data.Dataset``, a list of dicts, a pandas
    DataFrame or a ``pyarrow.Table``), with ``source``, ``page`` (0-based) and the reader's metadata.

    Failed rows are never turned into Documents: with ``on_error="raise"`` (the default) a
    :class:`~qwen_vl_core.documents.DocumentReadError` lists them after all rows were read, its
    ``documents`` holding the rest; ``"skip"`` leaves them out.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    found, failures = split_rows(iter_rows(rows))
    documents = []
    for doc_id, text, meta in found:
        page = meta.get("page_label")
        metadata: dict[str, Any] = {"source": meta["file_path"], "page": int(page) - 1 if page else 0}
        metadata.update((k, v) for k, v in meta.items() if v is not None)
        documents.append(Document(page_content=text, metadata=metadata, id=doc_id))
    if failures and on_error == "raise":
        raise DocumentReadError(failures, documents, total=len(found) + len(failures)) from failures[0].error
    return documents
