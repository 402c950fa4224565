"""The normalized JSON result: building it, keeping Base64 out of it, saving and printing it."""

from __future__ import annotations

import json
import os
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from qwen_vl_core.types import ChatResult

from ._common import CLIError, Console

__all__ = ["DEFAULT_OUTPUT_DIR", "redact", "normalized", "save", "output_path", "plan_output", "emit"]

#: Results are saved here (relative to the working directory) unless ``--output`` says otherwise.
DEFAULT_OUTPUT_DIR = Path("output") / "qwen-vl"

_BASE64ISH = re.compile(r"^[A-Za-z0-9+/=_\-\s]+$")
_LONG_BLOB = 512  # a bare string this long made only of Base64 characters is treated as a blob


def _decoded_size(payload: str) -> int:
    compact = "".join(payload.split())
    return max(0, len(compact) * 3 // 4 - (len(compact) - len(compact.rstrip("="))))


def redact(value: Any) -> Any:
    """A copy of ``value`` with every data URL replaced by ``"<data URL, N bytes>"`` (N decoded bytes)
    and every long bare Base64 string by ``"<base64, N bytes>"``."""
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        if value[:5].lower() == "data:":
            head, sep, payload = value.partition(",")
            if not sep:
                return "<data URL, malformed>"
            if ";base64" in head.lower():
                return f"<data URL, {_decoded_size(payload)} bytes>"
            return f"<data URL, {len(payload)} bytes>"
        if len(value) >= _LONG_BLOB and _BASE64ISH.match(value) and not any(c.isspace() for c in value.strip()[:200]):
            return f"<base64, {_decoded_size(value)} bytes>"
    return value


def normalized(
    result: ChatResult,
    *,
    command: str,
    model: str,
    request: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``{"text", "reasoning", "model", "usage", "request_id", ...,"request"}`` for one call."""
    out: dict[str, Any] = {
        "text": result.text,
        "reasoning": result.reasoning or None,
        "model": result.model or model,
        "usage": result.usage.to_dict() if result.usage is not None else None,
        "request_id": result.request_id,
        "finish_reason": result.finish_reason,
        "partial": result.partial,
    }
    if extra:
        out.update(extra)
    out["command"] = command
    out["created_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    out["request"] = redact(request)
    return out


def output_path(command: str, output: str | None) -> Path:
    """``--output`` (a file, or a directory when it exists as one or ends with a slash), else a
    timestamped file under :data:`DEFAULT_OUTPUT_DIR`."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = f"{command}-{stamp}-{secrets.token_hex(3)}.json"
    if output is None:
        return DEFAULT_OUTPUT_DIR / name
    path = Path(output).expanduser()
    if _names_folder(output) or path.is_dir():
        return path / name
    return path


def _names_folder(output: str) -> bool:
    return output.endswith(("/", os.sep))


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2)


def _is_default(path: Path) -> bool:
    return path.parent == DEFAULT_OUTPUT_DIR


def save(document: dict[str, Any], path: Path, console: Console) -> Path:
    """Write ``document`` to ``path``. Folders: the default :data:`DEFAULT_OUTPUT_DIR` is made with
    its parents; for ``--output DIR/`` only ``DIR`` itself (its parent must exist); for
    ``--output FILE`` none (:func:`plan_output` has checked the folder)."""
    text = console.scrub(dumps(document)) + "\n"
    try:
        if _is_default(path):
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.parent.is_dir():
            path.parent.mkdir()
        tmp = path.with_name(path.name + ".part")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise CLIError(f"cannot write the output file {str(path)!r}: {exc.strerror or exc}") from None
    return path


def plan_output(args: Any, command: str) -> Path | None:
    """Where the result will be saved (``None`` with ``--no-save``), checked before any API call so
    that an unwritable ``--output`` does not cost a request.

    Only folders the user asked for are created: the default ``output/qwen-vl/`` (with its parents),
    or the folder of ``--output DIR/`` (a trailing slash says it is a folder), whose parent must
    exist. ``--output FILE`` in a folder that does not exist is an error, not a new folder tree."""
    if getattr(args, "no_save", False):
        return None
    output = getattr(args, "output", None)
    path = output_path(command, output)
    if path.is_dir():
        raise CLIError(f"--output {str(path)!r} is a directory")
    if output is not None and not path.parent.is_dir():
        folder = path.parent
        if folder.exists():
            raise CLIError(f"cannot write the output file {str(path)!r}: {str(folder)!r} is not a writable directory")
        if not _names_folder(output):
            raise CLIError(
                f"--output {output!r}: the folder {str(folder)!r} does not exist; create it first "
                f"(or end --output with a slash to have that one folder created)"
            )
        if not folder.parent.is_dir():
            raise CLIError(
                f"--output {output!r}: {str(folder.parent)!r} does not exist; only the last folder of "
                "--output DIR/ is created, so create its parent first"
            )
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise CLIError(f"cannot write the output file {str(path)!r}: {str(parent)!r} is not a writable directory")
    return path


def emit(document: dict[str, Any], path: Path | None, args: Any, console: Console) -> None:
    """Save the document to ``path`` (unless ``None``) and print it with ``--print-response``."""
    if path is not None:
        save(document, path, console)
        console.note(f"saved {path}")
    if getattr(args, "print_response", False):
        console.end_lines()
        console.out(dumps(document))
