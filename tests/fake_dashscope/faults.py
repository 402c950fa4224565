"""Faults on demand: replies that misbehave on purpose, and the abrupt close they end in.

``Reset`` drops the connection without an answer, ``Slow`` answers late; an :class:`~.payloads.Sse` reply
with ``cut_after`` ends in the same abrupt close after some events. :attr:`DashScopeServer.latency` delays
every request.
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
