"""Boxes and points out of a model answer: JSON in code fences and the loose forms."""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .types import Box, GroundingParseError, Point

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
