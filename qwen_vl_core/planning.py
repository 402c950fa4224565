"""The request plan: options checked against the model's capabilities before anything is sent.

One small check per rule (option names, the thinking switch, structured output, forced tool calls,
thinking against JSON output and forced tools, the thinking budget, output limits, sampling ranges,
OCR tasks) and the decisions they lead to: native or compatible mode, whether the wire streams,
and the ``enable_thinking`` value to send.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InputValidationError
from .models import ModelCapabilities
from .tools import forces_tool

__all__ = ["CHAT_OPTIONS", "OCR_TASKS", "RequestPlan", "plan_request", "needs_thinking_off", "thinking_off_for_call"]

# Options accepted by chat()/stream(); anything else is a TypeError, so typos do not vanish.
CHAT_OPTIONS = frozenset(
    {
        "enable_thinking", "thinking_budget", "high_resolution", "min_pixels", "max_pixels", "fps",
        "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "seed", "stop",
        "presence_penalty", "frequency_penalty", "response_format", "tools", "tool_choice",
        "parallel_tool_calls", "stream_usage", "extra_body", "ocr_task", "ocr_task_config",
        "n", "logprobs", "top_logprobs",
    }
)
OCR_TASKS = frozenset(
    {
        "text_recognition", "key_information_extraction", "table_parsing", "document_parsing",
        "formula_recognition", "multi_lan", "advanced_recognition",
    }
)


@dataclass(frozen=True, slots=True)
class RequestPlan:
    """Decisions about one request, made from the capability registry and the options."""

    native: bool
    stream: bool  # whether the wire request streams
    send_thinking: bool | None  # value of enable_thinking to send (None: omit)
    thinking_on: bool


def _number(name: str, value: Any, lo: float, hi: float, *, lo_open=False, hi_open=False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputValidationError(f"{name} must be a number, got {value!r}")
    if value < lo or value > hi or (lo_open and value == lo) or (hi_open and value == hi):
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        raise InputValidationError(f"{name} is {value}; it must be in {left}{lo}, {hi}{right}")


def _positive_int(name: str, value: Any, limit: int | None, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InputValidationError(f"{name} must be a positive integer, got {value!r}")
    if limit is not None and value > limit:
        raise InputValidationError(f"{name} is {value}; {what} is {limit}")


def plan_request(caps: ModelCapabilities, options: Mapping[str, Any], *, stream: bool) -> RequestPlan:
    """Validate options against the model's capabilities; decide thinking, streaming and mode.

    Rules: structured output and forced tool calls need thinking off, so on a hybrid model whose
    thinking the user did not set explicitly, thinking is turned off for that call; an explicit
    ``enable_thinking=True`` or an always-thinking model gives an error instead. The checks run in
    this order, so the first broken rule is the one reported.
    """
    _check_option_names(options)
    enable = _thinking_switch(caps, options.get("enable_thinking"))
    structured = _structured_output(caps, options.get("response_format"))
    forced = _forced_tool_call(caps, options.get("tools"), options.get("tool_choice"))
    send_thinking, thinking_on = _thinking(caps, enable, structured=structured, forced=forced)
    _check_thinking_budget(caps, options.get("thinking_budget"), thinking_on)
    _check_output_limits(caps, options)
    _check_sampling(options)
    native = _ocr_mode(caps, options.get("ocr_task"), mixed=bool(options.get("tools")) or structured)
    return RequestPlan(native, _wire_stream(caps, stream, thinking_on), send_thinking, thinking_on)


def needs_thinking_off(options: Mapping[str, Any]) -> str | None:
    """Why a call with these options cannot think (JSON output, or a forced tool call with tools
    bound), or ``None`` when it can. The reason is worded for messages."""
    rf = options.get("response_format")
    if isinstance(rf, Mapping) and rf.get("type") in ("json_schema", "json_object"):
        return "structured output (response_format)"
    if options.get("tools") and forces_tool(options.get("tool_choice")):
        return "a forced tool call (tool_choice)"
    return None


def thinking_off_for_call(
    caps: ModelCapabilities, options: Mapping[str, Any], per_call: Mapping[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """The adapters' rule for thinking set as a default on a model object (a field, not this call).

    DashScope cannot think while producing JSON output or a forced tool call. When ``options``
    (defaults merged with this call's ``per_call`` options) need thinking off, an
    ``enable_thinking=True`` that did not come from ``per_call`` is dropped for this call, and so
    is a default ``thinking_budget``; :func:`plan_request` then turns thinking off (hybrid models).
    Returns the options to send and a note saying what was turned off (``None`` when nothing
    was). Left as they are, for :func:`plan_request` to refuse: ``enable_thinking=True`` given
    for this very call, a model that always thinks, and a model with no thinking mode.
    """
    why = needs_thinking_off(options)
    if why is None or (caps.known and caps.thinking in ("always", "never")):
        return dict(options), None
    if per_call.get("enable_thinking") is not None:
        return dict(options), None
    out = dict(options)
    if per_call.get("thinking_budget") is None:
        out.pop("thinking_budget", None)
    if out.get("enable_thinking") is not True:
        return out, None
    out.pop("enable_thinking")
    return out, (
        f"{why} needs thinking off (DashScope cannot think while its output is forced): thinking is "
        f"turned off for this call of {caps.name!r}, although enable_thinking=True is set"
    )


def _check_option_names(options: Mapping[str, Any]) -> None:
    unknown = set(options) - CHAT_OPTIONS
    if unknown:
        raise TypeError(f"unexpected option(s): {', '.join(sorted(unknown))}")


def _thinking_switch(caps: ModelCapabilities, enable: Any) -> bool | None:
    """``enable_thinking`` as given, checked against what the model can do."""
    if enable is not None and not isinstance(enable, bool):
        raise InputValidationError(f"enable_thinking must be True, False or None, got {enable!r}")
    if caps.known and enable is True and not caps.can_enable_thinking:
        raise InputValidationError(f"model {caps.name!r} has no thinking mode; leave enable_thinking unset")
    if caps.known and enable is False and not caps.can_disable_thinking:
        raise InputValidationError(f"model {caps.name!r} always thinks; enable_thinking=False is not possible")
    return enable


def _structured_output(caps: ModelCapabilities, response_format: Any) -> bool:
    """Whether ``response_format`` asks for JSON (``json_schema`` / ``json_object``) the model can give."""
    rf_type = response_format.get("type") if isinstance(response_format, Mapping) else None
    if response_format is not None and rf_type not in ("json_schema", "json_object", "text"):
        raise InputValidationError(
            f"response_format type must be 'json_schema', 'json_object' or 'text', got {response_format!r}"
        )
    structured = rf_type in ("json_schema", "json_object")
    if structured and caps.known and rf_type not in caps.structured_output:
        supported = ", ".join(sorted(caps.structured_output)) or "none"
        raise InputValidationError(
            f"model {caps.name!r} does not support response_format {rf_type!r} (supported: {supported})"
        )
    return structured


def _forced_tool_call(caps: ModelCapabilities, tools: Any, tool_choice: Any) -> bool:
    """Whether the call must call a tool; refuses tools on a model without tool calling."""
    if tools and caps.known and not caps.tools:
        raise InputValidationError(f"model {caps.name!r} does not support tool calling")
    return bool(tools) and forces_tool(tool_choice)


def _thinking(
    caps: ModelCapabilities, enable: bool | None, *, structured: bool, forced: bool
) -> tuple[bool | None, bool]:
    """``(enable_thinking to send, whether the call thinks)``: JSON output and forced tools need it off."""
    thinking_on = caps.thinking_on(enable)
    if not (structured or forced) or not thinking_on:
        return enable, thinking_on
    if enable is True or caps.thinking == "always":
        why = "structured output (response_format)" if structured else "a forced tool call (tool_choice)"
        raise InputValidationError(
            f"{why} needs thinking off, but model {caps.name!r} would think"
            + ("" if caps.thinking == "always" else " (enable_thinking=True)")
            + "; use a non-thinking call"
        )
    return False, False


def _check_thinking_budget(caps: ModelCapabilities, budget: Any, thinking_on: bool) -> None:
    if budget is None:
        return
    _positive_int("thinking_budget", budget, caps.max_thinking_budget if caps.known else None,
                  f"the maximum for {caps.name!r}")
    if caps.known and not thinking_on:
        raise InputValidationError(
            f"thinking_budget is set but thinking is off for {caps.name!r}; set enable_thinking=True"
        )


def _check_output_limits(caps: ModelCapabilities, options: Mapping[str, Any]) -> None:
    """``max_tokens`` / ``max_completion_tokens``: positive and within the model's output."""
    for key in ("max_tokens", "max_completion_tokens"):
        if options.get(key) is not None:
            _positive_int(key, options[key], caps.max_output if caps.known else None,
                          f"the maximum output of {caps.name!r}")


def _check_sampling(options: Mapping[str, Any]) -> None:
    """``temperature``, ``top_p``, ``presence_penalty`` in their ranges; ``stop`` a string or strings."""
    if options.get("temperature") is not None:
        _number("temperature", options["temperature"], 0, 2, hi_open=True)
    if options.get("top_p") is not None:
        _number("top_p", options["top_p"], 0, 1, lo_open=True)
    if options.get("presence_penalty") is not None:
        _number("presence_penalty", options["presence_penalty"], -2, 2)
    stop = options.get("stop")
    strings = isinstance(stop, list) and all(isinstance(s, str) for s in stop)
    if stop is not None and not (isinstance(stop, str) or strings):
        raise InputValidationError(f"stop must be a string or a list of strings, got {stop!r}")


def _ocr_mode(caps: ModelCapabilities, task: Any, *, mixed: bool) -> bool:
    """Whether the call goes native (an ``ocr_task``); ``mixed``: tools or JSON output were asked for too."""
    if task is None:
        return False
    if task not in OCR_TASKS:
        raise InputValidationError(f"ocr_task {task!r} is not one of: {', '.join(sorted(OCR_TASKS))}")
    if caps.known and not caps.ocr_tasks:
        raise InputValidationError(f"ocr_task needs a qwen-vl-ocr model, not {caps.name!r}")
    if mixed:
        raise InputValidationError("ocr_task cannot be combined with tools or response_format")
    return True


def _wire_stream(caps: ModelCapabilities, stream: bool, thinking_on: bool) -> bool:
    """Whether the wire request streams.

    A call that thinks is streamed on the wire and aggregated by chat(): long reasoning would hit
    the 180 s non-streaming timeout (seed 003 recommends streaming), and some models refuse
    non-streaming thinking ("enable_thinking must be set to false for non-streaming calls").
    """
    return stream or caps.stream_only or (caps.known and thinking_on)
