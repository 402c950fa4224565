"""``--save-raw``: the model's raw response, kept beside the normalized result (seed 001: "Save raw
model responses and normalized extraction results").

The client is given an httpx client whose transport copies the body of each chat response as it
is read (the core reads it as usual: same retries, limits and errors). The last chat response is
kept: a JSON answer as its object, a stream as the list of its events' ``data:`` payloads.
Upload requests (the policy and the storage POST) are not recorded.
"""

from __future__ import annotations

import json
from typing import Any

from qwen_vl_core._http import httpx

__all__ = ["RawRecorder"]

_CHAT_PATHS = ("/chat/completions", "/services/aigc/multimodal-generation/generation")


class _Tee(httpx.SyncByteStream):
    def __init__(self, inner: Any, sink: bytearray) -> None:
        self._inner = inner
        self._sink = sink

    def __iter__(self):
        for chunk in self._inner:
            self._sink.extend(chunk)
            yield chunk

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()


class RawRecorder(httpx.BaseTransport):
    """An httpx transport over the default one that keeps the last chat response's body."""

    def __init__(self, inner: Any | None = None) -> None:
        self._inner = inner if inner is not None else httpx.HTTPTransport()
        self._body = bytearray()
        self._content_type = ""
        self.status: int | None = None

    def handle_request(self, request: Any) -> Any:
        response = self._inner.handle_request(request)
        if not request.url.path.endswith(_CHAT_PATHS):
            return response
        self._body = bytearray()
        self._content_type = response.headers.get("content-type", "")
        self.status = response.status_code
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_Tee(response.stream, self._body),
            extensions=response.extensions,
            request=request,
        )

    def close(self) -> None:
        self._inner.close()

    def http_client(self) -> Any:
        """An ``httpx.Client`` sending through this transport (the core sets each request's timeouts)."""
        return httpx.Client(transport=self)

    @property
    def recorded(self) -> bool:
        return self.status is not None

    def value(self) -> Any:
        """The last chat response: its JSON, the list of its stream events' payloads, or its text."""
        text = bytes(self._body).decode("utf-8", "replace")
        if "text/event-stream" in self._content_type or text.lstrip().startswith(("data:", "id:", "event:")):
            events: list[Any] = []
            for line in text.splitlines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if not payload or payload == "[DONE]":
                    continue
                try:
                    events.append(json.loads(payload))
                except ValueError:
                    events.append(payload)
            return events
        try:
            return json.loads(text)
        except ValueError:
            return text
