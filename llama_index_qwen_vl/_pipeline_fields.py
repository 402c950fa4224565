"""The fields the reader and the captioner share (model, prompt, request options, concurrency,
error policy, cache), and the core :class:`~qwen_vl_core.documents.DocumentPipeline` they build."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, Literal

from llama_index.core.bridge.pydantic import Field, PrivateAttr

from qwen_vl_core import DEFAULT_MODEL, QwenVLClient
from qwen_vl_core.documents import DocumentPipeline, PageFailure

from ._connection import ClientSettings

__all__ = ["PipelineFields", "JOB_OPTION_FIELDS"]

# Fields sent as request options for each image (None: not sent, the model's default applies).
JOB_OPTION_FIELDS = (
    "enable_thinking", "thinking_budget", "high_resolution", "min_pixels", "max_pixels", "max_tokens", "temperature",
    "ocr_task",
)  # fmt: skip


class PipelineFields(ClientSettings):
    """What the reader and the captioner ask of each image. Each class adds its own ``mode``."""

    model: str = Field(default=DEFAULT_MODEL, description="DashScope model name.")
    prompt: str | None = Field(default=None, description="Replace the mode's built-in instruction.")
    num_workers: int = Field(default=4, ge=1, le=256, description="Images or pages in flight at once.")
    on_error: Literal["raise", "skip"] = Field(default="raise", description="raise (after the other items) or skip.")
    cache_dir: str | None = Field(default=None, description="Directory of the content-addressed answer cache.")
    enable_thinking: bool | None = Field(default=None, description="Thinking on/off (None: the model's default).")
    thinking_budget: int | None = Field(default=None, gt=0)
    high_resolution: bool | None = Field(default=None, description="vl_high_resolution_images.")
    min_pixels: int | None = Field(default=None, gt=0)
    max_pixels: int | None = Field(default=None, gt=0)
    max_tokens: int | None = Field(default=None, gt=0, description="Output limit per image or page.")
    temperature: float | None = Field(default=None)
    ocr_task: str | None = Field(
        default=None,
        description="A qwen-vl-ocr built-in task (text_recognition, document_parsing, table_parsing, ...).",
    )
    show_progress: bool = Field(default=False, description="Show a tqdm progress bar.")

    _failures: list[PageFailure] = PrivateAttr(default_factory=list)
    _semaphores: _LoopSemaphores = PrivateAttr(default_factory=lambda: _LoopSemaphores())

    def __init__(self, *, client: QwenVLClient | None = None, **data: Any) -> None:
        super().__init__(**data)
        self._init_client(client)

    @property
    def failures(self) -> list[PageFailure]:
        """Items that failed in the last run (also set when ``on_error="raise"`` raised)."""
        return list(self._failures)

    def _pipeline(self, **extra: Any) -> DocumentPipeline:
        """The core pipeline with this object's model, mode, prompt, options, policy and cache."""
        return DocumentPipeline(
            self._get_client(),
            model=self.model,
            mode=self.mode,  # type: ignore[attr-defined]  (each subclass declares its own mode)
            prompt=self.prompt,
            options={name: getattr(self, name) for name in JOB_OPTION_FIELDS},
            num_workers=self.num_workers,
            on_error=self.on_error,
            cache_dir=self.cache_dir,
            name=type(self).__name__,
            **extra,
        )

    def _limit(self) -> asyncio.Semaphore:
        """``num_workers`` shared by all concurrent async runs of this object on this loop
        (SimpleDirectoryReader loads files in parallel: they share it)."""
        return self._semaphores.get(self.num_workers)


class _LoopSemaphores:
    """One semaphore per running event loop. Pickling or copying starts empty: semaphores
    belong to a loop."""

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def get(self, limit: int) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        entry = self._by_loop.get(loop)
        if entry is None or entry[0] != limit:
            entry = (limit, asyncio.Semaphore(limit))
            self._by_loop[loop] = entry
        return entry[1]

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def __deepcopy__(self, memo: dict) -> _LoopSemaphores:
        return _LoopSemaphores()

    def __repr__(self) -> str:
        return "_LoopSemaphores()"
