"""Answers that are not answers, over real sockets: a 200 whose message has no content and no tool
calls is an ``EmptyResponseError``; a stream without a single answering event (only ``data: [DONE]``,
a role chunk, a usage chunk) is an ``IncompleteStreamError``; a model that answers an empty string
is returned as empty text. The same for streams, thinking calls (streamed underneath) and QVQ."""

from __future__ import annotations

import pickle

import pytest

from qwen_vl_core import APIError, IncompleteStreamError, QwenVLClient
from qwen_vl_core.errors import EmptyResponseError
from tests.fake_dashscope import Json, Sse, chunks, completion, native_completion

USER = [{"role": "user", "content": "hello"}]


@pytest.fixture
def client(dashscope, api_key):
    c = QwenVLClient(api_key=api_key, base_url=dashscope.url, max_retries=2, retry_initial_delay=0.01, timeout=5)
    yield c
    c.close()


def null_content(**kwargs) -> dict:
    body = completion("x", request_id="rid-null", **kwargs)
    body["choices"][0]["message"]["content"] = None
    return body


def only_done() -> Sse:
    return Sse([], done=True, headers={"x-request-id": "rid-done"})


# ------------------------------------------------------------------ non-streamed


def test_null_content_without_tool_calls_is_an_empty_response_error(client, dashscope):
    dashscope.script(Json(null_content()))
    with pytest.raises(EmptyResponseError, match="no content") as info:
        client.chat(USER, model="qwen3-vl-plus")
    err = info.value
    assert isinstance(err, APIError)
    assert (err.status, err.code, err.request_id) == (200, "empty_response", "rid-null")
    assert len(dashscope.chat_requests) == 1  # a 200 is never resent (it may have been billed)
    assert pickle.loads(pickle.dumps(err)).request_id == "rid-null"


async def test_null_content_async(client, dashscope):
    dashscope.script(Json(null_content()))
    with pytest.raises(EmptyResponseError):
        await client.achat(USER, model="qwen3-vl-plus")


def test_missing_message_is_an_empty_response_error(client, dashscope):
    body = completion("x")
    body["choices"][0].pop("message")
    dashscope.script(Json(body))
    with pytest.raises(EmptyResponseError):
        client.chat(USER, model="qwen3-vl-plus")


def test_an_empty_string_is_a_model_that_said_nothing(client, dashscope):
    dashscope.script(Json(completion("")))
    result = client.chat(USER, model="qwen3-vl-plus")
    assert (result.text, result.finish_reason) == ("", "stop")


def test_null_content_with_tool_calls_or_reasoning_is_an_answer(client, dashscope):
    calls = [{"id": "c1", "name": "add", "arguments": {"a": 1}}]
    dashscope.script(
        Json(null_content(tool_calls=calls)), Json(null_content(reasoning="thought", finish_reason="length"))
    )
    result = client.chat(USER, model="qwen3-vl-plus")
    assert result.text == "" and result.tool_calls[0].name == "add"
    result = client.chat(USER, model="qwen3-vl-plus")
    assert (result.text, result.reasoning, result.finish_reason) == ("", "thought", "length")


def test_a_partial_response_without_content_stays_partial(client, dashscope):
    dashscope.script(Json(null_content(), headers={"x-dashscope-partialresponse": "true"}))
    result = client.chat(USER, model="qwen3-vl-plus")
    assert (result.text, result.partial) == ("", True)


def test_native_response_without_content_is_an_empty_response_error(client, dashscope, tmp_path):
    from PIL import Image

    png = tmp_path / "scan.png"
    Image.new("RGB", (64, 48), "white").save(png)
    body = native_completion("x", request_id="rid-native")
    body["output"]["choices"][0]["message"]["content"] = None
    dashscope.script(Json(body), Json(native_completion("")))
    with pytest.raises(EmptyResponseError) as info:
        client.ocr(png)
    assert info.value.request_id == "rid-native"
    assert client.ocr(png).text == ""  # content [] : the model read nothing


# ------------------------------------------------------------------ streamed


def test_a_stream_that_is_only_done_is_incomplete(client, dashscope):
    dashscope.script(only_done())
    with pytest.raises(IncompleteStreamError, match="without an answer") as info:
        list(client.stream(USER, model="qwen3-vl-plus"))
    assert info.value.request_id == "rid-done"


async def test_a_stream_that_is_only_done_is_incomplete_async(client, dashscope):
    dashscope.script(only_done())
    with pytest.raises(IncompleteStreamError, match="without an answer"):
        async for _ in client.astream(USER, model="qwen3-vl-plus"):
            pass


@pytest.mark.parametrize(
    "options",
    [
        {"model": "qwen3-vl-plus", "enable_thinking": True},  # thinking calls stream underneath
        {"model": "qwen3.5-plus"},  # thinks by default
        {"model": "qvq-max"},  # stream-only, always thinks
    ],
    ids=["thinking", "thinking-default", "qvq"],
)
def test_chat_over_a_stream_that_is_only_done_is_incomplete(client, dashscope, options):
    dashscope.script(only_done())
    with pytest.raises(IncompleteStreamError, match="without an answer"):
        client.chat(USER, **options)
    assert dashscope.last_body["stream"] is True


async def test_achat_over_a_stream_that_is_only_done_is_incomplete(client, dashscope):
    dashscope.script(only_done())
    with pytest.raises(IncompleteStreamError):
        await client.achat(USER, model="qvq-max")


def test_role_or_usage_chunks_alone_are_no_answer(client, dashscope):
    role_only, *_ = chunks("x", request_id="rid-role")
    usage_only = chunks("x", request_id="rid-usage")[-1]
    assert usage_only["choices"] == []
    dashscope.script(Sse([role_only]), Sse([usage_only]))
    with pytest.raises(IncompleteStreamError) as info:
        list(client.stream(USER, model="qwen3-vl-plus"))
    assert info.value.request_id == "rid-role"
    with pytest.raises(IncompleteStreamError):
        list(client.stream(USER, model="qwen3-vl-plus"))


def test_a_stream_with_a_finish_reason_and_no_text_is_an_empty_answer(client, dashscope):
    dashscope.script(Sse(chunks("")), Sse(chunks("", model="qvq-max")))
    deltas = list(client.stream(USER, model="qwen3-vl-plus"))
    assert "".join(d.text for d in deltas) == "" and deltas[-2].finish_reason == "stop"
    assert client.chat(USER, model="qvq-max").text == ""
