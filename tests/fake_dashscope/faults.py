"""Faults on demand: replies that misbehave on purpose, and the abrupt close they end in.

``Reset`` drops the connection without an answer, ``Slow`` answers late, ``Dribble`` sends a reply's body a
few bytes at a time (a connection kept alive that never finishes), ``Huge`` sends an answer of any size
without building it in memory; an :class:`~.payloads.Sse` reply with ``cut_after`` ends in the same abrupt
close after some events. :attr:`DashScopeServer.latency` delays every request. A header given as None in a
reply's ``headers`` is left out (e.g. ``{"x-request-id": None}``: no request id header at all).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any


@dataclass
class Reset:
    """Read the request, then close the connection without answering."""


@dataclass
class Slow:
    reply: Any
    delay: float


@dataclass
class Dribble:
    """Send ``reply``'s (a Json, Text or Sse) status and headers at once, then its body ``size`` bytes at a
    time, ``every`` seconds apart (an SSE body as one chunk per piece). Stops when the client goes away."""

    reply: Any
    every: float = 1.0
    size: int = 1


@dataclass
class Huge:
    """A 200 answer of about ``size`` bytes, written in 64 KiB pieces and never held whole.

    ``kind="json"``: one valid ``chat.completion`` whose text is ``"a" * n`` (with a Content-Length, or
    chunked with ``declare_length=False``). ``kind="sse"``: ``chat.completion.chunk`` events of about
    ``event_size`` bytes each until ``size``, then a finish chunk and ``[DONE]``."""

    size: int
    kind: str = "json"
    event_size: int = 1024
    declare_length: bool = True
    request_id: str = "rid-huge"


def close_abruptly(connection: socket.socket, wfile: Any) -> None:
    """Flush what was written, then shut the socket down both ways and close it (no terminating chunk)."""
    try:
        wfile.flush()
    except OSError:
        pass
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    connection.close()
