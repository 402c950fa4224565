"""Document collections on Ray Data: one row per page, an actor pool that renders and sends, and
one rate limit for the whole cluster (``pip install 'qwen-vl-integrations[ray]'``).

.. code-block:: python

    import ray
    from qwen_vl_core.documents.ray_data import read_pages

    ray.init(runtime_env={"env_vars": {"DASHSCOPE_API_KEY": "sk-..."}})
    pages = read_pages(
        "s3://archive/scans/",
        mode="markdown",
        rate_limit={"requests_per_minute": 1200, "tokens_per_minute": 1_000_000},
        cache_dir="/mnt/shared/qwen-vl-cache",
        concurrency=8,
    )
    pages.write_parquet("s3://archive/pages/")

Importing this module imports Ray; nothing else in the package does.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

try:
    import ray  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "qwen_vl_core.documents.ray_data needs Ray Data: pip install 'qwen-vl-integrations[ray]'"
    ) from exc

# Loaded on first use: a worker that only holds the rate limiter never imports Ray Data.
_EXPORTS = {
    "read_pages": ".read",
    "shared_rate_limiter": ".limiter",
    "SharedRateLimiter": ".limiter",
    "DEFAULT_NAME": ".limiter",
    "NAMESPACE": ".limiter",
    "PageReader": ".stages",
    "ReadSpec": ".stages",
    "expand_file": ".stages",
    "ROW_COLUMNS": "..rows",
    "row_document": "..rows",
    "row_failure": "..rows",
    "split_rows": "..rows",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name], __name__), name)
