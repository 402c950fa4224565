"""One local Ray for the Ray tests (started on first use, shut down at the end of the session),
whose workers talk to the test session's local DashScope server with a fake key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ray import _cluster  # sets Ray's variables before Ray is imported

pytest.importorskip("ray", reason="the Ray tests need the ray extra")


@pytest.fixture(scope="session")
def ray_cluster(dashscope_server) -> Iterator[None]:
    yield from _cluster.fixture(dashscope_server)


@pytest.fixture
def cluster(ray_cluster, dashscope) -> Iterator[object]:
    """The running Ray and the test's (reset) DashScope server."""
    yield dashscope
