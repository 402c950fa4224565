"""QwenVL (FunctionCallingLLM) against the local DashScope server: wire bodies for every block type,
thinking (whole and streamed), tools round trip, structured output with images, metadata, secrecy."""

from __future__ import annotations

import asyncio
import json
import logging
import pickle

import pytest
from llama_index.core.base.llms.types import (
    ChatMessage,
    ImageBlock,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    VideoBlock,
)
from llama_index.core.llms import LLM
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.prompts import ChatPromptTemplate
from llama_index.core.tools import FunctionTool
from tests.support.llama_index import KEY, MP4_BYTES, Json, Sse, chunks, completion, image_bytes, server_error, user_content
from pydantic import BaseModel

from llama_index_qwen_vl import QwenVL
from qwen_vl_core import InputValidationError, ServerError, get_capabilities
from qwen_vl_core.models import REGISTRY


@pytest.fixture
def llm(dashscope):
    return QwenVL(api_key=KEY, base_url=dashscope.url, max_retries=0)


def image_message(png: bytes, text: str = "What is this?") -> ChatMessage:
    return ChatMessage(role="user", blocks=[ImageBlock(image=png), TextBlock(text=text)])


# ---------------------------------------------------------------- contract


def test_is_a_function_calling_llm():
    assert issubclass(QwenVL, FunctionCallingLLM) and issubclass(QwenVL, LLM)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_metadata_for_every_registry_model(name):
    caps = get_capabilities(name)
    meta = QwenVL(api_key=KEY, model=name).metadata
    assert meta.context_window == caps.context_window
    assert meta.num_output == caps.max_output
    assert meta.is_chat_model is True
    assert meta.is_function_calling_model is caps.tools
    assert meta.model_name == name


def test_metadata_of_an_unknown_model_and_overrides():
    meta = QwenVL(api_key=KEY, model="my-finetuned-vl", context_window=4096, max_tokens=256).metadata
    assert (meta.context_window, meta.num_output, meta.model_name) == (4096, 256, "my-finetuned-vl")
    assert QwenVL(api_key=KEY, model="qwen-vl-max").metadata.is_function_calling_model is False
    assert QwenVL(api_key=KEY, model="qwen3-vl-plus").metadata.is_function_calling_model is True


def test_missing_key_fails_at_construction():
    from qwen_vl_core import ConfigurationError

    with pytest.raises(ConfigurationError, match="no DashScope API key"):
        QwenVL()


# ---------------------------------------------------------------- blocks on the wire


def test_every_block_type_on_the_wire(llm, dashscope, tmp_path):
    png = image_bytes("photo")
    path = tmp_path / "chart.png"
    path.write_bytes(image_bytes("chart", "PNG", (300, 200)))
    video = tmp_path / "clip.mp4"
    video.write_bytes(MP4_BYTES)
    msg = ChatMessage(
        role="user",
        blocks=[
            ImageBlock(image=png, detail="low"),
            ImageBlock(path=path),
            ImageBlock(url="https://example.com/cat.jpg"),
            VideoBlock(url="https://example.com/clip.mp4", fps=2),
            VideoBlock(path=video),
            TextBlock(text="Describe all of them."),
        ],
    )
    resp = llm.chat([ChatMessage(role="system", content="Be brief."), msg])
    assert resp.message.content == "I see 3 image(s) and 2 video(s). You said: Describe all of them."
    body = dashscope.last_body
    assert body["model"] == "qwen3-vl-plus" and body["messages"][0] == {"role": "system", "content": "Be brief."}
    parts = user_content(body)
    assert parts[0]["type"] == "image_url" and parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert parts[0]["image_url"]["detail"] == "low"
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert parts[2] == {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
    assert parts[3] == {"type": "video_url", "video_url": {"url": "https://example.com/clip.mp4"}, "fps": 2}
    assert parts[4]["video_url"]["url"].startswith("data:video/mp4;base64,")
    assert parts[5] == {"type": "text", "text": "Describe all of them."}
    # nothing DashScope-specific unless set
    assert set(body) == {"model", "messages"}
    assert resp.additional_kwargs["image_tokens"] > 0 and resp.raw["request_id"]


def test_configuration_fields_are_sent(dashscope):
    llm = QwenVL(
        api_key=KEY, base_url=dashscope.url, enable_thinking=True, thinking_budget=500, high_resolution=True,
        max_pixels=500_000, min_pixels=4096, fps=1.5, temperature=0.3, max_tokens=100,
        additional_kwargs={"seed": 7, "top_p": 0.8},
    )  # fmt: skip
    llm.chat([image_message(image_bytes()), ])
    body = dashscope.last_body
    for key, value in {"enable_thinking": True, "thinking_budget": 500, "vl_high_resolution_images": True,
                       "temperature": 0.3, "max_tokens": 100, "seed": 7, "top_p": 0.8}.items():  # fmt: skip
        assert body[key] == value
    image = user_content(body)[0]
    assert (image["min_pixels"], image["max_pixels"]) == (4096, 500_000)
    # per-call keywords win over fields
    llm.chat([ChatMessage(content="hi")], temperature=1.0)
    assert dashscope.last_body["temperature"] == 1.0


def test_bad_input_fails_before_any_request(llm, dashscope):
    with pytest.raises(InputValidationError, match="each side must be more than 10 px"):
        llm.chat([image_message(image_bytes(size=(5, 300)))])
    assert dashscope.requests == []


# ---------------------------------------------------------------- thinking


def test_thinking_comes_back_as_a_thinking_block(dashscope):
    llm = QwenVL(api_key=KEY, base_url=dashscope.url, enable_thinking=True)
    resp = llm.chat([image_message(image_bytes())])
    assert isinstance(resp.message.blocks[0], ThinkingBlock)
    assert resp.message.blocks[0].content == "Thinking about the request."
    assert resp.message.blocks[0].num_tokens == 4
    assert resp.message.content.startswith("I see 1 image(s)")  # reasoning is not in the answer text


def test_streamed_thinking_deltas(dashscope):
    llm = QwenVL(api_key=KEY, base_url=dashscope.url, enable_thinking=True)
    responses = list(llm.stream_chat([image_message(image_bytes())]))
    thinking = "".join(r.additional_kwargs.get("thinking_delta", "") for r in responses)
    text = "".join(r.delta or "" for r in responses)
    assert thinking == "Thinking about the request."
    assert text == responses[-1].message.content and text.startswith("I see 1 image(s)")
    assert responses[-1].message.blocks[0].content == thinking
    assert responses[-1].additional_kwargs["prompt_tokens"] > 0  # the usage chunk arrives last
    assert dashscope.last_body["stream"] is True


async def test_async_stream_and_complete(dashscope):
    llm = QwenVL(api_key=KEY, base_url=dashscope.url, enable_thinking=True)
    gen = await llm.astream_chat([image_message(image_bytes())])
    deltas = [r async for r in gen]
    assert "".join(r.additional_kwargs.get("thinking_delta", "") for r in deltas) == "Thinking about the request."
    completion_ = await llm.acomplete("hello")
    assert completion_.text.endswith("You said: hello")
    stream = await llm.astream_complete("hello")
    assert [c async for c in stream][-1].text.endswith("You said: hello")


async def test_achat_runs_concurrently(dashscope):
    dashscope.latency = 0.3
    llm = QwenVL(api_key=KEY, base_url=dashscope.url)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.gather(*(llm.achat([ChatMessage(content=f"q{i}")]) for i in range(5)))
    assert loop.time() - start < 1.0  # 5 x 0.3 s would take 1.5 s one after another


def test_complete_and_stream_complete(llm, dashscope):
    assert llm.complete("hi").text.endswith("You said: hi")
    pieces = list(llm.stream_complete("hi"))
    assert "".join(p.delta or "" for p in pieces) == pieces[-1].text


# ---------------------------------------------------------------- tools


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def test_tools_round_trip(llm, dashscope):
    tool = FunctionTool.from_defaults(fn=add)
    dashscope.script(
        Json(completion(tool_calls=[{"id": "call_7", "name": "add", "arguments": {"a": 2, "b": 3}}])),
        Json(completion("2 + 3 = 5")),
    )
    history = [image_message(image_bytes("2+3"), "Compute what the image says.")]
    resp = llm.chat_with_tools([tool], chat_history=list(history))
    body = dashscope.last_body
    assert body["tools"][0]["function"]["name"] == "add"
    assert "tool_choice" not in body and "parallel_tool_calls" not in body  # server defaults
    calls = llm.get_tool_calls_from_response(resp)
    assert [(c.tool_id, c.tool_name, c.tool_kwargs) for c in calls] == [("call_7", "add", {"a": 2, "b": 3})]
    output = tool(**calls[0].tool_kwargs)
    history += [resp.message, ChatMessage(role="tool", content=str(output), additional_kwargs={"tool_call_id": "call_7"})]
    final = llm.chat_with_tools([tool], chat_history=history)
    assert final.message.content == "2 + 3 = 5"
    sent = dashscope.last_body["messages"]
    assert sent[1]["role"] == "assistant"
    assert sent[1]["tool_calls"] == [
        {"id": "call_7", "type": "function", "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'}}
    ]
    assert sent[2] == {"role": "tool", "content": "5", "tool_call_id": "call_7"}


def test_tool_required_and_parallel_flags(llm, dashscope):
    tool = FunctionTool.from_defaults(fn=add)
    resp = llm.chat_with_tools([tool], user_msg="add 1 and 2", tool_required=True, allow_parallel_tool_calls=True)
    body = dashscope.last_body
    assert body["tool_choice"] == "required" and body["parallel_tool_calls"] is True
    assert llm.get_tool_calls_from_response(resp)[0].tool_name == "add"


def test_named_tool_choice_is_sent_and_checked(llm, dashscope):
    tool = FunctionTool.from_defaults(fn=add)
    llm.chat_with_tools([tool], user_msg="add", tool_choice="add")
    assert dashscope.last_body["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    llm.chat_with_tools([tool], user_msg="add", tool_choice="auto", tool_required=True)
    assert dashscope.last_body["tool_choice"] == "auto"  # an explicit choice wins over tool_required
    sent = len(dashscope.chat_requests)
    with pytest.raises(InputValidationError, match="'multiply' is not one of the bound tools: add"):
        llm.chat_with_tools([tool], user_msg="add", tool_choice="multiply")
    assert len(dashscope.chat_requests) == sent  # refused before any request


def test_forced_tool_turns_off_configured_thinking(dashscope):
    llm = QwenVL(api_key=KEY, base_url=dashscope.url, enable_thinking=True, thinking_budget=100)
    with pytest.warns(UserWarning, match="thinking is turned off for this call"):
        llm.chat_with_tools([FunctionTool.from_defaults(fn=add)], user_msg="add", tool_required=True)
    body = dashscope.last_body
    assert body["tool_choice"] == "required"
    assert "enable_thinking" not in body and "thinking_budget" not in body  # hybrid-off: default is off


def test_only_one_tool_call_unless_parallel(llm, dashscope):
    calls = [{"id": "a", "name": "add", "arguments": {"a": 1, "b": 1}}, {"id": "b", "name": "add", "arguments": {"a": 2, "b": 2}}]
    dashscope.script(Json(completion(tool_calls=calls)), Json(completion(tool_calls=calls)))
    tool = FunctionTool.from_defaults(fn=add)
    assert len(llm.get_tool_calls_from_response(llm.chat_with_tools([tool], user_msg="x"))) == 1
    resp = llm.chat_with_tools([tool], user_msg="x", allow_parallel_tool_calls=True)
    assert len(llm.get_tool_calls_from_response(resp)) == 2


def test_streamed_tool_calls(llm, dashscope):
    dashscope.script(Sse(chunks(tool_calls=[{"id": "c1", "name": "add", "arguments": {"a": 10, "b": 20}}], piece=3)))
    responses = list(llm.stream_chat_with_tools([FunctionTool.from_defaults(fn=add)], user_msg="x"))
    final = llm.get_tool_calls_from_response(responses[-1])
    assert [(c.tool_id, c.tool_kwargs) for c in final] == [("c1", {"a": 10, "b": 20})]
    block = [b for b in responses[-1].message.blocks if isinstance(b, ToolCallBlock)][0]
    assert block.tool_kwargs == {"a": 10, "b": 20}


async def test_function_agent_with_images_and_tools(dashscope):
    from llama_index.core.agent.workflow import FunctionAgent

    dashscope.script(
        Sse(chunks(reasoning="I should add.", tool_calls=[{"id": "c1", "name": "add", "arguments": {"a": 4, "b": 5}}])),
        Sse(chunks("The sum is 9.")),
    )
    llm = QwenVL(api_key=KEY, base_url=dashscope.url, max_retries=0)
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(fn=add)], llm=llm)
    result = await agent.run(user_msg=image_message(image_bytes("4+5"), "Add the numbers in the image."))
    assert str(result) == "The sum is 9."
    sent = dashscope.last_body["messages"]
    assert any(m["role"] == "tool" and m["content"] == "9" and m["tool_call_id"] == "c1" for m in sent)
    assert user_content(dashscope.chat_requests[0].json)[0]["type"] == "image_url"


# ---------------------------------------------------------------- structured output


class Invoice(BaseModel):
    """An invoice."""

    vendor: str
    total: float


def invoice_prompt(png: bytes) -> ChatPromptTemplate:
    return ChatPromptTemplate(
        message_templates=[ChatMessage(role="user", blocks=[ImageBlock(image=png), TextBlock(text="Extract the {what}.")])]
    )


def test_structured_predict_with_an_image_uses_json_schema(llm, dashscope):
    dashscope.script(Json(completion('```json\n{"vendor": "ACME", "total": 12.5}\n```')))
    out = llm.structured_predict(Invoice, invoice_prompt(image_bytes("ACME 12.50")), what="invoice fields")
    assert out == Invoice(vendor="ACME", total=12.5)
    body = dashscope.last_body
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["name"] == "Invoice"
    assert body["response_format"]["json_schema"]["schema"]["required"] == ["vendor", "total"]
    parts = user_content(body)
    assert parts[0]["image_url"]["url"].startswith("data:image/png") and parts[1]["text"] == "Extract the invoice fields."
    assert "tools" not in body


async def test_astructured_predict_on_a_thinking_by_default_model(dashscope):
    llm = QwenVL(api_key=KEY, base_url=dashscope.url, model="qwen3.5-plus", enable_thinking=True)
    dashscope.script(Json(completion('{"vendor": "B", "total": 1}')))
    with pytest.warns(UserWarning, match="thinking is turned off for this call"):
        out = await llm.astructured_predict(Invoice, invoice_prompt(image_bytes()), what="x")
    assert out.vendor == "B"
    assert dashscope.last_body["enable_thinking"] is False  # json_schema needs thinking off


def test_as_structured_llm_with_an_image(llm, dashscope):
    dashscope.script(Json(completion('{"vendor": "Z", "total": 3}')))
    sllm = llm.as_structured_llm(Invoice)
    resp = sllm.chat([image_message(image_bytes(), "Extract the invoice.")])
    assert resp.raw == Invoice(vendor="Z", total=3)
    assert user_content(dashscope.last_body)[0]["type"] == "image_url"


def test_structured_predict_without_json_schema_falls_back_to_text(dashscope):
    llm = QwenVL(api_key=KEY, base_url=dashscope.url, model="qwen-vl-max")
    dashscope.script(Json(completion('{"vendor": "Q", "total": 2}')))
    out = llm.structured_predict(Invoice, invoice_prompt(image_bytes()), what="x")
    assert out.vendor == "Q"
    body = dashscope.last_body
    assert "response_format" not in body and "tools" not in body


def test_structured_answer_that_is_not_json(llm, dashscope):
    dashscope.script(Json(completion("Sorry, I cannot read it.")))
    with pytest.raises(ValueError, match="not JSON for Invoice"):
        llm.structured_predict(Invoice, invoice_prompt(image_bytes()), what="x")


# ---------------------------------------------------------------- errors and secrecy


def test_server_errors_are_typed(llm, dashscope):
    dashscope.script(server_error())
    with pytest.raises(ServerError) as info:
        llm.chat([ChatMessage(content="hi")])
    assert info.value.status == 500


def test_key_never_in_repr_serialization_or_logs(dashscope, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    llm = QwenVL(api_key=KEY, base_url=dashscope.url, max_retries=1, additional_kwargs={})
    dashscope.script(server_error(), Json(completion("ok")))
    assert llm.chat([ChatMessage(content="hi")]).message.content == "ok"
    texts = [repr(llm), str(llm), llm.to_json(), json.dumps(llm.to_dict(), default=str), llm.model_dump_json(),
             repr(llm.client), caplog.text]  # fmt: skip
    for text in texts:
        assert KEY not in text
    assert "retrying" in caplog.text  # the retry was logged, without the key
    dumped = pickle.dumps(llm)
    assert KEY.encode() not in dumped  # workers get a working copy without the key ...
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)  # ... which they find the documented way
    clone = pickle.loads(dumped)
    assert clone.chat([ChatMessage(content="again")]).message.content.endswith("again")
    assert "Removing unpickleable" not in caplog.text


def test_media_settings_reach_the_client(dashscope, tmp_path):
    png = tmp_path / "a.png"
    png.write_bytes(image_bytes())
    llm = QwenVL(api_key=KEY, base_url=dashscope.url, allow_local_files=False, top_p=0.5, seed=3)
    with pytest.raises(InputValidationError, match="local files are disabled"):
        llm.chat([ChatMessage(blocks=[ImageBlock(path=png), TextBlock(text="x")])])
    assert dashscope.requests == []
    llm.allow_local_files = True  # the client is rebuilt when a connection field changes
    llm.chat([ChatMessage(blocks=[ImageBlock(path=png), TextBlock(text="x")])])
    assert (dashscope.last_body["top_p"], dashscope.last_body["seed"]) == (0.5, 3)
