"""The fake server itself: start/stop on 127.0.0.1 in a background thread, the request log, and the test
controls (scripted replies, a responder, latency, reset).
"""

from __future__ import annotations

import collections
import socket
import threading
from typing import Any, Callable

from . import routes
from .endpoints import RecordedRequest
from .handler import Handler, HTTPServer
from .payloads import Reply
from .uploads import UploadArea


class DashScopeServer:
    """A DashScope-protocol server on 127.0.0.1 in a background thread (see the package docstring)."""

    def __init__(self, *, latency: float = 0.0, host: str = "127.0.0.1", port: int = 0) -> None:
        self.latency = float(latency)
        self.requests: list[RecordedRequest] = []
        self.responder: Callable[[RecordedRequest], Reply | None] | None = None
        self.errors: list[str] = []  # tracebacks of exceptions raised while answering (e.g. by a responder)
        self._host = host
        self._port = port
        self._queue: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self.upload_area = UploadArea(self._lock)  # what POST /oss stored, and the directories handed out
        self._httpd: HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> "DashScopeServer":
        if self._httpd is not None:
            return self
        httpd = HTTPServer((self._host, self._port), Handler)
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

    @property
    def uploads(self) -> dict[str, bytes]:
        """Files stored through ``POST /oss``, by object key."""
        return self.upload_area.files

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
            self.upload_area.clear()
            self._queue.clear()
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
        return routes.default_reply(self, rec)
