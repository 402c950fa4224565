"""Regions, endpoints and API-key discovery."""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr

from .errors import ConfigurationError, register_secret

__all__ = [
    "REGIONS", "Endpoint", "resolve_endpoint", "find_api_key", "API_KEY_ENV", "ALT_API_KEY_ENV", "API_KEY_ENVS",
    "project_root", "key_places", "KeyToFind", "SecretHeaders",
]

API_KEY_ENV = "DASHSCOPE_API_KEY"
#: Also accepted, after :data:`API_KEY_ENV` (the name seed 002's scripts read first).
ALT_API_KEY_ENV = "QWEN_API_KEY"
#: Environment variables holding a key, in the order they are read.
API_KEY_ENVS = (API_KEY_ENV, ALT_API_KEY_ENV)
#: What marks a project's root folder for the ``.env`` search.
PROJECT_MARKERS = ("pyproject.toml", ".git")
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
    region = region or os.environ.get(REGION_ENV) or None
    if region is not None:  # checked even when base_url decides the host: a typo is never ignored
        region = normalize_region(region)
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
    root = REGIONS[region or "beijing"]
    return Endpoint(root, root + _COMPAT_PATH)


def _read_dotenv(path: Path, env_name: str = API_KEY_ENV) -> str | None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        line = line.strip()
        if line.startswith("export "):
            line = line[7:].lstrip()
        name, sep, value = line.partition("=")
        if sep and name.strip() == env_name:
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


def project_root(start: Path | None = None) -> Path | None:
    """The nearest folder at or above ``start`` (default: the working directory) holding
    ``pyproject.toml`` or ``.git``, or ``None``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if any((folder / marker).exists() for marker in PROJECT_MARKERS):
            return folder
    return None


def key_places(*, cwd: Path | None = None, home: Path | None = None) -> list[Path]:
    """The files looked in for a key, in order: ``.env`` in the working directory, ``.env`` in the
    project root (when that is another folder), then ``~/.alibabacloud/credentials``."""
    here = cwd or Path.cwd()
    places = [here / ".env"]
    root = project_root(here)
    if root is not None and root != here.resolve():
        places.append(root / ".env")
    places.append((home or Path.home()) / ".alibabacloud" / "credentials")
    return places


def _read_key_file(path: Path) -> str | None:
    if path.name == "credentials":
        return _read_credentials(path)
    for name in API_KEY_ENVS:
        value = _read_dotenv(path, name)
        if value:
            return value
    return None


def find_api_key(
    api_key: str | SecretStr | None = None,
    *,
    cwd: Path | None = None,
    home: Path | None = None,
) -> SecretStr:
    """Find the key: the argument, ``DASHSCOPE_API_KEY``, ``QWEN_API_KEY``, ``.env`` in the working
    directory, ``.env`` in the project root (the nearest folder above holding ``pyproject.toml`` or
    ``.git``), ``~/.alibabacloud/credentials``. A ``.env`` file may name the key
    ``DASHSCOPE_API_KEY`` or ``QWEN_API_KEY``.

    The key found is registered with :func:`qwen_vl_core.errors.register_secret`, so no error
    message this package builds can carry it. The error for a missing key lists every place
    looked at, never a value.
    """
    if isinstance(api_key, SecretStr):
        api_key = api_key.get_secret_value()
    value = api_key or next((os.environ[name] for name in API_KEY_ENVS if os.environ.get(name)), None)
    places = key_places(cwd=cwd, home=home)
    if not value:
        value = next((found for found in map(_read_key_file, places) if found), None)
    if value:
        register_secret(value)
        return SecretStr(value)
    files = [
        f"{path} (dashscope_api_key = ...)" if path.name == "credentials" else f"{path} ({API_KEY_ENV}=... or {ALT_API_KEY_ENV}=...)"
        for path in places
    ]
    raise ConfigurationError(
        "no DashScope API key found. Looked at: the api_key argument, the environment variables "
        f"{API_KEY_ENV} and {ALT_API_KEY_ENV}, " + ", ".join(files[:-1]) + f", and {files[-1]}. "
        "Set one of them; keys are per region."
    )


class KeyToFind(SecretStr):
    """The key of an object that was unpickled: keys are never pickled, so it is looked up again
    the documented way (``DASHSCOPE_API_KEY``, ``./.env``, ``~/.alibabacloud/credentials``) when
    first needed, in the process that uses it. Until then it is empty; if nothing is found,
    :meth:`get_secret_value` raises :class:`ConfigurationError` saying where it looked."""

    def __init__(self) -> None:
        super().__init__("")
        self._found: SecretStr | None = None

    def get_secret_value(self) -> str:
        if self._found is None:
            try:
                self._found = find_api_key()
            except ConfigurationError as exc:
                raise ConfigurationError(
                    f"{exc.message} (API keys are never pickled: an unpickled client or model looks "
                    "for its key again in the process that uses it)"
                ) from None
        return self._found.get_secret_value()

    def __repr__(self) -> str:
        return "KeyToFind()"

    def __str__(self) -> str:
        return "**********" if self._found is not None else ""

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def __len__(self) -> int:
        return len(self._found.get_secret_value()) if self._found is not None else 0

    def __reduce__(self):  # never pickles what it found
        return (KeyToFind, ())


class SecretHeaders(dict):
    """HTTP headers whose ``repr`` hides credentials (``Authorization: Bearer ***``); otherwise a
    plain ``dict`` (httpx sends the real values)."""

    _HIDDEN = ("authorization", "x-api-key", "proxy-authorization")

    def __repr__(self) -> str:
        shown = {k: _hidden_value(k, v) if str(k).lower() in self._HIDDEN else v for k, v in self.items()}
        return repr(shown)

    __str__ = __repr__

    def __reduce__(self):  # a pickled copy keeps no credential
        return (SecretHeaders, ({k: v for k, v in self.items() if str(k).lower() not in self._HIDDEN},))


def _hidden_value(name: str, value: str) -> str:
    scheme, sep, _ = str(value).partition(" ")
    return f"{scheme} ***" if sep and scheme.lower() in ("bearer", "basic", "token") else "***"
