"""Partial mode (seed 003, "Continue generation from incomplete output"): ``continue_from`` sends the
answer's beginning as the last message, an assistant message with ``"partial": true``; a non-streamed
answer that comes back marked partial says how to continue it."""

from __future__ import annotations

import logging

import pytest

from qwen_vl_core import QwenVLClient
from qwen_vl_core.client import PARTIAL_ADVICE
from qwen_vl_core.errors import InputValidationError
from tests.fake_dashscope import Json, Sse, chunks, completion

QUESTION = [{"role": "user", "content": "Write a long poem about the sea."}]


@pytest.fixture
def client(dashscope, api_key):
    with QwenVLClient(api_key=api_key, base_url=dashscope.url, max_retries=0) as c:
        yield c


def test_continue_from_sends_the_prefix_as_a_partial_assistant_message(client, dashscope):
    dashscope.script(Json(completion(" and the waves rolled on.")))
    result = client.chat(QUESTION, model="qwen3-vl-plus", continue_from="The sea was calm")
    assert result.text == " and the waves rolled on."  # the continuation; the whole answer is prefix + text
    messages = dashscope.last_body["messages"]
    assert messages[-1] == {"role": "assistant", "content": "The sea was calm", "partial": True}
    assert messages[0]["role"] == "user"
    assert "continue_from" not in dashscope.last_body


def test_a_partial_result_continues_itself_streamed_and_async(client, dashscope):
    dashscope.script(Json(completion("First half"), headers={"x-dashscope-partialresponse": "true"}))
    first = client.chat(QUESTION, model="qwen3-vl-plus")
    assert first.partial
    dashscope.script(Sse(chunks(", second half.")))
    rest = "".join(d.text for d in client.stream(QUESTION, model="qwen3-vl-plus", continue_from=first))
    assert first.text + rest == "First half, second half."
    assert dashscope.last_body["messages"][-1] == {"role": "assistant", "content": "First half", "partial": True}

    import asyncio

    async def go():
        dashscope.script(Json(completion(" more")))
        return await client.achat(QUESTION, model="qwen3-vl-plus", continue_from="Async")

    assert asyncio.run(go()).text == " more"
    assert dashscope.last_body["messages"][-1]["content"] == "Async"


def test_native_mode_carries_the_prefix_too(client, dashscope):
    req = client.prepare([{"role": "user", "content": [{"image": "https://example.com/a.png"}]}],
                         model="qwen-vl-ocr", stream=False, ocr_task="text_recognition", continue_from="INVOICE")  # fmt: skip
    last = req.body["input"]["messages"][-1]
    assert last["role"] == "assistant" and last["partial"] is True and last["content"] == [{"text": "INVOICE"}]


@pytest.mark.parametrize("prefix", ["", 42, ["x"]])
def test_bad_prefixes_are_refused_before_sending(client, dashscope, prefix):
    with pytest.raises(InputValidationError, match="continue_from"):
        client.chat(QUESTION, model="qwen3-vl-plus", continue_from=prefix)
    assert dashscope.requests == []


def test_messages_ending_with_an_assistant_message_are_refused(client, dashscope):
    messages = [*QUESTION, {"role": "assistant", "content": "Already here"}]
    with pytest.raises(InputValidationError, match="already end with an assistant message"):
        client.chat(messages, model="qwen3-vl-plus", continue_from="more")
    assert dashscope.requests == []


def test_a_partial_non_streamed_answer_warns_how_to_continue(client, dashscope, caplog, api_key):
    dashscope.script(Json(completion("Cut"), headers={"x-dashscope-partialresponse": "true"}))
    with caplog.at_level(logging.WARNING, logger="qwen_vl_core.client"):
        result = client.chat(QUESTION, model="qwen3-vl-plus")
    assert result.partial
    text = caplog.text
    assert "continue_from" in text and "stream" in text and "180 s" in text
    assert PARTIAL_ADVICE in text and api_key not in text
    caplog.clear()
    dashscope.script(Json(completion("Whole")))
    with caplog.at_level(logging.WARNING, logger="qwen_vl_core.client"):
        assert not client.chat(QUESTION, model="qwen3-vl-plus").partial
    assert caplog.text == ""
