"""QwenVLImageTool against the local DashScope server: answers, directory confinement (outside, ``..``,
symlinks, the working-directory default), other refusals, server errors, async."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from tests.support.chat import Json, completion, make_model, png_bytes
from langchain_core.messages import ToolMessage
from langchain_core.tools import ToolException

from langchain_qwen_vl import ChatQwenVL, QwenVLImageTool

from tests.fake_dashscope import error_body

ANSWER = "The total is 42.60 CNY."
PHOTO = png_bytes(64, 64, (250, 250, 240))  # 64x64: sent unchanged


@pytest.fixture
def folders(tmp_path):
    """allowed/ with a photo, outside/ with another; returns (allowed, outside)."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    (allowed / "receipt.png").write_bytes(PHOTO)
    (outside / "secret.png").write_bytes(PHOTO)
    return allowed, outside


def call(image: str, question: str = "What is the total?", id_: str = "call_1") -> dict:
    return {"type": "tool_call", "id": id_, "name": "look_at_image", "args": {"image": image, "question": question}}


def make_tool(server, allowed: Path | None, **kwargs) -> QwenVLImageTool:
    return QwenVLImageTool(llm=make_model(server), allowed_dirs=None if allowed is None else [allowed], **kwargs)


def test_answers_a_question_about_an_allowed_image(dashscope, folders) -> None:
    allowed, _ = folders
    dashscope.script(Json(completion(ANSWER, request_id="req-look")))
    tool = make_tool(dashscope, allowed)

    msg = tool.invoke(call(str(allowed / "receipt.png")))

    assert isinstance(msg, ToolMessage) and msg.status == "success"
    assert msg.content == ANSWER and msg.tool_call_id == "call_1"
    assert msg.artifact["request_id"] == "req-look" and msg.artifact["usage"]["total_tokens"] > 0
    body = dashscope.last_body
    system, user = body["messages"]
    assert system["role"] == "system" and "cannot see it" in system["content"]
    image, question = user["content"]
    url = image["image_url"]["url"]
    assert url.startswith("data:image/png;base64,") and base64.b64decode(url.split(",", 1)[1]) == PHOTO
    assert question == {"type": "text", "text": "What is the total?"}


def test_plain_args_return_the_answer_text(dashscope, folders) -> None:
    allowed, _ = folders
    dashscope.script(Json(completion(ANSWER)))
    assert make_tool(dashscope, allowed).invoke({"image": str(allowed / "receipt.png"), "question": "Total?"}) == ANSWER


def test_a_url_is_passed_through(dashscope, folders) -> None:
    dashscope.script(Json(completion(ANSWER)))
    make_tool(dashscope, folders[0]).invoke({"image": "https://example.com/cat.jpg", "question": "Which animal?"})
    assert dashscope.last_body["messages"][1]["content"][0]["image_url"]["url"] == "https://example.com/cat.jpg"


def _refused(tool: QwenVLImageTool, image: str) -> str:
    msg = tool.invoke(call(image))
    assert isinstance(msg, ToolMessage) and msg.status == "error", msg
    return msg.content


def test_refuses_a_path_outside_the_allowed_dirs(dashscope, folders) -> None:
    allowed, outside = folders
    text = _refused(make_tool(dashscope, allowed), str(outside / "secret.png"))
    assert "outside the allowed directories" in text and str(allowed) in text
    assert "ask the user" in text
    assert dashscope.requests == []


def test_refuses_a_dotdot_escape(dashscope, folders) -> None:
    allowed, _ = folders
    text = _refused(make_tool(dashscope, allowed), str(allowed / ".." / "outside" / "secret.png"))
    assert "outside the allowed directories" in text and "resolves to" in text
    assert dashscope.requests == []


def test_refuses_a_symlink_escape(dashscope, folders) -> None:
    allowed, outside = folders
    link = allowed / "innocent.png"
    os.symlink(outside / "secret.png", link)
    text = _refused(make_tool(dashscope, allowed), str(link))
    assert "outside the allowed directories" in text and str(outside / "secret.png") not in text  # not leaked
    dir_link = allowed / "more"
    os.symlink(outside, dir_link, target_is_directory=True)
    tool = make_tool(dashscope, allowed)
    assert "outside the allowed directories" in _refused(tool, str(dir_link / "secret.png"))
    assert "outside the allowed directories" in _refused(tool, (dir_link / "secret.png").as_uri())
    assert dashscope.requests == []


def test_refuses_system_files(dashscope, folders) -> None:
    text = _refused(make_tool(dashscope, folders[0]), "/etc/passwd")
    assert "'/etc/passwd'" in text and "outside the allowed directories" in text
    assert dashscope.requests == []


def test_a_file_symlink_is_refused_but_a_folder_link_inside_the_allowed_dirs_is_fine(dashscope, folders) -> None:
    allowed, _ = folders
    (allowed / "sub").mkdir()
    os.symlink(allowed / "receipt.png", allowed / "sub" / "alias.png")
    assert "symbolic link" in _refused(make_tool(dashscope, allowed), str(allowed / "sub" / "alias.png"))
    os.symlink(allowed / "sub", allowed / "again", target_is_directory=True)
    (allowed / "sub" / "real.png").write_bytes((allowed / "receipt.png").read_bytes())
    dashscope.script(Json(completion(ANSWER)))
    assert make_tool(dashscope, allowed).invoke(call(str(allowed / "again" / "real.png"))).status == "success"


def test_default_allowed_dir_is_the_working_directory(dashscope, tmp_path) -> None:
    cwd = Path.cwd()  # a fresh temporary directory (tests/conftest.py), inside tmp_path
    (cwd / "here.png").write_bytes(PHOTO)
    (tmp_path / "there.png").write_bytes(PHOTO)
    tool = make_tool(dashscope, None)
    assert tool.allowed_dirs == [str(cwd.resolve())]
    assert str(cwd.resolve()) in tool.description

    dashscope.script(Json(completion(ANSWER)))
    assert tool.invoke(call("here.png")).content == ANSWER  # relative to the working directory
    assert "outside the allowed directories" in _refused(tool, str(tmp_path / "there.png"))
    assert "outside the allowed directories" in _refused(tool, "../there.png")
    assert len(dashscope.chat_requests) == 1
    os.chdir(tmp_path)  # the folder was fixed when the tool was made
    assert "outside the allowed directories" in _refused(tool, "there.png")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.png", None, "no such file"),
        ("notes.txt", b"just some text, not a picture", "accepted image formats"),
        ("tiny.png", png_bytes(8, 8), "each side must be more than 10 px"),
        ("folder", "dir", "is a directory"),
    ],
)
def test_refuses_files_that_are_not_usable_images(name, content, message, dashscope, folders) -> None:
    allowed, _ = folders
    if content == "dir":
        (allowed / name).mkdir()
    elif content is not None:
        (allowed / name).write_bytes(content)
    text = _refused(make_tool(dashscope, allowed), str(allowed / name))
    assert message in text and text.startswith("Cannot look at that image:")
    assert dashscope.requests == []


def test_urls_and_local_files_can_be_disabled(dashscope, folders) -> None:
    allowed, _ = folders
    no_urls = make_tool(dashscope, allowed, allow_urls=False)
    text = _refused(no_urls, "https://example.com/cat.jpg")
    assert "URLs are not allowed" in text and str(allowed) in text
    assert "http(s) URL" not in no_urls.description
    no_files = make_tool(dashscope, allowed, allow_local_files=False)
    text = _refused(no_files, str(allowed / "receipt.png"))
    assert "local files are not allowed" in text and "http(s) URL" in text
    assert "local file path" not in no_files.description
    assert dashscope.requests == []


def test_empty_arguments_are_refused(dashscope, folders) -> None:
    tool = make_tool(dashscope, folders[0])
    assert "No image given" in _refused(tool, "  ")
    msg = tool.invoke(call(str(folders[0] / "receipt.png"), question=""))
    assert msg.status == "error" and "No question given" in msg.content
    assert dashscope.requests == []


def test_a_server_error_becomes_a_message(dashscope, folders) -> None:
    allowed, _ = folders
    dashscope.script(
        Json(error_body("Input data may contain inappropriate content.", "data_inspection_failed", request_id="req-bad"),
             400)
    )
    msg = make_tool(dashscope, allowed).invoke(call(str(allowed / "receipt.png")))
    assert msg.status == "error"
    assert msg.content.startswith(f"Could not get an answer about {str(allowed / 'receipt.png')!r}")
    assert "inappropriate content" in msg.content and "req-bad" in msg.content


def test_handle_tool_error_false_raises(dashscope, folders) -> None:
    allowed, outside = folders
    tool = make_tool(dashscope, allowed, handle_tool_error=False)
    with pytest.raises(ToolException, match="outside the allowed directories"):
        tool.invoke(call(str(outside / "secret.png")))


async def test_ainvoke(dashscope, folders, monkeypatch) -> None:
    allowed, outside = folders

    def no_sync(*args, **kwargs):
        raise AssertionError("the sync path was used")

    monkeypatch.setattr(ChatQwenVL, "_generate", no_sync)
    dashscope.script(Json(completion(ANSWER)))
    tool = make_tool(dashscope, allowed)
    msg = await tool.ainvoke(call(str(allowed / "receipt.png")))
    assert msg.content == ANSWER and msg.status == "success"
    refused = await tool.ainvoke(call(str(outside / "secret.png")))
    assert refused.status == "error" and "outside the allowed directories" in refused.content
    assert len(dashscope.chat_requests) == 1


def test_construction(dashscope, api_key, folders) -> None:
    tool = QwenVLImageTool(
        model="qwen3-vl-flash", api_key=api_key, base_url=dashscope.url, allowed_dirs=str(folders[0])
    )
    assert tool.llm.model == "qwen3-vl-flash" and tool.allowed_dirs == [str(folders[0].resolve())]
    assert tool.name == "look_at_image" and set(tool.args) == {"image", "question"}
    assert api_key not in repr(tool)
    with pytest.raises(TypeError, match="either llm or ChatQwenVL settings"):
        QwenVLImageTool(llm=make_model(dashscope), model="qwen3-vl-flash")
    custom = QwenVLImageTool(llm=make_model(dashscope), name="inspect_photo", description="Look at photos.")
    assert (custom.name, custom.description) == ("inspect_photo", "Look at photos.")
