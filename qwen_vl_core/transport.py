"""The one HTTP transport: pooled httpx clients, explicit timeouts, retries with exponential
backoff and jitter that honour ``Retry-After`` / ``retry-after-ms``, and SSE streaming that
never returns a silently truncated answer.

There is one retry loop per sync/async path (:meth:`Transport._send`, :meth:`Transport._asend`);
streaming is a flag of that loop, as in openai-python's ``_base_client``. Every call goes
through it: JSON requests, SSE streams, and the temporary-storage upload (a multipart form
posted to a presigned host, see :mod:`qwen_vl_core.media.upload`).

Retried: connection errors and timeouts, HTTP 408, 409, 429 and 5xx (``x-should-retry``
overrides). Not retried: other 4xx, and anything after a stream's response has arrived (its
events may already have reached the caller).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ._http import TIMEOUT_ERRORS, TRANSPORT_ERRORS, httpx, module_of
from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    IncompleteStreamError,
    QwenVLError,
    error_from_response,
)
from .sse import DONE, SSEDecoder

__all__ = ["Transport", "RetryPolicy", "RequestOptions", "Response", "FormFactory"]

logger = logging.getLogger("qwen_vl_core")

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 60.0

FormFactory = Callable[[], tuple[Mapping[str, str], Mapping[str, Any]]]
"""Makes a multipart body, ``(fields, files)``; called once per attempt, so each attempt may differ."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0

    def delay(self, attempt: int, headers: Mapping[str, str] | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        hinted = _retry_after(headers) if headers is not None else None
        if hinted is not None:
            return hinted
        base = min(self.initial_delay * (2**attempt), self.max_delay)
        return base * (1 - 0.25 * random.random())


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """The server's wait hint in seconds (``retry-after-ms``, then ``Retry-After``), if usable."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            value = float(ms) / 1000
            if 0 <= value <= MAX_RETRY_AFTER:
                return value
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw:
        try:
            value = float(raw)
        except ValueError:
            try:
                value = email.utils.parsedate_to_datetime(raw).timestamp() - time.time()
            except (TypeError, ValueError, OverflowError):  # not an HTTP date either: ignore the hint
                value = -1
        if 0 <= value <= MAX_RETRY_AFTER:
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


@dataclass(slots=True)
class Response:
    status: int
    headers: httpx.Headers
    data: Any  # the parsed JSON body; the raw bytes for ``raw=True``; None for a stream

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id") or self.headers.get("x-dashscope-request-id")

    @property
    def partial(self) -> bool:
        return self.headers.get("x-dashscope-partialresponse", "").lower() == "true"


class Transport:
    """Sends requests and streams SSE over shared, pooled httpx clients, retrying by one policy."""

    def __init__(
        self,
        *,
        timeout: float | httpx.Timeout | None = 120.0,
        retry: RetryPolicy = RetryPolicy(),
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        limits: httpx.Limits | None = None,
    ) -> None:
        if type(timeout).__name__ == "Timeout":  # an httpx2 or httpx Timeout
            self.timeout = timeout
        else:
            self.timeout = httpx.Timeout(timeout, connect=min(timeout or 10.0, 10.0))
        self.retry = retry
        self._limits = limits or httpx.Limits(max_connections=256, max_keepalive_connections=64)
        self._client = http_client
        self._aclient = async_http_client
        self._own_client = http_client is None
        self._own_aclient = async_http_client is None
        self._aclient_loop: asyncio.AbstractEventLoop | None = None

    # clients are created lazily, so a sync user never builds an async pool and vice versa
    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout, limits=self._limits)
        return self._client

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

    # ------------------------------------------------------------------ the retry loops

    def _retry_delay(self, attempt: int, status: int | None, headers: Mapping[str, str] | None,
                     why: str) -> float | None:
        """Seconds to wait before retrying a failed attempt, or None when it must not be retried.

        ``status`` None means the request never got an answer (connection error or timeout).
        """
        if attempt >= self.retry.max_retries:
            return None
        if status is not None and not _should_retry(status, headers or {}):
            return None
        delay = self.retry.delay(attempt, headers)
        logger.info("retrying in %.2fs (attempt %d of %d): %s", delay, attempt + 1, self.retry.max_retries, why)
        return delay

    def _send(self, opts: RequestOptions, *, stream: bool) -> httpx.Response:
        """The sync retry loop: an answered request with status < 400, or a typed error.

        With ``stream=True`` the body is left unread; the caller must close the response.
        """
        client = self.client
        for attempt in range(self.retry.max_retries + 1):
            request, send_args = _build(client, opts)
            try:
                resp = client.send(request, stream=stream, **send_args)
            except TRANSPORT_ERRORS as exc:
                delay = self._retry_delay(attempt, None, None, type(exc).__name__)
                if delay is None:
                    raise _transport_error(exc, opts) from exc
            else:
                if resp.status_code < 400:
                    return resp
                resp.read()  # the error body, for the typed error; frees the connection
                resp.close()
                delay = self._retry_delay(attempt, resp.status_code, resp.headers, f"HTTP {resp.status_code}")
                if delay is None:
                    raise error_from_response(resp.status_code, resp.content, resp.headers)
            time.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _asend(self, opts: RequestOptions, *, stream: bool) -> httpx.Response:
        """The async retry loop, as :meth:`_send`."""
        client = self.async_client
        for attempt in range(self.retry.max_retries + 1):
            request, send_args = _build(client, opts)
            try:
                resp = await client.send(request, stream=stream, **send_args)
            except TRANSPORT_ERRORS as exc:
                delay = self._retry_delay(attempt, None, None, type(exc).__name__)
                if delay is None:
                    raise _transport_error(exc, opts) from exc
            else:
                if resp.status_code < 400:
                    return resp
                await resp.aread()
                await resp.aclose()
                delay = self._retry_delay(attempt, resp.status_code, resp.headers, f"HTTP {resp.status_code}")
                if delay is None:
                    raise error_from_response(resp.status_code, resp.content, resp.headers)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    # ------------------------------------------------------------------ entry points

    def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None, json_body: Any = None,
                params: Mapping[str, str] | None = None, form: FormFactory | None = None, presigned: bool = False,
                what: str | None = None, raw: bool = False) -> Response:
        """One request; the JSON answer (or its bytes with ``raw=True``). See :class:`RequestOptions`."""
        opts = RequestOptions(method, url, headers, params, json_body, form, presigned, what)
        return _response(self._send(opts, stream=False), raw)

    async def arequest(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                       json_body: Any = None, params: Mapping[str, str] | None = None,
                       form: FormFactory | None = None, presigned: bool = False, what: str | None = None,
                       raw: bool = False) -> Response:
        opts = RequestOptions(method, url, headers, params, json_body, form, presigned, what)
        return _response(await self._asend(opts, stream=False), raw)

    def stream(self, url: str, *, headers: Mapping[str, str], json_body: Any) -> Iterator[tuple[Any, Response]]:
        """Yield ``(event_json, response)`` for each SSE ``data`` payload, and ``(None, response)`` at ``[DONE]``.

        The caller decides whether the stream is complete; transport faults become
        :class:`APIConnectionError` subclasses, error frames become typed :class:`APIError`.
        """
        resp = self._send(RequestOptions("POST", url, headers, json_body=json_body), stream=True)
        meta = Response(resp.status_code, resp.headers, None)
        try:
            for data in SSEDecoder().iter(resp.iter_lines()):
                payload = _event_json(data, meta.request_id)
                yield payload, meta
                if payload is None:
                    return
        except TRANSPORT_ERRORS as exc:
            raise _stream_fault(exc, url, meta.request_id) from exc
        finally:
            resp.close()

    async def astream(self, url: str, *, headers: Mapping[str, str],
                      json_body: Any) -> AsyncIterator[tuple[Any, Response]]:
        resp = await self._asend(RequestOptions("POST", url, headers, json_body=json_body), stream=True)
        meta = Response(resp.status_code, resp.headers, None)
        try:
            async for data in SSEDecoder().aiter(resp.aiter_lines()):
                payload = _event_json(data, meta.request_id)
                yield payload, meta
                if payload is None:
                    return
        except TRANSPORT_ERRORS as exc:
            raise _stream_fault(exc, url, meta.request_id) from exc
        finally:
            await resp.aclose()


def _build(client: Any, opts: RequestOptions) -> tuple[Any, dict[str, Any]]:
    """The httpx request for one attempt, and the extra ``send`` arguments it needs."""
    data = files = None
    if opts.form is not None:
        data, files = opts.form()
    if not opts.presigned:
        request = client.build_request(
            opts.method, opts.url, headers=opts.headers, params=opts.params, json=opts.json_body,
            data=data, files=files,
        )
        return request, {}
    # Built without the client: none of its default headers (an API key among them) may leave.
    request = module_of(client).Request(
        opts.method, opts.url, headers=opts.headers, params=opts.params, json=opts.json_body,
        data=data, files=files, extensions={"timeout": client.timeout.as_dict()},
    )
    return request, {"auth": None}


def _response(resp: httpx.Response, raw: bool) -> Response:
    if raw:
        return Response(resp.status_code, resp.headers, resp.content)
    try:
        data = resp.json()
    except ValueError as exc:
        raise error_from_response(resp.status_code, resp.content, resp.headers) from exc
    return Response(resp.status_code, resp.headers, data)


def _event_json(data: str, request_id: str | None) -> Any:
    """One SSE ``data`` payload parsed; None for the ``[DONE]`` marker."""
    if data.strip() == DONE:
        return None
    try:
        return json.loads(data)
    except ValueError as exc:
        raise APIError(f"malformed stream event: {data[:200]!r}", request_id=request_id) from exc


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


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


def _stream_fault(exc: BaseException, url: str, request_id: str | None) -> QwenVLError:
    """A transport fault after the stream started: never retried, never a silently short answer."""
    if isinstance(exc, TIMEOUT_ERRORS):
        return APITimeoutError(f"stream from {url} timed out mid-answer", request_id=request_id)
    return IncompleteStreamError(
        f"stream from {url} broke before it finished ({type(exc).__name__}); the answer is incomplete",
        request_id=request_id,
    )
