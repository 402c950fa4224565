import pytest

from qwen_vl_core.errors import ContentModerationError, InputValidationError
from qwen_vl_core.models import get_capabilities
from qwen_vl_core.protocol import (
    compatible_body,
    native_body,
    parse_chunk,
    parse_completion,
    parse_native,
    parse_usage,
    plan_request,
)
from qwen_vl_core.types import StreamAccumulator

MSGS = [{"role": "user", "content": [{"type": "text", "text": "describe"}]}]


def body(model="qwen3-vl-plus", stream=False, messages=MSGS, **options):
    plan = plan_request(get_capabilities(model), options, stream=stream)
    return compatible_body(model, messages, options, plan)


def test_minimal_body_sends_only_what_was_set():
    assert body() == {"model": "qwen3-vl-plus", "messages": MSGS}


def test_all_options_map_to_wire_names():
    b = body(enable_thinking=True, thinking_budget=1000, high_resolution=True, max_tokens=100, temperature=0.2,
             top_p=0.9, seed=7, stop=["x"], stream=True)
    assert b["enable_thinking"] is True and b["thinking_budget"] == 1000
    assert b["vl_high_resolution_images"] is True
    assert (b["max_tokens"], b["temperature"], b["top_p"], b["seed"], b["stop"]) == (100, 0.2, 0.9, 7, ["x"])
    assert b["stream"] is True and b["stream_options"] == {"include_usage": True}


def test_stream_usage_off():
    assert "stream_options" not in body(stream=True, stream_usage=False)


def test_max_completion_tokens_passes_through():
    assert body(max_completion_tokens=50)["max_completion_tokens"] == 50


def test_extra_body_merges_top_level():
    assert body(extra_body={"repetition_penalty": 1.1})["repetition_penalty"] == 1.1


def test_unknown_option_is_a_type_error():
    with pytest.raises(TypeError, match="max_token"):
        body(max_token=5)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"temperature": 2.0}, r"temperature is 2.0; it must be in \[0, 2\)"),
        ({"top_p": 0}, r"top_p is 0"),
        ({"max_tokens": 0}, "max_tokens must be a positive integer"),
        ({"max_tokens": 40000}, "max_tokens is 40000; the maximum output of 'qwen3-vl-plus' is 32768"),
        ({"thinking_budget": 100}, "thinking is off"),
        ({"enable_thinking": True, "thinking_budget": 90000}, "thinking_budget is 90000"),
        ({"stop": 5}, "stop must be"),
        ({"response_format": {"type": "xml"}}, "response_format type"),
    ],
)
def test_option_validation(options, match):
    with pytest.raises(InputValidationError, match=match):
        body(**options)


def test_thinking_on_model_without_thinking():
    with pytest.raises(InputValidationError, match="no thinking mode"):
        body("qwen-vl-max", enable_thinking=True)
    with pytest.raises(InputValidationError, match="always thinks"):
        body("qvq-max", enable_thinking=False)


def test_structured_output_turns_default_thinking_off():
    b = body("qwen3.5-plus", response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {}}})
    assert b["enable_thinking"] is False


def test_forced_tool_turns_default_thinking_off():
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    assert body("qwen3.5-plus", tools=tools, tool_choice="required")["enable_thinking"] is False
    assert "enable_thinking" not in body("qwen3.5-plus", tools=tools, tool_choice="auto")


def test_structured_output_with_explicit_thinking_is_an_error():
    with pytest.raises(InputValidationError, match="needs thinking off"):
        body("qwen3-vl-plus", enable_thinking=True, response_format={"type": "json_object"})
    with pytest.raises(InputValidationError, match="qwen3-vl-235b-a22b-thinking"):
        body("qwen3-vl-235b-a22b-thinking", response_format={"type": "json_object"})


def test_structured_mode_support_from_registry():
    with pytest.raises(InputValidationError, match="does not support response_format 'json_schema'"):
        body("qwen-vl-max", response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {}}})


def test_json_object_needs_word_json():
    with pytest.raises(InputValidationError, match="word 'json'"):
        body(response_format={"type": "json_object"})
    msgs = [{"role": "user", "content": "Answer in JSON"}]
    assert body(messages=msgs, response_format={"type": "json_object"})["response_format"] == {"type": "json_object"}


def test_tools_on_model_without_tools():
    with pytest.raises(InputValidationError, match="does not support tool calling"):
        body("qwen-vl-max", tools=[{"type": "function", "function": {"name": "f"}}])


def test_unknown_model_is_never_refused():
    b = body("my-vllm-model", enable_thinking=True, thinking_budget=10**6, max_tokens=10**6,
             tools=[{"type": "function", "function": {"name": "f"}}])
    assert b["thinking_budget"] == 10**6


def test_stream_only_model_streams():
    plan = plan_request(get_capabilities("qvq-max"), {}, stream=False)
    assert plan.stream and not plan.native


def test_native_ocr_body():
    options = {"ocr_task": "key_information_extraction", "ocr_task_config": {"result_schema": {"a": ""}},
               "max_tokens": 100}
    plan = plan_request(get_capabilities("qwen-vl-ocr"), options, stream=True)
    b = native_body("qwen-vl-ocr", [{"role": "user", "content": [{"image": "u"}]}], options, plan)
    assert b["input"]["messages"][0]["content"] == [{"image": "u"}]
    assert b["parameters"]["ocr_options"] == {"task": "key_information_extraction",
                                              "task_config": {"result_schema": {"a": ""}}}
    assert b["parameters"]["incremental_output"] is True and b["parameters"]["max_tokens"] == 100


def test_ocr_task_validation():
    with pytest.raises(InputValidationError, match="not one of"):
        plan_request(get_capabilities("qwen-vl-ocr"), {"ocr_task": "poetry"}, stream=False)
    with pytest.raises(InputValidationError, match="needs a qwen-vl-ocr model"):
        plan_request(get_capabilities("qwen3-vl-plus"), {"ocr_task": "table_parsing"}, stream=False)


# ------------------------------------------------------------------ parsing

COMPLETION = {
    "id": "chatcmpl-1",
    "model": "qwen3-vl-plus",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "hi", "reasoning_content": "hmm",
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"x\": 1}"}}]}}],
    "usage": {"prompt_tokens": 1270, "completion_tokens": 54, "total_tokens": 1324,
              "prompt_tokens_details": {"image_tokens": 1247, "text_tokens": 23},
              "completion_tokens_details": {"reasoning_tokens": 20, "text_tokens": 34}},
}


def test_parse_completion():
    r = parse_completion(COMPLETION, partial=True)
    assert (r.text, r.reasoning, r.finish_reason, r.model, r.request_id, r.partial) == \
        ("hi", "hmm", "tool_calls", "qwen3-vl-plus", "chatcmpl-1", True)
    assert r.tool_calls[0].name == "f" and r.tool_calls[0].parsed_arguments() == {"x": 1}
    u = r.usage
    assert (u.input_tokens, u.output_tokens, u.total_tokens, u.image_tokens, u.text_input_tokens,
            u.reasoning_tokens, u.video_tokens) == (1270, 54, 1324, 1247, 23, 20, None)


def test_parse_native_usage():
    u = parse_usage({"output_tokens": 55, "input_tokens": 1271, "image_tokens": 1247})
    assert (u.input_tokens, u.output_tokens, u.total_tokens, u.image_tokens) == (1271, 55, 1326, 1247)


def test_parse_completion_error_payload():
    with pytest.raises(ContentModerationError):
        parse_completion({"error": {"message": "blocked", "code": "data_inspection_failed"}})


def test_stream_chunks_assemble_tool_calls_and_usage():
    chunks = [
        {"id": "r", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "reasoning_content": "th"}}]},
        {"id": "r", "model": "m", "choices": [{"index": 0, "delta": {"reasoning_content": "ink"}}]},
        {"id": "r", "model": "m", "choices": [{"index": 0, "delta": {"content": "An"}}]},
        {"id": "r", "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "call_a", "type": "function", "function": {"name": "look", "arguments": ""}}]}}]},
        {"id": "r", "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "function": {"arguments": "{\"q\":"}}]}}]},
        {"id": "r", "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 1, "id": "call_b", "function": {"name": "other", "arguments": "{}"}}]}}]},
        {"id": "r", "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "", "function": {"arguments": " 1}"}}]}}]},
        {"id": "r", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"id": "r", "model": "m", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11}},
    ]
    acc = StreamAccumulator()
    for c in chunks:
        acc.add(parse_chunk(c))
    r = acc.build()
    assert (r.text, r.reasoning, r.finish_reason, r.request_id) == ("An", "think", "tool_calls", "r")
    assert [(t.id, t.name, t.parsed_arguments()) for t in r.tool_calls] == [("call_a", "look", {"q": 1}), ("call_b", "other", {})]
    assert r.usage.total_tokens == 11


def test_mid_stream_error_frame_raises_typed_error():
    with pytest.raises(ContentModerationError) as info:
        parse_chunk({"error": {"message": "Output data may contain inappropriate content.",
                               "code": "data_inspection_failed"}, "request_id": "rq"})
    assert info.value.request_id == "rq"


def test_parse_native_message():
    d = parse_native({"request_id": "n1", "output": {"choices": [{"finish_reason": "stop", "message": {
        "role": "assistant", "content": [{"text": "abc"}, {"text": "def"}]}}]},
        "usage": {"input_tokens": 3, "output_tokens": 2, "image_tokens": 1}})
    assert (d.text, d.finish_reason, d.request_id, d.usage.image_tokens) == ("abcdef", "stop", "n1", 1)


def test_parse_native_error_event():
    with pytest.raises(Exception) as info:
        parse_native({"code": "InvalidParameter", "message": "bad", "request_id": "n2"})
    assert info.value.request_id == "n2" and info.value.code == "InvalidParameter"


# ------------------------------------------------------------------ structured output helpers

from qwen_vl_core.structured import extract_json, json_schema_format  # noqa: E402


def test_json_schema_format():
    rf = json_schema_format({"title": "My Invoice", "type": "object"}, strict=True)
    assert rf == {"type": "json_schema", "json_schema": {"name": "My_Invoice", "schema": {"title": "My Invoice", "type": "object"}, "strict": True}}
    with pytest.raises(InputValidationError):
        json_schema_format("nope")


@pytest.mark.parametrize(
    "text",
    ['{"a": 1}', '```json\n{"a": 1}\n```', 'Here you go:\n```\n{"a": 1}\n```\nDone.', 'Sure! {"a": 1} hope it helps'],
)
def test_extract_json_tolerates_fences_and_prose(text):
    assert extract_json(text) == {"a": 1}


def test_extract_json_raises_on_no_json():
    with pytest.raises(ValueError):
        extract_json("no json here")
