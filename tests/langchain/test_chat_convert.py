"""The pure LangChain <-> core converters, fed plain dicts and recorded-shape core results."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from qwen_vl_core import ChatDelta, ChatResult, InputValidationError, ToolCall, ToolCallDelta, Usage

from langchain_qwen_vl._convert import (
    assistant_text,
    convert_user_content,
    delta_to_chunk,
    ensure_json_hint,
    final_chunk,
    result_to_message,
    to_core_message,
    to_core_messages,
    usage_to_metadata,
)


def test_user_content_passes_core_forms_through_unchanged() -> None:
    parts = [
        {"type": "text", "text": "hi"},
        {"type": "image", "url": "https://x/a.png"},
        {"type": "image", "base64": "AAAA", "mime_type": "image/png"},
        {"type": "video", "url": "https://x/v.mp4"},
        {"type": "image_url", "image_url": {"url": "https://x/b.png"}},
        {"type": "video_url", "video_url": {"url": "https://x/c.mp4"}},
        {"type": "video", "video": ["a.png", "b.png", "c.png", "d.png"], "fps": 2},
        {"image": "https://x/native.png"},
        {"video": "https://x/native.mp4"},
        "plain string part",
    ]
    assert convert_user_content(parts) == parts
    assert convert_user_content("just text") == "just text"


def test_v0_blocks_become_v1() -> None:
    out = convert_user_content(
        [
            {"type": "image", "source_type": "base64", "data": "QUJD", "mime_type": "image/jpeg"},
            {"type": "image", "source_type": "url", "url": "https://x/y.png"},
            {"type": "video", "source_type": "url", "url": "https://x/y.mp4", "mime_type": "video/mp4"},
        ]
    )
    assert out == [
        {"type": "image", "base64": "QUJD", "mime_type": "image/jpeg"},
        {"type": "image", "url": "https://x/y.png"},
        {"type": "video", "url": "https://x/y.mp4", "mime_type": "video/mp4"},
    ]


def test_anthropic_source_blocks_become_v1() -> None:
    out = convert_user_content(
        [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "QUJD"}}]
    )
    assert out == [{"type": "image", "base64": "QUJD", "mime_type": "image/png"}]


def test_ai_message_with_tool_calls_and_reasoning() -> None:
    msg = AIMessage(
        content=[
            {"type": "reasoning", "reasoning": "secret chain of thought"},
            {"type": "text", "text": "Let me check. "},
            {"type": "tool_call", "id": "c1", "name": "weather", "args": {"city": "杭州"}},
            {"type": "text", "text": "One moment."},
        ],
        additional_kwargs={"reasoning_content": "secret chain of thought"},
        tool_calls=[{"id": "c1", "name": "weather", "args": {"city": "杭州"}, "type": "tool_call"}],
    )
    out = to_core_message(msg)
    assert out["role"] == "assistant"
    assert out["content"] == "Let me check. One moment."
    assert "secret" not in json.dumps(out, ensure_ascii=False)
    assert "reasoning_content" not in out
    assert out["tool_calls"] == [
        {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "杭州"}'}}
    ]
    assert isinstance(out["tool_calls"][0]["function"]["arguments"], str)


def test_ai_message_invalid_tool_call_keeps_raw_arguments() -> None:
    msg = AIMessage(content="", invalid_tool_calls=[{"id": "c9", "name": "f", "args": "{oops", "error": "bad"}])
    assert to_core_message(msg)["tool_calls"][0]["function"]["arguments"] == "{oops"


def test_anthropic_style_ai_content_keeps_only_text() -> None:
    msg = AIMessage(
        [
            {"type": "thinking", "thinking": "hmm", "signature": "x"},
            {"type": "text", "text": "Hello"},
            {"type": "tool_use", "input": {"a": 1}, "id": "foo", "name": "pick"},
        ],
        tool_calls=[{"name": "pick", "args": {"a": 1}, "id": "foo", "type": "tool_call"}],
    )
    out = to_core_message(msg)
    assert out["content"] == "Hello"
    assert [c["id"] for c in out["tool_calls"]] == ["foo"]


def test_ai_content_with_unknown_part_is_an_error() -> None:
    with pytest.raises(InputValidationError, match="image_url"):
        assistant_text([{"type": "image_url", "image_url": {"url": "x"}}])


def test_roles_and_tool_messages() -> None:
    msgs = to_core_messages(
        [
            SystemMessage("be brief"),
            HumanMessage("hi", name="alice"),
            ToolMessage("42", tool_call_id="c1"),
            ToolMessage([{"type": "text", "text": "4"}, "2"], tool_call_id="c2"),
            ChatMessage(role="developer", content="dev note"),
        ]
    )
    assert msgs == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi", "name": "alice"},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
        {"role": "tool", "tool_call_id": "c2", "content": "42"},
        {"role": "system", "content": "dev note"},
    ]
    with pytest.raises(InputValidationError, match="FunctionMessage"):
        to_core_message(FunctionMessage(name="f", content="x"))
    with pytest.raises(InputValidationError, match="role 'wizard'"):
        to_core_message(ChatMessage(role="wizard", content="x"))


def test_json_hint_added_only_when_json_is_not_mentioned() -> None:
    plain = [{"role": "user", "content": "tell me a joke"}]
    hinted = ensure_json_hint(plain)
    assert hinted[0]["role"] == "system" and "JSON" in hinted[0]["content"]
    assert plain == [{"role": "user", "content": "tell me a joke"}]  # input untouched
    with_system = ensure_json_hint([{"role": "system", "content": "Be funny."}, *plain])
    assert len(with_system) == 2 and with_system[0]["content"].startswith("Be funny.") and "JSON" in with_system[0]["content"]
    mentioned = [{"role": "user", "content": [{"type": "text", "text": "answer as json"}]}]
    assert ensure_json_hint(mentioned) is mentioned


def test_usage_details_only_where_known() -> None:
    full = usage_to_metadata(Usage(100, 20, 120, image_tokens=64, video_tokens=8, reasoning_tokens=5, cached_tokens=10))
    assert full == {
        "input_tokens": 100,
        "output_tokens": 20,
        "total_tokens": 120,
        "input_token_details": {"image": 64, "video": 8, "cache_read": 10},
        "output_token_details": {"reasoning": 5},
    }
    bare = usage_to_metadata(Usage(7, 3, 10))
    assert bare == {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}


def test_result_to_message() -> None:
    result = ChatResult(
        text="",
        reasoning="thinking...",
        tool_calls=[ToolCall("c1", "add", '{"a": 1, "b": 2}'), ToolCall("c2", "add", '{"a": 1')],
        finish_reason="tool_calls",
        usage=Usage(10, 5, 15, reasoning_tokens=2),
        model="qwen3-vl-plus",
        request_id="rid-1",
        partial=True,
    )
    msg = result_to_message(result, model="fallback")
    assert msg.additional_kwargs == {"reasoning_content": "thinking..."}
    assert msg.tool_calls == [{"name": "add", "args": {"a": 1, "b": 2}, "id": "c1", "type": "tool_call"}]
    assert msg.invalid_tool_calls[0]["id"] == "c2" and msg.invalid_tool_calls[0]["args"] == '{"a": 1'
    assert msg.response_metadata == {
        "model_name": "qwen3-vl-plus",
        "finish_reason": "tool_calls",
        "request_id": "rid-1",
        "model_provider": "dashscope",
        "partial": True,
    }
    assert msg.content_blocks[0] == {"type": "reasoning", "reasoning": "thinking..."}


def test_deltas_aggregate_into_tool_calls_and_reasoning() -> None:
    deltas = [
        ChatDelta(reasoning="Let me "),
        ChatDelta(reasoning="think."),
        ChatDelta(text="Calling."),
        ChatDelta(tool_calls=[ToolCallDelta(0, id="c1", name="add")]),
        ChatDelta(tool_calls=[ToolCallDelta(0, arguments='{"a": ')]),
        ChatDelta(tool_calls=[ToolCallDelta(1, id="c2", name="mul", arguments='{"x": 2}')]),
        ChatDelta(tool_calls=[ToolCallDelta(0, arguments="1}")]),
        ChatDelta(),  # role chunk: nothing
    ]
    parts = [c for c in (delta_to_chunk(d) for d in deltas) if c is not None]
    assert len(parts) == 7
    assert parts[0].usage_metadata is None and "model_name" not in parts[0].response_metadata
    summary = ChatResult(finish_reason="tool_calls", usage=Usage(3, 4, 7), model="qwen3-vl-plus", request_id="r")
    full = parts[0]
    for part in [*parts[1:], final_chunk(summary, model="x")]:
        full = full + part
    assert isinstance(full, AIMessageChunk)
    assert full.additional_kwargs["reasoning_content"] == "Let me think."
    assert full.text == "Calling."
    assert [(c["name"], c["args"]) for c in full.tool_calls] == [("add", {"a": 1}), ("mul", {"x": 2})]
    assert full.usage_metadata["total_tokens"] == 7
    assert full.response_metadata["model_name"] == "qwen3-vl-plus"
    assert full.response_metadata["model_provider"] == "dashscope"
