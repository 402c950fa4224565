"""The adapters' shared rule for a call that cannot think (JSON output, a forced tool call) on a model
object configured with ``enable_thinking=True``: :func:`qwen_vl_core.planning.thinking_off_for_call`."""

from __future__ import annotations

import pytest

from qwen_vl_core import InputValidationError, get_capabilities
from qwen_vl_core.planning import needs_thinking_off, plan_request, thinking_off_for_call

TOOLS = [{"type": "function", "function": {"name": "add", "parameters": {}}}]
JSON = {"type": "json_object"}


@pytest.mark.parametrize(
    ("options", "why"),
    [
        ({"response_format": JSON}, "structured output"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}, "structured output"),
        ({"tools": TOOLS, "tool_choice": "required"}, "forced tool call"),
        ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "add"}}}, "forced tool call"),
        ({"tools": TOOLS, "tool_choice": "auto"}, None),
        ({"tool_choice": "required"}, None),  # no tools bound: nothing is forced
        ({"response_format": {"type": "text"}}, None),
        ({}, None),
    ],
)
def test_needs_thinking_off(options, why):
    found = needs_thinking_off(options)
    assert (found is None) if why is None else (why in found)


def test_a_configured_switch_and_budget_are_dropped_with_a_note():
    caps = get_capabilities("qwen3-vl-plus")
    defaults = {"enable_thinking": True, "thinking_budget": 500, "temperature": 0.1}
    options, note = thinking_off_for_call(caps, {**defaults, "response_format": JSON}, {"response_format": JSON})
    assert options == {"temperature": 0.1, "response_format": JSON}
    assert "structured output" in note and "'qwen3-vl-plus'" in note and "enable_thinking=True" in note
    plan = plan_request(caps, options, stream=False)
    assert (plan.thinking_on, plan.send_thinking) == (False, None)  # hybrid-off: not sent at all


def test_a_model_that_thinks_by_default_gets_thinking_off_sent():
    caps = get_capabilities("qwen3.5-plus")
    call = {"tools": TOOLS, "tool_choice": "required"}
    options, note = thinking_off_for_call(caps, {"enable_thinking": True, **call}, call)
    assert note and plan_request(caps, options, stream=False).send_thinking is False
    options, note = thinking_off_for_call(caps, {"thinking_budget": 100, **call}, call)  # thinking by default
    assert note is None and "thinking_budget" not in options  # the budget alone goes silently


def test_per_call_thinking_is_left_for_the_plan_to_refuse():
    caps = get_capabilities("qwen3-vl-plus")
    call = {"enable_thinking": True, "response_format": JSON}
    options, note = thinking_off_for_call(caps, dict(call), call)
    assert note is None and options == call
    with pytest.raises(InputValidationError, match="needs thinking off"):
        plan_request(caps, options, stream=False)


@pytest.mark.parametrize("model", ["qvq-max", "qwen3-vl-235b-a22b-thinking", "qwen-vl-max"])
def test_always_and_never_thinking_models_are_left_as_they_are(model):
    caps = get_capabilities(model)
    options = {"enable_thinking": True, "thinking_budget": 10, "response_format": JSON}
    assert thinking_off_for_call(caps, options, {"response_format": JSON}) == (options, None)


def test_calls_that_can_think_are_untouched():
    caps = get_capabilities("qwen3-vl-plus")
    options = {"enable_thinking": True, "thinking_budget": 10, "tools": TOOLS, "tool_choice": "auto"}
    assert thinking_off_for_call(caps, options, {}) == (options, None)
