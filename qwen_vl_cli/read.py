"""``qwen-vl read PATH... --mode ... --out pages.jsonl``: images and scanned PDFs to JSON lines.

The pages are read by the core's :class:`qwen_vl_core.documents.DocumentPipeline`; no LangChain or
LlamaIndex code is imported. Each output line is ``PageResult.to_dict()`` of a page read (written
as it arrives, in file and page order); each failure is one scrubbed line on stderr, then a
summary. Parser, connection flags, exit codes, error lines and secret scrubbing are shared
(:mod:`qwen_vl_cli._common`). Exit codes: 0 every page read (or ``--on-error skip``), 2 usage or
input error (nothing sent), 3 some pages failed (the others are written) or an error stopped the run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager, nullcontext
from pathlib import Path
from typing import Any, ContextManager

from qwen_vl_core.documents import MODES
from qwen_vl_core.documents.pipeline import MAX_DPI, MAX_WORKERS, MIN_DPI
from qwen_vl_core.errors import QwenVLError
from qwen_vl_core.models import DEFAULT_MODEL, get_capabilities
from qwen_vl_core.protocol import OCR_TASKS

from ._common import EXIT_API, EXIT_OK, EXIT_USAGE, CLIError, Console, add_connection_args, make_client

__all__ = ["add_parser", "run", "main", "MODES", "DPI_RANGE", "missing_extras", "MISSING_PDF_EXTRA"]

DEFAULT_MODE = "caption+ocr"
#: What ``--dpi`` accepts (dots per inch): the pipeline's range.
DPI_RANGE = (float(MIN_DPI), float(MAX_DPI))
#: The pipeline's name in the core's log lines.
PIPELINE_NAME = "qwen-vl read"

_PDF_SUFFIX = ".pdf"
#: The message when pypdfium2 (the ``pdf`` extra) is not installed and a PDF is to be read.
MISSING_PDF_EXTRA = "qwen-vl read needs pypdfium2 (the pdf extra) to read PDFs: pip install pypdfium2"

# Rewrites of core hints into the flags that do the same thing here.
_FLAG_HINTS = (("pass password=...", "give it with --password-env NAME or --password"),)

DESCRIPTION = """\
Read images and scanned PDFs with a Qwen-VL model, page by page: one JSON line per page read,
written as soon as it is read, in file and page order. Directories are searched for .pdf, .png,
.jpg, .jpeg, .bmp, .tif, .tiff, .webp and .heic/.heif files. Each failed page is one line on stderr,
then a summary line. PDFs need pypdfium2 (the pdf extra): pip install pypdfium2

A scanned PDF page's own JPEG is sent as it is; other PDF pages are rendered at the size the model
looks at (its pixel budget, at most 300 dpi; --dpi caps it). Multi-page TIFFs give one line per
frame.

modes:
  caption       a description for search
  ocr           the text, verbatim (with a qwen-vl-ocr model: its built-in text_recognition)
  markdown      the page as Markdown (headings, lists, tables, formulas)
  caption+ocr   both, under "## Description" and "## Text" (default)

each line is a page record:
  {"id": "scan.pdf#page=2", "text": "...", "metadata": {"file_path": "scan.pdf",
   "file_name": "scan.pdf", "page_label": "2", "total_pages": 3, "width": 1240, "height": 1754,
   "mode": "ocr", "model": "...", "request_id": "...", "image_sha256": "...",
   "page_path": "embedded", "input_tokens": 2841, "output_tokens": 512, "total_tokens": 3353,
   "image_tokens": 2812, "cached": false, "seconds": 2.31}}
  (page_path: how the page was sent: embedded (a scan's own JPEG), rendered, frame, file)

to framework documents (record = json.loads(line)):
  LangChain:   langchain_core.documents.Document(page_content=record["text"], metadata=record["metadata"])
  LlamaIndex:  llama_index.core.Document(text=record["text"], metadata=record["metadata"], id_=record["id"])
"""

EPILOG = """\
examples:
  qwen-vl read scans/ --mode markdown --out pages.jsonl --cache-dir .qwen-cache
  qwen-vl read invoice.pdf photo.jpg --mode ocr --workers 8 --on-error skip > pages.jsonl
  PDF_PASSWORD=... qwen-vl read locked.pdf --password-env PDF_PASSWORD --out pages.jsonl
  qwen-vl read forms/ --model qwen-vl-ocr --ocr-task document_parsing --out pages.jsonl

exit codes: 0 success (or --on-error skip), 2 usage or input error (nothing sent),
3 some pages failed (the rest are written) or an error stopped the run
"""


def _positive_int(text: str, most: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    if most is not None and value > most:
        raise argparse.ArgumentTypeError(f"must be at most {most}, got {value}")
    return value


def _retries(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _workers(text: str) -> int:
    return _positive_int(text, MAX_WORKERS)


def _dpi(text: str) -> float:
    low, high = DPI_RANGE
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g} dpi, got {text}")
    return value


def _processes(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a number of processes (0: none), got {text!r}")
    return value


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``read`` on the ``qwen-vl`` subparsers; ``args.run(args, console)`` runs it."""
    p = sub.add_parser(
        "read",
        help="read images and scanned PDFs page by page into JSON lines (id, text, metadata)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
    p.add_argument("--mode", choices=MODES, default=DEFAULT_MODE, help=f"what to extract (default {DEFAULT_MODE})")
    p.add_argument("--prompt", help="replace the mode's built-in instruction")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model name (default {DEFAULT_MODEL})")
    p.add_argument(
        "--ocr-task",
        choices=sorted(OCR_TASKS),
        metavar="TASK",
        help=f"a qwen-vl-ocr built-in task for every page (needs a qwen-vl-ocr --model): {', '.join(sorted(OCR_TASKS))}",
    )
    p.add_argument("--out", "-o", default="-", metavar="FILE", help="JSON lines output (default: stdout)")
    p.add_argument("--max-tokens", type=_positive_int, help="output limit per page")
    p.add_argument("--workers", type=_workers, default=4, help=f"pages in flight at once, up to {MAX_WORKERS} (default 4)")
    p.add_argument("--cache-dir", metavar="DIR", help="answer cache: a re-run only pays for new pages")
    p.add_argument(
        "--on-error",
        choices=("raise", "skip"),
        default="raise",
        help="raise: exit 3 when a page failed (default); skip: report failures, exit 0",
    )
    p.add_argument("--no-recursive", action="store_true", help="do not descend into subdirectories")
    progress = p.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress", dest="progress", action="store_true", default=None, help="show a progress bar (default: on a terminal)"
    )
    progress.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")

    pdf = p.add_argument_group("PDF pages")
    pdf.add_argument(
        "--dpi",
        type=_dpi,
        metavar="DPI",
        help=f"highest resolution for rendered PDF pages, {DPI_RANGE[0]:g} to {DPI_RANGE[1]:g} "
        "(default: the model's pixel budget, at most 300 dpi)",
    )
    pdf.add_argument(
        "--page-format", choices=("jpeg", "png"), default="jpeg", help="encoding of rendered pages (default jpeg)"
    )
    pdf.add_argument(
        "--processes",
        type=_processes,
        default="auto",
        metavar="N|auto",
        help="processes rendering PDF pages (default auto: when more than one core is usable and a PDF has "
        "many pages to render; 0: none)",
    )
    secret = pdf.add_mutually_exclusive_group()
    secret.add_argument(
        "--password-env",
        metavar="NAME",
        help="read the password of encrypted PDFs from this environment variable (never printed)",
    )
    secret.add_argument(
        "--password",
        metavar="PASSWORD",
        help="password of encrypted PDFs (never printed; other users can see it in the process list, "
        "--password-env cannot be seen)",
    )

    add_connection_args(p)
    p.add_argument("--max-retries", type=_retries, default=2, help="retries for 408/409/429/5xx, 0 or more (default 2)")
    p.set_defaults(run=run)
    return p


# ---------------------------------------------------------------- checks before anything is sent


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
    """The extras that reading ``paths`` needs and that are not installed (``[]`` when none):
    only ``pdf`` (pypdfium2), and only when a PDF is among the inputs."""
    if _installed("pypdfium2") or not any(_has_pdf(p, recursive=recursive) for p in paths):
        return []
    return ["pdf"]


def _password(args: argparse.Namespace) -> str | None:
    if args.password_env:
        value = os.environ.get(args.password_env)
        if not value:
            name = args.password_env
            raise CLIError(f"--password-env {name}: the environment variable {name} is not set or empty")
        return value
    if args.password == "":
        raise CLIError("--password is empty")
    return args.password


def _check_ocr_task(args: argparse.Namespace) -> None:
    if not args.ocr_task:
        return
    caps = get_capabilities(args.model)
    if caps.known and not caps.ocr_tasks:
        raise CLIError(f"--ocr-task needs a qwen-vl-ocr model (--model qwen-vl-ocr), not {args.model!r}")


# ---------------------------------------------------------------- lines on stderr


def _message(error: BaseException) -> str:
    """``Type: message`` of a page's error, with core hints turned into this command's flags."""
    text = str(error)
    for old, new in _FLAG_HINTS:
        text = text.replace(old, new)
    return f"{type(error).__name__}: {text}"


def _above_bar(show: bool) -> ContextManager[Any]:
    """Clear the progress bar while a line is written to stderr (it is drawn again after)."""
    if not show:
        return nullcontext()
    from tqdm.auto import tqdm

    return tqdm.external_write_mode(file=sys.stderr)


class _CoreWarnings(logging.Handler):
    """The core's warnings during a run (a corrupt cache entry, render processes unavailable) as
    scrubbed ``qwen-vl: warning:`` lines; the pipeline's own line for each failed page is left
    out, as this command prints every failure itself. Also keeps Python's last-resort handler
    from printing them unscrubbed."""

    def __init__(self, say: Callable[[str], None]) -> None:
        super().__init__(logging.WARNING)
        self.say = say

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.args, tuple) and record.args[:1] == (PIPELINE_NAME,):
            return
        try:
            self.say(record.getMessage())
        except Exception:
            self.handleError(record)


@contextmanager
def _core_warnings(say: Callable[[str], None]) -> Iterator[None]:
    handler, core = _CoreWarnings(say), logging.getLogger("qwen_vl_core")
    core.addHandler(handler)
    try:
        yield
    finally:
        core.removeHandler(handler)


# ---------------------------------------------------------------- the run


def run(args: argparse.Namespace, console: Console) -> int:
    password = _password(args)
    console.add_secret(password)
    if missing_extras(args.paths, recursive=not args.no_recursive):
        raise CLIError(MISSING_PDF_EXTRA, EXIT_USAGE)
    missing_paths = [p for p in args.paths if not os.path.exists(p)]
    if missing_paths:
        raise CLIError(f"no such file or directory: {', '.join(missing_paths)}", EXIT_USAGE)
    _check_ocr_task(args)
    client = make_client(args, console, max_retries=args.max_retries, retry_backoff_s=None)
    try:
        return _read(args, console, client, password)
    finally:
        client.close()


def _output(path: str, console: Console) -> tuple[Callable[[str], None], Callable[[], None]]:
    """A function writing one scrubbed line at once to ``path`` (``-``: stdout), and its closer."""
    if path == "-":
        return console.out, lambda: None
    try:
        fh = open(path, "w", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise CLIError(f"cannot write the output file {path!r}: {exc.strerror or exc}") from None

    def write(line: str) -> None:
        fh.write(console.scrub(line) + "\n")
        fh.flush()

    return write, fh.close


def _pipeline(args: argparse.Namespace, client: Any, password: str | None, progress: Any) -> Any:
    from qwen_vl_core.documents import DocumentPipeline

    return DocumentPipeline(
        client,
        model=args.model,
        mode=args.mode,
        prompt=args.prompt,
        options={"max_tokens": args.max_tokens, "ocr_task": args.ocr_task},
        dpi=args.dpi,
        page_format=args.page_format,
        password=password,
        num_workers=args.workers,
        on_error=args.on_error,
        cache_dir=args.cache_dir,
        recursive=not args.no_recursive,
        processes=args.processes,
        progress=progress,
        name=PIPELINE_NAME,
    )


def _read(args: argparse.Namespace, console: Console, client: Any, password: str | None) -> int:
    from qwen_vl_core.documents import progress_bar

    from . import _api_message

    write, close = _output(args.out, console)
    show = sys.stderr.isatty() if args.progress is None else bool(args.progress)

    def say(print_line: Callable[[str], None], text: str) -> None:
        with _above_bar(show):
            print_line(text)

    written = cached = failed = 0
    stopped = None  # the page whose error stopped the run
    try:
        with progress_bar(show) as progress, _core_warnings(lambda text: say(console.warn, text)):
            with closing(_pipeline(args, client, password, progress).results(args.paths)) as pages:
                for page in pages:
                    if page.ok:
                        write(json.dumps(page.to_dict(), ensure_ascii=False))
                        written, cached = written + 1, cached + page.cached
                        continue
                    failed += 1
                    error = page.error
                    if page.fatal:  # it would fail every page: the pipeline stops here
                        stopped = page
                        text = _api_message(error) if isinstance(error, QwenVLError) else str(error)
                        say(console.error, f"{type(error).__name__}: {text}")
                    else:
                        say(console.err, f"qwen-vl: failed: {page.failure().where()}: {_message(error)}")
    finally:
        close()

    where = "stdout" if args.out == "-" else args.out
    from_cache = f" ({cached} from the cache)" if cached else ""
    summary = f"{written} page(s) written to {where}{from_cache}; {failed} failed"
    if stopped is not None:
        console.note(f"stopped at {stopped.failure().where()}, an error that would fail every page: {summary}")
        return EXIT_API
    if written + failed == 0:
        console.warn(f"no image or PDF files found in {', '.join(args.paths)}")
    console.note(summary)
    return EXIT_API if failed and args.on_error == "raise" else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``qwen-vl read`` with ``argv`` (the words after ``read``; a leading ``read`` is accepted)."""
    from . import main as qwen_vl_main

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["read"]:
        argv = argv[1:]
    return qwen_vl_main(["read", *argv])
