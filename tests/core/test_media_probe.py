from qwen_vl_core.media import resolve_video
from tests.support.mp4_samples import mp4_bytes, write_mp4


def test_resolve_video_reads_size_and_duration_from_the_header(tmp_path):
    media = resolve_video(str(write_mp4(tmp_path / "clip.mp4", 1920, 1080, 12.5)))
    assert (media.width, media.height, media.duration_s) == (1920, 1080, 12.5)
    assert media.url.startswith("data:video/mp4;base64,")


def test_rotated_video_reports_display_size():
    media = resolve_video(mp4_bytes(1920, 1080, 3.0, rotate=True))
    assert (media.width, media.height) == (1080, 1920)


def test_video_without_moov_has_unknown_duration():
    media = resolve_video(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64)
    assert media.duration_s is None and media.width is None


# ------------------------------------------------------------------ duration limits, checked before sending

import pytest  # noqa: E402

from qwen_vl_core import InputValidationError, QwenVLClient  # noqa: E402


def _video_message(path):
    return [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": str(path)}}, "Summarise."]}]


@pytest.mark.parametrize(
    ("model", "seconds", "match"),
    [
        ("qwen3-vl-plus", 1.5, r"1\.5 s long; videos must be at least 2 s"),
        ("qwen3-vl-flash", 21 * 60, r"21\.0 min long; 'qwen3-vl-flash' accepts at most 20 min"),
        ("qwen3-vl-plus", 61 * 60, r"61\.0 min long; 'qwen3-vl-plus' accepts at most 60 min"),  # 004: up to 1 h
        ("qvq-max", 11 * 60, r"'qvq-max' accepts at most 10 min"),
        ("qwen-vl-plus", 11 * 60, r"'qwen-vl-plus' accepts at most 10 min"),
    ],
)
def test_video_duration_limits(dashscope, api_key, tmp_path, model, seconds, match):
    clip = write_mp4(tmp_path / "clip.mp4", 640, 360, seconds)
    with QwenVLClient(api_key=api_key, base_url=dashscope.url) as client:
        with pytest.raises(InputValidationError, match=match):
            client.chat(_video_message(clip), model=model)
    assert dashscope.requests == []


@pytest.mark.parametrize(("model", "seconds"), [("qwen-vl-max", 19 * 60), ("qwen3.5-plus", 90 * 60), ("my-model", 5 * 3600)])
def test_videos_within_the_limit_or_for_unknown_models_are_sent(dashscope, api_key, tmp_path, model, seconds):
    clip = write_mp4(tmp_path / "clip.mp4", 640, 360, seconds)
    with QwenVLClient(api_key=api_key, base_url=dashscope.url) as client:
        client.chat(_video_message(clip), model=model)
    assert dashscope.chat_requests


def test_model_without_video_input(dashscope, api_key, tmp_path):
    clip = write_mp4(tmp_path / "clip.mp4", 640, 360, 10)
    with QwenVLClient(api_key=api_key, base_url=dashscope.url) as client:
        with pytest.raises(InputValidationError, match="'qwen-vl-ocr' does not accept video"):
            client.chat(_video_message(clip), model="qwen-vl-ocr")
