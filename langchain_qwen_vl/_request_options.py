"""ChatQwenVL's fields and per-call keywords -> the core's request options (and what LangSmith
and ``model_kwargs`` validation see of them). Pure functions over the model's settings."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from langchain_core.language_models import LangSmithParams
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
    core knows are options, the rest are extra body fields."""
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
    return model, options


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
