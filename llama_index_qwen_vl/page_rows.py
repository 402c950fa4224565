"""Result rows of the Ray Data reader (``qwen_vl_core.documents.ray_data.read_pages``) back to
LlamaIndex Documents, the same Documents ``QwenVLReader`` makes for those pages."""

from __future__ import annotations

from typing import Any, Literal

from llama_index.core.schema import Document

from qwen_vl_core.documents.records import DocumentReadError
from qwen_vl_core.documents.rows import iter_rows, split_rows

from .reader import EXCLUDED_EMBED_KEYS, EXCLUDED_LLM_KEYS

__all__ = ["documents_from_rows"]


def documents_from_rows(rows: Any, *, on_error: Literal["raise", "skip"] = "raise") -> list[Document]:
    """One Document per successful row (``rows``: a ``ray.data.Dataset``, a list of dicts, a pandas
    DataFrame or a ``pyarrow.Table``), ``id_`` ``<file>#page=<n>``, with the reader's metadata.

    Failed rows are never turned into Documents: with ``on_error="raise"`` (the default) a
    :class:`~qwen_vl_core.documents.DocumentReadError` lists them after all rows were read, its
    ``documents`` holding the rest; ``"skip"`` leaves them out.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    found, failures = split_rows(iter_rows(rows))
    documents = [
        Document(
            id_=doc_id,
            text=text,
            metadata=metadata,
            excluded_embed_metadata_keys=list(EXCLUDED_EMBED_KEYS),
            excluded_llm_metadata_keys=list(EXCLUDED_LLM_KEYS),
        )
        for doc_id, text, metadata in found
    ]
    if failures and on_error == "raise":
        raise DocumentReadError(failures, documents, total=len(found) + len(failures)) from failures[0].error
    return documents
