"""Prompt-token estimates for ``ChatQwenVL.get_num_tokens_from_messages``: no network call, the
core's formulas on the request as it would be sent."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, convert_to_messages
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from qwen_vl_core import QwenVLClient, get_capabilities
from qwen_vl_core.estimate import wire_tokens

from ._convert import to_core_messages

__all__ = ["count_prompt_tokens"]


def count_prompt_tokens(
    client: QwenVLClient,
    model: str,
    messages: Sequence[Any],
    *,
    media: Mapping[str, Any],
    tools: Sequence[Mapping[str, Any] | type | Callable[..., Any] | BaseTool] | None = None,
) -> int:
    """Estimate the prompt tokens of ``messages`` (anything ``convert_to_messages`` takes) for
    ``model`` with the media settings ``media`` (``high_resolution``, ``min_pixels``,
    ``max_pixels``, ``fps``); ``tools`` count as their JSON text."""
    lc_messages: list[BaseMessage] = convert_to_messages(messages)
    prepared = client.prepare(to_core_messages(lc_messages), model=model, stream=False, **media)
    formatted = [convert_to_openai_tool(t) for t in tools] if tools else None
    return wire_tokens(
        prepared.wire,
        get_capabilities(model),
        high_resolution=bool(media.get("high_resolution")),
        fps=media.get("fps"),
        tools=formatted,
    )
