"""The ``qwen-vl`` command: Qwen-VL from the shell (console script ``qwen-vl = "qwen_vl_cli:main"``).

Subcommands: ``analyze`` (images / video, JSON mode, JSON Schema), ``reason`` (QVQ, streamed,
reasoning apart from the answer), ``ocr`` (qwen-vl-ocr built-in tasks), ``tokens`` (token
estimates, no API call) and ``read`` (images, TIFFs and PDFs to JSON lines of page records,
through :mod:`qwen_vl_core.documents`; PDFs need the pdf extra).

This package is the top floor: it imports ``qwen_vl_core`` only; nothing below imports it. Exit codes, connection flags, error printing
and secret scrubbing live in :mod:`qwen_vl_cli._common` and serve every subcommand.

Exit codes: 0 success; 2 usage or input error (bad arguments or JSON, missing files, input
limits, no API key, a missing extra); 3 API error (the server or the connection failed, or the
answer was partial or not the JSON asked for). Errors are one line on stderr, those with exit
code 2 ending with ``(see 'qwen-vl COMMAND --help')``; the API key is never printed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from qwen_vl_core import __version__
from qwen_vl_core.config import API_KEY_ENVS
from qwen_vl_core.errors import (
    APIConnectionError,
    AuthenticationError,
    ConfigurationError,
    InputValidationError,
    PermissionDeniedError,
    QwenVLError,
    RateLimitError,
)

from ._common import EXIT_API, EXIT_USAGE, CLIError, Console, Parser

__all__ = ["main", "build_parser", "EXIT_API", "EXIT_USAGE"]

PROG = "qwen-vl"
COMMANDS = ("analyze", "reason", "ocr", "tokens", "read")


def build_parser() -> argparse.ArgumentParser:
    from . import analyze, ocr, read, reason, tokens

    parser = Parser(
        prog=PROG,
        description="Qwen-VL (Alibaba Cloud DashScope / Model Studio) from the command line.",
        epilog="Run 'qwen-vl COMMAND --help' for the request fields and flags of a command.\n"
        "Exit codes: 0 success, 2 usage or input error, 3 API error.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    analyze.add_parser(sub)
    reason.add_parser(sub)
    ocr.add_parser(sub)
    tokens.add_parser(sub)
    read.add_parser(sub)
    __import__("qwen_vl_cli.ground").ground.add_parser(sub)  # qwen-vl ground (boxes in pixels of the image)
    return parser


# Rewrites of core hints into the flags that do the same thing here.
_FLAG_HINTS = (
    ("pass upload=True to upload it", "add --upload-files to upload it"),
    ("pass resize=True or lower max_pixels", "drop --no-resize or lower max_pixels"),
    ("(allow_local_files=False)", ""),
)


def _input_message(exc: QwenVLError) -> str:
    message = str(exc)
    for old, new in _FLAG_HINTS:
        message = message.replace(old, new)
    return message


def _api_message(exc: QwenVLError) -> str:
    message = str(exc)
    if isinstance(exc, AuthenticationError):
        message += "; check the API key and that it belongs to this region (--region, or --base-url)"
    elif isinstance(exc, PermissionDeniedError):
        message += "; check the account's access to this model"
    elif isinstance(exc, RateLimitError):
        message += "; rate limited even after retrying, try again later or raise max_retries"
    elif isinstance(exc, APIConnectionError) and not exc.status:
        message += "; check the network, --region / --base-url and --timeout"
    return message


def _register_env_secrets(console: Console, argv: Sequence[str]) -> None:
    """Scrub keys from everything printed, even before a client exists."""
    for env_name in API_KEY_ENVS:
        console.add_secret(os.environ.get(env_name))
    for i, arg in enumerate(argv):
        name = None
        if arg == "--api-key-env" and i + 1 < len(argv):
            name = argv[i + 1]
        elif arg.startswith("--api-key-env="):
            name = arg.split("=", 1)[1]
        if name:
            console.add_secret(os.environ.get(name))


def _run(argv: list[str], console: Console) -> int:
    parser = build_parser()
    if not argv:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help / --version
        return exc.code if isinstance(exc.code, int) else 0
    except CLIError as exc:
        # Unknown options are reported by the top-level parser: point at the subcommand's help.
        if argv[0] in COMMANDS:
            raise CLIError(str(exc).replace(f"'{PROG} --help'", f"'{PROG} {argv[0]} --help'"), exc.code) from None
        raise
    if getattr(args, "run", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return int(args.run(args, console))


def _subcommand(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` runs, if it names one."""
    if not argv or argv[0].startswith("-"):
        return None
    actions = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return argv[0] if any(argv[0] in a.choices for a in actions) else None


def usage_error(message: str, command: str | None) -> str:
    """An exit-2 error of a subcommand, ending with where its help is (once)."""
    if command is None or message.endswith("--help')"):
        return message
    return f"{message} (see '{PROG} {command} --help')"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``qwen-vl`` with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    Every error is one line on stderr. Those with exit code 2 (usage or input: nothing was sent, or
    nothing could be) end with ``(see 'qwen-vl COMMAND --help')`` when a subcommand was named."""
    argv = list(sys.argv[1:] if argv is None else argv)
    console = Console()
    _register_env_secrets(console, argv)
    try:
        command = _subcommand(argv)
    except Exception:  # noqa: BLE001 - the parser itself failing is reported below, by _run
        command = None
    try:
        return _run(argv, console)
    except CLIError as exc:
        console.error(usage_error(str(exc), command) if exc.code == EXIT_USAGE else str(exc))
        return exc.code
    except (InputValidationError, ConfigurationError) as exc:
        console.error(usage_error(_input_message(exc), command))
        return EXIT_USAGE
    except QwenVLError as exc:
        console.error(_api_message(exc))
        return EXIT_API
    except ValueError as exc:  # a check outside the error hierarchy (e.g. in Pillow)
        console.error(usage_error(str(exc), command))
        return EXIT_USAGE
    except KeyboardInterrupt:
        console.error("interrupted")
        return 130
    except BrokenPipeError:  # `qwen-vl ... | head`: stop quietly (and silence the flush at exit)
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 1
    except Exception as exc:  # a bug: one line (set QWEN_VL_DEBUG=1 for the traceback)
        if os.environ.get("QWEN_VL_DEBUG"):
            import traceback

            console.err(traceback.format_exc())
        console.error(f"unexpected {type(exc).__name__}: {exc} (please report it; QWEN_VL_DEBUG=1 shows the traceback)")
        return 1
