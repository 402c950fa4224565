"""A "model" that grounds for tests: it finds shapes drawn at known places in the image it was
*sent* and answers in a model's coordinate convention, as the real server would.

The server side is written from the documentation, not from the package: the image size comes
from the request's data URL, the server's resize is the documented ``smart_resize`` (patch-size
multiples, pixel count between the floor and the cap; ``vl_high_resolution_images`` raises the
cap to 16384 tokens, ``max_pixels`` lowers it otherwise), and the answer is integers, as models
write them:

* ``relative-1000`` (Qwen3-VL): ``round(x / width * 1000)``;
* ``absolute-resized`` (Qwen2.5-VL): ``round(x * resized_width / width)``, pixels of the resized image.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw

from tests.fake_dashscope import Json, completion, data_url_image_size
from tests.fake_dashscope.messages import content_parts, is_image, part_urls
from tests.fake_dashscope.validation import check_compatible

#: (patch, token cap) per model, as the documentation gives them.
GEOMETRY = {"qwen3-vl-plus": (32, 2560), "qwen3-vl-flash": (32, 2560), "qwen-vl-max": (32, 2560), "qwen2.5-vl-72b-instruct": (28, 1280),
            "my-finetune": (32, 2560)}  # fmt: skip
HIGH_RES_TOKENS = 16384
MIN_TOKENS = 4


@dataclass(frozen=True)
class Shape:
    label: str
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels of the original image
    colour: tuple[int, int, int]


def shapes_for(width: int, height: int) -> list[Shape]:
    """Three boxes at known places (fractions of the image), away from the edges and each other."""
    def box(fx1: float, fy1: float, fx2: float, fy2: float) -> tuple[int, int, int, int]:
        return round(fx1 * width), round(fy1 * height), round(fx2 * width), round(fy2 * height)

    return [
        Shape("signature", box(0.08, 0.70, 0.37, 0.83), (20, 20, 160)),
        Shape("signature", box(0.58, 0.71, 0.91, 0.86), (20, 20, 160)),
        Shape("stamp", box(0.63, 0.09, 0.84, 0.31), (200, 30, 30)),
    ]


def scene(width: int, height: int, shapes: list[Shape] | None = None) -> Image.Image:
    """A white page with the shapes filled in and a few lines of "text"."""
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    for i in range(6):
        y = round(height * (0.12 + 0.07 * i))
        draw.line((round(width * 0.08), y, round(width * 0.5), y), fill=(60, 60, 60), width=max(1, height // 300))
    for shape in shapes or shapes_for(width, height):
        draw.rectangle(shape.box, fill=shape.colour)
    return img


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def server_resize(width: int, height: int, model: str, *, high_resolution: bool = False,
                  min_pixels: int | None = None, max_pixels: int | None = None) -> tuple[int, int]:  # fmt: skip
    """The documented smart_resize of an image of ``width`` x ``height`` (returns width, height)."""
    patch, cap = GEOMETRY[model]
    unit = patch * patch
    upper = (HIGH_RES_TOKENS if high_resolution else cap) * unit
    if max_pixels is not None and not high_resolution:
        upper = max(MIN_TOKENS * unit, min(upper, max_pixels))
    lower = MIN_TOKENS * unit if min_pixels is None else min(max(MIN_TOKENS * unit, min_pixels), upper)
    h_bar = max(patch, round(height / patch) * patch)
    w_bar = max(patch, round(width / patch) * patch)
    if h_bar * w_bar > upper:
        beta = math.sqrt(height * width / upper)
        h_bar = max(patch, math.floor(height / beta / patch) * patch)
        w_bar = max(patch, math.floor(width / beta / patch) * patch)
    elif h_bar * w_bar < lower:
        beta = math.sqrt(lower / (height * width))
        h_bar = math.ceil(height * beta / patch) * patch
        w_bar = math.ceil(width * beta / patch) * patch
    return w_bar, h_bar


def _image_part(body: dict) -> dict:
    for message in reversed(body["messages"]):
        if message.get("role") == "user":
            for part in content_parts(message):
                if is_image(part):
                    return part
    raise AssertionError("no image in the last user message")


def answer_for(body: dict, shapes: list[Shape], original: tuple[int, int], convention: str, *, points: bool = False) -> str:
    """What a model of ``convention`` answers about ``shapes`` in the image of this request body."""
    part = _image_part(body)
    sent = data_url_image_size(part_urls(part)[0])
    assert sent is not None, "the image was not sent as a data URL"
    sw, sh = sent
    ow, oh = original
    model = body["model"]
    pixels = {k: part.get(k) for k in ("min_pixels", "max_pixels")}
    rw, rh = server_resize(sw, sh, model, high_resolution=body.get("vl_high_resolution_images") is True, **pixels)
    items = []
    for shape in shapes:
        # where the shape is in the image the server received
        x1, y1, x2, y2 = shape.box[0] * sw / ow, shape.box[1] * sh / oh, shape.box[2] * sw / ow, shape.box[3] * sh / oh
        if convention == "relative-1000":
            coords = [x1 / sw * 1000, y1 / sh * 1000, x2 / sw * 1000, y2 / sh * 1000]
        else:
            coords = [x1 * rw / sw, y1 * rh / sh, x2 * rw / sw, y2 * rh / sh]
        coords = [round(c) for c in coords]
        if points:
            items.append({"point_2d": [round((coords[0] + coords[2]) / 2), round((coords[1] + coords[3]) / 2)],
                          "label": shape.label})  # fmt: skip
        else:
            items.append({"bbox_2d": coords, "label": shape.label})
    return "```json\n" + json.dumps(items, indent=2) + "\n```"


def grounding_responder(server: Any, shapes: list[Shape], original: tuple[int, int], convention: str,
                        *, points: bool = False, seen: list | None = None) -> Any:  # fmt: skip
    """A server responder: DashScope's own checks first, then the grounding answer."""

    def respond(rec: Any) -> Any:
        problem = check_compatible(rec, server.upload_area.holds)
        if problem:
            return server.default_reply(rec)  # answers the error as DashScope would
        if seen is not None:
            seen.append(rec.json)
        return Json(completion(answer_for(rec.json, shapes, original, convention, points=points), model=rec.json["model"]))

    return respond


def assert_close(found: Any, shapes: list[Shape], tolerance: float = 1.0) -> None:
    """Every box found is within ``tolerance`` pixels of its shape, in order."""
    assert [b.label for b in found.boxes] == [s.label for s in shapes]
    for box, shape in zip(found.boxes, shapes):
        got = (box.x1, box.y1, box.x2, box.y2)
        assert all(abs(g - t) <= tolerance for g, t in zip(got, shape.box)), (got, shape.box)


def contract_page(width: int = 900, height: int = 640) -> tuple[Image.Image, list[Shape]]:
    """A small contract page: text lines, two handwritten-looking signatures and a round stamp;
    the shapes are their boxes (what a model should find). Used by the README and its picture."""
    img = Image.new("RGB", (width, height), (250, 249, 245))
    draw = ImageDraw.Draw(img)
    u = width / 900
    draw.text((round(60 * u), round(40 * u)), "SERVICE AGREEMENT", fill=(20, 20, 20))
    for i in range(9):
        y = round((90 + 34 * i) * u)
        draw.line((round(60 * u), y, round((840 - 90 * (i % 3)) * u), y), fill=(120, 120, 120), width=max(1, round(3 * u)))

    def scribble(x0: float, y0: float, w: float, h: float) -> tuple[int, int, int, int]:
        points = []
        for k in range(61):
            t = k / 60
            points.append((x0 + w * t, y0 + h / 2 + h / 2 * math.sin(t * 5.2 * math.pi) * (0.4 + 0.6 * t)))
        draw.line([(round(x * u), round(y * u)) for x, y in points], fill=(25, 35, 120), width=max(2, round(4 * u)), joint="curve")
        xs, ys = [p[0] * u for p in points], [p[1] * u for p in points]
        pad = 3 * u
        return round(min(xs) - pad), round(min(ys) - pad), round(max(xs) + pad), round(max(ys) + pad)

    draw.text((round(60 * u), round(420 * u)), "Client", fill=(20, 20, 20))
    draw.text((round(500 * u), round(420 * u)), "Provider", fill=(20, 20, 20))
    s1 = scribble(70, 450, 250, 70)
    s2 = scribble(510, 455, 230, 60)
    cx, cy, r = 690 * u, 220 * u, 80 * u
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=(190, 30, 40), width=max(2, round(6 * u)))
    draw.ellipse((cx - r * 0.7, cy - r * 0.7, cx + r * 0.7, cy + r * 0.7), outline=(190, 30, 40), width=max(1, round(3 * u)))
    draw.text((round(cx - 22 * u), round(cy - 6 * u)), "PAID", fill=(190, 30, 40))
    stamp = (round(cx - r), round(cy - r), round(cx + r), round(cy + r))
    shapes = [Shape("signature", s1, (0, 0, 0)), Shape("signature", s2, (0, 0, 0)), Shape("stamp", stamp, (0, 0, 0))]
    return img, shapes


def readme_picture(server: Any, path: Any) -> Any:
    """docs/grounding.png: the contract page, grounded through ChatQwenVL against ``server`` (which
    answers as Qwen3-VL would), the boxes drawn with draw_boxes. Returns the Grounding."""
    from langchain_qwen_vl import ChatQwenVL
    from qwen_vl_core.grounding import draw_boxes

    page, shapes = contract_page()
    server.responder = grounding_responder(server, shapes, page.size, "relative-1000")
    llm = ChatQwenVL(model="qwen3-vl-plus", api_key="sk-test-0123456789abcdef", base_url=server.url, max_retries=0)
    found = llm.ground(page, "find every signature and the stamp")
    draw_boxes(page, found).save(path, optimize=True)
    return found
