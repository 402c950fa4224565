"""ChatQwenVL versus langchain_openai.ChatOpenAI, the raw openai SDK and hand-written floors, all
against one local DashScope-protocol server, measured in the same run.

    .venv/bin/python benchmarks/chat_overhead.py            # about three minutes on 2 cores
    .venv/bin/python benchmarks/chat_overhead.py --quick    # under a minute, fewer samples

Every client starts from what a user has: a prompt, or an image file's path. ChatQwenVL takes the
path; the peers need a data URL, which is built inside the measured region (the user's own code).
Client cost is the client process's CPU time per call (the server runs in another process and
answers a fixed reply at once). Samples are taken in rounds (each client once per round, the order
rotating), and each ratio is paired: the median over rounds of the two clients' ratio in that round.

  1. invoke CPU: text only, and 1 MP PNG / JPEG / WEBP photos that need no resize, versus ChatOpenAI,
     the SDK and the floor (read the file, base64, one bare HTTP request with the same HTTP library).
     ChatQwenVL is measured with the LangChain v1 block the README shows ({"type": "image", "url":
     path}) and with an OpenAI-style image_url block holding the path.
  2. invoke CPU with a 12 MP JPEG photo, which ChatQwenVL downscales to what the model looks at,
     versus the minimal pipeline doing the same (decode at a reduced scale, the same resize, JPEG
     encode, base64, request) and versus ChatOpenAI (sends the original); what the bytes saved are
     worth on a 50 Mbit/s uplink next to the CPU they cost; quality as PSNR against the server's own
     bicubic resize of the original (what the model sees), and the previous filter's for comparison.
  3. time to the first streamed text chunk.
  4. abatch of 16 such photos: the event loop's longest stall (a 1 ms ticker), versus ChatOpenAI.
  5. bytes on the wire for that photo: the image sent versus the smallest JPEG of the server's view
     that reaches the same PSNR (the floor at equal quality), and the image tokens of each.
  6. abatch of 256 text calls at concurrency 64 and 128 against 0.2 s of server latency: requests per
     second versus the raw AsyncOpenAI client (and ChatOpenAI).
Ratios are ours / other: below 1 is cheaper for times, CPU, stalls and bytes; above 1 is better for
throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import openai  # noqa: E402
from langchain_core.messages import HumanMessage  # noqa: E402
from langchain_openai import ChatOpenAI  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks._photo import photo_image, photo_jpeg, psnr, server_view, smallest_jpeg_at  # noqa: E402
from langchain_qwen_vl import ChatQwenVL  # noqa: E402
from qwen_vl_core import DEFAULT_MODEL  # noqa: E402
from qwen_vl_core._http import httpx  # noqa: E402
from qwen_vl_core.media.resize import JPEG_QUALITY, REDUCING_GAP  # noqa: E402
from qwen_vl_core.tokens import image_geometry, image_tokens  # noqa: E402
from tests.fake_dashscope import DashScopeServer, Json, Sse, chunks, completion  # noqa: E402

KEY = "sk-benchmark-000000"
MODEL = DEFAULT_MODEL
PROMPT = "Describe this picture."
STREAM_TEXT = "A calm lake at dawn, mist over the water, two boats near the shore. " * 4
UPLINK_BITS_PER_S = 50e6
MIME = {".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp"}


def data_url(path: Path) -> str:
    return f"data:{MIME[path.suffix]};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def encode_jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=JPEG_QUALITY, subsampling=0)
    return buf.getvalue()


def minimal_downscale(path: Path, size: tuple[int, int], resample=Image.Resampling.BICUBIC, gap=REDUCING_GAP) -> bytes:
    """The least a client can do to send ``size``: JPEG decoded at a reduced scale, one resize, encode."""
    img = Image.open(path)
    img.draft("RGB", size)
    return encode_jpeg(img.resize(size, resample, reducing_gap=gap))


# ------------------------------------------------------------------------------------------- clients


class Clients:
    def __init__(self, url: str) -> None:
        base = url + "/compatible-mode/v1"
        self.chat_url = base + "/chat/completions"
        self.ours = ChatQwenVL(model=MODEL, api_key=KEY, base_url=url, max_retries=0)
        self.lc_openai = ChatOpenAI(model=MODEL, api_key=KEY, base_url=base, max_retries=0)
        self.sdk = openai.OpenAI(api_key=KEY, base_url=base, max_retries=0)
        self.asdk = openai.AsyncOpenAI(api_key=KEY, base_url=base, max_retries=0)
        self.bare = httpx.Client(headers={"Authorization": f"Bearer {KEY}"})

    # one call each, starting from a prompt or an image file
    def invoke_ours(self, image: Path | None) -> str:
        content = PROMPT if image is None else [{"type": "image", "url": str(image)}, PROMPT]
        return self.ours.invoke([HumanMessage(content)]).text

    def invoke_ours_image_url(self, image: Path | None) -> str:
        """The same call with an OpenAI-style ``image_url`` block (a path works there too): langchain-core's
        tracing inspects v1 ``image`` blocks with ``typing.get_type_hints`` on every call, not these."""
        content = PROMPT if image is None else [{"type": "image_url", "image_url": {"url": str(image)}}, PROMPT]
        return self.ours.invoke([HumanMessage(content)]).text

    def invoke_lc_openai(self, image: Path | None) -> str:
        content = PROMPT if image is None else [{"type": "image_url", "image_url": {"url": data_url(image)}}, PROMPT]
        return self.lc_openai.invoke([HumanMessage(content)]).text

    def invoke_sdk(self, image: Path | None) -> str:
        content = PROMPT if image is None else [
            {"type": "image_url", "image_url": {"url": data_url(image)}}, {"type": "text", "text": PROMPT}]
        messages = [{"role": "user", "content": content}]
        return self.sdk.chat.completions.create(model=MODEL, messages=messages).choices[0].message.content

    def invoke_floor(self, image: Path | None, url: str | None = None) -> str:
        """Read + base64 + one bare request (the same HTTP library ChatQwenVL uses) + JSON answer."""
        url = url if url is not None else (data_url(image) if image is not None else None)
        content = PROMPT if url is None else [{"type": "image_url", "image_url": {"url": url}},
                                              {"type": "text", "text": PROMPT}]
        body = {"model": MODEL, "messages": [{"role": "user", "content": content}]}
        return self.bare.post(self.chat_url, json=body).json()["choices"][0]["message"]["content"]

    def invoke_floor_downscale(self, image: Path, size: tuple[int, int], **resize) -> str:
        jpeg = minimal_downscale(image, size, **resize)
        return self.invoke_floor(None, "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii"))

    def first_chunk(self, who: str) -> float:
        start = time.perf_counter()
        if who == "sdk":
            stream = self.sdk.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": PROMPT}], stream=True)
            with stream:
                for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        return time.perf_counter() - start
        else:
            for chunk in getattr(self, who).stream(PROMPT):
                if chunk.text:
                    return time.perf_counter() - start
        raise RuntimeError("no text streamed")

    async def abatch(self, who: str, inputs: list, concurrency: int | None) -> None:
        config = {"max_concurrency": concurrency} if concurrency else None
        if who == "sdk":
            gate = asyncio.Semaphore(concurrency or len(inputs))

            async def one(content) -> str:
                async with gate:
                    r = await self.asdk.chat.completions.create(
                        model=MODEL, messages=[{"role": "user", "content": content}])
                    return r.choices[0].message.content

            out = await asyncio.gather(*(one(c) for c in inputs))
        else:
            out = await getattr(self, who).abatch([[HumanMessage(c)] for c in inputs], config=config)
        assert len(out) == len(inputs)

    async def aclose(self) -> None:
        await self.ours.aclose()
        await self.asdk.close()
        self.bare.close()


LABELS = {"ours": "ChatQwenVL", "ours_image_url": "ChatQwenVL (image_url block)", "lc_openai": "ChatOpenAI", "sdk": "openai SDK", "floor": "floor",
          "floor_old": "floor, LANCZOS"}


def cpu_samples(fns: dict[str, Callable[[], object]], n: int) -> dict[str, list[float]]:
    """Client CPU (ms) of ``n`` calls of each function, in rounds (each function once per round, the
    order rotating), so that sample ``i`` of every function was taken under the same conditions."""
    for fn in fns.values():
        fn()  # warm-up: connections, imports, caches
    samples: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for i in range(n):
        for name in names[i % len(names):] + names[: i % len(names)]:
            start = time.process_time()
            fns[name]()
            samples[name].append((time.process_time() - start) * 1000)
    return samples


def medians(samples: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in samples.items()}


# ------------------------------------------------------------------------------------------- server


def _fixed_replies(server: DashScopeServer) -> Callable[[object], object]:
    def reply(rec: object) -> object:
        if len(server.requests) > 64:  # the log keeps request bodies: do not grow for the whole run
            server.requests.clear()
        body = getattr(rec, "json", None) or {}
        if body.get("stream"):
            return Sse(chunks(STREAM_TEXT, model=MODEL, piece=16))
        return Json(completion("A lake at dawn.", model=MODEL))

    return reply


def _serve(conn: Connection, latency: float) -> None:
    """Child process: a DashScopeServer answering fixed replies after ``latency`` seconds."""
    with DashScopeServer(latency=latency) as server:
        server.responder = _fixed_replies(server)
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
        if not parent.poll(60):
            raise RuntimeError("the benchmark server process did not start")
        yield parent.recv()
    finally:
        parent.send("stop")
        proc.join(10)


# ------------------------------------------------------------------------------------------- report


@dataclass
class Row:
    """One measured metric. ``values`` are medians; with ``samples`` (taken in rounds) each ratio is
    paired: the median over rounds of the two clients' ratio in that round."""

    metric: str
    unit: str
    values: dict[str, float]
    ratios: list[tuple[str, str]] = field(default_factory=list)  # (numerator, denominator) names
    goal: str = ""  # e.g. "ours/ChatOpenAI <= 0.8"
    check: Callable[[Callable[[str, str], float]], bool] | None = None  # given ratio(a, b)
    samples: dict[str, list[float]] | None = None

    def ratio(self, a: str, b: str) -> float:
        if self.samples and a in self.samples and b in self.samples:
            return statistics.median(x / y for x, y in zip(self.samples[a], self.samples[b]))
        return self.values[a] / self.values[b]


def fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}" if abs(v) >= 1 else f"{v:.3f}"


def report(section: str, rows: list[Row]) -> None:
    print(f"\n## {section}")
    for row in rows:
        values = ", ".join(f"{LABELS.get(k, k)} {fmt(v)}" for k, v in row.values.items())
        ratios = ", ".join(f"{LABELS.get(a, a)}/{LABELS.get(b, b)} {row.ratio(a, b):.2f}" for a, b in row.ratios)
        met = row.check(row.ratio) if row.check else None
        goal = f"  [goal {row.goal}: {'met' if met else 'NOT met'}]" if row.goal else ""
        print(f"- {row.metric} ({row.unit}): {values}" + (f"; {ratios}" if ratios else "") + goal)


# ------------------------------------------------------------------------------------------- runs


def run_invokes(args: argparse.Namespace, clients: Clients, tmp: Path) -> list[Row]:
    """Section 1: client CPU per invoke, text and 1 MP images that need no resize."""
    rows = []
    photo = photo_image(1280, 800)
    images: dict[str, Path | None] = {"text only": None}
    for fmt_name, suffix, params in (("PNG", ".png", {}), ("JPEG", ".jpg", {"quality": 92}),
                                     ("WEBP", ".webp", {"quality": 90})):
        path = tmp / f"photo_1mp{suffix}"
        photo.save(path, fmt_name, **params)
        images[f"1 MP {fmt_name} from a path ({path.stat().st_size / 1e6:.2f} MB, no resize)"] = path
    for label, image in images.items():
        peers = ("ours", "lc_openai", "sdk", "floor") if image is None else ("ours", "ours_image_url", "lc_openai", "sdk", "floor")
        fns = {p: (lambda p=p: getattr(clients, f"invoke_{p}")(image)) for p in peers}
        samples = cpu_samples(fns, args.invokes)
        row = Row(f"invoke CPU, {label}", "ms", medians(samples),
                  [("ours", "lc_openai"), ("ours", "sdk"), ("ours", "floor")], samples=samples)
        if image is not None:
            row.ratios += [("ours_image_url", "lc_openai"), ("ours_image_url", "floor")]
            row.goal = "ours/ChatOpenAI <= 0.8 and ours/floor <= 1.3 (v1 block; image_url block)"
            row.check = lambda r: all(r(o, "lc_openai") <= 0.8 and r(o, "floor") <= 1.3 for o in ("ours", "ours_image_url"))
        rows.append(row)
    return rows


def run_downscale(args: argparse.Namespace, clients: Clients, photo: Path) -> tuple[list[Row], dict[str, float]]:
    """Section 2: a 12 MP photo that must be downscaled."""
    w, h = Image.open(photo).size
    geo = image_geometry(w, h, MODEL)
    size = (geo.width, geo.height)
    fns = {
        "ours": lambda: clients.invoke_ours(photo),
        "floor": lambda: clients.invoke_floor_downscale(photo, size),
        "floor_old": lambda: clients.invoke_floor_downscale(photo, size, resample=Image.Resampling.LANCZOS, gap=None),
        "lc_openai": lambda: clients.invoke_lc_openai(photo),
    }
    samples = cpu_samples(fns, max(5, args.invokes // 3))
    values = medians(samples)
    original = photo.read_bytes()
    from qwen_vl_core.media import resolve_image

    ours_jpeg = base64.b64decode(resolve_image(photo).url.split(",", 1)[1])
    old_jpeg = minimal_downscale(photo, size, resample=Image.Resampling.LANCZOS, gap=None)
    view = server_view(original, size)
    quality = {"ours": psnr(Image.open(io.BytesIO(ours_jpeg)), view),
               "floor_old": psnr(Image.open(io.BytesIO(old_jpeg)), view)}
    saved_ms = (len(original) - len(ours_jpeg)) * 4 / 3 * 8 / UPLINK_BITS_PER_S * 1000  # base64 on the wire
    cost_ms = values["ours"] - values["lc_openai"]
    rows = [
        Row(f"invoke CPU, {w}x{h} JPEG photo ({len(original) / 1e6:.1f} MB) downscaled to {size[0]}x{size[1]}", "ms",
            values, [("ours", "floor"), ("ours", "floor_old"), ("ours", "lc_openai")],
            "ours/floor <= 1.1", lambda r: r("ours", "floor") <= 1.1, samples),
        Row("upload time saved at 50 Mbit/s by the smaller image, versus the extra client CPU", "ms",
            {"saved": saved_ms, "extra CPU": cost_ms, "net gain": saved_ms - cost_ms}),
        Row("quality: PSNR against the server's bicubic resize of the original", "dB",
            {"ours": quality["ours"], "floor_old": quality["floor_old"]}, [],
            "within 0.5 dB of the previous filter", lambda r: quality["ours"] >= quality["floor_old"] - 0.5),
    ]
    return rows, {"size_w": size[0], "size_h": size[1], "psnr": quality["ours"], "bytes": len(ours_jpeg)}


async def _longest_gap(work) -> float:
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
    await asyncio.sleep(0.01)
    gaps.clear()
    try:
        await work()
    finally:
        done.set()
        await task
    return max(gaps)


def run_stalls(args: argparse.Namespace, url: str, photo: Path, tmp: Path) -> list[Row]:
    """Section 4: abatch of 16 12-MP photos, the event loop's longest stall."""
    paths = []
    for i in range(16):
        path = tmp / f"photo_{i:02d}.jpg"
        shutil.copyfile(photo, path)
        paths.append(path)
    ours_inputs = [[{"type": "image", "url": str(p)}, PROMPT] for p in paths]
    # the peer's data URLs are built before the batch, outside the measurement (in its favour)
    peer_inputs = [[{"type": "image_url", "image_url": {"url": data_url(p)}}, PROMPT] for p in paths]

    async def measure() -> dict[str, list[float]]:
        clients = Clients(url)
        out: dict[str, list[float]] = {"ours": [], "lc_openai": [], "wall_ours": [], "wall_lc_openai": []}
        for who, inputs in (("ours", ours_inputs), ("lc_openai", peer_inputs)):  # warm up pools and imports
            await clients.abatch(who, inputs[:2], None)
        for _ in range(args.stall_repeats):
            for who, inputs in (("ours", ours_inputs), ("lc_openai", peer_inputs)):
                start = time.perf_counter()
                out[who].append(await _longest_gap(lambda: clients.abatch(who, inputs, None)) * 1000)
                out[f"wall_{who}"].append(time.perf_counter() - start)
        await clients.aclose()
        return out

    out = asyncio.run(measure())
    stalls = {k: out[k] for k in ("ours", "lc_openai")}
    walls = {k: out[f"wall_{k}"] for k in ("ours", "lc_openai")}
    return [
        Row("abatch of 16 12-MP photos: the event loop's longest stall, median of "
            f"{args.stall_repeats}", "ms", medians(stalls), [("ours", "lc_openai")],
            "ours <= ChatOpenAI", lambda r: r("ours", "lc_openai") <= 1, stalls),
        Row("abatch of 16 12-MP photos: wall time (ours downscales, the peer sends 3x the bytes)", "s",
            medians(walls), [("ours", "lc_openai")], samples=walls),
    ]


def run_bytes(photo: Path, facts: dict[str, float]) -> list[Row]:
    """Section 5: bytes on the wire for the 12 MP photo (request bodies as the server received them)."""
    original = photo.read_bytes()
    w, h = Image.open(photo).size
    size = (int(facts["size_w"]), int(facts["size_h"]))
    view = server_view(original, size)
    floor_bytes, floor_settings = smallest_jpeg_at(view, facts["psnr"])
    same_settings = len(encode_jpeg(view))
    with DashScopeServer() as server:
        server.responder = _fixed_replies(server)
        clients = Clients(server.url)
        request_bytes = {}
        for who in ("ours", "lc_openai"):
            before = len(server.chat_requests)
            getattr(clients, f"invoke_{who}")(photo)
            request = server.chat_requests[before]
            request_bytes[who] = int(request.headers.get("content-length", len(request.body))) / 1e6
        clients.bare.close()
    tokens = {"ours": image_tokens(*size, MODEL), "lc_openai": image_tokens(w, h, MODEL)}
    image = {"ours": facts["bytes"] / 1e6, "floor": floor_bytes / 1e6, "same settings": same_settings / 1e6}
    return [
        Row(f"image bytes sent for the {w}x{h} photo (floor: the server's view as the smallest JPEG with the "
            f"same PSNR, {facts['psnr']:.1f} dB: {floor_settings}; same settings: quality {JPEG_QUALITY}, 4:4:4)",
            "MB", image, [("ours", "floor"), ("ours", "same settings")],
            "ours/floor <= 1.15", lambda r: r("ours", "floor") <= 1.15),
        Row("request bytes on the wire (ChatOpenAI sends the original file)", "MB", request_bytes,
            [("ours", "lc_openai")]),
        Row("image tokens billed", "tokens", tokens, [("ours", "lc_openai")],
            "equal", lambda r: tokens["ours"] == tokens["lc_openai"]),
    ]


def run_first_chunk(args: argparse.Namespace, clients: Clients) -> list[Row]:
    """Section 3: time to the first streamed text chunk (wall time, the server answers at once)."""
    samples: dict[str, list[float]] = {"ours": [], "lc_openai": [], "sdk": []}
    for who in samples:
        clients.first_chunk(who)
    for _ in range(args.invokes):
        for who in samples:
            samples[who].append(clients.first_chunk(who) * 1000)
    return [Row("time to the first streamed text chunk, median", "ms", medians(samples),
                [("ours", "lc_openai"), ("ours", "sdk")], samples=samples)]


def run_throughput(args: argparse.Namespace) -> list[Row]:
    """Section 6: abatch of 256 text calls against a server that holds each request ``latency`` s."""
    rows = []
    with server_process(args.latency) as url:

        async def throughput() -> None:
            clients = Clients(url)
            for concurrency in args.concurrency:
                samples: dict[str, list[float]] = {"ours": [], "sdk": [], "lc_openai": []}
                for who in samples:  # warm the pools to this concurrency
                    await clients.abatch(who, [f"w{i}" for i in range(concurrency)], concurrency)
                for _ in range(args.throughput_repeats):
                    for who in samples:
                        start = time.perf_counter()
                        await clients.abatch(who, [f"q{i}" for i in range(args.calls)], concurrency)
                        samples[who].append(args.calls / (time.perf_counter() - start))
                ideal = concurrency / args.latency
                rows.append(Row(
                    f"abatch of {args.calls} text calls at concurrency {concurrency}, {args.latency:g} s server "
                    f"latency (ideal {ideal:.0f}), median of {args.throughput_repeats}", "req/s", medians(samples),
                    [("ours", "sdk"), ("ours", "lc_openai")], "ours/SDK >= 1 (within noise: 0.97)",
                    lambda r: r("ours", "sdk") >= 0.97, samples))
            await clients.aclose()

        asyncio.run(throughput())
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (under a minute)")
    parser.add_argument("--invokes", type=int, default=30, help="samples per median (default 30)")
    parser.add_argument("--stall-repeats", type=int, default=3, help="abatch stall measurements per client")
    parser.add_argument("--latency", type=float, default=0.2, help="server latency for the throughput runs, s")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--calls", type=int, default=256, help="text calls per throughput abatch")
    parser.add_argument("--throughput-repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if args.quick:
        args.invokes, args.stall_repeats, args.throughput_repeats = 7, 1, 1
    started = time.perf_counter()
    print(f"load average before the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} CPUs); client CPU is this process's CPU time per call")
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        photo = tmpdir / "photo_12mp.jpg"
        photo.write_bytes(photo_jpeg())
        with server_process(0.0) as url:
            clients = Clients(url)
            report("1. client CPU per invoke (medians; ratios paired over rounds)", run_invokes(args, clients, tmpdir))
            rows, facts = run_downscale(args, clients, photo)
            report("2. a 12 MP photo that must be downscaled", rows)
            report("3. streaming", run_first_chunk(args, clients))
            report("4. event loop during abatch", run_stalls(args, url, photo, tmpdir))
            clients.bare.close()
        report("5. bytes on the wire", run_bytes(photo, facts))
    report("6. abatch throughput, text", run_throughput(args))
    print(f"\nload average after the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"total benchmark time {time.perf_counter() - started:.0f} s")
    print("ratios are ours / other: < 1 is better for CPU, time, stalls and bytes; > 1 is better for throughput")
    return 0


if __name__ == "__main__":
    sys.exit(main())
