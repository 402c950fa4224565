"""``QwenVLExtractor``: images in, validated structured data out (a LangChain ``Runnable``).

One call sends the image(s) and an extraction prompt with the schema as ``response_format``
(``json_schema`` where the model supports it, else JSON mode with the schema in the prompt),
parses the answer (fenced or prose-wrapped JSON is fine), validates it, and on a problem asks again
with the problems listed, up to ``max_repairs`` times. Schema handling and validation live in
:mod:`qwen_vl_core.structured`; the requests go through :class:`ChatQwenVL`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForChainRun, CallbackManagerForChainRun
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import ensure_config, patch_config
from qwen_vl_core import InputValidationError, QwenVLError, get_capabilities
from qwen_vl_core.structured import OutputSchema, output_schema, repair_prompt, schema_prompt

from .chat_models import ChatQwenVL

__all__ = ["QwenVLExtractor", "ExtractionError", "DEFAULT_EXTRACTION_PROMPT"]

DEFAULT_EXTRACTION_PROMPT = (
    "Extract the requested information from the image. Copy text and numbers exactly as they appear; "
    "do not guess values that are not visible."
)
_PAGES_NOTE = "The {n} images are the pages of one document, in order; read them together."
_INPUT_KEYS = ("image", "images", "prompt")


class ExtractionError(QwenVLError, ValueError):
    """No valid answer after every repair attempt.

    ``raw_text`` is the model's last answer, ``errors`` what is wrong with it (invalid JSON or schema
    violations, as ``"$.path: problem"`` lines), ``attempts`` how many requests were made and
    ``request_id`` the last request's id.
    """

    def __init__(
        self, message: str, *, raw_text: str = "", errors: Sequence[str] = (), attempts: int = 0,
        request_id: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message, request_id=request_id)
        self.raw_text = raw_text
        self.errors = list(errors)
        self.attempts = attempts

    def __reduce__(self):  # keep the extra fields when pickled
        return (_rebuild, (self.message, self.raw_text, self.errors, self.attempts, self.request_id))


def _rebuild(message: str, raw_text: str, errors: list[str], attempts: int, request_id: str | None) -> ExtractionError:
    return ExtractionError(message, raw_text=raw_text, errors=errors, attempts=attempts, request_id=request_id)


class QwenVLExtractor(Runnable[Any, Any]):
    """Extract structured data from images with Qwen-VL, validated against a schema.

    Example:
        ```python
        from pydantic import BaseModel
        from langchain_qwen_vl import QwenVLExtractor

        class Invoice(BaseModel):
            number: str
            total: float

        extract = QwenVLExtractor(Invoice, model="qwen3-vl-plus")
        invoice = extract.invoke("invoice.png")             # -> Invoice
        pages = extract.invoke(["page1.png", "page2.png"])  # one document, one request
        ```

    Args:
        schema: a Pydantic model class (the output is an instance of it), a TypedDict class
            (``typing`` or ``typing_extensions``, on every supported Python), a JSON Schema dict, or
            the path of a ``.json`` schema file (the output is a ``dict``).
        prompt: the extraction instruction (default :data:`DEFAULT_EXTRACTION_PROMPT`); a call's
            ``{"prompt": ...}`` overrides it.
        llm: the :class:`ChatQwenVL` to use; default ``ChatQwenVL(**chat_kwargs)`` (``model``,
            ``region``, ``base_url``, ``api_key``, ... ; model ``qwen3-vl-plus``).
        max_repairs: how many times a wrong answer (invalid JSON, schema violation) is sent back
            with its problems for a corrected one; then :class:`ExtractionError` is raised.
        method: ``"json_schema"`` (``response_format`` with the schema) or ``"json_mode"`` (JSON
            object output, schema in the prompt); default: ``json_schema`` where the model supports
            it (capability registry), else ``json_mode``.
        include_raw: return ``{"parsed": result, "raw": last AIMessage, "attempts": n}`` instead of
            the result (the message carries ``usage_metadata`` and ``response_metadata["request_id"]``);
            failures still raise :class:`ExtractionError`.

    Input: one image in any form ``ChatQwenVL`` accepts (URL, data URL, ``oss://``, local path or
    ``file://`` URI, bytes, PIL image); a list of images (pages of one document, sent together in
    one request); or a dict ``{"image" | "images": ..., "prompt": "..."}``.

    Thinking is off for extraction (DashScope cannot think while its output is forced): hybrid
    models (``qwen3.5-plus``) get ``enable_thinking=false``; an ``llm`` built with
    ``enable_thinking=True`` runs the extraction with thinking off, after one ``UserWarning`` here;
    an always-thinking model (``qvq-max``) is refused with a ``ValueError`` here. ``batch``/``abatch``
    run items concurrently up to the config's ``max_concurrency``; with ``return_exceptions=True`` a
    failed item is returned as its exception.
    Every request (repairs included) is a child run of this one, so callbacks see all token usage.
    """

    def __init__(
        self,
        schema: Any,
        *,
        prompt: str | None = None,
        llm: ChatQwenVL | None = None,
        max_repairs: int = 2,
        method: Literal["json_schema", "json_mode"] | None = None,
        include_raw: bool = False,
        **chat_kwargs: Any,
    ) -> None:
        if llm is not None and chat_kwargs:
            raise TypeError(
                f"pass either llm or ChatQwenVL settings, not both (got llm and {', '.join(sorted(chat_kwargs))})"
            )
        if isinstance(max_repairs, bool) or not isinstance(max_repairs, int) or max_repairs < 0:
            raise ValueError(f"max_repairs must be an integer >= 0, got {max_repairs!r}")
        if prompt is not None and (not isinstance(prompt, str) or not prompt.strip()):
            raise ValueError("prompt must be a non-empty string")
        self.schema: OutputSchema = output_schema(schema)
        self.llm: ChatQwenVL = llm if llm is not None else ChatQwenVL(**chat_kwargs)
        self.prompt = prompt
        self.max_repairs = max_repairs
        self.include_raw = include_raw
        self.method = self._choose_method(method)

    def _choose_method(self, method: str | None) -> str:
        caps = get_capabilities(self.llm.model)
        name = self.llm.model
        if caps.thinking == "always":
            raise ValueError(
                f"model {name!r} always thinks, and extraction needs thinking off (structured output); "
                "use e.g. qwen3-vl-plus or qwen3.5-plus"
            )
        if self.llm.enable_thinking is True:
            warnings.warn(
                f"QwenVLExtractor: extraction needs thinking off (DashScope cannot think while its output is "
                f"forced): its requests to {name!r} run with thinking off, although the llm has enable_thinking=True",
                UserWarning,
                stacklevel=3,
            )
        modes = caps.structured_output  # unknown models: both (permissive defaults)
        if method is None:
            if "json_schema" in modes:
                return "json_schema"
            if "json_object" in modes:
                return "json_mode"
            raise ValueError(f"model {name!r} has no structured (JSON) output; use e.g. qwen3-vl-plus")
        if method not in ("json_schema", "json_mode"):
            raise ValueError(f"method must be 'json_schema' or 'json_mode', got {method!r}")
        needed = "json_schema" if method == "json_schema" else "json_object"
        if needed not in modes:
            raise ValueError(f"model {name!r} does not support method={method!r}")
        return method

    # ------------------------------------------------------------------ Runnable typing

    @property
    def InputType(self) -> Any:  # noqa: N802 - LangChain's name
        return Any

    @property
    def OutputType(self) -> Any:  # noqa: N802
        if self.include_raw:
            return dict
        return self.schema.target if self.schema.kind in ("pydantic", "pydantic_v1") else dict

    def __repr__(self) -> str:
        return (
            f"QwenVLExtractor(schema={self.schema.name!r}, model={self.llm.model!r}, method={self.method!r}, "
            f"max_repairs={self.max_repairs})"
        )

    # ------------------------------------------------------------------ requests

    def _messages(self, value: Any) -> list[BaseMessage]:
        images, prompt = _split_input(value)
        text = prompt or self.prompt or DEFAULT_EXTRACTION_PROMPT
        if len(images) > 1 and prompt is None:
            text += " " + _PAGES_NOTE.format(n=len(images))
        if self.method == "json_mode":
            text += "\n\n" + schema_prompt(self.schema.json_schema)
        parts: list[Any] = [{"type": "image", "image": image} for image in images]
        parts.append({"type": "text", "text": text})
        return [HumanMessage(content=parts)]

    def _options(self) -> dict[str, Any]:
        # thinking off for these calls (warned once at construction): the llm's own switch and budget unset
        off = {"enable_thinking": None, "thinking_budget": None} if self.llm.enable_thinking is True else {}
        if self.method == "json_schema":
            return {"response_format": self.schema.response_format(), **off}
        return {"response_format": {"type": "json_object"}, **off}

    def _check(self, message: AIMessage) -> tuple[Any, list[str]]:
        result, errors = self.schema.parse(message.text)
        if errors and message.response_metadata.get("finish_reason") == "length":
            errors.append("the answer was cut off (finish_reason 'length'); give a shorter answer or raise max_tokens")
        return result, errors

    def _output(self, result: Any, message: AIMessage, attempts: int) -> Any:
        if self.include_raw:
            return {"parsed": result, "raw": message, "attempts": attempts}
        return result

    def _failure(self, message: AIMessage, errors: list[str], attempts: int) -> ExtractionError:
        first = errors[0] if errors else "invalid answer"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return ExtractionError(
            f"no valid {self.schema.name} after {attempts} attempt{'s' if attempts != 1 else ''}: {first}{more}",
            raw_text=message.text,
            errors=errors,
            attempts=attempts,
            request_id=message.response_metadata.get("request_id"),
        )

    def _extract(self, value: Any, run_manager: CallbackManagerForChainRun, config: RunnableConfig) -> Any:
        messages = self._messages(value)
        options = self._options()
        for attempt in range(1, self.max_repairs + 2):
            child = patch_config(config, callbacks=run_manager.get_child(f"attempt:{attempt}"))
            message = self.llm.invoke(messages, child, **options)
            result, errors = self._check(message)
            if not errors:
                return self._output(result, message, attempt)
            messages = [*messages, AIMessage(content=message.text), HumanMessage(content=repair_prompt(errors))]
        raise self._failure(message, errors, attempt)

    async def _aextract(
        self, value: Any, run_manager: AsyncCallbackManagerForChainRun, config: RunnableConfig
    ) -> Any:
        messages = self._messages(value)
        options = self._options()
        for attempt in range(1, self.max_repairs + 2):
            child = patch_config(config, callbacks=run_manager.get_child(f"attempt:{attempt}"))
            message = await self.llm.ainvoke(messages, child, **options)
            result, errors = self._check(message)
            if not errors:
                return self._output(result, message, attempt)
            messages = [*messages, AIMessage(content=message.text), HumanMessage(content=repair_prompt(errors))]
        raise self._failure(message, errors, attempt)

    # ------------------------------------------------------------------ Runnable API

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:  # noqa: A002
        """Extract from one input (see the class docs); ``batch`` runs this per item."""
        _no_kwargs(kwargs)
        return self._call_with_config(self._extract, input, ensure_config(config), run_type="chain")

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:  # noqa: A002
        """Natively async :meth:`invoke` (``ChatQwenVL.ainvoke``, no thread pool)."""
        _no_kwargs(kwargs)
        return await self._acall_with_config(self._aextract, input, ensure_config(config), run_type="chain")


def _no_kwargs(kwargs: Mapping[str, Any]) -> None:
    if kwargs:
        raise TypeError(f"QwenVLExtractor.invoke takes no keyword arguments; got {', '.join(sorted(kwargs))}")


def _split_input(value: Any) -> tuple[list[Any], str | None]:
    """(images, prompt or None) from an image, a list of images, or ``{"image"|"images", "prompt"}``."""
    prompt = None
    if isinstance(value, Mapping):
        unknown = sorted(str(k) for k in value if k not in _INPUT_KEYS)
        if unknown:
            raise InputValidationError(
                f"extractor input dict has unknown key(s) {', '.join(map(repr, unknown))}; "
                "expected 'image' or 'images', and optionally 'prompt'"
            )
        if ("image" in value) == ("images" in value):
            raise InputValidationError("extractor input dict needs exactly one of 'image' or 'images'")
        prompt = value.get("prompt")
        if prompt is not None and (not isinstance(prompt, str) or not prompt.strip()):
            raise InputValidationError("the input's 'prompt' must be a non-empty string")
        value = value["image"] if "image" in value else value["images"]
    if isinstance(value, (list, tuple)):
        images = list(value)
        if not images:
            raise InputValidationError("no image given: the list of images is empty")
    elif value is None:
        raise InputValidationError("no image given")
    else:
        images = [value]
    return images, prompt
