"""The capability registry: everything model-specific lives here and nowhere else.

``get_capabilities(name)`` resolves family aliases, ``-latest`` and dated snapshots
(``qwen3-vl-plus-2025-09-23``) and the ``-thinking`` / ``-instruct`` suffixes. Unknown names
get permissive defaults (``known=False``): nothing is refused on their account.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Literal

__all__ = ["DEFAULT_MODEL", "ModelCapabilities", "get_capabilities", "REGISTRY", "ThinkingMode", "GroundingConvention"]

ThinkingMode = Literal["hybrid-off", "hybrid-on", "always", "never"]
StructuredMode = Literal["json_schema", "json_object"]
#: How a model writes the coordinates of boxes and points it finds (see :mod:`qwen_vl_core.grounding`):
#: ``"relative-1000"``: normalized to the image, 0 to 1000 whatever its size (the documentation for
#: Qwen3-VL says "normalized to a range of [0, 999]"); ``"absolute-resized"``: pixels of the image
#: *as the server resized it* (smart_resize of the image sent), which the documentation gives for
#: Qwen2.5-VL ("absolute values in pixels, relative to the top-left corner of the scaled image").
GroundingConvention = Literal["relative-1000", "absolute-resized"]

HIGH_RES_TOKEN_CAP = 16384
MB = 1024 * 1024

# Documented input limits. Two sources, and where they disagree the newer one wins (the older
# figure is kept in a comment beside the value):
#   003 = Model Studio "Image and video understanding" (input limits, image lists, video token code);
#   004 = Qwen Vision API supplementary guide, 2026-04 (file input methods, FAQ).
#: 003, "Image list limits": Qwen3-VL, Qwen2.5-VL and QVQ take 4 to 512 images; other models 4 to 80.
FRAME_LIST_MAX = 512
OTHER_FRAME_LIST_MAX = 80
#: 003's video token code, ``VIDEO_TOTAL_PIXELS`` for the "other models" (Qwen3-VL and Qwen2.5-VL:
#: 65536 x patch^2, see :attr:`ModelCapabilities.video_pixel_budget`).
OTHER_VIDEO_TOTAL_PIXELS = 24576 * 28 * 28
#: 003, "Video duration": models not named there (neither Qwen3-VL, Qwen2.5-VL nor QVQ) take 2 s to
#: 40 s. No model of the registry is in that group today (Qwen3.5 has its own limit in 004), and
#: unknown models are never refused, so this is the documented figure only.
OTHER_MAX_VIDEO_SECONDS = 40.0

#: The model every entry point uses when the caller names none.
DEFAULT_MODEL = "qwen3-vl-plus"


@dataclass(frozen=True, slots=True)
class ModelCapabilities:
    name: str
    family: str
    patch_size: int = 32
    image_token_cap: int = 2560
    thinking: ThinkingMode = "hybrid-off"
    max_thinking_budget: int | None = None
    stream_only: bool = False
    tools: bool = True
    structured_output: frozenset[str] = frozenset({"json_schema", "json_object"})
    video: bool = True
    #: Longest video file (the shortest is 2 s for every model): 003 gives 20 min for Qwen3-VL and
    #: qwen-vl-max, 10 min for the other Qwen2.5-VL models and QVQ; 004 (newer) raises Qwen3-VL-Plus
    #: to 1 h and gives Qwen3.5 / Qwen3.6 2 h. Only what is past the newest figure is refused.
    max_video_seconds: float | None = 1200.0
    #: Most images in a frame list, and most frames sampled from a video file (003: 512 for Qwen3-VL,
    #: Qwen2.5-VL and QVQ, 80 for other models; at least 4 for all).
    max_video_frames: int = FRAME_LIST_MAX
    #: 003's ``VIDEO_TOTAL_PIXELS`` for this model: None means 65536 x patch^2 (Qwen3-VL, Qwen2.5-VL).
    video_total_pixels: int | None = None
    #: Largest image given by URL or through temporary upload (004, "File input methods": 20 MB for
    #: Qwen3.5, 10 MB for the others; 003 said 10 MB for all). A data URL is under 10 MB for every model.
    max_image_bytes: int = 10 * MB
    context_window: int = 131072
    max_output: int = 8192
    ocr_tasks: bool = False
    grounding: GroundingConvention = "relative-1000"
    """Coordinate convention of the boxes and points the model answers with."""
    grounding_documented: bool = False
    """Whether Model Studio's documentation states :attr:`grounding` for this family (Qwen3-VL,
    Qwen2.5-VL); otherwise the value is assumed from the family the model is built on."""
    known: bool = True
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def high_res_token_cap(self) -> int:
        return HIGH_RES_TOKEN_CAP

    @property
    def video_pixel_budget(self) -> int:
        """Pixels of all the frames of one video together (003's ``VIDEO_TOTAL_PIXELS``)."""
        if self.video_total_pixels is not None:
            return self.video_total_pixels
        return 65536 * self.patch_size * self.patch_size

    @property
    def thinking_default(self) -> bool:
        return self.thinking in ("hybrid-on", "always")

    @property
    def can_disable_thinking(self) -> bool:
        return self.thinking != "always"

    @property
    def can_enable_thinking(self) -> bool:
        return self.thinking != "never"

    def thinking_on(self, enable_thinking: bool | None) -> bool:
        """Whether a request with this ``enable_thinking`` setting will think."""
        if self.thinking == "always":
            return True
        if self.thinking == "never":
            return False
        return self.thinking_default if enable_thinking is None else enable_thinking


_QWEN3_VL = dict(
    patch_size=32,
    image_token_cap=2560,
    thinking="hybrid-off",
    max_thinking_budget=81920,
    tools=True,
    structured_output=frozenset({"json_schema", "json_object"}),
    context_window=262144,
    max_output=32768,
    grounding="relative-1000",  # documented: "normalized to a range of [0, 999]"
    grounding_documented=True,
)
_QWEN35 = dict(
    patch_size=32,
    image_token_cap=2560,
    thinking="hybrid-on",
    max_thinking_budget=81920,
    tools=True,
    structured_output=frozenset({"json_schema", "json_object"}),
    context_window=1_000_000,
    max_output=65536,
    max_video_seconds=7200.0,  # 004: "up to 2 hours" (003 predates Qwen3.5: its "other models" got 40 s)
    # 003 predates Qwen3.5 and puts every model but Qwen3-VL, Qwen2.5-VL and QVQ in "other models";
    # 004 gives no frame-list or pixel figures for Qwen3.5, so 003's "other models" values stand.
    max_video_frames=OTHER_FRAME_LIST_MAX,
    video_total_pixels=OTHER_VIDEO_TOTAL_PIXELS,
    max_image_bytes=20 * MB,  # 004: 20 MB by URL (or upload) for Qwen3.5; 003 said 10 MB for all
)
_QWEN25_VL = dict(
    patch_size=28,
    image_token_cap=1280,
    thinking="never",
    tools=False,
    structured_output=frozenset({"json_object"}),
    context_window=131072,
    max_output=8192,
    max_video_seconds=600.0,  # 003: 10 min for the Qwen2.5-VL models other than qwen-vl-max
    grounding="absolute-resized",  # documented: "absolute values in pixels ... of the scaled image"
    grounding_documented=True,
)
_QWEN25_VL_NEW = {**_QWEN25_VL, "patch_size": 32, "image_token_cap": 2560}
_QVQ = dict(
    patch_size=28,
    image_token_cap=1280,
    thinking="always",
    stream_only=True,
    tools=False,
    structured_output=frozenset(),
    max_video_seconds=600.0,  # 003: 10 min; 004 agrees (QVQ: 2 s to 10 min)
    context_window=131072,
    max_output=8192,
    max_thinking_budget=16384,
    grounding="absolute-resized",  # assumed: QVQ is built on Qwen2.5-VL (not stated)
)
_OCR = dict(
    patch_size=32,
    image_token_cap=2560,
    thinking="never",
    tools=False,
    structured_output=frozenset(),
    video=False,
    max_video_seconds=None,
    context_window=38192,
    max_output=8192,
    ocr_tasks=True,
    grounding="absolute-resized",  # assumed: built on Qwen2.5-VL (not stated)
)

# family name -> capabilities; aliases and snapshots resolve onto these.
REGISTRY: dict[str, ModelCapabilities] = {
    # 004: Qwen3-VL-Plus takes videos up to 1 h (003: 20 min, still the figure for the others).
    "qwen3-vl-plus": ModelCapabilities("qwen3-vl-plus", "qwen3-vl", **{**_QWEN3_VL, "max_video_seconds": 3600.0}),
    "qwen3-vl-flash": ModelCapabilities("qwen3-vl-flash", "qwen3-vl", **_QWEN3_VL),
    "qwen3.5-plus": ModelCapabilities("qwen3.5-plus", "qwen3.5", **_QWEN35),
    "qwen3.5-flash": ModelCapabilities("qwen3.5-flash", "qwen3.5", **_QWEN35),
    "qwen3.6-plus": ModelCapabilities("qwen3.6-plus", "qwen3.5", **_QWEN35),
    # The stable qwen-vl-max / qwen-vl-plus aliases point at the 2025-08 snapshots (32-px patches).
    # 003: qwen-vl-max (and its snapshots from 2025-04-08 on) takes videos up to 20 min, qwen-vl-plus 10 min.
    "qwen-vl-max": ModelCapabilities("qwen-vl-max", "qwen2.5-vl", **{**_QWEN25_VL_NEW, "max_video_seconds": 1200.0}),
    "qwen-vl-plus": ModelCapabilities("qwen-vl-plus", "qwen2.5-vl", **_QWEN25_VL_NEW),
    "qvq-max": ModelCapabilities("qvq-max", "qvq", **_QVQ),
    "qvq-plus": ModelCapabilities("qvq-plus", "qvq", **_QVQ),
    "qwen-vl-ocr": ModelCapabilities("qwen-vl-ocr", "qwen-vl-ocr", **_OCR),
    # Open-weight models served by DashScope.
    "qwen2.5-vl": ModelCapabilities("qwen2.5-vl", "qwen2.5-vl", **_QWEN25_VL),
    "qwen3-vl": ModelCapabilities("qwen3-vl", "qwen3-vl", **{**_QWEN3_VL, "thinking": "never"}),
}

# Snapshots of qwen-vl-max / qwen-vl-plus from these dates on use 32-px patches and a 2560 cap.
_NEW_PATCH_FROM = {"qwen-vl-max": "2025-08-13", "qwen-vl-plus": "2025-08-15"}
# 003: qwen-vl-max snapshots before this date are "other Qwen2.5-VL" models for video length (10 min).
_LONG_VIDEO_FROM = {"qwen-vl-max": "2025-04-08"}
_DATE = re.compile(r"-(\d{4})-?(\d{2})-?(\d{2})$")
_MMDD = re.compile(r"-(\d{2})(\d{2})$")


def _strip_suffixes(name: str) -> tuple[str, str | None]:
    """Remove ``-latest`` and a trailing date; return (base, ISO date or None)."""
    if name.endswith("-latest"):
        return name[: -len("-latest")], None
    m = _DATE.search(name)
    if m:
        return name[: m.start()], f"{m.group(1)}-{m.group(2)}-{m.group(3)}"
    m = _MMDD.search(name)
    if m and name[: m.start()] in _NEW_PATCH_FROM:
        return name[: m.start()], f"2025-{m.group(1)}-{m.group(2)}"
    return name, None


@lru_cache(maxsize=256)
def get_capabilities(model: str) -> ModelCapabilities:
    """Capabilities of ``model`` (family name, alias, ``-latest`` or dated snapshot)."""
    name = (model or "").strip().lower()
    if "/" in name:  # "dashscope/qwen3-vl-plus", "Qwen/Qwen2.5-VL-7B-Instruct"
        name = name.rsplit("/", 1)[1]
    base, date = _strip_suffixes(name)
    caps = REGISTRY.get(base)
    if caps is not None:
        if base in _NEW_PATCH_FROM and date is not None and date < _NEW_PATCH_FROM[base]:
            caps = replace(caps, patch_size=28, image_token_cap=1280)
        if base in _LONG_VIDEO_FROM and date is not None and date < _LONG_VIDEO_FROM[base]:
            caps = replace(caps, max_video_seconds=600.0)
        return replace(caps, name=model)
    # Open-weight sizes: qwen3-vl-235b-a22b-thinking, qwen2.5-vl-72b-instruct, ...
    thinking_only = base.endswith("-thinking")
    for prefix in ("qwen3-vl", "qwen2.5-vl", "qvq", "qwen-vl-ocr", "qwen3.5", "qwen3.6"):
        if base.startswith(prefix):
            family_key = {
                "qvq": "qvq-max",
                "qwen-vl-ocr": "qwen-vl-ocr",
                "qwen3.5": "qwen3.5-plus",
                "qwen3.6": "qwen3.6-plus",
            }.get(prefix, prefix)
            caps = replace(REGISTRY[family_key], name=model)
            if prefix in ("qwen3-vl", "qwen2.5-vl") and not base.startswith(("qwen3-vl-plus", "qwen3-vl-flash")):
                caps = replace(caps, tools=prefix == "qwen3-vl")
            if thinking_only:
                caps = replace(caps, thinking="always", structured_output=frozenset())
            elif prefix == "qwen3-vl" and base.endswith("-instruct"):
                caps = replace(caps, thinking="never")
            return caps
    if thinking_only:
        return ModelCapabilities(model, "unknown", thinking="always", known=False)
    # Permissive defaults: allow everything, assume Qwen3-VL geometry, never refuse.
    return ModelCapabilities(
        model,
        "unknown",
        thinking="hybrid-off",
        tools=True,
        structured_output=frozenset({"json_schema", "json_object"}),
        known=False,
    )
