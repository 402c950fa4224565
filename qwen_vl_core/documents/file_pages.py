"""One file's pages, listed by the pipeline's own sources: what a worker handed "pages 41-48 of
scans/a.pdf" reads, with the same checks, loading, rendering and records as a whole run.

.. code-block:: python

    with file_pages("scans/a.pdf", pipeline.render) as pages:
        chosen = [ref for ref in pages if 41 <= ref.number <= 48]
        results = [pipeline.job.run(ref, None) for ref in chosen]
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import PurePath
from typing import Any

from .sources import FileFailure, PageRef, RenderSettings, iter_pages

__all__ = ["file_pages", "page_count"]


@contextmanager
def file_pages(
    item: str | bytes,
    settings: RenderSettings,
    *,
    label: str | None = None,
    fs: Any = None,
    policy: Any = None,
) -> Iterator[list[PageRef]]:
    """Every page of one file (a path, a path on ``fs``, or the file's bytes) as a
    :class:`~.sources.PageRef`, listed as :func:`~.sources.iter_pages` lists it; ``label`` names
    the file in records and errors (default: the path, or ``<bytes>``). The file stays open until
    the ``with`` block ends, so any subset of the pages may be loaded, in any order, from any thread.
    A file that cannot be opened raises the error a whole run would record for it.
    """
    opened: list[Any] = []
    try:
        refs: list[PageRef] = []
        for ref in iter_pages([item], settings, fs=fs, policy=policy, opened=opened):
            if isinstance(ref, FileFailure):
                raise ref.error
            refs.append(_named(ref, label) if label else ref)
        yield refs
    finally:
        for document in opened:
            document.close()


def page_count(
    item: str | bytes, settings: RenderSettings, *, fs: Any = None, policy: Any = None
) -> int:
    """How many pages (PDF pages, TIFF frames, 1 for an image) one file has; nothing is rendered."""
    with file_pages(item, settings, fs=fs, policy=policy) as pages:
        return len(pages)


def _named(ref: PageRef, label: str) -> PageRef:
    ref.source = label
    ref.name = PurePath(label).name
    ref.task = replace(ref.task, label=label)
    return ref
