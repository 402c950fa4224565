"""ChatQwenVL versus langchain_openai.ChatOpenAI and the raw openai SDK, all against one local
DashScope-protocol server, measured in the same run.

    .venv/bin/python benchmarks/chat_overhead.py            # about a minute
    .venv/bin/python benchmarks/chat_overhead.py --quick    # a few seconds

Measured:
  1. client-side time per invoke with a ~1 MP image (median of N; the server answers a fixed reply at
     once, so the time is the client's: building the request, encoding, HTTP, parsing). Each client
     starts from the image file, as a user would: ours takes the path, the peers need a data URL,
     built inside the timed region;
  2. time to the first streamed text chunk (median of N);
  3. abatch throughput at concurrency 32 and 64, the server holding every request for a fixed latency;
  4. bytes on the wire (Content-Length the server received) for one 12 MP photo.
Ratios are ours / peer: below 1 is faster (or smaller) for ChatQwenVL; for throughput above 1 is better.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import openai  # noqa: E402
from langchain_core.messages import HumanMessage  # noqa: E402
from langchain_openai import ChatOpenAI  # noqa: E402
from PIL import Image, ImageFilter  # noqa: E402

from langchain_qwen_vl import ChatQwenVL  # noqa: E402
from qwen_vl_core import DEFAULT_MODEL  # noqa: E402
from tests.fake_dashscope import DashScopeServer, Json, Sse, chunks, completion  # noqa: E402

KEY = "sk-benchmark-000000"
MODEL = DEFAULT_MODEL
PROMPT = "Describe this picture."
STREAM_TEXT = "A calm lake at dawn, mist over the water, two boats near the shore. " * 4


def make_photo(width: int, height: int, path: Path, quality: int = 90) -> Path:
    """A photo-like JPEG: smooth gradients plus mild grain (compresses like a camera picture)."""
    small = Image.effect_noise((width // 16, height // 16), 90).convert("RGB").resize((width, height), Image.BICUBIC)
    grain = Image.effect_noise((width, height), 12).convert("RGB")
    photo = Image.blend(small.filter(ImageFilter.GaussianBlur(2)), grain, 0.15)
    photo.save(path, format="JPEG", quality=quality)
    return path


def data_url(path: Path) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


# ------------------------------------------------------------------------------------------- clients


class Clients:
    def __init__(self, url: str) -> None:
        base = url + "/compatible-mode/v1"
        self.ours = ChatQwenVL(model=MODEL, api_key=KEY, base_url=url, max_retries=0)
        self.lc_openai = ChatOpenAI(model=MODEL, api_key=KEY, base_url=base, max_retries=0)
        self.sdk = openai.OpenAI(api_key=KEY, base_url=base, max_retries=0)
        self.asdk = openai.AsyncOpenAI(api_key=KEY, base_url=base, max_retries=0)

    # one call each, starting from the image file
    def invoke_ours(self, image: Path) -> str:
        return self.ours.invoke([HumanMessage([{"type": "image", "url": str(image)}, PROMPT])]).text

    def invoke_lc_openai(self, image: Path) -> str:
        part = {"type": "image_url", "image_url": {"url": data_url(image)}}
        return self.lc_openai.invoke([HumanMessage([part, PROMPT])]).text

    def invoke_sdk(self, image: Path) -> str:
        part = {"type": "image_url", "image_url": {"url": data_url(image)}}
        messages = [{"role": "user", "content": [part, {"type": "text", "text": PROMPT}]}]
        return self.sdk.chat.completions.create(model=MODEL, messages=messages).choices[0].message.content

    def first_chunk_ours(self) -> float:
        start = time.perf_counter()
        for chunk in self.ours.stream(PROMPT):
            if chunk.text:
                return time.perf_counter() - start
        raise RuntimeError("no text streamed")

    def first_chunk_lc_openai(self) -> float:
        start = time.perf_counter()
        for chunk in self.lc_openai.stream(PROMPT):
            if chunk.text:
                return time.perf_counter() - start
        raise RuntimeError("no text streamed")

    def first_chunk_sdk(self) -> float:
        start = time.perf_counter()
        stream = self.sdk.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": PROMPT}], stream=True
        )
        try:
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    return time.perf_counter() - start
        finally:
            stream.close()
        raise RuntimeError("no text streamed")

    async def abatch_ours(self, n: int, concurrency: int) -> None:
        out = await self.ours.abatch([f"q{i}" for i in range(n)], config={"max_concurrency": concurrency})
        assert len(out) == n

    async def abatch_lc_openai(self, n: int, concurrency: int) -> None:
        out = await self.lc_openai.abatch([f"q{i}" for i in range(n)], config={"max_concurrency": concurrency})
        assert len(out) == n

    async def abatch_sdk(self, n: int, concurrency: int) -> None:
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> str:
            async with gate:
                r = await self.asdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"q{i}"}])
                return r.choices[0].message.content

        out = await asyncio.gather(*(one(i) for i in range(n)))
        assert len(out) == n

    async def aclose(self) -> None:
        await self.ours.aclose()
        await self.asdk.close()


PEERS = ("ours", "lc_openai", "sdk")
LABELS = {"ours": "ChatQwenVL", "lc_openai": "ChatOpenAI", "sdk": "openai SDK"}


def median_time(fn: Callable[[], object], n: int) -> float:
    fn()  # warm-up: connection, imports, caches
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


# ------------------------------------------------------------------------------------------- runs


def _fixed_replies(rec: object) -> object:
    body = getattr(rec, "json", None) or {}
    if body.get("stream"):
        return Sse(chunks(STREAM_TEXT, model=MODEL, piece=16))
    return Json(completion("A lake at dawn.", model=MODEL))


def _serve(conn: Connection, latency: float) -> None:
    """Child process: a DashScopeServer answering fixed replies after ``latency`` seconds."""
    with DashScopeServer(latency=latency) as server:
        server.responder = _fixed_replies
        conn.send(server.url)
        conn.recv()  # block until the parent says stop


@contextmanager
def server_process(latency: float) -> Iterator[str]:
    """A server in its own process, so its threads never compete with the clients for the GIL."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child, latency), daemon=True)
    proc.start()
    try:
        if not parent.poll(30):
            raise RuntimeError("the benchmark server process did not start")
        yield parent.recv()
    finally:
        parent.send("stop")
        proc.join(10)


def run(args: argparse.Namespace) -> list[tuple[str, str, dict[str, float], bool]]:
    rows: list[tuple[str, str, dict[str, float], bool]] = []  # (metric, unit, values, higher_is_better)
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)

        with server_process(0.0) as url:
            clients = Clients(url)
            # 1. invoke with a ~1 MP image (1280x800 is sent as it is; 1000x1000 is not a multiple of
            #    the 32-px patch, so ChatQwenVL re-encodes it at the size the server would resize to)
            for label, size in (("1280x800", (1280, 800)), ("1000x1000", (1000, 1000))):
                image = make_photo(*size, tmpdir / f"photo_{label}.jpg")
                values = {
                    peer: median_time(lambda p=peer: getattr(clients, f"invoke_{p}")(image), args.invokes) * 1000
                    for peer in PEERS
                }
                rows.append((f"invoke, 1 MP image ({label}), median", "ms", values, False))

            # 2. time to first streamed text chunk
            values = {}
            for peer in PEERS:
                fn = getattr(clients, f"first_chunk_{peer}")
                fn()
                values[peer] = statistics.median(fn() for _ in range(args.invokes)) * 1000
            rows.append(("time to first text chunk, median", "ms", values, False))

        # 3. abatch throughput against a server with fixed latency (one event loop for all runs)
        with server_process(args.latency) as url:
            clients = Clients(url)

            async def throughput() -> None:
                for concurrency in args.concurrency:
                    n = concurrency * args.rounds
                    values = {}
                    for peer in PEERS:
                        fn = getattr(clients, f"abatch_{peer}")
                        await fn(concurrency, concurrency)  # warm the pool
                        start = time.perf_counter()
                        await fn(n, concurrency)
                        values[peer] = n / (time.perf_counter() - start)
                    ideal = concurrency / args.latency
                    rows.append((f"abatch throughput, concurrency {concurrency} ({args.latency:g} s latency; ideal {ideal:.0f})",
                                 "req/s", values, True))  # fmt: skip
                await clients.aclose()

            asyncio.run(throughput())

        # 4. bytes on the wire for one 12 MP photo (in-process server: it records each request)
        photo = make_photo(4000, 3000, tmpdir / "photo_12mp.jpg", quality=92)
        with DashScopeServer() as server:
            server.responder = _fixed_replies
            clients = Clients(server.url)
            values = {}
            for peer in PEERS:
                before = len(server.chat_requests)
                getattr(clients, f"invoke_{peer}")(photo)
                request = server.chat_requests[before]
                values[peer] = int(request.headers.get("content-length", len(request.body))) / 1e6
        rows.append((f"bytes on the wire, 12 MP photo ({photo.stat().st_size / 1e6:.1f} MB JPEG)", "MB", values, False))
    return rows


def report(rows: list[tuple[str, str, dict[str, float], bool]]) -> None:
    width = max(len(r[0]) for r in rows) + 2
    header = f"{'metric':<{width}}{'unit':>6}" + "".join(f"{LABELS[p]:>13}" for p in PEERS)
    header += f"{'ours/ChatOpenAI':>17}{'ours/SDK':>11}"
    print(header)
    print("-" * len(header))
    for metric, unit, values, _higher in rows:
        line = f"{metric:<{width}}{unit:>6}" + "".join(f"{values[p]:>13.3f}" for p in PEERS)
        line += f"{values['ours'] / values['lc_openai']:>17.2f}{values['ours'] / values['sdk']:>11.2f}"
        print(line)
    print("\nratios are ours / peer: < 1 is better for times and bytes, > 1 is better for throughput")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few samples, one concurrency level (a few seconds)")
    parser.add_argument("--invokes", type=int, default=30, help="samples per median (default 30)")
    parser.add_argument("--latency", type=float, default=0.2, help="server latency for the abatch runs, seconds")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--rounds", type=int, default=4, help="abatch size = concurrency x rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.invokes, args.rounds, args.concurrency = 5, 2, [32]
    started = time.perf_counter()
    rows = run(args)
    report(rows)
    print(f"total benchmark time {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
