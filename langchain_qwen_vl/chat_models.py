"""``ChatQwenVL``: Qwen-VL vision-language models (DashScope / Model Studio) as a LangChain chat model.

A thin adapter: messages and results are converted by :mod:`langchain_qwen_vl._convert`, fields
become request options in :mod:`._request_options`, structured output is put together in
:mod:`._structured`, prompt tokens are estimated in :mod:`._token_count`; everything else (media
resolution, request bodies, thinking rules, streaming, retries, typed errors, tool choice, stream
folding) is done by :mod:`qwen_vl_core`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput, LangSmithParams
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator
from qwen_vl_core import DEFAULT_MODEL, QwenVLClient, QwenVLError, StreamAccumulator, get_capabilities
from qwen_vl_core import ChatResult as CoreResult
from qwen_vl_core.chat_media import ChatMedia, aprepare_chat_media, prepare_chat_media
from qwen_vl_core.estimate import text_tokens
from qwen_vl_core.grounding import Grounding
from qwen_vl_core.tools import normalize_tool_choice
from qwen_vl_core.transport import (
    DEFAULT_DEADLINE,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRY_WAIT,
    DEFAULT_MAX_STREAM_BYTES,
    DEFAULT_STREAM_IDLE_TIMEOUT,
    DEFAULT_TIMEOUT,
)
from typing_extensions import Self

try:  # langchain-core >= 1.1
    from langchain_core.language_models.model_profile import ModelProfile
except ImportError:  # pragma: no cover - older cores have no model profiles
    ModelProfile = dict  # type: ignore[misc,assignment]

from ._convert import chat_result, delta_to_chunk, ensure_json_hint, final_chunk, to_core_messages
from ._request_options import (
    call_options,
    check_model_kwargs,
    default_params,
    ls_params,
    media_options,
    move_unknown_to_model_kwargs,
)
from ._structured import structured_output
from ._token_count import count_prompt_tokens

__all__ = ["ChatQwenVL"]

logger = logging.getLogger("langchain_qwen_vl")


class ChatQwenVL(BaseChatModel):
    """Qwen-VL chat model on DashScope (Alibaba Cloud Model Studio).

    Setup: ``pip install "qwen-vl-integrations[langchain]"`` and set ``DASHSCOPE_API_KEY`` (or pass
    ``api_key``; a ``.env`` file or ``~/.alibabacloud/credentials`` also work). Keys are per region:
    pass ``region="singapore"`` (or ``"us"``, ``"hongkong"``) for an international key, or
    ``base_url`` for any OpenAI-compatible server (vLLM, SGLang).

    Example:
        ```python
        from langchain_core.messages import HumanMessage
        from langchain_qwen_vl import ChatQwenVL

        llm = ChatQwenVL(model="qwen3-vl-plus")
        msg = HumanMessage(content=[
            {"type": "image", "url": "https://example.com/cat.jpg"},   # or a local path
            {"type": "text", "text": "What is in this picture?"},
        ])
        print(llm.invoke([msg]).text)
        ```

    Input: any mix of LangChain v1 ``image``/``video`` blocks (``url`` / ``base64`` + ``mime_type`` /
    ``path``), v0 blocks, OpenAI ``image_url`` / ``video_url`` parts, frame lists
    ``{"type": "video", "video": [frame, ...], "fps": 2}``, DashScope-native ``{"image": ...}`` /
    ``{"video": ...}``; wherever a URL goes, a local path or ``file://`` URI also works (read under
    ``allow_local_files`` / ``allowed_dirs``, downscaled token-neutrally, uploaded to DashScope
    temporary storage when too large for a data URL). PDFs and multi-page TIFFs in ``file`` blocks
    (v1 ``base64`` / ``url`` / ``path``, v0 ``source_type``, OpenAI ``file``) are sent as page
    images rendered at the model's budget (``pages`` on the block or ``document_pages``), checked
    against the context window first; images a tool returns in a ``ToolMessage`` are sent in a
    user message right after the tool results (DashScope takes images in user messages only).

    Output: reasoning in ``additional_kwargs["reasoning_content"]`` and as a ``reasoning`` block in
    ``content_blocks`` (in ``content`` too with ``output_version="v1"``); ``usage_metadata`` with
    ``input_token_details`` ``image`` / ``video`` / ``cache_read`` and ``output_token_details``
    ``reasoning`` where the server reports them; ``response_metadata`` with ``model_name``,
    ``finish_reason``, ``request_id``, ``model_provider="dashscope"`` and ``partial`` (True when
    DashScope cut the answer short after its ~180 s limit) and, when the request had images,
    ``images``: each image's original, sent and model-side size (what :meth:`ground` maps boxes with).

    Thinking: stream-only and always-thinking models (QVQ, ``*-thinking``) work with ``invoke``
    (streamed and aggregated underneath). Structured output and forced tool calls need thinking off
    (DashScope cannot think while its output is forced): on a hybrid model (``qwen3-vl-plus``,
    ``qwen3.5-plus``, ...) thinking is turned off for that call, with a ``UserWarning`` when the model
    was built with ``enable_thinking=True``. ``enable_thinking=True`` passed with the call itself, or
    an always-thinking model, gives an ``InputValidationError`` before anything is sent.

    Pickling (to worker processes) never carries the API key: an unpickled model finds its key
    again from ``DASHSCOPE_API_KEY``, ``./.env`` or ``~/.alibabacloud/credentials``.

    Errors are :mod:`qwen_vl_core.errors` types (``RateLimitError``, ``IncompleteStreamError``, ...),
    each with ``status``, ``code`` and ``request_id``.
    """

    model: str = Field(default=DEFAULT_MODEL, alias="model_name")
    """Model name: ``qwen3-vl-plus``, ``qwen3-vl-flash``, ``qwen3.5-plus``, ``qvq-max``, ``qwen-vl-max``, ..."""
    api_key: SecretStr | None = Field(default=None, alias="dashscope_api_key")
    """DashScope key; found from ``DASHSCOPE_API_KEY``, ``./.env`` or ``~/.alibabacloud/credentials`` if unset."""
    region: str | None = None
    """``beijing`` (default), ``singapore``, ``us`` or ``hongkong`` (also ``DASHSCOPE_REGION``)."""
    base_url: str | None = None
    """Overrides ``region`` (also ``DASHSCOPE_BASE_URL``); any OpenAI-compatible base works."""
    workspace: str | None = None
    """Model Studio workspace id, sent as ``X-DashScope-WorkSpace``."""
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    enable_thinking: bool | None = None
    """None: the model's default (off for Qwen3-VL, on for Qwen3.5)."""
    thinking_budget: int | None = None
    high_resolution: bool | None = None
    """Sent as ``vl_high_resolution_images`` (token cap 16384 per image)."""
    min_pixels: int | None = None
    max_pixels: int | None = None
    fps: float | None = None
    """Frames per second sampled from videos (0.1 to 10)."""
    document_pages: list[int] | str | None = None
    """Pages of PDFs / TIFFs in ``file`` blocks to send (``[1, 3]``, ``"1-3"``; default all); a
    block's own ``pages`` wins. Also a per-call keyword."""
    timeout: float | None = Field(default=DEFAULT_TIMEOUT, alias="request_timeout")
    """Seconds for each network operation (default 240, above DashScope's 180 s limit for non-streamed answers)."""
    max_retries: int = 2
    """Retries for 408/409/429/5xx and connection errors, with backoff honouring ``Retry-After``."""
    deadline: float | None = DEFAULT_DEADLINE
    """Seconds for a whole non-streamed call, retries included (default 600); None: no deadline."""
    stream_idle_timeout: float | None = DEFAULT_STREAM_IDLE_TIMEOUT
    """Seconds a stream may go without an event (default 120); None: no limit."""
    max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT
    """Longest ``Retry-After`` waited (default 60 s); a longer one raises at once with ``retry_after``."""
    retry_read_timeouts: bool = False
    """Resend a request that timed out waiting for its answer (it may be billed twice)."""
    max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES
    """Largest JSON answer or stream event (default 32 MiB)."""
    max_stream_bytes: int | None = DEFAULT_MAX_STREAM_BYTES
    """Most a whole stream may carry (default 256 MiB)."""
    streaming: bool = False
    """Use the streaming API for ``invoke`` too."""
    stream_usage: bool = True
    """Ask for token usage at the end of streams."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Anything else: core options (``top_k``, ``presence_penalty``, ...) or extra body fields."""
    resize: bool = True
    """Downscale local images to what the model would see anyway (never changes the token count)."""
    upload: bool = True
    """Upload local files too large for a data URL to DashScope temporary storage (48 h)."""
    allow_local_files: bool = True
    allowed_dirs: list[str] | None = None
    """If set, local files must lie inside one of these directories."""
    default_headers: dict[str, str] | None = None

    _client: QwenVLClient = PrivateAttr()

    model_config = ConfigDict(populate_by_name=True, protected_namespaces=())

    # ------------------------------------------------------------------ construction

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            # Surface the core's own typed error (no key, bad region, ...) rather than pydantic's wrapper.
            for error in exc.errors():
                cause = (error.get("ctx") or {}).get("error")
                if isinstance(cause, QwenVLError):
                    raise cause from None
            raise

    @model_validator(mode="before")
    @classmethod
    def _collect_model_kwargs(cls, values: Any) -> Any:
        """Unknown constructor arguments go to ``model_kwargs`` (with a warning), never silently nowhere."""
        if not isinstance(values, dict):
            return values
        known = {name for name in cls.model_fields}
        known |= {field.alias for field in cls.model_fields.values() if field.alias}
        return move_unknown_to_model_kwargs(values, known)

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [value]
        return value or None

    @field_validator("model_kwargs")
    @classmethod
    def _check_model_kwargs(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_model_kwargs(value, cls.model_fields)

    @model_validator(mode="after")
    def _build_client(self) -> Self:
        """One pooled client per model instance (and its copies), built once."""
        self._client = QwenVLClient.from_settings(self)
        if self.api_key is None:
            self.api_key = self._client.api_key
        return self

    @property
    def client(self) -> QwenVLClient:
        """The underlying :class:`qwen_vl_core.QwenVLClient` (for OCR tasks and other core features)."""
        return self._client

    # ------------------------------------------------------------------ pickling (never the key)

    def __getstate__(self) -> dict[Any, Any]:
        """Pickles (multiprocessing, Ray, Dask, joblib) carry no key: the unpickled model finds
        its key again in the process that uses it (``DASHSCOPE_API_KEY``, ``./.env``,
        ``~/.alibabacloud/credentials``), or its first call says where it looked."""
        state = super().__getstate__()
        state["__dict__"] = {**state["__dict__"], "api_key": None}
        return state

    def close(self) -> None:
        """Close pooled connections (the model stays usable: pools are re-created on demand)."""
        self._client.close()

    async def aclose(self) -> None:
        await self._client.aclose()

    # ------------------------------------------------------------------ LangChain metadata

    @property
    def _llm_type(self) -> str:
        return "qwen-vl-chat"

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        return ["langchain_qwen_vl", "chat_models"]

    @property
    def lc_secrets(self) -> dict[str, str]:
        return {"api_key": "DASHSCOPE_API_KEY"}

    @property
    def _default_params(self) -> dict[str, Any]:
        return default_params(self)

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model, **self._default_params}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return ls_params(self, stop, kwargs)

    def _resolve_model_profile(self) -> ModelProfile | None:
        caps = get_capabilities(self.model)
        return ModelProfile(
            max_input_tokens=caps.context_window,
            max_output_tokens=caps.max_output,
            text_inputs=True,
            image_inputs=True,
            image_url_inputs=True,
            video_inputs=caps.video,
            audio_inputs=False,
            pdf_inputs=True,  # sent as page images (qwen_vl_core.documents.chat_pages)
            image_tool_message=caps.tools,  # moved into a user message (qwen_vl_core.tool_media)
            pdf_tool_message=caps.tools,
            reasoning_output=caps.thinking != "never",
            text_outputs=True,
            tool_calling=caps.tools,
            tool_choice=caps.tools,
            tool_call_streaming=caps.tools,
            structured_output=bool(caps.structured_output),
        )

    # ------------------------------------------------------------------ requests

    def _request(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: Mapping[str, Any]
    ) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
        """(model, core messages, core options) for one call; per-call kwargs win over fields."""
        model, options = call_options(self, stop, kwargs)
        core_messages = to_core_messages(messages)
        response_format = options.get("response_format")
        if isinstance(response_format, Mapping) and response_format.get("type") == "json_object":
            core_messages = ensure_json_hint(core_messages)
        return model, core_messages, options

    def _media(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: Mapping[str, Any]
    ) -> tuple[str, ChatMedia, dict[str, Any]]:
        """(model, messages with documents expanded and images resolved once + their size
        records, core options); ``document_pages`` is taken out of the per-call keywords here."""
        call = dict(kwargs)
        pages = call.pop("document_pages", self.document_pages)
        model, core_messages, options = self._request(messages, stop, call)
        media = prepare_chat_media(core_messages, model=model, options=options,
                                   media_options=self._client.media_options, pages=pages)  # fmt: skip
        return model, media, options

    async def _amedia(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: Mapping[str, Any]
    ) -> tuple[str, ChatMedia, dict[str, Any]]:
        """:meth:`_media` with reading, rendering and encoding off the event loop."""
        call = dict(kwargs)
        pages = call.pop("document_pages", self.document_pages)
        model, core_messages, options = self._request(messages, stop, call)
        media = await aprepare_chat_media(core_messages, model=model, options=options,
                                          media_options=self._client.media_options, pages=pages)  # fmt: skip
        return model, media, options

    def _chat_result(self, result: CoreResult, model: str, media: ChatMedia | None = None) -> ChatResult:
        _warn_if_partial(result)
        return chat_result(result, model=model, images=media.images_metadata() if media else None)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        model, media, options = self._media(messages, stop, kwargs)
        return self._chat_result(self._client.chat(media.messages, model=model, **options), model, media)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        model, media, options = await self._amedia(messages, stop, kwargs)
        return self._chat_result(await self._client.achat(media.messages, model=model, **options), model, media)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        # LangChain's stream() reports each chunk to the callbacks itself.
        model, media, options = self._media(messages, stop, kwargs)
        acc = StreamAccumulator()
        for delta in self._client.stream(media.messages, model=model, **options):
            acc.add(delta)
            chunk = delta_to_chunk(delta)
            if chunk is not None:
                yield ChatGenerationChunk(message=chunk)
        yield self._last_chunk(acc.build(), model, media)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        model, media, options = await self._amedia(messages, stop, kwargs)
        acc = StreamAccumulator()
        async for delta in self._client.astream(media.messages, model=model, **options):
            acc.add(delta)
            chunk = delta_to_chunk(delta)
            if chunk is not None:
                yield ChatGenerationChunk(message=chunk)
        yield self._last_chunk(acc.build(), model, media)

    def _last_chunk(self, summary: CoreResult, model: str, media: ChatMedia | None = None) -> ChatGenerationChunk:
        _warn_if_partial(summary)
        images = media.images_metadata() if media else None
        return ChatGenerationChunk(message=final_chunk(summary, model=model, images=images))

    # ------------------------------------------------------------------ grounding

    def ground(self, image: Any, prompt: str, *, kind: str = "box", convention: str | None = None,
               instruct: bool = True, **kwargs: Any) -> Grounding:  # fmt: skip
        """Find things in ``image`` ("find every signature") and return them as typed boxes
        (``kind="point"``: points) in pixels of that image, whatever the model's convention and
        however the image was downscaled (:mod:`qwen_vl_core.grounding`). ``image``: a path,
        URL, bytes, data URL or PIL image; ``instruct=False`` sends ``prompt`` without the JSON
        format instruction; ``kwargs`` are per-call options (``high_resolution``, ...).
        ``result.draw(image)`` draws them. Raises ``GroundingParseError`` when the answer holds
        no readable boxes."""
        from .grounding import ground

        return ground(self, image, prompt, kind=kind, convention=convention, instruct=instruct, **kwargs)

    async def aground(self, image: Any, prompt: str, *, kind: str = "box", convention: str | None = None,
                      instruct: bool = True, **kwargs: Any) -> Grounding:  # fmt: skip
        """Async :meth:`ground`."""
        from .grounding import aground

        return await aground(self, image, prompt, kind=kind, convention=convention, instruct=instruct, **kwargs)

    # ------------------------------------------------------------------ tools and structured output

    def bind_tools(
        self,
        tools: Sequence[Mapping[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | bool | Mapping[str, Any] | None = None,
        strict: bool | None = None,
        parallel_tool_calls: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (LangChain tools, functions, Pydantic classes, TypedDicts or OpenAI tool dicts).

        ``tool_choice``: ``"auto"``, ``"none"``, ``"required"`` (``"any"`` is an alias), a tool name,
        ``True`` (the only tool, or any tool when there are several), or an OpenAI tool-choice dict.
        A forced choice turns thinking off for the call on hybrid models (see the class docs).
        """
        formatted = [convert_to_openai_tool(t, strict=strict) for t in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = normalize_tool_choice(tool_choice, formatted)
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        return super().bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: Mapping[str, Any] | type | None = None,
        *,
        method: Literal["json_schema", "json_mode", "function_calling"] | None = None,
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict | Any]:
        """Return outputs shaped by ``schema`` (Pydantic class, TypedDict, JSON Schema dict).

        ``method`` defaults to what the model supports: ``json_schema`` (``response_format``
        json_schema), else ``function_calling`` (a forced tool call), else ``json_mode``
        (``response_format`` json_object; a JSON instruction is added to the prompt when no message
        mentions JSON). On hybrid-thinking models thinking is turned off for these calls (with a
        ``UserWarning`` if the model was built with ``enable_thinking=True``).
        With ``include_raw=True`` the result is ``{"raw": AIMessage, "parsed": ..., "parsing_error": ...}``.
        """
        return structured_output(self, schema, method=method, include_raw=include_raw, strict=strict, kwargs=kwargs)

    # ------------------------------------------------------------------ token counting

    def get_num_tokens(self, text: str) -> int:
        """Approximate text tokens (about 4 ASCII characters or 1 CJK character per token)."""
        return text_tokens(text)

    def get_num_tokens_from_messages(
        self,
        messages: list[BaseMessage],
        tools: Sequence[Mapping[str, Any] | type | Callable[..., Any] | BaseTool] | None = None,
    ) -> int:
        """Estimate prompt tokens without any network call.

        Images: the core's documented formula on the size read locally (paths, ``file://``, data
        URLs, bytes, PIL images), with this model's ``high_resolution`` / ``min_pixels`` /
        ``max_pixels``; an image given as a remote URL is not downloaded and counts as the most one
        image can cost (an upper bound). Video files count as 10 s of 720p at ``fps`` (the duration
        is not probed); frame lists count from their frames' sizes. Text is approximated (about 4
        ASCII characters per token), plus a few tokens of chat markup per message; ``tools`` count
        as their JSON text.
        """
        return count_prompt_tokens(self._client, self.model, messages, media=media_options(self), tools=tools)


def _warn_if_partial(result: CoreResult) -> None:
    if result.partial:
        logger.warning(
            "DashScope returned a partial answer (request_id=%s): the server stopped generating "
            "before the end; response_metadata['partial'] is True",
            result.request_id,
        )
