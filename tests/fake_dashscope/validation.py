"""The request checks DashScope makes before it answers, with its own status codes and messages.

Each ``check_*`` returns the first :class:`Problem` in DashScope's order, or ``None`` for a request it would
serve. Scripted and responder replies skip these checks; only the default answers run them.
"""

from __future__ import annotations

import re
from typing import Callable, NamedTuple

from .endpoints import RecordedRequest
from .messages import all_urls, content_parts, is_image, is_video, message_texts

DATA_URI_LIMIT = 10485760  # characters of one data URL

QVQ_STREAM_ONLY = "This model only support stream mode, please enable the stream parameter to access the model."
JSON_WORD_REQUIRED = "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'."
DATA_URI_TOO_LARGE = f"Exceeded limit on max bytes per data-uri item : {DATA_URI_LIMIT}"
THINKING_WITH_FORMAT = "The response_format parameter is not supported when enable_thinking is true."
OSS_HEADER_REQUIRED = (
    "The provided URL does not appear to be valid. oss:// URLs need the header X-DashScope-OssResourceResolve: enable."
)


MEDIA_ONLY_IN_USER = "image parts are only accepted in user messages"


class Problem(NamedTuple):
    status: int
    message: str
    code: str


def auth_ok(rec: RecordedRequest) -> bool:
    return re.match(r"^\s*bearer\s+\S+", rec.headers.get("authorization", ""), re.I) is not None


def media_error(rec: RecordedRequest, messages: list, uploaded: Callable[[str], bool]) -> str | None:
    """Data URLs over the size limit, and ``oss://`` URLs without the resolve header or never uploaded
    (``uploaded(url)`` says whether one was)."""
    for url in all_urls(messages):
        if url.startswith("data:") and len(url) > DATA_URI_LIMIT:
            return DATA_URI_TOO_LARGE
        if url.startswith("oss://"):
            if rec.headers.get("x-dashscope-ossresourceresolve", "").strip().lower() != "enable":
                return OSS_HEADER_REQUIRED
            if not uploaded(url):
                return f"Failed to download multimodal content: {url} does not exist (was it uploaded?)"
    return None


def role_error(messages: list) -> str | None:
    """Image and video parts outside ``user`` messages (a tool, system or assistant message): DashScope
    refuses them with HTTP 400."""
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "user":
            continue
        if any(is_image(part) or is_video(part) for part in content_parts(message)):
            return f"Invalid content in messages[{index}] (role {role!r}): {MEDIA_ONLY_IN_USER}."
    return None


def check_compatible(rec: RecordedRequest, uploaded: Callable[[str], bool]) -> Problem | None:
    """A compatible-mode chat request (codes ``invalid_api_key`` / ``invalid_parameter_error``)."""

    def fail(status: int, message: str, code: str = "invalid_parameter_error") -> Problem:
        return Problem(status, message, code)

    if not auth_ok(rec):
        return fail(401, "Incorrect API key provided. ", "invalid_api_key")
    body = rec.json
    if not isinstance(body, dict):
        return fail(400, "The request body is not valid JSON.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return fail(400, "The model parameter is required.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return fail(400, "'messages' must be a non-empty list.")
    stream = body.get("stream") is True
    if model.lower().startswith("qvq") and not stream:
        return fail(400, QVQ_STREAM_ONLY)
    fmt = body.get("response_format")
    fmt_type = fmt.get("type") if isinstance(fmt, dict) else None
    if fmt_type in ("json_object", "json_schema") and body.get("enable_thinking") is True:
        return fail(400, THINKING_WITH_FORMAT)
    if fmt_type == "json_object" and not any("json" in t.lower() for t in message_texts(messages)):
        return fail(400, JSON_WORD_REQUIRED)
    problem = role_error(messages) or media_error(rec, messages, uploaded)
    if problem:
        return fail(400, problem)
    return None


def check_native(rec: RecordedRequest, uploaded: Callable[[str], bool]) -> Problem | None:
    """A native multimodal-generation request (codes ``InvalidApiKey`` / ``InvalidParameter``)."""

    def fail(status: int, message: str, code: str = "InvalidParameter") -> Problem:
        return Problem(status, message, code)

    if not auth_ok(rec):
        return fail(401, "Invalid API-key provided.", "InvalidApiKey")
    body = rec.json
    if not isinstance(body, dict):
        return fail(400, "The request body is not valid JSON.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return fail(400, "Model not specified.")
    inp = body.get("input")
    messages = inp.get("messages") if isinstance(inp, dict) else None
    if not isinstance(messages, list) or not messages:
        return fail(400, "Input messages must be a non-empty list.")
    if model.lower().startswith("qvq") and not rec.wants_stream:
        return fail(400, QVQ_STREAM_ONLY)
    problem = role_error(messages) or media_error(rec, messages, uploaded)
    if problem:
        return fail(400, problem)
    return None


def check_embeddings(rec: RecordedRequest) -> Problem | None:
    """An OpenAI-compatible embeddings request: a string or a list of 1 to 10 strings."""
    if not auth_ok(rec):
        return Problem(401, "Invalid API-key provided.", "invalid_api_key")
    body = rec.json if isinstance(rec.json, dict) else {}
    texts = body.get("input")
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list) or not texts or len(texts) > 10:
        return Problem(400, "input must be a string or a list of 1 to 10 strings", "invalid_parameter_error")
    return None
