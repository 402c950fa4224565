"""Normalized results and stream deltas, the same for both API modes and both plugins."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .tools import parse_arguments

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

    def parsed_arguments(self, *, partial: bool = False) -> dict[str, Any]:
        """Arguments as a dict; ``{}`` for an empty string. Raises ``ValueError`` naming the call on
        text that is not one JSON object; ``partial=True`` parses arguments still streaming
        leniently instead (see :func:`qwen_vl_core.tools.parse_arguments`)."""
        try:
            return parse_arguments(self.arguments, partial=partial)
        except ValueError as exc:
            raise ValueError(f"tool call {self.name!r}: {exc}") from None


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

    @property
    def answers(self) -> bool:
        """Whether this delta is part of an answer: text, reasoning, a tool-call fragment or a
        finish reason (not a role-only, usage-only or keep-alive chunk). A stream in which no
        delta answers carried no answer at all."""
        return bool(self.text or self.reasoning or self.tool_calls or self.finish_reason)


class StreamAccumulator:
    """The one stream folder (client, CLI and both adapters): deltas in, one :class:`ChatResult` out.

    Text and reasoning are concatenated, tool-call fragments assembled by index, and the last
    metadata each delta carried is kept (``partial`` once set stays set). The running state can be
    read at any point: ``text``, ``reasoning``, ``tool_calls`` (arguments as the JSON text so far),
    ``finish_reason``, ``usage``, ``model``, ``request_id``, ``partial`` and ``finished``, or all
    of it as a new :class:`ChatResult` from :meth:`build`.
    """

    def __init__(self) -> None:
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[int, _CallSlot] = {}
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.model: str | None = None
        self.request_id: str | None = None
        self.partial = False

    def add(self, delta: ChatDelta) -> bool:
        """Fold one delta in. Returns whether it carried anything a reader would see (text,
        reasoning, a tool-call fragment, usage or a finish reason); ``False`` for role-only or
        keep-alive chunks."""
        if delta.text:
            self._text.append(delta.text)
        if delta.reasoning:
            self._reasoning.append(delta.reasoning)
        for frag in delta.tool_calls:
            slot = self._calls.get(frag.index)
            if slot is None:
                slot = self._calls[frag.index] = _CallSlot()
            slot.id = frag.id or slot.id
            slot.name = frag.name or slot.name
            if frag.arguments:
                slot.arguments.append(frag.arguments)
        self.finish_reason = delta.finish_reason or self.finish_reason
        self.usage = delta.usage or self.usage
        self.model = delta.model or self.model
        self.request_id = delta.request_id or self.request_id
        self.partial = self.partial or delta.partial
        return bool(delta.text or delta.reasoning or delta.tool_calls or delta.usage or delta.finish_reason)

    @property
    def text(self) -> str:
        """The answer text so far."""
        return _joined(self._text)

    @property
    def reasoning(self) -> str:
        """The reasoning so far."""
        return _joined(self._reasoning)

    @property
    def finished(self) -> bool:
        """Whether the server gave a finish reason (tool-call arguments are then complete)."""
        return self.finish_reason is not None

    @property
    def tool_calls(self) -> list[ToolCall]:
        """Tool calls so far, by index; ``arguments`` is the JSON text received so far (complete
        once :attr:`finished`: parse it with :meth:`ToolCall.parsed_arguments` or
        :func:`qwen_vl_core.tools.parse_arguments`, leniently with ``partial=True`` before)."""
        return [
            ToolCall(id=slot.id or f"call_{index}", name=slot.name or "", arguments=_joined(slot.arguments))
            for index, slot in sorted(self._calls.items())
        ]

    def build(self) -> ChatResult:
        """Everything so far as a new :class:`ChatResult` (at the end of the stream: the answer).
        Does not consume anything; each call returns a new object."""
        return ChatResult(
            text=self.text,
            reasoning=self.reasoning,
            tool_calls=self.tool_calls,
            finish_reason=self.finish_reason,
            usage=self.usage,
            model=self.model,
            request_id=self.request_id,
            partial=self.partial,
        )


@dataclass(slots=True)
class _CallSlot:
    id: str | None = None
    name: str | None = None
    arguments: list[str] = field(default_factory=list)


def _joined(pieces: list[str]) -> str:
    """``"".join(pieces)``, keeping the joined string as the only piece so reading again is cheap."""
    if len(pieces) > 1:
        pieces[:] = ["".join(pieces)]
    return pieces[0] if pieces else ""
