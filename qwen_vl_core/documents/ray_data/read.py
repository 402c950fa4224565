"""``read_pages``: document collections to one row per page on Ray Data."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ...models import DEFAULT_MODEL
from ..sources import expand_inputs
from .limiter import SharedRateLimiter, shared_rate_limiter
from .stages import PageReader, ReadSpec, expand_file

__all__ = ["read_pages"]

_KEY_NAMES = ("api_key", "key", "dashscope_api_key")


def read_pages(
    inputs: Any,
    *,
    model: str = DEFAULT_MODEL,
    mode: str = "caption+ocr",
    prompt: str | None = None,
    options: Mapping[str, Any] | None = None,
    dpi: float | None = None,
    page_format: str = "jpeg",
    password: str | None = None,
    filesystem: Any = None,
    recursive: bool = True,
    client: Mapping[str, Any] | None = None,
    rate_limit: SharedRateLimiter | Mapping[str, Any] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    concurrency: int = 2,
    in_flight: int = 16,
    pages_per_batch: int = 8,
    num_cpus: float = 0.5,
    runtime_env: Mapping[str, Any] | None = None,
) -> Any:
    """A ``ray.data.Dataset`` with one row per page of ``inputs`` (see
    :data:`qwen_vl_core.documents.rows.ROW_COLUMNS`): ``source``, ``page``, ``mode``, ``model``,
    ``text``, token counts, ``request_id``, and ``error_type`` / ``error_message`` (None on success).
    A failed page is a row with its error, never a missing row. The dataset is lazy: nothing is
    read until it is consumed (``take_all``, ``iter_rows``, ``write_parquet``, ...).

    ``inputs``: a path, a directory, or a list of them, local or on any filesystem
    (``s3://bucket/scans/``, ``gs://...``: fsspec resolves the scheme; or pass ``filesystem``, a
    ``pyarrow.fs.FileSystem`` or an fsspec one); or a ``ray.data.Dataset`` of binary files (the
    ``bytes`` and ``path`` columns of ``ray.data.read_binary_files(..., include_paths=True)``).

    Two stages: files are expanded into pages (counted, not rendered), so a long PDF's pages are
    spread over the workers; then an actor pool of ``concurrency`` actors (``num_cpus`` each,
    default half a CPU: an actor mostly waits for answers, its CPU work is rendering pages; whole
    CPUs for every actor would leave none for an upstream stage such as ``read_binary_files``)
    loads, renders and sends each page, ``in_flight`` requests at a time per actor, batches of
    ``pages_per_batch`` pages. Paths are read again where their pages are rendered, so rendered
    pages never travel through the object store (a dataset of bytes carries each file's bytes once
    per ``pages_per_batch`` pages).

    ``client``: :class:`~qwen_vl_core.QwenVLClient` settings (``base_url``, ``region``,
    ``workspace``, ``timeout``, ``max_retries``, ...) but never the key: each actor finds the key
    itself, from ``DASHSCOPE_API_KEY`` in ``runtime_env={"env_vars": {...}}`` (passed to both
    stages) or the node's environment, ``.env`` or ``~/.alibabacloud/credentials``.

    ``rate_limit``: a :func:`~.limiter.shared_rate_limiter` (or its settings as a dict, e.g.
    ``{"requests_per_minute": 1200, "tokens_per_minute": 1_000_000}``): one limit for every actor.
    ``cache_dir``: a directory every worker can reach (a shared filesystem on a cluster): answers
    are kept by page content and settings, so a rerun sends only the pages that failed or were
    never sent, and a batch Ray retries after a worker died does not pay twice for its pages.

    The other arguments are :class:`~qwen_vl_core.documents.DocumentPipeline`'s.
    """
    import ray
    import ray.data

    client_settings = dict(client or {})
    for name in _KEY_NAMES:
        if name in client_settings:
            raise ValueError(
                f"client[{name!r}]: the key never travels inside a pickled object; put DASHSCOPE_API_KEY in "
                "runtime_env={'env_vars': {...}} or the workers' environment"
            )
    for name, value in (("concurrency", concurrency), ("in_flight", in_flight), ("pages_per_batch", pages_per_batch)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    fs, inputs = _filesystem(filesystem, inputs)
    spec = ReadSpec(
        model=model,
        mode=mode,
        prompt=prompt,
        options=dict(options or {}),
        dpi=dpi,
        page_format=page_format,
        password=password,
        client=client_settings,
        cache_dir=os.path.abspath(os.fspath(cache_dir)) if cache_dir is not None else None,  # workers' cwd differs
        in_flight=in_flight,
        chunk_pages=pages_per_batch,
        filesystem=fs,
    )
    spec.render_settings()  # a bad mode, option or client setting fails here, before Ray runs anything
    if isinstance(rate_limit, Mapping):
        rate_limit = shared_rate_limiter(**rate_limit)
    env = dict(runtime_env) if runtime_env else None

    if isinstance(inputs, ray.data.Dataset):
        files = inputs
    else:
        paths = [p for p in expand_inputs(inputs, recursive=recursive, fs=fs) if isinstance(p, str)]
        if not paths:
            raise ValueError(f"no files to read in {inputs!r}")
        blocks = min(len(paths), max(8 * concurrency, math.ceil(len(paths) / 32)))  # at most 32 files a task
        # workers read absolute paths (their working directory is not this one); rows name files as given
        where = [os.path.abspath(p) if fs is None else p for p in paths]
        files = ray.data.from_items([{"path": w, "source": p} for w, p in zip(where, paths)],
                                    override_num_blocks=blocks)  # fmt: skip
    # Counting pages is light I/O: it takes no CPU slot (so it never waits for the actors to give
    # one back), and at most as many tasks run at once as there are actors.
    pages = files.flat_map(expand_file, fn_kwargs={"spec": spec}, num_cpus=0, runtime_env=env,
                           **_task_pool(concurrency))  # fmt: skip
    calls = math.ceil(in_flight / pages_per_batch) + 1  # batches per actor at once: keeps in_flight busy
    return pages.map_batches(
        PageReader,
        fn_constructor_kwargs={"spec": spec, "limiter": rate_limit},
        batch_size=pages_per_batch,
        batch_format="pyarrow",
        num_cpus=num_cpus,
        runtime_env=env,
        **_actor_pool(concurrency, calls),
    )


def _task_pool(size: int) -> dict[str, Any]:
    """At most ``size`` tasks of a stage at once."""
    try:
        from ray.data import TaskPoolStrategy

        return {"compute": TaskPoolStrategy(size=size)}
    except ImportError:  # Ray before TaskPoolStrategy
        return {"concurrency": size}


def _actor_pool(size: int, calls: int) -> dict[str, Any]:
    """A fixed pool of ``size`` actors, each running up to ``calls`` batches at once."""
    from ray.data import ActorPoolStrategy

    try:
        return {"compute": ActorPoolStrategy(size=size, max_concurrent_calls_per_actor=calls)}
    except TypeError:  # Ray before max_concurrent_calls_per_actor: the actor's own max_concurrency
        return {"compute": ActorPoolStrategy(size=size), "max_concurrency": calls}


def _filesystem(filesystem: Any, inputs: Any) -> tuple[Any, Any]:
    """An fsspec filesystem for ``inputs`` (None for local paths), and the paths as it names them."""
    if filesystem is not None:
        try:
            import pyarrow.fs as pafs
        except ImportError:  # pragma: no cover - ray[data] brings pyarrow
            pafs = None
        if pafs is not None and isinstance(filesystem, pafs.FileSystem):
            from fsspec.implementations.arrow import ArrowFSWrapper

            filesystem = ArrowFSWrapper(filesystem)
        return filesystem, inputs
    if isinstance(inputs, (str, os.PathLike)):
        listed: Sequence[Any] = [inputs]
    elif isinstance(inputs, Sequence) and not isinstance(inputs, (bytes, bytearray)):
        listed = inputs
    else:
        return None, inputs
    remote = [str(p) for p in listed if "://" in str(p) and not str(p).startswith("file://")]
    if not remote:
        local = [str(p)[len("file://"):] if str(p).startswith("file://") else p for p in listed]
        return None, local if not isinstance(inputs, (str, os.PathLike)) else local[0]
    if len(remote) != len(listed):
        raise ValueError("inputs mix local paths and remote URLs; read them in two calls (or pass filesystem=)")
    from fsspec.core import url_to_fs

    fs, _ = url_to_fs(remote[0])
    stripped = [fs._strip_protocol(p) for p in remote]
    return fs, stripped[0] if isinstance(inputs, (str, os.PathLike)) else stripped
