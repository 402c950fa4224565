"""A tqdm progress bar driven by the pipeline's ``progress`` callback (one tick per page)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .records import PageResult

__all__ = ["progress_bar"]


@contextmanager
def progress_bar(show: bool, label: str = "Reading pages", **tqdm_options: Any) -> Iterator[Callable[[PageResult], None] | None]:
    """``with progress_bar(True) as progress: DocumentPipeline(..., progress=progress)``.

    Yields None when ``show`` is false. Failed pages are counted in the bar's postfix.
    """
    if not show:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(desc=label, unit="page", **tqdm_options)
    failed = 0

    def update(result: PageResult) -> None:
        nonlocal failed
        if not result.ok:
            failed += 1
            bar.set_postfix(failed=failed, refresh=False)
        bar.update(1)

    try:
        yield update
    finally:
        bar.close()
