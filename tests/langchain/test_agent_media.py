"""ChatQwenVL with agents that look: a LangGraph agent whose tool returns an image (the server
checks the image arrived in a user message), PDFs in ``file`` blocks (every LangChain shape),
image sizes in ``response_metadata["images"]``, and ``ground()``."""

from __future__ import annotations

import base64
import io
import warnings

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from PIL import Image

from qwen_vl_core import InputValidationError
from qwen_vl_core.grounding import GroundingParseError
from tests.fake_dashscope import Json, completion, data_url_image_size
from tests.fake_dashscope.messages import content_parts, is_image, part_urls
from tests.fake_dashscope.validation import check_compatible
from tests.support.chat import make_model
from tests.support.grounding import assert_close, grounding_responder, png, scene, shapes_for
from tests.support.pdfs import vector_pdf


def _png(colour: str, size: tuple[int, int] = (96, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


COLOURS = {(255, 0, 0): "red", (0, 128, 0): "green", (0, 0, 255): "blue"}


def _looks(url: str) -> str:
    """What the "model" sees in an image: its colour, read from the pixels it was sent."""
    raw = base64.b64decode(url.split(",", 1)[1])
    with Image.open(io.BytesIO(raw)) as img:
        return COLOURS.get(img.convert("RGB").getpixel((img.width // 2, img.height // 2)), "something else")


def agent_server(server, seen: list):
    """Turn 1: call the screenshot tool. Turn 2: answer about the image, which must be in a user
    message after the tool result (DashScope's checks run first, as on the real server)."""

    def respond(rec):
        problem = check_compatible(rec, server.upload_area.holds)
        if problem:
            return server.default_reply(rec)
        body = rec.json
        seen.append(body)
        roles = [m["role"] for m in body["messages"]]
        if "tool" not in roles:
            call = {"id": "call_shot", "name": "take_screenshot", "arguments": {"page": "dashboard"}}
            return Json(completion(tool_calls=[call], model=body["model"]))
        after = body["messages"][roles.index("tool") + 1 :]
        images = [u for m in after if m["role"] == "user" for p in content_parts(m) if is_image(p) for u in part_urls(p)]
        return Json(completion(f"The dashboard screenshot is {_looks(images[0])}.", model=body["model"]))

    return respond


@tool
def take_screenshot(page: str) -> list[dict]:
    """Take a screenshot of a page of the app."""
    return [{"type": "text", "text": f"screenshot of {page}"},
            {"type": "image", "base64": _b64(_png("blue")), "mime_type": "image/png"}]  # fmt: skip


def react_agent(model, tools):
    """LangGraph's prebuilt ReAct agent (``langchain.agents.create_agent`` is the same loop, in a
    package this project does not install)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # create_react_agent's deprecation in favour of langchain.agents
        from langgraph.prebuilt import create_react_agent

        return create_react_agent(model, tools)


def test_a_langgraph_agent_sees_the_image_its_tool_returned(dashscope):
    seen: list = []
    dashscope.responder = agent_server(dashscope, seen)
    agent = react_agent(make_model(dashscope), [take_screenshot])
    state = agent.invoke({"messages": [("user", "Look at the dashboard: what colour is it?")]})
    assert state["messages"][-1].content == "The dashboard screenshot is blue."
    tool_msg = state["messages"][2]
    assert isinstance(tool_msg, ToolMessage) and tool_msg.content[1]["type"] == "image"
    second = seen[1]["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "tool", "user"]
    assert second[2]["content"] == "screenshot of dashboard"  # the tool keeps its text
    assert second[3]["content"][0]["text"] == "Image returned by tool call call_shot (take_screenshot):"
    assert state["messages"][-1].response_metadata["images"][0]["message"] == 2  # the tool message's image


async def test_the_agent_works_async_too(dashscope):
    seen: list = []
    dashscope.responder = agent_server(dashscope, seen)
    agent = react_agent(make_model(dashscope), [take_screenshot])
    state = await agent.ainvoke({"messages": [("user", "What colour is the dashboard?")]})
    assert state["messages"][-1].content == "The dashboard screenshot is blue."


@pytest.mark.parametrize(
    "content",
    [
        [{"type": "image_url", "image_url": {"url": "data:image/png;base64," + _b64(_png("green"))}}],  # Chat Completions
        [{"type": "image", "base64": _b64(_png("green")), "mime_type": "image/png"}],  # LangChain v1
        [{"type": "image", "source_type": "base64", "data": _b64(_png("green")), "mime_type": "image/png"}],  # v0
    ],
)
def test_image_tool_messages_in_every_shape(dashscope, content):
    """What LangChain's standard test_image_tool_message sends, offline."""
    seen: list = []
    dashscope.responder = agent_server(dashscope, seen)
    messages = [
        HumanMessage("What colour is the dashboard?"),
        AIMessage("", tool_calls=[{"id": "call_shot", "name": "take_screenshot", "args": {"page": "x"}}]),
        ToolMessage(content=content, tool_call_id="call_shot"),
    ]
    answer = make_model(dashscope).bind_tools([take_screenshot]).invoke(messages)
    assert answer.content == "The dashboard screenshot is green."
    assert seen[0]["messages"][2]["content"].startswith("[tool call call_shot returned 1 image")


# ---------------------------------------------------------------- PDFs in chat


def _pdf_bytes(tmp_path, pages: int = 3) -> bytes:
    return vector_pdf(tmp_path / "doc.pdf", pages).read_bytes()


def _sent_pages(body: dict) -> list[tuple[int, int]]:
    return [data_url_image_size(u) for m in body["messages"] for p in content_parts(m) if is_image(p) for u in part_urls(p)]


@pytest.mark.parametrize(
    "block",
    [
        lambda pdf: {"type": "file", "base64": _b64(pdf), "mime_type": "application/pdf"},  # v1
        lambda pdf: {"type": "file", "file": {"filename": "doc.pdf", "file_data": "data:application/pdf;base64," + _b64(pdf)}},
        lambda pdf: {"type": "file", "source_type": "base64", "data": _b64(pdf), "mime_type": "application/pdf",
                     "filename": "doc.pdf"},  # v0  # fmt: skip
        lambda pdf: {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": _b64(pdf)}},
    ],
)
def test_pdf_blocks_are_sent_as_page_images(dashscope, tmp_path, block):
    """What LangChain's standard test_pdf_inputs sends (and the v0 and Anthropic shapes), offline."""
    llm = make_model(dashscope)
    answer = llm.invoke([HumanMessage([{"type": "text", "text": "Summarize this document:"}, block(_pdf_bytes(tmp_path))])])
    assert answer.content.startswith("I see 3 image(s)")
    assert len(_sent_pages(dashscope.last_body)) == 3
    assert [r["page"] for r in answer.response_metadata["images"]] == [1, 2, 3]


def test_page_selection_on_the_model_per_call_and_on_the_block(dashscope, tmp_path):
    pdf = vector_pdf(tmp_path / "contract.pdf", 5)
    block = {"type": "file", "path": str(pdf)}
    llm = make_model(dashscope, document_pages="1-2")
    assert [r["page"] for r in llm.invoke([HumanMessage([block])]).response_metadata["images"]] == [1, 2]
    assert [r["page"] for r in llm.invoke([HumanMessage([block])], document_pages=[5]).response_metadata["images"]] == [5]
    on_block = {**block, "pages": "3-4"}
    assert [r["page"] for r in llm.invoke([HumanMessage([on_block])]).response_metadata["images"]] == [3, 4]
    text = dashscope.last_body["messages"][0]["content"][0]["text"]
    assert text == "Document 'contract.pdf' (PDF), pages 3-4 of 5:"


def test_a_pdf_returned_by_a_tool(dashscope, tmp_path):
    """What LangChain's standard test_pdf_tool_message sends, offline: the pages follow in a user message."""
    pdf = _pdf_bytes(tmp_path, 2)
    messages = [
        HumanMessage("Read the report."),
        AIMessage("", tool_calls=[{"id": "c1", "name": "fetch_report", "args": {}}]),
        ToolMessage(content_blocks=[{"type": "file", "base64": _b64(pdf), "mime_type": "application/pdf"}], tool_call_id="c1"),
    ]
    answer = make_model(dashscope).invoke(messages)
    assert answer.content.startswith("I see 2 image(s)")
    body = dashscope.last_body["messages"]
    assert [m["role"] for m in body] == ["user", "assistant", "tool", "user"]
    assert body[2]["content"] == "Document 'document' (PDF), pages 1-2 of 2, one image per page in this order"
    assert body[3]["content"][0]["text"] == "2 images returned by tool call c1 (fetch_report):"


def test_too_many_pages_fail_before_any_request(dashscope, tmp_path):
    pdf = vector_pdf(tmp_path / "long.pdf", 20)
    llm = make_model(dashscope, model="qwen-vl-ocr")
    with pytest.raises(InputValidationError, match=r"20 pages .* more than the 38,192-token context window"):
        llm.invoke([HumanMessage([{"type": "file", "path": str(pdf)}])])
    assert dashscope.chat_requests == []
    assert llm.invoke([HumanMessage([{"type": "file", "path": str(pdf)}])], document_pages="1-5").content


def test_remote_pdf_urls_are_refused_with_a_way_out(dashscope):
    with pytest.raises(InputValidationError, match="download it and pass its bytes"):
        make_model(dashscope).invoke([HumanMessage([{"type": "file", "url": "https://example.com/a.pdf"}])])


# ---------------------------------------------------------------- sizes and grounding


def test_response_metadata_names_each_images_sizes(dashscope):
    big = png(scene(3000, 2000))
    llm = make_model(dashscope)
    msg = HumanMessage([{"type": "image", "base64": _b64(big), "mime_type": "image/png"},
                        {"type": "image_url", "image_url": {"url": "https://example.com/b.png"}}, "Compare"])  # fmt: skip
    answer = llm.invoke([msg])
    first, second = answer.response_metadata["images"]
    assert (first["width"], first["height"]) == (3000, 2000)
    assert first["sent_width"] < 3000 and (first["model_width"], first["model_height"]) == (first["sent_width"], first["sent_height"])
    assert second == {"source": "https://example.com/b.png", "width": None, "height": None, "sent_width": None,
                      "sent_height": None, "model_width": None, "model_height": None, "high_resolution": False,
                      "message": 0}  # fmt: skip
    streamed = None
    for chunk in llm.stream([msg]):
        streamed = chunk if streamed is None else streamed + chunk
    assert streamed.response_metadata["images"] == answer.response_metadata["images"]
    assert "images" not in llm.invoke("no images here").response_metadata


@pytest.mark.parametrize("model, convention", [("qwen3-vl-plus", "relative-1000"), ("qwen-vl-max", "absolute-resized")])
def test_ground_returns_boxes_in_pixels_of_the_original(dashscope, tmp_path, model, convention):
    size = (2000, 1500)
    shapes = shapes_for(*size)
    path = tmp_path / "contract.png"
    path.write_bytes(png(scene(*size, shapes)))
    dashscope.responder = grounding_responder(dashscope, shapes, size, convention)
    llm = make_model(dashscope, model=model)
    found = llm.ground(str(path), "find every signature and stamp")
    assert found.convention == convention and found.image.sent_width < 2000
    assert_close(found, shapes)
    found = llm.ground(str(path), "find every signature and stamp", max_pixels=800_000)
    assert_close(found, shapes, tolerance=1.5 if convention == "absolute-resized" else 1.0)


async def test_aground_and_points(dashscope):
    size = (1200, 900)
    shapes = shapes_for(*size)
    dashscope.responder = grounding_responder(dashscope, shapes, size, "relative-1000", points=True)
    found = await make_model(dashscope).aground(scene(*size, shapes), "each mark", kind="point")
    assert len(found.points) == 3 and found.boxes == []
    assert "point_2d" in dashscope.last_body["messages"][0]["content"][1]["text"]


def test_ground_says_when_the_answer_holds_no_boxes(dashscope):
    dashscope.script(Json(completion("I can't see any signature.")))
    with pytest.raises(GroundingParseError, match="no JSON found"):
        make_model(dashscope).ground(scene(300, 200), "find every signature")
