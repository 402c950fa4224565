"""The local Ray the Ray tests share: loopback only, no usage reporting, two CPUs.

Import this module before anything imports Ray: Ray reads these variables when it is imported.
"""

from __future__ import annotations

import os

# Every Ray process binds and talks on 127.0.0.1 only (by default Ray picks the machine's
# interface address), and Ray sends no usage statistics anywhere.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

NUM_CPUS = 2
_users = 0  # fixtures sharing the running Ray


def acquire(env_vars: dict[str, str]) -> None:
    """Start the local Ray (first caller) with ``env_vars`` in the job's runtime_env (how a key
    reaches workers); later callers share it. Each caller calls :func:`release` once."""
    global _users
    _users += 1
    if _users == 1:
        _start(env_vars)


def release() -> None:
    global _users
    _users -= 1
    if _users == 0:
        import ray

        ray.shutdown()


def _start(env_vars: dict[str, str]) -> None:
    import ray

    ray.init(
        num_cpus=NUM_CPUS,
        include_dashboard=False,
        runtime_env={"env_vars": env_vars},
        configure_logging=False,
        log_to_driver=True,
    )
    import logging

    from ray.data import DataContext

    logging.getLogger("ray").setLevel(logging.WARNING)  # no per-operator metrics in test reports
    context = DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False


def fixture(dashscope_server):
    """The body of a session fixture (tests/ray/conftest.py, the README test): Ray's workers get the
    fake key and the session's DashScope server through the job's environment."""
    from tests.conftest import FAKE_API_KEY

    acquire({"DASHSCOPE_API_KEY": FAKE_API_KEY, "DASHSCOPE_BASE_URL": dashscope_server.url})
    try:
        yield
    finally:
        release()
