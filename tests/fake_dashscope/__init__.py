"""A local DashScope-protocol HTTP server for the offline test suite and the benchmarks.

Real sockets, HTTP/1.1 keep-alive, chunked SSE, and faults on demand. It speaks:

- ``POST /compatible-mode/v1/chat/completions`` (and ``/v1/chat/completions``): OpenAI-compatible chat,
  JSON or SSE (``"stream": true``);
- ``POST /api/v1/services/aigc/multimodal-generation/generation``: the native multimodal API, JSON or
  DashScope's own SSE framing (``id:`` / ``event:result`` / ``:HTTP_STATUS/200`` / ``data:``);
- ``POST /compatible-mode/v1/embeddings`` (and ``/v1/embeddings``): bag-of-words hashing vectors;
- ``GET /api/v1/uploads?action=getPolicy&model=M`` and ``POST /oss``: the temporary-upload flow.

Chat and native requests take their reply from, in order: the queue filled by :meth:`DashScopeServer.script`,
then :attr:`DashScopeServer.responder`, then :meth:`DashScopeServer.default_reply` (which also enforces the real
server's validation rules). A scripted or responder reply bypasses validation entirely.

Modules, one job each: ``server`` (lifecycle, request log, test controls), ``handler`` (HTTP/1.1 and SSE on
the wire), ``endpoints`` (paths, the recorded request), ``routes`` (each endpoint's default answer),
``payloads`` (reply types and body builders), ``faults`` (replies that misbehave), ``validation`` (DashScope's
request checks), ``tokens`` (the token oracle), ``messages`` (reading chat messages), ``uploads`` (the upload
flow).

Usage::

    with DashScopeServer() as server:
        server.script(Json(completion("hi")), Sse(chunks("hello")), Reset())
        client = SomeClient(base_url=server.compatible_url, api_key="sk-test")
"""

from __future__ import annotations

from .endpoints import COMPATIBLE_PATHS, EMBEDDING_PATHS, NATIVE_PATH, OSS_PATH, UPLOAD_POLICY_PATH, RecordedRequest
from .faults import Dribble, Huge, Reset, Slow
from .payloads import (
    Auto,
    Json,
    Reply,
    Sse,
    Text,
    chunks,
    completion,
    error_body,
    make_usage,
    native_chunks,
    native_completion,
    native_error_body,
    native_frames,
    native_usage,
)
from .server import DashScopeServer
from .tokens import data_url_image_size
from .uploads import parse_multipart
from .validation import DATA_URI_LIMIT

__all__ = [
    "DashScopeServer",
    "RecordedRequest",
    "Reply",
    "Json",
    "Text",
    "Sse",
    "Reset",
    "Slow",
    "Dribble",
    "Huge",
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
    "data_url_image_size",
    "COMPATIBLE_PATHS",
    "NATIVE_PATH",
    "EMBEDDING_PATHS",
    "UPLOAD_POLICY_PATH",
    "OSS_PATH",
    "DATA_URI_LIMIT",
]
