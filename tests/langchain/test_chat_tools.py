"""Tool calling (bind_tools, round trips, streamed tool-call chunks) and every structured-output
method, including include_raw and a thinking-by-default model."""

from __future__ import annotations

import json
from typing import Optional

import pytest
from tests.support.chat import Json, Sse, chunks, completion, make_model, smart_reply
from langchain_core.messages import AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel, Field
from qwen_vl_core import InputValidationError
from typing_extensions import TypedDict


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"Sunny in {city}, 24°C"


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class Receipt(BaseModel):
    """Fields read from a receipt."""

    merchant: str = Field(description="shop name")
    total: float = Field(description="amount paid")
    items: int


class ReceiptDict(TypedDict):
    """Fields read from a receipt."""

    merchant: str
    total: float


RECEIPT_SCHEMA = {
    "title": "receipt",
    "type": "object",
    "properties": {"merchant": {"type": "string"}, "total": {"type": "number"}},
    "required": ["merchant", "total"],
}


def test_bind_tools_wire_format(dashscope) -> None:
    llm = make_model(dashscope)
    llm.bind_tools([get_weather, add], parallel_tool_calls=True).invoke("hi")
    body = dashscope.last_body
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather", "add"]
    assert body["tools"][0]["type"] == "function"
    assert body["tools"][0]["function"]["parameters"]["properties"] == {"city": {"type": "string"}}
    assert body["parallel_tool_calls"] is True
    assert "tool_choice" not in body


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ("any", "required"),
        ("add", {"type": "function", "function": {"name": "add"}}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
def test_tool_choice_mapping(dashscope, choice, expected) -> None:
    make_model(dashscope).bind_tools([get_weather, add], tool_choice=choice).invoke("hi")
    assert dashscope.last_body["tool_choice"] == expected


def test_tool_choice_true_and_errors(dashscope) -> None:
    make_model(dashscope).bind_tools([add], tool_choice=True).invoke("hi")
    assert dashscope.last_body["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    with pytest.raises(ValueError, match="not one of the bound tools"):
        make_model(dashscope).bind_tools([add], tool_choice="multiply")


def test_strict_is_passed_on_each_tool(dashscope) -> None:
    make_model(dashscope).bind_tools([add], strict=True).invoke("hi")
    assert dashscope.last_body["tools"][0]["function"]["strict"] is True


def test_tool_calling_round_trip(dashscope) -> None:
    dashscope.script(
        Json(completion(tool_calls=[{"id": "call_1", "name": "get_weather", "arguments": {"city": "杭州"}}])),
        Json(completion("It is sunny in Hangzhou.")),
    )
    llm = make_model(dashscope).bind_tools([get_weather])
    question = HumanMessage("Weather in Hangzhou?")
    first = llm.invoke([question])
    assert first.tool_calls == [{"name": "get_weather", "args": {"city": "杭州"}, "id": "call_1", "type": "tool_call"}]
    assert first.response_metadata["finish_reason"] == "tool_calls"
    result = get_weather.invoke(first.tool_calls[0])
    assert isinstance(result, ToolMessage)
    final = llm.invoke([question, first, result])
    assert final.text == "It is sunny in Hangzhou."
    messages = dashscope.last_body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[1]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "杭州"}'}}
    ]
    assert messages[1]["content"] == ""
    assert messages[2] == {"role": "tool", "tool_call_id": "call_1", "content": "Sunny in 杭州, 24°C"}


def test_thinking_with_tool_calls_keeps_reasoning_out_of_the_history(dashscope) -> None:
    call = {"id": "call_7", "name": "add", "arguments": {"a": 2, "b": 3}}
    dashscope.script(Sse(chunks(reasoning="I should add.", tool_calls=[call])), Sse(chunks("5", reasoning="Done.")))
    llm = make_model(dashscope, enable_thinking=True).bind_tools([add])
    first = llm.invoke("2+3?")
    assert first.additional_kwargs["reasoning_content"] == "I should add."
    assert first.tool_calls[0]["args"] == {"a": 2, "b": 3}  # reasoning and tool calls together
    final = llm.invoke(["2+3?", first, ToolMessage("5", tool_call_id="call_7")])
    assert final.text == "5"
    sent = json.dumps(dashscope.last_body["messages"])
    assert "I should add." not in sent


def test_streamed_tool_call_chunks(dashscope) -> None:
    calls = [
        {"id": "call_a", "name": "add", "arguments": {"a": 1, "b": 2}},
        {"id": "call_b", "name": "get_weather", "arguments": {"city": "Paris"}},
    ]
    dashscope.script(Sse(chunks(tool_calls=calls, piece=3)))
    seen = list(make_model(dashscope).bind_tools([add, get_weather]).stream("do both"))
    fragments = [tc for c in seen for tc in c.tool_call_chunks]
    assert len(fragments) > 4
    assert {f["index"] for f in fragments} == {0, 1}
    assert any(b["type"] == "tool_call_chunk" for c in seen for b in c.content_blocks)
    full = seen[0]
    for c in seen[1:]:
        full = full + c
    assert isinstance(full, AIMessageChunk)
    assert [(c["id"], c["name"], c["args"]) for c in full.tool_calls] == [
        ("call_a", "add", {"a": 1, "b": 2}),
        ("call_b", "get_weather", {"city": "Paris"}),
    ]


def test_malformed_tool_arguments_become_invalid_tool_calls(dashscope) -> None:
    dashscope.script(Json(completion(tool_calls=[{"id": "c1", "name": "add", "arguments": '{"a": 1,'}])))
    reply = make_model(dashscope).bind_tools([add]).invoke("x")
    assert reply.tool_calls == []
    assert reply.invalid_tool_calls[0]["args"] == '{"a": 1,'


def test_forced_tool_on_a_thinking_default_model_turns_thinking_off(dashscope) -> None:
    reply = make_model(dashscope, model="qwen3.5-plus").bind_tools([add], tool_choice="add").invoke("1+1")
    assert dashscope.last_body["enable_thinking"] is False
    assert reply.tool_calls[0]["name"] == "add"


def test_forced_tool_on_a_model_built_with_thinking_turns_it_off_with_a_warning(dashscope) -> None:
    llm = make_model(dashscope, enable_thinking=True, thinking_budget=200).bind_tools([add], tool_choice="any")
    with pytest.warns(UserWarning, match=r"forced tool call \(tool_choice\) needs thinking off") as caught:
        reply = llm.invoke("1+1")
    assert len(caught) == 1
    assert reply.tool_calls[0]["name"] == "add"
    body = dashscope.last_body
    assert body["tool_choice"] == "required" and "enable_thinking" not in body and "thinking_budget" not in body


def test_forced_tool_with_thinking_asked_for_in_the_call_is_refused(dashscope) -> None:
    llm = make_model(dashscope).bind_tools([add], tool_choice="any")
    with pytest.raises(InputValidationError, match="needs thinking off"):
        llm.invoke("1+1", enable_thinking=True)
    assert dashscope.chat_requests == []


def test_tools_on_a_model_without_tools_are_refused(dashscope) -> None:
    with pytest.raises(InputValidationError, match="does not support tool calling"):
        make_model(dashscope, model="qwen-vl-max").bind_tools([add]).invoke("1+1")


# ------------------------------------------------------------------------------------ structured


@pytest.mark.parametrize("schema", [Receipt, ReceiptDict, RECEIPT_SCHEMA], ids=["pydantic", "typeddict", "json_schema"])
def test_json_schema_method(dashscope, schema) -> None:
    dashscope.responder = smart_reply
    structured = make_model(dashscope).with_structured_output(schema, method="json_schema", strict=True)
    out = structured.invoke("read this receipt")
    fmt = dashscope.last_body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["properties"]["merchant"]["type"] == "string"
    if schema is Receipt:
        assert fmt["json_schema"]["name"] == "Receipt"
        assert out == Receipt(merchant="cats", total=1.5, items=3)
    else:
        assert out == {"merchant": "cats", "total": 1.5}


def test_default_method_is_json_schema_for_qwen3_vl(dashscope) -> None:
    dashscope.responder = smart_reply
    make_model(dashscope).with_structured_output(Receipt).invoke("x")
    assert dashscope.last_body["response_format"]["type"] == "json_schema"
    assert "tools" not in dashscope.last_body


def test_json_schema_parses_fenced_json(dashscope) -> None:
    dashscope.script(Json(completion('Here you go:\n```json\n{"merchant": "Lawson", "total": 12.5, "items": 2}\n```')))
    out = make_model(dashscope).with_structured_output(Receipt).invoke("x")
    assert out == Receipt(merchant="Lawson", total=12.5, items=2)


def test_function_calling_method(dashscope) -> None:
    dashscope.responder = smart_reply
    out = make_model(dashscope).with_structured_output(Receipt, method="function_calling").invoke("x")
    body = dashscope.last_body
    assert body["tool_choice"] == {"type": "function", "function": {"name": "Receipt"}}
    assert body["parallel_tool_calls"] is False
    assert out == Receipt(merchant="cats", total=1.5, items=3)
    out = make_model(dashscope).with_structured_output(RECEIPT_SCHEMA, method="function_calling").invoke("x")
    assert out == {"merchant": "cats", "total": 1.5}


def test_json_mode_adds_the_json_instruction_when_missing(dashscope) -> None:
    dashscope.responder = smart_reply  # the server itself answers 400 without the word "json"
    out = make_model(dashscope).with_structured_output(method="json_mode").invoke("tell me a joke about cats")
    body = dashscope.last_body
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][0]["role"] == "system" and "JSON" in body["messages"][0]["content"]
    assert set(out) == {"setup", "punchline"}


def test_json_mode_leaves_a_prompt_that_mentions_json_alone(dashscope) -> None:
    class Joke(BaseModel):
        setup: str
        punchline: str

    dashscope.responder = smart_reply
    out = make_model(dashscope).with_structured_output(Joke, method="json_mode").invoke("A joke as JSON, please.")
    assert [m["role"] for m in dashscope.last_body["messages"]] == ["user"]
    assert isinstance(out, Joke)


def test_json_object_response_format_passes_the_servers_json_rule(dashscope) -> None:
    # No responder: the local server applies DashScope's rule (400 without the word "json").
    reply = make_model(dashscope).bind(response_format={"type": "json_object"}).invoke("a joke about cats")
    assert reply.text.startswith("I see 0 image(s)")
    assert "JSON" in dashscope.last_body["messages"][0]["content"]


def test_structured_output_on_a_thinking_default_model_sends_thinking_off(dashscope) -> None:
    dashscope.responder = smart_reply
    for method, schema in (("json_schema", Receipt), ("function_calling", Receipt), ("json_mode", None)):
        out = make_model(dashscope, model="qwen3.5-plus").with_structured_output(schema, method=method).invoke("x")
        assert dashscope.last_body["enable_thinking"] is False, method
        assert isinstance(out, Receipt if schema else dict), method


def test_structured_output_on_a_model_built_with_thinking_turns_it_off_with_a_warning(dashscope) -> None:
    dashscope.responder = smart_reply
    structured = make_model(dashscope, enable_thinking=True).with_structured_output(Receipt)
    with pytest.warns(UserWarning, match=r"structured output \(response_format\) needs thinking off") as caught:
        out = structured.invoke("x")
    assert len(caught) == 1 and isinstance(out, Receipt)
    assert "enable_thinking" not in dashscope.last_body  # qwen3-vl-plus: off by default, so not sent


def test_structured_output_with_thinking_asked_for_in_the_call_is_refused(dashscope) -> None:
    structured = make_model(dashscope).with_structured_output(Receipt, enable_thinking=True)  # bound to the calls
    with pytest.raises(InputValidationError, match="needs thinking off"):
        structured.invoke("x")
    assert dashscope.chat_requests == []


def test_default_and_unsupported_methods_follow_the_registry(dashscope) -> None:
    dashscope.responder = smart_reply
    # Qwen2.5-VL: json_object only, no tools -> json_mode by default.
    out = make_model(dashscope, model="qwen-vl-max").with_structured_output(RECEIPT_SCHEMA).invoke("read it")
    assert dashscope.last_body["response_format"] == {"type": "json_object"}
    assert isinstance(out, dict)
    with pytest.raises(InputValidationError, match="json_schema"):
        make_model(dashscope, model="qwen-vl-max").with_structured_output(Receipt, method="json_schema")
    with pytest.raises(InputValidationError, match="always thinks"):
        make_model(dashscope, model="qvq-max").with_structured_output(Receipt)


def test_include_raw(dashscope) -> None:
    dashscope.responder = smart_reply
    out = make_model(dashscope).with_structured_output(Receipt, include_raw=True).invoke("x")
    assert out["parsing_error"] is None
    assert out["parsed"] == Receipt(merchant="cats", total=1.5, items=3)
    assert out["raw"].response_metadata["model_provider"] == "dashscope"

    dashscope.responder = None
    dashscope.script(Json(completion("Sorry, I cannot read that receipt.")))
    out = make_model(dashscope).with_structured_output(Receipt, include_raw=True).invoke("x")
    assert out["parsed"] is None
    assert out["parsing_error"] is not None and "valid JSON" in str(out["parsing_error"])
    assert out["raw"].text == "Sorry, I cannot read that receipt."

    dashscope.script(Json(completion('{"merchant": "X"}')))
    out = make_model(dashscope).with_structured_output(Receipt, include_raw=True).invoke("x")
    assert out["parsed"] is None and "Receipt" in str(out["parsing_error"])


def test_structured_output_streams_parsed_objects(dashscope) -> None:
    class Note(BaseModel):
        title: str
        body: Optional[str] = None  # noqa: UP045

    dashscope.script(Sse(chunks('{"title": "Groceries", "body": "milk, eggs"}', piece=5)))
    parts = list(make_model(dashscope).with_structured_output(Note).stream("x"))
    assert len(parts) > 1  # partial objects while streaming
    assert all(isinstance(p, Note) for p in parts)
    assert parts[-1] == Note(title="Groceries", body="milk, eggs")


def test_always_thinking_model_is_asked_not_forced_to_call_the_schema_tool(dashscope) -> None:
    dashscope.responder = smart_reply
    out = make_model(dashscope, model="qwen3-vl-235b-a22b-thinking").with_structured_output(Receipt).invoke("x")
    body = dashscope.last_body
    assert [t["function"]["name"] for t in body["tools"]] == ["Receipt"]
    assert "tool_choice" not in body and "response_format" not in body
    assert out == Receipt(merchant="cats", total=1.5, items=3)
