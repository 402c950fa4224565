import pytest
from pydantic import SecretStr

from qwen_vl_core.config import REGIONS, find_api_key, resolve_endpoint
from qwen_vl_core.errors import ConfigurationError


@pytest.mark.parametrize(
    ("region", "host"),
    [
        (None, "https://dashscope.aliyuncs.com"),
        ("beijing", "https://dashscope.aliyuncs.com"),
        ("singapore", "https://dashscope-intl.aliyuncs.com"),
        ("intl", "https://dashscope-intl.aliyuncs.com"),
        ("ap-southeast-1", "https://dashscope-intl.aliyuncs.com"),
        ("us", "https://dashscope-us.aliyuncs.com"),
        ("hongkong", "https://cn-hongkong.dashscope.aliyuncs.com"),
    ],
)
def test_regions_map_to_documented_hosts(region, host):
    ep = resolve_endpoint(region)
    assert ep.root == host
    assert ep.chat_url == host + "/compatible-mode/v1/chat/completions"
    assert ep.native_url == host + "/api/v1/services/aigc/multimodal-generation/generation"
    assert ep.upload_policy_url == host + "/api/v1/uploads"


def test_region_from_environment(monkeypatch):
    monkeypatch.setenv("DASHSCOPE_REGION", "us")
    assert resolve_endpoint().root == REGIONS["us"]


def test_unknown_region_names_choices():
    with pytest.raises(ConfigurationError, match="unknown region 'mars'.*singapore"):
        resolve_endpoint("mars")


@pytest.mark.parametrize(
    ("base_url", "compat", "root"),
    [
        ("https://dashscope-intl.aliyuncs.com", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1", "https://dashscope-intl.aliyuncs.com"),
        ("https://dashscope-intl.aliyuncs.com/compatible-mode/v1/", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1", "https://dashscope-intl.aliyuncs.com"),
        ("https://dashscope.aliyuncs.com/api/v1", "https://dashscope.aliyuncs.com/compatible-mode/v1", "https://dashscope.aliyuncs.com"),
        ("http://localhost:8000/v1", "http://localhost:8000/v1", "http://localhost:8000"),
    ],
)
def test_base_url_forms(base_url, compat, root):
    ep = resolve_endpoint("us", base_url)  # base_url wins over region
    assert ep.compatible_base == compat
    assert ep.root == root


def test_base_url_from_environment(monkeypatch):
    monkeypatch.setenv("DASHSCOPE_BASE_URL", "http://127.0.0.1:9/compatible-mode/v1")
    assert resolve_endpoint().root == "http://127.0.0.1:9"


def test_bad_base_url():
    with pytest.raises(ConfigurationError, match="not an http"):
        resolve_endpoint(base_url="ftp://x")


def test_key_order_argument_env_dotenv_credentials(tmp_path, monkeypatch):
    home = tmp_path / "h"
    (home / ".alibabacloud").mkdir(parents=True)
    (home / ".alibabacloud" / "credentials").write_text("[default]\ndashscope_api_key = sk-cred\n")
    cwd = tmp_path / "w"
    cwd.mkdir()
    assert find_api_key(cwd=cwd, home=home).get_secret_value() == "sk-cred"
    (cwd / ".env").write_text('# comment\nexport DASHSCOPE_API_KEY="sk-dotenv"\n')
    assert find_api_key(cwd=cwd, home=home).get_secret_value() == "sk-dotenv"
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-env")
    assert find_api_key(cwd=cwd, home=home).get_secret_value() == "sk-env"
    assert find_api_key("sk-arg", cwd=cwd, home=home).get_secret_value() == "sk-arg"
    assert find_api_key(SecretStr("sk-secret"), cwd=cwd, home=home).get_secret_value() == "sk-secret"


def test_credentials_without_section(tmp_path):
    (tmp_path / ".alibabacloud").mkdir()
    (tmp_path / ".alibabacloud" / "credentials").write_text("dashscope_api_key=sk-plain\n")
    assert find_api_key(cwd=tmp_path, home=tmp_path).get_secret_value() == "sk-plain"


def test_missing_key_says_where_it_looked(tmp_path):
    with pytest.raises(ConfigurationError) as info:
        find_api_key(cwd=tmp_path, home=tmp_path)
    text = str(info.value)
    assert "api_key argument" in text and "DASHSCOPE_API_KEY" in text
    assert str(tmp_path / ".env") in text
    assert str(tmp_path / ".alibabacloud" / "credentials") in text
    assert isinstance(info.value, ValueError)


def test_key_is_secret_in_repr(tmp_path):
    key = find_api_key("sk-very-secret-value", cwd=tmp_path, home=tmp_path)
    assert "sk-very-secret-value" not in repr(key) and "sk-very-secret-value" not in str(key)
