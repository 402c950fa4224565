"""``read_pages`` on a local Ray (two CPUs) against the local DashScope server: every page read
once into one row, failures as rows, 429s and 5xx under one cluster-wide limit, a worker killed
mid-run, and a rerun that sends only the pages that failed."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.timeout(400)]

from tests.fake_dashscope import Json, error_body  # noqa: E402
from tests.ray import _support  # noqa: E402


def _rows(dataset) -> dict[tuple[str, int | None], dict]:
    rows = dataset.take_all()
    keyed = {(r["source"], r["page"]): r for r in rows}
    assert len(keyed) == len(rows), "a page came out twice"
    return keyed


def _file_id(source: str) -> int:
    return int(os.path.basename(source).split(".")[0][1:])


def _check_answers(rows: dict) -> None:
    for (source, page), row in rows.items():
        if row["error_type"] is None:
            assert row["text"] == _support.answer(_file_id(source), page), (source, page)


def test_every_page_becomes_one_row_and_the_output_writes_as_it_is(cluster, tmp_path):
    from qwen_vl_core.documents.ray_data import read_pages
    from langchain_qwen_vl import documents_from_rows

    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    _support.pdf(docs / "f1.pdf", 1, 7)
    _support.pdf(docs / "sub" / "f2.pdf", 2, 2)
    _support.png(docs / "f3.png", 3)
    _support.tiff(docs / "f4.tiff", 4, 3)
    (docs / "f5.pdf").write_bytes(b"%PDF-1.7 broken")
    pages = _support.Pages()
    keys = []
    cluster.responder = lambda rec: (keys.append(rec.headers.get("authorization")), pages(rec))[1]

    dataset = read_pages(
        docs, mode="ocr", concurrency=2, in_flight=4, pages_per_batch=2,
        runtime_env={"env_vars": {"DASHSCOPE_API_KEY": "sk-from-runtime-env"}},
    ).materialize()  # fmt: skip
    rows = _rows(dataset)

    assert len(rows) == 7 + 2 + 1 + 3 + 1
    assert set(pages.seen.values()) == {1} and len(pages.seen) == 13  # every page sent once
    assert set(keys) == {"Bearer sk-from-runtime-env"}  # the key came through the environment
    broken = rows[(str(docs / "f5.pdf"), None)]
    assert broken["error_type"] == "InputValidationError" and broken["text"] is None
    ok = [r for r in rows.values() if r["error_type"] is None]
    assert len(ok) == 13 and all(r["image_tokens"] == 100 and r["mode"] == "ocr" for r in ok)
    _check_answers(rows)

    dataset.write_parquet(str(tmp_path / "out"))
    import pyarrow.parquet as pq

    written = pq.read_table(str(tmp_path / "out"))
    assert written.num_rows == 14 and "error_message" in written.column_names
    assert len(documents_from_rows(dataset, on_error="skip")) == 13


def test_429s_and_5xx_under_one_cluster_wide_limit(cluster, tmp_path):
    import ray.data

    from qwen_vl_core.documents.ray_data import read_pages, shared_rate_limiter

    for f in (1, 2):
        _support.pdf(tmp_path / f"f{f}.pdf", f, 8)
    paused_at: list[float] = []

    def fail(f: int, p: int, attempt: int):
        if attempt > 1:
            return None
        if (f, p) == (1, 2):
            paused_at.append(time.monotonic())
            return Json(error_body("Requests rate limit exceeded", "Throttling.RateQuota"), 429,
                        headers={"retry-after": "1"})  # fmt: skip
        if (f, p) == (1, 6):
            return Json(error_body("Requests rate limit exceeded", "Throttling"), 429)
        if (f, p) == (2, 3):
            return Json(error_body("The model is overloaded", "InternalError"), 503)
        if (f, p) == (2, 5):
            return Json(error_body("Range of input length should be [1, 129024]", "invalid_parameter"), 400)
        return None

    pages = _support.Pages(fail=fail)
    cluster.responder = pages
    limit = shared_rate_limiter(requests_per_minute=600, name=f"test-{uuid.uuid4().hex[:8]}")  # 10 a second
    files = ray.data.read_binary_files(str(tmp_path), include_paths=True, num_cpus=0.25)  # a dataset of files
    dataset = read_pages(files, rate_limit=limit, concurrency=2, in_flight=8, pages_per_batch=4,
                         client={"max_retries": 3, "retry_initial_delay": 0.05})  # fmt: skip
    rows = _rows(dataset)

    assert len(rows) == 16
    failed = {key: r for key, r in rows.items() if r["error_type"] is not None}
    assert [(k[1], r["error_type"], r["error_status"]) for k, r in failed.items()] == [(5, "BadRequestError", 400)]
    _check_answers(rows)
    assert sum(pages.seen.values()) == 16 + 3  # the three retried pages, twice each; nothing else twice
    stats = limit.stats()
    assert stats["pauses"] == 1 and stats["backoffs"] == 1 and stats["granted"] == 19
    # the limit held at the server: at most 10 a second (+1 the burst, +1 arrival jitter)
    assert _support.max_in_window(pages.arrivals, 1.0) <= 12
    # and the Retry-After paused every worker: nothing arrived for the second after the 429 (but a
    # request that had been let through just before the pause reached the limiter's actor)
    [t429] = paused_at
    assert not [t for t in pages.arrivals if t429 + 0.2 < t < t429 + 0.95]
    limit.close()


def _page_reader_pids() -> list[int]:
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as fh:
                    if b"MapBatches(PageReader)" in fh.read():
                        pids.append(int(name))
            except OSError:
                continue
    return pids


def test_a_killed_worker_loses_nothing_and_a_rerun_sends_only_the_failed_pages(cluster, tmp_path):
    from qwen_vl_core.documents.ray_data import read_pages

    for f in (1, 2, 3):
        _support.pdf(tmp_path / f"f{f}.pdf", f, 8)
    killed: list[int] = []

    def kill_one(count: int) -> None:
        if count == 8 and not killed:
            pids = _page_reader_pids()
            assert pids, "no PageReader actor process found"
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    cluster.latency = 0.05  # keep requests in flight when the worker dies
    first = _support.Pages(
        fail=lambda f, p, a: Json(error_body("bad page", "invalid_parameter"), 400) if (f, p) == (3, 5) else None,
        on_request=kill_one,
    )
    cluster.responder = first
    cache = tmp_path / "cache"
    rows = _rows(read_pages(tmp_path, cache_dir=cache, concurrency=2, in_flight=4, pages_per_batch=2))

    assert killed and len(rows) == 24
    assert [k[1] for k, r in rows.items() if r["error_type"]] == [5]
    _check_answers(rows)
    assert len(first.seen) == 24  # every page asked; pages in flight in the killed worker asked again

    second = _support.Pages()
    cluster.responder = second
    rows = _rows(read_pages(tmp_path, cache_dir=cache, concurrency=2, in_flight=4, pages_per_batch=2))
    assert dict(second.seen) == {(3, 5): 1}  # the rerun paid only for the page that had failed
    assert len(rows) == 24 and not [r for r in rows.values() if r["error_type"]]
    assert sum(r["cached"] for r in rows.values()) == 23
    _check_answers(rows)
