"""Tool calling, said once for both adapters: ``tool_choice`` in its wire form and tool-call
argument JSON (to the wire, and back: strict, or lenient for a call still streaming).

Pure functions over plain dicts (OpenAI-format tools: ``{"type": "function", "function": {"name": ...}}``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Union

from .errors import InputValidationError

__all__ = [
    "ToolChoice",
    "tool_names",
    "normalize_tool_choice",
    "forces_tool",
    "arguments_json",
    "parse_arguments",
]

ToolChoice = Union[str, dict[str, Any]]
"""Wire form: ``"auto"``, ``"none"``, ``"required"`` or ``{"type": "function", "function": {"name": ...}}``."""

_MODES = ("auto", "none", "required")
_ALIASES = {"any": "required"}  # LangChain's (and Anthropic's) name for "some tool, the model picks"


def tool_names(tools: Sequence[Mapping[str, Any]]) -> list[str]:
    """The function names of OpenAI-format tools, in order."""
    names = []
    for tool in tools:
        fn = tool.get("function") if tool.get("type", "function") == "function" else None
        if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
            names.append(fn["name"])
    return names


def _named(name: str, names: list[str]) -> dict[str, Any]:
    if name not in names:
        raise InputValidationError(
            f"tool_choice {name!r} is not one of the bound tools: {', '.join(names) or '(none)'}"
        )
    return {"type": "function", "function": {"name": name}}


def normalize_tool_choice(
    choice: str | bool | Mapping[str, Any] | None,
    tools: Sequence[Mapping[str, Any]],
    *,
    required: bool = False,
) -> ToolChoice | None:
    """``tool_choice`` as LangChain or LlamaIndex give it -> what the API takes (``None``: not sent).

    * ``None``: ``"required"`` if ``required`` (LlamaIndex's ``tool_required``), else ``None``.
    * ``"auto"``, ``"none"``, ``"required"`` as they are; ``"any"`` is ``"required"``.
    * ``True``: the only tool by name, or ``"required"`` when there are several; ``False``: ``"none"``.
    * any other string: a tool name, which must be one of ``tools``.
    * a dict: ``{"type": "function", "function": {"name": ...}}`` (the name is checked against
      ``tools``); other dicts are passed on as they are.

    Raises :class:`~qwen_vl_core.errors.InputValidationError` (a ``ValueError``) for a name that is
    not a bound tool or a value of another type.
    """
    if choice is None:
        return "required" if required else None
    names = tool_names(tools)
    if isinstance(choice, Mapping):
        fn = choice.get("function")
        if choice.get("type") == "function" and isinstance(fn, Mapping) and "name" in fn:
            _named(fn["name"], names)
        return dict(choice)
    if choice is True:
        return _named(names[0], names) if len(names) == 1 else "required"
    if choice is False:
        return "none"
    if isinstance(choice, str):
        choice = _ALIASES.get(choice, choice)
        return choice if choice in _MODES else _named(choice, names)
    raise InputValidationError(f"unsupported tool_choice {choice!r}; use a string, a bool or a dict")


def forces_tool(choice: Any) -> bool:
    """Whether a wire ``tool_choice`` makes the model call a tool (which needs thinking off)."""
    return choice == "required" or isinstance(choice, Mapping)


# ---------------------------------------------------------------- argument JSON


def arguments_json(value: Any, *, missing: str = "") -> str:
    """Tool-call arguments as the JSON text the wire carries: a string as it is (already JSON, or
    a model's invalid text kept for the record), ``None`` as ``missing``, anything else dumped."""
    if value is None:
        return missing
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def parse_arguments(text: str | Mapping[str, Any] | None, *, partial: bool = False) -> dict[str, Any]:
    """Tool-call arguments -> a dict; empty text is ``{}``.

    Strict (default): the text must be one JSON object, else ``ValueError`` naming it.
    ``partial=True``: for a call whose arguments are still streaming; unclosed strings, arrays
    and objects are closed and a dangling key or comma is dropped (``'{"city": "Par'`` ->
    ``{"city": "Par"}``); never raises, ``{}`` when nothing usable parses.
    """
    if text is None:
        return {}
    if isinstance(text, Mapping):
        return dict(text)
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        if partial:
            value = _partial_json(text)
        else:
            raise ValueError(f"tool-call arguments are not valid JSON ({exc}): {_brief(text)}") from None
    if isinstance(value, dict):
        return value
    if partial:
        return {}
    raise ValueError(f"tool-call arguments are not a JSON object: {_brief(text)}")


def _brief(text: str) -> str:
    return repr(text) if len(text) <= 200 else repr(text[:197] + "...")


def _partial_json(text: str) -> Any:
    """The value of a JSON object cut short, closed as it stands; ``None`` if nothing parses.

    One pass records, for each prefix, the brackets still open and whether it ends inside a
    string; then the longest prefix that parses once closed wins.
    """
    text = text.lstrip()
    if not text.startswith("{"):
        return None
    closers: list[str] = []  # closers[i]: what closes the prefix text[:i + 1]
    in_string = escaped = False
    stack = ""
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack += "}" if ch == "{" else "]"
        elif ch in "}]":
            if not stack or stack[-1] != ch:
                break  # mismatched: only the text before it can be used
            stack = stack[:-1]
        closers.append(('"' if in_string and not escaped else "") + stack[::-1])
    for end in range(len(closers), 0, -1):  # a cut inside a token, escape or after a comma fails: step back
        try:
            return json.loads(text[:end] + closers[end - 1], strict=False)
        except ValueError:
            continue
    return None
