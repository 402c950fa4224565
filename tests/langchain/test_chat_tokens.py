"""get_num_tokens_from_messages: image tokens from the core's formula, no downloads."""

from __future__ import annotations

import socket

import pytest
from tests.support.chat import MP4_BYTES, b64, make_model, png_bytes
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool
from qwen_vl_core.tokens import frame_list_tokens, image_tokens, video_tokens
from tests.support.mp4_samples import write_mp4

from qwen_vl_core.estimate import text_tokens


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("token counting must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _count(llm, *parts) -> int:
    return llm.get_num_tokens_from_messages([HumanMessage(content=list(parts))])


def test_text_approximation() -> None:
    assert text_tokens("") == 0
    assert text_tokens("abcd" * 10) == 10
    assert text_tokens("你好世界") == 4


def test_local_image_counts_exactly(dashscope, tmp_path, no_network) -> None:
    llm = make_model(dashscope)
    photo = tmp_path / "p.png"
    photo.write_bytes(png_bytes(1000, 700))
    base = _count(llm, "hi")
    with_image = _count(llm, "hi", {"type": "image", "url": str(photo)})
    assert with_image - base == image_tokens(1000, 700, "qwen3-vl-plus")
    as_b64 = _count(llm, "hi", {"type": "image", "base64": b64(photo.read_bytes()), "mime_type": "image/png"})
    assert as_b64 == with_image
    assert _count(llm, "hi", {"type": "image_url", "image_url": {"url": photo.as_uri()}}) == with_image


def test_model_settings_change_the_count(dashscope, tmp_path, no_network) -> None:
    photo = tmp_path / "big.png"
    photo.write_bytes(png_bytes(3000, 2000))
    default = _count(make_model(dashscope), {"image": str(photo)})
    capped = _count(make_model(dashscope, max_pixels=500_000), {"image": str(photo)})
    high = _count(make_model(dashscope, high_resolution=True), {"image": str(photo)})
    assert capped < default < high
    assert default - _count(make_model(dashscope), "") == image_tokens(3000, 2000, "qwen3-vl-plus")
    qwen25 = _count(make_model(dashscope, model="qwen2.5-vl-72b-instruct"), {"image": str(photo)})
    assert qwen25 != default  # 28-px patches and a lower cap


def test_remote_image_is_not_downloaded_and_counts_the_cap(dashscope, no_network) -> None:
    llm = make_model(dashscope)
    remote = _count(llm, {"type": "image", "url": "https://example.com/unknown.jpg"}) - _count(llm, "")
    assert remote == 2560 + 2  # Qwen3-VL's per-image cap plus the two vision markers
    limited = make_model(dashscope, max_pixels=1024 * 32 * 32)
    assert _count(limited, {"type": "image", "url": "https://example.com/x.jpg"}) - _count(limited, "") == 1024 + 2


def test_frames_videos_tools_and_history(dashscope, tmp_path, no_network) -> None:
    llm = make_model(dashscope)
    frames = [f"data:image/png;base64,{b64(png_bytes(320, 240))}"] * 4
    empty = _count(llm, "")
    assert _count(llm, {"type": "video", "video": frames}) - empty == frame_list_tokens([(320, 240)] * 4, "qwen3-vl-plus")
    clip = tmp_path / "c.mp4"
    clip.write_bytes(MP4_BYTES)  # no moov box: counted as the default 10 s of 1280x720
    assert _count(llm, {"type": "video", "url": str(clip)}) - empty == video_tokens(1280, 720, 10.0, "qwen3-vl-plus")
    probed = write_mp4(tmp_path / "p.mp4", 640, 360, 42.0)  # size and duration read from the header
    assert _count(llm, {"type": "video", "url": str(probed)}) - empty == video_tokens(640, 360, 42.0, "qwen3-vl-plus")

    @tool
    def lookup(sku: str) -> str:
        """Look a product up by SKU."""
        return sku

    history = [SystemMessage("be brief"), HumanMessage("hi"), AIMessage("", tool_calls=[{"id": "1", "name": "lookup", "args": {"sku": "A1"}}])]
    plain = llm.get_num_tokens_from_messages(history)
    assert llm.get_num_tokens_from_messages(history, tools=[lookup]) > plain > llm.get_num_tokens_from_messages(history[:2])
    assert dashscope.chat_requests == []
