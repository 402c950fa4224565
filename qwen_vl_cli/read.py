"""``qwen-vl read PATH... --mode ... --out nodes.jsonl``: images and scanned PDFs to JSON lines.

Each line of the output is one Document as ``Document.to_dict()`` JSON (reload with
``Document.from_dict(json.loads(line))``), written as soon as it is read, in file and page order.
With ``--cache-dir`` an interrupted run, started again, only pays for the pages it had not done.

The parser, the connection flags, the exit codes, the error lines and the key scrubbing are the
command's own (:mod:`qwen_vl_cli._common`), as for every subcommand. For now the work is done by
:class:`llama_index_qwen_vl.QwenVLReader`, imported only when a read runs; the extras it needs are
checked first (``llama-index``; ``pdf`` when a PDF is to be read) and a missing one is named.

Exit codes: 0 every page read (or ``--on-error skip``), 2 usage or configuration error (nothing
sent) or a missing extra, 3 some pages failed (the others are in the output), or an error stopped
the run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from qwen_vl_core.models import DEFAULT_MODEL

from ._common import EXIT_API, EXIT_OK, EXIT_USAGE, CLIError, Console, add_connection_args, connection_options

__all__ = ["add_parser", "run", "main", "MODES", "missing_extras", "missing_extra_message", "MISSING_EXTRA"]

#: What ``--mode`` accepts (the reader's modes; a test keeps the two lists equal).
MODES = ("caption", "ocr", "markdown", "caption+ocr")
DEFAULT_MODE = "caption+ocr"

#: The import that each extra provides, in the order the extras are named.
_EXTRA_MODULE = {"llama-index": "llama_index.core", "pdf": "pypdfium2"}
_PDF_SUFFIX = ".pdf"

DESCRIPTION = """\
Read images and scanned PDFs with a Qwen-VL model: one Document per image or PDF page, written as
JSON lines (Document.to_dict()). Directories are searched for .pdf, .png, .jpg, .jpeg, .bmp, .tif,
.tiff, .webp and .heic files. Needs the llama-index extra (and the pdf extra for PDFs):
pip install 'qwen-vl-integrations[llama-index,pdf]'

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

exit codes: 0 success, 2 usage or configuration error, 3 some pages failed (the rest are written)
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``read`` on the ``qwen-vl`` subparsers; ``args.run(args, console)`` runs it."""
    p = sub.add_parser(
        "read",
        help="read images and scanned PDFs into LlamaIndex Documents, as JSON lines (needs the llama-index extra)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
    p.add_argument("--mode", choices=MODES, default=DEFAULT_MODE, help=f"what to extract (default {DEFAULT_MODE})")
    p.add_argument("--prompt", help="replace the mode's built-in instruction")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model name (default {DEFAULT_MODEL})")
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
    add_connection_args(p)
    p.add_argument("--max-retries", type=int, default=2, help="retries for 408/409/429/5xx (default 2)")
    p.set_defaults(run=run)
    return p


# ---------------------------------------------------------------- optional dependencies


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # its parent package is missing, or a broken module entry
        return False


def _is_pdf(path: Path) -> bool:
    if path.suffix.lower() == _PDF_SUFFIX:
        return True
    try:
        with path.open("rb") as fh:
            return fh.read(5) == b"%PDF-"
    except OSError:
        return False


def _has_pdf(path: str, *, recursive: bool) -> bool:
    """Whether reading ``path`` would open a PDF: a PDF file, or a directory holding ``*.pdf``."""
    root = Path(path)
    if not root.is_dir():
        return _is_pdf(root)
    found = root.glob("**/*" if recursive else "*")
    return any(p.suffix.lower() == _PDF_SUFFIX and p.is_file() for p in found)


def missing_extras(paths: Sequence[str], *, recursive: bool = True) -> list[str]:
    """The extras that reading ``paths`` needs and that are not installed (``[]`` when none)."""
    missing = [] if _installed(_EXTRA_MODULE["llama-index"]) else ["llama-index"]
    if not _installed(_EXTRA_MODULE["pdf"]) and any(_has_pdf(p, recursive=recursive) for p in paths):
        missing.append("pdf")
    return missing


def missing_extra_message(extras: Sequence[str]) -> str:
    names = " and ".join(extras)
    what = " to read PDFs" if list(extras) == ["pdf"] else ""
    plural = "s" if len(extras) > 1 else ""
    return f"qwen-vl read needs the {names} extra{plural}{what}: pip install 'qwen-vl-integrations[{','.join(extras)}]'"


#: The message when LlamaIndex is not installed.
MISSING_EXTRA = missing_extra_message(["llama-index"])


# ---------------------------------------------------------------- the run


def run(args: argparse.Namespace, console: Console) -> int:
    extras = missing_extras(args.paths, recursive=not args.no_recursive)
    if extras:
        raise CLIError(missing_extra_message(extras), EXIT_USAGE)
    missing_paths = [p for p in args.paths if not os.path.exists(p)]
    if missing_paths:
        raise CLIError(f"no such file or directory: {', '.join(missing_paths)}", EXIT_USAGE)

    from qwen_vl_core.errors import QwenVLError

    # Temporary: the reader adapter does the work until the core has its own document pipeline.
    from llama_index_qwen_vl import QwenVLReader, QwenVLReaderError

    try:
        reader = QwenVLReader(
            **connection_options(args),
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
            max_retries=args.max_retries,
        )
    except (ValueError, QwenVLError) as exc:  # pydantic's ValidationError is a ValueError
        raise CLIError(str(exc), EXIT_USAGE) from None
    console.add_secret(reader.client.api_key.get_secret_value())

    to_stdout = args.out == "-"
    try:
        out: TextIO = sys.stdout if to_stdout else open(args.out, "w", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise CLIError(f"cannot write the output file {args.out!r}: {exc.strerror or exc}") from None
    written = 0
    code = EXIT_OK
    try:
        try:
            for doc in reader.lazy_load_data(args.paths):
                line = json.dumps(doc.to_dict(), ensure_ascii=False)
                if to_stdout:
                    console.out(line)
                else:
                    out.write(console.scrub(line) + "\n")
                    out.flush()
                written += 1
        except QwenVLReaderError as exc:
            code = EXIT_API
            if exc.fatal is not None:
                console.error(f"{type(exc.fatal).__name__}: {exc.fatal}")
        except QwenVLError as exc:
            raise CLIError(f"{type(exc).__name__}: {exc}", EXIT_API) from None
    finally:
        if not to_stdout:
            out.close()
    for failure in reader.failures:
        console.err(f"qwen-vl: failed: {failure.where()}: {failure.message}")
    where = "stdout" if to_stdout else args.out
    console.note(f"{written} document(s) written to {where}; {len(reader.failures)} page(s) failed")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """``qwen-vl read`` with ``argv`` (the words after ``read``; a leading ``read`` is accepted)."""
    from . import main as qwen_vl_main

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["read"]:
        argv = argv[1:]
    return qwen_vl_main(["read", *argv])
