"""Tool choice and tool-call argument JSON (``qwen_vl_core.tools``), fed plain dicts and strings."""

from __future__ import annotations

import pytest

from qwen_vl_core import ChatDelta, InputValidationError, StreamAccumulator, ToolCall, ToolCallDelta
from qwen_vl_core.tools import arguments_json, forces_tool, normalize_tool_choice, parse_arguments, tool_names


def fn(name: str) -> dict:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": {}}}}


TOOLS = [fn("add"), fn("get_weather")]
NAMED_ADD = {"type": "function", "function": {"name": "add"}}


# ---------------------------------------------------------------- tool_choice


def test_tool_names_in_order():
    assert tool_names(TOOLS) == ["add", "get_weather"]
    assert tool_names([{"type": "retrieval"}, fn("x"), {"function": {"name": "y"}}]) == ["x", "y"]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ("any", "required"),  # LangChain's and Anthropic's name
        ("add", NAMED_ADD),
        (False, "none"),
        (True, "required"),  # several tools: any of them
        (NAMED_ADD, NAMED_ADD),
    ],
)
def test_tool_choice_forms(choice, expected):
    assert normalize_tool_choice(choice, TOOLS) == expected


def test_true_with_one_tool_names_it():
    assert normalize_tool_choice(True, [fn("add")]) == NAMED_ADD


def test_none_is_not_sent_unless_a_tool_is_required():
    assert normalize_tool_choice(None, TOOLS) is None
    assert normalize_tool_choice(None, TOOLS, required=True) == "required"  # LlamaIndex tool_required
    assert normalize_tool_choice("auto", TOOLS, required=True) == "auto"  # an explicit choice wins
    assert normalize_tool_choice("add", TOOLS, required=True) == NAMED_ADD


def test_a_returned_dict_is_a_copy():
    given = dict(NAMED_ADD)
    out = normalize_tool_choice(given, TOOLS)
    assert out == given and out is not given


def test_named_tool_must_be_bound():
    with pytest.raises(InputValidationError, match="'multiply' is not one of the bound tools: add, get_weather"):
        normalize_tool_choice("multiply", TOOLS)
    with pytest.raises(ValueError, match=r"'add' is not one of the bound tools: \(none\)"):
        normalize_tool_choice("add", [])
    with pytest.raises(ValueError, match="'multiply' is not one of the bound tools"):
        normalize_tool_choice({"type": "function", "function": {"name": "multiply"}}, TOOLS)


def test_other_types_are_refused():
    with pytest.raises(InputValidationError, match="unsupported tool_choice 3"):
        normalize_tool_choice(3, TOOLS)  # type: ignore[arg-type]


def test_forces_tool():
    assert forces_tool("required") and forces_tool(NAMED_ADD)
    assert not forces_tool("auto") and not forces_tool("none") and not forces_tool(None)


# ---------------------------------------------------------------- argument JSON out


def test_arguments_json():
    assert arguments_json({"city": "杭州"}) == '{"city": "杭州"}'  # not ASCII-escaped
    assert arguments_json('{"a": 1') == '{"a": 1'  # text is kept as it is (an invalid call's raw text too)
    assert arguments_json(None) == ""  # a stream fragment without arguments
    assert arguments_json(None, missing="{}") == "{}"  # an assistant message sent back
    assert arguments_json({}) == "{}"


# ---------------------------------------------------------------- argument JSON in: strict


def test_strict_parse():
    assert parse_arguments('{"a": 1, "b": [true, null]}') == {"a": 1, "b": [True, None]}
    assert parse_arguments("") == {} and parse_arguments("  \n") == {} and parse_arguments(None) == {}
    assert parse_arguments({"a": 1}) == {"a": 1}  # already parsed


@pytest.mark.parametrize("text", ['{"a": 1', "[1, 2]", '"x"', "42", "not json", '{"a": 1} trailing'])
def test_strict_parse_refuses_anything_but_one_object(text):
    with pytest.raises(ValueError, match="tool-call arguments are not"):
        parse_arguments(text)


def test_tool_call_names_itself_in_the_error():
    assert ToolCall("c1", "add", '{"a": 1}').parsed_arguments() == {"a": 1}
    with pytest.raises(ValueError, match=r"tool call 'add': tool-call arguments are not valid JSON"):
        ToolCall("c1", "add", '{"a": 1,').parsed_arguments()
    assert ToolCall("c1", "add", '{"a": 1,').parsed_arguments(partial=True) == {"a": 1}


# ---------------------------------------------------------------- argument JSON in: partial (streaming)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('{"x": 1', {"x": 1}),
        ('{"city": "Par', {"city": "Par"}),
        ('{"a": 1, "b', {"a": 1}),  # a dangling key is dropped
        ('{"a": 1, "b": ', {"a": 1}),
        ('{"a": 1,', {"a": 1}),
        ('{"a": [1, 2', {"a": [1, 2]}),
        ('{"a": {"b": "c"', {"a": {"b": "c"}}),
        ('{"a": [1, {"b": tr', {"a": [1, {}]}),
        ('{"s": "x\\', {"s": "x"}),  # cut inside an escape
        ('{"s": "a\\"b', {"s": 'a"b'}),
        ('{"s": "line\nbreak"', {"s": "line\nbreak"}),  # raw control characters are tolerated
        ('{"a": 1}}', {"a": 1}),  # text after a stray closer is ignored
        ("{", {}),
        ("", {}),
        ("not json", {}),
        ("[1, 2", {}),  # not an object
        ('"just a string"', {}),
    ],
)
def test_partial_parse(text, expected):
    assert parse_arguments(text, partial=True) == expected


def test_partial_parse_of_every_prefix_never_raises():
    text = '{"city": "Hangzhou", "days": [1, 2, 3], "units": {"temp": "c", "wind": null}, "ok": true}'
    for end in range(len(text) + 1):
        value = parse_arguments(text[:end], partial=True)
        assert isinstance(value, dict)
    assert parse_arguments(text, partial=True) == parse_arguments(text)


# ---------------------------------------------------------------- tool calls assembled from a stream


def test_accumulator_assembles_tool_calls_and_shows_them_while_streaming():
    acc = StreamAccumulator()
    assert acc.add(ChatDelta(model="m", request_id="r")) is False  # role chunk: nothing to show
    assert acc.add(ChatDelta(tool_calls=[ToolCallDelta(0, id="c1", name="add", arguments='{"a": ')]))
    acc.add(ChatDelta(tool_calls=[ToolCallDelta(1, id="c2", name="get_weather", arguments='{"city": "Pa')]))
    so_far = acc.tool_calls
    assert [(c.id, c.name, c.arguments) for c in so_far] == [("c1", "add", '{"a": '), ("c2", "get_weather", '{"city": "Pa')]
    assert not acc.finished
    assert [c.parsed_arguments(partial=True) for c in so_far] == [{}, {"city": "Pa"}]
    acc.add(ChatDelta(tool_calls=[ToolCallDelta(0, arguments="1}"), ToolCallDelta(1, arguments='ris"}')]))
    acc.add(ChatDelta(finish_reason="tool_calls"))
    assert acc.finished
    result = acc.build()
    assert [(c.id, c.parsed_arguments()) for c in result.tool_calls] == [("c1", {"a": 1}), ("c2", {"city": "Paris"})]
    assert (result.model, result.request_id, result.finish_reason) == ("m", "r", "tool_calls")
    assert acc.build() is not result  # each snapshot is a new object


def test_accumulator_names_calls_without_an_id_by_index():
    acc = StreamAccumulator()
    acc.add(ChatDelta(tool_calls=[ToolCallDelta(2, name="add")]))
    assert [(c.id, c.name, c.arguments) for c in acc.build().tool_calls] == [("call_2", "add", "")]
