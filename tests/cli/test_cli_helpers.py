"""The CLI's pure pieces: request checking, detail mapping, redaction, schema validation."""

from __future__ import annotations

import argparse
import base64
import json

import pytest

from qwen_vl_cli._common import CLIError, Console
from qwen_vl_cli._output import output_path, redact
from qwen_vl_cli._request import ANALYZE_FIELDS, OCR_FIELDS, load_request, prepare
from qwen_vl_core.structured import load_json_object, load_json_schema, schema_errors
from qwen_vl_core.errors import InputValidationError


def analyze(**request):
    return prepare(request, command="analyze", known=ANALYZE_FIELDS, default_model="qwen3-vl-plus")


# ---------------------------------------------------------------- request


def test_messages_put_media_first_then_the_prompt():
    p = analyze(prompt="Compare", images=["a.png", "https://x/b.jpg"], video="c.mp4", fps=1.5, max_tokens=50)
    assert p.messages == [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "a.png"}},
                {"type": "image_url", "image_url": {"url": "https://x/b.jpg"}},
                {"type": "video_url", "video_url": {"url": "c.mp4"}},
                {"type": "text", "text": "Compare"},
            ],
        }
    ]
    assert p.options == {"max_tokens": 50, "fps": 1.5}
    assert p.model == "qwen3-vl-plus" and p.request["model"] == "qwen3-vl-plus"


@pytest.mark.parametrize(
    "model, cap",
    [("qwen3-vl-plus", 512 * 32 * 32), ("qvq-max", 512 * 28 * 28)],
)
def test_detail_low_caps_pixels_by_the_model_patch(model, cap):
    assert analyze(prompt="x", image="a.png", detail="low", model=model).options["max_pixels"] == cap


def test_detail_high_and_auto():
    assert analyze(prompt="x", image="a.png", detail="high").options == {"high_resolution": True}
    assert analyze(prompt="x", image="a.png", detail="auto").options == {}


@pytest.mark.parametrize(
    "request_, message",
    [
        ({"image": "a.png"}, "'prompt' is required"),
        ({"prompt": "x"}, "has no input"),
        ({"prompt": "x", "image": "a.png", "detail": "high", "high_resolution": False}, "high_resolution is false"),
        ({"prompt": "x", "image": "a.png", "detail": "low", "max_pixels": 1000}, "either detail or max_pixels"),
        ({"prompt": "x", "image": "a.png", "max_tokens": "100"}, "'max_tokens' must be an integer, got string"),
        ({"prompt": "x", "image": "a.png", "temperature": True}, "'temperature' must be a number"),
        ({"prompt": "x", "images": []}, "'images' must be a non-empty array of strings"),
        ({"prompt": "x", "image": "a.png", "enable_thinking": "yes"}, "must be true or false"),
        ({"prompt": "x", "image": "a.png", "max_retries": -1}, "max_retries must be 0 or more"),
        ({"prompt": "x", "image": "a.png", "task": "table_parsing"}, "unknown request field 'task'"),
        ({"prompt": "x", "image": "a.png", "fps": 2}, "'fps' applies to a video"),
    ],
)
def test_request_errors(request_, message):
    with pytest.raises(InputValidationError) as info:
        analyze(**request_)
    assert message in str(info.value)


def test_null_fields_mean_not_set():
    p = analyze(prompt="x", image="a.png", temperature=None, model=None)
    assert p.options == {} and p.model == "qwen3-vl-plus" and "temperature" not in p.request


def test_ocr_prompt_is_optional():
    p = prepare({"image": "a.png"}, command="ocr", known=OCR_FIELDS, default_model="qwen-vl-ocr", prompt_required=False)
    assert p.messages[0]["content"] == [{"type": "image_url", "image_url": {"url": "a.png"}}]


def _args(**kw):
    base = dict(request=None, request_file=None, prompt=None, image=None, video=None, model=None)
    base.update(kw)
    return argparse.Namespace(**base)


def test_load_request_sources_and_shortcuts(tmp_path):
    f = tmp_path / "r.json"
    f.write_text(json.dumps({"prompt": "p", "images": ["a", "b"]}))
    assert load_request(_args(request_file=str(f), image=["c"])) == {"prompt": "p", "image": "c"}
    assert load_request(_args(request='{"prompt": "p"}', image=["c", "d"])) == {"prompt": "p", "images": ["c", "d"]}
    with pytest.raises(CLIError, match="must be a JSON object, got list"):
        load_request(_args(request="[1]"))
    with pytest.raises(CLIError, match="no such file"):
        load_request(_args(request_file=str(tmp_path / "nope.json")))


# ---------------------------------------------------------------- output


def test_redact_replaces_data_urls_and_bare_base64_anywhere():
    payload = base64.b64encode(b"\x89PNG" + bytes(range(256)) * 4).decode()
    value = {
        "image": f"data:image/png;base64,{payload}",
        "video_frames": [f"data:image/jpeg;base64,{payload}", "https://x/y.jpg"],
        "blob": payload,
        "prompt": "keep me",
        "text": "data:text/plain,hello",
    }
    out = redact(value)
    n = 4 + 256 * 4
    assert out == {
        "image": f"<data URL, {n} bytes>",
        "video_frames": [f"<data URL, {n} bytes>", "https://x/y.jpg"],
        "blob": f"<base64, {n} bytes>",
        "prompt": "keep me",
        "text": "<data URL, 5 bytes>",
    }


def test_console_scrubs_secrets(capsys):
    console = Console()
    console.add_secret("sk-secret-123")
    console.out("key=sk-secret-123!")
    console.error("bad sk-secret-123\nsecond line")
    out, err = capsys.readouterr()
    assert out == "key=***!\n" and err == "qwen-vl: error: bad *** second line\n"


def test_output_path_default_and_overrides(tmp_path):
    default = output_path("ocr", None)
    assert default.parent.as_posix() == "output/qwen-vl" and default.name.startswith("ocr-") and default.suffix == ".json"
    assert output_path("ocr", str(tmp_path / "x.json")) == tmp_path / "x.json"
    assert output_path("ocr", str(tmp_path)).parent == tmp_path
    assert output_path("ocr", None) != output_path("ocr", None)  # unique names within one second


# ---------------------------------------------------------------- schema


SCHEMA = {
    "type": "object",
    "properties": {
        "total": {"type": "number"},
        "count": {"type": "integer"},
        "items": {"type": "array", "items": {"$ref": "#/$defs/item"}, "minItems": 1},
        "kind": {"enum": ["a", "b"]},
        "note": {"type": ["string", "null"]},
    },
    "required": ["total", "items"],
    "additionalProperties": False,
    "$defs": {"item": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}},
}


def test_validate_accepts_a_valid_value():
    assert schema_errors({"total": 1, "count": 2, "items": [{"name": "x"}], "kind": "a", "note": None}, SCHEMA) == []


def test_validate_reports_every_kind_of_problem_with_a_path():
    value = {"total": "1", "count": 1.5, "items": [{"nom": 1}], "kind": "c", "extra": 1}
    problems = schema_errors(value, SCHEMA)
    assert len(problems) == 5
    assert "$.total: '1' is not of type 'number'" in problems
    assert "$.count: 1.5 is not of type 'integer'" in problems
    assert "$.items[0]: 'name' is a required property" in problems
    assert any(p.startswith("$.kind: 'c' is not one of") for p in problems)
    assert any(p.startswith("$: Additional properties are not allowed ('extra'") for p in problems)
    assert schema_errors({"items": []}, SCHEMA) == ["$: 'total' is a required property", "$.items: [] should be non-empty"]
    assert schema_errors(True, {"type": "integer"}) == ["$: True is not of type 'integer'"]


def test_validate_any_of():
    schema = {"anyOf": [{"type": "string"}, {"type": "object", "required": ["a"]}]}
    assert schema_errors("x", schema) == [] and schema_errors({"a": 1}, schema) == []
    assert schema_errors({"b": 1}, schema) == ["$: {'b': 1} is not valid under any of the given schemas"]


def test_invalid_schema_is_an_input_error():
    from qwen_vl_core.errors import InputValidationError

    with pytest.raises(InputValidationError, match="invalid JSON schema"):
        schema_errors({}, {"type": "no-such-type"})


def test_load_schema_from_file_inline_and_errors(tmp_path):
    f = tmp_path / "s.json"
    f.write_text(json.dumps(SCHEMA))
    assert load_json_schema(str(f), what="--schema") == SCHEMA
    assert load_json_schema('{"type": "object"}') == {"type": "object"}
    with pytest.raises(InputValidationError, match="--schema file .*missing.json.*no such file"):
        load_json_schema(str(tmp_path / "missing.json"), what="--schema")
    with pytest.raises(InputValidationError, match="not valid JSON"):
        load_json_schema("{nope")
    with pytest.raises(InputValidationError, match="invalid JSON schema"):
        load_json_schema('{"type": 5}')
    with pytest.raises(InputValidationError, match="--task-config must be a JSON object"):
        f.write_text("[1]")
        load_json_object(str(f), what="--task-config")
    # a task config is any JSON object, not a schema: no meta-schema check
    assert load_json_object('{"result_schema": {"type": 5}}') == {"result_schema": {"type": 5}}
