"""qwen_vl_core.grounding: answers parsed in their loose forms, and boxes mapped back to the user's
original image for each coordinate convention, after client downscaling, with high_resolution and
with max_pixels: a generated image with shapes at known places, a server that answers from the
image it was sent, and every mapped box within one pixel of the truth."""

from __future__ import annotations

import io
import warnings

import pytest
from PIL import Image

from qwen_vl_core import QwenVLClient, get_capabilities
from qwen_vl_core.errors import InputValidationError
from qwen_vl_core.grounding import (
    Box,
    GroundingParseError,
    ImageRecord,
    Point,
    draw_boxes,
    ground,
    aground,
    grounding_convention,
    grounding_from_answer,
    parse_grounding,
    to_original,
)
from tests.fake_dashscope import Json, completion
from tests.support.grounding import assert_close, grounding_responder, png, scene, server_resize, shapes_for

KEY = "sk-test-0123456789abcdef"


def client_for(server, **kwargs) -> QwenVLClient:
    return QwenVLClient(api_key=KEY, base_url=server.url, max_retries=0, **kwargs)


# ------------------------------------------------------------------------------- the registry


def test_conventions_come_from_the_registry_and_say_when_assumed():
    assert get_capabilities("qwen3-vl-plus").grounding == "relative-1000"
    assert get_capabilities("qwen3-vl-plus").grounding_documented
    assert get_capabilities("qwen3-vl-235b-a22b-instruct").grounding == "relative-1000"
    assert get_capabilities("qwen-vl-max-2025-08-13").grounding == "absolute-resized"
    assert get_capabilities("qwen2.5-vl-72b-instruct").grounding_documented
    assert grounding_convention("qwen3-vl-flash") == ("relative-1000", None)
    assert grounding_convention("qwen-vl-plus") == ("absolute-resized", None)
    conv, note = grounding_convention("qwen3.5-plus")
    assert conv == "relative-1000" and "assumed" in note
    conv, note = grounding_convention("qvq-max")
    assert conv == "absolute-resized" and "assumed" in note
    with pytest.warns(UserWarning, match="my-finetune.*assumed 'relative-1000'"):
        conv, note = grounding_convention("my-finetune")
    assert conv == "relative-1000" and "absolute-resized" in note
    assert grounding_convention("my-finetune", "absolute-resized") == ("absolute-resized", None)
    with pytest.raises(InputValidationError, match="convention must be one of"):
        grounding_convention("qwen3-vl-plus", "pixels")


# ------------------------------------------------------------------------------------- parsing


def test_json_in_a_code_fence():
    boxes, points = parse_grounding(
        'Here they are:\n```json\n[{"bbox_2d": [10, 20, 30, 40], "label": "signature"},\n'
        ' {"point_2d": [5, 6], "label": "stamp"}]\n```\nDone.'
    )
    assert boxes == [Box(10, 20, 30, 40, "signature", (10, 20, 30, 40))]
    assert points == [Point(5, 6, "stamp", (5, 6))]


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"bbox_2d": [1, 2, 3, 4], "label": "a"}', [("a", (1, 2, 3, 4))]),  # a single dict, no fence
        ('[{"bbox": [1, 2, 3, 4], "name": "a"}, {"box_2d": [[5, 6], [7, 8]], "category": "b"}]',
         [("a", (1, 2, 3, 4)), ("b", (5, 6, 7, 8))]),
        ('{"objects": [{"bbox_2d": [1, 2, 3, 4], "label": "a"}]}', [("a", (1, 2, 3, 4))]),
        ('{"signature": [1, 2, 3, 4], "stamp": [5, 6, 7, 8]}', [("signature", (1, 2, 3, 4)), ("stamp", (5, 6, 7, 8))]),
        ('[[1, 2, 3, 4], [5, 6, 7, 8]]', [(None, (1, 2, 3, 4)), (None, (5, 6, 7, 8))]),
        ("```json\n[{'bbox_2d': [1, 2, 3, 4], 'label': 'a'},]\n```", [("a", (1, 2, 3, 4))]),  # Python quotes, trailing comma
        ('[{"bbox_2d": ["1", "2", "3", "4"], "label": "a"}]', [("a", (1, 2, 3, 4))]),
        ('[{"x1": 1, "y1": 2, "x2": 3, "y2": 4, "label": "a"}]', [("a", (1, 2, 3, 4))]),
        ('[{"bbox_2d": [30, 40, 10, 20], "label": "a"}]', [("a", (10, 20, 30, 40))]),  # corners swapped
        ("<|object_ref_start|>cat<|object_ref_end|><|box_start|>(1,2),(3,4)<|box_end|>", [("cat", (1, 2, 3, 4))]),
        ("```json\n[{\"bbox_2d\": [1, 2, 3, 4], \"label\": \"a\"},\n {\"bbox_2d\": [5, 6, 7, 8], \"label\": \"b\"},\n {\"bbox_2d\": [9,",
         [("a", (1, 2, 3, 4)), ("b", (5, 6, 7, 8))]),  # cut off at max_tokens: the complete objects
    ],
)
def test_loose_forms(text, expected):
    boxes, points = parse_grounding(text)
    assert [(b.label, (b.x1, b.y1, b.x2, b.y2)) for b in boxes] == expected
    assert points == []


def test_points_in_json_and_in_qwen25_xml():
    _, points = parse_grounding('[{"point_2d": [10, 20], "label": "cup"}, {"point": {"x": 1, "y": 2}}]')
    assert [(p.label, p.x, p.y) for p in points] == [("cup", 10, 20), (None, 1, 2)]
    _, points = parse_grounding('<points x1="10" y1="20" x2="30" y2="40" alt="cups">cups</points>')
    assert [(p.label, p.x, p.y) for p in points] == [("cups", 10, 20), ("cups", 30, 40)]


def test_extra_keys_are_kept():
    boxes, _ = parse_grounding('[{"bbox_2d": [1, 2, 3, 4], "label": "a", "confidence": 0.9}]')
    assert boxes[0].extra == {"confidence": 0.9}


def test_empty_list_means_nothing_found():
    assert parse_grounding("```json\n[]\n```") == ([], [])


@pytest.mark.parametrize(
    "text, match",
    [
        ("I could not find any signature.", r"no boxes or points in the answer \(no JSON found\): 'I could not"),
        ('[{"bbox_2d": [1, 2, "x", 4], "label": "a"}]', r"bbox_2d \[1, 2, \"x\", 4\] is not 4 numbers"),
        ('[{"point_2d": [1], "label": "a"}]', r"point_2d \[1\] is not 2 numbers"),
        ('{"answer": "two signatures"}', r"JSON holds no box \(bbox_2d\) or point"),
        ('```json\n[{"bbox_2d": [1, 2, 3, 4] "label": "a"}]\n```', r"not valid JSON"),
    ],
)
def test_errors_name_what_could_not_be_parsed(text, match):
    with pytest.raises(GroundingParseError, match=match) as info:
        parse_grounding(text)
    assert info.value.text == text
    assert isinstance(info.value, ValueError)


# ------------------------------------------------------------------------------------- mapping


def test_relative_coordinates_scale_by_the_original_size_and_clamp():
    record = ImageRecord("a.png", 2000, 1000, 1600, 800, 1600, 800)
    boxes, points, notes = to_original([Box(100, 200, 500, 1010)], [Point(500, 500)], record, "relative-1000")
    assert (boxes[0].x1, boxes[0].y1, boxes[0].x2, boxes[0].y2) == (200, 200, 1000, 1000)
    assert (points[0].x, points[0].y) == (1000, 500)
    assert "clamped" in notes[0]


def test_absolute_coordinates_scale_by_the_servers_resize():
    record = ImageRecord.sized(1000, 700, "qwen-vl-max")  # the server resizes to 992 x 704
    assert (record.model_width, record.model_height) == (992, 704)
    boxes, _, notes = to_original([Box(496, 352, 992, 704)], [], record, "absolute-resized")
    assert boxes[0].rounded() == (500, 350, 1000, 700) and notes == []


def test_a_url_image_has_no_size_to_map_to():
    record = ImageRecord("https://example.com/a.png", None, None)
    with pytest.raises(InputValidationError, match="not downloaded"):
        to_original([Box(1, 2, 3, 4)], [], record, "relative-1000")


def test_record_round_trips_through_metadata_dicts():
    record = ImageRecord("a.png", 10, 20, 10, 20, 32, 32, message=0)
    assert ImageRecord.from_dict(record.to_dict()) == record
    found = grounding_from_answer('[{"bbox_2d": [0, 0, 500, 500]}]', record.to_dict(), model="qwen3-vl-plus")
    assert found.boxes[0].rounded() == (0, 0, 5, 10) and found.to_dict()["image"]["source"] == "a.png"


CASES = [
    # model, convention, original size, request options
    ("qwen3-vl-plus", "relative-1000", (2000, 1500), {}),  # 3.0 MP: downscaled by the client
    ("qwen3-vl-plus", "relative-1000", (2000, 1500), {"max_pixels": 600_000}),
    ("qwen3-vl-plus", "relative-1000", (1900, 1300), {"high_resolution": True}),  # sent whole, server rounds
    ("qwen-vl-max", "absolute-resized", (2000, 1500), {}),
    ("qwen-vl-max", "absolute-resized", (1200, 900), {"max_pixels": 600_000}),
    ("qwen-vl-max", "absolute-resized", (1900, 1300), {"high_resolution": True}),
    ("qwen2.5-vl-72b-instruct", "absolute-resized", (1500, 1100), {}),  # 28-px patches, 1280-token cap
    ("qwen2.5-vl-72b-instruct", "absolute-resized", (1000, 700), {"max_pixels": 400_000}),
    ("qwen2.5-vl-72b-instruct", "absolute-resized", (1500, 1100), {"high_resolution": True}),
]


@pytest.mark.parametrize("model, convention, size, options", CASES)
def test_boxes_land_within_one_pixel_of_the_shapes(dashscope, tmp_path, model, convention, size, options):
    shapes = shapes_for(*size)
    path = tmp_path / "page.png"
    path.write_bytes(png(scene(*size, shapes)))
    seen: list = []
    dashscope.responder = grounding_responder(dashscope, shapes, size, convention, seen=seen)
    with client_for(dashscope) as client:
        found = ground(client, str(path), "find every signature and stamp", model=model, **options)
    assert found.convention == convention and found.notes == []
    record = found.image
    assert (record.width, record.height) == size
    sent = (record.sent_width, record.sent_height)
    if options.get("high_resolution"):
        assert sent == size  # nothing to downscale: the server's own rounding is what is undone
    else:
        assert sent[0] < size[0]  # the client downscaled the image before sending it
    assert (record.model_width, record.model_height) == server_resize(*sent, model, **options)
    assert_close(found, shapes)
    body = seen[0]
    assert body["model"] == model and ("vl_high_resolution_images" in body) == bool(options.get("high_resolution"))
    assert "bbox_2d" in body["messages"][0]["content"][1]["text"]


def test_points_are_mapped_too(dashscope, tmp_path):
    size = (1600, 1200)
    shapes = shapes_for(*size)
    dashscope.responder = grounding_responder(dashscope, shapes, size, "absolute-resized", points=True)
    with client_for(dashscope) as client:
        found = ground(client, png(scene(*size, shapes)), "each mark", model="qwen-vl-max", kind="point")
    assert found.boxes == [] and len(found.points) == 3
    for point, shape in zip(found.points, shapes):
        cx, cy = (shape.box[0] + shape.box[2]) / 2, (shape.box[1] + shape.box[3]) / 2
        assert abs(point.x - cx) <= 1.5 and abs(point.y - cy) <= 1.5


def test_exif_rotated_photos_map_to_the_upright_image(dashscope):
    upright = scene(1200, 1600)
    shapes = shapes_for(1200, 1600)
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # stored sideways, EXIF says "rotate 90 CW"
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    stored.save(buf, format="JPEG", quality=95, exif=exif.tobytes())
    dashscope.responder = grounding_responder(dashscope, shapes, (1200, 1600), "relative-1000")
    with client_for(dashscope) as client:
        found = ground(client, buf.getvalue(), "find them", model="qwen3-vl-plus")
    assert (found.image.width, found.image.height) == (1200, 1600)
    assert_close(found, shapes, tolerance=1.5)


async def test_aground(dashscope):
    size = (1000, 800)
    shapes = shapes_for(*size)
    dashscope.responder = grounding_responder(dashscope, shapes, size, "relative-1000")
    with client_for(dashscope) as client:
        found = await aground(client, scene(*size, shapes), "find them", model="qwen3-vl-flash")
    assert_close(found, shapes)


def test_unknown_models_say_which_convention_was_assumed(dashscope):
    size = (800, 600)
    shapes = shapes_for(*size)
    dashscope.responder = grounding_responder(dashscope, shapes, size, "relative-1000")
    with client_for(dashscope) as client, pytest.warns(UserWarning, match="assumed 'relative-1000'"):
        found = ground(client, scene(*size, shapes), "find them", model="my-finetune")
    assert "not in the registry" in found.notes[0]
    assert_close(found, shapes)


def test_a_prose_answer_is_a_parse_error(dashscope):
    dashscope.script(Json(completion("There is no signature on this page.")))
    with client_for(dashscope) as client, pytest.raises(GroundingParseError, match="no JSON found"):
        ground(client, scene(400, 300), "find every signature", model="qwen3-vl-plus")


def test_instruct_false_sends_the_prompt_as_written(dashscope):
    dashscope.script(Json(completion("[]")))
    with client_for(dashscope) as client:
        found = ground(client, scene(400, 300), "Locate the cat, bbox_2d please", model="qwen3-vl-plus", instruct=False)
    assert len(found) == 0
    assert dashscope.last_body["messages"][0]["content"][1]["text"] == "Locate the cat, bbox_2d please"


# ------------------------------------------------------------------------------------- drawing


def test_draw_boxes_labels_and_colours():
    img = Image.new("RGB", (400, 300), "white")
    boxes = [Box(20, 40, 120, 100, "signature"), Box(200, 150, 380, 280, "stamp"), Box(10, 200, 60, 260, "signature")]
    out = draw_boxes(img, boxes, [Point(300, 50, "dot")])
    assert out.size == (400, 300) and img.getpixel((20, 40)) == (255, 255, 255)  # the input is untouched
    c1, c2, c3 = out.getpixel((70, 40)), out.getpixel((290, 280)), out.getpixel((35, 260))
    assert c1 != (255, 255, 255) and c1 != c2 and c1 == c3  # one colour per label
    assert out.getpixel((70, 70)) == (255, 255, 255)  # outlines only: the inside stays readable
    assert out.getpixel((300, 50)) != (255, 255, 255)


def test_draw_boxes_takes_a_result_and_a_path(tmp_path):
    path = tmp_path / "a.png"
    Image.new("RGB", (200, 100), "white").save(path)
    record = ImageRecord.sized(200, 100, "qwen3-vl-plus", source=str(path))
    found = grounding_from_answer('[{"bbox_2d": [100, 100, 500, 900], "label": "x"}]', record, model="qwen3-vl-plus")
    out = found.draw(path)
    assert out.getpixel((20, 50)) != (255, 255, 255)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        draw_boxes(str(path), found, line_width=1, font_size=10, labels=False)
