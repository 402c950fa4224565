"""Video token estimates against the document's own code (seed 003, "Rules for converting images and
videos to tokens", Videos), ported below as the oracle.

The port keeps the document's functions line for line. What had to change: ``get_video`` (OpenCV
reading a file) is replaced by the numbers it would return, and the module constants the document
tells the reader to edit per model (``IMAGE_FACTOR``, ``FPS_MAX_FRAMES``, ``VIDEO_TOTAL_PIXELS``) are
parameters. The last line of ``token_calculate`` divides by 28 because the document's example sets
``IMAGE_FACTOR = 28``; the port divides by ``IMAGE_FACTOR``, as the comment above it says to set it.
"""

from __future__ import annotations

import logging
import math

import pytest

from qwen_vl_core.models import get_capabilities
from qwen_vl_core.tokens import VIDEO_MAX_PIXELS, VIDEO_MIN_PIXELS, video_frame_count, video_tokens

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------- the document's code (the oracle)


class Doc:
    FRAME_FACTOR = 2
    MAX_RATIO = 200
    VIDEO_MIN_PIXELS = 128 * 32 * 32
    VIDEO_MAX_PIXELS = 768 * 32 * 32
    FPS = 2.0
    FPS_MIN_FRAMES = 4

    def __init__(self, image_factor: int, fps_max_frames: int, video_total_pixels: int) -> None:
        self.IMAGE_FACTOR = image_factor
        self.FPS_MAX_FRAMES = fps_max_frames
        self.VIDEO_TOTAL_PIXELS = video_total_pixels

    @staticmethod
    def round_by_factor(number, factor):
        return round(number / factor) * factor

    @staticmethod
    def ceil_by_factor(number, factor):
        return math.ceil(number / factor) * factor

    @staticmethod
    def floor_by_factor(number, factor):
        return math.floor(number / factor) * factor

    def smart_nframes(self, ele, total_frames, video_fps):
        assert not ("fps" in ele and "nframes" in ele), "Only accept either `fps` or `nframes`"
        fps = ele.get("fps", self.FPS)
        min_frames = self.ceil_by_factor(ele.get("min_frames", self.FPS_MIN_FRAMES), self.FRAME_FACTOR)
        max_frames = self.floor_by_factor(ele.get("max_frames", min(self.FPS_MAX_FRAMES, total_frames)), self.FRAME_FACTOR)
        duration = total_frames / video_fps if video_fps != 0 else 0
        if duration - int(duration) > (1 / fps):
            total_frames = math.ceil(duration * video_fps)
        else:
            total_frames = math.ceil(int(duration) * video_fps)
        nframes = total_frames / video_fps * fps
        if nframes > total_frames:
            logger.warning(f"smart_nframes: nframes[{nframes}] > total_frames[{total_frames}]")
        nframes = int(min(min(max(nframes, min_frames), max_frames), total_frames))
        if not (self.FRAME_FACTOR <= nframes and nframes <= total_frames):
            raise ValueError(f"nframes should in interval [{self.FRAME_FACTOR}, {total_frames}], but got {nframes}.")
        return nframes

    def smart_resize(self, ele, video, factor):
        height, width, total_frames, video_fps = video  # was: get_video(path)
        min_pixels = self.VIDEO_MIN_PIXELS
        total_pixels = self.VIDEO_TOTAL_PIXELS
        nframes = self.smart_nframes(ele, total_frames, video_fps)
        max_pixels = max(min(self.VIDEO_MAX_PIXELS, total_pixels / nframes * self.FRAME_FACTOR), int(min_pixels * 1.05))
        if max(height, width) / min(height, width) > self.MAX_RATIO:
            raise ValueError("absolute aspect ratio must be smaller than 200")
        h_bar = max(factor, self.round_by_factor(height, factor))
        w_bar = max(factor, self.round_by_factor(width, factor))
        if h_bar * w_bar > max_pixels:
            beta = math.sqrt((height * width) / max_pixels)
            h_bar = self.floor_by_factor(height / beta, factor)
            w_bar = self.floor_by_factor(width / beta, factor)
        elif h_bar * w_bar < min_pixels:
            beta = math.sqrt(min_pixels / (height * width))
            h_bar = self.ceil_by_factor(height * beta, factor)
            w_bar = self.ceil_by_factor(width * beta, factor)
        return h_bar, w_bar

    def token_calculate(self, video, fps):
        vision_infos = {"video": "clip.mp4", "fps": fps}
        resized_height, resized_width = self.smart_resize(vision_infos, video, self.IMAGE_FACTOR)
        height, width, total_frames, video_fps = video
        num_frames = self.smart_nframes(vision_infos, total_frames, video_fps)
        f = self.IMAGE_FACTOR
        video_token = int(math.ceil(num_frames / 2) * resized_height / f * resized_width / f)
        video_token += 2
        return video_token


def oracle_for(model: str) -> Doc:
    """The document's constants as its comments say to set them for ``model``."""
    caps = get_capabilities(model)
    family = caps.family
    if family in ("qwen3-vl", "qwen2.5-vl", "qvq"):
        total = 65536 * caps.patch_size * caps.patch_size  # "65536 * 32 * 32 and 65536 * 28 * 28"
        most = 512
    else:
        total = 24576 * 28 * 28  # "For other models, set it to 24576 * 28 * 28"
        most = 80
    return Doc(caps.patch_size, most, total)


# ---------------------------------------------------------------- the comparisons

# (total frames, the video's frame rate): durations from 2 s to 30 min, whole and fractional seconds
VIDEOS = [
    (60, 30), (75, 30), (89, 29.97), (300, 25), (316, 30), (321, 30), (307, 24), (1000, 24),
    (1801, 30), (3600, 60), (7500, 25), (18000, 30), (54000, 30),
]
FPS = [0.1, 0.5, 1.0, 2.0, 3.0, 10.0]
MODELS = ["qwen3-vl-plus", "qvq-max", "qwen-vl-max-2025-04-08", "qwen3.5-plus"]  # 32 px, 28 px, 28 px, other


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("fps", FPS)
@pytest.mark.parametrize(("total_frames", "video_fps"), VIDEOS)
def test_frame_count_and_tokens_match_the_documents_code(model, fps, total_frames, video_fps):
    doc = oracle_for(model)
    caps = get_capabilities(model)
    duration = total_frames / video_fps
    expected_frames = doc.smart_nframes({"fps": fps}, total_frames, video_fps)
    assert video_frame_count(duration, fps, total_frames=total_frames, video_fps=video_fps,
                             max_frames=caps.max_video_frames) == expected_frames
    for height, width in ((720, 1280), (1080, 1920), (480, 640), (2160, 3840), (1280, 720), (360, 360)):
        expected = doc.token_calculate((height, width, total_frames, video_fps), fps)
        got = video_tokens(width, height, duration, model, fps=fps, total_frames=total_frames, video_fps=video_fps)
        assert got == expected, (model, fps, total_frames, video_fps, width, height)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("fps", FPS)
@pytest.mark.parametrize("seconds", [2, 3.4, 10, 10.3, 10.7, 45.5, 61, 599.9, 1200])
def test_duration_alone_gives_the_documents_count_at_common_frame_rates(model, fps, seconds):
    """A probed MP4 gives the duration, not the frame rate: the rule on the duration alone agrees
    with the document's code for whole-frame durations at 30 fps."""
    doc = oracle_for(model)
    caps = get_capabilities(model)
    total = round(seconds * 30)
    assert video_frame_count(seconds, fps, max_frames=caps.max_video_frames) == doc.smart_nframes({"fps": fps}, total, 30)
    assert video_tokens(1280, 720, seconds, model, fps=fps) == doc.token_calculate((720, 1280, total, 30), fps)


def test_the_duration_is_cut_to_whole_seconds_unless_the_fraction_is_sampled():
    # 10.3 s at 2 fps: 0.3 s is less than one interval (0.5 s), so 10 s are sampled: 20 frames
    assert video_frame_count(10.3, 2) == 20
    # 10.7 s: 0.7 s is more than an interval, so all of it: int(21.4) = 21 frames (not rounded to even)
    assert video_frame_count(10.7, 2) == 21
    # 10 s at 0.5 fps: 5 frames, within [4, 512] and not rounded to even
    assert video_frame_count(10, 0.5) == 5


def test_frame_pixel_bounds_are_in_32_px_units_for_28_px_models_too():
    # A small frame is raised to VIDEO_MIN_PIXELS (128 * 32 * 32): for a 28-px model that is more than 128 patches
    tokens = video_tokens(320, 240, 10, "qvq-max", fps=2)
    per_pair = (tokens - 2) // 10
    assert per_pair * 28 * 28 >= VIDEO_MIN_PIXELS > 128 * 28 * 28
    big = video_tokens(3840, 2160, 10, "qvq-max", fps=2)
    assert ((big - 2) // 10) * 28 * 28 <= VIDEO_MAX_PIXELS


def test_other_models_sample_at_most_80_frames():
    assert get_capabilities("qwen3.5-plus").max_video_frames == 80
    assert video_frame_count(600, 2, max_frames=80) == 80
    assert video_tokens(1280, 720, 600, "qwen3.5-plus") == oracle_for("qwen3.5-plus").token_calculate((720, 1280, 18000, 30), 2.0)
    assert video_frame_count(600, 2) == 512
