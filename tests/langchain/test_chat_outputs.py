"""What ChatQwenVL returns: reasoning (invoke and stream, v0 and v1), stream-only models, usage
details, response metadata, per-call model override, batch, and natively async calls."""

from __future__ import annotations

import asyncio
import logging

import pytest
from tests.support.chat import Json, Sse, b64, chunks, completion, make_model, png_bytes
from langchain_core.messages import AIMessageChunk, HumanMessage

from langchain_qwen_vl import ChatQwenVL

REASONING = "Thinking about the request."


def _aggregate(stream) -> AIMessageChunk:
    full = None
    for chunk in stream:
        assert isinstance(chunk, AIMessageChunk)
        full = chunk if full is None else full + chunk
    assert full is not None
    return full


def test_thinking_invoke(dashscope) -> None:
    reply = make_model(dashscope, enable_thinking=True).invoke("why is the sky blue?")
    body = dashscope.last_body
    assert body["enable_thinking"] is True
    assert body["stream"] is True  # DashScope only serves thinking calls streamed
    assert reply.additional_kwargs["reasoning_content"] == REASONING
    assert reply.content_blocks[0] == {"type": "reasoning", "reasoning": REASONING}
    assert reply.content_blocks[1]["type"] == "text"
    assert isinstance(reply.content, str) and REASONING not in reply.content
    assert reply.usage_metadata["output_token_details"]["reasoning"] == 4


def test_thinking_budget_is_sent(dashscope) -> None:
    make_model(dashscope, enable_thinking=True, thinking_budget=2048).invoke("hi")
    assert dashscope.last_body["thinking_budget"] == 2048


def test_thinking_stream(dashscope) -> None:
    llm = make_model(dashscope, enable_thinking=True)
    chunks_seen = list(llm.stream("why?"))
    reasoning_chunks = [c for c in chunks_seen if c.additional_kwargs.get("reasoning_content")]
    assert len(reasoning_chunks) > 1  # streamed in pieces, before the text
    first_text = next(i for i, c in enumerate(chunks_seen) if c.content)
    assert chunks_seen.index(reasoning_chunks[-1]) < first_text
    assert any(b["type"] == "reasoning" for b in reasoning_chunks[0].content_blocks)
    full = chunks_seen[0]
    for c in chunks_seen[1:]:
        full = full + c
    assert full.additional_kwargs["reasoning_content"] == REASONING
    assert [b["type"] for b in full.content_blocks] == ["reasoning", "text"]
    assert chunks_seen[-1].chunk_position == "last"


def test_output_version_v1_puts_reasoning_in_content(dashscope) -> None:
    llm = make_model(dashscope, enable_thinking=True, output_version="v1")
    reply = llm.invoke("why?")
    assert isinstance(reply.content, list)
    assert reply.content[0]["type"] == "reasoning" and reply.content[0]["reasoning"] == REASONING
    assert reply.content[1]["type"] == "text"
    full = _aggregate(llm.stream("why?"))
    types = [b["type"] for b in full.content]
    assert types == ["reasoning", "text"]
    assert full.content[0]["reasoning"] == REASONING


def test_stream_only_model_invoke(dashscope) -> None:
    reply = make_model(dashscope, model="qvq-max").invoke("what is 2+2?")
    body = dashscope.last_body
    assert body["model"] == "qvq-max" and body["stream"] is True
    assert "enable_thinking" not in body  # an always-thinking model needs no flag
    assert reply.additional_kwargs["reasoning_content"] == REASONING
    assert reply.response_metadata["model_name"] == "qvq-max"
    assert reply.usage_metadata["total_tokens"] > 0


def test_stream_only_model_with_streaming_true_uses_stream(dashscope) -> None:
    llm = make_model(dashscope, model="qvq-max", streaming=True)
    reply = llm.invoke("hi")
    assert dashscope.last_body["stream"] is True
    assert reply.additional_kwargs["reasoning_content"] == REASONING
    assert reply.response_metadata["finish_reason"] == "stop"


def test_always_thinking_model_invoke(dashscope) -> None:
    reply = make_model(dashscope, model="qwen3-vl-235b-a22b-thinking").invoke("hi")
    assert dashscope.last_body["stream"] is True
    assert reply.additional_kwargs["reasoning_content"] == REASONING


def test_streaming_field_makes_invoke_stream(dashscope) -> None:
    reply = make_model(dashscope, streaming=True).invoke("hi")
    assert dashscope.last_body["stream"] is True
    assert dashscope.last_body["stream_options"] == {"include_usage": True}
    assert reply.usage_metadata["input_tokens"] == 10


def test_stream_usage_false(dashscope) -> None:
    full = _aggregate(make_model(dashscope, stream_usage=False).stream("hi"))
    assert "stream_options" not in dashscope.last_body
    assert full.usage_metadata is None


def test_usage_details_invoke_and_stream(dashscope) -> None:
    image = {"type": "image", "base64": b64(png_bytes(320, 240)), "mime_type": "image/png"}
    frames = {"type": "video", "video": ["https://example.com/f%d.png" % i for i in range(4)]}
    msg = HumanMessage(content=[image, frames, "what changed?"])
    llm = make_model(dashscope)
    reply = llm.invoke([msg])
    details = reply.usage_metadata["input_token_details"]
    assert details["image"] > 0 and details["video"] == 100  # the server's figure for remote frames
    assert reply.usage_metadata["input_tokens"] == 10 + details["image"] + details["video"]
    full = _aggregate(llm.stream([msg]))
    assert full.usage_metadata == reply.usage_metadata


def test_usage_metadata_only_on_the_last_chunk(dashscope) -> None:
    chunks_seen = list(make_model(dashscope).stream("write two haikus"))
    with_usage = [c for c in chunks_seen if c.usage_metadata]
    assert with_usage == [chunks_seen[-1]]
    assert sum("model_name" in c.response_metadata for c in chunks_seen) == 1


def test_cached_tokens_map_to_cache_read(dashscope) -> None:
    usage = {
        "prompt_tokens": 50, "completion_tokens": 5, "total_tokens": 55,
        "prompt_tokens_details": {"cached_tokens": 32, "image_tokens": 0},
    }  # fmt: skip
    dashscope.script(Json(completion("ok", usage=usage)))
    reply = make_model(dashscope).invoke("hi")
    assert reply.usage_metadata["input_token_details"] == {"image": 0, "cache_read": 32}
    assert "output_token_details" not in reply.usage_metadata


def test_response_metadata(dashscope) -> None:
    dashscope.script(Json(completion("done", model="qwen3-vl-plus-2025-09-23", request_id="req-123")))
    reply = make_model(dashscope).invoke("hi")
    assert reply.response_metadata["model_name"] == "qwen3-vl-plus-2025-09-23"
    assert reply.response_metadata["finish_reason"] == "stop"
    assert reply.response_metadata["request_id"] == "req-123"
    assert reply.response_metadata["model_provider"] == "dashscope"
    assert reply.response_metadata["partial"] is False


def test_partial_response_is_flagged(dashscope, caplog) -> None:
    dashscope.script(Json(completion("half an ans", finish_reason="length"), headers={"x-dashscope-partialresponse": "true"}))
    with caplog.at_level(logging.WARNING, logger="langchain_qwen_vl"):
        reply = make_model(dashscope).invoke("long task")
    assert reply.response_metadata["partial"] is True
    assert "partial" in caplog.text
    dashscope.script(Sse(chunks("half"), headers={"x-dashscope-partialresponse": "true"}))
    full = _aggregate(make_model(dashscope).stream("long task"))
    assert full.response_metadata["partial"] is True


def test_per_call_model_override(dashscope) -> None:
    llm = make_model(dashscope)
    reply = llm.invoke("hi", model="qwen3-vl-flash")
    assert dashscope.last_body["model"] == "qwen3-vl-flash"
    assert reply.response_metadata["model_name"] == "qwen3-vl-flash"
    full = _aggregate(llm.stream("hi", model="qwen3-vl-flash"))
    assert full.response_metadata["model_name"] == "qwen3-vl-flash"
    assert llm._get_ls_params(model="qwen3-vl-flash")["ls_model_name"] == "qwen3-vl-flash"
    assert llm.model == "qwen3-vl-plus"


def test_call_options_and_model_kwargs(dashscope) -> None:
    llm = make_model(dashscope, temperature=0.3, max_tokens=64, top_p=0.8, seed=7, stop=["END"],
                     model_kwargs={"top_k": 20, "repetition_penalty": 1.05})
    llm.invoke("hi", temperature=0.9, presence_penalty=0.5)
    body = dashscope.last_body
    assert (body["temperature"], body["max_tokens"], body["top_p"], body["seed"]) == (0.9, 64, 0.8, 7)
    assert body["stop"] == ["END"] and body["top_k"] == 20 and body["presence_penalty"] == 0.5
    assert body["repetition_penalty"] == 1.05  # unknown to the core: sent as an extra body field
    llm.invoke("hi", stop=["STOP"])
    assert dashscope.last_body["stop"] == ["STOP"]
    with pytest.raises(TypeError, match="temprature"):
        llm.invoke("hi", temprature=0.1)


def test_unknown_constructor_argument_goes_to_model_kwargs(dashscope) -> None:
    with pytest.warns(UserWarning, match="top_k"):
        llm = make_model(dashscope, top_k=5)
    llm.invoke("hi")
    assert dashscope.last_body["top_k"] == 5
    with pytest.raises(ValueError, match="temperature"):
        make_model(dashscope, model_kwargs={"temperature": 0.1})


def test_batch(dashscope) -> None:
    replies = make_model(dashscope).batch(["one", "two", "three"])
    assert [r.text.rsplit(" ", 1)[-1] for r in replies] == ["one", "two", "three"]


async def test_ainvoke_astream_abatch_are_natively_async(dashscope, monkeypatch) -> None:
    def no_sync(*args, **kwargs):
        raise AssertionError("the sync path (or a thread pool running it) was used")

    monkeypatch.setattr(ChatQwenVL, "_generate", no_sync)
    monkeypatch.setattr(ChatQwenVL, "_stream", no_sync)
    llm = make_model(dashscope, enable_thinking=True)
    reply = await llm.ainvoke("async hello")
    assert reply.additional_kwargs["reasoning_content"] == REASONING
    full = None
    async for chunk in llm.astream("async stream"):
        full = chunk if full is None else full + chunk
    assert full.text.endswith("async stream") and full.usage_metadata["output_token_details"]["reasoning"] == 4
    replies = await llm.abatch([f"q{i}" for i in range(8)])
    assert [r.text.rsplit(" ", 1)[-1] for r in replies] == [f"q{i}" for i in range(8)]


def test_async_calls_survive_a_new_event_loop(dashscope) -> None:
    llm = make_model(dashscope)
    assert asyncio.run(llm.ainvoke("first loop")).text.endswith("first loop")
    assert asyncio.run(llm.ainvoke("second loop")).text.endswith("second loop")


def test_client_is_built_once_and_reused(dashscope) -> None:
    llm = make_model(dashscope)
    client = llm.client
    llm.invoke("a")
    llm.invoke("b")
    assert llm.client is client
    assert llm.bind(temperature=0.1).bound.client is client


def test_region_workspace_and_headers(dashscope) -> None:
    intl = ChatQwenVL(api_key="sk-x", region="singapore")
    assert intl.client.endpoint.chat_url == "https://dashscope-intl.aliyuncs.com/compatible-mode/v1/chat/completions"
    assert ChatQwenVL(api_key="sk-x", region="us").client.endpoint.chat_url.startswith("https://dashscope-us.aliyuncs.com/")
    make_model(dashscope, workspace="ws-123", default_headers={"X-Trace": "t1"}).invoke("hi")
    headers = dashscope.chat_requests[-1].headers
    assert headers["x-dashscope-workspace"] == "ws-123" and headers["x-trace"] == "t1"


def test_aliases(dashscope) -> None:
    llm = ChatQwenVL(model_name="qwen3-vl-flash", dashscope_api_key="sk-alias", base_url=dashscope.url, request_timeout=5)
    assert (llm.model, llm.api_key.get_secret_value(), llm.timeout) == ("qwen3-vl-flash", "sk-alias", 5)
    llm.invoke("hi")
    assert dashscope.last_body["model"] == "qwen3-vl-flash"
