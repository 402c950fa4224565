"""Server-sent-event framing: bytes (or lines) in, ``data`` payloads out, with size limits."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from .errors import APIError, APITimeoutError, ResponseTooLargeError

__all__ = ["SSEDecoder", "SSELimitExceeded", "EventReader", "DONE"]

DONE = "[DONE]"


class SSELimitExceeded(Exception):
    """One event (``kind="event"``) or the whole stream (``kind="stream"``) grew past its limit."""

    def __init__(self, kind: str, size: int, limit: int) -> None:
        super().__init__(f"{kind} of more than {limit} bytes ({size} so far)")
        self.kind, self.size, self.limit = kind, size, limit


class SSEDecoder:
    """Incremental decoder: feed lines (without line endings), get complete ``data`` payloads.

    ``event:``/``id:``/``retry:`` fields and ``:`` comments are kept only as ``last_event``;
    multi-line ``data`` fields are joined with newlines, as the SSE spec says.

    :meth:`feed_bytes` takes raw bytes as they arrive (lines end in ``\\n``, ``\\r\\n`` or ``\\r``, even
    split across chunks) and enforces ``max_event_bytes`` (one event, counted from the end of the
    previous one, a line still incomplete included) and ``max_total_bytes`` (everything fed) by
    raising :class:`SSELimitExceeded`, so neither a huge event nor an endless stream is buffered.
    """

    __slots__ = ("_data", "last_event", "event", "max_event_bytes", "max_total_bytes", "total_bytes",
                 "_pending", "_skip_lf", "_event_bytes")

    def __init__(self, *, max_event_bytes: int | None = None, max_total_bytes: int | None = None) -> None:
        self._data: list[str] = []
        self.event: str | None = None
        self.last_event: str | None = None
        self.max_event_bytes = max_event_bytes
        self.max_total_bytes = max_total_bytes
        self.total_bytes = 0
        self._pending = bytearray()  # a line still incomplete
        self._skip_lf = False  # the last chunk ended in "\r": a "\n" starting the next one belongs to it
        self._event_bytes = 0

    def feed_bytes(self, chunk: bytes) -> list[str]:
        """The ``data`` payloads completed by ``chunk`` (raw bytes of the stream), in order."""
        if not chunk:
            return []
        self.total_bytes += len(chunk)
        if self.max_total_bytes is not None and self.total_bytes > self.max_total_bytes:
            raise SSELimitExceeded("stream", self.total_bytes, self.max_total_bytes)
        if self._skip_lf:
            self._skip_lf = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        limit = self.max_event_bytes
        if b"\n" not in chunk and b"\r" not in chunk:  # a line still arriving: append, no copy of what came before
            self._pending += chunk
            if limit is not None and self._event_bytes + len(self._pending) > limit:
                raise SSELimitExceeded("event", self._event_bytes + len(self._pending), limit)
            return []
        data = bytes(self._pending) + chunk if self._pending else chunk
        lines = data.splitlines(keepends=True)  # bytes split on \n, \r\n and \r only
        self._pending = bytearray(lines.pop()) if lines and not lines[-1].endswith((b"\n", b"\r")) else bytearray()
        if lines and lines[-1].endswith(b"\r") and not self._pending:
            self._skip_lf = True
        out: list[str] = []
        for raw in lines:
            self._event_bytes += len(raw)
            if limit is not None and self._event_bytes > limit:
                raise SSELimitExceeded("event", self._event_bytes, limit)
            payload = self.feed(raw.rstrip(b"\r\n").decode("utf-8", "replace"))
            if payload is not None:
                out.append(payload)
        if limit is not None and self._event_bytes + len(self._pending) > limit:
            raise SSELimitExceeded("event", self._event_bytes + len(self._pending), limit)
        return out

    def flush_bytes(self) -> list[str]:
        """What is left when the byte stream ended: a last line without its ending, an event without its blank line."""
        out: list[str] = []
        if self._pending:
            pending, self._pending = bytes(self._pending), bytearray()
            payload = self.feed(pending.decode("utf-8", "replace"))
            if payload is not None:
                out.append(payload)
        payload = self.flush()
        if payload is not None:
            out.append(payload)
        return out

    def feed(self, line: str) -> str | None:
        if not line:
            self._event_bytes = 0
            if not self._data:
                self.event = None
                return None
            data = "\n".join(self._data)
            self._data = []
            self.last_event, self.event = self.event, None
            return data
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self.event = value
        return None

    def flush(self) -> str | None:
        """Data left when the stream ended without a blank line."""
        return self.feed("")

    def iter(self, lines: Iterator[str]) -> Iterator[str]:
        for line in lines:
            data = self.feed(line)
            if data is not None:
                yield data
        data = self.flush()
        if data is not None:
            yield data

    async def aiter(self, lines: AsyncIterator[str]) -> AsyncIterator[str]:
        async for line in lines:
            data = self.feed(line)
            if data is not None:
                yield data
        data = self.flush()
        if data is not None:
            yield data


class EventReader:
    """One stream's events for the transport: raw bytes to parsed ``data`` payloads (None for
    ``[DONE]``) within the size limits, and the request id the stream carries (its header, then
    the id its events carry, as the parsed deltas report it) for any error raised about it."""

    __slots__ = ("decoder", "url", "request_id")

    def __init__(self, url: str, request_id: str | None, *, max_event_bytes: int | None = None,
                 max_total_bytes: int | None = None) -> None:
        self.decoder = SSEDecoder(max_event_bytes=max_event_bytes, max_total_bytes=max_total_bytes)
        self.url = url
        self.request_id = request_id

    def feed(self, chunk: bytes) -> list[str]:
        """The ``data`` payloads ``chunk`` completes; :class:`ResponseTooLargeError` past a limit."""
        try:
            return self.decoder.feed_bytes(chunk)
        except SSELimitExceeded as exc:
            if exc.kind == "event":
                what = f"one event of the stream from {self.url} exceeded max_response_bytes={exc.limit}"
            else:
                what = f"the stream from {self.url} exceeded max_stream_bytes={exc.limit}"
            error = ResponseTooLargeError(f"{what}; nothing more was read, the answer is incomplete",
                                          request_id=self.request_id)
            error.limit = exc.limit
            raise error from None

    def flush(self) -> list[str]:
        return self.decoder.flush_bytes()

    def parse(self, data: str) -> Any:
        """One payload as JSON; None for ``[DONE]``; :class:`APIError` for anything else."""
        if data.strip() == DONE:
            return None
        try:
            payload = json.loads(data)
        except ValueError as exc:
            raise APIError(f"malformed stream event: {data[:200]!r}", request_id=self.request_id) from exc
        if isinstance(payload, Mapping):
            rid = payload.get("request_id") or payload.get("id")
            if isinstance(rid, str) and rid:
                self.request_id = rid
        return payload

    def idle(self, seconds: float) -> APITimeoutError:
        """The error for a stream that went ``seconds`` without a complete event."""
        return APITimeoutError(
            f"stream from {self.url} sent no complete event for {seconds:g} s (stream_idle_timeout); "
            "the answer is incomplete", request_id=self.request_id,
        )
