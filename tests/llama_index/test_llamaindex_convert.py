"""The LlamaIndex <-> core converters, as pure functions over plain objects (no server)."""

from __future__ import annotations

import base64
import json

import pytest
from llama_index.core.base.llms.types import (
    AudioBlock,
    CacheControl,
    CachePoint,
    ChatMessage,
    ImageBlock,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    VideoBlock,
)
from tests.support.llama_index import MP4_BYTES, image_bytes

from llama_index_qwen_vl._convert import (
    chat_response,
    stream_response,
    to_core_messages,
    tool_selections,
    usage_kwargs,
)
from qwen_vl_core import ChatDelta, ChatResult, InputValidationError, StreamAccumulator, ToolCall, ToolCallDelta, Usage
from qwen_vl_core.messages import MediaSettings, normalize_messages


def test_text_only_message_becomes_a_plain_string():
    out = to_core_messages([ChatMessage(role="system", content="be brief"), ChatMessage(content="hi")])
    assert out == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]


def test_developer_role_is_sent_as_system():
    assert to_core_messages([ChatMessage(role="developer", content="x")])[0]["role"] == "system"


def test_image_block_bytes_path_url_and_detail(tmp_path):
    png = image_bytes()
    path = tmp_path / "a.png"
    path.write_bytes(png)
    msg = ChatMessage(
        blocks=[
            ImageBlock(image=png, detail="high"),
            ImageBlock(path=path),
            ImageBlock(url="https://example.com/cat.jpg"),
            TextBlock(text="compare"),
        ]
    )
    parts = to_core_messages([msg])[0]["content"]
    assert parts[0] == {"type": "image_url", "image_url": {"url": png, "detail": "high"}}  # raw bytes, not base64
    assert parts[1] == {"type": "image_url", "image_url": {"url": str(path)}}
    assert parts[2] == {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
    assert parts[3] == {"type": "text", "text": "compare"}


def test_video_block_url_bytes_and_fps():
    parts = to_core_messages(
        [ChatMessage(blocks=[VideoBlock(url="https://example.com/v.mp4", fps=2), VideoBlock(video=MP4_BYTES)])]
    )[0]["content"]
    assert parts[0] == {"type": "video_url", "video_url": {"url": "https://example.com/v.mp4"}, "fps": 2}
    assert parts[1] == {"type": "video_url", "video_url": {"url": MP4_BYTES}}


def test_assistant_tool_calls_thinking_dropped_and_tool_result():
    history = [
        ChatMessage(
            role="assistant",
            blocks=[
                ThinkingBlock(content="let me think"),
                TextBlock(text=""),
                ToolCallBlock(tool_call_id="call_1", tool_name="add", tool_kwargs={"a": 1, "b": 2}),
            ],
        ),
        ChatMessage(role="tool", content="3", additional_kwargs={"tool_call_id": "call_1"}),
    ]
    out = to_core_messages(history)
    assert out[0] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}}],
    }
    assert out[1] == {"role": "tool", "content": "3", "tool_call_id": "call_1"}


def test_legacy_additional_kwargs_tool_calls_are_sent():
    msg = ChatMessage(
        role="assistant",
        content="",
        additional_kwargs={"tool_calls": [{"id": "c9", "function": {"name": "f", "arguments": {"x": 1}}}]},
    )
    assert to_core_messages([msg])[0]["tool_calls"] == [
        {"id": "c9", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
    ]


def test_images_from_tools_follow_the_tool_messages_as_user_media():
    png = image_bytes()
    out = to_core_messages(
        [
            ChatMessage(role="assistant", blocks=[ToolCallBlock(tool_call_id="a", tool_name="snap"),
                                                  ToolCallBlock(tool_call_id="b", tool_name="snap")]),
            ChatMessage(role="tool", blocks=[TextBlock(text="one"), ImageBlock(image=png)],
                        additional_kwargs={"tool_call_id": "a"}),
            ChatMessage(role="tool", content="two", additional_kwargs={"tool_call_id": "b"}),
            ChatMessage(role="user", content="what do you see?"),
        ]
    )
    # the adapter keeps them in the tool message; the core's one rule moves them (qwen_vl_core.tool_media)
    assert [m["role"] for m in out] == ["assistant", "tool", "tool", "user"]
    assert out[1]["content"][1] == {"type": "image_url", "image_url": {"url": png}}
    wire = normalize_messages(out, MediaSettings(model="qwen3-vl-plus")).messages
    assert [m["role"] for m in wire] == ["assistant", "tool", "tool", "user", "user"]
    assert wire[1] == {"role": "tool", "content": "one", "tool_call_id": "a"}
    assert wire[3]["content"][0]["text"] == "Image returned by tool call a (snap):"
    assert wire[3]["content"][1]["type"] == "image_url"


def test_unsupported_inputs_fail_before_any_request():
    with pytest.raises(InputValidationError, match="AudioBlock"):
        to_core_messages([ChatMessage(blocks=[AudioBlock(audio=b"RIFF0000WAVEfmt ")])])
    with pytest.raises(InputValidationError, match="tool_call_id"):
        to_core_messages([ChatMessage(role="tool", content="3")])
    with pytest.raises(InputValidationError, match="no image"):
        to_core_messages([ChatMessage(blocks=[ImageBlock()])])


def test_cache_points_are_ignored():
    msg = ChatMessage(blocks=[TextBlock(text="a"), CachePoint(cache_control=CacheControl(type="ephemeral"))])
    assert to_core_messages([msg])[0]["content"] == "a"


def test_chat_response_blocks_and_token_counts():
    result = ChatResult(
        text="42",
        reasoning="because",
        tool_calls=[ToolCall(id="c1", name="add", arguments='{"a": 1}')],
        finish_reason="tool_calls",
        usage=Usage(input_tokens=10, output_tokens=5, total_tokens=15, image_tokens=8, reasoning_tokens=2),
        model="qwen3-vl-plus",
        request_id="rid-1",
    )
    resp = chat_response(result)
    thinking, text, call = resp.message.blocks
    assert thinking == ThinkingBlock(content="because", num_tokens=2)
    assert text.text == "42" and resp.message.content == "42"
    assert (call.tool_call_id, call.tool_name, call.tool_kwargs) == ("c1", "add", {"a": 1})
    assert resp.additional_kwargs == {
        "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "image_tokens": 8, "reasoning_tokens": 2,
    }  # fmt: skip
    assert resp.raw["request_id"] == "rid-1" and resp.raw["usage"]["image_tokens"] == 8
    assert [s.tool_kwargs for s in tool_selections(resp)] == [{"a": 1}]


def test_stream_responses_thinking_deltas_and_tool_fragments():
    acc = StreamAccumulator()
    r1 = stream_response(acc, ChatDelta(reasoning="hm"))
    assert r1.additional_kwargs["thinking_delta"] == "hm" and r1.delta == ""
    assert stream_response(acc, ChatDelta()) is None  # nothing new: nothing yielded
    r2 = stream_response(acc, ChatDelta(text="ok"))
    assert "thinking_delta" not in r2.additional_kwargs and r2.delta == "ok"
    stream_response(acc, ChatDelta(tool_calls=[ToolCallDelta(index=0, id="c1", name="f", arguments='{"x"')]))
    partial = stream_response(acc, ChatDelta(tool_calls=[ToolCallDelta(index=0, arguments=": 1")]))
    assert partial.message.blocks[-1].tool_kwargs == '{"x": 1'  # still a fragment
    assert tool_selections(partial)[0].tool_kwargs == {"x": 1}  # partial JSON is parsed leniently
    stream_response(acc, ChatDelta(tool_calls=[ToolCallDelta(index=0, arguments="}")], finish_reason="tool_calls"))
    final = stream_response(acc, ChatDelta(usage=Usage(1, 2, 3)))
    blocks = final.message.blocks
    assert blocks[0].content == "hm" and blocks[1].text == "ok"
    assert blocks[2].tool_kwargs == {"x": 1}
    assert final.additional_kwargs["completion_tokens"] == 2
    assert final.raw["finish_reason"] == "tool_calls" and final.raw["usage"]["total_tokens"] == 3


def test_streamed_metadata_from_a_role_only_chunk_is_kept():
    acc = StreamAccumulator()
    assert stream_response(acc, ChatDelta(model="qwen3-vl-plus", request_id="rid-9")) is None
    response = stream_response(acc, ChatDelta(text="hi"))
    assert (response.raw["model"], response.raw["request_id"]) == ("qwen3-vl-plus", "rid-9")


def test_invalid_complete_arguments_keep_their_text():
    resp = chat_response(ChatResult(tool_calls=[ToolCall("c1", "f", '{"a": 1,'), ToolCall("c2", "g", "[1]")]))
    assert [b.tool_kwargs for b in resp.message.blocks[1:]] == ['{"a": 1,', "[1]"]
    assert [s.tool_kwargs for s in tool_selections(resp)] == [{"a": 1}, {}]


def test_no_tool_call_error_or_empty():
    resp = chat_response(ChatResult(text="no tools"))
    with pytest.raises(ValueError, match="tool call"):
        tool_selections(resp)
    assert tool_selections(resp, error_on_no_tool_call=False) == []


def test_usage_kwargs_without_usage():
    assert usage_kwargs(None) == {}
    assert json.dumps(usage_kwargs(Usage(1, 1, 2)))  # plain ints


def test_image_bytes_given_as_base64_are_decoded():
    png = image_bytes()
    block = ImageBlock(image=base64.b64encode(png))
    assert to_core_messages([ChatMessage(blocks=[block])])[0]["content"][0]["image_url"]["url"] == png
