"""One rate limit for a DashScope key: requests per minute and tokens per minute, shared by every
client (and thread, and task) that holds the same :class:`RateLimiter`.

.. code-block:: python

    from qwen_vl_core import QwenVLClient
    from qwen_vl_core.rate_limit import RateLimiter

    limit = RateLimiter(requests_per_minute=1200, tokens_per_minute=1_000_000)
    client = QwenVLClient(rate_limit=limit)  # several clients may share one limiter

How it decides (GCRA, the "virtual scheduling" form of a token bucket):

- Each request books the earliest moment at which both budgets allow it, in the order requests
  ask, and waits until then. Requests are spaced ``60 / requests_per_minute`` seconds apart, at
  most ``burst_requests`` at once; tokens likewise (``burst_tokens`` at once). So in any window of
  ``w`` seconds at most ``burst_requests + requests_per_minute * w / 60`` requests start.
- A request's token cost is what the server will count: the prompt estimated offline (image tokens
  by the documented formula, text by :func:`qwen_vl_core.estimate.text_tokens`) plus the expected
  output (``expected_output_tokens``, or ``max_tokens`` when that is smaller).
- Every attempt asks, retries included, so the limit holds however often the transport retries.
- A 429 with ``Retry-After`` / ``retry-after-ms`` pauses everyone for that long. A 429 without it
  halves the rate (at most once per ``cooldown`` seconds, down to ``min_factor`` of the limit), which
  then climbs back linearly to the full limit within ``recovery_seconds``. Either way requests that
  had booked a moment but not started yet book again under the new terms.
- Without any limit configured the limiter only coordinates 429s: a 429 without ``Retry-After``
  pauses everyone for ``pause_without_limit`` seconds.

A :class:`RateLimiter` lives in one process (it is not picklable on purpose: a copy in another
process would be a second, independent limit). Across a Ray cluster use
:func:`qwen_vl_core.documents.ray_data.shared_rate_limiter`, the same limiter held by one named actor.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, runtime_checkable

from .transport import Transport, _retry_after

__all__ = [
    "RateLimiter",
    "RateLimit",
    "RateLimitedTransport",
    "with_rate_limit",
    "request_cost",
    "COST_HEADER",
]

#: The header a client puts on a chat request to tell its transport the request's token cost; the
#: transport takes it off again before the request leaves (it never reaches the server).
COST_HEADER = "x-qwen-vl-rate-cost"
_EXTENSION = "qwen_vl_rate_cost"
_SLICE = 0.25  # a waiting request looks at the limiter at least this often (pauses, rate cuts)


@runtime_checkable
class RateLimit(Protocol):
    """What a client needs from a limiter: :class:`RateLimiter` here, or the Ray actor's proxy."""

    expected_output_tokens: int

    def acquire(self, tokens: int = 0) -> None: ...

    async def aacquire(self, tokens: int = 0) -> None: ...

    def throttled(self, retry_after: float | None = None) -> None: ...


@dataclass
class _Booking:
    start: float
    epoch: int


class RateLimiter:
    """Requests per minute and tokens per minute for one key (see the module docstring).

    ``requests_per_minute`` / ``tokens_per_minute``: the key's limits (None: not limited);
    ``burst_requests`` (default 1) / ``burst_tokens`` (default one second's worth): how much may
    start at once; ``expected_output_tokens``: the output a request is charged in advance;
    ``backoff``, ``min_factor``, ``cooldown``, ``recovery_seconds``: how the rate backs off after a
    429 without ``Retry-After`` and comes back; ``pause_without_limit``: the pause after such a 429
    when no limit is configured; ``max_pause``: the longest pause a ``Retry-After`` may impose.
    """

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        burst_requests: float = 1,
        burst_tokens: float | None = None,
        expected_output_tokens: int = 512,
        backoff: float = 0.5,
        min_factor: float = 0.1,
        cooldown: float = 2.0,
        recovery_seconds: float = 60.0,
        pause_without_limit: float = 1.0,
        max_pause: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (("requests_per_minute", requests_per_minute), ("tokens_per_minute", tokens_per_minute)):
            if value is not None and not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number or None, got {value!r}")
        if burst_requests < 1:
            raise ValueError(f"burst_requests must be at least 1, got {burst_requests!r}")
        if burst_tokens is not None and burst_tokens <= 0:
            raise ValueError(f"burst_tokens must be positive, got {burst_tokens!r}")
        if not 0 < backoff < 1 or not 0 < min_factor <= 1:
            raise ValueError("backoff must be in (0, 1) and min_factor in (0, 1]")
        if expected_output_tokens < 0:
            raise ValueError(f"expected_output_tokens must be >= 0, got {expected_output_tokens!r}")
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.burst_requests = float(burst_requests)
        self._burst_tokens_given = burst_tokens
        self.burst_tokens = float(burst_tokens) if burst_tokens is not None else (
            tokens_per_minute / 60.0 if tokens_per_minute else 0.0
        )
        self.expected_output_tokens = int(expected_output_tokens)
        self.backoff = backoff
        self.min_factor = min_factor
        self.cooldown = cooldown
        self.recovery_seconds = recovery_seconds
        self.pause_without_limit = pause_without_limit
        self.max_pause = max_pause
        self._clock = clock
        self._lock = threading.Lock()
        self._next_request = -math.inf  # GCRA "theoretical arrival times"
        self._next_token = -math.inf
        self._paused_until = -math.inf
        self._factor = 1.0  # share of the configured rate in force after the last cut
        self._cut_at = -math.inf
        self._epoch = 0
        # bookings not started yet (and the last one that did), to undo them after a 429:
        # (start, next_request after it, next_token after it)
        self._bookings: deque[tuple[float, float, float]] = deque()
        self._stats = {"granted": 0, "waited_seconds": 0.0, "pauses": 0, "backoffs": 0, "rebooked": 0}

    def __repr__(self) -> str:
        return (
            f"RateLimiter(requests_per_minute={self.requests_per_minute}, "
            f"tokens_per_minute={self.tokens_per_minute}, factor={self.factor():.2f})"
        )

    def __reduce__(self) -> Any:
        raise TypeError(
            "a RateLimiter holds one process's limit and cannot be pickled (a copy would be a second, "
            "independent limit); across processes or a Ray cluster use "
            "qwen_vl_core.documents.ray_data.shared_rate_limiter(...)"
        )

    # ---------------------------------------------------------------- the rule

    def factor(self, now: float | None = None) -> float:
        """The share of the configured rate in force now (1.0 unless a 429 cut it)."""
        now = self._clock() if now is None else now
        if self._factor >= 1.0:
            return 1.0
        grown = self._factor + (now - self._cut_at) / self.recovery_seconds if self.recovery_seconds > 0 else 1.0
        return min(1.0, grown)

    def _book(self, tokens: float, now: float, *, wait: bool) -> _Booking | None:
        """The moment a request of ``tokens`` may start; booked unless ``wait`` is false and that
        moment is not now. Call with the lock held."""
        factor = self.factor(now)
        start = max(now, self._paused_until)
        interval = token_interval = 0.0
        if self.requests_per_minute:
            interval = 60.0 / (self.requests_per_minute * factor)
            start = max(start, self._next_request - (self.burst_requests - 1) * interval)
        if self.tokens_per_minute:
            token_interval = 60.0 / (self.tokens_per_minute * factor)
            # a request may start while the debt left after it stays within the burst; one larger
            # than the burst waits for a clear bucket
            start = max(start, self._next_token - max(0.0, self.burst_tokens - tokens) * token_interval)
        if not wait and start > now:
            return None
        if self.requests_per_minute:
            self._next_request = max(self._next_request, start) + interval
        if self.tokens_per_minute:
            self._next_token = max(self._next_token, start) + max(0.0, tokens) * token_interval
        while len(self._bookings) >= 2 and self._bookings[1][0] <= now:
            self._bookings.popleft()  # keep the last booking that started, and those still to come
        self._bookings.append((start, self._next_request, self._next_token))
        return _Booking(start, self._epoch)

    def _granted(self, asked: float) -> None:
        with self._lock:
            self._stats["granted"] += 1
            self._stats["waited_seconds"] += max(0.0, self._clock() - asked)

    def _valid(self, booking: _Booking) -> bool:
        return booking.epoch == self._epoch

    def throttled(self, retry_after: float | None = None) -> None:
        """The server answered 429: pause everyone for ``retry_after`` seconds, or (without it) cut
        the rate. Requests that booked a moment and have not started yet book again."""
        now = self._clock()
        with self._lock:
            # undo the bookings that have not started: their waiters book again under the new terms
            undone = False
            while self._bookings and self._bookings[-1][0] > now:
                self._bookings.pop()
                undone = True
            if undone and self._bookings:
                _, self._next_request, self._next_token = self._bookings[-1]
            elif undone:
                self._next_request = min(self._next_request, now)
                self._next_token = min(self._next_token, now)
            if retry_after is not None and retry_after > 0:
                self._paused_until = max(self._paused_until, now + min(retry_after, self.max_pause))
                self._stats["pauses"] += 1
            elif now - self._cut_at >= self.cooldown:
                if self.requests_per_minute or self.tokens_per_minute:
                    self._factor = max(self.min_factor, self.factor(now) * self.backoff)
                    if self.requests_per_minute and self._bookings:  # the next one already at the new pace
                        last_start = self._bookings[-1][0]
                        pace = 60.0 / (self.requests_per_minute * self._factor)
                        self._next_request = max(self._next_request, last_start + pace)
                        self._bookings[-1] = (last_start, self._next_request, self._next_token)
                else:
                    self._paused_until = max(self._paused_until, now + self.pause_without_limit)
                self._cut_at = now
                self._stats["backoffs"] += 1
            self._epoch += 1

    def pause_remaining(self) -> float:
        """Seconds until a ``Retry-After`` pause ends (0 when none is in force)."""
        return max(0.0, self._paused_until - self._clock())

    def stats(self) -> dict[str, float]:
        """Counters since creation: ``granted``, ``waited_seconds``, ``pauses``, ``backoffs``,
        ``rebooked``, and the ``factor`` of the rate in force."""
        with self._lock:
            out: dict[str, float] = dict(self._stats)
        out["factor"] = self.factor()
        return out

    def config(self) -> dict[str, Any]:
        """The settings this limiter was made with (what a copy elsewhere would need)."""
        return {
            "requests_per_minute": self.requests_per_minute,
            "tokens_per_minute": self.tokens_per_minute,
            "burst_requests": self.burst_requests,
            "burst_tokens": self._burst_tokens_given,
            "expected_output_tokens": self.expected_output_tokens,
            "backoff": self.backoff,
            "min_factor": self.min_factor,
            "cooldown": self.cooldown,
            "recovery_seconds": self.recovery_seconds,
            "pause_without_limit": self.pause_without_limit,
            "max_pause": self.max_pause,
        }

    # ---------------------------------------------------------------- waiting

    def try_acquire(self, tokens: int = 0) -> bool:
        """Take a slot for a request of ``tokens`` if one is free right now; never waits."""
        with self._lock:
            if self._book(tokens, self._clock(), wait=False) is None:
                return False
            self._stats["granted"] += 1
            return True

    def _waits(self, tokens: int) -> Iterator[float]:
        """The one acquire loop: yields how long to sleep, returns once the request may start.
        A booking that a 429 invalidated while waiting is booked again."""
        asked = self._clock()
        while True:
            with self._lock:
                booking = self._book(tokens, self._clock(), wait=True)
            assert booking is not None
            while self._valid(booking):
                remaining = booking.start - self._clock()
                if remaining <= 0:
                    self._granted(asked)
                    return
                yield min(remaining, _SLICE)
            with self._lock:
                self._stats["rebooked"] += 1

    def acquire(self, tokens: int = 0) -> None:
        """Wait (blocking this thread) until a request of ``tokens`` may start."""
        for delay in self._waits(tokens):
            time.sleep(delay)

    async def aacquire(self, tokens: int = 0) -> None:
        """Wait on the running event loop until a request of ``tokens`` may start."""
        for delay in self._waits(tokens):
            await asyncio.sleep(delay)


# -------------------------------------------------------------------- request cost


def request_cost(req: Any, options: Mapping[str, Any], expected_output_tokens: int) -> int:
    """Tokens a prepared request will be counted for: its prompt, estimated offline, plus the
    expected output (``expected_output_tokens``, or ``max_tokens`` when that is smaller)."""
    from .estimate import text_tokens, wire_tokens
    from .models import get_capabilities
    from .tokens import image_tokens

    caps = get_capabilities(req.model)
    high_res = bool(options.get("high_resolution"))
    if not req.plan.native:
        prompt = wire_tokens(req.wire, caps, high_resolution=high_res, fps=options.get("fps"))
    else:  # native parts carry no "type": count the media by their sizes and the text parts
        prompt = sum(
            image_tokens(m.width, m.height, caps, high_resolution=high_res)
            for m in req.wire.media
            if getattr(m, "width", None) and getattr(m, "height", None)
        )
        for message in req.wire.messages:
            content = message.get("content")
            parts = content if isinstance(content, list) else [{"text": content}]
            prompt += sum(text_tokens(p.get("text") or "") for p in parts if isinstance(p, Mapping))
    limit = options.get("max_tokens") or options.get("max_completion_tokens")
    output = min(int(limit), expected_output_tokens) if limit else expected_output_tokens
    return int(prompt) + output


# -------------------------------------------------------------------- the transport side


class RateLimitedTransport(Transport):
    """The client's :class:`~qwen_vl_core.transport.Transport` with the limiter on its HTTP pools:
    before every attempt of a request that carries :data:`COST_HEADER` (a chat request) it waits
    for the limiter, and every 429 answer tells the limiter (with its ``Retry-After``). Uploads and
    other requests pass untouched. The retry loop itself is the transport's own."""

    def __init__(self, limiter: RateLimit, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.limiter = limiter

    @property
    def client(self) -> Any:
        client = Transport.client.fget(self)  # type: ignore[attr-defined]
        _install(client, self.limiter, sync=True)
        return client

    @property
    def async_client(self) -> Any:
        client = Transport.async_client.fget(self)  # type: ignore[attr-defined]
        _install(client, self.limiter, sync=False)
        return client


def with_rate_limit(transport: type[Transport], limiter: RateLimit | None) -> Callable[..., Transport]:
    """``transport`` itself without a limiter, else a factory of :class:`RateLimitedTransport`."""
    if limiter is None:
        return transport
    if not isinstance(limiter, RateLimit):
        raise TypeError(
            f"rate_limit must be a qwen_vl_core.rate_limit.RateLimiter (or a shared one), got {type(limiter).__name__}"
        )
    return partial(RateLimitedTransport, limiter)


def _take_cost(request: Any) -> int | None:
    raw = request.headers.get(COST_HEADER)
    if raw is None:
        return None
    del request.headers[COST_HEADER]
    try:
        cost = int(raw)
    except ValueError:
        cost = 0
    request.extensions = {**request.extensions, _EXTENSION: cost}
    return cost


def _is_limited(response: Any) -> bool:
    return response.status_code == 429 and _EXTENSION in response.request.extensions


def _install(client: Any, limiter: RateLimit, *, sync: bool) -> None:
    hooks = client.event_hooks
    if any(getattr(hook, "_qwen_vl_limiter", None) is limiter for hook in hooks["request"]):
        return
    if sync:

        def on_request(request: Any) -> None:
            cost = _take_cost(request)
            if cost is not None:
                limiter.acquire(cost)

        def on_response(response: Any) -> None:
            if _is_limited(response):
                limiter.throttled(_retry_after(response.headers))

    else:

        async def on_request(request: Any) -> None:  # type: ignore[misc]
            cost = _take_cost(request)
            if cost is not None:
                await limiter.aacquire(cost)

        async def on_response(response: Any) -> None:  # type: ignore[misc]
            if _is_limited(response):
                limiter.throttled(_retry_after(response.headers))

    on_request._qwen_vl_limiter = limiter  # type: ignore[attr-defined]
    client.event_hooks = {"request": [*hooks["request"], on_request], "response": [*hooks["response"], on_response]}
