"""Images returned by tools: the core's one rule (qwen_vl_core.tool_media, applied by
normalize_messages) and the local server refusing image parts outside user messages, as DashScope does."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from qwen_vl_core import BadRequestError, QwenVLClient
from qwen_vl_core.messages import MediaSettings, normalize_messages
from qwen_vl_core.tool_media import move_tool_media
from tests.fake_dashscope.validation import MEDIA_ONLY_IN_USER

KEY = "sk-test-0123456789abcdef"


def png(width: int = 64, height: int = 48, colour: str = "red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, format="PNG")
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def calls(*pairs: tuple[str, str]) -> dict:
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": i, "type": "function", "function": {"name": n, "arguments": "{}"}} for i, n in pairs],
    }


def conversation() -> list[dict]:
    return [
        {"role": "system", "content": "You look at screenshots."},
        {"role": "user", "content": "Open the page and tell me what is on it."},
        calls(("call_1", "screenshot"), ("call_2", "render_page")),
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "image", "base64": b64(png()), "mime_type": "image/png"}]},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "page 3 of 9"}, png(50, 50, "blue"),
                                                                 {"type": "image_url", "image_url": {"url": "https://example.com/p.png"}}]},
        {"role": "user", "content": "And now?"},
    ]  # fmt: skip


def texts(content) -> list:
    return [p.get("text") or p.get("type") or next(iter(p)) for p in content] if isinstance(content, list) else content


def test_tool_images_follow_the_tool_results_in_a_user_message():
    wire = normalize_messages(conversation(), MediaSettings(model="qwen3-vl-plus"))
    roles = [m["role"] for m in wire.messages]
    assert roles == ["system", "user", "assistant", "tool", "tool", "user", "user"]
    first, second, moved = wire.messages[3], wire.messages[4], wire.messages[5]
    assert first == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": "[tool call call_1 returned 1 image (image 1); it follows in the next user message]",
    }
    assert second["content"] == "page 3 of 9"  # the text is kept as it was
    assert texts(moved["content"]) == [
        "Image returned by tool call call_1 (screenshot):",
        "image_url",
        "2 images returned by tool call call_2 (render_page):",
        "image_url",
        "image_url",
    ]
    assert moved["content"][4]["image_url"]["url"] == "https://example.com/p.png"
    # media keep their order in the request: what the uploads and the token estimate walk
    assert [m.source for m in wire.media] == ["<data URL>", "<bytes>", "https://example.com/p.png"]


def test_native_mode_uses_native_parts():
    wire = normalize_messages(conversation()[:5], MediaSettings(model="qwen3-vl-plus"), "native")
    assert [m["role"] for m in wire.messages] == ["system", "user", "assistant", "tool", "tool", "user"]
    assert wire.messages[3]["content"] == [{"text": "[tool call call_1 returned 1 image (image 1); it follows in the next user message]"}]
    assert wire.messages[5]["content"][0] == {"text": "Image returned by tool call call_1 (screenshot):"}
    assert "image" in wire.messages[5]["content"][1]


def test_file_names_name_the_images_and_text_only_tools_are_untouched(tmp_path):
    path = tmp_path / "chart.png"
    path.write_bytes(png())
    messages = [
        {"role": "user", "content": "go"},
        calls(("a", "plot"), ("b", "lookup")),
        {"role": "tool", "tool_call_id": "a", "content": [{"type": "image", "path": str(path)}]},
        {"role": "tool", "tool_call_id": "b", "content": "42"},
    ]
    wire = normalize_messages(messages, MediaSettings(model="qwen3-vl-plus"))
    assert [m["role"] for m in wire.messages] == ["user", "assistant", "tool", "tool", "user"]
    assert "(chart.png)" in wire.messages[2]["content"]
    assert wire.messages[3] == {"role": "tool", "tool_call_id": "b", "content": "42"}
    assert texts(wire.messages[4]["content"]) == ["Image returned by tool call a (plot):", "image_url"]


def test_requests_without_tool_media_are_unchanged():
    messages = [{"role": "user", "content": [png(), "hi"]}, calls(("a", "f")), {"role": "tool", "tool_call_id": "a", "content": "ok"}]
    wire = normalize_messages(messages, MediaSettings(model="qwen3-vl-plus"))
    assert [m["role"] for m in wire.messages] == ["user", "assistant", "tool"]
    before = [dict(m) for m in wire.messages]
    move_tool_media(wire.messages, wire.media)
    assert wire.messages == before


def test_videos_from_tools_move_too():
    messages = [calls(("v", "clip")), {"role": "tool", "tool_call_id": "v", "content": [{"type": "video_url", "video_url": {"url": "https://example.com/a.mp4"}}]}]
    wire = normalize_messages(messages, MediaSettings(model="qwen3-vl-plus"))
    assert wire.messages[1]["content"] == "[tool call v returned 1 video (video 1); it follows in the next user message]"
    assert texts(wire.messages[2]["content"]) == ["Video returned by tool call v (clip):", "video_url"]


# ---------------------------------------------------------------- the local server, as DashScope


def test_the_server_refuses_images_outside_user_messages(dashscope):
    """Without the rule (a raw request), DashScope's 400; the same request through the client passes."""
    import httpx

    body = {
        "model": "qwen3-vl-plus",
        "messages": [
            calls(("c", "shot")),
            {"role": "tool", "tool_call_id": "c", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]},
        ],
    }  # fmt: skip
    resp = httpx.post(dashscope.compatible_url + "/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"})
    assert resp.status_code == 400
    assert MEDIA_ONLY_IN_USER in resp.json()["error"]["message"] and "messages[1] (role 'tool')" in resp.json()["error"]["message"]
    system = {"model": "qwen3-vl-plus", "messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://e.com/a.png"}}]},
                                                       {"role": "user", "content": "hi"}]}  # fmt: skip
    resp = httpx.post(dashscope.compatible_url + "/chat/completions", json=system, headers={"Authorization": f"Bearer {KEY}"})
    assert resp.status_code == 400 and MEDIA_ONLY_IN_USER in resp.text
    with QwenVLClient(api_key=KEY, base_url=dashscope.url, max_retries=0) as client:
        result = client.chat(body["messages"] + [], model="qwen3-vl-plus")
        assert result.text.startswith("I see 1 image(s)")  # the moved image arrived in the last user message
        with pytest.raises(BadRequestError, match=MEDIA_ONLY_IN_USER):
            client.chat([{"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": "https://e.com/a.png"}}]},
                         {"role": "user", "content": "hi"}], model="qwen3-vl-plus")  # fmt: skip


def test_native_requests_are_checked_too(dashscope):
    import httpx

    body = {"model": "qwen-vl-ocr", "input": {"messages": [{"role": "system", "content": [{"image": "https://e.com/a.png"}]},
                                                           {"role": "user", "content": [{"text": "read"}]}]}}  # fmt: skip
    resp = httpx.post(dashscope.url + "/api/v1/services/aigc/multimodal-generation/generation", json=body,
                      headers={"Authorization": f"Bearer {KEY}"})  # fmt: skip
    assert resp.status_code == 400 and MEDIA_ONLY_IN_USER in resp.text
