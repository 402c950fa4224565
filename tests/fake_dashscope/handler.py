"""The HTTP/1.1 side: keep-alive connections, request bodies (plain or chunked), and writing replies (whole
bodies, chunked SSE, abrupt closes). What to answer comes from the owning :class:`~.server.DashScopeServer`.
"""

from __future__ import annotations

import json as _json
import socket
import socketserver
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from .endpoints import RecordedRequest
from .faults import close_abruptly
from .payloads import Json, Sse, dumps, error_body, new_id

if TYPE_CHECKING:
    from .server import DashScopeServer


class HTTPServer(ThreadingHTTPServer):
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


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # idle keep-alive connections end after this
    disable_nagle_algorithm = True
    server: HTTPServer

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
            payload = b"" if reply.body is None else dumps(reply.body).encode()
            self._send_whole(reply.status, "application/json", payload, reply.headers, _body_request_id(reply.body))
        elif kind == "Text":
            self._send_whole(reply.status, reply.content_type, reply.text.encode(), reply.headers, None)
        elif kind == "Sse":
            self._send_sse(reply)
        elif kind == "Dribble":
            self._send_dribble(reply)
        elif kind == "Huge":
            self._send_huge(reply)
        else:
            raise TypeError(f"not a reply: {reply!r}")

    def _start(self, status: int, headers: dict, request_id: str | None, defaults: dict[str, str]) -> None:
        self.send_response(status)
        given = {k.lower() for k in headers}
        for name, value in defaults.items():
            if name.lower() not in given:
                self.send_header(name, value)
        if "x-request-id" not in given:
            self.send_header("x-request-id", request_id or new_id())
        for name, value in headers.items():
            if value is not None:  # None: leave the header out
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

    def _send_dribble(self, fault: Any) -> None:
        reply = fault.reply
        kind = type(reply).__name__
        if kind == "Sse":
            body = b"".join(_frame(ev) for ev in reply.events) + (b"data: [DONE]\n\n" if reply.done else b"")
            rid = next((r for r in map(_event_request_id, reply.events) if r), None)
            defaults = {"Content-Type": "text/event-stream;charset=UTF-8", "Transfer-Encoding": "chunked"}
        elif kind == "Json":
            body = b"" if reply.body is None else dumps(reply.body).encode()
            rid = _body_request_id(reply.body)
            defaults = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        elif kind == "Text":
            body, rid = reply.text.encode(), None
            defaults = {"Content-Type": reply.content_type, "Content-Length": str(len(body))}
        else:
            raise TypeError(f"Dribble takes a Json, Text or Sse reply, not {reply!r}")
        chunked = kind == "Sse"
        self._start(reply.status, reply.headers, rid, defaults)
        size = max(1, int(fault.size))
        for i in range(0, len(body), size):
            if i:
                time.sleep(fault.every)
            piece = body[i : i + size]
            if chunked:
                self._chunk(piece)
            else:
                self.wfile.write(piece)
                self.wfile.flush()
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    def _send_huge(self, fault: Any) -> None:
        piece = 64 * 1024
        rid = fault.request_id
        if fault.kind == "json":
            head = ('{"id":"%s","object":"chat.completion","model":"qwen3-vl-plus","choices":[{"index":0,'
                    '"message":{"role":"assistant","content":"' % rid).encode()
            tail = b'"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}'
            fill = max(0, fault.size - len(head) - len(tail))
            if fault.declare_length:
                defaults = {"Content-Type": "application/json", "Content-Length": str(len(head) + fill + len(tail))}
            else:
                defaults = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
            self._start(200, {}, rid, defaults)
            write = self.wfile.write if fault.declare_length else self._chunk
            write(head)
            while fill > 0:
                n = min(piece, fill)
                write(b"a" * n)
                fill -= n
            write(tail)
            if not fault.declare_length:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            return
        if fault.kind != "sse":
            raise TypeError(f"Huge kind must be 'json' or 'sse', not {fault.kind!r}")
        self._start(200, {}, rid, {"Content-Type": "text/event-stream;charset=UTF-8", "Transfer-Encoding": "chunked"})

        def event(delta: dict, finish: str | None = None) -> bytes:
            body = {"id": rid, "object": "chat.completion.chunk", "model": "qwen3-vl-plus",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return f"data: {dumps(body)}\n\n".encode()

        overhead = len(event({"content": ""}))
        text = max(1, fault.event_size - overhead)
        sent = 0
        while sent < fault.size:
            n = min(text, max(1, fault.size - sent - overhead))
            if n <= piece:
                frame = event({"content": "a" * n})
                self._chunk(frame)
                sent += len(frame)
                continue
            # one event larger than a write: its data line goes out in pieces
            start, end = event({"content": ""}).split(b'"content":""', 1)
            self._chunk(start + b'"content":"')
            left = n
            while left > 0:
                k = min(piece, left)
                self._chunk(b"a" * k)
                left -= k
            self._chunk(b'"' + end)
            sent += overhead + n
        self._chunk(event({}, "stop"))
        self._chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def _abort(self) -> None:
        self.close_connection = True
        close_abruptly(self.connection, self.wfile)


def _frame(ev: Any) -> bytes:
    if isinstance(ev, (bytes, bytearray)):
        return bytes(ev)
    if isinstance(ev, str):
        return (ev if ev.endswith("\n") else ev + "\n\n").encode()
    return f"data: {dumps(ev)}\n\n".encode()


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
