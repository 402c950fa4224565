"""Structured output helpers shared by every adapter: ``response_format`` bodies and tolerant
JSON extraction from model text (fenced ```json blocks, leading prose)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .errors import InputValidationError

__all__ = ["json_schema_format", "json_object_format", "extract_json", "schema_errors", "JSON_HINT"]

JSON_HINT = "Respond with a single JSON object only."
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.S)
_NAME = re.compile(r"[^a-zA-Z0-9_-]")


def json_schema_format(schema: Mapping[str, Any], *, name: str | None = None, strict: bool | None = None,
                       description: str | None = None) -> dict[str, Any]:
    """``{"type": "json_schema", "json_schema": {...}}`` for a JSON Schema dict."""
    if not isinstance(schema, Mapping):
        raise InputValidationError(f"a JSON schema must be a dict, got {type(schema).__name__}")
    title = name or schema.get("title") or "output"
    spec: dict[str, Any] = {"name": _NAME.sub("_", str(title))[:64], "schema": dict(schema)}
    if description or schema.get("description"):
        spec["description"] = description or schema.get("description")
    if strict is not None:
        spec["strict"] = strict
    return {"type": "json_schema", "json_schema": spec}


def json_object_format() -> dict[str, Any]:
    return {"type": "json_object"}


def extract_json(text: str) -> Any:
    """Parse the JSON value in ``text``: plain JSON, a fenced block, or the first object/array
    in surrounding prose. Raises ``ValueError`` (``json.JSONDecodeError``) when there is none."""
    stripped = text.strip()
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    for block in _FENCE.findall(stripped):
        try:
            return json.loads(block.strip())
        except ValueError:
            continue
    decoder = json.JSONDecoder()
    for i, ch in enumerate(stripped):
        if ch in "{[":
            try:
                value, _ = decoder.raw_decode(stripped, i)
                return value
            except ValueError:
                continue
    return json.loads(stripped)  # raises with the position of the first problem


def schema_errors(value: Any, schema: Mapping[str, Any], *, limit: int = 10) -> list[str]:
    """Problems of ``value`` against a JSON Schema, as ``"$.items[0].price: 'x' is not of type
    'number'"`` lines (at most ``limit``); empty when valid. Uses the ``jsonschema`` library with
    the validator the schema's ``$schema`` names (Draft 2020-12 by default)."""
    from jsonschema import validators
    from jsonschema.exceptions import SchemaError

    cls = validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        raise InputValidationError(f"invalid JSON schema: {exc.message}") from None
    found = sorted(cls(schema).iter_errors(value), key=lambda e: list(e.absolute_path))
    return [f"{_json_path(e.absolute_path)}: {e.message}" for e in found[:limit]]


def _json_path(path: Any) -> str:
    out = "$"
    for token in path:
        out += f"[{token}]" if isinstance(token, int) else f".{token}"
    return out
