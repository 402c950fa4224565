"""achat / astream prepare media off the event loop, in a pool bounded by the CPU cores.

The loop's responsiveness is measured relative to the work: a ticker task's longest gap while
photos are prepared, against the time one photo's preparation takes on this machine (never an
absolute time)."""

from __future__ import annotations

import asyncio
import contextvars
import statistics
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from qwen_vl_core import InputValidationError, QwenVLClient
from qwen_vl_core import client as client_module
from tests.fake_dashscope import Json, completion

MODEL = "qwen3-vl-plus"


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    """A 12 MP JPEG: decoded at half scale, resized to the model's size and re-encoded on every call."""
    w, h = 4032, 3024
    grain = Image.effect_noise((w // 2, h // 2), 40).resize((w, h))
    img = Image.merge("RGB", (grain, Image.linear_gradient("L").resize((w, h)), grain.transpose(Image.FLIP_TOP_BOTTOM)))
    path = tmp_path_factory.mktemp("photos") / "photo.jpg"
    img.save(path, "JPEG", quality=90)
    return path


@pytest.fixture
def client(dashscope, api_key):
    dashscope.responder = lambda rec: Json(completion("ok", model=MODEL))
    c = QwenVLClient(api_key=api_key, base_url=dashscope.url, max_retries=0, timeout=30)
    yield c
    c.close()


def _message(image) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": str(image)}}, "Describe."]}]


def _preparations(client: QwenVLClient, photo: Path) -> list[float]:
    """Three timings of one photo's preparation (decode, resize, encode) on this thread."""
    samples = []
    for _ in range(3):
        start = time.perf_counter()
        req = client.prepare(_message(photo), model=MODEL, stream=False)
        samples.append(time.perf_counter() - start)
    assert req.wire.media[0].resized  # real work: decode, resize, encode
    return samples


async def _longest_gap(work) -> float:
    """Run ``work()`` while a ticker sleeps 1 ms at a time; the longest time between its ticks."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.02)
    gaps.clear()
    try:
        await work()
    finally:
        done.set()
        await task
    return max(gaps)


def test_photos_are_prepared_without_stalling_the_loop(client, photo):
    samples = _preparations(client, photo)
    one, fastest = statistics.median(samples), min(samples)

    async def on_the_loop() -> None:  # control: what the ticker sees when the work blocks the loop
        client.prepare(_message(photo), model=MODEL, stream=False)

    async def batch() -> None:
        results = await asyncio.gather(*(client.achat(_message(photo), model=MODEL) for _ in range(6)))
        assert [r.text for r in results] == ["ok"] * 6

    async def measure() -> tuple[float, float]:
        # warm up first: the async connection pool (its TLS context) and lazy imports are built once
        await client.achat("warm up", model=MODEL)
        await client.achat(_message(photo), model=MODEL)
        blocked = await _longest_gap(on_the_loop)
        # the best of two runs: the loop thread also waits for the OS on a busy machine
        offloaded = min([await _longest_gap(batch), await _longest_gap(batch)])
        return blocked, offloaded

    blocked, offloaded = asyncio.run(measure())
    assert blocked > 0.8 * fastest  # the measurement does see a stall (at least one whole preparation)
    assert offloaded < 0.5 * one, (offloaded, one)


def test_preparation_is_bounded_by_the_cores_and_keeps_the_context(client, photo, monkeypatch):
    workers = client_module._media_pool()._max_workers
    active = peak = 0
    lock = threading.Lock()
    threads: set[str] = set()
    seen: list[str] = []
    request_tag: contextvars.ContextVar[str] = contextvars.ContextVar("request_tag", default="unset")
    prepare = client.prepare

    def tracking(*args, **kwargs):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
            threads.add(threading.current_thread().name)
            seen.append(request_tag.get())
        try:
            return prepare(*args, **kwargs)
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(client, "prepare", tracking)

    async def one(i: int) -> str:
        request_tag.set(f"call-{i}")
        return (await client.achat(_message(photo), model=MODEL)).text

    async def batch() -> list[str]:
        return await asyncio.gather(*(one(i) for i in range(3 * workers + 1)))

    assert asyncio.run(batch()) == ["ok"] * (3 * workers + 1)
    assert 1 <= peak <= workers  # never more images in flight than cores
    assert all(name.startswith("qwen-vl-media") for name in threads)
    assert sorted(seen) == sorted(f"call-{i}" for i in range(3 * workers + 1))

    threads.clear()
    assert asyncio.run(client.achat("text only: nothing to prepare off the loop", model=MODEL)).text == "ok"
    assert threads == {threading.main_thread().name}
    remote = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}, "Hi"]}]
    assert asyncio.run(client.achat(remote, model=MODEL)).text == "ok"
    assert threads == {threading.main_thread().name}


def test_astream_prepares_media_off_the_loop_and_reports_errors_when_iterated(client, photo, dashscope, tmp_path):
    from tests.fake_dashscope import Sse, chunks

    dashscope.responder = lambda rec: Sse(chunks("streamed", model=MODEL))
    loop_thread = threading.main_thread().name
    names: list[str] = []
    prepare = client.prepare

    def tracking(*args, **kwargs):
        names.append(threading.current_thread().name)
        return prepare(*args, **kwargs)

    client.prepare = tracking

    async def collect(messages) -> str:
        return "".join([d.text async for d in client.astream(messages, model=MODEL)])

    assert asyncio.run(collect(_message(photo))) == "streamed"
    assert names and names[0] != loop_thread
    missing = _message(tmp_path / "no-such-photo.jpg")
    client.astream(missing, model=MODEL)  # no error yet: the file is read off the loop, when iterated
    with pytest.raises(InputValidationError, match=r"no such file"):
        asyncio.run(collect(missing))
    with pytest.raises(InputValidationError):  # text-only input is still checked at once
        client.astream([{"role": "nobody", "content": "hi"}], model=MODEL)


def test_media_work_detection():
    from qwen_vl_core.chat_media import needs_media_work as work
    assert not work("hello")
    assert not work([{"role": "user", "content": "hi"}, {"role": "assistant", "content": None}])
    assert not work([{"role": "user", "content": [{"type": "text", "text": "a"}, "b", {"text": "c"}]}])
    assert not work([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}])
    assert not work([{"role": "user", "content": [{"image": "oss://bucket/a.png"}, {"type": "image", "url": "http://x"}]}])
    assert work([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "/tmp/a.png"}}]}])
    assert work([{"role": "user", "content": [{"type": "image", "base64": "iVBO", "mime_type": "image/png"}]}])
    assert work([{"role": "user", "content": [{"video": ["https://x/1.jpg", "/tmp/2.jpg"]}]}])
    assert work([{"role": "user", "content": [b"\x89PNG"]}])
    assert work([{"role": "user", "content": [Image.new("RGB", (20, 20))]}])
    assert work([{"role": "user", "content": {"type": "image_url", "image_url": "data:image/png;base64,iVBO"}}])
