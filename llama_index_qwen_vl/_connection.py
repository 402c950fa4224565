"""Connection fields shared by :class:`QwenVL`, :class:`QwenVLReader` and
:class:`QwenVLImageCaptioner`, and the lazily built :class:`~qwen_vl_core.QwenVLClient` behind them."""

from __future__ import annotations

import threading
from typing import Any

from llama_index.core.bridge.pydantic import BaseModel, Field, PrivateAttr, SecretStr

from qwen_vl_core import QwenVLClient
from qwen_vl_core.transport import (
    DEFAULT_DEADLINE,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRY_WAIT,
    DEFAULT_MAX_STREAM_BYTES,
    DEFAULT_STREAM_IDLE_TIMEOUT,
    DEFAULT_TIMEOUT,
)

__all__ = ["ClientSettings"]


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
    timeout: float = Field(
        default=DEFAULT_TIMEOUT, gt=0,
        description="Seconds for each network operation (above DashScope's 180 s limit for non-streamed answers).",
    )
    max_retries: int = Field(default=2, ge=0, description="Retries for 408/409/429/5xx and connection errors.")
    deadline: float | None = Field(
        default=DEFAULT_DEADLINE, gt=0, description="Seconds for a whole non-streamed call, retries included."
    )
    stream_idle_timeout: float | None = Field(
        default=DEFAULT_STREAM_IDLE_TIMEOUT, gt=0, description="Seconds a stream may go without an event."
    )
    max_retry_wait: float = Field(
        default=DEFAULT_MAX_RETRY_WAIT, ge=0,
        description="Longest Retry-After waited; a longer one raises at once with retry_after.",
    )
    retry_read_timeouts: bool = Field(
        default=False, description="Resend a request that timed out waiting for its answer (may bill twice)."
    )
    max_response_bytes: int | None = Field(
        default=DEFAULT_MAX_RESPONSE_BYTES, gt=0, description="Largest JSON answer or stream event."
    )
    max_stream_bytes: int | None = Field(
        default=DEFAULT_MAX_STREAM_BYTES, gt=0, description="Most a whole stream may carry."
    )
    resize: bool = Field(default=True, description="Downscale local images to what the model looks at (token-neutral).")
    upload: bool = Field(default=True, description="Upload files too large for a data URL to temporary storage.")
    allow_local_files: bool = Field(default=True, description="Allow local paths and file:// URLs as media.")
    allowed_dirs: list[str] | None = Field(default=None, description="If set, local files must lie inside these.")

    _holder: _ClientHolder = PrivateAttr(default_factory=lambda: _ClientHolder())

    def __getstate__(self) -> dict[Any, Any]:
        """Pickles (multiprocessing, Ray, IngestionPipeline workers) carry no key: the unpickled
        object finds its key again in the process that uses it (``DASHSCOPE_API_KEY``, ``./.env``,
        ``~/.alibabacloud/credentials``), or says where it looked."""
        state = super().__getstate__()
        state["__dict__"] = {**state["__dict__"], "api_key": None}
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        holder = (state.get("__pydantic_private__") or {}).get("_holder")
        super().__setstate__(state)  # LlamaIndex's re-runs __init__ with the fields (a client from them)
        if isinstance(holder, _ClientHolder) and holder.injected:
            self._holder = holder  # an injected client (pickled without its key) stays the one used

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
