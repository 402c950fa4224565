"""Connection fields shared by :class:`QwenVL`, :class:`QwenVLReader` and
:class:`QwenVLImageCaptioner`, the lazily built :class:`~qwen_vl_core.QwenVLClient` behind them,
and the per-image job fields the reader and the captioner share."""

from __future__ import annotations

import threading
from typing import Any

from typing import Literal

from llama_index.core.bridge.pydantic import BaseModel, Field, PrivateAttr, SecretStr

from qwen_vl_core import QwenVLClient

from ._cache import ResultCache
from ._work import ImageWorker, LoopSemaphores
from .errors import PageFailure

__all__ = ["ClientSettings", "ImageJobSettings"]


class ClientSettings(BaseModel):
    """Where and how to reach DashScope. The key is never serialized, printed or logged."""

    api_key: SecretStr | None = Field(
        default=None,
        exclude=True,
        repr=False,
        description="DashScope API key; default: DASHSCOPE_API_KEY, ./.env, ~/.alibabacloud/credentials.",
    )
    region: str | None = Field(default=None, description="beijing (default), singapore/intl, us, hongkong.")
    base_url: str | None = Field(
        default=None, description="Another endpoint (DashScope host or OpenAI-compatible /v1)."
    )
    workspace: str | None = Field(default=None, description="DashScope workspace id.")
    timeout: float = Field(default=120.0, gt=0, description="Seconds per HTTP request.")
    max_retries: int = Field(default=2, ge=0, description="Retries for 408/409/429/5xx and connection errors.")
    resize: bool = Field(default=True, description="Downscale local images to what the model looks at (token-neutral).")
    upload: bool = Field(default=True, description="Upload files too large for a data URL to temporary storage.")
    allow_local_files: bool = Field(default=True, description="Allow local paths and file:// URLs as media.")
    allowed_dirs: list[str] | None = Field(default=None, description="If set, local files must lie inside these.")

    _holder: _ClientHolder = PrivateAttr(default_factory=lambda: _ClientHolder())

    def _init_client(self, client: QwenVLClient | None) -> None:
        """Use an injected client, or build one now so that a missing key fails at construction."""
        if client is not None:
            self._holder.client = client
            self._holder.injected = True
        else:
            self._get_client()

    def _config_tuple(self) -> tuple:
        settings = QwenVLClient.settings_of(self)
        key = settings.get("api_key")
        settings["api_key"] = key.get_secret_value() if key is not None else None
        dirs = settings.get("allowed_dirs")
        settings["allowed_dirs"] = tuple(dirs) if dirs is not None else None
        return tuple(sorted(settings.items()))

    def _get_client(self) -> QwenVLClient:
        """The client; rebuilt when a connection field changed since it was built."""
        holder = self._holder
        if holder.injected and holder.client is not None:
            return holder.client
        config = self._config_tuple()
        with holder.lock:
            if holder.client is None or config != holder.config:
                holder.client = QwenVLClient.from_settings(self)
                holder.config = config
            return holder.client

    @property
    def client(self) -> QwenVLClient:
        """The :class:`~qwen_vl_core.QwenVLClient` requests go through."""
        return self._get_client()


class _ClientHolder:
    """Keeps the client out of pydantic state: pickling or copying drops the httpx pools
    (rebuilt from the fields on first use) instead of failing."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.client: QwenVLClient | None = None
        self.config: tuple | None = None
        self.injected = False

    def __getstate__(self) -> dict[str, Any]:
        return {"client": self.client if self.injected else None, "injected": self.injected}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]
        self.client = state.get("client")
        self.injected = bool(state.get("injected")) and self.client is not None

    def __repr__(self) -> str:
        return "_ClientHolder()"


# Fields sent as request options for each image (None: not sent, the model's default applies).
JOB_OPTION_FIELDS = (
    "enable_thinking", "thinking_budget", "high_resolution", "min_pixels", "max_pixels", "max_tokens", "temperature",
)  # fmt: skip


class ImageJobSettings(ClientSettings):
    """What the reader and the captioner ask of each image: model, prompt, request options,
    concurrency, error policy and cache. Each class adds its own ``mode`` (with its own default)."""

    model: str = Field(default="qwen3-vl-plus", description="DashScope model name.")
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

    _failures: list[PageFailure] = PrivateAttr(default_factory=list)
    _semaphores: LoopSemaphores = PrivateAttr(default_factory=LoopSemaphores)

    def __init__(self, *, client: QwenVLClient | None = None, **data: Any) -> None:
        super().__init__(**data)
        self._init_client(client)

    @property
    def failures(self) -> list[PageFailure]:
        """Items that failed in the last run (also set when ``on_error="raise"`` raised)."""
        return list(self._failures)

    def _worker(self, **extra: Any) -> ImageWorker:
        """The per-image engine with this object's model, mode, prompt, options and cache."""
        return ImageWorker(
            client=self._get_client(),
            model=self.model,
            mode=self.mode,  # type: ignore[attr-defined]  (each subclass declares its own mode)
            prompt=self.prompt,
            options={name: getattr(self, name) for name in JOB_OPTION_FIELDS},
            cache=ResultCache(self.cache_dir) if self.cache_dir else None,
            **extra,
        )
