"""Every input form ChatQwenVL accepts, checked on the wire body the local server received."""

from __future__ import annotations

import base64

import pytest
from tests.support.chat import KEY, MP4_BYTES, b64, data_url, make_model, png_bytes, user_parts
from langchain_core.messages import HumanMessage, SystemMessage
from qwen_vl_core import InputValidationError
from qwen_vl_core.tokens import image_tokens

PNG = png_bytes(64, 48)
PNG_URL = data_url(PNG)


def _ask(server, *parts, **model_kwargs):
    llm = make_model(server, **model_kwargs)
    reply = llm.invoke([HumanMessage(content=[*parts, {"type": "text", "text": "describe"}])])
    return reply, user_parts(server.last_body)


def _decoded(url: str) -> bytes:
    assert url.startswith("data:")
    return base64.b64decode(url.split(",", 1)[1])


def test_v1_image_url(dashscope) -> None:
    reply, parts = _ask(dashscope, {"type": "image", "url": "https://example.com/cat.png"})
    assert parts[0] == {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    assert parts[1] == {"type": "text", "text": "describe"}
    assert reply.text.startswith("I see 1 image(s)")


def test_v1_image_base64(dashscope) -> None:
    _, parts = _ask(dashscope, {"type": "image", "base64": b64(PNG), "mime_type": "image/png"})
    assert parts[0]["type"] == "image_url"
    assert _decoded(parts[0]["image_url"]["url"]) == PNG


def test_v1_video_url_and_base64(dashscope) -> None:
    reply, parts = _ask(
        dashscope,
        {"type": "video", "url": "https://example.com/clip.mp4"},
        {"type": "video", "base64": b64(MP4_BYTES), "mime_type": "video/mp4"},
    )
    assert parts[0] == {"type": "video_url", "video_url": {"url": "https://example.com/clip.mp4"}}
    assert parts[1]["type"] == "video_url"
    assert parts[1]["video_url"]["url"] == "data:video/mp4;base64," + b64(MP4_BYTES)
    assert "2 video(s)" in reply.text


def test_openai_image_url_and_video_url(dashscope) -> None:
    _, parts = _ask(
        dashscope,
        {"type": "image_url", "image_url": {"url": PNG_URL, "detail": "high"}},
        {"type": "video_url", "video_url": {"url": "https://example.com/v.mp4"}, "fps": 1},
    )
    assert _decoded(parts[0]["image_url"]["url"]) == PNG
    assert parts[0]["image_url"]["detail"] == "high"
    assert parts[1] == {"type": "video_url", "video_url": {"url": "https://example.com/v.mp4"}, "fps": 1}


def test_frame_list(dashscope) -> None:
    frames = [data_url(png_bytes(64, 48, (i * 40, 0, 0))) for i in range(4)]
    reply, parts = _ask(dashscope, {"type": "video", "video": frames, "fps": 2})
    assert parts[0]["type"] == "video" and parts[0]["fps"] == 2
    assert [_decoded(u) for u in parts[0]["video"]] == [_decoded(f) for f in frames]
    assert reply.usage_metadata["input_token_details"]["video"] > 0


def test_native_parts(dashscope) -> None:
    _, parts = _ask(dashscope, {"image": "https://example.com/n.png"}, {"video": "https://example.com/n.mp4"})
    assert parts[0] == {"type": "image_url", "image_url": {"url": "https://example.com/n.png"}}
    assert parts[1] == {"type": "video_url", "video_url": {"url": "https://example.com/n.mp4"}}


def test_local_path_and_file_uri(dashscope, tmp_path) -> None:
    photo = tmp_path / "photo one.png"
    photo.write_bytes(PNG)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(MP4_BYTES)
    _, parts = _ask(
        dashscope,
        {"type": "image_url", "image_url": {"url": str(photo)}},
        {"type": "image", "url": photo.as_uri()},
        {"image": str(photo)},
        {"type": "video", "url": clip.as_uri()},
    )
    assert [_decoded(p["image_url"]["url"]) for p in parts[:3]] == [PNG, PNG, PNG]
    assert parts[3]["video_url"]["url"] == "data:video/mp4;base64," + b64(MP4_BYTES)


def test_v0_blocks(dashscope) -> None:
    _, parts = _ask(
        dashscope,
        {"type": "image", "source_type": "base64", "data": b64(PNG), "mime_type": "image/png"},
        {"type": "image", "source_type": "url", "url": "https://example.com/v0.png"},
    )
    assert _decoded(parts[0]["image_url"]["url"]) == PNG
    assert parts[1]["image_url"]["url"] == "https://example.com/v0.png"


def test_media_settings_reach_the_wire(dashscope) -> None:
    frames = [PNG_URL] * 4
    _, parts = _ask(
        dashscope,
        {"type": "image", "url": "https://example.com/a.png"},
        {"type": "video", "video": frames},
        min_pixels=3136,
        max_pixels=1_003_520,
        fps=1.5,
        high_resolution=False,
    )
    assert parts[0]["min_pixels"] == 3136 and parts[0]["max_pixels"] == 1_003_520
    assert parts[1]["fps"] == 1.5
    assert dashscope.last_body["vl_high_resolution_images"] is False


def test_nothing_dashscope_only_is_sent_unless_asked(dashscope) -> None:
    make_model(dashscope).invoke("hi")
    body = dashscope.last_body
    assert set(body) == {"model", "messages"}


def test_image_usage_matches_the_documented_formula(dashscope) -> None:
    big = png_bytes(1000, 700)
    reply, _ = _ask(dashscope, {"type": "image", "base64": b64(big), "mime_type": "image/png"})
    assert reply.usage_metadata["input_token_details"]["image"] == image_tokens(1000, 700, "qwen3-vl-plus")


def test_large_local_video_is_uploaded_to_temporary_storage(dashscope, tmp_path) -> None:
    clip = tmp_path / "big.mp4"
    clip.write_bytes(MP4_BYTES + b"\x00" * (8 * 1024 * 1024))  # base64 would exceed the 10 MB data-URL limit
    reply, parts = _ask(dashscope, {"type": "video", "url": str(clip)})
    url = parts[0]["video_url"]["url"]
    assert url.startswith("oss://") and url.endswith(".mp4")
    chat = dashscope.chat_requests[-1]
    assert chat.headers["x-dashscope-ossresourceresolve"] == "enable"
    assert dashscope.uploads[url[len("oss://"):]] == clip.read_bytes()
    assert "1 video(s)" in reply.text


def test_local_files_policy(dashscope, tmp_path) -> None:
    photo = tmp_path / "p.png"
    photo.write_bytes(PNG)
    blocked = make_model(dashscope, allow_local_files=False)
    with pytest.raises(InputValidationError, match="local files are disabled"):
        blocked.invoke([HumanMessage(content=[{"type": "image", "url": str(photo)}])])
    elsewhere = make_model(dashscope, allowed_dirs=[str(tmp_path / "inbox")])
    with pytest.raises(InputValidationError, match="outside the allowed directories"):
        elsewhere.invoke([HumanMessage(content=[{"type": "image", "url": str(photo)}])])
    assert dashscope.chat_requests == []  # refused before any request


def test_bad_media_is_refused_before_sending(dashscope) -> None:
    llm = make_model(dashscope)
    with pytest.raises(InputValidationError, match="each side must be more than 10 px"):
        llm.invoke([HumanMessage(content=[{"type": "image", "base64": b64(png_bytes(6, 900)), "mime_type": "image/png"}])])
    with pytest.raises(InputValidationError, match="not supported"):
        llm.invoke([HumanMessage(content=[{"type": "audio", "url": "https://example.com/a.mp3"}])])
    assert dashscope.chat_requests == []


def test_system_and_multi_turn(dashscope) -> None:
    llm = make_model(dashscope)
    first = llm.invoke([SystemMessage("Be terse."), HumanMessage([{"type": "image", "url": PNG_URL}, "What is it?"])])
    llm.invoke([SystemMessage("Be terse."), HumanMessage("hello"), first, HumanMessage("and now?")])
    messages = dashscope.last_body["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2] == {"role": "assistant", "content": first.text}
    assert dashscope.chat_requests[-1].headers["authorization"] == f"Bearer {KEY}"
