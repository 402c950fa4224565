"""Boxes, points, the sizes of one image, and what grounding found (the data types)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import QwenVLError
from ..media import ResolvedMedia
from ..models import GroundingConvention, ModelCapabilities
from ..tokens import image_geometry

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
        from .draw import draw_boxes  # drawing needs Pillow fonts; the types do not

        return draw_boxes(image, self, **kwargs)
