"""Boxes and points drawn on the image with Pillow."""

from __future__ import annotations

from collections.abc import Iterable
from io import BytesIO
from pathlib import Path
from typing import Any

from .types import Box, Grounding, Point

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
        from ..media.sources import decode_data_url

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
