"""Shared fixtures: the local DashScope server, an isolated environment, and a network guard.

Offline tests (everything outside ``tests/integration/`` not marked ``integration``) run with
``DASHSCOPE_*`` (and proxy / OpenAI / LangSmith) variables removed, ``HOME`` and the working directory set
to fresh temporary directories, and every socket connection or DNS lookup to anything but loopback failing
at once with :class:`NetworkDisabledError`. Integration tests get the untouched environment and run only
when ``DASHSCOPE_API_KEY`` was set when the test session started.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.fake_dashscope import DashScopeServer

FAKE_API_KEY = "sk-test-0123456789abcdef"
ORIGINAL_API_KEY = os.environ.get("DASHSCOPE_API_KEY")  # captured before any fixture clears it
INTEGRATION_DIR = Path(__file__).resolve().parent / "integration"

ISOLATED_ENV_VARS = (
    "DASHSCOPE_API_KEY",
    "QWEN_API_KEY",  # read after DASHSCOPE_API_KEY (key discovery)
    "DASHSCOPE_BASE_URL",
    "DASHSCOPE_REGION",
    "DASHSCOPE_WORKSPACE",
    "DASHSCOPE_WORKSPACE_ID",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "LANGSMITH_TRACING",
    "LANGSMITH_API_KEY",
    "LANGCHAIN_TRACING_V2",
    "LANGCHAIN_API_KEY",
    # A proxy would route requests for 127.0.0.1 away from the local server.
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


# --------------------------------------------------------------------------------------------------
# integration tests
# --------------------------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: talks to live DashScope (needs DASHSCOPE_API_KEY)")


def _is_integration(item: pytest.Item) -> bool:
    path = Path(str(item.path)).resolve()
    return INTEGRATION_DIR in path.parents or item.get_closest_marker("integration") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="integration test: DASHSCOPE_API_KEY is not set")
    for item in items:
        if _is_integration(item):
            item.add_marker(pytest.mark.integration)
            if not ORIGINAL_API_KEY:
                item.add_marker(skip)


# --------------------------------------------------------------------------------------------------
# network guard
# --------------------------------------------------------------------------------------------------


class NetworkDisabledError(ConnectionError):
    """Raised for any connection or DNS lookup that would leave the machine during offline tests."""


_real_getaddrinfo = socket.getaddrinfo
_real_create_connection = socket.create_connection
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_AF_UNIX = getattr(socket, "AF_UNIX", None)


def _is_local_host(host: Any) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    host = host.strip().strip("[]").split("%", 1)[0].lower().rstrip(".")
    if host in ("", "localhost") or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


def _is_numeric_host(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    try:
        ipaddress.ip_address(str(host).strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def _allowed(family: int, address: Any) -> bool:
    if _AF_UNIX is not None and family == _AF_UNIX:
        return True
    if isinstance(address, tuple) and address:
        return _is_local_host(address[0])
    return False


def _blocked(address: Any) -> NetworkDisabledError:
    return NetworkDisabledError(
        errno.ENETUNREACH, f"network disabled in offline tests: connection to {address!r} blocked by the test network guard"
    )


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if not _allowed(self.family, address):
        raise _blocked(address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if not _allowed(self.family, address):
        return errno.ENETUNREACH
    return _real_connect_ex(self, address)


def _guarded_create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
    if not (isinstance(address, tuple) and address and _is_local_host(address[0])):
        raise _blocked(address)
    return _real_create_connection(address, *args, **kwargs)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> list:
    if not (_is_local_host(host) or _is_numeric_host(host)):  # numeric ones are caught at connect()
        raise socket.gaierror(socket.EAI_NONAME, f"network disabled in offline tests: DNS lookup of {host!r} blocked")
    return _real_getaddrinfo(host, *args, **kwargs)


def install_network_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    """Allow loopback and AF_UNIX connections only (sync sockets, asyncio's sock_connect, connect_ex, DNS)."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
    monkeypatch.setattr(socket, "create_connection", _guarded_create_connection)
    monkeypatch.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)


# --------------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _offline_isolation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No real keys, no .env, no developer HOME, no network: for every test except integration tests."""
    if _is_integration(request.node):
        yield
        return
    for name in ISOLATED_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    work = tmp_path / "cwd"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    monkeypatch.chdir(work)
    install_network_guard(monkeypatch)
    yield


@pytest.fixture(scope="session")
def dashscope_server() -> Iterator[DashScopeServer]:
    """One local DashScope server for the whole session (prefer the isolated ``dashscope`` fixture)."""
    with DashScopeServer() as server:
        yield server


@pytest.fixture
def dashscope(dashscope_server: DashScopeServer) -> Iterator[DashScopeServer]:
    """The session server, reset for this test. Fails the test if answering raised (see ``server.errors``)."""
    dashscope_server.reset()
    yield dashscope_server
    errors = list(dashscope_server.errors)
    dashscope_server.reset()
    if errors:
        pytest.fail("the fake DashScope server raised while answering:\n" + "\n".join(errors), pytrace=False)


@pytest.fixture
def api_key() -> str:
    """A fake DashScope key; tests assert it never shows up in logs or reprs."""
    return FAKE_API_KEY
