"""Fixtures the CLI tests share: the environment pointing at the local server, a small PNG."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image


@pytest.fixture
def cli_env(dashscope, monkeypatch, api_key):
    """Point the CLI (in-process and subprocesses) at the local server with a fake key."""
    monkeypatch.setenv("DASHSCOPE_BASE_URL", dashscope.url)
    monkeypatch.setenv("DASHSCOPE_API_KEY", api_key)
    return dashscope


@pytest.fixture
def png() -> Path:
    path = Path("cat.png").resolve()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(path)
    return path
