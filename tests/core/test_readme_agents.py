"""README.md's "Agents that look" section runs as written against the local DashScope server, and
its picture (docs/grounding.png) is what ground() and draw_boxes() make."""

from __future__ import annotations

import base64
import io
import warnings
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from tests.fake_dashscope import Json, completion
from tests.fake_dashscope.messages import content_parts, is_image, part_urls
from tests.fake_dashscope.validation import check_compatible
from tests.support.grounding import contract_page, grounding_responder, readme_picture
from tests.support.pdfs import vector_pdf
from tests.support.readme_sections import python_snippets, section

HEADING = "Agents that look"
SNIPPETS = python_snippets(HEADING)
ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-test-0123456789abcdef"


def test_the_section_shows_each_feature():
    text = section(HEADING)
    for heading in ("### Images returned by tools", "### PDFs and multi-page TIFFs in chat", "### Grounding"):
        assert heading in text
    assert len(SNIPPETS) == 4
    assert "(docs/grounding.png)" in text and "qwen-vl ground contract.png" in text
    assert "come from the documentation" in text and "assumed" in text


def _agent_responder(server):
    def respond(rec):
        if check_compatible(rec, server.upload_area.holds):
            return server.default_reply(rec)
        messages = rec.json["messages"]
        roles = [m["role"] for m in messages]
        if "tool" not in roles:
            return Json(completion(tool_calls=[{"id": "call_1", "name": "screenshot", "arguments": {"page": "dashboard"}}]))
        moved = messages[roles.index("tool") + 1]
        url = [u for p in content_parts(moved) if is_image(p) for u in part_urls(p)][0]
        with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as img:
            red = img.convert("RGB").getpixel((10, 10)) == (255, 0, 0)
        return Json(completion("Yes: the alert in the top left corner is red." if red else "No red alert."))

    return respond


@pytest.mark.parametrize("index", range(len(SNIPPETS)), ids=["tool-images", "pdf-langchain", "pdf-llamaindex", "grounding"])
def test_snippet_runs(index, dashscope, monkeypatch, capsys):
    monkeypatch.setenv("DASHSCOPE_BASE_URL", dashscope.url)
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    cwd = Path.cwd()  # a fresh temporary directory (tests/conftest.py)
    dashboard = Image.new("RGB", (320, 200), "white")
    dashboard.paste((255, 0, 0), (0, 0, 60, 40))
    dashboard.save(cwd / "dashboard.png")
    vector_pdf(cwd / "contract.pdf", 3)
    page, shapes = contract_page()
    page.save(cwd / "contract.png")
    dashscope.responder = {
        0: _agent_responder(dashscope),
        3: grounding_responder(dashscope, shapes, page.size, "relative-1000"),
    }.get(index)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # create_react_agent's deprecation notice
        exec(compile(SNIPPETS[index], f"README.md {HEADING} snippet{index + 1}", "exec"), {"__name__": "__main__"})  # noqa: S102
    out = capsys.readouterr().out
    assert KEY not in out
    bodies = [r.json for r in dashscope.chat_requests]
    if index == 0:
        assert out.strip() == "Yes: the alert in the top left corner is red."
        assert [m["role"] for m in bodies[-1]["messages"]] == ["user", "assistant", "tool", "user"]
    elif index == 1:
        lines = out.splitlines()
        assert lines[0].startswith("I see 2 image(s)")
        assert lines[1].startswith("[(1, ") and "(2, " in lines[1]
    elif index == 2:
        assert out.splitlines()[0].startswith("I see 1 image(s)") and out.splitlines()[1] == "2"
        assert bodies[0]["messages"][0]["content"][0]["text"] == "Document 'contract.pdf' (PDF), page 2 of 3:"
    else:
        lines = out.splitlines()
        assert [line.split()[0] for line in lines] == ["signature", "signature", "stamp"]
        for line, shape in zip(lines, shapes):
            got = tuple(int(v) for v in line.split(" ", 1)[1].strip("()").split(", "))
            assert all(abs(g - t) <= 1 for g, t in zip(got, shape.box))
        with Image.open(cwd / "contract-boxes.png") as drawn:
            assert drawn.size == page.size


def test_the_picture_is_what_ground_and_draw_boxes_make(dashscope, tmp_path):
    committed = ROOT / "docs" / "grounding.png"
    assert committed.stat().st_size < 60_000  # small
    again = tmp_path / "grounding.png"
    found = readme_picture(dashscope, again)
    assert [b.label for b in found.boxes] == ["signature", "signature", "stamp"]
    with Image.open(committed) as a, Image.open(again) as b:
        assert a.size == b.size
        diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB")).convert("L").point(lambda v: 255 if v else 0)
        changed = diff.histogram()[255]
        assert changed <= 0.01 * a.width * a.height  # the same picture (fonts may render a little differently)
