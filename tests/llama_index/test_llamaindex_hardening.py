"""QwenVL, QwenVLReader and QwenVLImageCaptioner under hostile answers and in worker processes, over
real sockets: answers that are not answers, pickles without the key, thinking on forced calls."""

from __future__ import annotations

import pickle
import warnings

import pytest
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.schema import ImageNode
from llama_index.core.tools import FunctionTool
from tests.support.llama_index import KEY, Json, Sse, chunks, completion, image_bytes

from llama_index_qwen_vl import QwenVL, QwenVLImageCaptioner, QwenVLReader
from qwen_vl_core import ConfigurationError, IncompleteStreamError, InputValidationError
from qwen_vl_core.errors import EmptyResponseError

ENV_KEY = "sk-from-the-environment-0042"


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def null_content() -> Json:
    body = completion("x", request_id="rid-null")
    body["choices"][0]["message"]["content"] = None
    return Json(body)


# ------------------------------------------------------------------ answers that are not answers


def test_chat_on_a_null_answer_raises(dashscope):
    dashscope.script(null_content())
    with pytest.raises(EmptyResponseError) as info:
        QwenVL(api_key=KEY, base_url=dashscope.url).chat([ChatMessage(content="hi")])
    assert info.value.request_id == "rid-null"


@pytest.mark.parametrize(
    "kwargs", [{}, {"enable_thinking": True}, {"model": "qvq-max"}], ids=["plain", "thinking", "qvq"]
)
def test_a_stream_of_only_done_raises(dashscope, kwargs):
    dashscope.script(Sse([], done=True))
    llm = QwenVL(api_key=KEY, base_url=dashscope.url, **kwargs)
    with pytest.raises(IncompleteStreamError, match="without an answer"):
        list(llm.stream_chat([ChatMessage(content="hi")]))


async def test_achat_of_a_thinking_model_over_only_done_raises(dashscope):
    dashscope.script(Sse([], done=True))
    with pytest.raises(IncompleteStreamError):
        await QwenVL(api_key=KEY, base_url=dashscope.url, model="qvq-max").achat([ChatMessage(content="hi")])


def test_an_empty_string_answer_is_empty_text(dashscope):
    dashscope.script(Json(completion("")))
    assert QwenVL(api_key=KEY, base_url=dashscope.url).chat([ChatMessage(content="hi")]).message.content == ""


def test_a_lone_surrogate_is_refused_before_sending(dashscope):
    with pytest.raises(InputValidationError, match=r"message 0 \(user\)"):
        QwenVL(api_key=KEY, base_url=dashscope.url).chat([ChatMessage(content="bad \udcc3")])
    assert dashscope.chat_requests == []


# ------------------------------------------------------------------ pickles carry no key


def used_objects(dashscope):
    llm = QwenVL(api_key=KEY, base_url=dashscope.url)
    llm.chat([ChatMessage(content="hi")])
    reader = QwenVLReader(api_key=KEY, base_url=dashscope.url)
    captioner = QwenVLImageCaptioner(api_key=KEY, base_url=dashscope.url)
    captioner([ImageNode(image_resource={"data": image_bytes()})])
    return llm, reader, captioner


def test_pickles_carry_no_key_and_find_it_again(dashscope, monkeypatch, caplog):
    objects = used_objects(dashscope)
    dumps = [pickle.dumps(obj) for obj in objects]
    for data in dumps:
        assert KEY.encode() not in data
    monkeypatch.setenv("DASHSCOPE_API_KEY", ENV_KEY)
    llm, reader, captioner = (pickle.loads(data) for data in dumps)
    assert llm.chat([ChatMessage(content="again")]).message.content
    assert dashscope.chat_requests[-1].headers["authorization"] == f"Bearer {ENV_KEY}"
    assert captioner.client.api_key.get_secret_value() == ENV_KEY
    assert reader.client.api_key.get_secret_value() == ENV_KEY
    assert "Removing unpickleable" not in caplog.text


def test_an_unpickled_object_without_a_key_says_where_it_looked(dashscope):
    dumps = [pickle.dumps(obj) for obj in used_objects(dashscope)]
    sent = len(dashscope.chat_requests)
    llm, reader, captioner = (pickle.loads(data) for data in dumps)  # unpickling never fails
    with pytest.raises(ConfigurationError, match="DASHSCOPE_API_KEY.*credentials"):
        llm.chat([ChatMessage(content="again")])
    for obj in (reader, captioner):
        with pytest.raises(ConfigurationError, match="DASHSCOPE_API_KEY"):
            obj.client  # noqa: B018
    assert len(dashscope.chat_requests) == sent


def test_an_injected_client_is_pickled_without_its_key(dashscope, monkeypatch):
    from qwen_vl_core import QwenVLClient

    llm = QwenVL(client=QwenVLClient(api_key=KEY, base_url=dashscope.url))
    data = pickle.dumps(llm)
    assert KEY.encode() not in data
    monkeypatch.setenv("DASHSCOPE_API_KEY", ENV_KEY)
    pickle.loads(data).chat([ChatMessage(content="hi")])
    assert dashscope.chat_requests[-1].headers["authorization"] == f"Bearer {ENV_KEY}"


# ------------------------------------------------------------------ thinking and forced calls


def test_a_forced_tool_call_turns_configured_thinking_off_with_one_warning(dashscope):
    llm = QwenVL(api_key=KEY, base_url=dashscope.url, model="qwen3.5-plus", enable_thinking=True, thinking_budget=50)
    with pytest.warns(UserWarning, match=r"QwenVL: a forced tool call \(tool_choice\) needs thinking off") as caught:
        llm.chat_with_tools([FunctionTool.from_defaults(fn=add)], user_msg="add", tool_required=True)
    assert len(caught) == 1 and caught[0].filename == __file__
    body = dashscope.last_body
    assert body["tool_choice"] == "required" and body["enable_thinking"] is False and "thinking_budget" not in body


def test_thinking_asked_for_in_the_call_is_refused(dashscope):
    llm = QwenVL(api_key=KEY, base_url=dashscope.url)
    with pytest.raises(InputValidationError, match="needs thinking off"):
        llm.chat([ChatMessage(content="json please")], response_format={"type": "json_object"}, enable_thinking=True)
    assert dashscope.chat_requests == []


def test_calls_that_can_think_are_left_alone(dashscope):
    llm = QwenVL(api_key=KEY, base_url=dashscope.url, enable_thinking=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        llm.chat_with_tools([FunctionTool.from_defaults(fn=add)], user_msg="add")
    assert dashscope.last_body["enable_thinking"] is True
