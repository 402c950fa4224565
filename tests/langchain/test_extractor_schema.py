"""QwenVLExtractor with every schema kind, on a json_schema model and on a JSON-mode-only model, plus the
core helpers behind it (qwen_vl_core.structured: output_schema, load_json_schema, the prompts)."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest
from tests.support.chat import Json, completion, make_model, png_bytes, user_parts
from pydantic import BaseModel, Field
from typing_extensions import NotRequired, TypedDict

from langchain_qwen_vl import InputValidationError, QwenVLExtractor
from qwen_vl_core.structured import (
    JSON_HINT,
    load_json_schema,
    output_schema,
    repair_prompt,
    schema_prompt,
)


class Receipt(BaseModel):
    """A shop receipt."""

    merchant: str = Field(description="shop name as printed")
    total: float


class ReceiptDict(TypedDict):
    merchant: str
    total: float
    note: NotRequired[str]


RECEIPT_SCHEMA = {
    "title": "Receipt",
    "type": "object",
    "properties": {"merchant": {"type": "string"}, "total": {"type": "number"}},
    "required": ["merchant", "total"],
    "additionalProperties": False,
}
ANSWER = {"merchant": "Cafe Lumen", "total": 12.5}


def _schema_file(tmp_path: Path) -> Path:
    path = tmp_path / "receipt.schema.json"
    path.write_text(json.dumps(RECEIPT_SCHEMA), encoding="utf-8")
    return path


SCHEMAS = {
    "pydantic": lambda tmp: Receipt,
    "typeddict": lambda tmp: ReceiptDict,
    "dict": lambda tmp: RECEIPT_SCHEMA,
    "json-file-str": lambda tmp: str(_schema_file(tmp)),
    "json-file-path": lambda tmp: _schema_file(tmp),
}


def _prompt_text(body: dict) -> str:
    return "".join(p.get("text", "") for p in user_parts(body) if p.get("type") == "text")


@pytest.mark.parametrize("kind", SCHEMAS)
def test_json_schema_output_on_qwen3_vl(kind, dashscope, tmp_path) -> None:
    dashscope.script(Json(completion(json.dumps(ANSWER))))
    extractor = QwenVLExtractor(SCHEMAS[kind](tmp_path), llm=make_model(dashscope, model="qwen3-vl-plus"))
    assert extractor.method == "json_schema"

    result = extractor.invoke(png_bytes())

    if kind == "pydantic":
        assert isinstance(result, Receipt) and result == Receipt(**ANSWER)
    else:
        assert type(result) is dict and result == ANSWER
    (request,) = dashscope.chat_requests
    fmt = request.json["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == ("ReceiptDict" if kind == "typeddict" else "Receipt")
    sent = fmt["json_schema"]["schema"]
    assert sent["required"] == ["merchant", "total"] and set(sent["properties"]) >= {"merchant", "total"}
    if kind == "pydantic":
        assert sent["properties"]["merchant"]["description"] == "shop name as printed"
    assert "enable_thinking" not in request.json  # qwen3-vl-plus does not think by default: nothing to send
    assert "JSON Schema" not in _prompt_text(request.json)  # the schema travels in response_format only


@pytest.mark.parametrize("kind", SCHEMAS)
def test_json_mode_with_the_schema_in_the_prompt_on_qwen_vl_max(kind, dashscope, tmp_path) -> None:
    dashscope.script(Json(completion(json.dumps(ANSWER), model="qwen-vl-max")))
    extractor = QwenVLExtractor(SCHEMAS[kind](tmp_path), llm=make_model(dashscope, model="qwen-vl-max"))
    assert extractor.method == "json_mode"

    result = extractor.invoke(png_bytes())

    assert (result.model_dump() if kind == "pydantic" else result) == ANSWER
    body = dashscope.last_body
    assert body["response_format"] == {"type": "json_object"}
    text = _prompt_text(body)
    assert "JSON" in text and JSON_HINT in text
    assert json.dumps(extractor.schema.json_schema, ensure_ascii=False) in text
    assert "enable_thinking" not in body


def test_method_can_be_chosen_and_is_checked(dashscope) -> None:
    llm = make_model(dashscope, model="qwen3-vl-plus")
    assert QwenVLExtractor(Receipt, llm=llm, method="json_mode").method == "json_mode"
    with pytest.raises(ValueError, match="does not support method='json_schema'"):
        QwenVLExtractor(Receipt, llm=make_model(dashscope, model="qwen-vl-max"), method="json_schema")
    with pytest.raises(ValueError, match="method must be"):
        QwenVLExtractor(Receipt, llm=llm, method="function_calling")


def test_a_schema_violation_is_reported_per_schema_kind(dashscope, tmp_path) -> None:
    for kind, make in SCHEMAS.items():
        extractor = QwenVLExtractor(make(tmp_path), llm=make_model(dashscope), max_repairs=0)
        dashscope.script(Json(completion(json.dumps({"merchant": "Cafe", "total": "twelve"}))))
        with pytest.raises(ValueError) as info:
            extractor.invoke(png_bytes())
        assert any(e.startswith("$.total:") for e in info.value.errors), (kind, info.value.errors)


# ------------------------------------------------------------------ core: qwen_vl_core.structured


def test_output_schema_kinds() -> None:
    assert output_schema(Receipt).kind == "pydantic"
    assert output_schema(ReceiptDict).kind == "typeddict"
    assert output_schema(RECEIPT_SCHEMA).kind == "json_schema"
    assert output_schema({"type": "object"}).name == "output"
    td = output_schema(ReceiptDict)
    assert td.json_schema["required"] == ["merchant", "total"]  # NotRequired is optional
    assert td.validate({"merchant": "x", "total": "2.5"}) == ({"merchant": "x", "total": 2.5}, [])


def test_output_schema_validation_messages() -> None:
    value, errors = output_schema(Receipt).validate({"merchant": "x"})
    assert value is None and errors == ["$.total: Field required"]
    value, errors = output_schema(RECEIPT_SCHEMA).validate({"merchant": 3, "total": 1, "extra": True})
    assert value is None
    assert "$: Additional properties are not allowed ('extra' was unexpected)" in errors
    assert "$.merchant: 3 is not of type 'string'" in errors
    value, errors = output_schema(Receipt).parse("Sure!\n```json\n" + json.dumps(ANSWER) + "\n```")
    assert errors == [] and value == Receipt(**ANSWER)
    value, errors = output_schema(Receipt).parse("I cannot read this receipt.")
    assert value is None and errors[0].startswith("the answer is not valid JSON")


def test_pydantic_v1_models_work() -> None:
    from pydantic.v1 import BaseModel as BaseModelV1

    class Old(BaseModelV1):
        total: float

    spec = output_schema(Old)
    assert spec.kind == "pydantic_v1" and spec.json_schema["required"] == ["total"]
    assert spec.validate({"total": "1.5"})[0].total == 1.5
    assert spec.validate({"total": "x"})[1] == ["$.total: value is not a valid float"]


def test_load_json_schema_sources_and_errors(tmp_path) -> None:
    path = _schema_file(tmp_path)
    assert load_json_schema(path) == RECEIPT_SCHEMA == load_json_schema(str(path))
    assert load_json_schema('{"type": "object"}') == {"type": "object"}
    with pytest.raises(InputValidationError, match="no such file"):
        load_json_schema(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputValidationError, match="is not valid JSON"):
        load_json_schema(bad)
    with pytest.raises(InputValidationError, match="must be a JSON object"):
        load_json_schema(str(_write(tmp_path / "list.json", "[1, 2]")))
    with pytest.raises(InputValidationError, match="invalid JSON schema"):
        load_json_schema({"type": 5})
    with pytest.raises(InputValidationError, match="Pydantic model class, a TypedDict"):
        output_schema(42)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_typing_typeddict_on_old_pythons_is_a_clear_error() -> None:
    class Plain(typing.TypedDict):
        total: float

    try:
        spec = output_schema(Plain)
    except InputValidationError as exc:  # Python < 3.12: pydantic needs typing_extensions.TypedDict
        assert "typing_extensions.TypedDict" in str(exc)
    else:
        assert spec.kind == "typeddict"


def test_prompts() -> None:
    text = schema_prompt(RECEIPT_SCHEMA)
    assert "JSON" in text and json.dumps(RECEIPT_SCHEMA) in text
    repair = repair_prompt(["$.total: Field required", "$.merchant: too long"])
    assert "- $.total: Field required\n- $.merchant: too long\n" in repair
    assert "corrected JSON object only" in repair


def test_schema_errors_are_raised_before_anything_is_sent(dashscope, tmp_path) -> None:
    with pytest.raises(InputValidationError, match="no such file"):
        QwenVLExtractor(str(tmp_path / "nope.json"), llm=make_model(dashscope))
    assert dashscope.requests == []
