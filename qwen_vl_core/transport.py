"""The one HTTP transport: pooled httpx clients, explicit timeouts, retries with exponential
backoff and jitter that honour ``Retry-After`` / ``retry-after-ms``, and SSE streaming that
never returns a silently truncated answer.

Retried: connection errors and timeouts, HTTP 408, 409, 429 and 5xx (``x-should-retry``
overrides). Not retried: other 4xx, and anything after a stream has started delivering.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ._http import TIMEOUT_ERRORS, TRANSPORT_ERRORS, httpx

from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    QwenVLError,
    error_from_response,
)
from .sse import SSEDecoder

__all__ = ["Transport", "RetryPolicy", "Response"]

logger = logging.getLogger("qwen_vl_core")

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 60.0


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
            parsed = email.utils.parsedate_to_datetime(raw) if raw else None
            value = parsed.timestamp() - time.time() if parsed else -1
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


@dataclass(slots=True)
class Response:
    status: int
    headers: httpx.Headers
    data: Any

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id") or self.headers.get("x-dashscope-request-id")

    @property
    def partial(self) -> bool:
        return self.headers.get("x-dashscope-partialresponse", "").lower() == "true"


def _wrap_transport_error(exc: httpx.TransportError, url: str) -> QwenVLError:
    if isinstance(exc, TIMEOUT_ERRORS):
        return APITimeoutError(f"request to {url} timed out ({type(exc).__name__})")
    return APIConnectionError(f"connection to {url} failed: {type(exc).__name__}: {exc}")


def _decode_json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError as exc:
        raise error_from_response(resp.status_code, resp.content, resp.headers) from exc


def _event_json(data: str, request_id: str | None) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise APIError(f"malformed stream event: {data[:200]!r}", request_id=request_id) from exc


class Transport:
    """Sends JSON requests and streams SSE over shared, pooled httpx clients."""

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

    # ------------------------------------------------------------------ sync

    def _retry_wait(self, attempt: int, headers: Mapping[str, str] | None, why: str) -> float:
        delay = self.retry.delay(attempt, headers)
        logger.info("retrying in %.2fs (attempt %d of %d): %s", delay, attempt + 1, self.retry.max_retries, why)
        return delay

    def request(self, method: str, url: str, *, headers: Mapping[str, str], json_body: Any = None,
                params: Mapping[str, str] | None = None) -> Response:
        attempt = 0
        while True:
            try:
                resp = self.client.request(method, url, headers=headers, json=json_body, params=params)
            except TRANSPORT_ERRORS as exc:
                if attempt < self.retry.max_retries:
                    time.sleep(self._retry_wait(attempt, None, type(exc).__name__))
                    attempt += 1
                    continue
                raise _wrap_transport_error(exc, url) from exc
            if resp.status_code >= 400:
                if attempt < self.retry.max_retries and _should_retry(resp.status_code, resp.headers):
                    time.sleep(self._retry_wait(attempt, resp.headers, f"HTTP {resp.status_code}"))
                    attempt += 1
                    continue
                raise error_from_response(resp.status_code, resp.content, resp.headers)
            return Response(resp.status_code, resp.headers, _decode_json(resp))

    def stream(self, url: str, *, headers: Mapping[str, str], json_body: Any) -> Iterator[tuple[Any, Response]]:
        """Yield ``(event_json, response)`` for each SSE ``data`` payload until ``[DONE]``.

        The caller decides whether the stream is complete; transport faults become
        :class:`APIConnectionError` subclasses, error frames become typed :class:`APIError`.
        """
        attempt = 0
        while True:
            try:
                with self.client.stream("POST", url, headers=headers, json=json_body) as resp:
                    if resp.status_code >= 400:
                        resp.read()
                        if attempt < self.retry.max_retries and _should_retry(resp.status_code, resp.headers):
                            delay = self._retry_wait(attempt, resp.headers, f"HTTP {resp.status_code}")
                        else:
                            raise error_from_response(resp.status_code, resp.content, resp.headers)
                    else:
                        meta = Response(resp.status_code, resp.headers, None)
                        yield from self._events(resp, meta, SSEDecoder().iter(resp.iter_lines()), url)
                        return
            except TRANSPORT_ERRORS as exc:
                # only reached before the first event: _events converts faults after that
                if attempt < self.retry.max_retries:
                    delay = self._retry_wait(attempt, None, type(exc).__name__)
                else:
                    raise _wrap_transport_error(exc, url) from exc
            time.sleep(delay)
            attempt += 1

    def _events(self, resp: httpx.Response, meta: Response, datas: Iterator[str], url: str):
        try:
            for data in datas:
                if data.strip() == "[DONE]":
                    yield None, meta
                    return
                yield _event_json(data, meta.request_id), meta
        except TRANSPORT_ERRORS as exc:
            raise _as_stream_fault(exc, url, meta.request_id) from exc

    # ------------------------------------------------------------------ async

    async def arequest(self, method: str, url: str, *, headers: Mapping[str, str], json_body: Any = None,
                       params: Mapping[str, str] | None = None) -> Response:
        attempt = 0
        while True:
            try:
                resp = await self.async_client.request(method, url, headers=headers, json=json_body, params=params)
            except TRANSPORT_ERRORS as exc:
                if attempt < self.retry.max_retries:
                    await asyncio.sleep(self._retry_wait(attempt, None, type(exc).__name__))
                    attempt += 1
                    continue
                raise _wrap_transport_error(exc, url) from exc
            if resp.status_code >= 400:
                if attempt < self.retry.max_retries and _should_retry(resp.status_code, resp.headers):
                    await asyncio.sleep(self._retry_wait(attempt, resp.headers, f"HTTP {resp.status_code}"))
                    attempt += 1
                    continue
                raise error_from_response(resp.status_code, resp.content, resp.headers)
            return Response(resp.status_code, resp.headers, _decode_json(resp))

    async def astream(self, url: str, *, headers: Mapping[str, str], json_body: Any) -> AsyncIterator[tuple[Any, Response]]:
        attempt = 0
        while True:
            try:
                async with self.async_client.stream("POST", url, headers=headers, json=json_body) as resp:
                    if resp.status_code >= 400:
                        await resp.aread()
                        if attempt < self.retry.max_retries and _should_retry(resp.status_code, resp.headers):
                            delay = self._retry_wait(attempt, resp.headers, f"HTTP {resp.status_code}")
                        else:
                            raise error_from_response(resp.status_code, resp.content, resp.headers)
                    else:
                        meta = Response(resp.status_code, resp.headers, None)
                        try:
                            async for data in SSEDecoder().aiter(resp.aiter_lines()):
                                if data.strip() == "[DONE]":
                                    yield None, meta
                                    return
                                yield _event_json(data, meta.request_id), meta
                        except TRANSPORT_ERRORS as exc:
                            raise _as_stream_fault(exc, url, meta.request_id) from exc
                        return
            except TRANSPORT_ERRORS as exc:
                if attempt < self.retry.max_retries:
                    delay = self._retry_wait(attempt, None, type(exc).__name__)
                else:
                    raise _wrap_transport_error(exc, url) from exc
            await asyncio.sleep(delay)
            attempt += 1


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _as_stream_fault(exc: httpx.TransportError, url: str, request_id: str | None) -> QwenVLError:
    from .errors import IncompleteStreamError

    if isinstance(exc, TIMEOUT_ERRORS):
        return APITimeoutError(f"stream from {url} timed out mid-answer", request_id=request_id)
    return IncompleteStreamError(
        f"stream from {url} broke before it finished ({type(exc).__name__}); the answer is incomplete",
        request_id=request_id,
    )
