"""``with_structured_output``: method choice from the capability registry, the
``response_format`` for a schema, a JSON output parser that tolerates fenced or prose-wrapped
JSON (via :func:`qwen_vl_core.structured.extract_json`) and streams partial objects, and the
runnable that puts them together."""

from __future__ import annotations

from collections.abc import Mapping
from operator import itemgetter
from typing import Any, Literal

from langchain_core.exceptions import OutputParserException
from langchain_core.output_parsers import JsonOutputKeyToolsParser, PydanticToolsParser
from langchain_core.output_parsers.transform import BaseCumulativeTransformOutputParser
from langchain_core.outputs import ChatGeneration, Generation
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.json import parse_partial_json
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import ValidationError
from pydantic.v1 import ValidationError as ValidationErrorV1
from qwen_vl_core import InputValidationError, ModelCapabilities, get_capabilities
from qwen_vl_core.structured import extract_json, json_schema_format, output_schema
from typing_extensions import is_typeddict

__all__ = [
    "structured_output",
    "Method",
    "choose_method",
    "is_pydantic_class",
    "response_format_for",
    "JsonMessageParser",
    "openai_tool",
    "tool_parser",
    "with_raw",
]

Method = Literal["json_schema", "json_mode", "function_calling"]
METHODS: tuple[str, ...] = ("json_schema", "json_mode", "function_calling")


def choose_method(caps: ModelCapabilities, method: str | None) -> str:
    """The method to use: the one asked for (checked against the registry for known models), else
    ``json_schema`` if supported, else ``function_calling`` if the model has tools, else ``json_mode``."""
    name = caps.name
    if method is not None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
        if caps.known:
            if method == "json_schema" and "json_schema" not in caps.structured_output:
                raise InputValidationError(f"model {name!r} does not support method='json_schema'; {_supported(caps)}")
            if method == "json_mode" and "json_object" not in caps.structured_output:
                raise InputValidationError(f"model {name!r} does not support method='json_mode'; {_supported(caps)}")
            if method == "function_calling" and not caps.tools:
                raise InputValidationError(f"model {name!r} does not support tool calling; {_supported(caps)}")
        return method
    if "json_schema" in caps.structured_output:
        return "json_schema"
    if caps.tools:
        return "function_calling"
    if "json_object" in caps.structured_output:
        return "json_mode"
    raise InputValidationError(
        f"model {name!r} supports no structured-output method (no response_format, no tools)"
        + (" because it always thinks" if caps.thinking == "always" else "")
        + "; use e.g. qwen3-vl-plus"
    )


def _supported(caps: ModelCapabilities) -> str:
    methods = [m for m, ok in (
        ("json_schema", "json_schema" in caps.structured_output),
        ("function_calling", caps.tools),
        ("json_mode", "json_object" in caps.structured_output),
    ) if ok]
    return f"it supports: {', '.join(methods)}" if methods else "it supports no structured-output method"


def is_pydantic_class(schema: Any) -> bool:
    return isinstance(schema, type) and is_basemodel_subclass(schema)


def response_format_for(schema: Any, *, strict: bool | None) -> dict[str, Any]:
    """``{"type": "json_schema", ...}`` for a Pydantic class, TypedDict, JSON Schema dict, or an
    OpenAI-style ``{"name", "schema"}`` / full response-format dict."""
    if isinstance(schema, Mapping):
        if schema.get("type") == "json_schema" and isinstance(schema.get("json_schema"), Mapping):
            return dict(schema)
        if "schema" in schema and "name" in schema:
            spec = dict(schema)
            if strict is not None:
                spec["strict"] = strict
            return {"type": "json_schema", "json_schema": spec}
        return json_schema_format(schema, strict=strict)
    fn = openai_tool(schema)["function"]
    return json_schema_format(fn.get("parameters", {}), name=fn["name"], strict=strict, description=fn.get("description"))


def openai_tool(schema: Any, *, strict: bool | None = None) -> dict[str, Any]:
    """LangChain's ``convert_to_openai_tool``; for a TypedDict it cannot read (``Required[...]`` /
    ``NotRequired[...]`` fields, on any Python), the core's schema of it (Pydantic's, which also
    takes ``typing.TypedDict`` before Python 3.12)."""
    try:
        return convert_to_openai_tool(schema, strict=strict)
    except (TypeError, ValueError):
        if not is_typeddict(schema):
            raise
    found = output_schema(schema)
    fn: dict[str, Any] = {"name": found.name, "parameters": found.json_schema}
    if found.json_schema.get("description"):
        fn["description"] = found.json_schema["description"]
    if strict is not None:
        fn["strict"] = strict
    return {"type": "function", "function": fn}


def _message_text(result: list[Generation]) -> str:
    if not result:
        raise OutputParserException("the model returned no generation to parse")
    gen = result[0]
    return gen.message.text if isinstance(gen, ChatGeneration) else gen.text


class JsonMessageParser(BaseCumulativeTransformOutputParser[Any]):
    """Parse the JSON in an ``AIMessage``'s text (reasoning is never parsed): plain JSON, a
    ```json fenced block, or an object in surrounding prose. With a Pydantic class the result is
    validated into it. While streaming, yields each partial object that parses (and validates)."""

    pydantic_object: Any = None

    def _validate(self, obj: Any, text: str) -> Any:
        if self.pydantic_object is None:
            return obj
        try:
            if hasattr(self.pydantic_object, "model_validate"):
                return self.pydantic_object.model_validate(obj)
            return self.pydantic_object.parse_obj(obj)  # a pydantic.v1 model
        except (ValidationError, ValidationErrorV1) as exc:
            raise OutputParserException(
                f"the JSON does not match {self.pydantic_object.__name__}: {exc}", llm_output=text
            ) from exc

    def parse_result(self, result: list[Generation], *, partial: bool = False) -> Any:
        text = _message_text(result)
        if partial:
            try:
                obj = parse_partial_json(_strip_fence(text))
                return None if obj is None else self._validate(obj, text)
            except (ValueError, OutputParserException):
                return None
        try:
            obj = extract_json(text)
        except ValueError as exc:
            shown = text if len(text) <= 200 else text[:197] + "..."
            raise OutputParserException(f"the model did not return valid JSON: {shown!r}", llm_output=text) from exc
        return self._validate(obj, text)

    def parse(self, text: str) -> Any:
        return self.parse_result([Generation(text=text)])

    @property
    def _type(self) -> str:
        return "qwen_vl_json"


def _strip_fence(text: str) -> str:
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        if stripped.rstrip().endswith("```"):
            stripped = stripped.rstrip()[:-3]
    return stripped


def tool_parser(schema: Any, tool_name: str) -> Runnable:
    if is_pydantic_class(schema):
        return PydanticToolsParser(tools=[schema], first_tool_only=True)
    return JsonOutputKeyToolsParser(key_name=tool_name, first_tool_only=True)


def with_raw(llm: Runnable, parser: Runnable) -> Runnable:
    """``{"raw": AIMessage, "parsed": ..., "parsing_error": Exception | None}``."""
    assign = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
    fallback = RunnablePassthrough.assign(parsed=lambda _: None)
    return RunnableMap(raw=llm) | assign.with_fallbacks([fallback], exception_key="parsing_error")



def structured_output(
    llm: Any,
    schema: Mapping[str, Any] | type | None,
    *,
    method: str | None,
    include_raw: bool,
    strict: bool | None,
    kwargs: dict[str, Any],
) -> Runnable:
    """The runnable behind ``ChatQwenVL.with_structured_output`` (see its docs): ``llm`` bound to
    a response format or a forced tool call, piped into the matching parser."""
    if kwargs.pop("tools", None):
        raise ValueError("with_structured_output does not take tools; use bind_tools for tool calling")
    caps = get_capabilities(llm.model)
    method = choose_method(caps, method)
    if schema is None and method != "json_mode":
        raise ValueError(f"schema is required for method={method!r}; only json_mode works without one")
    pydantic_object = schema if is_pydantic_class(schema) else None
    # LangChain converts the traced schema again: give it one it can read (see openai_tool)
    traced = openai_tool(schema) if schema is not None and is_typeddict(schema) else schema
    ls_format: dict[str, Any] = {"kwargs": {"method": method, "strict": strict}, "schema": traced}
    if method == "function_calling":
        tool_def = openai_tool(schema, strict=strict)
        tool_name = tool_def["function"]["name"]
        # An always-thinking model cannot be forced to call a tool: ask, don't force.
        choice = None if caps.known and caps.thinking == "always" else tool_name
        bound = llm.bind_tools(
            [tool_def], tool_choice=choice, strict=strict, parallel_tool_calls=False,
            ls_structured_output_format=ls_format, **kwargs,
        )  # fmt: skip
        parser: Runnable = tool_parser(schema, tool_name)
    elif method == "json_schema":
        response_format = response_format_for(schema, strict=strict)
        bound = llm.bind(response_format=response_format, ls_structured_output_format=ls_format, **kwargs)
        parser = JsonMessageParser(pydantic_object=pydantic_object)
    else:
        ls_format["kwargs"] = {"method": method}
        bound = llm.bind(response_format={"type": "json_object"}, ls_structured_output_format=ls_format, **kwargs)
        parser = JsonMessageParser(pydantic_object=pydantic_object)
    return with_raw(bound, parser) if include_raw else bound | parser
