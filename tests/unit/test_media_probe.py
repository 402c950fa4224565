from qwen_vl_core.media import resolve_video
from tests.mp4_samples import mp4_bytes, write_mp4


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
