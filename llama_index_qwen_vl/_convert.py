"""LlamaIndex chat messages <-> core message dicts and results. Pure functions, no I/O.

Content blocks map one-to-one onto parts the core accepts (it resolves and validates the media):

* ``TextBlock``  -> ``{"type": "text", "text": ...}``
* ``ImageBlock`` -> ``{"type": "image_url", "image_url": {"url": X, "detail"?}}``, X = bytes | path | URL
* ``VideoBlock`` -> ``{"type": "video_url", "video_url": {"url": X}, "fps"?}``
* ``DocumentBlock`` -> ``{"type": "file", ...}`` (data, path or url; its pages are rendered by the core,
  :mod:`qwen_vl_core.documents.chat_pages`)
* ``ToolCallBlock`` (assistant) -> an entry of ``tool_calls``; ``ThinkingBlock`` and ``CachePoint`` are not sent.

Images in tool results stay in the tool message here; the core moves them into a user message
after the tool results (:mod:`qwen_vl_core.tool_media`), as for every caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    AudioBlock,
    CachePoint,
    ChatMessage,
    ChatResponse,
    DocumentBlock,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    VideoBlock,
)
from llama_index.core.llms.llm import ToolSelection

from qwen_vl_core import ChatDelta, ChatResult, InputValidationError, StreamAccumulator, Usage
from qwen_vl_core.tools import arguments_json, parse_arguments

__all__ = [
    "to_core_messages",
    "image_part",
    "video_part",
    "document_part",
    "chat_response",
    "usage_kwargs",
    "stream_response",
    "tool_selections",
]

_ROLES = {
    MessageRole.SYSTEM: "system",
    MessageRole.DEVELOPER: "system",
    MessageRole.USER: "user",
    MessageRole.ASSISTANT: "assistant",
    MessageRole.MODEL: "assistant",
    MessageRole.CHATBOT: "assistant",
    MessageRole.TOOL: "tool",
    MessageRole.FUNCTION: "tool",
}


# ---------------------------------------------------------------- blocks -> parts


def _binary(block: Any, data_attr: str, resolve: str) -> bytes:
    """Raw bytes of a block's inline data (LlamaIndex stores them base64-encoded)."""
    buffer = getattr(block, resolve)()
    data = buffer.read()
    if not data:
        raise InputValidationError(f"{type(block).__name__}.{data_attr} is empty")
    return data


def _source(block: Any, data_attr: str, resolve: str) -> Any:
    if getattr(block, data_attr) is not None:
        return _binary(block, data_attr, resolve)
    if block.path is not None:
        return str(block.path)
    if block.url is not None:
        return str(block.url)
    raise InputValidationError(f"{type(block).__name__} has no {data_attr}, path or url")


def image_part(block: ImageBlock) -> dict[str, Any]:
    inner: dict[str, Any] = {"url": _source(block, "image", "resolve_image")}
    if block.detail:
        inner["detail"] = block.detail
    return {"type": "image_url", "image_url": inner}


def video_part(block: VideoBlock) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "video_url", "video_url": {"url": _source(block, "video", "resolve_video")}}
    if block.fps is not None:
        part["fps"] = block.fps
    return part


def document_part(block: DocumentBlock) -> dict[str, Any]:
    """A ``DocumentBlock`` as a core ``file`` part: its bytes, else its path, else its URL (which
    the core refuses for remote documents: nothing is downloaded)."""
    part: dict[str, Any] = {"type": "file"}
    if block.data is not None:
        part["base64"] = _binary(block, "data", "resolve_document")
    elif block.path is not None:
        part["path"] = str(block.path)
    elif block.url is not None:
        part["url"] = str(block.url)
    else:
        raise InputValidationError("DocumentBlock has no data, path or url")
    if block.document_mimetype:
        part["mime_type"] = block.document_mimetype
    if block.title and block.title != "input_document":  # LlamaIndex's default title names nothing
        part["filename"] = block.title
    return part


def _legacy_tool_call(call: Any) -> dict[str, Any]:
    """An OpenAI-style tool call (dict or SDK object) kept in ``additional_kwargs["tool_calls"]``."""
    if not isinstance(call, Mapping):
        call = call.model_dump() if hasattr(call, "model_dump") else dict(call)
    fn = call.get("function") or {}
    if not isinstance(fn, Mapping):
        fn = fn.model_dump() if hasattr(fn, "model_dump") else dict(fn)
    return {
        "id": call.get("id"),
        "type": "function",
        "function": {"name": fn.get("name"), "arguments": arguments_json(fn.get("arguments"), missing="{}")},
    }


def _content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if len(parts) == 1 and parts[0]["type"] == "text":
        return parts[0]["text"]
    if not parts:
        return ""
    return parts


def _parts(message: ChatMessage, index: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Any]]:
    """-> (text and media parts, tool calls, media parts only)."""
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    media: list[dict[str, Any]] = []
    for block in message.blocks:
        if isinstance(block, TextBlock):
            parts.append({"type": "text", "text": block.text})
        elif isinstance(block, ImageBlock):
            part = image_part(block)
            parts.append(part)
            media.append(part)
        elif isinstance(block, VideoBlock):
            part = video_part(block)
            parts.append(part)
            media.append(part)
        elif isinstance(block, DocumentBlock):
            part = document_part(block)
            parts.append(part)
            media.append(part)
        elif isinstance(block, ToolCallBlock):
            calls.append(
                {
                    "id": block.tool_call_id or f"call_{index}_{len(calls)}",
                    "type": "function",
                    "function": {"name": block.tool_name, "arguments": arguments_json(block.tool_kwargs, missing="{}")},
                }
            )
        elif isinstance(block, (ThinkingBlock, CachePoint)):
            continue  # reasoning is not sent back; cache points are an Anthropic concept
        elif isinstance(block, AudioBlock):
            raise InputValidationError(
                f"message {index}: {type(block).__name__} is not supported by Qwen-VL (text, images, videos and documents)"
            )
        else:
            raise InputValidationError(f"message {index}: unsupported content block {type(block).__name__}")
    return parts, calls, media


def to_core_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """Convert LlamaIndex messages to the core's message dicts, one for one.

    A tool result keeps its images, videos and documents; the core sends them in a user message
    right after the run of tool messages (DashScope takes media in user messages only).
    """
    out: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        role = _ROLES.get(message.role)
        if role is None:
            raise InputValidationError(f"message {index} has unsupported role {message.role!r}")
        parts, calls, media = _parts(message, index)
        kwargs = message.additional_kwargs or {}
        wire: dict[str, Any] = {"role": role}
        if role == "tool":
            call_id = kwargs.get("tool_call_id")
            if not call_id:
                raise InputValidationError(
                    f"message {index} is a tool result without additional_kwargs['tool_call_id']"
                )
            text = "\n".join(p["text"] for p in parts if p["type"] == "text")
            wire["content"] = parts if media else text
            wire["tool_call_id"] = call_id
        elif role == "assistant":
            if not calls and kwargs.get("tool_calls"):
                calls = [_legacy_tool_call(c) for c in kwargs["tool_calls"]]
            if media:
                raise InputValidationError(f"message {index}: an assistant message cannot carry images or videos")
            wire["content"] = _content(parts)
            if calls:
                wire["tool_calls"] = calls
        else:
            wire["content"] = _content(parts)
        if role != "tool" and kwargs.get("name"):
            wire["name"] = kwargs["name"]
        out.append(wire)
    return out


# ---------------------------------------------------------------- results -> responses


def usage_kwargs(usage: Usage | None) -> dict[str, int]:
    """OpenAI-style token counts (what LlamaIndex's TokenCountingHandler reads) plus Qwen details."""
    if usage is None:
        return {}
    out = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }
    for name in ("image_tokens", "video_tokens", "reasoning_tokens", "cached_tokens"):
        value = getattr(usage, name)
        if value is not None:
            out[name] = value
    return out


def _raw(result: ChatResult, images: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    raw = {
        "model": result.model,
        "request_id": result.request_id,
        "finish_reason": result.finish_reason,
        "usage": result.usage.to_dict() if result.usage is not None else None,
        "partial": result.partial,
    }
    if images:
        raw["images"] = images  # each image's original, sent and model-side size (grounding)
    return raw


def _tool_kwargs(arguments: str) -> dict[str, Any] | str:
    """Complete arguments as a dict, or their raw text when it is not one JSON object."""
    try:
        return parse_arguments(arguments)
    except ValueError:
        return arguments


def _blocks(text: str, reasoning: str, usage: Usage | None, calls: Iterable[tuple[str, str, Any]]) -> list[Any]:
    blocks: list[Any] = []
    if reasoning:
        blocks.append(ThinkingBlock(content=reasoning, num_tokens=usage.reasoning_tokens if usage else None))
    blocks.append(TextBlock(text=text))
    for call_id, name, kwargs in calls:
        blocks.append(ToolCallBlock(tool_call_id=call_id, tool_name=name, tool_kwargs=kwargs))
    return blocks


def chat_response(
    result: ChatResult, *, finished: bool = True, images: list[dict[str, Any]] | None = None
) -> ChatResponse:
    """An answer: ThinkingBlock (if any), TextBlock, then one ToolCallBlock per call, whose
    arguments are parsed once ``finished`` (before that, their JSON text so far). ``images`` (the
    request's image records) go into ``raw["images"]``."""
    calls = [(c.id, c.name, _tool_kwargs(c.arguments) if finished else c.arguments) for c in result.tool_calls]
    message = ChatMessage(
        role=MessageRole.ASSISTANT, blocks=_blocks(result.text, result.reasoning, result.usage, calls)
    )
    return ChatResponse(message=message, raw=_raw(result, images), additional_kwargs=usage_kwargs(result.usage))


def stream_response(
    acc: StreamAccumulator, delta: ChatDelta, images: list[dict[str, Any]] | None = None
) -> ChatResponse | None:
    """Fold ``delta`` into ``acc``; the cumulative response LlamaIndex expects from ``stream_chat``,
    or ``None`` when the delta carried nothing to show.

    The response holds the whole message so far, ``delta`` (the new answer text) and, when the
    model reasoned in this chunk, ``additional_kwargs["thinking_delta"]`` (what LlamaIndex agents
    surface as ``AgentStream.thinking_delta``).
    """
    if not acc.add(delta):
        return None
    response = chat_response(acc.build(), finished=acc.finished, images=images)
    response.delta = delta.text
    if delta.reasoning:
        response.additional_kwargs["thinking_delta"] = delta.reasoning
    return response


# ---------------------------------------------------------------- tools


def tool_selections(response: ChatResponse, error_on_no_tool_call: bool = True) -> list[ToolSelection]:
    calls = [b for b in response.message.blocks if isinstance(b, ToolCallBlock)]
    if not calls:
        if error_on_no_tool_call:
            raise ValueError("Expected at least one tool call, but the model answered without one.")
        return []
    selections = []
    for call in calls:
        kwargs = parse_arguments(call.tool_kwargs, partial=True)  # a streamed call may be incomplete
        selections.append(ToolSelection(tool_id=call.tool_call_id or "", tool_name=call.tool_name, tool_kwargs=kwargs))
    return selections
