"""What every subcommand shares: the exit-code error, a redacting console, connection options
and client construction."""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any, TextIO

from qwen_vl_core.config import API_KEY_ENV, REGIONS
from qwen_vl_core.errors import ConfigurationError
from qwen_vl_core.transport import DEFAULT_TIMEOUT

__all__ = [
    "EXIT_OK",
    "EXIT_USAGE",
    "EXIT_API",
    "CLIError",
    "Console",
    "Parser",
    "add_connection_args",
    "api_key_from_args",
    "connection_options",
    "make_client",
]

EXIT_OK = 0
EXIT_USAGE = 2  # usage or input error: nothing was sent, or the request could not be built
EXIT_API = 3  # the API call failed, or its answer was unusable (partial, not JSON, schema mismatch)

_MIN_SECRET = 4


class CLIError(Exception):
    """An error with its exit code; ``main`` prints it as one line."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``qwen-vl: error: ...``) and exit code 2 via
    :class:`CLIError`, so ``main(argv)`` returns instead of exiting."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise CLIError(f"{message} (see '{self.prog} --help')", EXIT_USAGE)


class Console:
    """stdout/stderr writer that scrubs every registered secret from everything it prints.

    The streams are looked up at write time so that replaced ``sys.stdout`` (tests) is honoured.
    """

    def __init__(self) -> None:
        self._secrets: list[str] = []
        self._line_open = {"out": False, "err": False}

    def add_secret(self, value: str | None) -> None:
        if value and len(value) >= _MIN_SECRET and value not in self._secrets:
            self._secrets.append(value)
            self._secrets.sort(key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    @staticmethod
    def _stream(name: str) -> TextIO:
        return sys.stdout if name == "out" else sys.stderr

    def _write(self, name: str, text: str, end: str) -> None:
        data = self.scrub(text) + end
        if not data:
            return
        stream = self._stream(name)
        try:
            stream.write(data)
        except UnicodeEncodeError:  # a console that cannot show the answer's script
            encoding = getattr(stream, "encoding", None) or "ascii"
            stream.write(data.encode(encoding, "replace").decode(encoding))
        stream.flush()
        self._line_open[name] = not data.endswith("\n")

    def out(self, text: str = "", end: str = "\n") -> None:
        self._write("out", text, end)

    def err(self, text: str = "", end: str = "\n") -> None:
        self._write("err", text, end)

    def end_lines(self) -> None:
        """Finish a line left open by streamed text, on both streams."""
        for name in ("out", "err"):
            if self._line_open[name]:
                self._write(name, "", "\n")

    def error(self, message: str) -> None:
        self.end_lines()
        self.err(f"qwen-vl: error: {one_line(message)}")

    def warn(self, message: str) -> None:
        self.end_lines()
        self.err(f"qwen-vl: warning: {one_line(message)}")

    def note(self, message: str) -> None:
        self.end_lines()
        self.err(f"qwen-vl: {one_line(message)}")


def one_line(text: str) -> str:
    return re.sub(r"\s+", " ", str(text)).strip()


# ---------------------------------------------------------------- connection options


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "connection",
        "the key comes from DASHSCOPE_API_KEY, QWEN_API_KEY, .env in the working directory or the "
        "project root, or ~/.alibabacloud/credentials; it is never printed",
    )
    group.add_argument(
        "--region",
        help=f"{', '.join(REGIONS)} (default beijing; aliases such as intl); or DASHSCOPE_REGION. "
        "Checked even with --base-url",
    )
    group.add_argument("--base-url", help="another endpoint (DashScope host, or any OpenAI-compatible /v1 base); or DASHSCOPE_BASE_URL")
    group.add_argument("--workspace", help="DashScope workspace id (sent as X-DashScope-WorkSpace)")
    group.add_argument(
        "--api-key-env",
        metavar="NAME",
        help=f"read the API key from this environment variable instead of {API_KEY_ENV}",
    )
    group.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        default=DEFAULT_TIMEOUT,
        help=f"seconds per network operation (default {DEFAULT_TIMEOUT:g}, above the server's 180 s limit)",
    )


def api_key_from_args(args: argparse.Namespace) -> str | None:
    name = getattr(args, "api_key_env", None)
    if not name:
        return None
    value = os.environ.get(name)
    if not value:
        raise ConfigurationError(f"--api-key-env {name}: the environment variable {name} is not set or empty")
    return value


def connection_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of :func:`add_connection_args` as client keyword arguments (``api_key``,
    ``region``, ``base_url``, ``workspace``, ``timeout``), checked."""
    if args.timeout is not None and args.timeout <= 0:
        raise CLIError(f"--timeout must be positive, got {args.timeout}")
    return {
        "api_key": api_key_from_args(args),
        "region": args.region,
        "base_url": args.base_url,
        "workspace": args.workspace,
        "timeout": args.timeout,
    }


def make_client(
    args: argparse.Namespace,
    console: Console,
    *,
    max_retries: int | None,
    retry_backoff_s: float | None,
    http_client: Any = None,
) -> Any:
    from qwen_vl_core.client import QwenVLClient

    kwargs: dict[str, Any] = {
        **connection_options(args),
        "upload": bool(getattr(args, "upload_files", False)),
        "resize": not getattr(args, "no_resize", False),
    }
    if http_client is not None:  # --save-raw: a client whose transport keeps the raw response
        kwargs["http_client"] = http_client
    if max_retries is not None:
        kwargs["max_retries"] = max_retries
    if retry_backoff_s is not None:
        kwargs["retry_initial_delay"] = retry_backoff_s
        kwargs["retry_max_delay"] = max(8.0, retry_backoff_s * 8)
    client = QwenVLClient(**kwargs)
    console.add_secret(client.api_key.get_secret_value())
    return client
