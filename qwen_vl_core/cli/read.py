"""``qwen-vl read``: documents and images to LlamaIndex nodes. Lives in ``llama_index_qwen_vl.cli``
(it needs the ``llama-index`` extra); this module only hands the arguments over."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._common import EXIT_USAGE, CLIError

__all__ = ["add_parser", "delegate", "MISSING_EXTRA"]

MISSING_EXTRA = "qwen-vl read needs the llama-index extra: pip install 'qwen-vl-integrations[llama-index,pdf]'"
# Modules whose absence means "the extra is not installed" rather than a bug.
_EXTRA_MODULES = ("llama_index", "pypdfium2", "llama_index_qwen_vl.cli")


def add_parser(sub: Any) -> None:
    """Listed in ``qwen-vl --help``; ``main`` hands ``read ...`` over before argparse sees it."""
    sub.add_parser(
        "read",
        help="read documents/images into LlamaIndex nodes (needs the llama-index extra; see 'qwen-vl read --help')",
        add_help=False,
    )


def delegate(argv: Sequence[str]) -> int:
    try:
        from llama_index_qwen_vl.cli import main as read_main  # type: ignore[import-not-found]
    except ImportError as exc:
        missing = getattr(exc, "name", None) or ""
        if not missing or missing.startswith(_EXTRA_MODULES) or "llama_index_qwen_vl.cli" in str(exc):
            raise CLIError(MISSING_EXTRA, EXIT_USAGE) from None
        raise
    try:
        code = read_main(list(argv))
    except SystemExit as exc:  # an argparse-based main may exit instead of returning
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USAGE)
    return int(code or 0)
