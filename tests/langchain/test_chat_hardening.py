"""ChatQwenVL and QwenVLExtractor under hostile inputs and answers, over real sockets: answers that are
not answers, text that is not Unicode, prompts past the context window, keys in pickles and echoed
errors, thinking on a model asked for forced output, and ``typing.TypedDict`` schemas."""

from __future__ import annotations

import os
import pickle
import typing
import warnings

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.tools import tool
from typing_extensions import Required

from langchain_qwen_vl import ChatQwenVL, QwenVLExtractor
from qwen_vl_core import AuthenticationError, ConfigurationError, IncompleteStreamError, InputValidationError
from qwen_vl_core.errors import EmptyResponseError
from tests.support.chat import KEY, Json, Sse, chunks, completion, make_model, png_bytes, smart_reply
from tests.fake_dashscope import error_body

ENV_KEY = "sk-from-the-environment-0042"


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class LineItem(typing.TypedDict):
    name: str
    price: float


class Invoice(typing.TypedDict, total=False):
    """An invoice."""

    number: Required[str]
    items: list[LineItem]


def null_content() -> Json:
    body = completion("x", request_id="rid-null")
    body["choices"][0]["message"]["content"] = None
    return Json(body)


# ------------------------------------------------------------------ answers that are not answers


def test_invoke_on_a_null_answer_raises(dashscope) -> None:
    dashscope.script(null_content())
    with pytest.raises(EmptyResponseError) as info:
        make_model(dashscope).invoke("hi")
    assert info.value.request_id == "rid-null"


async def test_ainvoke_on_a_null_answer_raises(dashscope) -> None:
    dashscope.script(null_content())
    with pytest.raises(EmptyResponseError):
        await make_model(dashscope).ainvoke("hi")


@pytest.mark.parametrize(
    "kwargs",
    [{"streaming": True}, {"enable_thinking": True}, {"model": "qvq-max"}],
    ids=["streaming", "thinking", "qvq"],
)
def test_a_stream_of_only_done_raises_from_stream_and_invoke(dashscope, kwargs) -> None:
    dashscope.script(Sse([], done=True), Sse([], done=True))
    llm = make_model(dashscope, **kwargs)
    with pytest.raises(IncompleteStreamError, match="without an answer"):
        list(llm.stream("hi"))
    with pytest.raises(IncompleteStreamError, match="without an answer"):
        llm.invoke("hi")


async def test_astream_of_only_done_raises(dashscope) -> None:
    dashscope.script(Sse([], done=True))
    with pytest.raises(IncompleteStreamError):
        async for _ in make_model(dashscope).astream("hi"):
            pass


def test_an_empty_string_answer_is_empty_text(dashscope) -> None:
    dashscope.script(Json(completion("")), Sse(chunks("")))
    llm = make_model(dashscope)
    assert llm.invoke("hi").content == ""
    assert "".join(c.text for c in llm.stream("hi")) == ""


# ------------------------------------------------------------------ inputs


def test_a_lone_surrogate_is_refused_naming_the_message(dashscope) -> None:
    with pytest.raises(InputValidationError, match=r"message 1 \(user\) part 1 \(text\) contains a lone surrogate"):
        make_model(dashscope).invoke([SystemMessage("be brief"), HumanMessage([{"type": "text", "text": "a"},
                                                                               {"type": "text", "text": "b\udc9f"}])])
    assert dashscope.chat_requests == []


def test_a_prompt_past_the_window_is_refused_but_still_counted(dashscope) -> None:
    llm = make_model(dashscope, model="qwen-vl-max")
    prompt = [HumanMessage("x" * 3_000_000)]
    assert llm.get_num_tokens_from_messages(prompt) > 131_072  # counting never refuses (trim_messages relies on it)
    with pytest.raises(InputValidationError, match="131,072-token context window of 'qwen-vl-max'"):
        llm.invoke(prompt)
    assert dashscope.chat_requests == []


# ------------------------------------------------------------------ secrets


def test_a_used_model_pickles_without_its_key(dashscope, monkeypatch) -> None:
    llm = make_model(dashscope)
    llm.invoke("hi")
    data = pickle.dumps(llm)
    assert KEY.encode() not in data
    monkeypatch.setenv("DASHSCOPE_API_KEY", ENV_KEY)
    clone = pickle.loads(data)
    assert clone.invoke("hi").content
    assert dashscope.chat_requests[-1].headers["authorization"] == f"Bearer {ENV_KEY}"
    assert clone.model == llm.model and clone.base_url == llm.base_url


def test_an_unpickled_model_without_a_key_says_where_it_looked(dashscope) -> None:
    clone = pickle.loads(pickle.dumps(make_model(dashscope)))
    with pytest.raises(ConfigurationError, match="DASHSCOPE_API_KEY.*never pickled"):
        clone.invoke("hi")
    assert dashscope.chat_requests == []


def test_an_extractor_pickles_without_the_key(dashscope) -> None:
    extractor = QwenVLExtractor(Invoice, llm=make_model(dashscope))
    assert KEY.encode() not in pickle.dumps(extractor)


def test_the_document_loader_pickles_without_the_key(dashscope) -> None:
    loaders = pytest.importorskip("langchain_qwen_vl.document_loaders")
    loader = loaders.QwenVLDocumentLoader("scan.png", api_key=KEY, base_url=dashscope.url)
    assert KEY.encode() not in pickle.dumps(loader)


def test_an_echoed_key_never_reaches_the_exception(dashscope) -> None:
    dashscope.script(Json(error_body(f"Incorrect API key provided: {KEY}", "invalid_api_key"), status=401))
    with pytest.raises(AuthenticationError) as info:
        make_model(dashscope).invoke("hi")
    assert KEY not in str(info.value) and KEY not in repr(info.value.body)


# ------------------------------------------------------------------ thinking and forced output


def test_structured_output_turns_configured_thinking_off_with_one_warning(dashscope) -> None:
    dashscope.responder = smart_reply
    llm = make_model(dashscope, model="qwen3.5-plus", enable_thinking=True, thinking_budget=300)
    for method in ("json_schema", "function_calling", "json_mode"):
        with warnings.catch_warnings(record=True) as log:
            warnings.simplefilter("always")
            structured = llm.with_structured_output(None if method == "json_mode" else Invoice, method=method)
            out = structured.invoke("read the invoice, answer in JSON")
        ours = [w for w in log if w.category is UserWarning]
        forced = method == "function_calling"
        why = "a forced tool call (tool_choice)" if forced else "structured output (response_format)"
        assert [str(w.message) for w in ours] == [
            f"ChatQwenVL: {why}"
            " needs thinking off (DashScope cannot think while its output is forced): thinking is turned off for "
            "this call of 'qwen3.5-plus', although enable_thinking=True is set"
        ], method
        assert ours[0].filename == __file__  # points at the user's line
        body = dashscope.last_body
        assert body["enable_thinking"] is False and "thinking_budget" not in body, method
        assert isinstance(out, dict), method


def test_calls_that_can_think_keep_thinking_without_a_warning(dashscope) -> None:
    llm = make_model(dashscope, enable_thinking=True).bind_tools([add])  # auto: the model may think
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        llm.invoke("1+1")
    assert dashscope.last_body["enable_thinking"] is True


def test_an_always_thinking_model_cannot_be_forced(dashscope) -> None:
    llm = make_model(dashscope, model="qwen3-vl-235b-a22b-thinking").bind_tools([add], tool_choice="add")
    with pytest.raises(InputValidationError, match="needs thinking off"):
        llm.invoke("1+1")
    assert dashscope.chat_requests == []


# ------------------------------------------------------------------ typing.TypedDict schemas


@pytest.mark.parametrize("method", ["json_schema", "function_calling", "json_mode"])
def test_with_structured_output_takes_a_typing_typeddict(dashscope, method) -> None:
    dashscope.responder = smart_reply
    if method == "json_mode":
        dashscope.responder = lambda rec: Json(completion('{"number": "A-1", "items": []}'))
    out = make_model(dashscope).with_structured_output(Invoice, method=method).invoke("read it as JSON")
    assert isinstance(out, dict) and "number" in out


def test_the_extractor_takes_a_typing_typeddict(dashscope) -> None:
    dashscope.script(
        Json(completion('{"items": [{"name": "tea"}]}')),  # invalid: sent back with the problems
        Json(completion('{"number": "A-1", "items": [{"name": "tea", "price": "2.5"}]}')),
    )
    extractor = QwenVLExtractor(Invoice, llm=make_model(dashscope))
    assert extractor.invoke(png_bytes()) == {"number": "A-1", "items": [{"name": "tea", "price": 2.5}]}
    repair = dashscope.last_body["messages"][-1]["content"]
    assert "$.number: Field required" in str(repair) and "$.items[0].price: Field required" in str(repair)
    assert dashscope.chat_requests[0].json["response_format"]["json_schema"]["name"] == "Invoice"


def test_the_extractor_on_a_thinking_model_warns_once_and_turns_thinking_off(dashscope) -> None:
    dashscope.script(Json(completion('{"items": []}')), Json(completion('{"number": "7"}')))
    with pytest.warns(UserWarning, match="extraction needs thinking off") as caught:
        extractor = QwenVLExtractor(Invoice, llm=make_model(dashscope, enable_thinking=True, thinking_budget=100))
    assert len(caught) == 1 and caught[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert extractor.invoke(png_bytes()) == {"number": "7"}  # one repair, no further warning
    for request in dashscope.chat_requests:
        assert "enable_thinking" not in request.json and "thinking_budget" not in request.json


def test_chat_qwen_vl_is_still_constructible_from_the_environment(dashscope, monkeypatch) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", ENV_KEY)
    assert ChatQwenVL(base_url=dashscope.url).api_key.get_secret_value() == ENV_KEY
    assert os.environ["DASHSCOPE_API_KEY"] == ENV_KEY
