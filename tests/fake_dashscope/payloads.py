"""What the fake server sends: the scripted reply types and the pure builders of DashScope bodies.

Reply types: :class:`Json`, :class:`Text`, :class:`Sse`, :class:`Auto` (and the faults :class:`~.faults.Reset`,
:class:`~.faults.Slow`, :class:`~.faults.Dribble`, :class:`~.faults.Huge`). Builders: compatible-mode ``completion`` / ``chunks`` / ``make_usage`` /
``error_body``, native ``native_completion`` / ``native_chunks`` / ``native_frames`` / ``native_usage`` /
``native_error_body``.
"""

from __future__ import annotations

import json as _json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Union

from .faults import Dribble, Huge, Reset, Slow

DEFAULT_MODEL = "qwen3-vl-plus"
DEFAULT_TEXT = "Hello!"
BASE_PROMPT_TOKENS = 10


# --------------------------------------------------------------------------------------------------
# Replies
# --------------------------------------------------------------------------------------------------
# The handler dispatches on the class name, not isinstance, so replies built from this package imported
# under another name (``fake_dashscope`` vs ``tests.fake_dashscope``) still work.


@dataclass
class Json:
    body: Any
    status: int = 200
    headers: dict = field(default_factory=dict)


@dataclass
class Text:
    text: str
    status: int = 200
    content_type: str = "text/html"
    headers: dict = field(default_factory=dict)


@dataclass
class Sse:
    """An SSE reply. dict events go out as ``data: <json>\\n\\n``; a str event ending in a newline goes out
    verbatim, any other str gets ``\\n\\n`` appended; bytes go out verbatim. ``done`` appends
    ``data: [DONE]``. ``cut_after=n`` closes the socket abruptly after ``n`` events (no ``[DONE]``, no
    terminating chunk). ``delay`` sleeps before each event after the first."""

    events: list
    status: int = 200
    headers: dict = field(default_factory=dict)
    done: bool = True
    cut_after: int | None = None
    delay: float = 0.0


@dataclass
class Auto:
    """The default behaviour for this one request."""


Reply = Union[Json, Text, Sse, Reset, Slow, Dribble, Huge, Auto]


# --------------------------------------------------------------------------------------------------
# Payload builders (pure)
# --------------------------------------------------------------------------------------------------


def new_id() -> str:
    return str(uuid.uuid4())


def words(text: str | None) -> int:
    return len(text.split()) if text else 0


def dumps(obj: Any) -> str:
    return _json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _pieces(text: str, size: int) -> list[str]:
    size = max(1, int(size))
    return [text[i : i + size] for i in range(0, len(text), size)]


def norm_tool_calls(tool_calls: list[dict] | None) -> list[dict]:
    out = []
    for call in tool_calls or []:
        args = call.get("arguments")
        if args is None:
            args = "{}"
        elif not isinstance(args, str):
            args = dumps(args)
        out.append({"id": call.get("id") or f"call_{uuid.uuid4().hex[:24]}", "name": call["name"], "arguments": args})
    return out


def make_usage(
    *,
    prompt_tokens: int = BASE_PROMPT_TOKENS,
    completion_tokens: int = 0,
    image_tokens: int = 0,
    video_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> dict:
    """A compatible-mode ``usage`` object. ``prompt_tokens`` includes the media tokens and
    ``completion_tokens`` the reasoning tokens, as DashScope reports them."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {
            "image_tokens": image_tokens,
            "video_tokens": video_tokens,
            "text_tokens": max(0, prompt_tokens - image_tokens - video_tokens),
        },
        "completion_tokens_details": {
            "reasoning_tokens": reasoning_tokens,
            "text_tokens": max(0, completion_tokens - reasoning_tokens),
        },
    }


def default_usage(text: str, reasoning: str | None, calls: list[dict], **prompt: int) -> dict:
    reasoning_tokens = words(reasoning)
    answer = words(text) + sum(words(c["name"]) + words(c["arguments"]) for c in calls)
    return make_usage(completion_tokens=answer + reasoning_tokens, reasoning_tokens=reasoning_tokens, **prompt)


def completion(
    text: str | None = None,
    *,
    reasoning: str | None = None,
    tool_calls: list[dict] | None = None,
    finish_reason: str | None = None,
    model: str = DEFAULT_MODEL,
    usage: dict | None = None,
    request_id: str | None = None,
) -> dict:
    """An OpenAI ``chat.completion`` object as DashScope's compatible mode returns it.

    ``text`` defaults to ``"Hello!"``, or ``""`` when there are tool calls."""
    calls = norm_tool_calls(tool_calls)
    if text is None:
        text = "" if calls else DEFAULT_TEXT
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    if calls:
        message["tool_calls"] = [
            {"index": i, "id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for i, c in enumerate(calls)
        ]
    return {
        "id": request_id or new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason or ("tool_calls" if calls else "stop"),
                "logprobs": None,
            }
        ],
        "usage": usage if usage is not None else default_usage(text, reasoning, calls),
    }


def chunks(
    text: str | None = None,
    *,
    reasoning: str | None = None,
    tool_calls: list[dict] | None = None,
    finish_reason: str | None = None,
    model: str = DEFAULT_MODEL,
    usage: dict | None = None,
    include_usage: bool = True,
    piece: int = 4,
    request_id: str | None = None,
) -> list[dict]:
    """``chat.completion.chunk`` dicts: role chunk, reasoning deltas (``content: null`` beside them, as
    DashScope sends), content deltas, tool-call fragments, a finish chunk, then (``include_usage``) a
    ``"choices": []`` chunk carrying ``usage``."""
    calls = norm_tool_calls(tool_calls)
    if text is None:
        text = "" if calls else DEFAULT_TEXT
    rid = request_id or new_id()
    created = int(time.time())

    def chunk(delta: dict, finish: str | None = None) -> dict:
        return {
            "id": rid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": None, "reasoning_content": p}) for p in _pieces(reasoning or "", piece)]
    out += [chunk({"content": p}) for p in _pieces(text, piece)]
    for i, c in enumerate(calls):
        out.append(
            chunk({"tool_calls": [{"index": i, "id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": ""}}]})
        )
        out += [chunk({"tool_calls": [{"index": i, "function": {"arguments": p}}]}) for p in _pieces(c["arguments"], piece)]
    out.append(chunk({}, finish_reason or ("tool_calls" if calls else "stop")))
    if include_usage:
        out.append(
            {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": None,
                "choices": [],
                "usage": usage if usage is not None else default_usage(text, reasoning, calls),
            }
        )
    return out


def native_usage(
    *,
    input_tokens: int = BASE_PROMPT_TOKENS,
    output_tokens: int = 0,
    image_tokens: int = 0,
    video_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> dict:
    """A native-mode ``usage`` object (``image_tokens``/``video_tokens`` only when non-zero, as DashScope does)."""
    usage: dict[str, Any] = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }
    if image_tokens:
        usage["image_tokens"] = image_tokens
    if video_tokens:
        usage["video_tokens"] = video_tokens
    usage["input_tokens_details"] = {
        "text_tokens": max(0, input_tokens - image_tokens - video_tokens),
        **({"image_tokens": image_tokens} if image_tokens else {}),
        **({"video_tokens": video_tokens} if video_tokens else {}),
    }
    usage["output_tokens_details"] = {"text_tokens": max(0, output_tokens - reasoning_tokens)}
    if reasoning_tokens:
        usage["output_tokens_details"]["reasoning_tokens"] = reasoning_tokens
    return usage


def _native_message(text: str, reasoning: str | None) -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": [{"text": text}] if text else []}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    return message


def native_completion(
    text: str = DEFAULT_TEXT,
    *,
    reasoning: str | None = None,
    usage: dict | None = None,
    request_id: str | None = None,
    finish_reason: str = "stop",
) -> dict:
    """A native multimodal-generation response."""
    if usage is None:
        r = words(reasoning)
        usage = native_usage(output_tokens=words(text) + r, reasoning_tokens=r)
    return {
        "request_id": request_id or new_id(),
        "output": {"choices": [{"finish_reason": finish_reason, "message": _native_message(text, reasoning)}]},
        "usage": usage,
    }


def native_chunks(
    text: str = DEFAULT_TEXT,
    *,
    reasoning: str | None = None,
    incremental: bool = True,
    piece: int = 4,
    usage: dict | None = None,
    request_id: str | None = None,
) -> list[dict]:
    """Native streaming events. With ``incremental`` each event holds only the new piece, otherwise the text so
    far. Events before the last carry ``"finish_reason": "null"`` (a string, as DashScope sends it); the last
    carries ``"stop"`` and the final ``usage``; earlier ones a running ``output_tokens``."""
    rid = request_id or new_id()
    if usage is None:
        r = words(reasoning)
        usage = native_usage(output_tokens=words(text) + r, reasoning_tokens=r)
    steps: list[tuple[str, str]] = [("reasoning", p) for p in _pieces(reasoning or "", piece)]
    steps += [("text", p) for p in _pieces(text, piece)]
    if not steps:
        steps = [("text", "")]
    events = []
    seen = {"reasoning": "", "text": ""}
    for i, (field_, p) in enumerate(steps):
        seen[field_] += p
        last = i == len(steps) - 1
        cur = p if incremental else seen[field_]
        if field_ == "reasoning":
            message: dict[str, Any] = {"role": "assistant", "content": [], "reasoning_content": cur}
        else:
            message = {"role": "assistant", "content": [{"text": cur}] if cur else []}
            if reasoning is not None:
                message["reasoning_content"] = "" if incremental else seen["reasoning"]
        if last:
            ev_usage = usage
        else:
            out_tokens = words(seen["reasoning"]) + words(seen["text"])
            ev_usage = {**usage, "output_tokens": out_tokens, "total_tokens": usage.get("input_tokens", 0) + out_tokens}
        events.append(
            {
                "request_id": rid,
                "output": {"choices": [{"finish_reason": "stop" if last else "null", "message": message}]},
                "usage": ev_usage,
            }
        )
    return events


def native_frames(events: list[dict]) -> list[str]:
    """Frame native events the way DashScope does (``id:``, ``event:result``, ``:HTTP_STATUS/200``, ``data:``)."""
    return [f"id:{i}\nevent:result\n:HTTP_STATUS/200\ndata:{dumps(ev)}\n\n" for i, ev in enumerate(events, 1)]


def error_body(message: str, code: str, *, type_: str = "invalid_request_error", request_id: str | None = None) -> dict:
    """A compatible-mode error body."""
    rid = request_id or new_id()
    return {"error": {"message": message, "type": type_, "param": None, "code": code}, "id": rid, "request_id": rid}


def native_error_body(message: str, code: str, *, request_id: str | None = None) -> dict:
    """A native-mode error body."""
    return {"code": code, "message": message, "request_id": request_id or new_id()}
