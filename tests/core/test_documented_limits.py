"""Documented input limits from the registry, newest document first (004 over 003): frame lists, video
length per family, image size per model and input method."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from qwen_vl_core import QwenVLClient
from qwen_vl_core.errors import InputValidationError
from qwen_vl_core.media import MediaOptions, resolve_image
from qwen_vl_core.media.resolve import image_byte_limit
from qwen_vl_core.models import get_capabilities
from tests.support.mp4_samples import write_mp4

MB = 1024 * 1024


@pytest.fixture
def client(api_key):
    with QwenVLClient(api_key=api_key, base_url="http://127.0.0.1:9") as c:
        yield c


def frames(n):
    return [f"https://example.com/frame{i}.jpg" for i in range(n)]


def frame_message(n):
    return [{"role": "user", "content": [{"type": "video", "video": frames(n)}, {"type": "text", "text": "?"}]}]


# ---------------------------------------------------------------- frame lists (003: 4-512, others 4-80)


@pytest.mark.parametrize("model", ["qwen3-vl-plus", "qwen3-vl-flash", "qwen-vl-max", "qwen-vl-plus", "qvq-max", "qwen2.5-vl-72b-instruct"])
def test_qwen3_vl_qwen25_vl_and_qvq_take_512_frames(client, model):
    assert get_capabilities(model).max_video_frames == 512
    client.prepare(frame_message(512), model=model, stream=True)
    with pytest.raises(InputValidationError, match="513 frames"):
        client.prepare(frame_message(513), model=model, stream=True)


@pytest.mark.parametrize("model", ["qwen3.5-plus", "qwen3.5-flash", "qwen3.6-plus"])
def test_other_models_take_80_frames(client, model):
    assert get_capabilities(model).max_video_frames == 80
    client.prepare(frame_message(80), model=model, stream=True)
    with pytest.raises(InputValidationError) as info:
        client.prepare(frame_message(81), model=model, stream=True)
    assert f"81 frames; '{model}' takes 4 to 80 images" in str(info.value)


def test_fewer_than_4_frames_are_refused_and_unknown_models_get_512(client):
    with pytest.raises(InputValidationError, match="4 to 512"):
        client.prepare(frame_message(3), model="qwen3-vl-plus", stream=True)
    client.prepare(frame_message(300), model="my-self-hosted-vlm", stream=True)


# ---------------------------------------------------------------- video length per family


@pytest.mark.parametrize(
    ("model", "minutes"),
    [
        ("qwen3-vl-plus", 60),  # 004 (newer): up to 1 h; 003 said 20 min
        ("qwen3-vl-plus-2025-09-23", 60),
        ("qwen3-vl-flash", 20),  # 003
        ("qwen3-vl-235b-a22b-instruct", 20),
        ("qwen-vl-max", 20),  # 003: qwen-vl-max and snapshots from 2025-04-08
        ("qwen-vl-max-2025-04-08", 20),
        ("qwen-vl-max-2025-01-25", 10),  # 003: other Qwen2.5-VL models
        ("qwen-vl-plus", 10),
        ("qwen2.5-vl-72b-instruct", 10),
        ("qvq-max", 10),  # 003 and 004
        ("qwen3.5-plus", 120),  # 004: up to 2 h
        ("qwen3.6-plus", 120),
    ],
)
def test_video_length_limits(client, tmp_path, model, minutes):
    assert get_capabilities(model).max_video_seconds == minutes * 60
    ok = write_mp4(tmp_path / "ok.mp4", 640, 360, minutes * 60)
    too_long = write_mp4(tmp_path / "long.mp4", 640, 360, minutes * 60 + 1)
    video = lambda p: [{"role": "user", "content": [{"video": str(p)}, {"text": "?"}]}]  # noqa: E731
    client.prepare(video(ok), model=model, stream=True)
    with pytest.raises(InputValidationError, match=f"accepts at most {minutes:g} min"):
        client.prepare(video(too_long), model=model, stream=True)


def test_videos_under_2_s_are_refused_and_unknown_lengths_are_left_to_the_server(client, tmp_path):
    short = write_mp4(tmp_path / "short.mp4", 640, 360, 1.5)
    with pytest.raises(InputValidationError, match="at least 2 s"):
        client.prepare([{"role": "user", "content": [{"video": str(short)}]}], model="qwen3-vl-plus", stream=True)
    # a URL cannot be measured here: it is sent, and DashScope checks it
    client.prepare([{"role": "user", "content": [{"video": "https://example.com/3h.mp4"}]}], model="qvq-max", stream=True)


# ---------------------------------------------------------------- image size per model and input method


def big_jpeg() -> bytes:
    img = Image.frombytes("RGB", (1700, 1700), os.urandom(1700 * 1700 * 3))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=100, subsampling=0)
    data = buf.getvalue()
    assert 10 * MB < len(data) < 20 * MB
    return data


def test_image_limits_per_model_come_from_the_registry():
    assert image_byte_limit("qwen3.5-plus") == image_byte_limit("qwen3.6-plus") == 20 * MB  # 004
    assert image_byte_limit("qwen3-vl-plus") == image_byte_limit("qvq-max") == 10 * MB
    assert image_byte_limit("some-other-model") == 10 * MB


def test_a_12_mb_image_is_uploaded_for_qwen35_and_refused_for_the_others():
    data = big_jpeg()
    keep = MediaOptions(resize=False, upload=True)
    media = resolve_image(data, model="qwen3.5-plus", options=keep)
    assert media.pending is not None and media.url is None  # too big for a data URL: temporary upload
    with pytest.raises(InputValidationError) as info:
        resolve_image(data, model="qwen3-vl-plus", options=keep)
    assert "each image may be at most 10 MB (10485760 bytes) for 'qwen3-vl-plus'" in str(info.value)


def test_a_data_url_stays_under_10_mb_for_every_model():
    data = big_jpeg()
    with pytest.raises(InputValidationError, match="data URL would be"):
        resolve_image(data, model="qwen3.5-plus", options=MediaOptions(resize=False, upload=False))


def test_registry_notes_the_older_document():
    source = (Path(__file__).resolve().parents[2] / "qwen_vl_core" / "models.py").read_text(encoding="utf-8")
    assert "003 said 20 min" in source or "003: 20 min" in source
    assert "003 said 10 MB for all" in source
