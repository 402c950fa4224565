"""Key discovery as seed 002 does it: DASHSCOPE_API_KEY, then QWEN_API_KEY, then .env in the working
directory and in the project root, then the credentials file; the error lists every place looked.
An unknown region is an error even when a base URL decides the host."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwen_vl_core.config import find_api_key, key_places, project_root, resolve_endpoint
from qwen_vl_core.errors import ConfigurationError


@pytest.fixture
def no_env(monkeypatch):
    for name in ("DASHSCOPE_API_KEY", "QWEN_API_KEY", "DASHSCOPE_BASE_URL", "DASHSCOPE_REGION"):
        monkeypatch.delenv(name, raising=False)


def project(tmp_path: Path, marker: str = "pyproject.toml") -> tuple[Path, Path]:
    root = tmp_path / "proj"
    work = root / "src" / "pkg"
    work.mkdir(parents=True)
    (root / marker).mkdir() if marker == ".git" else (root / marker).write_text("[project]\n")
    return root, work


def test_qwen_api_key_is_read_after_dashscope_api_key(no_env, monkeypatch, tmp_path):
    monkeypatch.setenv("QWEN_API_KEY", "sk-qwen-1111")
    assert find_api_key(cwd=tmp_path, home=tmp_path).get_secret_value() == "sk-qwen-1111"
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-dash-2222")
    assert find_api_key(cwd=tmp_path, home=tmp_path).get_secret_value() == "sk-dash-2222"


@pytest.mark.parametrize("marker", ["pyproject.toml", ".git"])
def test_dotenv_in_the_project_root_is_found_from_a_subfolder(no_env, tmp_path, marker):
    root, work = project(tmp_path, marker)
    (root / ".env").write_text("DASHSCOPE_API_KEY=sk-root-3333\n")
    assert project_root(work) == root.resolve()
    assert find_api_key(cwd=work, home=tmp_path).get_secret_value() == "sk-root-3333"


def test_the_working_directory_comes_before_the_project_root(no_env, tmp_path):
    root, work = project(tmp_path)
    (root / ".env").write_text("DASHSCOPE_API_KEY=sk-root-3333\n")
    (work / ".env").write_text("export QWEN_API_KEY='sk-here-4444'\n")  # either name, in either file
    assert find_api_key(cwd=work, home=tmp_path).get_secret_value() == "sk-here-4444"


def test_environment_wins_over_files_and_credentials_come_last(no_env, monkeypatch, tmp_path):
    root, work = project(tmp_path)
    creds = tmp_path / ".alibabacloud" / "credentials"
    creds.parent.mkdir()
    creds.write_text("[default]\ndashscope_api_key = sk-creds-5555\n")
    assert find_api_key(cwd=work, home=tmp_path).get_secret_value() == "sk-creds-5555"
    (root / ".env").write_text("QWEN_API_KEY=sk-root-6666\n")
    assert find_api_key(cwd=work, home=tmp_path).get_secret_value() == "sk-root-6666"
    monkeypatch.setenv("QWEN_API_KEY", "sk-env-7777")
    assert find_api_key(cwd=work, home=tmp_path).get_secret_value() == "sk-env-7777"


def test_missing_key_error_lists_every_place_looked(no_env, tmp_path):
    root, work = project(tmp_path)
    with pytest.raises(ConfigurationError) as info:
        find_api_key(cwd=work, home=tmp_path / "home")
    message = str(info.value)
    for place in ("api_key argument", "DASHSCOPE_API_KEY", "QWEN_API_KEY", str(work / ".env"), str(root.resolve() / ".env"),
                  str(tmp_path / "home" / ".alibabacloud" / "credentials")):  # fmt: skip
        assert place in message, place
    assert key_places(cwd=work, home=tmp_path / "home") == [
        work / ".env", root.resolve() / ".env", tmp_path / "home" / ".alibabacloud" / "credentials"
    ]


def test_no_project_root_means_the_working_directory_only(no_env, tmp_path):
    work = tmp_path / "loose"
    work.mkdir()
    if project_root(work) is not None:  # pragma: no cover - a marker above the temp folder
        pytest.skip("the temporary folder lies inside a project")
    assert key_places(cwd=work, home=tmp_path) == [work / ".env", tmp_path / ".alibabacloud" / "credentials"]


def test_unknown_region_is_an_error_even_with_a_base_url(no_env, monkeypatch):
    with pytest.raises(ConfigurationError, match="unknown region 'mars'"):
        resolve_endpoint("mars", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("DASHSCOPE_BASE_URL", "http://127.0.0.1:9/v1")
    with pytest.raises(ConfigurationError, match="unknown region 'mars'"):
        resolve_endpoint("mars")
    monkeypatch.setenv("DASHSCOPE_REGION", "mars")
    with pytest.raises(ConfigurationError, match="unknown region 'mars'"):
        resolve_endpoint()
    monkeypatch.setenv("DASHSCOPE_REGION", "intl")
    assert resolve_endpoint().root == "http://127.0.0.1:9"  # a known region: the base URL still decides
    monkeypatch.delenv("DASHSCOPE_BASE_URL")
    assert resolve_endpoint().root == "https://dashscope-intl.aliyuncs.com"
