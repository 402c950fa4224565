"""Shared helpers for the ChatQwenVL tests (not a test module): sample media, a model factory,
and server responders that answer like a real model would for structured output."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

from PIL import Image

from tests.fake_dashscope import Json, Sse, chunks, completion  # noqa: F401

from langchain_qwen_vl import ChatQwenVL

KEY = "sk-test-0123456789abcdef"

# A minimal MP4 header: enough for the core's format sniffing (the server never decodes videos).
MP4_BYTES = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 256


def png_bytes(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((width, height), 64).convert("RGB").save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{b64(data)}"


def make_model(server: Any, **kwargs: Any) -> ChatQwenVL:
    params: dict[str, Any] = {"api_key": KEY, "base_url": server.url, "max_retries": 0}
    params.update(kwargs)
    return ChatQwenVL(**params)


def user_parts(body: dict, index: int = -1) -> list[dict]:
    """Content parts of the user message at ``index`` among the user messages of a request body."""
    users = [m for m in body["messages"] if m["role"] == "user"]
    content = users[index]["content"]
    return content if isinstance(content, list) else [{"type": "text", "text": content}]


# ------------------------------------------------------------------------- fake "intelligence"


def sample_for(schema: dict) -> Any:
    """A value satisfying a (simple) JSON schema: what a well-behaved model would answer."""
    kind = schema.get("type")
    if "anyOf" in schema:
        return sample_for(next(s for s in schema["anyOf"] if s.get("type") != "null"))
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        return {name: sample_for(sub) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [sample_for(schema.get("items", {"type": "string"}))]
    if kind == "integer":
        return 3
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    return "cats"


def smart_reply(rec: Any) -> Any:
    """Answer structured-output and forced-tool requests with schema-shaped JSON; else the default.

    - ``response_format`` json_schema: the content is an object matching the schema;
    - ``response_format`` json_object: a fixed object (``{"setup", "punchline"}``);
    - tools with a forced ``tool_choice``: a call with arguments matching the tool's parameters;
    - tools with ``auto`` and no tool result yet in the conversation: a call to the first tool;
    - otherwise ``None`` (the server's default behaviour).
    """
    body = rec.json if isinstance(rec.json, dict) else {}
    model = body.get("model", "qwen3-vl-plus")
    stream = body.get("stream") is True
    fmt = body.get("response_format") or {}
    text = None
    calls = None
    if fmt.get("type") == "json_schema":
        text = json.dumps(sample_for(fmt["json_schema"]["schema"]))
    elif fmt.get("type") == "json_object":
        text = json.dumps({"setup": "Why did the cat sit on the computer?", "punchline": "To keep an eye on the mouse."})
    tools = body.get("tools") or []
    if tools and text is None:
        choice = body.get("tool_choice")
        answered = any(m.get("role") == "tool" for m in body["messages"])
        name = None
        if isinstance(choice, dict):
            name = choice["function"]["name"]
        elif choice == "required" or (choice in (None, "auto") and not answered):
            name = tools[0]["function"]["name"]
        if name is not None:
            fn = next(t["function"] for t in tools if t["function"]["name"] == name)
            calls = [{"id": "call_smart_1", "name": name, "arguments": sample_for(fn.get("parameters") or {})}]
    if text is None and calls is None:
        return None
    if stream:
        return Sse(chunks(text, tool_calls=calls, model=model))
    return Json(completion(text, tool_calls=calls, model=model))
