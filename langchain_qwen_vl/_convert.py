"""LangChain messages <-> ``qwen_vl_core`` dicts. Pure functions, no I/O.

Inbound, content parts pass through unchanged wherever the core already understands them
(LangChain v1 ``image``/``video`` blocks, OpenAI ``image_url``/``video_url`` parts, frame lists,
DashScope-native ``{"image"}``/``{"video"}``, local paths, ``file://`` URIs, bytes, PIL images).
Only LangChain-specific shapes are rewritten here: v0 multimodal blocks, Anthropic-style
``source`` blocks, and the non-text blocks LangChain keeps in assistant content (``reasoning``,
``tool_call``, ``thinking``, ``tool_use``), which are never sent back as content. ``file`` blocks
(PDFs, TIFFs; v1, v0 ``source_type`` and OpenAI shapes) and images in ``ToolMessage`` content go
to the core as they are: it renders documents into page images and moves tool images into a user
message (:mod:`qwen_vl_core.documents.chat_pages`, :mod:`qwen_vl_core.tool_media`).

Outbound, a core :class:`~qwen_vl_core.ChatResult` / :class:`~qwen_vl_core.ChatDelta` becomes an
``AIMessage`` / ``AIMessageChunk`` with reasoning in ``additional_kwargs["reasoning_content"]``
(which ``content_blocks`` turns into a standard ``reasoning`` block), tool calls,
``usage_metadata`` and ``response_metadata`` (with ``images``: each image's original, sent and
model-side size, from :class:`qwen_vl_core.grounding.ImageRecord`, when the request had images).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.ai import InputTokenDetails, OutputTokenDetails, UsageMetadata
from langchain_core.messages.tool import invalid_tool_call, tool_call, tool_call_chunk
from langchain_core.outputs import ChatGeneration
from langchain_core.outputs import ChatResult as LCChatResult
from qwen_vl_core import ChatDelta, ChatResult, InputValidationError, Usage
from qwen_vl_core.messages import content_has_text
from qwen_vl_core.structured import JSON_HINT
from qwen_vl_core.tools import arguments_json

__all__ = [
    "MODEL_PROVIDER",
    "to_core_messages",
    "to_core_message",
    "convert_user_content",
    "assistant_text",
    "ensure_json_hint",
    "usage_to_metadata",
    "result_to_message",
    "chat_result",
    "delta_to_chunk",
    "final_chunk",
]

MODEL_PROVIDER = "dashscope"

# Assistant-content block types that are not text and must not be sent back as content.
_NON_TEXT_AI_BLOCKS = frozenset(
    {"reasoning", "thinking", "redacted_thinking", "tool_call", "tool_call_chunk", "tool_use",
     "invalid_tool_call", "server_tool_call", "server_tool_result", "non_standard"}
)
_ROLES = {"human": "user", "user": "user", "ai": "assistant", "assistant": "assistant",
          "system": "system", "developer": "system", "tool": "tool"}


# ---------------------------------------------------------------------------------------- inbound


_KEPT_KEYS = ("filename", "extras", "pages", "password", "min_pixels", "max_pixels", "fps")


def _v0_block(part: Mapping[str, Any]) -> dict[str, Any]:
    """LangChain v0 ``{"type", "source_type": "url"|"base64"|"id"|"text", ...}`` -> v1 block (a
    ``file`` block with ``source_type`` "text" is a text document: a text part)."""
    kind = part.get("type")
    source = part.get("source_type")
    if kind == "file" and source == "text":
        text = part.get("text") if isinstance(part.get("text"), str) else part.get("url")
        if not isinstance(text, str):
            raise InputValidationError(f"file block with source_type 'text' has no text: {_brief(part)}")
        return {"type": "text", "text": text}
    out: dict[str, Any] = {"type": kind}
    for key in _KEPT_KEYS:
        if key in part:
            out[key] = part[key]
    if source == "url":
        out["url"] = part.get("url")
    elif source == "base64":
        out["base64"] = part.get("data")
    elif source == "id":
        out["file_id"] = part.get("id")
    else:  # "text" sources are documents, not media
        raise InputValidationError(f"{kind} block with source_type {source!r} is not supported: {_brief(part)}")
    if part.get("mime_type"):
        out["mime_type"] = part["mime_type"]
    return out


def _anthropic_block(part: Mapping[str, Any]) -> dict[str, Any]:
    """Anthropic ``{"type": "image" | "document", "source": {"type": "base64"|"url", ...}}`` -> v1
    block (a document becomes a ``file`` block; a plain-text document a text part)."""
    src = part["source"]
    kind = part.get("type")
    if kind == "document" and src.get("type") == "text":
        return {"type": "text", "text": str(src.get("data") or "")}
    out: dict[str, Any] = {"type": "file" if kind == "document" else kind}
    if kind == "document" and isinstance(part.get("title"), str):
        out["filename"] = part["title"]
    if src.get("type") == "base64":
        out["base64"] = src.get("data")
        if src.get("media_type"):
            out["mime_type"] = src["media_type"]
    elif src.get("type") == "url":
        out["url"] = src.get("url")
    else:
        raise InputValidationError(f"{part.get('type')} block with source type {src.get('type')!r} is not supported")
    return out


def _brief(part: Any) -> str:
    text = repr(part)
    return text if len(text) <= 120 else text[:117] + "..."


def _convert_part(part: Any) -> Any:
    if not isinstance(part, Mapping):
        return part  # str, Path, bytes, PIL image: the core resolves them
    kind = part.get("type")
    if kind in ("image", "video", "audio", "file") and "source_type" in part:
        return _v0_block(part)
    if kind in ("image", "video", "document") and isinstance(part.get("source"), Mapping):
        return _anthropic_block(part)
    if kind == "text-plain":  # v1 plain-text document block
        return {"type": "text", "text": part.get("text", "")}
    return part


def convert_user_content(content: Any) -> Any:
    """Content of a user/system/tool message for the core (strings stay strings)."""
    if isinstance(content, str) or content is None:
        return content
    if isinstance(content, Mapping):
        content = [content]
    return [_convert_part(part) for part in content]


def assistant_text(content: Any) -> str:
    """The text of an assistant message: text parts only (reasoning and tool calls are not content)."""
    if isinstance(content, str):
        return content
    pieces: list[str] = []
    for part in content or []:
        if isinstance(part, str):
            pieces.append(part)
        elif isinstance(part, Mapping):
            kind = part.get("type")
            if kind == "text" or (kind is None and isinstance(part.get("text"), str)):
                pieces.append(part.get("text") or "")
            elif kind in _NON_TEXT_AI_BLOCKS:
                continue
            else:
                raise InputValidationError(
                    f"assistant message content part of type {kind!r} cannot be sent to Qwen-VL: {_brief(part)}"
                )
    return "".join(pieces)


def _tool_call_wire(call: Mapping[str, Any]) -> dict[str, Any]:
    arguments = arguments_json(call.get("args"), missing="{}")  # invalid tool calls keep their raw text
    return {"id": call.get("id") or "", "type": "function", "function": {"name": call.get("name") or "", "arguments": arguments}}


def _tool_text(content: Any) -> Any:
    """Tool results: text parts joined to a string; anything else passes through to the core."""
    if isinstance(content, str):
        return content
    parts = list(content) if isinstance(content, Sequence) else [content]
    if all(isinstance(p, str) or (isinstance(p, Mapping) and p.get("type") == "text") for p in parts):
        return "".join(p if isinstance(p, str) else p.get("text", "") for p in parts)
    return convert_user_content(parts)


def to_core_message(message: BaseMessage) -> dict[str, Any]:
    """One LangChain message -> one core message dict."""
    if isinstance(message, HumanMessage):
        out: dict[str, Any] = {"role": "user", "content": convert_user_content(message.content)}
        if message.name:
            out["name"] = message.name
        return out
    if isinstance(message, SystemMessage):
        return {"role": "system", "content": convert_user_content(message.content)}
    if isinstance(message, AIMessage):
        out = {"role": "assistant", "content": assistant_text(message.content)}
        calls = [_tool_call_wire(c) for c in message.tool_calls]
        calls += [_tool_call_wire(c) for c in message.invalid_tool_calls]
        if calls:
            out["tool_calls"] = calls
        if message.name:
            out["name"] = message.name
        return out
    if isinstance(message, ToolMessage):
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": _tool_text(message.content)}
    if isinstance(message, ChatMessage):
        role = _ROLES.get(message.role.lower())
        if role is None:
            raise InputValidationError(f"ChatMessage role {message.role!r} is not one of: {', '.join(sorted(_ROLES))}")
        if role == "assistant":
            return {"role": role, "content": assistant_text(message.content)}
        return {"role": role, "content": convert_user_content(message.content)}
    if isinstance(message, FunctionMessage):
        raise InputValidationError("FunctionMessage (legacy OpenAI functions) is not supported; use ToolMessage")
    raise InputValidationError(f"unsupported message type {type(message).__name__}")


def to_core_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    return [to_core_message(m) for m in messages]


def ensure_json_hint(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """JSON mode needs the word "json" in the prompt (DashScope answers 400 otherwise).

    When no message mentions it, a JSON instruction is appended to the leading system message,
    or a system message holding it is put first. The input list is not modified.
    """
    if content_has_text(messages, "json"):
        return messages
    out = list(messages)
    first = out[0] if out else None
    if first is not None and first.get("role") == "system":
        content = first.get("content")
        if isinstance(content, str):
            out[0] = {**first, "content": f"{content}\n\n{JSON_HINT}" if content else JSON_HINT}
        else:
            out[0] = {**first, "content": [*(content or []), {"type": "text", "text": JSON_HINT}]}
    else:
        out.insert(0, {"role": "system", "content": JSON_HINT})
    return out


# --------------------------------------------------------------------------------------- outbound


def usage_to_metadata(usage: Usage) -> UsageMetadata:
    """Core usage -> LangChain ``UsageMetadata``; details only where the server reported them.

    ``input_token_details`` may hold ``image`` and ``video`` (provider keys; the TypedDict allows
    extra keys) and ``cache_read``; ``output_token_details`` holds ``reasoning``.
    """
    meta = UsageMetadata(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens or usage.input_tokens + usage.output_tokens,
    )
    inp: dict[str, int] = {}
    if usage.image_tokens is not None:
        inp["image"] = usage.image_tokens
    if usage.video_tokens is not None:
        inp["video"] = usage.video_tokens
    if usage.cached_tokens is not None:
        inp["cache_read"] = usage.cached_tokens
    if inp:
        meta["input_token_details"] = InputTokenDetails(**inp)  # type: ignore[typeddict-item]
    if usage.reasoning_tokens is not None:
        meta["output_token_details"] = OutputTokenDetails(reasoning=usage.reasoning_tokens)
    return meta


def _response_metadata(
    result: ChatResult | ChatDelta, model: str, images: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    out = {
        "model_name": result.model or model,
        "finish_reason": result.finish_reason,
        "request_id": result.request_id,
        "model_provider": MODEL_PROVIDER,
        "partial": bool(result.partial),
    }
    if images:
        out["images"] = images
    return out


def result_to_message(result: ChatResult, *, model: str, images: list[dict[str, Any]] | None = None) -> AIMessage:
    """A complete core result -> ``AIMessage`` (v0 content; LangChain converts for ``output_version="v1"``)."""
    calls = []
    invalid = []
    for call in result.tool_calls:
        try:
            calls.append(tool_call(name=call.name, args=call.parsed_arguments(), id=call.id))
        except ValueError as exc:
            invalid.append(invalid_tool_call(name=call.name, args=call.arguments, id=call.id, error=str(exc)))
    additional: dict[str, Any] = {}
    if result.reasoning:
        additional["reasoning_content"] = result.reasoning
    return AIMessage(
        content=result.text,
        additional_kwargs=additional,
        tool_calls=calls,
        invalid_tool_calls=invalid,
        usage_metadata=usage_to_metadata(result.usage) if result.usage else None,
        response_metadata=_response_metadata(result, model, images),
    )


def chat_result(result: ChatResult, *, model: str, images: list[dict[str, Any]] | None = None) -> LCChatResult:
    """A complete core result -> LangChain's ``ChatResult`` (one generation, ``llm_output`` with
    the model name and token usage); ``images`` are the request's image records (response metadata)."""
    message = result_to_message(result, model=model, images=images)
    llm_output: dict[str, Any] = {"model_name": message.response_metadata["model_name"]}
    if result.usage is not None:
        llm_output["token_usage"] = result.usage.to_dict()
    return LCChatResult(
        generations=[ChatGeneration(message=message, generation_info={"finish_reason": result.finish_reason})],
        llm_output=llm_output,
    )


def delta_to_chunk(delta: ChatDelta) -> AIMessageChunk | None:
    """The content of one stream delta (text, reasoning, tool-call fragments), or ``None`` if empty.

    Usage and response metadata are not put on content chunks: :func:`final_chunk` carries them
    once, so aggregating the chunks never double-counts or concatenates them.
    """
    if not (delta.text or delta.reasoning or delta.tool_calls):
        return None
    additional = {"reasoning_content": delta.reasoning} if delta.reasoning else {}
    return AIMessageChunk(
        content=delta.text,
        additional_kwargs=additional,
        tool_call_chunks=[
            tool_call_chunk(name=f.name, args=f.arguments or None, id=f.id, index=f.index) for f in delta.tool_calls
        ],
        response_metadata={"model_provider": MODEL_PROVIDER},
    )


def final_chunk(summary: ChatResult, *, model: str, images: list[dict[str, Any]] | None = None) -> AIMessageChunk:
    """The closing chunk of a stream: finish reason, model, request id, partial flag, usage and
    the request's image records (``summary`` is the stream folded by
    :class:`qwen_vl_core.StreamAccumulator`)."""
    return AIMessageChunk(
        content="",
        usage_metadata=usage_to_metadata(summary.usage) if summary.usage else None,
        response_metadata=_response_metadata(summary, model, images),
        chunk_position="last",
    )

