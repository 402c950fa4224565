"""Regions, endpoints and API-key discovery."""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr

from .errors import ConfigurationError

__all__ = ["REGIONS", "Endpoint", "resolve_endpoint", "find_api_key", "API_KEY_ENV"]

API_KEY_ENV = "DASHSCOPE_API_KEY"
BASE_URL_ENV = "DASHSCOPE_BASE_URL"
REGION_ENV = "DASHSCOPE_REGION"

REGIONS: dict[str, str] = {
    "beijing": "https://dashscope.aliyuncs.com",
    "singapore": "https://dashscope-intl.aliyuncs.com",
    "us": "https://dashscope-us.aliyuncs.com",
    "hongkong": "https://cn-hongkong.dashscope.aliyuncs.com",
}
_REGION_ALIASES = {
    "cn-beijing": "beijing",
    "cn": "beijing",
    "china": "beijing",
    "intl": "singapore",
    "international": "singapore",
    "ap-southeast-1": "singapore",
    "us-east-1": "us",
    "virginia": "us",
    "cn-hongkong": "hongkong",
    "hk": "hongkong",
    "hong-kong": "hongkong",
}
_COMPAT_PATH = "/compatible-mode/v1"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where requests go. ``root`` is scheme://host[:port]; ``compatible_base`` is the
    OpenAI-compatible base (``/chat/completions`` is appended)."""

    root: str
    compatible_base: str

    @property
    def chat_url(self) -> str:
        return self.compatible_base + "/chat/completions"

    @property
    def native_url(self) -> str:
        return self.root + "/api/v1/services/aigc/multimodal-generation/generation"

    @property
    def upload_policy_url(self) -> str:
        return self.root + "/api/v1/uploads"


def normalize_region(region: str) -> str:
    key = region.strip().lower().replace("_", "-")
    key = _REGION_ALIASES.get(key, key)
    if key not in REGIONS:
        choices = ", ".join([*REGIONS, "intl"])
        raise ConfigurationError(f"unknown region {region!r}; choose one of: {choices}")
    return key


def resolve_endpoint(region: str | None = None, base_url: str | None = None) -> Endpoint:
    """``base_url`` (argument, then ``DASHSCOPE_BASE_URL``) wins over ``region``
    (argument, then ``DASHSCOPE_REGION``, then ``beijing``).

    ``base_url`` may be a bare host (``https://dashscope-intl.aliyuncs.com``), the compatible
    base (``.../compatible-mode/v1``), the native base (``.../api/v1``) or any OpenAI-compatible
    base ending in ``/v1`` (vLLM, SGLang).
    """
    base_url = base_url or os.environ.get(BASE_URL_ENV) or None
    if base_url:
        url = base_url.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(f"base_url {base_url!r} is not an http(s) URL")
        root = f"{parts.scheme}://{parts.netloc}"
        path = parts.path
        if path.endswith("/chat/completions"):
            path = path[: -len("/chat/completions")]
        if path in ("", "/"):
            return Endpoint(root, root + _COMPAT_PATH)
        if path.endswith("/api/v1"):
            return Endpoint(root, root + _COMPAT_PATH)
        return Endpoint(root, root + path)
    region = region or os.environ.get(REGION_ENV) or "beijing"
    root = REGIONS[normalize_region(region)]
    return Endpoint(root, root + _COMPAT_PATH)


def _read_dotenv(path: Path) -> str | None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        line = line.strip()
        if line.startswith("export "):
            line = line[7:].lstrip()
        name, sep, value = line.partition("=")
        if sep and name.strip() == API_KEY_ENV:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            else:
                value = value.split(" #", 1)[0].strip()
            return value or None
    return None


def _read_credentials(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    parser = configparser.ConfigParser()
    try:
        parser.read_string(text if text.lstrip().startswith("[") else "[default]\n" + text)
    except configparser.Error:
        return None
    for section in ["default", *parser.sections()]:
        if parser.has_option(section, "dashscope_api_key"):
            value = parser.get(section, "dashscope_api_key").strip().strip("'\"")
            if value:
                return value
    return None


def find_api_key(
    api_key: str | SecretStr | None = None,
    *,
    cwd: Path | None = None,
    home: Path | None = None,
) -> SecretStr:
    """Find the key: argument, ``DASHSCOPE_API_KEY``, ``./.env``, ``~/.alibabacloud/credentials``.

    The error for a missing key lists every place looked at, never a value.
    """
    if isinstance(api_key, SecretStr):
        api_key = api_key.get_secret_value()
    if api_key:
        return SecretStr(api_key)
    env_value = os.environ.get(API_KEY_ENV)
    if env_value:
        return SecretStr(env_value)
    dotenv = (cwd or Path.cwd()) / ".env"
    value = _read_dotenv(dotenv)
    if value:
        return SecretStr(value)
    credentials = (home or Path.home()) / ".alibabacloud" / "credentials"
    value = _read_credentials(credentials)
    if value:
        return SecretStr(value)
    raise ConfigurationError(
        "no DashScope API key found. Looked at: the api_key argument, the "
        f"{API_KEY_ENV} environment variable, {dotenv} ({API_KEY_ENV}=...), and "
        f"{credentials} (dashscope_api_key = ...). Set one of them; keys are per region."
    )
