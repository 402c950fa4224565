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

__all__ = ["DEFAULT_MODEL", "ModelCapabilities", "get_capabilities", "REGISTRY", "ThinkingMode"]

ThinkingMode = Literal["hybrid-off", "hybrid-on", "always", "never"]
StructuredMode = Literal["json_schema", "json_object"]

HIGH_RES_TOKEN_CAP = 16384

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
    max_video_seconds: float | None = 1200.0  # documented duration limit of one video file (min 2 s)
    context_window: int = 131072
    max_output: int = 8192
    ocr_tasks: bool = False
    known: bool = True
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def high_res_token_cap(self) -> int:
        return HIGH_RES_TOKEN_CAP

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
    max_video_seconds=7200.0,
)
_QWEN25_VL = dict(
    patch_size=28,
    image_token_cap=1280,
    thinking="never",
    tools=False,
    structured_output=frozenset({"json_object"}),
    context_window=131072,
    max_output=8192,
)
_QWEN25_VL_NEW = {**_QWEN25_VL, "patch_size": 32, "image_token_cap": 2560}
_QVQ = dict(
    patch_size=28,
    image_token_cap=1280,
    thinking="always",
    stream_only=True,
    tools=False,
    structured_output=frozenset(),
    max_video_seconds=600.0,
    context_window=131072,
    max_output=8192,
    max_thinking_budget=16384,
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
)

# family name -> capabilities; aliases and snapshots resolve onto these.
REGISTRY: dict[str, ModelCapabilities] = {
    "qwen3-vl-plus": ModelCapabilities("qwen3-vl-plus", "qwen3-vl", **_QWEN3_VL),
    "qwen3-vl-flash": ModelCapabilities("qwen3-vl-flash", "qwen3-vl", **_QWEN3_VL),
    "qwen3.5-plus": ModelCapabilities("qwen3.5-plus", "qwen3.5", **_QWEN35),
    "qwen3.5-flash": ModelCapabilities("qwen3.5-flash", "qwen3.5", **_QWEN35),
    "qwen3.6-plus": ModelCapabilities("qwen3.6-plus", "qwen3.5", **_QWEN35),
    # The stable qwen-vl-max / qwen-vl-plus aliases point at the 2025-08 snapshots (32-px patches).
    "qwen-vl-max": ModelCapabilities("qwen-vl-max", "qwen2.5-vl", **_QWEN25_VL_NEW),
    "qwen-vl-plus": ModelCapabilities("qwen-vl-plus", "qwen2.5-vl", **{**_QWEN25_VL_NEW, "max_video_seconds": 600.0}),
    "qvq-max": ModelCapabilities("qvq-max", "qvq", **_QVQ),
    "qvq-plus": ModelCapabilities("qvq-plus", "qvq", **_QVQ),
    "qwen-vl-ocr": ModelCapabilities("qwen-vl-ocr", "qwen-vl-ocr", **_OCR),
    # Open-weight models served by DashScope.
    "qwen2.5-vl": ModelCapabilities("qwen2.5-vl", "qwen2.5-vl", **{**_QWEN25_VL, "max_video_seconds": 600.0}),
    "qwen3-vl": ModelCapabilities("qwen3-vl", "qwen3-vl", **{**_QWEN3_VL, "thinking": "never"}),
}

# Snapshots of qwen-vl-max / qwen-vl-plus from these dates on use 32-px patches and a 2560 cap.
_NEW_PATCH_FROM = {"qwen-vl-max": "2025-08-13", "qwen-vl-plus": "2025-08-15"}
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
