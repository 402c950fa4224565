"""The one retry loop per sync/async path, driven through ``httpx.MockTransport``.

Each test runs the same fault script through a plain request and a stream, so a rule that held
for one entry point and not the other would show here.
"""

from __future__ import annotations

import json

import httpx
import pytest

from qwen_vl_core import (
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    IncompleteStreamError,
    RateLimitError,
    ServerError,
)
from qwen_vl_core.errors import ResponseTooLargeError
from qwen_vl_core.transport import RetryPolicy, Transport, _retry_after

URL = "http://dashscope.test/compatible-mode/v1/chat/completions"
FAST = RetryPolicy(max_retries=2, initial_delay=0.001, max_delay=0.002)
SSE = b'data: {"n": 1}\n\ndata: {"n": 2}\n\ndata: [DONE]\n\n'


def error(status: int, **headers: str) -> httpx.Response:
    body = {"error": {"message": f"HTTP {status}", "code": "Throttling" if status == 429 else "x"}}
    return httpx.Response(status, json=body, headers=headers)


def ok(stream: bool) -> httpx.Response:
    if stream:
        return httpx.Response(200, content=SSE, headers={"content-type": "text/event-stream", "x-request-id": "r1"})
    return httpx.Response(200, json={"answer": 42}, headers={"x-request-id": "r1"})


class Script:
    """Answers (responses, exceptions, or callables of the request) in order; records each request."""

    def __init__(self, *steps) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step(request) if callable(step) else step


def sync_transport(script: Script, retry: RetryPolicy = FAST) -> Transport:
    return Transport(retry=retry, http_client=httpx.Client(transport=httpx.MockTransport(script)))


def async_transport(script: Script, retry: RetryPolicy = FAST) -> Transport:
    return Transport(retry=retry, async_http_client=httpx.AsyncClient(transport=httpx.MockTransport(script)))


def call(transport: Transport, stream: bool):
    """What a caller gets: the JSON answer, or the list of events (None for [DONE])."""
    if stream:
        return [event for event, _ in transport.stream(URL, headers={}, json_body={"stream": True})]
    return transport.request("POST", URL, headers={}, json_body={}).data


async def acall(transport: Transport, stream: bool):
    if stream:
        return [event async for event, _ in transport.astream(URL, headers={}, json_body={"stream": True})]
    return (await transport.arequest("POST", URL, headers={}, json_body={})).data


def expected(stream: bool):
    return [{"n": 1}, {"n": 2}, None] if stream else {"answer": 42}


@pytest.mark.parametrize("stream", [False, True], ids=["request", "stream"])
def test_429_then_success(stream):
    script = Script(error(429, **{"retry-after": "0"}), ok(stream))
    assert call(sync_transport(script), stream) == expected(stream)
    assert len(script.requests) == 2
    assert json.loads(script.requests[0].content) == json.loads(script.requests[1].content)


@pytest.mark.parametrize("stream", [False, True], ids=["request", "stream"])
async def test_async_429_then_success(stream):
    script = Script(error(429), error(503), ok(stream))
    assert await acall(async_transport(script), stream) == expected(stream)
    assert len(script.requests) == 3


@pytest.mark.parametrize("stream", [False, True], ids=["request", "stream"])
def test_retries_exhausted_raise_the_typed_error(stream):
    script = Script(error(503), error(502), error(500, **{"x-request-id": "last"}))
    with pytest.raises(ServerError) as info:
        call(sync_transport(script), stream)
    assert info.value.status == 500 and info.value.request_id == "last"
    assert len(script.requests) == 3


@pytest.mark.parametrize("stream", [False, True], ids=["request", "stream"])
def test_x_should_retry_overrides_the_status(stream):
    script = Script(error(400, **{"x-should-retry": "true"}), ok(stream))
    assert call(sync_transport(script), stream) == expected(stream)
    script = Script(error(503, **{"x-should-retry": "false"}))
    with pytest.raises(ServerError):
        call(sync_transport(script), stream)
    assert len(script.requests) == 1


@pytest.mark.parametrize("stream", [False, True], ids=["request", "stream"])
def test_other_4xx_are_not_retried(stream):
    script = Script(error(400))
    with pytest.raises(BadRequestError):
        call(sync_transport(script), stream)
    assert len(script.requests) == 1


@pytest.mark.parametrize("stream", [False, True], ids=["request", "stream"])
def test_connection_errors_are_retried_then_typed(stream):
    script = Script(httpx.ConnectError("refused"), ok(stream))
    assert call(sync_transport(script), stream) == expected(stream)
    script = Script(httpx.ConnectError("a"), httpx.ConnectTimeout("b"), httpx.WriteTimeout("c"))
    with pytest.raises(APITimeoutError, match="timed out"):
        call(sync_transport(script), stream)
    assert len(script.requests) == 3
    script = Script(httpx.ConnectError("refused"))
    with pytest.raises(APIConnectionError, match="connection to .* failed"):
        call(sync_transport(script, RetryPolicy(max_retries=0)), stream)


def test_retry_waits_honour_the_server(monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr("qwen_vl_core.transport.time.sleep", waits.append)
    script = Script(
        error(429, **{"retry-after-ms": "250"}),
        error(429, **{"retry-after": "1.5"}),
        ok(False),
    )
    sync_transport(script, RetryPolicy(max_retries=2)).request("POST", URL, json_body={})
    assert waits == [0.25, 1.5]


def test_retry_after_hints():
    assert _retry_after({"retry-after-ms": "100"}) == 0.1
    assert _retry_after({"retry-after": "2"}) == 2.0
    assert _retry_after({"retry-after": "3600"}) == 3600.0  # read as given; max_retry_wait decides
    assert _retry_after({"retry-after": "soon"}) is None  # neither seconds nor an HTTP date
    assert _retry_after({"retry-after": "abc"}) is None
    assert _retry_after({"retry-after": "Wed, 99 Foo 2015 07:28:00 GMT"}) is None  # a malformed date
    assert _retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None  # in the past
    assert _retry_after({"retry-after": "inf"}) is None and _retry_after({"retry-after": "nan"}) is None
    assert _retry_after({"retry-after-ms": "junk", "retry-after": "3"}) == 3.0
    assert _retry_after({}) is None


@pytest.mark.parametrize("stream", [False, True], ids=["request", "stream"])
def test_a_wait_above_max_retry_wait_is_raised_at_once_with_retry_after(stream, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr("qwen_vl_core.transport.time.sleep", waits.append)
    script = Script(error(429, **{"retry-after": "90"}), ok(stream))
    with pytest.raises(RateLimitError, match="max_retry_wait=60") as info:
        call(sync_transport(script, RetryPolicy(max_retries=2)), stream)
    assert info.value.retry_after == 90.0 and len(script.requests) == 1 and waits == []
    script = Script(error(503, **{"retry-after-ms": "2500"}), ok(stream))
    with pytest.raises(ServerError) as info:  # the status's own type
        call(sync_transport(script, RetryPolicy(max_retries=2, max_retry_wait=2)), stream)
    assert info.value.retry_after == 2.5
    script = Script(error(429, **{"retry-after": "30"}), ok(stream))  # above the backoff ceiling, below the cap
    assert call(sync_transport(script, RetryPolicy(max_retries=2, max_delay=8)), stream) == expected(stream)
    assert waits == [30.0]


def test_retry_after_survives_pickling():
    import pickle

    script = Script(error(429, **{"retry-after": "90"}))
    with pytest.raises(RateLimitError) as info:
        sync_transport(script).request("POST", URL, json_body={})
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is RateLimitError and again.retry_after == 90.0 and again.status == 429


@pytest.mark.parametrize("stream", [False, True], ids=["request", "stream"])
def test_a_read_timeout_is_not_resent_unless_asked(stream):
    script = Script(httpx.ReadTimeout("slow"), ok(stream))
    with pytest.raises(APITimeoutError, match="not resent.*retry_read_timeouts=True") as info:
        call(sync_transport(script), stream)
    assert len(script.requests) == 1
    assert ("streaming" in str(info.value)) is not stream  # the way around the server's limit, where it helps
    script = Script(httpx.ReadTimeout("slow"), ok(stream))
    opted_in = RetryPolicy(max_retries=2, initial_delay=0.001, max_delay=0.002, retry_read_timeouts=True)
    assert call(sync_transport(script, opted_in), stream) == expected(stream)
    assert len(script.requests) == 2


async def test_async_read_timeout_is_not_resent():
    script = Script(httpx.ReadTimeout("slow"), ok(False))
    with pytest.raises(APITimeoutError, match="not resent"):
        await acall(async_transport(script), False)
    assert len(script.requests) == 1


def test_a_get_or_an_upload_form_is_resent_after_a_read_timeout():
    script = Script(httpx.ReadTimeout("slow"), ok(False))
    assert sync_transport(script).request("GET", URL).data == {"answer": 42}
    script = Script(httpx.ReadTimeout("slow"), httpx.Response(200, content=b""))
    form = lambda: ({"key": "k"}, {"file": ("a.png", b"x", "image/png")})  # noqa: E731
    sync_transport(script).request("POST", "http://oss.test/", form=form, presigned=True, raw=True)
    assert len(script.requests) == 2


def test_a_body_over_the_limit_is_refused_by_its_declared_length_or_as_it_grows():
    big = httpx.Response(200, content=b'{"a": "' + b"x" * 5000 + b'"}', headers={"x-request-id": "r-big"})
    script = Script(big)
    with pytest.raises(ResponseTooLargeError, match="max_response_bytes=1000") as info:
        Transport(retry=FAST, max_response_bytes=1000,
                  http_client=httpx.Client(transport=httpx.MockTransport(script))).request("POST", URL, json_body={})
    assert info.value.limit == 1000 and info.value.request_id == "r-big" and len(script.requests) == 1

    class Unsized(httpx.SyncByteStream):
        def __iter__(self):
            yield b'{"a": "'
            for _ in range(100):
                yield b"x" * 100
            yield b'"}'

    script = Script(httpx.Response(200, stream=Unsized()))
    with pytest.raises(ResponseTooLargeError):
        Transport(retry=FAST, max_response_bytes=1000,
                  http_client=httpx.Client(transport=httpx.MockTransport(script))).request("POST", URL, json_body={})
    script = Script(httpx.Response(200, stream=Unsized()))
    assert Transport(retry=FAST, max_response_bytes=None,
                     http_client=httpx.Client(transport=httpx.MockTransport(script))).request(
        "POST", URL, json_body={}).data == {"a": "x" * 10000}


def test_stream_events_and_streams_over_their_limits():
    events = b'data: {"n": "' + b"y" * 3000 + b'"}\n\ndata: [DONE]\n\n'
    script = Script(httpx.Response(200, content=events, headers={"x-request-id": "r-s"}))
    transport = Transport(retry=FAST, max_response_bytes=1000,
                          http_client=httpx.Client(transport=httpx.MockTransport(script)))
    with pytest.raises(ResponseTooLargeError, match="one event.*max_response_bytes=1000"):
        list(transport.stream(URL, headers={}, json_body={}))
    class Many(httpx.SyncByteStream):
        def __iter__(self):
            for i in range(500):
                yield b'data: {"n": %d}\n\n' % i
            yield b"data: [DONE]\n\n"

    script = Script(httpx.Response(200, stream=Many()))
    transport = Transport(retry=FAST, max_response_bytes=1000, max_stream_bytes=2000,
                          http_client=httpx.Client(transport=httpx.MockTransport(script)))
    seen = []
    with pytest.raises(ResponseTooLargeError, match="max_stream_bytes=2000"):
        for event, _ in transport.stream(URL, headers={}, json_body={}):
            seen.append(event)
    assert 0 < len(seen) < 500


def test_backoff_grows_with_jitter_and_a_ceiling():
    policy = RetryPolicy(max_retries=5, initial_delay=0.5, max_delay=8.0)
    for attempt, base in enumerate([0.5, 1.0, 2.0, 4.0, 8.0, 8.0]):
        delays = {policy.delay(attempt) for _ in range(50)}
        assert all(0.75 * base <= d <= base for d in delays) and len(delays) > 1


class BreaksAfterFirstEvent(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __init__(self, fault: Exception) -> None:
        self.fault = fault

    def __iter__(self):
        yield b'data: {"n": 1}\n\n'
        raise self.fault

    async def __aiter__(self):
        yield b'data: {"n": 1}\n\n'
        raise self.fault


def broken(fault: Exception) -> httpx.Response:
    return httpx.Response(200, stream=BreaksAfterFirstEvent(fault), headers={"x-request-id": "r-cut"})


@pytest.mark.parametrize(
    "fault, cls", [(httpx.ReadError("reset"), IncompleteStreamError), (httpx.ReadTimeout("slow"), APITimeoutError)]
)
def test_no_retry_once_a_stream_delivered_an_event(fault, cls):
    script = Script(broken(fault), ok(True))
    seen = []
    with pytest.raises(cls) as info:
        for event, _ in sync_transport(script).stream(URL, headers={}, json_body={}):
            seen.append(event)
    assert seen == [{"n": 1}] and len(script.requests) == 1
    assert info.value.request_id == "r-cut"


@pytest.mark.parametrize(
    "fault, cls", [(httpx.ReadError("reset"), IncompleteStreamError), (httpx.ReadTimeout("slow"), APITimeoutError)]
)
async def test_async_no_retry_once_a_stream_delivered_an_event(fault, cls):
    script = Script(broken(fault), ok(True))
    seen = []
    with pytest.raises(cls):
        async for event, _ in async_transport(script).astream(URL, headers={}, json_body={}):
            seen.append(event)
    assert seen == [{"n": 1}] and len(script.requests) == 1


def test_a_stream_closed_early_releases_its_response():
    closed = []

    class Tracked(httpx.SyncByteStream):
        def __iter__(self):
            yield SSE

        def close(self):
            closed.append(True)

    script = Script(httpx.Response(200, stream=Tracked()))
    events = sync_transport(script).stream(URL, headers={}, json_body={})
    assert next(events)[0] == {"n": 1}
    events.close()
    assert closed == [True]


def test_rate_limit_error_after_retries_is_typed():
    script = Script(error(429), error(429), error(429))
    with pytest.raises(RateLimitError):
        sync_transport(script).request("POST", URL, json_body={})


def test_multipart_form_is_rebuilt_per_attempt_and_presigned_requests_carry_no_client_headers():
    calls = []

    def form():
        calls.append(len(calls))
        return {"key": f"dir/object-{len(calls)}"}, {"file": ("a.png", b"\x89PNG", "image/png")}

    script = Script(error(503), httpx.Response(200, content=b""))
    client = httpx.Client(
        transport=httpx.MockTransport(script), headers={"Authorization": "Bearer sk-secret"}, auth=("u", "p")
    )
    response = Transport(retry=FAST, http_client=client).request(
        "POST", "http://oss.test/", form=form, presigned=True, raw=True
    )
    assert response.status == 200 and response.data == b""
    assert calls == [0, 1]
    bodies = [r.read() for r in script.requests]
    assert b"dir/object-1" in bodies[0] and b"dir/object-2" in bodies[1]
    assert all("authorization" not in r.headers for r in script.requests)
    assert all(r.headers["content-type"].startswith("multipart/form-data") for r in script.requests)


async def test_async_pool_follows_the_event_loop():
    transport = Transport(retry=FAST)
    first = transport.async_client
    assert transport.async_client is first  # same loop, same pool

    import asyncio

    def other_loop():
        async def pool():
            return transport.async_client

        return asyncio.run(pool())

    second = await asyncio.get_running_loop().run_in_executor(None, other_loop)
    assert second is not first
    await transport.aclose()


def test_sse_bytes_split_anywhere_decode_the_same():
    from qwen_vl_core.sse import SSEDecoder

    raw = 'data: {"a": 1}\r\n\r\n: comment\rdata: x\rdata: y\r\rdata: é\n\ndata: tail'.encode()
    whole = SSEDecoder().feed_bytes(raw)
    assert whole == ['{"a": 1}', "x\ny", "é"]
    for size in (1, 2, 3, 5, 7):
        decoder = SSEDecoder()
        got = [p for i in range(0, len(raw), size) for p in decoder.feed_bytes(raw[i : i + size])]
        assert got + decoder.flush_bytes() == whole + ["tail"], size


def test_threads_asking_for_the_sync_client_at_once_share_one_pool(monkeypatch):
    """The first calls of a threaded reader used to build one pool (and load the CA bundle) per thread."""
    import threading
    import time as _time

    from qwen_vl_core import transport as transport_module

    made = []
    real = transport_module.httpx.Client

    class Slow(real):  # a slow constructor widens the race window
        def __init__(self, *args, **kwargs):
            made.append(1)
            _time.sleep(0.05)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(transport_module.httpx, "Client", Slow)
    t = transport_module.Transport()
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(t.client)) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(made) == 1 and len({id(c) for c in seen}) == 1
    t.close()
