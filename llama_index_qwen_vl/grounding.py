"""``QwenVL.ground``: find things in an image, get boxes in pixels of that image.

The question goes through the LLM's ordinary ``chat`` (callbacks, instrumentation), with the
output format Qwen-VL is trained on for grounding; the answer is read and mapped by
:mod:`qwen_vl_core.grounding` with the image's sizes from ``response.raw["images"]`` and the
model's coordinate convention from the registry.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import ChatMessage, ChatResponse, ImageBlock, TextBlock
from qwen_vl_core.grounding import Grounding, GroundingParseError, grounding_from_answer, grounding_prompt
from qwen_vl_core.media import is_remote_url
from qwen_vl_core.media.sources import decode_data_url

if TYPE_CHECKING:
    from .base import QwenVL

__all__ = ["ground", "aground", "image_block", "Grounding"]


def image_block(image: Any) -> ImageBlock:
    """An ``ImageBlock`` for a path, URL, bytes, PIL image or an ``ImageBlock`` itself."""
    if isinstance(image, ImageBlock):
        return image
    if isinstance(image, (bytes, bytearray, memoryview)):
        return ImageBlock(image=bytes(image))
    if isinstance(image, str) and is_remote_url(image):
        return ImageBlock(url=image)
    if isinstance(image, str) and image[:5].lower() == "data:":
        return ImageBlock(image=decode_data_url(image, "image '<data URL>'")[0])
    if isinstance(image, (str, Path)):
        return ImageBlock(path=Path(image))
    if type(image).__module__.startswith("PIL."):
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return ImageBlock(image=buf.getvalue(), image_mimetype="image/png")
    raise TypeError(f"ground() needs a path, URL, bytes, PIL image or ImageBlock, got {type(image).__name__}")


def _question(image: Any, prompt: str, kind: str, instruct: bool) -> list[ChatMessage]:
    text = grounding_prompt(prompt, kind) if instruct else prompt  # type: ignore[arg-type]
    return [ChatMessage(role="user", blocks=[image_block(image), TextBlock(text=text)])]


def _grounding(response: ChatResponse, model: str, convention: Any) -> Grounding:
    raw = response.raw if isinstance(response.raw, dict) else {}
    text = response.message.content or ""
    images = raw.get("images") or []
    if not images:
        raise GroundingParseError("the response carries no image record (was the image sent?)", text=text)
    found = grounding_from_answer(text, images[0], model=model, convention=convention)
    if raw.get("partial") or raw.get("finish_reason") == "length":
        found.notes.append("the answer was cut short (partial or max_tokens): boxes after the last complete one are missing")
    return found


def ground(llm: QwenVL, image: Any, prompt: str, *, kind: str = "box", convention: str | None = None,
           instruct: bool = True, **kwargs: Any) -> Grounding:  # fmt: skip
    """See :meth:`QwenVL.ground`."""
    return _grounding(llm.chat(_question(image, prompt, kind, instruct), **kwargs), llm.model, convention)


async def aground(llm: QwenVL, image: Any, prompt: str, *, kind: str = "box", convention: str | None = None,
                  instruct: bool = True, **kwargs: Any) -> Grounding:  # fmt: skip
    """See :meth:`QwenVL.aground`."""
    return _grounding(await llm.achat(_question(image, prompt, kind, instruct), **kwargs), llm.model, convention)
