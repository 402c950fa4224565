"""A local DashScope-protocol HTTP server for the offline test suite and the benchmarks.

Real sockets, HTTP/1.1 keep-alive, chunked SSE, and faults on demand. It speaks:

- ``POST /compatible-mode/v1/chat/completions`` (and ``/v1/chat/completions``): OpenAI-compatible chat,
  JSON or SSE (``"stream": true``);
- ``POST /api/v1/services/aigc/multimodal-generation/generation``: the native multimodal API, JSON or
  DashScope's own SSE framing (``id:`` / ``event:result`` / ``:HTTP_STATUS/200`` / ``data:``);
- ``GET /api/v1/uploads?action=getPolicy&model=M`` and ``POST /oss``: the temporary-upload flow.

Chat and native requests take their reply from, in order: the queue filled by :meth:`DashScopeServer.script`,
then :attr:`DashScopeServer.responder`, then :meth:`DashScopeServer.default_reply` (which also enforces the real
server's validation rules). A scripted or responder reply bypasses validation entirely.

Usage::

    with DashScopeServer() as server:
        server.script(Json(completion("hi")), Sse(chunks("hello")), Reset())
        client = SomeClient(base_url=server.compatible_url, api_key="sk-test")
"""

from __future__ import annotations

import base64
import collections
import datetime as _dt
import email.message
import io
import hashlib
import json as _json
import re
import socket
import socketserver
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Union
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "DashScopeServer",
    "RecordedRequest",
    "Reply",
    "Json",
    "Text",
    "Sse",
    "Reset",
    "Slow",
    "Auto",
    "completion",
    "chunks",
    "make_usage",
    "native_completion",
    "native_chunks",
    "native_frames",
    "native_usage",
    "error_body",
    "native_error_body",
    "parse_multipart",
    "COMPATIBLE_PATHS",
    "NATIVE_PATH",
    "UPLOAD_POLICY_PATH",
    "OSS_PATH",
    "DATA_URI_LIMIT",
]

COMPATIBLE_PATHS = ("/compatible-mode/v1/chat/completions", "/v1/chat/completions")
NATIVE_PATH = "/api/v1/services/aigc/multimodal-generation/generation"
EMBEDDING_PATHS = ("/compatible-mode/v1/embeddings", "/v1/embeddings")
UPLOAD_POLICY_PATH = "/api/v1/uploads"
OSS_PATH = "/oss"
DATA_URI_LIMIT = 10485760  # characters of one data URL
DEFAULT_MODEL = "qwen3-vl-plus"
DEFAULT_TEXT = "Hello!"
DEFAULT_REASONING = "Thinking about the request."
FALLBACK_IMAGE_TOKENS = 100
FALLBACK_VIDEO_TOKENS = 100
BASE_PROMPT_TOKENS = 10

QVQ_STREAM_ONLY = "This model only support stream mode, please enable the stream parameter to access the model."
JSON_WORD_REQUIRED = "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'."
DATA_URI_TOO_LARGE = f"Exceeded limit on max bytes per data-uri item : {DATA_URI_LIMIT}"
THINKING_WITH_FORMAT = "The response_format parameter is not supported when enable_thinking is true."
OSS_HEADER_REQUIRED = (
    "The provided URL does not appear to be valid. oss:// URLs need the header X-DashScope-OssResourceResolve: enable."
)


# --------------------------------------------------------------------------------------------------
# Recorded requests
# --------------------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    json: Any | None = None

    @property
    def kind(self) -> str:
        """``compatible``, ``native``, ``upload_policy``, ``oss`` or ``other``."""
        return _kind_of(self.path)

    @property
    def wants_stream(self) -> bool:
        if self.kind == "native":
            return (
                self.headers.get("x-dashscope-sse", "").strip().lower() == "enable"
                or "text/event-stream" in self.headers.get("accept", "").lower()
            )
        return isinstance(self.json, dict) and self.json.get("stream") is True

    def __repr__(self) -> str:  # bodies can be megabytes of base64
        return f"RecordedRequest({self.method} {self.path}, {len(self.body)} bytes)"


def _kind_of(path: str) -> str:
    path = path.rstrip("/") or "/"
    if path in COMPATIBLE_PATHS:
        return "compatible"
    if path == NATIVE_PATH:
        return "native"
    if path == UPLOAD_POLICY_PATH:
        return "upload_policy"
    if path == OSS_PATH:
        return "oss"
    if path in EMBEDDING_PATHS:
        return "embeddings"
    return "other"


# --------------------------------------------------------------------------------------------------
# Replies
# --------------------------------------------------------------------------------------------------
# The handler dispatches on the class name, not isinstance, so replies built from this module imported
# under another name (``dashscope_server`` vs ``tests.dashscope_server``) still work.


@dataclass
class Json:
    body: Any
    status: int = 200
    headers: dict = field(default_factory=dict)


@dataclass
class Text:
    text: str
    status: int = 200
    content_type: str = "text/html"
    headers: dict = field(default_factory=dict)


@dataclass
class Sse:
    """An SSE reply. dict events go out as ``data: <json>\\n\\n``; a str event ending in a newline goes out
    verbatim, any other str gets ``\\n\\n`` appended; bytes go out verbatim. ``done`` appends
    ``data: [DONE]``. ``cut_after=n`` closes the socket abruptly after ``n`` events (no ``[DONE]``, no
    terminating chunk). ``delay`` sleeps before each event after the first."""

    events: list
    status: int = 200
    headers: dict = field(default_factory=dict)
    done: bool = True
    cut_after: int | None = None
    delay: float = 0.0


@dataclass
class Reset:
    """Read the request, then close the connection without answering."""


@dataclass
class Slow:
    reply: Any
    delay: float


@dataclass
class Auto:
    """The default behaviour for this one request."""


Reply = Union[Json, Text, Sse, Reset, Slow, Auto]


# --------------------------------------------------------------------------------------------------
# Payload builders (pure)
# --------------------------------------------------------------------------------------------------


def _new_id() -> str:
    return str(uuid.uuid4())


def _words(text: str | None) -> int:
    return len(text.split()) if text else 0


def _dumps(obj: Any) -> str:
    return _json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _pieces(text: str, size: int) -> list[str]:
    size = max(1, int(size))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _norm_tool_calls(tool_calls: list[dict] | None) -> list[dict]:
    out = []
    for call in tool_calls or []:
        args = call.get("arguments")
        if args is None:
            args = "{}"
        elif not isinstance(args, str):
            args = _dumps(args)
        out.append({"id": call.get("id") or f"call_{uuid.uuid4().hex[:24]}", "name": call["name"], "arguments": args})
    return out


def make_usage(
    *,
    prompt_tokens: int = BASE_PROMPT_TOKENS,
    completion_tokens: int = 0,
    image_tokens: int = 0,
    video_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> dict:
    """A compatible-mode ``usage`` object. ``prompt_tokens`` includes the media tokens and
    ``completion_tokens`` the reasoning tokens, as DashScope reports them."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {
            "image_tokens": image_tokens,
            "video_tokens": video_tokens,
            "text_tokens": max(0, prompt_tokens - image_tokens - video_tokens),
        },
        "completion_tokens_details": {
            "reasoning_tokens": reasoning_tokens,
            "text_tokens": max(0, completion_tokens - reasoning_tokens),
        },
    }


def _default_usage(text: str, reasoning: str | None, calls: list[dict], **prompt: int) -> dict:
    reasoning_tokens = _words(reasoning)
    answer = _words(text) + sum(_words(c["name"]) + _words(c["arguments"]) for c in calls)
    return make_usage(completion_tokens=answer + reasoning_tokens, reasoning_tokens=reasoning_tokens, **prompt)


def completion(
    text: str | None = None,
    *,
    reasoning: str | None = None,
    tool_calls: list[dict] | None = None,
    finish_reason: str | None = None,
    model: str = DEFAULT_MODEL,
    usage: dict | None = None,
    request_id: str | None = None,
) -> dict:
    """An OpenAI ``chat.completion`` object as DashScope's compatible mode returns it.

    ``text`` defaults to ``"Hello!"``, or ``""`` when there are tool calls."""
    calls = _norm_tool_calls(tool_calls)
    if text is None:
        text = "" if calls else DEFAULT_TEXT
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    if calls:
        message["tool_calls"] = [
            {"index": i, "id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for i, c in enumerate(calls)
        ]
    return {
        "id": request_id or _new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason or ("tool_calls" if calls else "stop"),
                "logprobs": None,
            }
        ],
        "usage": usage if usage is not None else _default_usage(text, reasoning, calls),
    }


def chunks(
    text: str | None = None,
    *,
    reasoning: str | None = None,
    tool_calls: list[dict] | None = None,
    finish_reason: str | None = None,
    model: str = DEFAULT_MODEL,
    usage: dict | None = None,
    include_usage: bool = True,
    piece: int = 4,
    request_id: str | None = None,
) -> list[dict]:
    """``chat.completion.chunk`` dicts: role chunk, reasoning deltas (``content: null`` beside them, as
    DashScope sends), content deltas, tool-call fragments, a finish chunk, then (``include_usage``) a
    ``"choices": []`` chunk carrying ``usage``."""
    calls = _norm_tool_calls(tool_calls)
    if text is None:
        text = "" if calls else DEFAULT_TEXT
    rid = request_id or _new_id()
    created = int(time.time())

    def chunk(delta: dict, finish: str | None = None) -> dict:
        return {
            "id": rid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": None, "reasoning_content": p}) for p in _pieces(reasoning or "", piece)]
    out += [chunk({"content": p}) for p in _pieces(text, piece)]
    for i, c in enumerate(calls):
        out.append(
            chunk({"tool_calls": [{"index": i, "id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": ""}}]})
        )
        out += [chunk({"tool_calls": [{"index": i, "function": {"arguments": p}}]}) for p in _pieces(c["arguments"], piece)]
    out.append(chunk({}, finish_reason or ("tool_calls" if calls else "stop")))
    if include_usage:
        out.append(
            {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": None,
                "choices": [],
                "usage": usage if usage is not None else _default_usage(text, reasoning, calls),
            }
        )
    return out


def native_usage(
    *,
    input_tokens: int = BASE_PROMPT_TOKENS,
    output_tokens: int = 0,
    image_tokens: int = 0,
    video_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> dict:
    """A native-mode ``usage`` object (``image_tokens``/``video_tokens`` only when non-zero, as DashScope does)."""
    usage: dict[str, Any] = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }
    if image_tokens:
        usage["image_tokens"] = image_tokens
    if video_tokens:
        usage["video_tokens"] = video_tokens
    usage["input_tokens_details"] = {
        "text_tokens": max(0, input_tokens - image_tokens - video_tokens),
        **({"image_tokens": image_tokens} if image_tokens else {}),
        **({"video_tokens": video_tokens} if video_tokens else {}),
    }
    usage["output_tokens_details"] = {"text_tokens": max(0, output_tokens - reasoning_tokens)}
    if reasoning_tokens:
        usage["output_tokens_details"]["reasoning_tokens"] = reasoning_tokens
    return usage


def _native_message(text: str, reasoning: str | None) -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": [{"text": text}] if text else []}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    return message


def native_completion(
    text: str = DEFAULT_TEXT,
    *,
    reasoning: str | None = None,
    usage: dict | None = None,
    request_id: str | None = None,
    finish_reason: str = "stop",
) -> dict:
    """A native multimodal-generation response."""
    if usage is None:
        r = _words(reasoning)
        usage = native_usage(output_tokens=_words(text) + r, reasoning_tokens=r)
    return {
        "request_id": request_id or _new_id(),
        "output": {"choices": [{"finish_reason": finish_reason, "message": _native_message(text, reasoning)}]},
        "usage": usage,
    }


def native_chunks(
    text: str = DEFAULT_TEXT,
    *,
    reasoning: str | None = None,
    incremental: bool = True,
    piece: int = 4,
    usage: dict | None = None,
    request_id: str | None = None,
) -> list[dict]:
    """Native streaming events. With ``incremental`` each event holds only the new piece, otherwise the text so
    far. Events before the last carry ``"finish_reason": "null"`` (a string, as DashScope sends it); the last
    carries ``"stop"`` and the final ``usage``; earlier ones a running ``output_tokens``."""
    rid = request_id or _new_id()
    if usage is None:
        r = _words(reasoning)
        usage = native_usage(output_tokens=_words(text) + r, reasoning_tokens=r)
    steps: list[tuple[str, str]] = [("reasoning", p) for p in _pieces(reasoning or "", piece)]
    steps += [("text", p) for p in _pieces(text, piece)]
    if not steps:
        steps = [("text", "")]
    events = []
    seen = {"reasoning": "", "text": ""}
    for i, (field_, p) in enumerate(steps):
        seen[field_] += p
        last = i == len(steps) - 1
        cur = p if incremental else seen[field_]
        if field_ == "reasoning":
            message: dict[str, Any] = {"role": "assistant", "content": [], "reasoning_content": cur}
        else:
            message = {"role": "assistant", "content": [{"text": cur}] if cur else []}
            if reasoning is not None:
                message["reasoning_content"] = "" if incremental else seen["reasoning"]
        if last:
            ev_usage = usage
        else:
            out_tokens = _words(seen["reasoning"]) + _words(seen["text"])
            ev_usage = {**usage, "output_tokens": out_tokens, "total_tokens": usage.get("input_tokens", 0) + out_tokens}
        events.append(
            {
                "request_id": rid,
                "output": {"choices": [{"finish_reason": "stop" if last else "null", "message": message}]},
                "usage": ev_usage,
            }
        )
    return events


def native_frames(events: list[dict]) -> list[str]:
    """Frame native events the way DashScope does (``id:``, ``event:result``, ``:HTTP_STATUS/200``, ``data:``)."""
    return [f"id:{i}\nevent:result\n:HTTP_STATUS/200\ndata:{_dumps(ev)}\n\n" for i, ev in enumerate(events, 1)]


def error_body(message: str, code: str, *, type_: str = "invalid_request_error", request_id: str | None = None) -> dict:
    """A compatible-mode error body."""
    rid = request_id or _new_id()
    return {"error": {"message": message, "type": type_, "param": None, "code": code}, "id": rid, "request_id": rid}


def native_error_body(message: str, code: str, *, request_id: str | None = None) -> dict:
    """A native-mode error body."""
    return {"code": code, "message": message, "request_id": request_id or _new_id()}


# --------------------------------------------------------------------------------------------------
# Request inspection for the default behaviour
# --------------------------------------------------------------------------------------------------


def _content_parts(message: Any) -> list[dict]:
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):
        return [p for p in content if isinstance(p, dict)]
    return []


def _part_urls(part: dict) -> list[str]:
    urls: list[str] = []
    for key in ("image_url", "video_url"):
        v = part.get(key)
        if isinstance(v, dict):
            v = v.get("url")
        if isinstance(v, str):
            urls.append(v)
    for key in ("image", "video", "audio"):
        v = part.get(key)
        if isinstance(v, str):
            urls.append(v)
        elif isinstance(v, list):
            urls += [u for u in v if isinstance(u, str)]
    return urls


def _is_image(part: dict) -> bool:
    return part.get("type") in ("image_url", "image") or (part.get("type") is None and "image" in part)


def _is_video(part: dict) -> bool:
    return part.get("type") in ("video_url", "video") or (part.get("type") is None and "video" in part)


def _part_text(part: dict) -> str | None:
    if part.get("type") in (None, "text") and isinstance(part.get("text"), str):
        return part["text"]
    return None


def _message_texts(messages: list) -> list[str]:
    texts = []
    for m in messages:
        if isinstance(m, dict) and isinstance(m.get("content"), str):
            texts.append(m["content"])
        for p in _content_parts(m):
            t = _part_text(p)
            if t is not None:
                texts.append(t)
    return texts


def _last_user(messages: list) -> dict:
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            return m
    return {}


_DATA_URL = re.compile(r"^data:([^;,]*)(;[^,]*)?,", re.S)


def _decode_image_size(url: str) -> tuple[int, int] | None:
    m = _DATA_URL.match(url)
    if not m or "base64" not in (m.group(2) or ""):
        return None
    try:
        from PIL import Image

        raw = base64.b64decode(url[m.end() :], validate=False)
        with Image.open(io.BytesIO(raw)) as im:
            return im.size
    except Exception:  # noqa: BLE001 - anything undecodable falls back
        return None


def _pixel_option(part: dict, name: str) -> int | None:
    for holder in (part, part.get("image_url") if isinstance(part.get("image_url"), dict) else {}):
        v = holder.get(name)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return int(v)
    return None


def _image_part_tokens(part: dict, model: str, high_res: bool) -> int:
    urls = _part_urls(part)
    size = _decode_image_size(urls[0]) if urls else None
    if size is None:
        return FALLBACK_IMAGE_TOKENS
    from qwen_vl_core import tokens as _tokens  # lazily: the server must start even while the package is broken

    try:
        return _tokens.image_tokens(
            size[0],
            size[1],
            model,
            high_resolution=high_res,
            min_pixels=_pixel_option(part, "min_pixels"),
            max_pixels=_pixel_option(part, "max_pixels"),
        )
    except Exception:  # noqa: BLE001 - unknown model names and the like
        return FALLBACK_IMAGE_TOKENS


def _video_part_tokens(part: dict, model: str) -> int:
    frames = part.get("video")
    if isinstance(frames, list) and frames:
        sizes = [_decode_image_size(u) if isinstance(u, str) else None for u in frames]
        if all(sizes):
            from qwen_vl_core import tokens as _tokens

            try:
                return _tokens.frame_list_tokens(sizes, model)  # type: ignore[arg-type]
            except Exception:  # noqa: BLE001
                pass
    return FALLBACK_VIDEO_TOKENS


@dataclass
class _Media:
    images: int = 0
    videos: int = 0
    image_tokens: int = 0
    video_tokens: int = 0
    text: str | None = None


def _inspect_user(message: dict, model: str, high_res: bool) -> _Media:
    media = _Media()
    texts = []
    if isinstance(message.get("content"), str):
        texts.append(message["content"])
    for part in _content_parts(message):
        if _is_image(part):
            media.images += 1
            media.image_tokens += _image_part_tokens(part, model, high_res)
        elif _is_video(part):
            media.videos += 1
            media.video_tokens += _video_part_tokens(part, model)
        else:
            t = _part_text(part)
            if t is not None:
                texts.append(t)
    if texts:
        media.text = " ".join(texts)
    return media


def _all_urls(messages: list) -> list[str]:
    return [u for m in messages for p in _content_parts(m) for u in _part_urls(p)]


def _auth_ok(rec: RecordedRequest) -> bool:
    return re.match(r"^\s*bearer\s+\S+", rec.headers.get("authorization", ""), re.I) is not None


def _oss_key(url: str) -> str:
    return url[len("oss://") :]


# --------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256
    allow_reuse_address = True

    owner: "DashScopeServer"

    def server_bind(self) -> None:  # skip HTTPServer's getfqdn() lookup
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address) -> None:  # never print to stderr
        self.owner._note_error(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # idle keep-alive connections end after this
    disable_nagle_algorithm = True
    server: _HTTPServer

    # -- plumbing --------------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.owner._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence
        pass

    def _dispatch(self) -> None:
        owner = self.server.owner
        try:
            body = self._read_body()
        except (OSError, ValueError):
            self.close_connection = True
            return
        parts = urlsplit(self.path)
        parsed = None
        if body:
            try:
                parsed = _json.loads(body)
            except ValueError:
                parsed = None
        rec = RecordedRequest(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=self._headers(),
            body=body,
            json=parsed,
        )
        owner._record(rec)
        try:
            if owner.latency > 0:
                time.sleep(owner.latency)
            self._emit(owner._reply_for(rec), rec)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout):
            self.close_connection = True
        except Exception:  # noqa: BLE001 - a responder bug: answer 500 and keep the traceback
            owner._note_error(traceback.format_exc())
            try:
                self._emit(Json(error_body("fake server error; see DashScopeServer.errors", "InternalError"), 500), rec)
            except OSError:
                self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

    def _headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            out[key] = f"{out[key]}, {value}" if key in out else value
        return out

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            buf = bytearray()
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ValueError("truncated chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(buf)
                data = self.rfile.read(size)
                if len(data) < size:
                    raise ValueError("truncated chunk")
                buf += data
                self.rfile.readline(65537)
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length > 0 else b""
        if len(data) < length:
            raise ValueError("truncated body")
        return data

    # -- replies ---------------------------------------------------------------------------------

    def _emit(self, reply: Any, rec: RecordedRequest) -> None:
        kind = type(reply).__name__ if reply is not None else "Auto"
        if kind == "Auto":
            self._emit(self.server.owner.default_reply(rec), rec)
        elif kind == "Slow":
            time.sleep(reply.delay)
            self._emit(reply.reply, rec)
        elif kind == "Reset":
            self._abort()
        elif kind == "Json":
            payload = b"" if reply.body is None else _dumps(reply.body).encode()
            self._send_whole(reply.status, "application/json", payload, reply.headers, _body_request_id(reply.body))
        elif kind == "Text":
            self._send_whole(reply.status, reply.content_type, reply.text.encode(), reply.headers, None)
        elif kind == "Sse":
            self._send_sse(reply)
        else:
            raise TypeError(f"not a reply: {reply!r}")

    def _start(self, status: int, headers: dict, request_id: str | None, defaults: dict[str, str]) -> None:
        self.send_response(status)
        given = {k.lower() for k in headers}
        for name, value in defaults.items():
            if name.lower() not in given:
                self.send_header(name, value)
        if "x-request-id" not in given:
            self.send_header("x-request-id", request_id or _new_id())
        for name, value in headers.items():
            self.send_header(name, str(value))
        self.end_headers()

    def _send_whole(self, status: int, ctype: str, payload: bytes, headers: dict, request_id: str | None) -> None:
        self._start(status, headers, request_id, {"Content-Type": ctype, "Content-Length": str(len(payload))})
        if payload:
            self.wfile.write(payload)
        self.wfile.flush()

    def _send_sse(self, reply: Sse) -> None:
        rid = None
        for ev in reply.events:
            rid = _event_request_id(ev)
            if rid:
                break
        self._start(
            reply.status,
            reply.headers,
            rid,
            {"Content-Type": "text/event-stream;charset=UTF-8", "Cache-Control": "no-cache", "Transfer-Encoding": "chunked"},
        )
        for i, ev in enumerate(reply.events):
            if reply.cut_after is not None and i >= reply.cut_after:
                break
            if i and reply.delay:
                time.sleep(reply.delay)
            self._chunk(_frame(ev))
        if reply.cut_after is not None:  # abrupt end: no [DONE], no terminating chunk
            self._abort()
            return
        if reply.done:
            self._chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def _abort(self) -> None:
        self.close_connection = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.connection.close()


def _frame(ev: Any) -> bytes:
    if isinstance(ev, (bytes, bytearray)):
        return bytes(ev)
    if isinstance(ev, str):
        return (ev if ev.endswith("\n") else ev + "\n\n").encode()
    return f"data: {_dumps(ev)}\n\n".encode()


def _body_request_id(body: Any) -> str | None:
    if isinstance(body, dict):
        rid = body.get("request_id") or body.get("id")
        return rid if isinstance(rid, str) else None
    return None


def _event_request_id(ev: Any) -> str | None:
    if isinstance(ev, dict):
        return _body_request_id(ev)
    if isinstance(ev, (str, bytes, bytearray)):
        text = ev if isinstance(ev, str) else bytes(ev).decode("utf-8", "replace")
        for line in text.splitlines():
            if line.startswith("data:"):
                try:
                    return _body_request_id(_json.loads(line[5:]))
                except ValueError:
                    return None
    return None


class DashScopeServer:
    """A DashScope-protocol server on 127.0.0.1 in a background thread (see the module docstring)."""

    def __init__(self, *, latency: float = 0.0, host: str = "127.0.0.1", port: int = 0) -> None:
        self.latency = float(latency)
        self.requests: list[RecordedRequest] = []
        self.uploads: dict[str, bytes] = {}
        self.responder: Callable[[RecordedRequest], Reply | None] | None = None
        self.errors: list[str] = []  # tracebacks of exceptions raised while answering (e.g. by a responder)
        self._host = host
        self._port = port
        self._queue: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._upload_dirs: set[str] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> "DashScopeServer":
        if self._httpd is not None:
            return self
        httpd = _HTTPServer((self._host, self._port), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="dashscope-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:  # wake up idle keep-alive handlers
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "DashScopeServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("DashScopeServer is not running; call start()")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def compatible_url(self) -> str:
        return self.url + "/compatible-mode/v1"

    # -- test controls ---------------------------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next chat/native requests (FIFO)."""
        with self._lock:
            self._queue.extend(replies)

    @property
    def pending(self) -> int:
        """Scripted replies not consumed yet."""
        with self._lock:
            return len(self._queue)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.uploads.clear()
            self._queue.clear()
            self._upload_dirs.clear()
            self.errors.clear()
        self.responder = None
        self.latency = 0.0

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """Requests to the compatible-mode and native endpoints."""
        with self._lock:
            return [r for r in self.requests if r.kind in ("compatible", "native")]

    @property
    def policy_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.kind == "upload_policy"]

    @property
    def last_body(self) -> dict:
        """The JSON body of the last chat/native request."""
        reqs = self.chat_requests
        if not reqs:
            raise AssertionError("the fake DashScope server has received no chat request")
        return reqs[-1].json

    # -- internals -------------------------------------------------------------------------------

    def _record(self, rec: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(rec)

    def _note_error(self, text: str) -> None:
        if "BrokenPipeError" in text or "ConnectionResetError" in text:
            return
        with self._lock:
            self.errors.append(text)

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def _reply_for(self, rec: RecordedRequest) -> Reply | None:
        if rec.kind not in ("compatible", "native") or rec.method != "POST":
            return self.default_reply(rec)
        with self._lock:
            reply = self._queue.popleft() if self._queue else None
        if reply is None and self.responder is not None:
            reply = self.responder(rec)
        return reply  # None or Auto -> default_reply

    # -- default behaviour -----------------------------------------------------------------------

    def default_reply(self, rec: RecordedRequest) -> Reply:
        """What the server answers when nothing is scripted (also usable from a responder)."""
        kind = rec.kind
        if kind == "compatible" and rec.method == "POST":
            return self._compatible(rec)
        if kind == "native" and rec.method == "POST":
            return self._native(rec)
        if kind == "upload_policy" and rec.method == "GET":
            return self._policy(rec)
        if kind == "oss" and rec.method == "POST":
            return self._oss(rec)
        if kind == "embeddings" and rec.method == "POST":
            return self._embeddings(rec)
        return Json(error_body(f"Not found: {rec.method} {rec.path}", "not_found"), 404)

    def _embeddings(self, rec: RecordedRequest) -> Reply:
        """OpenAI-compatible embeddings: bag-of-words hashing vectors, so texts sharing words are close."""
        if not _auth_ok(rec):
            return Json(error_body("Invalid API-key provided.", "invalid_api_key"), 401)
        body = rec.json if isinstance(rec.json, dict) else {}
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not texts or len(texts) > 10:
            return Json(error_body("input must be a string or a list of 1 to 10 strings", "invalid_parameter_error"), 400)
        dims = int(body.get("dimensions") or 1024)
        data = []
        for i, text in enumerate(texts):
            vec = [0.0] * dims
            for word in re.findall(r"\w+", str(text).lower()):
                vec[int(hashlib.sha256(word.encode()).hexdigest(), 16) % dims] += 1.0
            norm = sum(v * v for v in vec) ** 0.5 or 1.0
            data.append({"object": "embedding", "index": i, "embedding": [v / norm for v in vec]})
        tokens = sum(_words(t) for t in texts)
        return Json({"object": "list", "data": data, "model": body.get("model"), "id": _new_id(),
                     "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    def _media_error(self, rec: RecordedRequest, messages: list) -> str | None:
        for url in _all_urls(messages):
            if url.startswith("data:") and len(url) > DATA_URI_LIMIT:
                return DATA_URI_TOO_LARGE
            if url.startswith("oss://"):
                if rec.headers.get("x-dashscope-ossresourceresolve", "").strip().lower() != "enable":
                    return OSS_HEADER_REQUIRED
                with self._lock:
                    known = _oss_key(url) in self.uploads
                if not known:
                    return f"Failed to download multimodal content: {url} does not exist (was it uploaded?)"
        return None

    def _compatible(self, rec: RecordedRequest) -> Reply:
        rid = _new_id()

        def fail(status: int, message: str, code: str = "invalid_parameter_error", type_: str = "invalid_request_error"):
            return Json(error_body(message, code, type_=type_, request_id=rid), status)

        if not _auth_ok(rec):
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
        if fmt_type == "json_object" and not any("json" in t.lower() for t in _message_texts(messages)):
            return fail(400, JSON_WORD_REQUIRED)
        problem = self._media_error(rec, messages)
        if problem:
            return fail(400, problem)

        media = _inspect_user(_last_user(messages), model, body.get("vl_high_resolution_images") is True)
        text = f"I see {media.images} image(s) and {media.videos} video(s)."
        if media.text:
            text += f" You said: {media.text[:80]}"
        thinks = body.get("enable_thinking") is True or model.lower().startswith("qvq") or model.lower().endswith("-thinking")
        reasoning = DEFAULT_REASONING if thinks else None
        calls = self._forced_tool_call(body)
        if calls:
            text = ""
        prompt = BASE_PROMPT_TOKENS + media.image_tokens + media.video_tokens
        usage = _default_usage(
            text,
            reasoning,
            _norm_tool_calls(calls),
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

    @staticmethod
    def _forced_tool_call(body: dict) -> list[dict] | None:
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

    def _native(self, rec: RecordedRequest) -> Reply:
        rid = _new_id()

        def fail(status: int, message: str, code: str = "InvalidParameter"):
            return Json(native_error_body(message, code, request_id=rid), status)

        if not _auth_ok(rec):
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
        params = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
        if model.lower().startswith("qvq") and not rec.wants_stream:
            return fail(400, QVQ_STREAM_ONLY)
        problem = self._media_error(rec, messages)
        if problem:
            return fail(400, problem)

        media = _inspect_user(_last_user(messages), model, params.get("vl_high_resolution_images") is True)
        ocr = params.get("ocr_options")
        task = (ocr.get("task") if isinstance(ocr, dict) else None) or "none"
        text = f"OCR({task}): I see {media.images} image(s)."
        thinks = params.get("enable_thinking") is True or model.lower().startswith("qvq")
        reasoning = DEFAULT_REASONING if thinks else None
        r = _words(reasoning)
        usage = native_usage(
            input_tokens=BASE_PROMPT_TOKENS + media.image_tokens + media.video_tokens,
            output_tokens=_words(text) + r,
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

    def _policy(self, rec: RecordedRequest) -> Reply:
        rid = _new_id()
        if not _auth_ok(rec):
            return Json(native_error_body("Invalid API-key provided.", "InvalidApiKey", request_id=rid), 401)
        if rec.query.get("action") != "getPolicy" or not rec.query.get("model"):
            return Json(native_error_body("action=getPolicy and model are required.", "InvalidParameter", request_id=rid), 400)
        upload_dir = f"dashscope-instant/{uuid.uuid4().hex}/{_dt.date.today().isoformat()}"
        with self._lock:
            self._upload_dirs.add(upload_dir)
        return Json(
            {
                "request_id": rid,
                "data": {
                    "policy": "p",
                    "signature": "s",
                    "upload_dir": upload_dir,
                    "upload_host": self.url + OSS_PATH,
                    "expire_in_seconds": 300,
                    "max_file_size_mb": 100,
                    "capacity_limit_mb": 999999999,
                    "oss_access_key_id": "ak",
                    "x_oss_object_acl": "private",
                    "x_oss_forbid_overwrite": "true",
                },
            }
        )

    def _oss(self, rec: RecordedRequest) -> Reply:
        rid = _new_id()

        def fail(status: int, code: str, message: str) -> Text:
            xml = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{rid}</RequestId></Error>"
            )
            return Text(xml, status, content_type="application/xml", headers={"x-oss-request-id": rid})

        try:
            parts = parse_multipart(rec.body, rec.headers.get("content-type", ""))
        except ValueError as exc:
            return fail(400, "InvalidArgument", f"Malformed multipart/form-data: {exc}")
        fields = {name: data for name, _filename, data in parts}
        required = ("OSSAccessKeyId", "Signature", "policy", "key", "success_action_status", "file")
        missing = [name for name in required if name not in fields]
        if missing:
            return fail(400, "InvalidArgument", f"Missing form fields: {', '.join(missing)}")
        if parts[-1][0] != "file":
            return fail(400, "InvalidArgument", "The file field must be the last field of the form.")
        if (fields["OSSAccessKeyId"], fields["Signature"], fields["policy"]) != (b"ak", b"s", b"p"):
            return fail(403, "SignatureDoesNotMatch", "The request signature we calculated does not match.")
        key = fields["key"].decode("utf-8", "replace")
        with self._lock:
            allowed = any(key.startswith(d + "/") and len(key) > len(d) + 1 for d in self._upload_dirs)
            exists = key in self.uploads
        if not allowed:
            return fail(403, "AccessDenied", "Invalid according to Policy: Policy Condition failed: key starts-with upload_dir")
        if exists and fields.get("x-oss-forbid-overwrite", b"").lower() == b"true":
            return fail(409, "FileAlreadyExists", "The object you specified already exists and can not be overwritten.")
        with self._lock:
            self.uploads[key] = fields["file"]
        status = fields["success_action_status"].decode().strip()
        return Text("", int(status) if status in ("200", "201") else 204, content_type="text/plain", headers={"x-oss-request-id": rid})


def parse_multipart(body: bytes, content_type: str) -> list[tuple[str, str | None, bytes]]:
    """Split a multipart/form-data body into ``(name, filename, data)`` in order (data byte-exact)."""
    msg = email.message.Message()
    msg["content-type"] = content_type
    if msg.get_content_type() != "multipart/form-data":
        raise ValueError("Content-Type is not multipart/form-data")
    boundary = msg.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise ValueError("no boundary")
    delim = b"\r\n--" + boundary.encode("latin-1")
    sections = (b"\r\n" + body).split(delim)
    out: list[tuple[str, str | None, bytes]] = []
    closed = False
    for section in sections[1:]:
        if section.startswith(b"--"):
            closed = True
            break
        _padding, sep, rest = section.partition(b"\r\n")
        if not sep:
            raise ValueError("bad part")
        head, sep, data = rest.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("part without header end")
        part = email.message.Message()
        for line in head.decode("latin-1").split("\r\n"):
            if ":" in line:
                name, value = line.split(":", 1)
                part[name.strip()] = value.strip()
        disposition = part.get("content-disposition")
        if not disposition:
            raise ValueError("part without Content-Disposition")
        name = part.get_param("name", header="content-disposition")
        filename = part.get_param("filename", header="content-disposition")
        if not isinstance(name, str):
            raise ValueError("part without a name")
        out.append((name, filename if isinstance(filename, str) else None, data))
    if not closed:
        raise ValueError("no closing boundary")
    return out
