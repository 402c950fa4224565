"""Request bodies (compatible and native mode) and response / stream-chunk parsing.

What a request may ask for is decided first, by :func:`~qwen_vl_core.planning.plan_request`.

Only what the user set or the model needs is sent, so the same bodies work against
self-hosted OpenAI-compatible servers (vLLM, SGLang) through ``base_url``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import EmptyResponseError, InputValidationError, error_from_payload
from .messages import content_has_text
from .planning import CHAT_OPTIONS, OCR_TASKS, RequestPlan, plan_request
from .tools import arguments_json
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
            arguments=arguments_json((call.get("function") or {}).get("arguments")),
        )
        for i, call in enumerate(message.get("tool_calls") or [])
    ]
    rid = payload.get("request_id") or payload.get("id") or request_id
    reasoning = message.get("reasoning_content") or ""
    if not partial:
        _check_answered(message.get("content"), calls or reasoning, choice.get("finish_reason"), rid)
    return ChatResult(
        text=_text_of(message.get("content")),
        reasoning=reasoning,
        tool_calls=calls,
        finish_reason=choice.get("finish_reason"),
        usage=parse_usage(payload.get("usage")),
        model=payload.get("model"),
        request_id=rid,
        partial=partial,
    )


def _check_answered(content: Any, other: Any, finish_reason: Any, request_id: str | None) -> None:
    """A whole (non-streamed) answer must say something: content (an empty string is a model that
    said nothing, and is returned as such), tool calls or reasoning. ``content: null`` (or none)
    with neither is a protocol fault, raised as :class:`EmptyResponseError`."""
    if content is None and not other:
        raise EmptyResponseError(
            "the server answered HTTP 200 without an answer: the message has no content (null), no tool "
            f"calls and no reasoning (finish_reason={finish_reason!r}); nothing was returned as the answer",
            status=200,
            code="empty_response",
            request_id=request_id,
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
                    arguments=arguments_json(fn.get("arguments")),
                )
            )
        delta.finish_reason = choice.get("finish_reason") or None
    return delta


def parse_native(payload: Any, *, request_id: str | None = None, whole: bool = False) -> ChatDelta:
    """A native-mode response or stream event (``output.choices[0].message``).

    ``whole=True``: ``payload`` is a complete non-streamed response, which must hold an answer
    (see :class:`~qwen_vl_core.errors.EmptyResponseError`); stream events may be empty."""
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
    if whole:
        content = message.get("content") if choices else output.get("text")
        _check_answered(content, message.get("reasoning_content"), finish, rid)
    return ChatDelta(
        text=text,
        reasoning=message.get("reasoning_content") or "",
        finish_reason=finish,
        usage=parse_usage(payload.get("usage")),
        model=payload.get("model"),
        request_id=rid,
    )
