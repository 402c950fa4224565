"""Model coordinates to pixels of the original image, by the registry's convention."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InputValidationError
from ..models import GroundingConvention, ModelCapabilities, get_capabilities
from .parse import parse_grounding
from .types import (
    CONVENTIONS,
    RELATIVE_SCALE,
    Box,
    Grounding,
    ImageRecord,
    Point,
    _as_record,
)

# ------------------------------------------------------------------------------------- mapping


def grounding_convention(
    model: str | ModelCapabilities, convention: str | None = None, *, warn: bool = True
) -> tuple[GroundingConvention, str | None]:
    """The coordinate convention for ``model`` (or ``convention`` when given) and a note when it
    is assumed rather than documented. For a model the registry does not know, ``"relative-1000"``
    (Qwen3-VL's) is assumed and, with ``warn``, a ``UserWarning`` says so."""
    caps = model if isinstance(model, ModelCapabilities) else get_capabilities(model)
    if convention is not None:
        if convention not in CONVENTIONS:
            raise InputValidationError(f"convention must be one of {', '.join(CONVENTIONS)}, got {convention!r}")
        return convention, None  # type: ignore[return-value]
    if not caps.known:
        note = (
            f"model {caps.name!r} is not in the registry: assumed {caps.grounding!r} coordinates (Qwen3-VL's "
            "documented convention, 0-1000 relative to the image); pass convention='absolute-resized' for a "
            "model that answers in pixels of the resized image (Qwen2.5-VL)"
        )
        if warn:
            warnings.warn(note, UserWarning, stacklevel=3)
        return caps.grounding, note
    if not caps.grounding_documented:
        what = "relative 0-1000" if caps.grounding == "relative-1000" else "pixels of the resized image"
        return caps.grounding, (
            f"{caps.family} models: {caps.grounding!r} ({what}) is assumed from the model they are built on; "
            "the documentation states it for Qwen3-VL and Qwen2.5-VL only"
        )
    return caps.grounding, None


def _scales(record: ImageRecord, convention: GroundingConvention) -> tuple[float, float]:
    width, height = record.width, record.height
    if not width or not height:
        raise InputValidationError(
            f"the size of image {record.source!r} is not known (an image passed by URL is not downloaded): "
            "pass the image itself, or its size (ImageRecord.sized(width, height, model))"
        )
    if convention == "relative-1000":
        return width / RELATIVE_SCALE, height / RELATIVE_SCALE
    model_w, model_h = record.model_width, record.model_height
    if not model_w or not model_h:
        raise InputValidationError(f"the size at which the model saw image {record.source!r} is not known")
    return width / model_w, height / model_h


def _clamp(value: float, high: float) -> float:
    return min(max(value, 0.0), float(high))


def to_original(
    boxes: Sequence[Box],
    points: Sequence[Point],
    image: ImageRecord | Mapping[str, Any],
    convention: GroundingConvention,
    *,
    clamp: bool = True,
) -> tuple[list[Box], list[Point], list[str]]:
    """Map boxes and points in the model's coordinates to pixels of the original image; returns
    (boxes, points, notes). ``relative-1000``: ``x / 1000 * width``; ``absolute-resized``:
    ``x * width / model_width`` (the server's resize of the image sent). Clamped to the image."""
    record = _as_record(image)
    sx, sy = _scales(record, convention)
    width, height = record.width or 0, record.height or 0
    limit_x = RELATIVE_SCALE if convention == "relative-1000" else float(record.model_width or 0)
    limit_y = RELATIVE_SCALE if convention == "relative-1000" else float(record.model_height or 0)
    notes: list[str] = []
    outside = [
        v for b in boxes for v in ((b.x1, limit_x), (b.x2, limit_x), (b.y1, limit_y), (b.y2, limit_y))
    ] + [v for p in points for v in ((p.x, limit_x), (p.y, limit_y))]
    if any(value < -1 or value > limit + 1 for value, limit in outside):
        scale = "0-1000" if convention == "relative-1000" else f"the {record.model_width}x{record.model_height} image the model saw"
        notes.append(f"some coordinates fall outside {scale} ({convention}); they were clamped to the image")
    mapped_boxes = []
    for b in boxes:
        x1, y1, x2, y2 = b.x1 * sx, b.y1 * sy, b.x2 * sx, b.y2 * sy
        if clamp:
            x1, x2 = _clamp(x1, width), _clamp(x2, width)
            y1, y2 = _clamp(y1, height), _clamp(y2, height)
        mapped_boxes.append(Box(x1, y1, x2, y2, label=b.label, raw=b.raw, extra=b.extra))
    mapped_points = []
    for p in points:
        x, y = p.x * sx, p.y * sy
        if clamp:
            x, y = _clamp(x, width), _clamp(y, height)
        mapped_points.append(Point(x, y, label=p.label, raw=p.raw, extra=p.extra))
    return mapped_boxes, mapped_points, notes


def grounding_from_answer(
    text: str,
    image: ImageRecord | Mapping[str, Any],
    *,
    model: str,
    convention: GroundingConvention | None = None,
) -> Grounding:
    """Parse ``text`` (:func:`parse_grounding`) and map it onto ``image`` (an :class:`ImageRecord`
    or its dict from response metadata) with ``model``'s convention (or ``convention``)."""
    record = _as_record(image)
    conv, note = grounding_convention(model, convention)
    boxes, points = parse_grounding(text)
    boxes, points, notes = to_original(boxes, points, record, conv)
    return Grounding(boxes, points, record, conv, model, text=text, notes=([note] if note else []) + notes)
