"""Server-sent-event framing: lines in, ``data`` payloads out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

__all__ = ["SSEDecoder", "DONE"]

DONE = "[DONE]"


class SSEDecoder:
    """Incremental decoder: feed lines (without line endings), get complete ``data`` payloads.

    ``event:``/``id:``/``retry:`` fields and ``:`` comments are kept only as ``last_event``;
    multi-line ``data`` fields are joined with newlines, as the SSE spec says.
    """

    __slots__ = ("_data", "last_event", "event")

    def __init__(self) -> None:
        self._data: list[str] = []
        self.event: str | None = None
        self.last_event: str | None = None

    def feed(self, line: str) -> str | None:
        if not line:
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
