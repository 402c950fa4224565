"""QwenVL with agents that look: a FunctionAgent whose tool returns an image (the core moves it
into a user message, the server checks it arrived there), DocumentBlocks sent as page images,
image sizes in ``raw["images"]``, and ``ground()``."""

from __future__ import annotations

import base64
import io

import pytest
from llama_index.core.base.llms.types import ChatMessage, DocumentBlock, ImageBlock, TextBlock
from llama_index.core.tools import FunctionTool
from PIL import Image

from llama_index_qwen_vl import QwenVL
from qwen_vl_core import InputValidationError
from tests.fake_dashscope import Json, Sse, chunks, completion, data_url_image_size
from tests.fake_dashscope.messages import content_parts, is_image, part_urls
from tests.fake_dashscope.validation import check_compatible
from tests.support.grounding import assert_close, grounding_responder, png, scene, shapes_for
from tests.support.pdfs import vector_pdf

KEY = "sk-test-0123456789abcdef"


def _png(colour: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (80, 60), colour).save(buf, format="PNG")
    return buf.getvalue()


def _colour(url: str) -> str:
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as img:
        return {(255, 0, 0): "red", (0, 0, 255): "blue"}.get(img.convert("RGB").getpixel((40, 30)), "grey")


def make_llm(server, **kwargs) -> QwenVL:
    return QwenVL(api_key=KEY, base_url=server.url, max_retries=0, **kwargs)


def agent_server(server, seen: list):
    def respond(rec):
        problem = check_compatible(rec, server.upload_area.holds)
        if problem:
            return server.default_reply(rec)
        body = rec.json
        seen.append(body)
        roles = [m["role"] for m in body["messages"]]
        if "tool" not in roles:
            calls = [{"id": "call_cam", "name": "snapshot", "arguments": {"camera": "door"}}]
            reply = {"tool_calls": calls}
        else:
            after = body["messages"][roles.index("tool") + 1 :]
            urls = [u for m in after if m["role"] == "user" for p in content_parts(m) if is_image(p) for u in part_urls(p)]
            reply = {"text": f"The door camera shows {_colour(urls[0])}."}
        if body.get("stream"):
            return Sse(chunks(reply.get("text"), tool_calls=reply.get("tool_calls")))
        return Json(completion(reply.get("text"), tool_calls=reply.get("tool_calls")))

    return respond


def snapshot(camera: str) -> list:
    """Take a snapshot from a camera."""
    return [TextBlock(text=f"snapshot from {camera}"), ImageBlock(image=_png("red"))]


async def test_a_function_agent_sees_the_image_its_tool_returned(dashscope):
    from llama_index.core.agent.workflow import FunctionAgent

    seen: list = []
    dashscope.responder = agent_server(dashscope, seen)
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(fn=snapshot)], llm=make_llm(dashscope))
    result = await agent.run(user_msg="What does the door camera show?")
    assert str(result) == "The door camera shows red."
    last = seen[-1]["messages"]
    roles = [m["role"] for m in last]
    tool_at = roles.index("tool")
    assert last[tool_at]["content"] == "snapshot from door"
    assert roles[tool_at + 1] == "user"
    assert last[tool_at + 1]["content"][0]["text"] == "Image returned by tool call call_cam (snapshot):"


def test_tool_images_in_a_chat_history(dashscope):
    seen: list = []
    dashscope.responder = agent_server(dashscope, seen)
    from llama_index.core.base.llms.types import ToolCallBlock

    history = [
        ChatMessage(role="user", content="Check the door."),
        ChatMessage(role="assistant", blocks=[ToolCallBlock(tool_call_id="call_cam", tool_name="snapshot", tool_kwargs={})]),
        ChatMessage(role="tool", blocks=[ImageBlock(image=_png("blue"))], additional_kwargs={"tool_call_id": "call_cam"}),
    ]
    response = make_llm(dashscope).chat(history)
    assert response.message.content == "The door camera shows blue."
    assert seen[0]["messages"][2]["content"].startswith("[tool call call_cam returned 1 image")
    assert response.raw["images"][0]["message"] == 2


# ---------------------------------------------------------------- documents


def test_document_blocks_are_sent_as_page_images(dashscope, tmp_path):
    pdf = vector_pdf(tmp_path / "lease.pdf", 4)
    llm = make_llm(dashscope)
    for block in (DocumentBlock(data=pdf.read_bytes(), title="lease.pdf"), DocumentBlock(path=pdf)):
        response = llm.chat([ChatMessage(role="user", blocks=[block, TextBlock(text="Summarize the lease.")])])
        assert response.message.content.startswith("I see 4 image(s)")
        assert [r["page"] for r in response.raw["images"]] == [1, 2, 3, 4]
    content = dashscope.last_body["messages"][0]["content"]
    assert content[0]["text"] == "Document 'lease.pdf' (PDF), pages 1-4 of 4:"
    sizes = [data_url_image_size(p["image_url"]["url"]) for p in content if p["type"] == "image_url"]
    assert len(sizes) == 4 and all(w * h <= 2560 * 32 * 32 for w, h in sizes)


def test_page_selection_as_a_field_and_per_call(dashscope, tmp_path):
    pdf = vector_pdf(tmp_path / "lease.pdf", 6)
    message = ChatMessage(role="user", blocks=[DocumentBlock(path=pdf), TextBlock(text="Who signs?")])
    llm = make_llm(dashscope, document_pages="5-6")
    assert [r["page"] for r in llm.chat([message]).raw["images"]] == [5, 6]
    assert [r["page"] for r in llm.chat([message], document_pages=[2]).raw["images"]] == [2]
    streamed = list(llm.stream_chat([message], document_pages="1"))
    assert [r["page"] for r in streamed[-1].raw["images"]] == [1]


async def test_too_many_pages_fail_before_any_request(dashscope, tmp_path):
    pdf = vector_pdf(tmp_path / "long.pdf", 20)
    llm = make_llm(dashscope, model="qwen-vl-ocr")
    with pytest.raises(InputValidationError, match=r"20 pages .* context window of 'qwen-vl-ocr'"):
        await llm.achat([ChatMessage(role="user", blocks=[DocumentBlock(path=pdf)])])
    assert dashscope.chat_requests == []


def test_a_document_url_is_refused_with_a_way_out(dashscope):
    with pytest.raises(InputValidationError, match="download it and pass its bytes"):
        make_llm(dashscope).chat([ChatMessage(role="user", blocks=[DocumentBlock(url="https://example.com/a.pdf")])])


# ---------------------------------------------------------------- grounding


@pytest.mark.parametrize("model, convention", [("qwen3-vl-plus", "relative-1000"), ("qwen-vl-max", "absolute-resized")])
def test_ground_returns_boxes_in_pixels_of_the_original(dashscope, tmp_path, model, convention):
    size = (2000, 1500)
    shapes = shapes_for(*size)
    path = tmp_path / "form.png"
    path.write_bytes(png(scene(*size, shapes)))
    dashscope.responder = grounding_responder(dashscope, shapes, size, convention)
    found = make_llm(dashscope, model=model).ground(str(path), "find every signature and stamp")
    assert found.image.sent_width < 2000 and found.convention == convention
    assert_close(found, shapes)


async def test_aground_with_high_resolution(dashscope):
    size = (1900, 1300)
    shapes = shapes_for(*size)
    dashscope.responder = grounding_responder(dashscope, shapes, size, "absolute-resized")
    llm = make_llm(dashscope, model="qwen-vl-max", high_resolution=True)
    found = await llm.aground(png(scene(*size, shapes)), "find them")
    assert found.image.high_resolution and (found.image.sent_width, found.image.sent_height) == size
    assert_close(found, shapes)
