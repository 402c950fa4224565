"""``--schema`` and ``--task-config``: load a JSON object from inline JSON or a ``.json`` file.

Answers are checked with :func:`qwen_vl_core.structured.schema_errors` (the jsonschema library)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ._common import CLIError

__all__ = ["load_schema"]



def load_schema(value: Any, what: str = "--schema") -> dict[str, Any]:
    """A JSON object (a schema, a task config) from a dict, a JSON text (starting with ``{``) or
    the path of a JSON file."""
    if isinstance(value, dict):
        schema = value
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            source = f"{what} (inline JSON)"
        else:
            path = Path(text).expanduser()
            source = f"{what} file {text!r}"
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise CLIError(f"{what} {value!r}: no such file (give a .json file or inline JSON)") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise CLIError(f"{source} cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
        try:
            schema = json.loads(text)
        except ValueError as exc:
            raise CLIError(f"{source} is not valid JSON: {exc}") from None
    else:
        raise CLIError(f"{what} must be a JSON object or the path of a .json file")
    if not isinstance(schema, dict):
        raise CLIError(f"{what} must be a JSON object, got {type(schema).__name__}")
    return schema
