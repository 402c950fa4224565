"""Typed errors surfacing through ChatQwenVL, and the API key never leaking (repr, str, logs,
exceptions, serialization)."""

from __future__ import annotations

import logging
import pickle
import traceback

import pytest
from tests.support.chat import KEY, Json, Sse, chunks, completion, make_model
from langchain_core.load import dumpd, dumps, load
from langchain_core.messages import HumanMessage

from langchain_qwen_vl import (
    AuthenticationError,
    ChatQwenVL,
    ConfigurationError,
    ContentModerationError,
    IncompleteStreamError,
    RateLimitError,
    ServerError,
)

from tests.fake_dashscope import Reset, error_body


def _throttled(rid: str) -> Json:
    return Json(
        error_body("Requests rate limit exceeded, please try again later.", "Throttling.RateQuota", request_id=rid),
        429,
        headers={"retry-after-ms": "10"},
    )


def test_rate_limit_after_retries(dashscope) -> None:
    dashscope.script(_throttled("rid-1"), _throttled("rid-2"), _throttled("rid-3"))
    llm = make_model(dashscope, max_retries=2)
    with pytest.raises(RateLimitError) as info:
        llm.invoke("hi")
    assert info.value.status == 429
    assert info.value.request_id == "rid-3"
    assert info.value.code == "Throttling.RateQuota"
    assert len(dashscope.chat_requests) == 3  # the first try and two retries


def test_retry_then_success(dashscope) -> None:
    dashscope.script(_throttled("rid-1"), Json(completion("finally")))
    assert make_model(dashscope, max_retries=1).invoke("hi").text == "finally"


async def test_rate_limit_async_and_streaming(dashscope) -> None:
    dashscope.script(_throttled("rid-a"), _throttled("rid-b"))
    with pytest.raises(RateLimitError) as info:
        async for _ in make_model(dashscope, max_retries=1).astream("hi"):
            pass
    assert info.value.request_id == "rid-b"


def test_cut_stream_is_an_error_not_a_short_answer(dashscope) -> None:
    dashscope.script(Sse(chunks("a long answer that is cut", piece=4), cut_after=3))
    seen = []
    with pytest.raises(IncompleteStreamError):
        for chunk in make_model(dashscope).stream("hi"):
            seen.append(chunk)
    assert seen  # some text arrived, then the error, never a normal end
    assert all(c.chunk_position != "last" for c in seen)


def test_cut_stream_under_invoke(dashscope) -> None:
    # A stream-only model's invoke streams underneath: a cut must raise, not return part of an answer.
    dashscope.script(Sse(chunks("partial", reasoning="hmm"), cut_after=2))
    with pytest.raises(IncompleteStreamError):
        make_model(dashscope, model="qvq-max").invoke("hi")


async def test_cut_stream_async(dashscope) -> None:
    dashscope.script(Sse(chunks("a long answer"), cut_after=2))
    with pytest.raises(IncompleteStreamError):
        await make_model(dashscope, streaming=True).ainvoke("hi")


def test_error_frame_mid_stream(dashscope) -> None:
    frames = chunks("some text")[:3] + [
        {"error": {"message": "Output data may contain inappropriate content.", "code": "data_inspection_failed"},
         "request_id": "rid-mod"}
    ]  # fmt: skip
    dashscope.script(Sse(frames, done=False))
    with pytest.raises(ContentModerationError) as info:
        list(make_model(dashscope).stream("hi"))
    assert info.value.request_id == "rid-mod"


def test_server_error_and_reset(dashscope) -> None:
    dashscope.script(Json(error_body("Model serving error", "ModelServingError"), 503))
    with pytest.raises(ServerError):
        make_model(dashscope).invoke("hi")
    dashscope.script(Reset())
    from langchain_qwen_vl import APIConnectionError

    with pytest.raises(APIConnectionError):
        make_model(dashscope).invoke("hi")


def test_missing_key_is_a_clear_configuration_error(tmp_path) -> None:
    with pytest.raises(ConfigurationError, match="DASHSCOPE_API_KEY"):
        ChatQwenVL()
    with pytest.raises(ConfigurationError, match="unknown region 'mars'"):
        ChatQwenVL(api_key=KEY, region="mars")


def test_key_found_from_env_and_dotenv(dashscope, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-from-env-1234")
    assert ChatQwenVL().api_key.get_secret_value() == "sk-from-env-1234"
    monkeypatch.delenv("DASHSCOPE_API_KEY")
    (tmp_path / "cwd" / ".env").write_text("DASHSCOPE_API_KEY=sk-from-dotenv-5678\n")
    llm = ChatQwenVL(base_url=dashscope.url)
    llm.invoke("hi")
    assert dashscope.chat_requests[-1].headers["authorization"] == "Bearer sk-from-dotenv-5678"


def test_key_never_leaks(dashscope, caplog) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    llm = make_model(dashscope, max_retries=1)
    dashscope.script(_throttled("r1"), Json(completion("ok")))
    llm.invoke("hello")
    list(llm.stream("hello"))
    structured = llm.with_structured_output({"title": "x", "type": "object", "properties": {}}, include_raw=True)
    dashscope.script(Json(error_body("Incorrect API key provided.", "invalid_api_key"), 401))
    with pytest.raises(AuthenticationError) as info:
        llm.invoke([HumanMessage("again")])
    texts = [
        repr(llm), str(llm), repr(llm.client), repr(structured), llm.model_dump_json(), str(llm.model_dump()),
        dumps(llm), str(dumpd(llm)), str(llm._identifying_params), str(llm._get_ls_params()),
        str(info.value), repr(info.value), "".join(traceback.format_exception(info.value)),
        caplog.text, str(pickle.loads(pickle.dumps(info.value))),
    ]  # fmt: skip
    for text in texts:
        assert KEY not in text
    assert "Bearer" not in caplog.text
    assert len(caplog.records) > 0  # the logs were captured (retry note, httpx request lines)
    assert llm.api_key.get_secret_value() == KEY  # still usable


def test_serialization_keeps_the_key_secret_and_round_trips(dashscope, monkeypatch) -> None:
    llm = make_model(dashscope, model="qwen3-vl-flash", enable_thinking=True, max_pixels=1_000_000, allowed_dirs=["/data"])
    data = dumpd(llm)
    assert data["kwargs"]["api_key"] == {"lc": 1, "type": "secret", "id": ["DASHSCOPE_API_KEY"]}
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-loaded-from-env")
    again = load(data, allowed_objects=[ChatQwenVL], valid_namespaces=["langchain_qwen_vl"], secrets_from_env=True)
    assert isinstance(again, ChatQwenVL)
    assert again.api_key.get_secret_value() == "sk-loaded-from-env"
    assert (again.model, again.enable_thinking, again.max_pixels, again.allowed_dirs, again.base_url) == (
        "qwen3-vl-flash", True, 1_000_000, ["/data"], dashscope.url,
    )  # fmt: skip
    again.invoke("hi")
    assert dashscope.chat_requests[-1].headers["authorization"] == "Bearer sk-loaded-from-env"
