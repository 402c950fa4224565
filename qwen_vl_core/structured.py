"""Structured output helpers shared by every adapter: ``response_format`` bodies, tolerant
JSON extraction from model text (fenced ```json blocks, leading prose), and output schemas
(Pydantic class, TypedDict, JSON Schema dict or ``.json`` file) normalised to one JSON Schema
with one validator, plus the prompts of JSON mode and of a repair request."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from .errors import InputValidationError

__all__ = [
    "json_schema_format",
    "json_object_format",
    "extract_json",
    "schema_errors",
    "JSON_HINT",
    "load_json_schema",
    "load_json_object",
    "OutputSchema",
    "output_schema",
    "pydantic_typeddict",
    "schema_prompt",
    "repair_prompt",
]

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


# ------------------------------------------------------------------------------ output schemas


def load_json_schema(source: Any, *, what: str = "schema") -> dict[str, Any]:
    """A JSON Schema dict from a dict, a ``.json`` file path (``str`` or ``os.PathLike``) or inline
    JSON text (a string starting with ``{``), checked against its meta-schema. Raises
    :class:`InputValidationError` naming the source."""
    schema = load_json_object(
        source,
        what=what,
        expected="a Pydantic model class, a TypedDict, a JSON Schema dict or the path of a .json file",
    )
    _check_schema(schema)
    return schema


def load_json_object(source: Any, *, what: str = "value", expected: str | None = None) -> dict[str, Any]:
    """A JSON object from a dict, a ``.json`` file path or inline JSON text (starting with ``{``).
    Raises :class:`InputValidationError` naming ``what`` and the source."""
    if isinstance(source, Mapping):
        schema: Any = dict(source)
    elif isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if isinstance(source, str) and text.lstrip().startswith("{"):
            label, raw = f"{what} (inline JSON)", text
        else:
            path = Path(text).expanduser()
            label = f"{what} file {text!r}"
            try:
                raw = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise InputValidationError(f"{label}: no such file (give a .json file or inline JSON)") from None
            except IsADirectoryError:
                raise InputValidationError(f"{label} is a directory, not a .json file") from None
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or exc
                raise InputValidationError(f"{label} cannot be read ({reason})") from None
        try:
            schema = json.loads(raw)
        except ValueError as exc:
            raise InputValidationError(f"{label} is not valid JSON: {exc}") from None
    else:
        raise InputValidationError(
            f"{what} must be {expected or 'a JSON object or the path of a .json file'}; got {type(source).__name__}"
        )
    if not isinstance(schema, dict):
        raise InputValidationError(f"{what} must be a JSON object, got {type(schema).__name__}")
    return schema


def _check_schema(schema: Mapping[str, Any]) -> None:
    from jsonschema import validators
    from jsonschema.exceptions import SchemaError

    try:
        validators.validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise InputValidationError(f"invalid JSON schema: {exc.message}") from None


SchemaKind = Literal["pydantic", "pydantic_v1", "typeddict", "json_schema"]


@dataclass(frozen=True)
class OutputSchema:
    """One output schema, whatever form it was given in: its JSON Schema, a name for
    ``response_format``, and :meth:`validate` (Pydantic for model classes and TypedDicts, the
    ``jsonschema`` library for JSON Schema dicts)."""

    kind: SchemaKind
    json_schema: dict[str, Any]
    name: str
    target: Any = None  # the Pydantic class / TypedDict; None for a JSON Schema

    def response_format(self, *, strict: bool | None = None) -> dict[str, Any]:
        """``{"type": "json_schema", "json_schema": {...}}`` for this schema."""
        return json_schema_format(self.json_schema, name=self.name, strict=strict)

    def validate(self, value: Any) -> tuple[Any, list[str]]:
        """``(result, [])`` when ``value`` is valid, else ``(None, problems)``. The result is an
        instance of the Pydantic class, the validated dict of a TypedDict, or ``value`` itself."""
        if self.kind == "json_schema":
            problems = schema_errors(value, self.json_schema)
            return (None, problems) if problems else (value, [])
        if self.kind == "pydantic_v1":
            from pydantic.v1 import ValidationError as ValidationErrorV1

            try:
                return self.target.parse_obj(value), []
            except ValidationErrorV1 as exc:
                return None, _pydantic_problems(exc.errors())
        from pydantic import ValidationError

        try:
            if self.kind == "pydantic":
                return self.target.model_validate(value), []
            return _type_adapter(self.target).validate_python(value), []
        except ValidationError as exc:
            return None, _pydantic_problems(exc.errors())

    def parse(self, text: str) -> tuple[Any, list[str]]:
        """Extract the JSON in a model's answer (see :func:`extract_json`) and :meth:`validate` it."""
        try:
            value = extract_json(text)
        except ValueError as exc:
            shown = text.strip()
            shown = shown if len(shown) <= 200 else shown[:197] + "..."
            return None, [f"the answer is not valid JSON ({exc}): {shown!r}"]
        return self.validate(value)


def output_schema(schema: Any) -> OutputSchema:
    """Normalise a Pydantic model class (v2 or ``pydantic.v1``), a TypedDict class, a JSON Schema
    dict, or the path of a ``.json`` schema file (``str`` / ``os.PathLike``; a string starting
    with ``{`` is inline JSON) into an :class:`OutputSchema`."""
    if isinstance(schema, OutputSchema):
        return schema
    if isinstance(schema, type):
        from pydantic import BaseModel
        from pydantic.v1 import BaseModel as BaseModelV1
        from typing_extensions import is_typeddict

        if issubclass(schema, BaseModel):
            return OutputSchema("pydantic", schema.model_json_schema(), schema.__name__, schema)
        if issubclass(schema, BaseModelV1):
            return OutputSchema("pydantic_v1", schema.schema(), schema.__name__, schema)
        if is_typeddict(schema):
            from pydantic import PydanticUserError

            try:
                json_schema = _type_adapter(schema).json_schema()
            except PydanticUserError as exc:
                raise InputValidationError(f"TypedDict {schema.__name__}: {exc}") from None
            return OutputSchema("typeddict", json_schema, schema.__name__, schema)
    json_schema = load_json_schema(schema)
    return OutputSchema("json_schema", json_schema, _NAME.sub("_", str(json_schema.get("title") or "output"))[:64])


# ------------------------------------------------------------------------------ typing.TypedDict


@lru_cache(maxsize=128)
def _type_adapter(typeddict: Any) -> Any:
    """Pydantic's ``TypeAdapter`` of a TypedDict (of its :func:`pydantic_typeddict` form), built once."""
    from pydantic import TypeAdapter

    return TypeAdapter(pydantic_typeddict(typeddict))


def pydantic_typeddict(cls: Any) -> Any:
    """A TypedDict that Pydantic accepts on every supported Python.

    Before Python 3.12 Pydantic refuses ``typing.TypedDict`` ("use typing_extensions.TypedDict"),
    which is what most users write. Such a class (and every ``typing.TypedDict`` in its field
    types, nested in lists, unions, ``Annotated``, ...) is rebuilt as an equal
    ``typing_extensions.TypedDict``: same name, docstring, module, fields and required keys.
    Anything else (and everything on Python 3.12+) is returned as it is.
    """
    if sys.version_info >= (3, 12):
        return cls
    return _convert_type(cls, {})


def _markers(name: str) -> tuple[Any, ...]:
    import typing

    import typing_extensions as te

    return tuple({getattr(te, name), getattr(typing, name, getattr(te, name))})  # typing's from Python 3.11


_REQUIRED = _markers("Required")
_NOT_REQUIRED = _markers("NotRequired")


def _is_typing_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and type(tp).__module__ == "typing" and type(tp).__name__ == "_TypedDictMeta"


def _convert_type(tp: Any, seen: dict[Any, Any]) -> Any:
    import types
    import typing

    import typing_extensions as te

    if _is_typing_typeddict(tp):
        return _convert_typeddict(tp, seen)
    args = te.get_args(tp)
    if not args or te.get_origin(tp) is te.Literal:
        return tp
    new_args = tuple(_convert_type(a, seen) for a in args)
    if all(a is b for a, b in zip(args, new_args)):
        return tp
    origin = te.get_origin(tp)
    if origin is te.Annotated:
        return te.Annotated[(new_args[0], *tp.__metadata__)]
    if isinstance(tp, types.UnionType) or origin is typing.Union:
        return typing.Union[new_args]
    if isinstance(tp, types.GenericAlias):
        return types.GenericAlias(origin, new_args)
    if hasattr(tp, "copy_with"):  # typing.List[X], typing.Dict[K, V], Required[X], ...
        return tp.copy_with(new_args)
    return tp


def _convert_typeddict(cls: Any, seen: dict[Any, Any]) -> Any:
    import typing

    import typing_extensions as te

    if cls in seen:
        if seen[cls] is None:
            raise InputValidationError(
                f"TypedDict {cls.__name__} refers to itself; on Python < 3.12 declare it with "
                "typing_extensions.TypedDict"
            )
        return seen[cls]
    seen[cls] = None
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except Exception as exc:  # an unresolvable forward reference
        raise InputValidationError(f"TypedDict {cls.__name__}: cannot read its fields ({exc})") from None
    fields = {}
    for name, tp in hints.items():
        # an explicit Required[] / NotRequired[] wins: with postponed annotations (PEP 563) Python
        # before 3.12 cannot see it when it builds __required_keys__
        required = name in cls.__required_keys__
        while te.get_origin(tp) in _REQUIRED + _NOT_REQUIRED:
            required = te.get_origin(tp) in _REQUIRED
            tp = te.get_args(tp)[0]
        tp = _convert_type(tp, seen)
        fields[name] = te.Required[tp] if required else te.NotRequired[tp]
    new = te.TypedDict(cls.__name__, fields)  # type: ignore[operator]
    new.__doc__ = cls.__doc__
    new.__module__ = cls.__module__
    new.__qualname__ = getattr(cls, "__qualname__", cls.__name__)
    if hasattr(cls, "__pydantic_config__"):
        new.__pydantic_config__ = cls.__pydantic_config__
    seen[cls] = new
    return new


def _pydantic_problems(errors: Sequence[Mapping[str, Any]], limit: int = 10) -> list[str]:
    return [f"{_json_path(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in list(errors)[:limit]]


def schema_prompt(schema: Mapping[str, Any]) -> str:
    """The instruction that puts a JSON Schema in the prompt (JSON mode: the model has no
    ``json_schema`` output). Contains the word "JSON", which DashScope's JSON mode requires."""
    return f"{JSON_HINT} It must match this JSON Schema:\n{json.dumps(schema, ensure_ascii=False)}"


def repair_prompt(errors: Sequence[str]) -> str:
    """The follow-up message asking for a corrected answer, listing what was wrong with the last one."""
    listed = "\n".join(f"- {e}" for e in errors) or "- the answer could not be used"
    return (
        "Your previous answer is not valid:\n"
        f"{listed}\n"
        "Reply with the corrected JSON object only, matching the schema, with no other text."
    )
