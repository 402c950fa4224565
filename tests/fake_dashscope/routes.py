"""The default answer of each endpoint, used when no reply is scripted (or a reply is :class:`Auto`).

Chat answers describe what they saw (``I see 1 image(s) and 0 video(s). You said: ...``), think when asked to
(``enable_thinking``, QVQ and ``-thinking`` models), call the tool ``tool_choice`` forces, and report the
usage the token oracle computes. Requests are checked first by :mod:`.validation`.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from .endpoints import RecordedRequest
from .messages import last_user
from .payloads import (
    BASE_PROMPT_TOKENS,
    Json,
    Reply,
    Sse,
    chunks,
    completion,
    default_usage,
    error_body,
    native_chunks,
    native_completion,
    native_error_body,
    native_frames,
    native_usage,
    new_id,
    norm_tool_calls,
    words,
)
from .tokens import inspect_user
from .uploads import oss_reply, policy_reply
from .validation import check_compatible, check_embeddings, check_native

if TYPE_CHECKING:
    from .server import DashScopeServer

DEFAULT_REASONING = "Thinking about the request."


def default_reply(server: DashScopeServer, rec: RecordedRequest) -> Reply:
    """What ``server`` answers to ``rec`` when nothing is scripted."""
    kind = rec.kind
    if kind == "compatible" and rec.method == "POST":
        return compatible_reply(server, rec)
    if kind == "native" and rec.method == "POST":
        return native_reply(server, rec)
    if kind == "upload_policy" and rec.method == "GET":
        return policy_reply(server.upload_area, rec, server.url)
    if kind == "oss" and rec.method == "POST":
        return oss_reply(server.upload_area, rec)
    if kind == "embeddings" and rec.method == "POST":
        return embeddings_reply(rec)
    return Json(error_body(f"Not found: {rec.method} {rec.path}", "not_found"), 404)


def embeddings_reply(rec: RecordedRequest) -> Reply:
    """OpenAI-compatible embeddings: bag-of-words hashing vectors, so texts sharing words are close."""
    problem = check_embeddings(rec)
    if problem:
        return Json(error_body(problem.message, problem.code), problem.status)
    body = rec.json if isinstance(rec.json, dict) else {}
    texts = body.get("input")
    texts = [texts] if isinstance(texts, str) else texts
    dims = int(body.get("dimensions") or 1024)
    data = []
    for i, text in enumerate(texts):
        vec = [0.0] * dims
        for word in re.findall(r"\w+", str(text).lower()):
            vec[int(hashlib.sha256(word.encode()).hexdigest(), 16) % dims] += 1.0
        norm = sum(v * v for v in vec) ** 0.5 or 1.0
        data.append({"object": "embedding", "index": i, "embedding": [v / norm for v in vec]})
    tokens = sum(words(t) for t in texts)
    return Json({"object": "list", "data": data, "model": body.get("model"), "id": new_id(),
                 "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


def compatible_reply(server: DashScopeServer, rec: RecordedRequest) -> Reply:
    """``POST /compatible-mode/v1/chat/completions``: JSON, or SSE with ``"stream": true``."""
    rid = new_id()
    problem = check_compatible(rec, server.upload_area.holds)
    if problem:
        return Json(error_body(problem.message, problem.code, type_="invalid_request_error", request_id=rid), problem.status)
    body = rec.json
    model = body["model"]
    messages = body["messages"]
    stream = body.get("stream") is True

    media = inspect_user(last_user(messages), model, body.get("vl_high_resolution_images") is True)
    text = f"I see {media.images} image(s) and {media.videos} video(s)."
    if media.text:
        text += f" You said: {media.text[:80]}"
    thinks = body.get("enable_thinking") is True or model.lower().startswith("qvq") or model.lower().endswith("-thinking")
    reasoning = DEFAULT_REASONING if thinks else None
    calls = forced_tool_call(body)
    if calls:
        text = ""
    prompt = BASE_PROMPT_TOKENS + media.image_tokens + media.video_tokens
    usage = default_usage(
        text,
        reasoning,
        norm_tool_calls(calls),
        prompt_tokens=prompt,
        image_tokens=media.image_tokens,
        video_tokens=media.video_tokens,
    )
    if stream:
        opts = body.get("stream_options")
        include = isinstance(opts, dict) and opts.get("include_usage") is True
        events = chunks(
            text, reasoning=reasoning, tool_calls=calls, model=model, usage=usage, include_usage=include, request_id=rid
        )
        return Sse(events, headers={"x-request-id": rid})
    return Json(completion(text, reasoning=reasoning, tool_calls=calls, model=model, usage=usage, request_id=rid))


def forced_tool_call(body: dict) -> list[dict] | None:
    """The call ``tool_choice`` forces (``"required"`` picks the first tool), with empty arguments."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    choice = body.get("tool_choice")
    if not tools:
        return None
    if choice == "required":
        name = (tools[0].get("function") or {}).get("name")
    elif isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
    else:
        return None
    return [{"name": name, "arguments": {}}] if name else None


def native_reply(server: DashScopeServer, rec: RecordedRequest) -> Reply:
    """``POST .../multimodal-generation/generation``: JSON, or DashScope's SSE framing when the request asks."""
    rid = new_id()
    problem = check_native(rec, server.upload_area.holds)
    if problem:
        return Json(native_error_body(problem.message, problem.code, request_id=rid), problem.status)
    body = rec.json
    model = body["model"]
    messages = body["input"]["messages"]
    params = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}

    media = inspect_user(last_user(messages), model, params.get("vl_high_resolution_images") is True)
    ocr = params.get("ocr_options")
    task = (ocr.get("task") if isinstance(ocr, dict) else None) or "none"
    text = f"OCR({task}): I see {media.images} image(s)."
    thinks = params.get("enable_thinking") is True or model.lower().startswith("qvq")
    reasoning = DEFAULT_REASONING if thinks else None
    r = words(reasoning)
    usage = native_usage(
        input_tokens=BASE_PROMPT_TOKENS + media.image_tokens + media.video_tokens,
        output_tokens=words(text) + r,
        image_tokens=media.image_tokens,
        video_tokens=media.video_tokens,
        reasoning_tokens=r,
    )
    if rec.wants_stream:
        events = native_chunks(
            text, reasoning=reasoning, incremental=params.get("incremental_output") is True, usage=usage, request_id=rid
        )
        return Sse(native_frames(events), done=False, headers={"x-request-id": rid})
    return Json(native_completion(text, reasoning=reasoning, usage=usage, request_id=rid))
