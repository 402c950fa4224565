"""README.md's "Scale out" section runs as written: the local Ray example against the local
DashScope server (on the test session's Ray), and the single-process limiter snippet."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ray import _cluster  # sets Ray's variables before Ray is imported
from tests.support.readme_sections import python_snippets

pytestmark = [pytest.mark.ray, pytest.mark.timeout(400)]

pytest.importorskip("ray", reason="the Ray tests need the ray extra")

SNIPPETS = python_snippets("Scale out")


@pytest.fixture(scope="session")
def ray_cluster(dashscope_server) -> Iterator[None]:
    yield from _cluster.fixture(dashscope_server)


def test_the_local_example_reads_every_page_into_rows(ray_cluster, dashscope, tmp_path, monkeypatch, api_key, capsys):
    import pyarrow.parquet as pq
    import ray

    from tests.ray import _support

    assert len(SNIPPETS) == 3
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scans").mkdir()
    _support.pdf(tmp_path / "scans" / "f1.pdf", 1, 3)
    _support.png(tmp_path / "scans" / "f2.png", 2)
    monkeypatch.setenv("DASHSCOPE_API_KEY", api_key)
    monkeypatch.setenv("DASHSCOPE_BASE_URL", dashscope.url)
    inits: list[dict] = []
    monkeypatch.setattr(ray, "init", lambda **kwargs: inits.append(kwargs))  # the session's Ray runs already
    pages = _support.Pages()
    dashscope.responder = pages

    exec(compile(SNIPPETS[0], "README.md Scale out snippet", "exec"), {"__name__": "__readme__"})

    assert inits == [{"num_cpus": 2}]
    lines = sorted(capsys.readouterr().out.splitlines())
    assert lines == sorted(
        [f"scans/f1.pdf {n} {_support.answer(1, n)}" for n in (1, 2, 3)] + [f"scans/f2.png 1 {_support.answer(2, 1)}"]
    )
    assert sum(pages.seen.values()) == 4
    assert pq.read_table(str(tmp_path / "pages")).num_rows == 4
    assert (tmp_path / ".qwen_vl_cache").is_dir()


def test_the_single_process_limiter_snippet_runs(dashscope, monkeypatch, api_key):
    pytest.importorskip("langchain_core")
    monkeypatch.setenv("DASHSCOPE_API_KEY", api_key)
    namespace: dict = {"__name__": "__readme__"}
    exec(compile(SNIPPETS[1], "README.md Scale out limiter snippet", "exec"), namespace)
    assert namespace["client"].rate_limit is namespace["limit"]
    assert namespace["model"].rate_limiter.limiter is namespace["limit"]
