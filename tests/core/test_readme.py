"""Every ```python snippet of README.md's core section runs, as written, against the local DashScope server.

The LangChain and LlamaIndex sections have tests of their own (test_readme_langchain.py, ...)."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image, ImageDraw

from tests.fake_dashscope import Auto, Json, Sse, chunks, completion
from tests.support.readme_sections import python_snippets

SNIPPETS = python_snippets("The core client")


def example_instance(schema: dict, defs: dict | None = None):
    """A minimal instance of a JSON schema (objects, arrays, scalars, enums, $ref, anyOf)."""
    defs = defs if defs is not None else schema.get("$defs", schema.get("definitions", {}))
    if "$ref" in schema:
        return example_instance(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return example_instance(next(s for s in schema["anyOf"] if s.get("type") != "null"), defs)
    kind = schema.get("type", "object")
    if kind == "object":
        return {k: example_instance(v, defs) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return [example_instance(schema.get("items", {"type": "string"}), defs)]
    return {"string": "example", "integer": 1, "number": 1.5, "boolean": True}.get(kind, None)


def responder(req):
    body = req.json if isinstance(req.json, dict) else {}
    rf = body.get("response_format") or {}
    tools = body.get("tools") or []
    text = None
    if rf.get("type") == "json_schema":
        text = json.dumps(example_instance(rf["json_schema"]["schema"]))
    elif rf.get("type") == "json_object":
        text = json.dumps({"answer": "example"})
    elif tools and body.get("tool_choice") not in (None, "auto", "none"):
        choice = body["tool_choice"]
        fn = choice["function"]["name"] if isinstance(choice, dict) else tools[0]["function"]["name"]
        params = next(t["function"].get("parameters", {}) for t in tools if t["function"]["name"] == fn)
        calls = [{"id": "call_1", "name": fn, "arguments": example_instance(params)}]
        return Sse(chunks("", tool_calls=calls)) if req.wants_stream else Json(completion("", tool_calls=calls))
    if text is None:
        return Auto()
    return Sse(chunks(text)) if req.wants_stream else Json(completion(text))


@pytest.fixture
def sample_files(tmp_path, monkeypatch):
    work = tmp_path / "readme"
    work.mkdir()
    monkeypatch.chdir(work)
    img = Image.new("RGB", (800, 600), "white")
    draw = ImageDraw.Draw(img)
    draw.text((20, 20), "INVOICE 42  total 12.50", fill="black")
    draw.ellipse((300, 200, 500, 400), outline="red", width=5)
    img.save(work / "photo.jpg", quality=90)
    img.save(work / "scan.png")
    img.save(work / "page.png")
    pages = [img.copy() for _ in range(2)]
    pages[0].save(work / "scan.pdf", save_all=True, append_images=pages[1:])
    (work / "scans").mkdir()
    img.save(work / "scans" / "a.png")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return work


def test_readme_has_snippets():
    assert len(SNIPPETS) >= 3


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_snippet_runs(index, dashscope, sample_files, monkeypatch, api_key):
    monkeypatch.setenv("DASHSCOPE_BASE_URL", dashscope.url)
    monkeypatch.setenv("DASHSCOPE_API_KEY", api_key)
    dashscope.responder = responder
    code = SNIPPETS[index]
    exec(compile(code, f"README.md snippet {index}", "exec"), {"__name__": "__readme__"})
    assert dashscope.requests, "the snippet should have talked to the server"
