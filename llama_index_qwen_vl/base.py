"""``QwenVL``: Qwen-VL models on DashScope as a LlamaIndex ``FunctionCallingLLM``."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.generic_utils import (
    achat_to_completion_decorator,
    astream_chat_to_completion_decorator,
    chat_to_completion_decorator,
    stream_chat_to_completion_decorator,
)
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
    ToolCallBlock,
)
from llama_index.core.bridge.pydantic import Field
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.prompts import PromptTemplate
from llama_index.core.types import Model, PydanticProgramMode

from qwen_vl_core import DEFAULT_MODEL, ModelCapabilities, QwenVLClient, StreamAccumulator, get_capabilities
from qwen_vl_core.chat_media import ChatMedia, aprepare_chat_media, prepare_chat_media
from qwen_vl_core.grounding import Grounding
from qwen_vl_core.structured import extract_json, json_schema_format
from qwen_vl_core.planning import thinking_off_for_call
from qwen_vl_core.tools import normalize_tool_choice

from ._convert import chat_response, stream_response, to_core_messages, tool_selections
from ._connection import ClientSettings

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

__all__ = ["QwenVL", "DEFAULT_MODEL"]

dispatcher = get_dispatcher(__name__)

# Fields sent as request options when set (None means: not sent, the model's default applies).
_OPTION_FIELDS = (
    "enable_thinking",
    "thinking_budget",
    "high_resolution",
    "min_pixels",
    "max_pixels",
    "fps",
    "temperature",
    "top_p",
    "seed",
    "max_tokens",
)


class QwenVL(ClientSettings, FunctionCallingLLM):
    """Qwen-VL (Qwen3-VL, Qwen2.5-VL, QVQ, Qwen3.5, qwen-vl-ocr) through DashScope.

    Messages may hold ``TextBlock``, ``ImageBlock`` (url, path, bytes; ``detail``),
    ``VideoBlock`` (url, path, bytes; ``fps``) and ``DocumentBlock`` (PDFs, multi-page TIFFs: sent
    as page images, ``document_pages`` selects pages); images in tool results are sent in a user
    message after them. ``raw["images"]`` of a response holds each image's sizes. Answers carry the reasoning of thinking models as
    a ``ThinkingBlock`` (streamed as ``additional_kwargs["thinking_delta"]``) and tool calls as
    ``ToolCallBlock``s. Works with any OpenAI-compatible server through ``base_url``.

    Example:
        .. code-block:: python

            from llama_index.core.llms import ChatMessage, ImageBlock, TextBlock
            from llama_index_qwen_vl import QwenVL

            llm = QwenVL(model="qwen3-vl-plus")
            msg = ChatMessage(blocks=[ImageBlock(path="chart.png"), TextBlock(text="What does it show?")])
            print(llm.chat([msg]).message.content)
    """

    model: str = Field(default=DEFAULT_MODEL, description="DashScope model name.")
    enable_thinking: bool | None = Field(default=None, description="Thinking on/off (None: the model's default).")
    thinking_budget: int | None = Field(default=None, gt=0, description="Maximum reasoning tokens.")
    high_resolution: bool | None = Field(
        default=None, description="Send vl_high_resolution_images (up to 16384 tokens per image)."
    )
    min_pixels: int | None = Field(default=None, gt=0, description="Per-image lower pixel bound.")
    max_pixels: int | None = Field(default=None, gt=0, description="Per-image upper pixel bound.")
    fps: float | None = Field(default=None, description="Frames per second sampled from videos (0.1 to 10).")
    temperature: float | None = Field(default=None, description="Sampling temperature [0, 2).")
    top_p: float | None = Field(default=None, description="Nucleus sampling (0, 1].")
    seed: int | None = Field(default=None, description="Sampling seed.")
    max_tokens: int | None = Field(default=None, gt=0, description="Maximum output tokens.")
    additional_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Other request options: stop, top_k, extra_body, ..."
    )
    context_window: int | None = Field(
        default=None, gt=0, description="Override the registry's context window (for unknown models)."
    )
    document_pages: list[int] | str | None = Field(
        default=None,
        description="Pages of PDFs / TIFFs in DocumentBlocks to send ([1, 3] or '1-3'; default all); also per call.",
    )

    def __init__(self, *, client: QwenVLClient | None = None, **data: Any) -> None:
        super().__init__(**data)
        self._init_client(client)

    @classmethod
    def class_name(cls) -> str:
        return "QwenVL_llm"

    # ---------------------------------------------------------------- metadata

    @property
    def capabilities(self) -> ModelCapabilities:
        return get_capabilities(self.model)

    @property
    def metadata(self) -> LLMMetadata:
        caps = self.capabilities
        return LLMMetadata(
            context_window=self.context_window or caps.context_window,
            num_output=self.max_tokens or caps.max_output,
            is_chat_model=True,
            is_function_calling_model=caps.tools,
            model_name=self.model,
            system_role=MessageRole.SYSTEM,
        )

    # ---------------------------------------------------------------- requests

    def _options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Field defaults, then ``additional_kwargs``, then per-call keywords; ``None`` means unset.

        Structured output and forced tool calls need thinking off: a configured
        ``enable_thinking=True`` (and budget) is dropped for such a call, with one ``UserWarning``
        (the core's :func:`~qwen_vl_core.planning.thinking_off_for_call`); ``enable_thinking=True``
        passed with the call itself, or an always-thinking model, is refused by the core."""
        options: dict[str, Any] = {name: getattr(self, name) for name in _OPTION_FIELDS}
        options.update(self.additional_kwargs)
        options.update(kwargs)
        options.pop("strict", None)  # OpenAI-only switch some LlamaIndex callers pass
        options, note = thinking_off_for_call(self.capabilities, options, kwargs)
        if note:
            warnings.warn(f"QwenVL: {note}", UserWarning, stacklevel=_caller_level())
        return {k: v for k, v in options.items() if v is not None}

    def _request(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> tuple[list[dict], dict[str, Any]]:
        return to_core_messages(messages), self._options(kwargs)

    def _media(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> tuple[ChatMedia, dict[str, Any]]:
        """Messages with documents expanded and images resolved once (and their size records),
        and the options; ``document_pages`` is taken out of the per-call keywords here."""
        kwargs = dict(kwargs)
        pages = kwargs.pop("document_pages", self.document_pages)
        wire, options = self._request(messages, kwargs)
        media = prepare_chat_media(wire, model=self.model, options=options,
                                   media_options=self._get_client().media_options, pages=pages)  # fmt: skip
        return media, options

    async def _amedia(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> tuple[ChatMedia, dict[str, Any]]:
        """:meth:`_media` with reading, rendering and encoding off the event loop."""
        kwargs = dict(kwargs)
        pages = kwargs.pop("document_pages", self.document_pages)
        wire, options = self._request(messages, kwargs)
        media = await aprepare_chat_media(wire, model=self.model, options=options,
                                          media_options=self._get_client().media_options, pages=pages)  # fmt: skip
        return media, options

    # ---------------------------------------------------------------- chat

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        media, options = self._media(messages, kwargs)
        result = self._get_client().chat(media.messages, model=self.model, **options)
        return chat_response(result, images=media.images_metadata())

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        media, options = await self._amedia(messages, kwargs)
        result = await self._get_client().achat(media.messages, model=self.model, **options)
        return chat_response(result, images=media.images_metadata())

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        media, options = self._media(messages, kwargs)
        deltas = self._get_client().stream(media.messages, model=self.model, **options)
        images = media.images_metadata()

        def gen() -> ChatResponseGen:
            acc = StreamAccumulator()
            for delta in deltas:
                response = stream_response(acc, delta, images)
                if response is not None:
                    yield response

        return gen()

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        media, options = await self._amedia(messages, kwargs)
        deltas = self._get_client().astream(media.messages, model=self.model, **options)
        images = media.images_metadata()

        async def gen() -> ChatResponseAsyncGen:
            acc = StreamAccumulator()
            async for delta in deltas:
                response = stream_response(acc, delta, images)
                if response is not None:
                    yield response

        return gen()

    # ---------------------------------------------------------------- grounding

    def ground(self, image: Any, prompt: str, *, kind: str = "box", convention: str | None = None,
               instruct: bool = True, **kwargs: Any) -> Grounding:  # fmt: skip
        """Find things in ``image`` ("find every signature") and return typed boxes
        (``kind="point"``: points) in pixels of that image, whatever the model's coordinate
        convention and however the image was downscaled (:mod:`qwen_vl_core.grounding`).
        ``image``: a path, URL, bytes or PIL image; ``kwargs`` are per-call options.
        ``result.draw(image)`` draws them."""
        from .grounding import ground

        return ground(self, image, prompt, kind=kind, convention=convention, instruct=instruct, **kwargs)

    async def aground(self, image: Any, prompt: str, *, kind: str = "box", convention: str | None = None,
                      instruct: bool = True, **kwargs: Any) -> Grounding:  # fmt: skip
        """Async :meth:`ground`."""
        from .grounding import aground

        return await aground(self, image, prompt, kind=kind, convention=convention, instruct=instruct, **kwargs)

    # ---------------------------------------------------------------- completion

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return chat_to_completion_decorator(self.chat)(prompt, **kwargs)

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return await achat_to_completion_decorator(self.achat)(prompt, **kwargs)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        return stream_chat_to_completion_decorator(self.stream_chat)(prompt, **kwargs)

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseAsyncGen:
        return await astream_chat_to_completion_decorator(self.astream_chat)(prompt, **kwargs)

    # ---------------------------------------------------------------- tools

    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        tool_choice: str | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        specs = [tool.metadata.to_openai_tool(skip_length_check=True) for tool in tools]
        messages = list(chat_history or [])
        if isinstance(user_msg, str):
            user_msg = ChatMessage(role=MessageRole.USER, content=user_msg)
        if user_msg is not None:
            messages.append(user_msg)
        out: dict[str, Any] = {"messages": messages, **kwargs}
        if specs:
            out["tools"] = specs
            choice = normalize_tool_choice(tool_choice, specs, required=tool_required)
            if choice is not None:
                out["tool_choice"] = choice  # a forced choice turns configured thinking off (see _options)
            if allow_parallel_tool_calls:
                out["parallel_tool_calls"] = True
        return out

    def _validate_chat_with_tools_response(
        self,
        response: ChatResponse,
        tools: Sequence[BaseTool],
        allow_parallel_tool_calls: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        if not allow_parallel_tool_calls:
            calls = [b for b in response.message.blocks if isinstance(b, ToolCallBlock)]
            if len(calls) > 1:
                first = calls[0]
                response.message.blocks = [
                    b for b in response.message.blocks if not isinstance(b, ToolCallBlock) or b is first
                ]
        return response

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        return tool_selections(response, error_on_no_tool_call)

    # ---------------------------------------------------------------- structured output

    def _native_structured(self) -> bool:
        caps = self.capabilities
        return (
            self.pydantic_program_mode == PydanticProgramMode.DEFAULT
            and "json_schema" in caps.structured_output
            and caps.thinking != "always"
        )

    def _structured_request(
        self, output_cls: type[Model], prompt: PromptTemplate, llm_kwargs: dict[str, Any] | None, prompt_args: dict
    ) -> tuple[list[ChatMessage], dict[str, Any]]:
        messages = self._extend_messages(prompt.format_messages(llm=self, **prompt_args))
        kwargs = dict(llm_kwargs or {})
        kwargs.pop("tool_choice", None)
        kwargs["response_format"] = json_schema_format(output_cls.model_json_schema(), name=output_cls.__name__)
        return messages, kwargs

    @staticmethod
    def _parse_structured(output_cls: type[Model], response: ChatResponse) -> Model:
        text = response.message.content or ""
        try:
            data = extract_json(text)
        except ValueError as exc:
            request_id = (response.raw or {}).get("request_id")
            raise ValueError(
                f"the model's answer is not JSON for {output_cls.__name__} (request_id={request_id}): {text[:200]!r}"
            ) from exc
        return output_cls.model_validate(data)

    @dispatcher.span
    def structured_predict(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        """Structured output through DashScope's ``json_schema`` response format where the model
        has it (Qwen3-VL, Qwen3.5), else through a forced tool call or output parsing."""
        if not self._native_structured():
            return super().structured_predict(output_cls, prompt, llm_kwargs=llm_kwargs, **prompt_args)
        messages, kwargs = self._structured_request(output_cls, prompt, llm_kwargs, prompt_args)
        return self._parse_structured(output_cls, self.chat(messages, **kwargs))

    @dispatcher.span
    async def astructured_predict(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        if not self._native_structured():
            return await super().astructured_predict(output_cls, prompt, llm_kwargs=llm_kwargs, **prompt_args)
        messages, kwargs = self._structured_request(output_cls, prompt, llm_kwargs, prompt_args)
        return self._parse_structured(output_cls, await self.achat(messages, **kwargs))


_LIBRARY_PREFIXES = ("llama_index", "qwen_vl_core", "pydantic", "asyncio", "concurrent", "threading", "contextvars",
                     "contextlib", "wrapt")  # fmt: skip


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside LlamaIndex and this package (the user's call),
    so a warning points there; the outermost frame when there is none."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None:
        if not frame.f_globals.get("__name__", "").startswith(_LIBRARY_PREFIXES):
            return level
        frame = frame.f_back
        level += 1
    return max(1, level - 1)
