"""The single-process rate limiter: the rule on a fake clock, real waiting in threads and tasks,
and a QwenVLClient that asks it before every attempt and tells it about 429s (local server)."""

from __future__ import annotations

import asyncio
import io
import pickle
import threading
import time

import pytest
from PIL import Image

from qwen_vl_core import QwenVLClient
from qwen_vl_core.models import get_capabilities
from qwen_vl_core.rate_limit import COST_HEADER, RateLimit, RateLimiter
from qwen_vl_core.tokens import image_tokens
from tests.fake_dashscope import Json, completion, error_body

USER = [{"role": "user", "content": "hello"}]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock, **kwargs) -> RateLimiter:
    return RateLimiter(clock=clock, **kwargs)


# ------------------------------------------------------------------ the rule (fake clock)


def test_requests_are_spaced_by_the_rate_and_burst_allows_that_many_at_once():
    clock = Clock()
    lim = limiter(clock, requests_per_minute=60)
    assert lim.try_acquire() and not lim.try_acquire()
    clock.now += 0.99
    assert not lim.try_acquire()
    clock.now += 0.01
    assert lim.try_acquire()

    clock = Clock()
    lim = limiter(clock, requests_per_minute=60, burst_requests=3)
    assert [lim.try_acquire() for _ in range(4)] == [True, True, True, False]
    clock.now += 1.0
    assert [lim.try_acquire() for _ in range(2)] == [True, False]


def test_tokens_per_minute_charges_each_request_its_cost():
    clock = Clock()
    lim = limiter(clock, tokens_per_minute=6000)  # 100 tokens a second, one second's worth at once
    assert lim.try_acquire(60) and lim.try_acquire(40)  # one second's worth at once
    assert not lim.try_acquire(1)
    clock.now += 1.0
    assert lim.try_acquire(1)
    # a request larger than the burst still goes (once the bucket is full), then the debt is paid
    clock.now += 10
    assert lim.try_acquire(1000)
    clock.now += 9.0
    assert not lim.try_acquire(1)
    clock.now += 0.5
    assert lim.try_acquire(1)


def test_a_retry_after_pauses_everyone_for_that_long():
    clock = Clock()
    lim = limiter(clock, requests_per_minute=6000)
    assert lim.try_acquire()
    lim.throttled(2.5)
    assert lim.pause_remaining() == pytest.approx(2.5)
    clock.now += 2.4
    assert not lim.try_acquire()
    clock.now += 0.1
    assert lim.try_acquire()
    assert lim.stats()["pauses"] == 1 and lim.stats()["backoffs"] == 0


def test_a_429_without_retry_after_halves_the_rate_once_per_cooldown_and_it_recovers():
    clock = Clock()
    lim = limiter(clock, requests_per_minute=60, cooldown=2.0, recovery_seconds=10.0)
    assert lim.try_acquire()
    lim.throttled()
    lim.throttled()  # the same burst of 429s: one cut
    assert lim.factor() == pytest.approx(0.5) and lim.stats()["backoffs"] == 1
    clock.now += 1.0  # the next request is two seconds after the last one now
    assert not lim.try_acquire()
    clock.now += 1.0
    assert lim.try_acquire()
    assert lim.factor() == pytest.approx(0.7)  # climbing back: a tenth of the limit a second
    clock.now += 1.0  # past the cooldown: another 429 cuts again, from where it had climbed to
    lim.throttled()
    assert lim.factor() == pytest.approx(0.8 * 0.5)
    clock.now += 6.0
    assert lim.factor() == 1.0
    lim2 = limiter(Clock(), requests_per_minute=60, min_factor=0.2, cooldown=0.0)
    for _ in range(10):
        lim2.throttled()
    assert lim2.factor() == pytest.approx(0.2)


def test_without_any_limit_a_429_without_retry_after_pauses_briefly():
    clock = Clock()
    lim = limiter(clock, pause_without_limit=1.0)
    assert lim.try_acquire() and lim.try_acquire()  # nothing limits
    lim.throttled()
    assert not lim.try_acquire()
    clock.now += 1.0
    assert lim.try_acquire()


def test_bookings_not_started_are_undone_by_a_429():
    """Requests that booked a moment and have not gone yet book again: the time they held is
    given back, and the ones that went still count."""
    clock = Clock()
    lim = limiter(clock, requests_per_minute=60)
    for _ in range(5):  # one now, four booked for the next four seconds
        with lim._lock:
            lim._book(0, clock.now, wait=True)
    lim.throttled(0.5)
    clock.now += 0.5
    assert not lim.try_acquire()  # the one that went a moment ago still spaces the next
    clock.now += 0.5
    assert lim.try_acquire()


def test_settings_are_checked_and_a_limiter_refuses_to_be_pickled():
    with pytest.raises(ValueError, match="requests_per_minute"):
        RateLimiter(requests_per_minute=0)
    with pytest.raises(ValueError, match="burst_requests"):
        RateLimiter(requests_per_minute=10, burst_requests=0)
    with pytest.raises(TypeError, match="shared_rate_limiter"):
        pickle.dumps(RateLimiter(requests_per_minute=10))
    with pytest.raises(TypeError, match="shared_rate_limiter"):  # nor a client holding one: refused, not lost
        pickle.dumps(QwenVLClient(api_key="sk-x", rate_limit=RateLimiter(requests_per_minute=10)))
    assert isinstance(RateLimiter(), RateLimit)
    assert RateLimiter(60, 1000).config()["tokens_per_minute"] == 1000


# ------------------------------------------------------------------ real waiting


def max_in_window(times: list[float], window: float) -> int:
    """The most requests seen in any window of ``window`` seconds."""
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t < start + window) for i, start in enumerate(times))


def _never_ahead(times: list[float], interval: float) -> bool:
    """The k-th grant comes no sooner than k intervals after the first (late wake-ups may make
    two grants closer than an interval, never more grants than the schedule allows)."""
    times = sorted(times)
    return all(t - times[0] >= k * interval - 0.002 for k, t in enumerate(times))


def test_threads_sharing_a_limiter_are_spaced_by_it():
    lim = RateLimiter(requests_per_minute=2400)  # one every 25 ms
    granted: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(5):
            lim.acquire()
            with lock:
                granted.append(time.monotonic())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 20 and _never_ahead(granted, 0.025)


async def test_tasks_sharing_a_limiter_are_spaced_by_it():
    lim = RateLimiter(requests_per_minute=2400)
    granted: list[float] = []

    async def one() -> None:
        await lim.aacquire()
        granted.append(time.monotonic())

    await asyncio.gather(*(one() for _ in range(16)))
    assert len(granted) == 16 and _never_ahead(granted, 0.025)


async def test_waiting_tasks_honour_a_pause_that_starts_while_they_wait():
    lim = RateLimiter(requests_per_minute=1200)  # one every 50 ms
    granted: list[float] = []

    async def one() -> None:
        await lim.aacquire()
        granted.append(time.monotonic())

    tasks = [asyncio.ensure_future(one()) for _ in range(8)]
    await asyncio.sleep(0.12)  # about three have gone
    paused_at = time.monotonic()
    lim.throttled(0.4)
    await asyncio.gather(*tasks)
    during = [t for t in granted if paused_at + 0.01 < t < paused_at + 0.39]
    assert during == [] and len(granted) == 8
    assert lim.stats()["rebooked"] >= 1


# ------------------------------------------------------------------ the client


class Spy:
    """A RateLimit that records what the client asks."""

    expected_output_tokens = 100

    def __init__(self) -> None:
        self.costs: list[int] = []
        self.reports: list[float | None] = []

    def acquire(self, tokens: int = 0) -> None:
        self.costs.append(tokens)

    async def aacquire(self, tokens: int = 0) -> None:
        self.costs.append(tokens)

    def throttled(self, retry_after: float | None = None) -> None:
        self.reports.append(retry_after)


def _client(dashscope, api_key, limit, **kwargs):
    return QwenVLClient(api_key=api_key, base_url=dashscope.url, retry_initial_delay=0.01, retry_max_delay=0.02,
                        timeout=10, rate_limit=limit, **kwargs)  # fmt: skip


def _png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), "white").save(buf, "PNG")
    return buf.getvalue()


def test_every_attempt_asks_the_limiter_and_the_cost_header_never_leaves(dashscope, api_key):
    spy = Spy()
    client = _client(dashscope, api_key, spy, max_retries=3)
    dashscope.script(
        Json(error_body("busy", "InternalError"), 503),
        Json(error_body("slow down", "Throttling"), 429, headers={"retry-after": "0"}),
        Json(error_body("slow down", "Throttling"), 429),
        Json(completion("ok")),
    )
    assert client.chat(USER, model="qwen3-vl-plus").text == "ok"
    assert len(spy.costs) == 4 and len(set(spy.costs)) == 1  # every attempt, the same cost
    assert spy.reports == [0.0, None]  # the 429s, with and without Retry-After; not the 503
    assert all(COST_HEADER not in r.headers for r in dashscope.requests)
    client.close()


async def test_the_async_path_asks_too_and_the_cost_is_image_tokens_plus_output(dashscope, api_key):
    spy = Spy()
    client = _client(dashscope, api_key, spy)
    image = _png(640, 480)
    messages = [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "Hi"}]}]
    await client.achat(messages, model="qwen3-vl-plus")
    await client.achat(messages, model="qwen3-vl-plus", max_tokens=20)
    tokens = image_tokens(640, 480, get_capabilities("qwen3-vl-plus"))
    first, second = spy.costs
    assert tokens + 100 < first < tokens + 100 + 20  # image + a few text/markup tokens + expected output
    assert first - second == 80  # max_tokens below the expected output is what is charged
    assert all(COST_HEADER not in r.headers for r in dashscope.requests)
    await client.aclose()


def test_two_clients_sharing_a_limiter_are_paused_by_one_429(dashscope, api_key):
    lim = RateLimiter()
    first = _client(dashscope, api_key, lim)
    second = _client(dashscope, api_key, lim)
    arrivals: list[float] = []

    def responder(rec):
        arrivals.append(time.monotonic())
        if len(arrivals) == 1:
            return Json(error_body("slow down", "Throttling"), 429, headers={"retry-after": "0.6"})
        return Json(completion("ok"))

    dashscope.responder = responder
    started = time.monotonic()
    t = threading.Thread(target=lambda: first.chat(USER, model="qwen3-vl-plus"))
    t.start()
    time.sleep(0.2)  # the first client's 429 has arrived, its retry waits for the pause
    second.chat(USER, model="qwen3-vl-plus")
    t.join()
    assert len(arrivals) == 3
    assert all(a - started >= 0.55 for a in arrivals[1:])  # the other client waited out the pause
    assert lim.stats()["pauses"] == 1
    first.close()
    second.close()


def test_the_server_never_sees_more_than_the_limit(dashscope, api_key):
    lim = RateLimiter(requests_per_minute=1200)  # 20 a second
    client = _client(dashscope, api_key, lim)
    arrivals: list[float] = []
    dashscope.responder = lambda rec: (arrivals.append(time.monotonic()), Json(completion("ok")))[1]

    def work() -> None:
        for _ in range(5):
            client.chat(USER, model="qwen3-vl-plus")

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(arrivals) == 30
    # any second holds at most 20 (+1 the burst, +1 for arrival jitter on a busy machine); unlimited,
    # the six threads would send all 30 within a fraction of a second
    assert max_in_window(arrivals, 1.0) <= 22
    client.close()


def test_the_langchain_adapter_takes_the_same_limiter(dashscope, api_key):
    pytest.importorskip("langchain_core")
    from langchain_qwen_vl import ChatQwenVL, QwenVLRateLimiter

    clock = Clock()
    lim = limiter(clock, requests_per_minute=60)
    adapter = QwenVLRateLimiter(lim)
    assert adapter.acquire(blocking=False) is True
    assert adapter.acquire(blocking=False) is False
    clock.now += 1
    assert asyncio.run(adapter.aacquire(blocking=False)) is True

    shared = RateLimiter(requests_per_minute=600)
    model = ChatQwenVL(api_key=api_key, base_url=dashscope.url, rate_limiter=QwenVLRateLimiter(shared))
    dashscope.responder = lambda rec: Json(completion("ok"))
    assert model.invoke("hi").content == "ok"
    assert shared.stats()["granted"] == 1
