"""Asking a model to find things in an image, and mapping its answer back."""

from __future__ import annotations

from typing import Any

from ..errors import InputValidationError
from ..models import GroundingConvention
from .mapping import grounding_from_answer
from .types import Grounding, GroundingParseError, ImageRecord, Kind

# ---------------------------------------------------------------------------------- asking


def grounding_prompt(prompt: str, kind: Kind = "box") -> str:
    """``prompt`` with the output format Qwen-VL is trained on for grounding (JSON in a code
    fence, ``bbox_2d`` or ``point_2d`` with a ``label``)."""
    if kind not in ("box", "point"):
        raise InputValidationError(f"kind must be 'box' or 'point', got {kind!r}")
    shape = '{"bbox_2d": [x1, y1, x2, y2], "label": "..."}' if kind == "box" else '{"point_2d": [x, y], "label": "..."}'
    what = "bounding box" if kind == "box" else "point"
    return (
        f"{prompt.strip()}\n\nOutput the {what} coordinates of each one in JSON format, as a list in a ```json code "
        f"block: [{shape}, ...]. Output [] if there is none."
    )


def _question(image: Any, prompt: str, kind: Kind, instruct: bool) -> list[dict[str, Any]]:
    text = grounding_prompt(prompt, kind) if instruct else prompt
    return [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": text}]}]


def ground(
    client: Any,
    image: Any,
    prompt: str,
    *,
    model: str,
    kind: Kind = "box",
    convention: GroundingConvention | None = None,
    instruct: bool = True,
    **options: Any,
) -> Grounding:
    """Ask ``model`` through ``client`` (a :class:`~qwen_vl_core.QwenVLClient`) to find things
    in ``image`` (any image form the core takes) and return them in pixels of that image.
    ``kind``: ``"box"`` or ``"point"``; ``instruct=False`` sends ``prompt`` as written (no format
    instruction); ``options`` are request options (``high_resolution``, ``max_pixels``, ...)."""
    from ..chat_media import prepare_chat_media

    prepared = prepare_chat_media(_question(image, prompt, kind, instruct), model=model, options=options,
                                  media_options=client.media_options)  # fmt: skip
    result = client.chat(prepared.messages, model=model, **options)
    return _found(result, prepared.images[0], model, convention)


async def aground(
    client: Any,
    image: Any,
    prompt: str,
    *,
    model: str,
    kind: Kind = "box",
    convention: GroundingConvention | None = None,
    instruct: bool = True,
    **options: Any,
) -> Grounding:
    """:func:`ground` on the event loop (media prepared in a thread)."""
    from ..chat_media import aprepare_chat_media

    prepared = await aprepare_chat_media(_question(image, prompt, kind, instruct), model=model, options=options,
                                         media_options=client.media_options)  # fmt: skip
    result = await client.achat(prepared.messages, model=model, **options)
    return _found(result, prepared.images[0], model, convention)


def _found(result: Any, record: ImageRecord, model: str, convention: GroundingConvention | None) -> Grounding:
    if result.partial or result.finish_reason == "length":
        why = "cut off at max_tokens" if result.finish_reason == "length" else "partial (the server stopped early)"
        boxes_text = result.text
        try:
            found = grounding_from_answer(boxes_text, record, model=model, convention=convention)
        except GroundingParseError:
            raise GroundingParseError(f"the answer was {why} and holds no complete box", text=boxes_text) from None
        found.notes.append(f"the answer was {why}: boxes after the last complete one are missing")
        return found
    return grounding_from_answer(result.text, record, model=model, convention=convention)
