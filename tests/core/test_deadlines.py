"""Retries and time over real sockets (the local DashScope server): unparseable and long ``Retry-After``,
read timeouts that must not bill twice, the non-streamed deadline, the stream idle timeout, the request
id of a broken stream, and response size limits. Sync and async paths, chat and stream."""

from __future__ import annotations

import email.utils
import time

import pytest

from qwen_vl_core import APITimeoutError, IncompleteStreamError, QwenVLClient, RateLimitError, ServerError
from qwen_vl_core.errors import ResponseTooLargeError
from qwen_vl_core.transport import SERVER_TIME_LIMIT
from tests.fake_dashscope import (
    Dribble,
    Huge,
    Json,
    Slow,
    Sse,
    chunks,
    completion,
    error_body,
    native_chunks,
    native_frames,
)

USER = [{"role": "user", "content": "hello"}]
MODEL = "qwen3-vl-plus"
MB = 1024 * 1024


def make(dashscope, api_key, **options) -> QwenVLClient:
    settings = {"max_retries": 2, "retry_initial_delay": 0.01, "retry_max_delay": 0.05, "timeout": 5} | options
    return QwenVLClient(api_key=api_key, base_url=dashscope.url, **settings)


async def achat_or_stream(client: QwenVLClient, stream: bool) -> str:
    if stream:
        return "".join([d.text async for d in client.astream(USER, model=MODEL)])
    return (await client.achat(USER, model=MODEL)).text


def chat_or_stream(client: QwenVLClient, stream: bool) -> str:
    if stream:
        return "".join(d.text for d in client.stream(USER, model=MODEL))
    return client.chat(USER, model=MODEL).text


def ok(stream: bool, text: str = "ok"):
    return Sse(chunks(text)) if stream else Json(completion(text))


def throttled(retry_after: str, status: int = 429):
    return Json(error_body("slow down", "Throttling.RateQuota" if status == 429 else "ModelUnavailable"),
                status=status, headers={"retry-after": retry_after})


def http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


# ------------------------------------------------------------------ Retry-After

BAD_HINTS = ["abc", "soon", "Wed, 99 Foo 2015 07:28:00 GMT", "inf"]


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
def test_an_unparseable_retry_after_falls_back_to_backoff(dashscope, api_key, stream):
    with make(dashscope, api_key, max_retries=len(BAD_HINTS)) as client:
        dashscope.script(*[throttled(h) for h in BAD_HINTS], ok(stream))
        assert chat_or_stream(client, stream) == "ok"
    assert len(dashscope.chat_requests) == len(BAD_HINTS) + 1


@pytest.mark.parametrize("stream", [False, True], ids=["achat", "astream"])
async def test_async_unparseable_retry_after_falls_back_to_backoff(dashscope, api_key, stream):
    async with make(dashscope, api_key, max_retries=len(BAD_HINTS)) as client:
        dashscope.script(*[throttled(h, 503) for h in BAD_HINTS], ok(stream))
        assert await achat_or_stream(client, stream) == "ok"
    assert len(dashscope.chat_requests) == len(BAD_HINTS) + 1


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
def test_a_retry_after_above_max_retry_wait_is_raised_at_once(dashscope, api_key, stream):
    with make(dashscope, api_key) as client:
        dashscope.script(throttled("90"))
        start = time.monotonic()
        with pytest.raises(RateLimitError, match="max_retry_wait=60") as info:
            chat_or_stream(client, stream)
        assert time.monotonic() - start < 2  # not slept through, not retried at 0.01 s either
        assert info.value.retry_after == 90.0 and info.value.status == 429
        assert len(dashscope.chat_requests) == 1

        dashscope.script(throttled(http_date(120), 503))  # an HTTP date, another status
        with pytest.raises(ServerError) as info:
            chat_or_stream(client, stream)
        assert 100 < info.value.retry_after <= 120
        assert len(dashscope.chat_requests) == 2


async def test_async_retry_after_above_max_retry_wait(dashscope, api_key):
    async with make(dashscope, api_key, max_retry_wait=0.2) as client:
        dashscope.script(throttled("1"))
        with pytest.raises(RateLimitError) as info:
            await client.achat(USER, model=MODEL)
        assert info.value.retry_after == 1.0 and len(dashscope.chat_requests) == 1
        dashscope.script(throttled("1"))
        with pytest.raises(RateLimitError):
            await achat_or_stream(client, True)
        assert len(dashscope.chat_requests) == 2


def test_a_retry_after_up_to_max_retry_wait_is_waited(dashscope, api_key):
    with make(dashscope, api_key, max_retry_wait=2) as client:  # retry_max_delay is 0.05 s
        dashscope.script(throttled("0.6"), ok(False))
        start = time.monotonic()
        assert client.chat(USER, model=MODEL).text == "ok"
        assert time.monotonic() - start >= 0.6
    assert len(dashscope.chat_requests) == 2


def test_a_wait_past_the_deadline_is_not_started(dashscope, api_key):
    with make(dashscope, api_key, deadline=1) as client:
        dashscope.script(throttled("5", 503))
        start = time.monotonic()
        with pytest.raises(ServerError, match="deadline") as info:
            client.chat(USER, model=MODEL)
        assert time.monotonic() - start < 1 and info.value.retry_after == 5.0
    assert len(dashscope.chat_requests) == 1


# ------------------------------------------------------------------ timeouts that bill twice


def test_the_default_timeout_outlasts_the_servers_own_limit(dashscope, api_key):
    with QwenVLClient(api_key=api_key, base_url=dashscope.url) as client:
        transport = client._transport
        assert transport.timeout.read > SERVER_TIME_LIMIT and transport.timeout.connect <= 10
        assert transport.deadline > SERVER_TIME_LIMIT + transport.timeout.connect
        # the server's partial answer (sent when its own limit strikes) arrives and says so
        dashscope.script(Slow(Json(completion("half an answer"), headers={"x-dashscope-partialresponse": "true"}), 0.3))
        result = client.chat(USER, model=MODEL)
    assert result.partial is True and result.text == "half an answer"
    assert len(dashscope.chat_requests) == 1


def test_a_read_timeout_is_not_resent(dashscope, api_key):
    dashscope.script(*[Slow(Json(completion("late")), 1.0)] * 3)
    with make(dashscope, api_key, timeout=0.3) as client:
        with pytest.raises(APITimeoutError, match="not resent.*retry_read_timeouts=True.*stream"):
            client.chat(USER, model=MODEL)
    assert len(dashscope.chat_requests) == 1  # sent (and billed) once


async def test_async_read_timeout_is_not_resent(dashscope, api_key):
    dashscope.script(*[Slow(Json(completion("late")), 1.0)] * 3)
    async with make(dashscope, api_key, timeout=0.3) as client:
        with pytest.raises(APITimeoutError, match="not resent"):
            await client.achat(USER, model=MODEL)
    assert len(dashscope.chat_requests) == 1


def test_read_timeouts_are_resent_when_the_user_opts_in(dashscope, api_key):
    dashscope.script(Slow(Json(completion("late")), 1.0), Json(completion("in time")))
    with make(dashscope, api_key, timeout=0.3, retry_read_timeouts=True) as client:
        assert client.chat(USER, model=MODEL).text == "in time"
    assert len(dashscope.chat_requests) == 2


# ------------------------------------------------------------------ deadline and idle timeout


def dribbled_answer() -> Dribble:
    # about 330 bytes, 8 every 0.25 s: some 10 s in all, each read well within the 3 s timeout
    return Dribble(Json(completion("a slow answer")), every=0.25, size=8)


def test_a_dribbling_server_cannot_keep_a_call_past_its_deadline(dashscope, api_key):
    dashscope.script(dribbled_answer())
    with make(dashscope, api_key, timeout=3, deadline=1.5) as client:
        start = time.monotonic()
        with pytest.raises(APITimeoutError, match="1.5 s deadline"):
            client.chat(USER, model=MODEL)
        assert time.monotonic() - start < 3
    assert len(dashscope.chat_requests) == 1


async def test_async_dribbling_server_and_the_deadline(dashscope, api_key):
    dashscope.script(dribbled_answer())
    async with make(dashscope, api_key, timeout=3, deadline=1.5) as client:
        start = time.monotonic()
        with pytest.raises(APITimeoutError, match="deadline"):
            await client.achat(USER, model=MODEL)
        assert time.monotonic() - start < 2.5
    assert len(dashscope.chat_requests) == 1


def dribbled_stream() -> Dribble:
    # the first event (~170 bytes) takes about 2.5 s to complete, the whole stream some 15 s
    return Dribble(Sse(chunks("an answer that trickles")), every=0.25, size=16)


def test_a_stream_with_no_complete_event_within_the_idle_timeout_fails(dashscope, api_key):
    dashscope.script(dribbled_stream())
    with make(dashscope, api_key, timeout=3, stream_idle_timeout=1) as client:
        start = time.monotonic()
        with pytest.raises(APITimeoutError, match="no complete event for 1 s"):
            list(client.stream(USER, model=MODEL))
        assert time.monotonic() - start < 3
    assert len(dashscope.chat_requests) == 1


async def test_async_stream_idle_timeout(dashscope, api_key):
    dashscope.script(dribbled_stream())
    async with make(dashscope, api_key, timeout=3, stream_idle_timeout=1) as client:
        start = time.monotonic()
        with pytest.raises(APITimeoutError, match="stream_idle_timeout"):
            await achat_or_stream(client, True)
        assert time.monotonic() - start < 2.5


def test_the_idle_timeout_is_between_events_not_a_total(dashscope, api_key):
    events = chunks("steady steady steady", piece=4)  # about 9 events, 0.3 s apart: longer than the idle timeout
    dashscope.script(Sse(events, delay=0.3))
    with make(dashscope, api_key, stream_idle_timeout=1) as client:
        assert "".join(d.text for d in client.stream(USER, model=MODEL)) == "steady steady steady"


# ------------------------------------------------------------------ request id of a broken stream


@pytest.mark.parametrize("native", [False, True], ids=["compatible", "native"])
def test_a_stream_cut_mid_answer_carries_the_request_id_its_chunks_carried(dashscope, api_key, native):
    no_header = {"x-request-id": None}
    with make(dashscope, api_key) as client:
        if native:
            dashscope.script(Sse(native_frames(native_chunks("cut short here", piece=2, request_id="rid-n")),
                                 cut_after=3, headers=no_header))
            deltas = client.stream([{"role": "user", "content": [{"text": "x"}]}], model="qwen-vl-ocr",
                                   ocr_task="text_recognition")
            expected = "rid-n"
        else:
            dashscope.script(Sse(chunks("cut short here", piece=2, request_id="rid-c"), cut_after=3,
                                 headers=no_header))
            deltas = client.stream(USER, model=MODEL)
            expected = "rid-c"
        with pytest.raises(IncompleteStreamError) as info:
            for _ in deltas:
                pass
    assert info.value.request_id == expected


async def test_async_stream_cut_carries_the_request_id(dashscope, api_key):
    dashscope.script(Sse(chunks("cut short here", piece=2, request_id="rid-a"), cut_after=3,
                         headers={"x-request-id": None}))
    async with make(dashscope, api_key) as client:
        with pytest.raises(IncompleteStreamError) as info:
            await achat_or_stream(client, True)
    assert info.value.request_id == "rid-a"


# ------------------------------------------------------------------ response size limits


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked"])
def test_a_json_answer_over_the_limit_is_refused(dashscope, api_key, declare_length):
    dashscope.script(Huge(3 * MB, declare_length=declare_length))
    with make(dashscope, api_key, max_response_bytes=MB) as client:
        with pytest.raises(ResponseTooLargeError, match=f"max_response_bytes={MB}") as info:
            client.chat(USER, model=MODEL)
    assert info.value.limit == MB and info.value.request_id == "rid-huge"
    assert len(dashscope.chat_requests) == 1  # not resent


async def test_async_json_answer_over_the_limit(dashscope, api_key):
    dashscope.script(Huge(3 * MB, declare_length=False))
    async with make(dashscope, api_key, max_response_bytes=MB) as client:
        with pytest.raises(ResponseTooLargeError):
            await client.achat(USER, model=MODEL)


def test_an_answer_within_the_limit_is_read(dashscope, api_key):
    dashscope.script(Huge(MB // 2, declare_length=False))
    with make(dashscope, api_key, max_response_bytes=MB) as client:
        assert len(client.chat(USER, model=MODEL).text) > MB // 2 - 300


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_stream_events_and_streams_over_their_limits(dashscope, api_key, async_):
    async def run(client):
        if async_:
            return await achat_or_stream(client, True)
        return chat_or_stream(client, True)

    with make(dashscope, api_key, max_response_bytes=MB, max_stream_bytes=4 * MB) as client:
        dashscope.script(Huge(3 * MB, kind="sse", event_size=2 * MB))  # one event of 2 MB
        with pytest.raises(ResponseTooLargeError, match="one event.*max_response_bytes") as info:
            await run(client)
        assert info.value.request_id == "rid-huge"
        dashscope.script(Huge(6 * MB, kind="sse", event_size=16 * 1024))  # small events, too many
        with pytest.raises(ResponseTooLargeError, match=f"max_stream_bytes={4 * MB}"):
            await run(client)
        dashscope.script(Huge(MB, kind="sse", event_size=16 * 1024))  # within both
        assert len(await run(client)) > MB // 2
        await client.aclose()
    assert len(dashscope.chat_requests) == 3


# ------------------------------------------------------------------ the options, validated and exposed


def test_limits_are_validated_before_anything_is_sent(dashscope, api_key):
    from qwen_vl_core import ConfigurationError

    for bad in ({"deadline": 0}, {"stream_idle_timeout": -1}, {"max_response_bytes": "big"},
                {"max_retry_wait": -1}, {"max_stream_bytes": True}):
        with pytest.raises(ConfigurationError, match=next(iter(bad))):
            make(dashscope, api_key, **bad)
    client = make(dashscope, api_key, deadline=None, stream_idle_timeout=None, max_response_bytes=None,
                  max_stream_bytes=None, max_retry_wait=0)
    assert client.chat(USER, model=MODEL).text
    client.close()


NEW_OPTIONS = {"deadline": 7.0, "stream_idle_timeout": 8.0, "max_retry_wait": 9.0, "retry_read_timeouts": True,
               "max_response_bytes": 1234567, "max_stream_bytes": 7654321}


def transport_settings(client: QwenVLClient) -> dict:
    t = client._transport
    return {"deadline": t.deadline, "stream_idle_timeout": t.stream_idle_timeout,
            "max_retry_wait": t.retry.max_retry_wait, "retry_read_timeouts": t.retry.retry_read_timeouts,
            "max_response_bytes": t.max_response_bytes, "max_stream_bytes": t.max_stream_bytes}


def test_the_adapters_pass_the_options_and_default_above_the_servers_limit(dashscope, api_key):
    assert set(NEW_OPTIONS) <= set(QwenVLClient.SETTINGS)
    langchain = pytest.importorskip("langchain_qwen_vl")
    llama_index = pytest.importorskip("llama_index_qwen_vl")
    for make_adapter in (
        lambda **kw: langchain.ChatQwenVL(api_key=api_key, base_url=dashscope.url, **kw),
        lambda **kw: llama_index.QwenVL(api_key=api_key, base_url=dashscope.url, **kw),
    ):
        default = make_adapter().client
        assert default._transport.timeout.read > SERVER_TIME_LIMIT
        assert transport_settings(default)["deadline"] > SERVER_TIME_LIMIT
        assert transport_settings(make_adapter(**NEW_OPTIONS).client) == NEW_OPTIONS
