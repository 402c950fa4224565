"""``qwen-vl read PATH... --mode ... --out nodes.jsonl``: run :class:`QwenVLReader` from a shell.

Each line of the output is one Document as ``Document.to_dict()`` JSON (reload with
``Document.from_dict(json.loads(line))``), written as soon as it is read, in file and page order.
With ``--cache-dir`` an interrupted run, started again, only pays for the pages it had not done.

Exit codes: 0 every page read (or ``--on-error skip``), 2 usage or configuration error (nothing
sent), 3 some pages failed (the others are in the output), or an error stopped the run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

__all__ = ["main", "add_parser", "build_parser", "run"]

EXIT_OK, EXIT_USAGE, EXIT_API = 0, 2, 3

DESCRIPTION = """\
Read images and scanned PDFs with a Qwen-VL model: one Document per image or PDF page, written as
JSON lines (Document.to_dict()). Directories are searched for .pdf, .png, .jpg, .jpeg, .bmp, .tif,
.tiff, .webp and .heic files.

modes:
  caption       a description for search
  ocr           the text, verbatim
  markdown      the page as Markdown (headings, lists, tables, formulas)
  caption+ocr   both, under "## Description" and "## Text" (default)
"""

EPILOG = """\
examples:
  qwen-vl read scans/ --mode markdown --out nodes.jsonl --cache-dir .qwen-cache
  qwen-vl read invoice.pdf photo.jpg --mode ocr --workers 8 --on-error skip > nodes.jsonl

The key comes from DASHSCOPE_API_KEY, ./.env or ~/.alibabacloud/credentials; it is never printed.
exit codes: 0 success, 2 usage or configuration error, 3 some pages failed (the rest are written)
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _configure(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from ._prompts import MODES

    p.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
    p.add_argument("--mode", choices=MODES, default="caption+ocr", help="what to extract (default caption+ocr)")
    p.add_argument("--prompt", help="replace the mode's built-in instruction")
    p.add_argument("--model", default="qwen3-vl-plus", help="model name (default qwen3-vl-plus)")
    p.add_argument("--out", "-o", default="-", metavar="FILE", help="JSON lines output (default: stdout)")
    p.add_argument("--dpi", type=float, default=150, help="resolution for PDF pages (default 150)")
    p.add_argument("--workers", type=_positive_int, default=4, help="pages in flight at once (default 4)")
    p.add_argument("--cache-dir", metavar="DIR", help="answer cache: a re-run only pays for new pages")
    p.add_argument(
        "--on-error",
        choices=("raise", "skip"),
        default="raise",
        help="raise: exit 3 when a page failed (default); skip: report failures, exit 0",
    )
    p.add_argument("--max-tokens", type=_positive_int, help="output limit per page")
    p.add_argument("--no-recursive", action="store_true", help="do not descend into subdirectories")
    progress = p.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None, help="show a progress bar")
    progress.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    conn = p.add_argument_group("connection")
    conn.add_argument("--region", help="beijing (default), singapore/intl, us, hongkong; or DASHSCOPE_REGION")
    conn.add_argument(
        "--base-url", help="another endpoint (DashScope host or OpenAI-compatible /v1); or DASHSCOPE_BASE_URL"
    )
    conn.add_argument("--workspace", help="DashScope workspace id")
    conn.add_argument("--api-key-env", metavar="NAME", help="read the key from this environment variable")
    conn.add_argument("--timeout", type=float, default=120.0, help="seconds per HTTP request (default 120)")
    conn.add_argument("--max-retries", type=int, default=2, help="retries for 408/409/429/5xx (default 2)")
    return p


def build_parser(prog: str = "qwen-vl read") -> argparse.ArgumentParser:
    return _configure(
        argparse.ArgumentParser(
            prog=prog, description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
        )
    )


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``read`` on the ``qwen-vl`` command's subparsers; ``args.run(args, console)`` runs it."""
    p = subparsers.add_parser(
        "read",
        help="read images and scanned PDFs into LlamaIndex Documents (JSON lines)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _configure(p)
    p.set_defaults(run=run)
    return p


class _Scrubbed:
    """stderr writer that never shows the key."""

    def __init__(self, secret: str | None, console: Any = None) -> None:
        self.secret = secret if secret and len(secret) >= 4 else None
        self.console = console

    def err(self, text: str) -> None:
        if self.secret:
            text = text.replace(self.secret, "***")
        if self.console is not None and hasattr(self.console, "err"):
            self.console.err(text)
        else:
            print(text, file=sys.stderr, flush=True)


def _api_key(args: argparse.Namespace) -> str | None:
    if not args.api_key_env:
        return None
    value = os.environ.get(args.api_key_env)
    if not value:
        raise ValueError(f"--api-key-env {args.api_key_env}: the environment variable is not set or empty")
    return value


def run(args: argparse.Namespace, console: Any = None) -> int:
    from qwen_vl_core import QwenVLError

    from .errors import QwenVLReaderError
    from .reader import QwenVLReader

    log = _Scrubbed(None, console)
    try:
        reader = QwenVLReader(
            api_key=_api_key(args),
            model=args.model,
            mode=args.mode,
            prompt=args.prompt,
            dpi=args.dpi,
            num_workers=args.workers,
            cache_dir=args.cache_dir,
            on_error=args.on_error,
            max_tokens=args.max_tokens,
            recursive=not args.no_recursive,
            show_progress=sys.stderr.isatty() if args.progress is None else args.progress,
            region=args.region,
            base_url=args.base_url,
            workspace=args.workspace,
            timeout=args.timeout,
            max_retries=args.max_retries,
        )
    except (ValueError, QwenVLError) as exc:  # pydantic ValidationError is a ValueError
        log.err(f"qwen-vl: error: {' '.join(str(exc).split())}")
        return EXIT_USAGE
    secret = reader.client.api_key.get_secret_value()
    log = _Scrubbed(secret, console)
    if console is not None and hasattr(console, "add_secret"):
        console.add_secret(secret)

    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing:
        log.err(f"qwen-vl: error: no such file or directory: {', '.join(missing)}")
        return EXIT_USAGE

    out: TextIO = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")  # noqa: SIM115
    written = 0
    code = EXIT_OK
    try:
        try:
            for doc in reader.lazy_load_data(args.paths):
                out.write(json.dumps(doc.to_dict(), ensure_ascii=False) + "\n")
                out.flush()
                written += 1
        except QwenVLReaderError as exc:
            code = EXIT_API
            if exc.fatal is not None:
                log.err(f"qwen-vl: error: {type(exc.fatal).__name__}: {exc.fatal}")
        except QwenVLError as exc:
            log.err(f"qwen-vl: error: {type(exc).__name__}: {exc}")
            return EXIT_API
    finally:
        if out is not sys.stdout:
            out.close()
    for failure in reader.failures:
        log.err(f"qwen-vl: failed: {failure.where()}: {failure.message}")
    where = "stdout" if args.out == "-" else args.out
    log.err(f"qwen-vl: {written} document(s) written to {where}; {len(reader.failures)} page(s) failed")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``qwen-vl read`` (argv without the ``read`` word)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["read"]:
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    return run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
