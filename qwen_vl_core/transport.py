"""The one HTTP transport: pooled httpx clients, explicit timeouts, a deadline for non-streamed calls,
an idle timeout for streams, response size limits, retries with exponential backoff and jitter that
honour ``Retry-After`` / ``retry-after-ms``, and SSE streaming that never returns a silently truncated
answer.

There is one retry loop per sync/async path (:meth:`Transport._send`, :meth:`Transport._asend`);
streaming is a flag of that loop, as in openai-python's ``_base_client``. Every call goes
through it: JSON requests, SSE streams, and the temporary-storage upload (a multipart form
posted to a presigned host, see :mod:`qwen_vl_core.media.upload`).

Retried: connection errors, connect/write/pool timeouts, HTTP 408, 409, 429 and 5xx (``x-should-retry``
overrides), waiting what the server asks (``Retry-After``) up to ``max_retry_wait``; a longer wish is
raised at once as the typed error with ``retry_after`` set. Never resent: a chat request that went out
whole and then timed out waiting for its answer (a read timeout: the server may still be generating,
and billing, it; ``retry_read_timeouts=True`` opts in), a call whose deadline passed, an answer over
the size limit, other 4xx, and anything after a stream's response has arrived (its events may
already have reached the caller).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ._http import (
    READ_TIMEOUT_ERRORS,
    TIMEOUT_ERRORS,
    TRANSPORT_ERRORS,
    Clock,
    aread_body,
    cap_read,
    fail_after,
    httpx,
    module_of,
    read_body,
)
from .errors import (
    APIConnectionError,
    APITimeoutError,
    IncompleteStreamError,
    QwenVLError,
    ResponseTooLargeError,
    error_from_response,
)
from .sse import EventReader

__all__ = [
    "Transport", "RetryPolicy", "RequestOptions", "Response", "FormFactory",
    "DEFAULT_TIMEOUT", "DEFAULT_DEADLINE", "DEFAULT_STREAM_IDLE_TIMEOUT", "DEFAULT_MAX_RETRY_WAIT",
    "DEFAULT_MAX_RESPONSE_BYTES", "DEFAULT_MAX_STREAM_BYTES", "SERVER_TIME_LIMIT",
]  # fmt: skip

logger = logging.getLogger("qwen_vl_core")

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})

SERVER_TIME_LIMIT = 180.0
"""DashScope ends a non-streamed answer after about this many seconds and sends what it has, marked
``x-dashscope-partialresponse: true``. Streams have no such limit."""
DEFAULT_TIMEOUT = 240.0
"""Seconds for each network operation (connect at most 10 s): above :data:`SERVER_TIME_LIMIT`, so a
slow non-streamed answer arrives (as a partial answer) instead of timing out."""
DEFAULT_DEADLINE = 600.0
"""Seconds for a whole non-streamed call, retries and waits included."""
DEFAULT_STREAM_IDLE_TIMEOUT = 120.0
"""Seconds a stream may go without a complete event."""
DEFAULT_MAX_RETRY_WAIT = 60.0
"""The longest ``Retry-After`` honoured by waiting; a longer one is raised at once (``retry_after``)."""
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
"""The largest JSON answer, and the largest single stream event (32 MiB)."""
DEFAULT_MAX_STREAM_BYTES = 256 * 1024 * 1024
"""The most a whole stream may carry (256 MiB; a 100K-token thinking answer is about 30 MiB of events)."""
_ERROR_BODY_BYTES = 1024 * 1024  # an error body is read up to this much: enough for any message

FormFactory = Callable[[], tuple[Mapping[str, str], Mapping[str, Any]]]
"""Makes a multipart body, ``(fields, files)``; called once per attempt, so each attempt may differ."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT  # honour Retry-After up to this; above: raise at once
    retry_read_timeouts: bool = False  # resend a chat request whose answer timed out (it may be billed twice)

    def delay(self, attempt: int, headers: Mapping[str, str] | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based): the server's hint when it is
        at most ``max_retry_wait``, else exponential backoff with jitter."""
        hinted = _retry_after(headers) if headers is not None else None
        if hinted is not None and hinted <= self.max_retry_wait:
            return hinted
        return self.backoff(attempt)

    def backoff(self, attempt: int) -> float:
        base = min(self.initial_delay * (2**attempt), self.max_delay)
        return base * (1 - 0.25 * random.random())


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """The server's wait hint in seconds (``retry-after-ms``, then ``Retry-After`` as seconds or an HTTP
    date); None when absent or unusable (not a number nor a date, negative, infinite, a date past)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            value = float(ms) / 1000
        except ValueError:
            value = -1.0
        if math.isfinite(value) and value >= 0:
            return value
    raw = headers.get("retry-after")
    if raw:
        try:
            value = float(raw)
        except ValueError:
            try:
                value = email.utils.parsedate_to_datetime(raw).timestamp() - time.time()
            except (TypeError, ValueError, OverflowError, IndexError):  # not an HTTP date either: ignore the hint
                value = -1.0
        if math.isfinite(value) and value >= 0:
            return value
    return None


def _should_retry(status: int, headers: Mapping[str, str]) -> bool:
    hint = headers.get("x-should-retry")
    if hint == "true":
        return True
    if hint == "false":
        return False
    return status in RETRY_STATUSES or status >= 500


@dataclass(frozen=True, slots=True)
class RequestOptions:
    """What to send; turned into a fresh httpx request on every attempt."""

    method: str
    url: str
    headers: Mapping[str, str] | None = None
    params: Mapping[str, str] | None = None
    json_body: Any = None
    form: FormFactory | None = None  # a multipart body instead of JSON
    presigned: bool = False  # sent without the client's default headers and auth: the form signs itself
    what: str | None = None  # names the call in connection errors ("getPolicy failed: ...")

    @property
    def resendable(self) -> bool:
        """Safe to send again after a read timeout: a GET, or a form rebuilt per attempt (an upload under a
        fresh object key). A chat POST is not: the first one may still be generating and billed."""
        return self.method in ("GET", "HEAD") or self.form is not None


@dataclass(slots=True)
class Response:
    status: int
    headers: httpx.Headers
    data: Any  # the parsed JSON body; the raw bytes for ``raw=True``; None for a stream

    @property
    def request_id(self) -> str | None:
        return _request_id(self.headers)

    @property
    def partial(self) -> bool:
        return self.headers.get("x-dashscope-partialresponse", "").lower() == "true"


_CLIENT_LOCK = threading.Lock()

class Transport:
    """Sends requests and streams SSE over shared, pooled httpx clients, retrying by one policy.

    ``timeout`` is httpx's: each network operation (connect at most 10 s, each read, each write).
    ``deadline`` bounds a whole non-streamed call (retries and waits included), ``stream_idle_timeout``
    the wait for each stream event; ``max_response_bytes`` caps a JSON answer and each stream event,
    ``max_stream_bytes`` a whole stream. None turns a limit off.
    """

    def __init__(
        self,
        *,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy = RetryPolicy(),
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        limits: httpx.Limits | None = None,
        deadline: float | None = DEFAULT_DEADLINE,
        stream_idle_timeout: float | None = DEFAULT_STREAM_IDLE_TIMEOUT,
        max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
        max_stream_bytes: int | None = DEFAULT_MAX_STREAM_BYTES,
    ) -> None:
        if type(timeout).__name__ == "Timeout":  # an httpx2 or httpx Timeout
            self.timeout = timeout
        else:
            self.timeout = httpx.Timeout(timeout, connect=min(timeout or 10.0, 10.0))
        self.retry = retry
        self.deadline = deadline
        self.stream_idle_timeout = stream_idle_timeout
        self.max_response_bytes = max_response_bytes
        self.max_stream_bytes = max_stream_bytes
        self._limits = limits or httpx.Limits(max_connections=256, max_keepalive_connections=64)
        self._client = http_client
        self._aclient = async_http_client
        self._own_client = http_client is None
        self._own_aclient = async_http_client is None
        self._aclient_loop: asyncio.AbstractEventLoop | None = None

    # clients are created lazily, so a sync user never builds an async pool and vice versa
    @property
    def client(self) -> httpx.Client:
        client = self._client
        if client is None:
            with _CLIENT_LOCK:  # threads calling at once build one pool, not one each
                if self._client is None:
                    self._client = httpx.Client(timeout=self.timeout, limits=self._limits)
                client = self._client
        return client

    @property
    def async_client(self) -> httpx.AsyncClient:
        # An owned pool is tied to the event loop it was first used on: pooled connections of a
        # finished loop (asyncio.run called again, a new loop per test or per request) cannot be
        # reused, so a new loop gets a new pool. The old one is dropped, its loop being gone.
        loop = _running_loop()
        if self._aclient is not None and self._own_aclient and loop is not None and loop is not self._aclient_loop:
            self._aclient = None
        if self._aclient is None:
            self._aclient = httpx.AsyncClient(timeout=self.timeout, limits=self._limits)
            self._aclient_loop = loop
        return self._aclient

    def close(self) -> None:
        if self._client is not None and self._own_client:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        if self._aclient is not None and self._own_aclient:
            if self._aclient_loop in (None, _running_loop()):
                await self._aclient.aclose()
            # else: a pool of an earlier event loop cannot be closed from this one; drop it
            self._aclient = None

    # ------------------------------------------------------------------ retry decisions

    def _fault_delay(self, attempt: int, exc: BaseException, opts: RequestOptions, clock: Clock,
                     stream: bool) -> float:
        """Seconds to wait before resending after a connection error or timeout; raises the typed
        error when it must not be resent."""
        if clock.expired() or (isinstance(exc, TIMEOUT_ERRORS) and clock.would_pass(0.05)):
            raise _deadline_error(opts, clock) from exc
        if isinstance(exc, READ_TIMEOUT_ERRORS) and not (self.retry.retry_read_timeouts or opts.resendable):
            raise _read_timeout_error(exc, opts, stream) from exc
        if attempt >= self.retry.max_retries:
            raise _transport_error(exc, opts) from exc
        delay = self.retry.backoff(attempt)
        if clock.would_pass(delay):
            raise _transport_error(exc, opts) from exc
        logger.info("retrying in %.2fs (attempt %d of %d): %s", delay, attempt + 1, self.retry.max_retries,
                    type(exc).__name__)
        return delay

    def _status_delay(self, attempt: int, status: int, headers: Mapping[str, str], body: bytes,
                      clock: Clock) -> float:
        """Seconds to wait before resending after an HTTP error status; raises the typed error
        (with ``retry_after`` when the server gave one) when it must not be resent."""
        error = error_from_response(status, body, headers)
        hint = _retry_after(headers)
        if hint is not None:
            error.retry_after = hint
        if not _should_retry(status, headers) or attempt >= self.retry.max_retries:
            raise error
        if hint is not None and hint > self.retry.max_retry_wait:
            _add_note(error, f"the server asked to retry after {hint:g} s, more than max_retry_wait="
                             f"{self.retry.max_retry_wait:g} s, so it was not retried (see .retry_after)")
            raise error
        delay = hint if hint is not None else self.retry.backoff(attempt)
        if clock.would_pass(delay):
            _add_note(error, f"not retried: waiting {delay:g} s would pass the {clock.seconds:g} s deadline")
            raise error
        logger.info("retrying in %.2fs (attempt %d of %d): HTTP %d", delay, attempt + 1, self.retry.max_retries,
                    status)
        return delay

    # ------------------------------------------------------------------ the retry loops

    def _send(self, opts: RequestOptions, *, stream: bool) -> tuple[httpx.Response, bytes]:
        """The sync retry loop: an answered request with status < 400 and its body, or a typed error.

        With ``stream=True`` the body is left unread (``b""``); the caller must close the response.
        Without, the whole call (retries and waits included) runs under the deadline.
        """
        client = self.client
        clock = Clock(None if stream else self.deadline)
        for attempt in range(self.retry.max_retries + 1):
            request, send_args = _build(client, opts, clock.capped(dict(client.timeout.as_dict())))
            try:
                resp = client.send(request, stream=True, **send_args)
                if resp.status_code < 400 and stream:
                    return resp, b""
                try:
                    body = self._read(resp, opts, clock)
                finally:
                    resp.close()
            except TRANSPORT_ERRORS as exc:
                delay = self._fault_delay(attempt, exc, opts, clock, stream)
            else:
                if resp.status_code < 400:
                    return resp, body
                delay = self._status_delay(attempt, resp.status_code, resp.headers, body, clock)
            time.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _asend(self, opts: RequestOptions, *, stream: bool) -> tuple[httpx.Response, bytes]:
        """The async retry loop, as :meth:`_send`; the deadline cancels an attempt exactly when it passes."""
        client = self.async_client
        clock = Clock(None if stream else self.deadline)
        for attempt in range(self.retry.max_retries + 1):
            request, send_args = _build(client, opts, clock.capped(dict(client.timeout.as_dict())))
            try:
                with fail_after(clock.remaining()):
                    resp = await client.send(request, stream=True, **send_args)
                    if resp.status_code < 400 and stream:
                        return resp, b""
                    try:
                        body = await self._aread(resp, opts)
                    finally:
                        await resp.aclose()
            except TimeoutError as exc:  # the deadline's cancellation
                raise _deadline_error(opts, clock) from exc
            except TRANSPORT_ERRORS as exc:
                delay = self._fault_delay(attempt, exc, opts, clock, stream)
            else:
                if resp.status_code < 400:
                    return resp, body
                delay = self._status_delay(attempt, resp.status_code, resp.headers, body, clock)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _limit(self, resp: httpx.Response) -> tuple[int | None, bool]:
        """(byte limit, truncate?) for a body: an answer within ``max_response_bytes``, an error body cut
        at 1 MiB (enough for any message)."""
        limit = self.max_response_bytes
        if resp.status_code >= 400:
            return (_ERROR_BODY_BYTES if limit is None else min(_ERROR_BODY_BYTES, limit)), True
        return limit, False

    def _read(self, resp: httpx.Response, opts: RequestOptions, clock: Clock) -> bytes:
        limit, truncate = self._limit(resp)
        left = clock.remaining()
        if left is not None:
            cap_read(resp, left)  # the head arrived: each wait for the body gets at most the time left
        return read_body(resp, limit, clock, truncate=truncate,
                         too_large=lambda declared: _too_large(resp, limit, opts, declared),
                         deadline=lambda: _deadline_error(opts, clock))

    async def _aread(self, resp: httpx.Response, opts: RequestOptions) -> bytes:
        limit, truncate = self._limit(resp)
        return await aread_body(resp, limit, truncate=truncate,
                                too_large=lambda declared: _too_large(resp, limit, opts, declared))

    # ------------------------------------------------------------------ entry points

    def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None, json_body: Any = None,
                params: Mapping[str, str] | None = None, form: FormFactory | None = None, presigned: bool = False,
                what: str | None = None, raw: bool = False) -> Response:
        """One request; the JSON answer (or its bytes with ``raw=True``). See :class:`RequestOptions`."""
        opts = RequestOptions(method, url, headers, params, json_body, form, presigned, what)
        return _response(*self._send(opts, stream=False), raw)

    async def arequest(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                       json_body: Any = None, params: Mapping[str, str] | None = None,
                       form: FormFactory | None = None, presigned: bool = False, what: str | None = None,
                       raw: bool = False) -> Response:
        opts = RequestOptions(method, url, headers, params, json_body, form, presigned, what)
        return _response(*(await self._asend(opts, stream=False)), raw)

    def _events(self, url: str, meta: Response) -> EventReader:
        return EventReader(url, meta.request_id, max_event_bytes=self.max_response_bytes,
                           max_total_bytes=self.max_stream_bytes)

    def stream(self, url: str, *, headers: Mapping[str, str], json_body: Any) -> Iterator[tuple[Any, Response]]:
        """Yield ``(event_json, response)`` for each SSE ``data`` payload, and ``(None, response)`` at ``[DONE]``.

        The caller decides whether the stream is complete; transport faults become
        :class:`APIConnectionError` subclasses (carrying the request id the events carried), error
        frames become typed :class:`APIError`. No complete event within ``stream_idle_timeout`` is an
        :class:`APITimeoutError`; an event or a stream over its size limit a :class:`ResponseTooLargeError`.
        """
        resp, _ = self._send(RequestOptions("POST", url, headers, json_body=json_body), stream=True)
        meta = Response(resp.status_code, resp.headers, None)
        idle = self.stream_idle_timeout
        cap_read(resp, idle)  # a silent connection is cut after the idle timeout
        events = self._events(url, meta)
        try:
            last = time.monotonic()
            for chunk in resp.iter_bytes():
                for data in events.feed(chunk):
                    payload = events.parse(data)
                    yield payload, meta
                    if payload is None:
                        return
                    last = time.monotonic()  # after the caller's turn: only the server's silence counts
                if idle is not None and time.monotonic() - last > idle:
                    raise events.idle(idle)
            for data in events.flush():
                payload = events.parse(data)
                yield payload, meta
                if payload is None:
                    return
        except TRANSPORT_ERRORS as exc:
            raise _stream_fault(exc, url, events.request_id, idle) from exc
        finally:
            resp.close()

    async def astream(self, url: str, *, headers: Mapping[str, str],
                      json_body: Any) -> AsyncIterator[tuple[Any, Response]]:
        resp, _ = await self._asend(RequestOptions("POST", url, headers, json_body=json_body), stream=True)
        meta = Response(resp.status_code, resp.headers, None)
        idle = self.stream_idle_timeout
        cap_read(resp, idle)  # a silent connection is cut after the idle timeout
        events = self._events(url, meta)
        chunks = resp.aiter_bytes().__aiter__()
        try:
            while True:
                try:
                    with fail_after(idle):
                        while True:  # until a chunk completes an event (or the stream ends)
                            try:
                                chunk = await chunks.__anext__()
                            except StopAsyncIteration:
                                ready, done = events.flush(), True
                                break
                            ready, done = events.feed(chunk), False
                            if ready:
                                break
                except TimeoutError as exc:
                    raise events.idle(idle) from exc
                for data in ready:
                    payload = events.parse(data)
                    yield payload, meta
                    if payload is None:
                        return
                if done:
                    return
        except TRANSPORT_ERRORS as exc:
            raise _stream_fault(exc, url, events.request_id, idle) from exc
        finally:
            await resp.aclose()


def _build(client: Any, opts: RequestOptions, timeouts: dict[str, float | None]) -> tuple[Any, dict[str, Any]]:
    """The httpx request for one attempt, and the extra ``send`` arguments it needs."""
    data = files = None
    if opts.form is not None:
        data, files = opts.form()
    if not opts.presigned:
        request = client.build_request(
            opts.method, opts.url, headers=opts.headers, params=opts.params, json=opts.json_body,
            data=data, files=files,
        )
        request.extensions["timeout"] = timeouts
        return request, {}
    # Built without the client: none of its default headers (an API key among them) may leave.
    request = module_of(client).Request(
        opts.method, opts.url, headers=opts.headers, params=opts.params, json=opts.json_body,
        data=data, files=files, extensions={"timeout": timeouts},
    )
    return request, {"auth": None}


def _too_large(resp: Any, limit: int | None, opts: RequestOptions, declared: int | None) -> ResponseTooLargeError:
    size = f"{declared} bytes" if declared is not None else "larger"
    name = opts.what or f"the answer from {opts.url}"
    error = ResponseTooLargeError(
        f"{name} is {size}, over max_response_bytes={limit}; it was not read further (nor resent)",
        status=resp.status_code, request_id=_request_id(resp.headers),
    )
    error.limit = limit
    return error


def _request_id(headers: Mapping[str, str]) -> str | None:
    return headers.get("x-request-id") or headers.get("x-dashscope-request-id")


def _response(resp: httpx.Response, body: bytes, raw: bool) -> Response:
    if raw:
        return Response(resp.status_code, resp.headers, body)
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise error_from_response(resp.status_code, body, resp.headers) from exc
    return Response(resp.status_code, resp.headers, data)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _add_note(error: QwenVLError, note: str) -> None:
    error.message = f"{error.message}; {note}"
    error.args = (error.message,)


def _transport_error(exc: BaseException, opts: RequestOptions) -> QwenVLError:
    """A connection error or timeout before any answer, after the retries."""
    timed_out = isinstance(exc, TIMEOUT_ERRORS)
    if opts.what:
        if timed_out:
            return APITimeoutError(f"{opts.what} timed out ({type(exc).__name__})")
        return APIConnectionError(f"{opts.what} failed: {type(exc).__name__}: {exc}")
    if timed_out:
        return APITimeoutError(f"request to {opts.url} timed out ({type(exc).__name__})")
    return APIConnectionError(f"connection to {opts.url} failed: {type(exc).__name__}: {exc}")


_STREAMING_HINT = (
    "DashScope ends a non-streamed answer after about 180 s (sending it marked partial); streaming "
    "(stream()/astream(), streaming=True) has no such limit"
)


def _read_timeout_error(exc: BaseException, opts: RequestOptions, stream: bool) -> APITimeoutError:
    """The request went out whole, the answer did not come in time: not resent (it may be billed twice)."""
    return APITimeoutError(
        f"request to {opts.url} timed out waiting for its answer after it was sent ({type(exc).__name__}); "
        "not resent, since the server may still be generating (and billing) it (retry_read_timeouts=True "
        f"resends it){'' if stream else '. ' + _STREAMING_HINT}"
    )


def _deadline_error(opts: RequestOptions, clock: Clock) -> APITimeoutError:
    name = opts.what or f"request to {opts.url}"
    hint = "" if opts.what else f". {_STREAMING_HINT}"
    return APITimeoutError(f"{name} got no complete answer within its {clock.seconds:g} s deadline; "
                           f"it was not resent{hint}")


def _stream_fault(exc: BaseException, url: str, request_id: str | None, idle: float | None = None) -> QwenVLError:
    """A transport fault after the stream started: never retried, never a silently short answer."""
    if isinstance(exc, TIMEOUT_ERRORS):
        return APITimeoutError(f"stream from {url} timed out mid-answer (no data within the read timeout or "
                               f"stream_idle_timeout={idle}); the answer is incomplete", request_id=request_id)
    return IncompleteStreamError(
        f"stream from {url} broke before it finished ({type(exc).__name__}); the answer is incomplete",
        request_id=request_id,
    )
