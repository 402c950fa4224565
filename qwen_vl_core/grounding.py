"""Grounding: boxes and points from a model's answer, in pixels of the image the user passed.

Qwen-VL models locate things ("find every signature") as JSON, ``[{"bbox_2d": [x1, y1, x2, y2],
"label": "signature"}]`` or ``{"point_2d": [x, y], ...}``, but the numbers are not pixels of the
user's image:

* Qwen3-VL writes coordinates **relative** to the image: the documentation says "normalized to a
  range of [0, 999]"; they are mapped as ``x / 1000 * width`` and clamped to the image
  (convention ``"relative-1000"``);
* Qwen2.5-VL writes **absolute pixels of the image as the server resized it** ("relative to the
  top-left corner of the scaled image", convention ``"absolute-resized"``): the server's resize
  (:func:`qwen_vl_core.tokens.image_geometry`, the documented ``smart_resize``) of the image
  *sent*, which our client may itself have downscaled first.

Which model uses which is the registry's :attr:`~qwen_vl_core.models.ModelCapabilities.grounding`
(documented for Qwen3-VL and Qwen2.5-VL; assumed for Qwen3.5, QVQ and qwen-vl-ocr from the model
they are built on; for unknown models ``"relative-1000"`` is assumed and a warning says so).
Each image's sizes (original, sent, as the model saw it) are the :class:`ImageRecord` the core
made when it resolved the image; the adapters put them in their response metadata.

.. code-block:: python

    found = grounding_from_answer(answer_text, image_record, model="qwen3-vl-plus")
    for box in found.boxes:
        print(box.label, box.rounded())
    draw_boxes("scan.png", found).save("scan-boxes.png")
"""

from __future__ import annotations

import ast
import json
import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any, Literal

from .errors import InputValidationError, QwenVLError
from .media import ResolvedMedia
from .models import GroundingConvention, ModelCapabilities, get_capabilities
from .tokens import image_geometry

__all__ = [
    "CONVENTIONS",
    "RELATIVE_SCALE",
    "Box",
    "Point",
    "ImageRecord",
    "Grounding",
    "GroundingParseError",
    "parse_grounding",
    "grounding_convention",
    "to_original",
    "grounding_from_answer",
    "grounding_prompt",
    "ground",
    "aground",
    "draw_boxes",
]

CONVENTIONS: tuple[GroundingConvention, ...] = ("relative-1000", "absolute-resized")
#: Relative coordinates are divided by this (PROTOCOL.md: "normalized to 0..1000 (docs say 0..999):
#: scale by width/1000 and clamp").
RELATIVE_SCALE = 1000.0

Kind = Literal["box", "point"]


class GroundingParseError(QwenVLError, ValueError):
    """The answer holds no boxes or points this module can read; the message names what could not
    be parsed (the raw answer is in ``text``)."""

    def __init__(self, message: str, *, text: str = "") -> None:
        super().__init__(message)
        self.text = text


# ---------------------------------------------------------------------------------- data types


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned box ``(x1, y1)``-``(x2, y2)``: pixels of the original image once mapped
    (:func:`to_original`), the model's own numbers before. ``raw`` keeps what the model wrote."""

    x1: float
    y1: float
    x2: float
    y2: float
    label: str | None = None
    raw: tuple[float, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def center(self) -> tuple[float, float]:
        return (self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2

    def rounded(self) -> tuple[int, int, int, int]:
        """Integer pixel coordinates (rounded)."""
        return round(self.x1), round(self.y1), round(self.x2), round(self.y2)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"bbox": [round(v, 1) for v in (self.x1, self.y1, self.x2, self.y2)], "label": self.label}
        if self.raw:
            out["raw"] = list(self.raw)
        if self.extra:
            out["extra"] = dict(self.extra)
        return out


@dataclass(frozen=True, slots=True)
class Point:
    """A point ``(x, y)``: pixels of the original image once mapped; ``raw`` is what the model wrote."""

    x: float
    y: float
    label: str | None = None
    raw: tuple[float, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def rounded(self) -> tuple[int, int]:
        return round(self.x), round(self.y)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"point": [round(self.x, 1), round(self.y, 1)], "label": self.label}
        if self.raw:
            out["raw"] = list(self.raw)
        if self.extra:
            out["extra"] = dict(self.extra)
        return out


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """One image of a request and its sizes: ``width`` x ``height`` as the user passed it (EXIF
    orientation applied), ``sent_*`` as our client sent it (downscaled when larger than the model
    looks at), ``model_*`` as the server resized it for the model (the documented ``smart_resize``
    of the sent size with the request's ``high_resolution`` / ``min_pixels`` / ``max_pixels``).
    Sizes are ``None`` for an image passed by URL (never downloaded). ``message`` is the index of
    the message that held it; ``document`` and ``page`` name a document page."""

    source: str
    width: int | None
    height: int | None
    sent_width: int | None = None
    sent_height: int | None = None
    model_width: int | None = None
    model_height: int | None = None
    high_resolution: bool = False
    min_pixels: int | None = None
    max_pixels: int | None = None
    message: int | None = None
    document: str | None = None
    page: int | None = None

    @classmethod
    def of(
        cls,
        media: ResolvedMedia,
        model: str | ModelCapabilities,
        *,
        high_resolution: bool = False,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        message: int | None = None,
        document: str | None = None,
        page: int | None = None,
    ) -> ImageRecord:
        """The record of a resolved image: sizes the core read, and the server's resize of the sent size."""
        sent_w, sent_h = media.sent_width or media.width, media.sent_height or media.height
        model_w = model_h = None
        if sent_w and sent_h:
            geo = image_geometry(sent_w, sent_h, model, high_resolution=high_resolution,
                                 min_pixels=min_pixels, max_pixels=max_pixels)  # fmt: skip
            model_w, model_h = geo.width, geo.height
        return cls(
            source=media.source, width=media.width, height=media.height, sent_width=sent_w, sent_height=sent_h,
            model_width=model_w, model_height=model_h, high_resolution=high_resolution, min_pixels=min_pixels,
            max_pixels=max_pixels, message=message, document=document, page=page,
        )  # fmt: skip

    @classmethod
    def sized(
        cls,
        width: int,
        height: int,
        model: str | ModelCapabilities,
        *,
        source: str = "<image>",
        high_resolution: bool = False,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
    ) -> ImageRecord:
        """A record for an image of known size that was sent as it is (e.g. by URL)."""
        geo = image_geometry(width, height, model, high_resolution=high_resolution,
                             min_pixels=min_pixels, max_pixels=max_pixels)  # fmt: skip
        return cls(source, width, height, width, height, geo.width, geo.height, high_resolution, min_pixels, max_pixels)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImageRecord:
        names = cls.__dataclass_fields__  # type: ignore[attr-defined]
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}  # type: ignore[attr-defined]
        for name in ("min_pixels", "max_pixels", "message", "document", "page"):
            if out[name] is None:
                del out[name]
        return out


def _as_record(image: ImageRecord | Mapping[str, Any]) -> ImageRecord:
    if isinstance(image, ImageRecord):
        return image
    if isinstance(image, Mapping):
        return ImageRecord.from_dict(image)
    raise TypeError(f"expected an ImageRecord or its dict (response metadata 'images'), got {type(image).__name__}")


@dataclass
class Grounding:
    """Boxes and points found in one answer, mapped to the original image (``image``)."""

    boxes: list[Box]
    points: list[Point]
    image: ImageRecord
    convention: GroundingConvention
    model: str
    text: str = ""
    notes: list[str] = field(default_factory=list)
    """What was assumed (the convention for an unknown model) or looks wrong (numbers past the scale)."""

    def __iter__(self):
        return iter([*self.boxes, *self.points])

    def __len__(self) -> int:
        return len(self.boxes) + len(self.points)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "convention": self.convention,
            "image": self.image.to_dict(),
            "boxes": [b.to_dict() for b in self.boxes],
            "points": [p.to_dict() for p in self.points],
            "notes": list(self.notes),
            "text": self.text,
        }

    def draw(self, image: Any, **kwargs: Any) -> Any:
        """:func:`draw_boxes` of this result on ``image`` (the original the boxes belong to)."""
        return draw_boxes(image, self, **kwargs)


# ------------------------------------------------------------------------------------- parsing

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_-]*)[ \t]*\n?(.*?)```", re.S)
_BOX_KEYS = ("bbox_2d", "bbox", "box_2d", "box", "bounding_box", "bndbox", "rect")
_POINT_KEYS = ("point_2d", "point", "coordinate", "coordinates", "position")
_LABEL_KEYS = ("label", "name", "category", "class", "text", "description", "object", "type")
_CONTAINER_HINT = ("bbox", "box", "point", "coordinate", "position", "rect")
_NUMBER = r"-?\d+(?:\.\d+)?"
# Qwen2.5-VL's XML points: <points x1="10" y1="20" x2="30" y2="40" alt="a cup">a cup</points>
_XML_POINTS = re.compile(r"<points?\b([^>]*)>(.*?)</points?>", re.S | re.I)
_XML_ATTR = re.compile(r"""([a-zA-Z_]+\d*)\s*=\s*["']([^"']*)["']""")
# Qwen2-VL style: <|object_ref_start|>cat<|object_ref_end|><|box_start|>(10,20),(30,40)<|box_end|>
_SPECIAL_BOX = re.compile(
    r"(?:<\|object_ref_start\|>(.*?)<\|object_ref_end\|>\s*)?<\|box_start\|>\s*\(\s*("
    + _NUMBER + r")\s*,\s*(" + _NUMBER + r")\s*\)\s*,\s*\(\s*(" + _NUMBER + r")\s*,\s*(" + _NUMBER + r")\s*\)\s*<\|box_end\|>",
    re.S,
)  # fmt: skip


def _brief(value: Any, limit: int = 100) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _loads(text: str) -> Any:
    """JSON, leniently: trailing commas, Python literals (single quotes, True/None)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    cleaned = re.sub(r",\s*([\]}])", r"\1", text)
    try:
        return json.loads(cleaned)
    except ValueError:
        pass
    try:
        return ast.literal_eval(cleaned)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ValueError("not JSON") from None


def _balanced(text: str, start: int) -> int | None:
    """Index just past the bracket that closes the one at ``start`` (strings respected)."""
    pairs = {"[": "]", "{": "}"}
    stack = [pairs[text[start]]]
    quote = None
    i = start + 1
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in pairs:
            stack.append(pairs[ch])
        elif ch in "]}":
            if not stack or ch != stack[-1]:
                return None
            stack.pop()
            if not stack:
                return i + 1
        i += 1
    return None


def _json_values(text: str) -> tuple[list[Any], list[str]]:
    """JSON values in an answer: each code fence, else every top-level ``[...]`` / ``{...}``.
    Returns (values, fragments that looked like JSON but did not parse)."""
    fences = [body for lang, body in _FENCE.findall(text) if lang.lower() in ("", "json", "json5", "javascript", "python")]
    chunks = fences if fences else [text]
    values: list[Any] = []
    bad: list[str] = []
    for chunk in chunks:
        stripped = chunk.strip()
        if not stripped:
            continue
        try:
            values.append(_loads(stripped))
            continue
        except ValueError:
            pass
        i = 0
        while i < len(stripped):
            if stripped[i] in "[{":
                end = _balanced(stripped, i)
                if end is None:  # cut off (max_tokens): read the complete objects inside
                    values_in, bad_in = _objects(stripped[i + 1 :])
                    values.extend(values_in)
                    bad.extend(bad_in)
                    break
                fragment = stripped[i:end]
                try:
                    values.append(_loads(fragment))
                except ValueError:
                    inner, inner_bad = _objects(fragment[1:-1])
                    values.extend(inner)
                    bad.extend(inner_bad or ([fragment] if not inner else []))
                i = end
            else:
                i += 1
    return values, bad


def _objects(text: str) -> tuple[list[Any], list[str]]:
    """Every complete ``{...}`` in ``text`` (a truncated or damaged list), parsed one by one."""
    found: list[Any] = []
    bad: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "{":
            end = _balanced(text, i)
            if end is None:  # the last object was cut off (max_tokens): the complete ones stand
                break
            try:
                found.append(_loads(text[i:end]))
            except ValueError:
                bad.append(text[i:end])
            i = end
        else:
            i += 1
    return found, bad


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        number = float(value.strip())
        if math.isfinite(number):
            return number
    raise ValueError


def _coords(value: Any, n: int) -> tuple[float, ...] | None:
    """``n`` numbers from ``[a, b, ...]``, ``[[a, b], [c, d]]``, ``"a, b, c, d"`` or a dict of
    ``x1/y1/x2/y2`` (``x/y``, ``xmin/ymin/xmax/ymax``); ``None`` when it is not that."""
    if isinstance(value, str):
        parts = re.findall(_NUMBER, value)
        value = parts if len(parts) == n else value
    if isinstance(value, Mapping):
        keys = (("x1", "y1", "x2", "y2"), ("xmin", "ymin", "xmax", "ymax"), ("left", "top", "right", "bottom")) if n == 4 \
            else (("x", "y"), ("x1", "y1"))  # fmt: skip
        for names in keys:
            if all(k in value for k in names):
                value = [value[k] for k in names]
                break
        else:
            return None
    if isinstance(value, (list, tuple)) and len(value) == n // 2 and all(isinstance(v, (list, tuple)) for v in value):
        value = [x for pair in value for x in pair]
    if not isinstance(value, (list, tuple)) or len(value) != n:
        return None
    try:
        return tuple(_number(v) for v in value)
    except (ValueError, TypeError):
        return None


def _label(item: Mapping[str, Any]) -> str | None:
    for key in _LABEL_KEYS:
        value = item.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _extra(item: Mapping[str, Any], used: Iterable[str]) -> dict[str, Any]:
    skip = set(used) | set(_LABEL_KEYS)
    return {k: v for k, v in item.items() if k not in skip}


class _Collector:
    def __init__(self) -> None:
        self.boxes: list[Box] = []
        self.points: list[Point] = []
        self.bad: list[str] = []

    def item(self, item: Mapping[str, Any], label: str | None = None) -> bool:
        """One dict; True when it held a box or a point (or a bad one, recorded)."""
        for key in _BOX_KEYS:
            if key in item:
                coords = _coords(item[key], 4)
                if coords is None:
                    # a 2-number "box" is a point written under the wrong key
                    point = _coords(item[key], 2)
                    if point is not None:
                        self.points.append(Point(*point, label=_label(item) or label, raw=point, extra=_extra(item, [key])))
                        return True
                    self.bad.append(f"{key} {_brief(item[key])} is not 4 numbers [x1, y1, x2, y2] (in {_brief(item)})")
                    return True
                self.boxes.append(_box(coords, _label(item) or label, _extra(item, [key])))
                return True
        for key in _POINT_KEYS:
            if key in item:
                coords = _coords(item[key], 2)
                if coords is None:
                    box = _coords(item[key], 4)
                    if box is not None:
                        self.boxes.append(_box(box, _label(item) or label, _extra(item, [key])))
                        return True
                    self.bad.append(f"{key} {_brief(item[key])} is not 2 numbers [x, y] (in {_brief(item)})")
                    return True
                self.points.append(Point(*coords, label=_label(item) or label, raw=coords, extra=_extra(item, [key])))
                return True
        box = _coords(item, 4)
        if box is not None:  # {"x1": .., "y1": .., "x2": .., "y2": .., "label": ..}
            self.boxes.append(_box(box, _label(item) or label, {}))
            return True
        return False

    def value(self, value: Any, label: str | None = None) -> None:
        if isinstance(value, Mapping):
            if self.item(value, label):
                return
            for key, inner in value.items():
                if isinstance(inner, (list, tuple, Mapping)):
                    # {"signature": [x1, y1, x2, y2]} or {"objects": [...]}
                    as_label = None if any(h in str(key).lower() for h in ("object", "result", "detection", "item")) or any(
                        h in str(key).lower() for h in _CONTAINER_HINT
                    ) else str(key)  # fmt: skip
                    self.value(inner, as_label or label)
            return
        if isinstance(value, (list, tuple)):
            box = _coords(value, 4) if all(not isinstance(v, (list, tuple, Mapping)) for v in value) else None
            if box is not None:
                self.boxes.append(_box(box, label, {}))
                return
            point = _coords(value, 2) if len(value) == 2 and all(not isinstance(v, (list, tuple, Mapping)) for v in value) else None
            if point is not None:
                self.points.append(Point(*point, label=label, raw=point))
                return
            for inner in value:
                if isinstance(inner, (list, tuple, Mapping)):
                    self.value(inner, label)
                # other scalars (a stray "[1]" in prose) hold no coordinates: nothing to read


def _box(coords: tuple[float, ...], label: str | None, extra: dict[str, Any]) -> Box:
    x1, y1, x2, y2 = coords
    return Box(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2), label=label, raw=coords, extra=extra)


def _xml(text: str, found: _Collector) -> bool:
    hit = False
    for attrs, inner in _XML_POINTS.findall(text):
        values = dict(_XML_ATTR.findall(attrs))
        label = values.get("alt") or (inner.strip() or None)
        index = 1
        while f"x{index}" in values and f"y{index}" in values:
            try:
                x, y = _number(values[f"x{index}"]), _number(values[f"y{index}"])
            except ValueError:
                found.bad.append(f"<points {attrs.strip()}>: x{index}/y{index} are not numbers")
                break
            found.points.append(Point(x, y, label=label, raw=(x, y)))
            index += 1
            hit = True
        if "x" in values and "y" in values and index == 1:
            try:
                x, y = _number(values["x"]), _number(values["y"])
                found.points.append(Point(x, y, label=label, raw=(x, y)))
                hit = True
            except ValueError:
                found.bad.append(f"<point {attrs.strip()}>: x/y are not numbers")
    for match in _SPECIAL_BOX.finditer(text):
        label = (match.group(1) or "").strip() or None
        coords = tuple(float(match.group(i)) for i in range(2, 6))
        found.boxes.append(_box(coords, label, {}))
        hit = True
    return hit


def parse_grounding(text: str) -> tuple[list[Box], list[Point]]:
    """Boxes and points in a model's answer, in the model's own coordinates (not mapped yet).

    Read: JSON in code fences (or bare JSON in the text), as a list of objects or a single object,
    with ``bbox_2d`` / ``bbox`` / ``box_2d`` / ``box`` (4 numbers, or two ``[x, y]`` pairs, or an
    ``x1..y2`` dict) and ``point_2d`` / ``point`` (2 numbers), a label under ``label`` (or
    ``name``, ``category``, ...), containers such as ``{"objects": [...]}``, label-keyed dicts
    ``{"signature": [x1, y1, x2, y2]}``, bare ``[x1, y1, x2, y2]`` lists; a list cut off by
    ``max_tokens`` gives its complete objects. Also Qwen2.5-VL's XML points
    (``<points x1=".." y1=".." alt="..">``) and ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>``.

    Raises :class:`GroundingParseError` naming what could not be read: an item whose coordinates
    are not numbers, JSON that does not parse, or an answer with no boxes or points at all (an
    empty JSON list ``[]`` is an answer: nothing found).
    """
    if not isinstance(text, str):
        raise TypeError(f"expected the answer text, got {type(text).__name__}")
    found = _Collector()
    values, bad_json = _json_values(text)
    for value in values:
        found.value(value)
    xml = _xml(text, found)
    problems = found.bad + [f"not valid JSON: {_brief(b)}" for b in bad_json]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise GroundingParseError(f"could not parse the grounding answer: {problems[0]}{more}", text=text)
    if not found.boxes and not found.points:
        empty = any(v == [] or v == {} for v in values)
        if empty:
            return [], []
        if values:
            raise GroundingParseError(
                f"the answer's JSON holds no box (bbox_2d) or point (point_2d): {_brief(values[0])}", text=text
            )
        if not xml:
            raise GroundingParseError(f"no boxes or points in the answer (no JSON found): {_brief(text)!r}", text=text)
    return found.boxes, found.points


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
    from .chat_media import prepare_chat_media

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
    from .chat_media import aprepare_chat_media

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


# ---------------------------------------------------------------------------------- drawing

#: Saturated colours that stay visible on white scans and on photos (each label its own).
PALETTE = (
    (230, 25, 75), (0, 110, 220), (0, 150, 70), (235, 120, 0), (145, 30, 180),
    (0, 150, 160), (200, 0, 140), (120, 80, 20), (90, 90, 90), (180, 160, 0),
)  # fmt: skip


def _open_image(image: Any) -> Any:
    from PIL import Image, ImageOps

    if isinstance(image, Image.Image):
        img = image
    elif isinstance(image, (bytes, bytearray, memoryview)):
        img = Image.open(BytesIO(bytes(image)))
    elif isinstance(image, str) and image[:5].lower() == "data:":
        from .media.sources import decode_data_url

        img = Image.open(BytesIO(decode_data_url(image, "image '<data URL>'")[0]))
    elif isinstance(image, (str, Path)):
        img = Image.open(image)
    else:
        raise TypeError(f"draw_boxes needs a PIL image, bytes or a path, got {type(image).__name__}")
    img = ImageOps.exif_transpose(img) or img  # the upright image the sizes were recorded for
    return img.convert("RGB")


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def draw_boxes(
    image: Any,
    boxes: Grounding | Iterable[Box | Point] = (),
    points: Iterable[Point] = (),
    *,
    line_width: int | None = None,
    font_size: int | None = None,
    labels: bool = True,
) -> Any:
    """A copy of ``image`` (PIL image, bytes or path; EXIF orientation applied, as the sizes were
    recorded) with ``boxes`` and ``points`` (or a whole :class:`Grounding`) drawn on it: thin
    outlines, one colour per label, each label on a small tag of its colour. Returns a PIL image."""
    from PIL import ImageDraw

    if isinstance(boxes, Grounding):
        items: list[Box | Point] = [*boxes.boxes, *boxes.points, *points]
    else:
        items = [*boxes, *points]
    img = _open_image(image).copy()
    w, h = img.size
    lw = line_width or max(2, round(min(w, h) / 400))
    fs = font_size or max(12, round(min(w, h) / 45))
    font = _font(fs)
    draw = ImageDraw.Draw(img)
    colours: dict[str | None, tuple[int, int, int]] = {}
    for n, item in enumerate(items):
        key = item.label if item.label is not None else f"#{n}"
        colour = colours.setdefault(key, PALETTE[len(colours) % len(PALETTE)])
        if isinstance(item, Box):
            x1, y1, x2, y2 = item.rounded()
            draw.rectangle((x1, y1, x2, y2), outline=colour, width=lw)
            anchor = (x1, y1)
        else:
            x, y = item.rounded()
            r = max(4, lw * 3)
            draw.ellipse((x - r, y - r, x + r, y + r), outline=colour, width=lw)
            draw.ellipse((x - lw, y - lw, x + lw, y + lw), fill=colour)
            anchor = (x + r, y - r)
        if labels and item.label:
            left, top, right, bottom = draw.textbbox((0, 0), item.label, font=font)
            tw, th = right - left, bottom - top
            pad = max(2, fs // 6)
            tx = min(max(0, anchor[0]), max(0, w - tw - 2 * pad))
            ty = anchor[1] - th - 2 * pad
            if ty < 0:  # no room above: inside the box's top edge
                ty = anchor[1] + lw
            draw.rectangle((tx, ty, tx + tw + 2 * pad, ty + th + 2 * pad), fill=colour)
            draw.text((tx + pad - left, ty + pad - top), item.label, fill=(255, 255, 255), font=font)
    return img
