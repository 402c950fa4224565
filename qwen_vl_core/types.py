"""Normalized results and stream deltas, the same for both API modes and both plugins."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Usage", "ToolCall", "ToolCallDelta", "ChatResult", "ChatDelta", "StreamAccumulator"]


@dataclass(slots=True)
class Usage:
    """Token usage. Detail fields are ``None`` where the server did not report them."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    image_tokens: int | None = None
    video_tokens: int | None = None
    text_input_tokens: int | None = None
    reasoning_tokens: int | None = None
    cached_tokens: int | None = None

    def to_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) is not None}


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str = ""

    def parsed_arguments(self) -> dict[str, Any]:
        """Arguments as a dict; ``{}`` for an empty string. Raises ``ValueError`` on bad JSON."""
        if not self.arguments.strip():
            return {}
        value = json.loads(self.arguments)
        if not isinstance(value, dict):
            raise ValueError(f"tool call {self.name!r} arguments are not a JSON object: {self.arguments!r}")
        return value


@dataclass(slots=True)
class ToolCallDelta:
    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(slots=True)
class ChatResult:
    text: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str | None = None
    request_id: str | None = None
    partial: bool = False


@dataclass(slots=True)
class ChatDelta:
    text: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCallDelta] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str | None = None
    request_id: str | None = None
    partial: bool = False


class StreamAccumulator:
    """Folds stream deltas into one :class:`ChatResult`, assembling tool-call fragments by index."""

    def __init__(self) -> None:
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[int, list[Any]] = {}
        self.result = ChatResult()

    def add(self, delta: ChatDelta) -> None:
        if delta.text:
            self._text.append(delta.text)
        if delta.reasoning:
            self._reasoning.append(delta.reasoning)
        for frag in delta.tool_calls:
            slot = self._calls.setdefault(frag.index, [None, None, []])
            if frag.id:
                slot[0] = frag.id
            if frag.name:
                slot[1] = frag.name
            if frag.arguments:
                slot[2].append(frag.arguments)
        r = self.result
        r.finish_reason = delta.finish_reason or r.finish_reason
        r.usage = delta.usage or r.usage
        r.model = delta.model or r.model
        r.request_id = delta.request_id or r.request_id
        r.partial = r.partial or delta.partial

    def build(self) -> ChatResult:
        r = self.result
        r.text = "".join(self._text)
        r.reasoning = "".join(self._reasoning)
        r.tool_calls = [
            ToolCall(id=slot[0] or f"call_{index}", name=slot[1] or "", arguments="".join(slot[2]))
            for index, slot in sorted(self._calls.items())
        ]
        return r
