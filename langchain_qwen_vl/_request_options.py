"""ChatQwenVL's fields and per-call keywords -> the core's request options (and what LangSmith
and ``model_kwargs`` validation see of them). Pure functions over the model's settings."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from langchain_core.language_models import LangSmithParams
from qwen_vl_core import get_capabilities
from qwen_vl_core.planning import thinking_off_for_call
from qwen_vl_core.protocol import CHAT_OPTIONS

__all__ = [
    "OPTION_FIELDS",
    "MEDIA_FIELDS",
    "move_unknown_to_model_kwargs",
    "check_model_kwargs",
    "default_params",
    "media_options",
    "call_options",
    "ls_params",
]

# Fields sent as request options when set (None means "server default, not sent").
OPTION_FIELDS = (
    "temperature", "max_tokens", "top_p", "seed", "enable_thinking", "thinking_budget",
    "high_resolution", "min_pixels", "max_pixels", "fps",
)  # fmt: skip
MEDIA_FIELDS = ("high_resolution", "min_pixels", "max_pixels", "fps")
_PER_REQUEST = ("model", "messages", "stream", "api_key")


def move_unknown_to_model_kwargs(values: dict[str, Any], known: Iterable[str]) -> dict[str, Any]:
    """Constructor arguments that are not fields (nor aliases) go to ``model_kwargs``, each with a
    warning, never silently nowhere. Returns a new dict when anything moved."""
    known = set(known)
    extra = {k: values[k] for k in values if k not in known}
    if not extra:
        return values
    values = {k: v for k, v in values.items() if k not in extra}
    kwargs = dict(values.get("model_kwargs") or {})
    for key, value in extra.items():
        # stacklevel: this function, the validator, pydantic's and LangChain's __init__, ChatQwenVL's, the caller
        warnings.warn(
            f"{key!r} is not a ChatQwenVL parameter; it is passed in model_kwargs", UserWarning, stacklevel=6
        )
        kwargs[key] = value
    values["model_kwargs"] = kwargs
    return values


def check_model_kwargs(value: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    fields = set(fields)
    for key in value:
        if key in fields or key in _PER_REQUEST:
            raise ValueError(f"{key!r} is a ChatQwenVL parameter or set per request; do not put it in model_kwargs")
    return value


def _set_fields(llm: Any, names: Iterable[str]) -> dict[str, Any]:
    return {name: getattr(llm, name) for name in names if getattr(llm, name) is not None}


def default_params(llm: Any) -> dict[str, Any]:
    """The options every call starts from (fields that are set, ``stop``, ``stream_usage``, ``model_kwargs``)."""
    params = _set_fields(llm, OPTION_FIELDS)
    if llm.stop:
        params["stop"] = list(llm.stop)
    params["stream_usage"] = llm.stream_usage
    return {**params, **llm.model_kwargs}


def media_options(llm: Any) -> dict[str, Any]:
    """The media settings that change how images and videos are sized (and so counted)."""
    return _set_fields(llm, MEDIA_FIELDS)


def call_options(llm: Any, stop: list[str] | None, kwargs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(model, core options) for one call; per-call keywords win over fields. ``model_kwargs`` the
    core knows are options, the rest are extra body fields.

    A call that needs thinking off (structured output, a forced tool call) on a model built with
    ``enable_thinking=True`` runs with thinking off and emits one ``UserWarning`` saying so (the
    core's :func:`~qwen_vl_core.planning.thinking_off_for_call`); ``enable_thinking=True`` passed
    for the call itself, or a model that always thinks, is refused by the core instead."""
    call = dict(kwargs)
    call.pop("stream", None)
    model = call.pop("model", None) or llm.model
    options = _set_fields(llm, OPTION_FIELDS)
    options["stream_usage"] = llm.stream_usage
    extra_body: dict[str, Any] = {}
    for key, value in llm.model_kwargs.items():
        (options if key in CHAT_OPTIONS else extra_body)[key] = value
    if extra_body:
        options["extra_body"] = {**extra_body, **(options.get("extra_body") or {})}
    stop = stop if stop is not None else llm.stop
    if stop:
        options["stop"] = list(stop)
    options.update(call)  # unknown per-call options raise TypeError in the core
    options, note = thinking_off_for_call(get_capabilities(model), options, call)
    if note:
        warnings.warn(f"ChatQwenVL: {note}", UserWarning, stacklevel=_caller_level())
    return model, options


_LIBRARY_PREFIXES = ("langchain_core", "langchain_qwen_vl", "qwen_vl_core", "langsmith", "pydantic", "asyncio",
                     "concurrent", "threading", "contextvars", "contextlib")  # fmt: skip


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside LangChain and this package (the user's
    ``invoke`` line), so the warning points there; the outermost frame when there is none."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not module.startswith(_LIBRARY_PREFIXES):
            return level
        frame = frame.f_back
        level += 1
    return max(1, level - 1)


def ls_params(llm: Any, stop: list[str] | None, kwargs: Mapping[str, Any]) -> LangSmithParams:
    """What LangSmith records of a call: provider, model, temperature, max tokens, stop."""
    params = LangSmithParams(
        ls_provider="dashscope",
        ls_model_name=kwargs.get("model") or llm.model,
        ls_model_type="chat",
    )
    temperature = kwargs.get("temperature", llm.temperature)
    if temperature is not None:
        params["ls_temperature"] = temperature
    max_tokens = kwargs.get("max_tokens") or kwargs.get("max_completion_tokens") or llm.max_tokens
    if max_tokens is not None:
        params["ls_max_tokens"] = max_tokens
    stop = stop or kwargs.get("stop") or llm.stop
    if stop:
        params["ls_stop"] = [stop] if isinstance(stop, str) else list(stop)
    return params
