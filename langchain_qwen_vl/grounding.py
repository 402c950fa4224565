"""``ChatQwenVL.ground``: find things in an image, get boxes in pixels of that image.

The question goes through the model's ordinary ``invoke`` (callbacks, tracing, retries), with the
output format Qwen-VL is trained on for grounding; the answer is read and mapped by
:mod:`qwen_vl_core.grounding` using the image's sizes from ``response_metadata["images"]`` and
the model's coordinate convention from the registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, HumanMessage
from qwen_vl_core.grounding import Grounding, GroundingParseError, grounding_from_answer, grounding_prompt

if TYPE_CHECKING:
    from .chat_models import ChatQwenVL

__all__ = ["ground", "aground", "Grounding"]


def _question(image: Any, prompt: str, kind: str, instruct: bool) -> list[HumanMessage]:
    text = grounding_prompt(prompt, kind) if instruct else prompt  # type: ignore[arg-type]
    return [HumanMessage(content=[{"type": "image", "image": image}, {"type": "text", "text": text}])]


def _grounding(message: AIMessage, model: str, convention: Any) -> Grounding:
    images = message.response_metadata.get("images") or []
    if not images:
        raise GroundingParseError("the response carries no image record (was the image sent?)", text=message.text)
    partial = message.response_metadata.get("partial") or message.response_metadata.get("finish_reason") == "length"
    found = grounding_from_answer(message.text, images[0], model=model, convention=convention)
    if partial:
        found.notes.append("the answer was cut short (partial or max_tokens): boxes after the last complete one are missing")
    return found


def ground(
    llm: ChatQwenVL,
    image: Any,
    prompt: str,
    *,
    kind: str = "box",
    convention: str | None = None,
    instruct: bool = True,
    **kwargs: Any,
) -> Grounding:
    """See :meth:`ChatQwenVL.ground`."""
    message = llm.invoke(_question(image, prompt, kind, instruct), **kwargs)
    return _grounding(message, kwargs.get("model") or llm.model, convention)


async def aground(
    llm: ChatQwenVL,
    image: Any,
    prompt: str,
    *,
    kind: str = "box",
    convention: str | None = None,
    instruct: bool = True,
    **kwargs: Any,
) -> Grounding:
    """See :meth:`ChatQwenVL.aground`."""
    message = await llm.ainvoke(_question(image, prompt, kind, instruct), **kwargs)
    return _grounding(message, kwargs.get("model") or llm.model, convention)
