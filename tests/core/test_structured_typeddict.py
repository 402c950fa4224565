"""``typing.TypedDict`` output schemas on every supported Python (Pydantic refuses them before 3.12 unless
rebuilt as ``typing_extensions.TypedDict``): :func:`qwen_vl_core.structured.output_schema`."""

from __future__ import annotations

import sys
import typing
from typing import Annotated, Optional

import typing_extensions

from qwen_vl_core.structured import output_schema, pydantic_typeddict


class Item(typing.TypedDict):
    """One line of a receipt."""

    name: str
    price: float


class Receipt(typing.TypedDict, total=False):
    """A shop receipt."""

    total: typing_extensions.Required[float]  # typing.Required is Python 3.11+
    items: list[Item]
    note: Optional[Item]
    tags: Annotated[list[str], "free text"]
    legacy: typing.List[Item]  # noqa: UP006
    maybe: Item | None


class Plain(typing_extensions.TypedDict):
    name: str


def test_a_typing_typeddict_gives_its_json_schema():
    schema = output_schema(Receipt)
    assert schema.kind == "typeddict" and schema.name == "Receipt"
    js = schema.json_schema
    assert js["required"] == ["total"]
    assert js["description"] == "A shop receipt."
    assert set(js["properties"]) == {"total", "items", "note", "tags", "legacy", "maybe"}
    assert js["$defs"]["Item"]["required"] == ["name", "price"]
    assert schema.response_format()["json_schema"]["name"] == "Receipt"


def test_a_typing_typeddict_validates_nested_items():
    schema = output_schema(Receipt)
    value, problems = schema.validate({"total": "3.5", "items": [{"name": "tea", "price": 2}], "maybe": None})
    assert problems == [] and value == {"total": 3.5, "items": [{"name": "tea", "price": 2.0}], "maybe": None}
    value, problems = schema.parse('```json\n{"items": [{"name": "tea"}]}\n```')
    assert value is None and problems == ["$.total: Field required", "$.items[0].price: Field required"]


def test_typing_extensions_typeddicts_and_python_312_are_left_alone():
    assert pydantic_typeddict(Plain) is Plain
    assert output_schema(Plain).target is Plain
    converted = pydantic_typeddict(Receipt)
    if sys.version_info >= (3, 12):
        assert converted is Receipt
    else:
        assert converted is not Receipt and converted.__name__ == "Receipt"
        # Required[] is honoured even where Python's own __required_keys__ misses it (PEP 563 strings)
        assert converted.__required_keys__ == {"total"}
        assert converted.__optional_keys__ == {"items", "note", "tags", "legacy", "maybe"}
