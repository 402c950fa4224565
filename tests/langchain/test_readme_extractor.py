"""Every ```python snippet of the README section "Structured extraction and the image tool" runs, as
written, against the local DashScope server (found through DASHSCOPE_BASE_URL, with a fake key in
DASHSCOPE_API_KEY, as a user's environment would provide them).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.support.chat import KEY, Json, Sse, chunks, completion, jpeg_bytes, png_bytes

from tests.support.readme_sections import python_snippets

HEADING = "Structured extraction and the image tool"
ROOT = Path(__file__).resolve().parents[2]


SNIPPETS = python_snippets(HEADING)
RECEIPT_SCHEMA = {
    "type": "object",
    "properties": {"merchant": {"type": "string"}, "total": {"type": "number"}},
    "required": ["merchant", "total"],
}
SCHEMA_MARK = "It must match this JSON Schema:\n"


def instance_of(schema: dict, defs: dict | None = None):
    """A minimal value satisfying a JSON schema (objects, arrays, scalars, $ref, anyOf)."""
    defs = schema.get("$defs", {}) if defs is None else defs
    if "$ref" in schema:
        return instance_of(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "anyOf" in schema:
        return instance_of(next(s for s in schema["anyOf"] if s.get("type") != "null"), defs)
    kind = schema.get("type", "object")
    if kind == "object":
        return {k: instance_of(v, defs) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return [instance_of(schema.get("items", {"type": "string"}), defs)] * 2
    return {"string": "ACME-7", "integer": 250, "number": 42.6, "boolean": True}[kind]


def _texts(body: dict) -> list[str]:
    out = []
    for message in body["messages"]:
        content = message.get("content")
        parts = [content] if isinstance(content, str) else content or []
        out += [p if isinstance(p, str) else p.get("text", "") for p in parts]
    return out


def responder(rec):
    body = rec.json
    fmt = body.get("response_format") or {}
    text, calls = None, None
    if fmt.get("type") == "json_schema":
        text = json.dumps(instance_of(fmt["json_schema"]["schema"]))
    elif fmt.get("type") == "json_object":  # the schema is in the prompt
        prompt = next(t for t in _texts(body) if SCHEMA_MARK in t)
        text = json.dumps(instance_of(json.loads(prompt.split(SCHEMA_MARK, 1)[1])))
    elif body.get("tools") and not any(m["role"] == "tool" for m in body["messages"]):
        args = {"image": "photos/receipt.jpg", "question": "What is the total?"}
        calls = [{"id": "call_1", "name": "look_at_image", "arguments": args}]
    elif body.get("tools"):
        text = "You paid 42.60 CNY."
    else:
        text = "The total is 42.60 CNY."
    if rec.wants_stream:
        return Sse(chunks(text, tool_calls=calls, model=body["model"]))
    return Json(completion(text, tool_calls=calls, model=body["model"]))


def test_the_section_has_its_snippets() -> None:
    assert len(SNIPPETS) == 4


@pytest.mark.parametrize("index", range(len(SNIPPETS)), ids=lambda i: f"snippet{i + 1}")
def test_snippet_runs(index: int, dashscope, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DASHSCOPE_BASE_URL", dashscope.url)
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    cwd = Path.cwd()  # a fresh temporary directory (tests/conftest.py)
    for name in ("invoice.png", "page1.png", "page2.png"):
        (cwd / name).write_bytes(png_bytes(320, 240, (250, 250, 250)))
    for name in ("scan1.jpg", "scan3.jpg", "label1.jpg", "label2.jpg"):
        (cwd / name).write_bytes(jpeg_bytes(320, 240))
    (cwd / "scan2.jpg").write_bytes(jpeg_bytes(8, 8))  # too small: fails before anything is sent
    (cwd / "receipt.schema.json").write_text(json.dumps(RECEIPT_SCHEMA), encoding="utf-8")
    (cwd / "photos").mkdir()
    (cwd / "photos" / "receipt.jpg").write_bytes(jpeg_bytes(320, 240))
    dashscope.responder = responder

    code = compile(SNIPPETS[index], f"README snippet{index + 1}", "exec", dont_inherit=True)  # no __future__ here
    exec(code, {"__name__": "__main__"})  # noqa: S102 - our own documentation

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert KEY not in out
    sent = [r.json for r in dashscope.chat_requests]
    if index == 0:
        assert lines == ["ACME-7 42.6 ACME-7", "2 items", "42.6"]
        assert len(sent) == 3 and all(b["response_format"]["type"] == "json_schema" for b in sent)
        assert sum(p.get("type") == "image_url" for p in sent[1]["messages"][0]["content"]) == 2
        assert sent[2]["messages"][0]["content"][-1]["text"] == "The total is handwritten at the bottom."
    elif index == 1:
        assert lines[0] == "scan1.jpg ACME-7 42.6" and lines[2] == "scan3.jpg ACME-7 42.6"
        assert lines[1].startswith("scan2.jpg failed: image 'scan2.jpg' is 8x8 px")
        assert len(sent) == 2 and all(b["response_format"] == {"type": "json_object"} for b in sent)
    elif index == 2:
        assert lines == ["{'product': 'ACME-7', 'weight_grams': 250} " + lines[0].rsplit("} ", 1)[1]] * 2
        assert lines[0].endswith(" tokens")
        assert len(sent) == 2 and all(b["enable_thinking"] is False for b in sent)
    else:
        assert lines[0] == "The total is 42.60 CNY."
        assert lines[1].startswith("Cannot look at that image: image '/etc/passwd'")
        assert "outside the allowed directories" in lines[1]
        assert lines[-1] == "You paid 42.60 CNY."
        assert [b["model"] for b in sent] == ["qwen3-vl-flash", "qwen3.5-plus", "qwen3-vl-flash", "qwen3.5-plus"]
