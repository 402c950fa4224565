"""Request bodies (compatible and native mode) and response / stream-chunk parsing.

Only what the user set or the model needs is sent, so the same bodies work against
self-hosted OpenAI-compatible servers (vLLM, SGLang) through ``base_url``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InputValidationError, error_from_payload
from .messages import content_has_text
from .models import ModelCapabilities
from .types import ChatDelta, ChatResult, ToolCall, ToolCallDelta, Usage

__all__ = [
    "CHAT_OPTIONS",
    "OCR_TASKS",
    "RequestPlan",
    "plan_request",
    "compatible_body",
    "native_body",
    "parse_completion",
    "parse_chunk",
    "parse_native",
    "parse_usage",
]

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


def _forces_tool(tool_choice: Any) -> bool:
    return tool_choice == "required" or isinstance(tool_choice, Mapping)


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
    return bool(tools) and _forces_tool(tool_choice)


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


_SIMPLE = ("temperature", "top_p", "top_k", "seed", "stop", "presence_penalty", "frequency_penalty",
           "n", "logprobs", "top_logprobs", "max_tokens", "max_completion_tokens")


def compatible_body(
    model: str, messages: list[dict[str, Any]], options: Mapping[str, Any], plan: RequestPlan
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": messages}
    for key in _SIMPLE:
        if options.get(key) is not None:
            body[key] = options[key]
    if plan.send_thinking is not None:
        body["enable_thinking"] = plan.send_thinking
    if options.get("thinking_budget") is not None:
        body["thinking_budget"] = options["thinking_budget"]
    if options.get("high_resolution") is not None:
        body["vl_high_resolution_images"] = bool(options["high_resolution"])
    rf = options.get("response_format")
    if rf is not None:
        if rf.get("type") == "json_object" and not content_has_text(messages, "json"):
            raise InputValidationError(
                "response_format json_object needs the word 'json' in the prompt (DashScope rejects it "
                "otherwise); add e.g. 'Answer in JSON.' to a message"
            )
        body["response_format"] = rf
    if options.get("tools"):
        body["tools"] = options["tools"]
        if options.get("tool_choice") is not None:
            body["tool_choice"] = options["tool_choice"]
        if options.get("parallel_tool_calls") is not None:
            body["parallel_tool_calls"] = options["parallel_tool_calls"]
    if plan.stream:
        body["stream"] = True
        if options.get("stream_usage", True):
            body["stream_options"] = {"include_usage": True}
    if options.get("extra_body"):
        body.update(options["extra_body"])
    return body


def native_body(
    model: str, messages: list[dict[str, Any]], options: Mapping[str, Any], plan: RequestPlan
) -> dict[str, Any]:
    params: dict[str, Any] = {"result_format": "message"}
    for key in ("temperature", "top_p", "top_k", "seed", "stop", "max_tokens"):
        if options.get(key) is not None:
            params[key] = options[key]
    if options.get("max_completion_tokens") is not None:
        params["max_tokens"] = options["max_completion_tokens"]
    if options.get("high_resolution") is not None:
        params["vl_high_resolution_images"] = bool(options["high_resolution"])
    if plan.send_thinking is not None:
        params["enable_thinking"] = plan.send_thinking
    task = options.get("ocr_task")
    if task:
        ocr: dict[str, Any] = {"task": task}
        if options.get("ocr_task_config"):
            ocr["task_config"] = options["ocr_task_config"]
        params["ocr_options"] = ocr
    if plan.stream:
        params["incremental_output"] = True
    if options.get("extra_body"):
        params.update(options["extra_body"])
    return {"model": model, "input": {"messages": messages}, "parameters": params}


# ---------------------------------------------------------------- parsing


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_usage(raw: Any) -> Usage | None:
    """Usage from either mode (``prompt_tokens``... or ``input_tokens``...)."""
    if not isinstance(raw, Mapping):
        return None
    inp = _int(raw.get("prompt_tokens"))
    if inp is None:
        inp = _int(raw.get("input_tokens")) or 0
    out = _int(raw.get("completion_tokens"))
    if out is None:
        out = _int(raw.get("output_tokens")) or 0
    total = _int(raw.get("total_tokens")) or inp + out
    pd = raw.get("prompt_tokens_details") or raw.get("input_tokens_details") or {}
    cd = raw.get("completion_tokens_details") or raw.get("output_tokens_details") or {}
    pd = pd if isinstance(pd, Mapping) else {}
    cd = cd if isinstance(cd, Mapping) else {}

    def first(*values: Any) -> int | None:
        for v in values:
            if _int(v) is not None:
                return v
        return None

    return Usage(
        input_tokens=inp,
        output_tokens=out,
        total_tokens=total,
        image_tokens=first(pd.get("image_tokens"), raw.get("image_tokens")),
        video_tokens=first(pd.get("video_tokens"), raw.get("video_tokens")),
        text_input_tokens=first(pd.get("text_tokens"), raw.get("input_text_tokens")),
        reasoning_tokens=first(cd.get("reasoning_tokens"), raw.get("reasoning_tokens")),
        cached_tokens=first(pd.get("cached_tokens")),
    )


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "") if isinstance(part, Mapping) else str(part) for part in content
        )
    return str(content)


def _arguments(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _check_error(payload: Any, request_id: str | None, status: int | None = None) -> None:
    if isinstance(payload, Mapping) and payload.get("error") and not payload.get("choices"):
        raise error_from_payload(payload, status=status, request_id=request_id)


def parse_completion(payload: Any, *, request_id: str | None = None, partial: bool = False) -> ChatResult:
    """A compatible-mode ``chat.completion`` object."""
    if not isinstance(payload, Mapping):
        raise error_from_payload(payload, request_id=request_id)
    _check_error(payload, request_id)
    choices = payload.get("choices") or []
    if not choices:
        raise error_from_payload({"message": "response has no choices", **payload}, request_id=request_id)
    choice = choices[0]
    message = choice.get("message") or {}
    calls = [
        ToolCall(
            id=str(call.get("id") or f"call_{i}"),
            name=(call.get("function") or {}).get("name") or "",
            arguments=_arguments((call.get("function") or {}).get("arguments")),
        )
        for i, call in enumerate(message.get("tool_calls") or [])
    ]
    return ChatResult(
        text=_text_of(message.get("content")),
        reasoning=message.get("reasoning_content") or "",
        tool_calls=calls,
        finish_reason=choice.get("finish_reason"),
        usage=parse_usage(payload.get("usage")),
        model=payload.get("model"),
        request_id=payload.get("request_id") or payload.get("id") or request_id,
        partial=partial,
    )


def parse_chunk(payload: Any, *, request_id: str | None = None) -> ChatDelta:
    """One compatible-mode ``chat.completion.chunk`` (choices may be empty: the usage chunk)."""
    if not isinstance(payload, Mapping):
        raise error_from_payload(payload, request_id=request_id)
    _check_error(payload, request_id)
    delta = ChatDelta(
        model=payload.get("model"),
        request_id=payload.get("request_id") or payload.get("id") or request_id,
        usage=parse_usage(payload.get("usage")),
    )
    choices = payload.get("choices") or []
    if choices:
        choice = choices[0]
        d = choice.get("delta") or {}
        delta.text = _text_of(d.get("content"))
        delta.reasoning = d.get("reasoning_content") or ""
        for i, frag in enumerate(d.get("tool_calls") or []):
            fn = frag.get("function") or {}
            delta.tool_calls.append(
                ToolCallDelta(
                    index=frag.get("index", i),
                    id=frag.get("id") or None,
                    name=fn.get("name") or None,
                    arguments=_arguments(fn.get("arguments")),
                )
            )
        delta.finish_reason = choice.get("finish_reason") or None
    return delta


def parse_native(payload: Any, *, request_id: str | None = None) -> ChatDelta:
    """A native-mode response or stream event (``output.choices[0].message``)."""
    if not isinstance(payload, Mapping):
        raise error_from_payload(payload, request_id=request_id)
    rid = payload.get("request_id") or request_id
    output = payload.get("output")
    if not isinstance(output, Mapping):
        raise error_from_payload(payload, request_id=rid)
    choices = output.get("choices") or []
    message = choices[0].get("message", {}) if choices else {}
    finish = (choices[0].get("finish_reason") if choices else None) or output.get("finish_reason")
    if finish in ("null", ""):
        finish = None
    text = _text_of(message.get("content")) if choices else output.get("text") or ""
    return ChatDelta(
        text=text,
        reasoning=message.get("reasoning_content") or "",
        finish_reason=finish,
        usage=parse_usage(payload.get("usage")),
        model=payload.get("model"),
        request_id=rid,
    )
