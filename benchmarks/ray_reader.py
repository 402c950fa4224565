"""The Ray Data reader (``qwen_vl_core.documents.ray_data.read_pages``) against the ideal and
against the single-process pipeline, measured in one run; and the cluster-wide rate limit's
accuracy with 4 actors.

Server: the local DashScope-protocol test server (``tests.fake_dashscope``) in its own process,
answering every chat request after ``--latency`` seconds and recording when each arrived.
Inputs: A4 pages scanned at 150 dpi (one JPEG per page, sent as it is), generated with
``tests.support.pdfs``; no cache, so every page is sent.

1. Throughput at 1, 2 and 4 actors (``--in-flight`` requests each, one local Ray with
   ``--cpus`` CPUs, actors sharing them): pages/s against the ideal (actors x in-flight /
   latency) and against ``DocumentPipeline.aresults`` in this process with the same number of
   requests in flight. Two figures per Ray run: ``wall`` from the call to the last row
   (actor start-up included) and ``steady`` from the first request to the last answer at the
   server (start-up excluded).
2. The limit: 4 actors under one ``shared_rate_limiter(requests_per_minute=--rpm)`` for about
   ``--limit-seconds``: requests per minute at the server against the limit, and the most
   requests seen in any second against the limit's second (rpm / 60, + 1 burst).

    python benchmarks/ray_reader.py [--pages 192] [--latency 0.2] [--in-flight 8] [--rpm 1200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Ray on loopback only, and no usage statistics sent anywhere (read when Ray is imported).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

KEY = "sk-benchmark-not-a-real-key"
ANSWER = "## Description\nA scanned report page.\n\n## Text\nPage 1\n000 Lorem ipsum dolor sit amet."


# ---------------------------------------------------------------- the server (child process)


def serve(latency: float) -> None:
    """A DashScope server; prints its URL; stdin ``stats`` prints and resets the arrivals."""
    from tests.fake_dashscope import DashScopeServer, Json, completion

    arrivals: list[float] = []
    lock = threading.Lock()
    reply = Json(completion(ANSWER, usage={"prompt_tokens": 1300, "completion_tokens": 20, "total_tokens": 1320,
                                           "prompt_tokens_details": {"image_tokens": 1290}}))  # fmt: skip
    with DashScopeServer(latency=latency) as server:

        def responder(rec: Any) -> Any:
            with lock:
                arrivals.append(time.monotonic() - latency)  # when it arrived, before the latency
            server.requests.clear()  # keep no bodies
            return reply

        server.responder = responder
        print(server.url, flush=True)
        for line in sys.stdin:
            if line.strip() == "stats":
                with lock:
                    times, arrivals[:] = sorted(arrivals), []
                print(json.dumps(times), flush=True)


class Server:
    def __init__(self, latency: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(latency)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=str(ROOT),
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        self.url = self.proc.stdout.readline().strip()  # type: ignore[union-attr]

    def arrivals(self) -> list[float]:
        self.proc.stdin.write("stats\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return json.loads(self.proc.stdout.readline())  # type: ignore[union-attr]

    def close(self) -> None:
        self.proc.stdin.close()  # type: ignore[union-attr]
        self.proc.wait(timeout=10)


# ---------------------------------------------------------------- measurements


def make_inputs(folder: Path, pages: int, per_file: int = 24) -> Path:
    from tests.support.pdfs import scanned_pdf

    folder.mkdir(parents=True, exist_ok=True)
    template = scanned_pdf(folder / "template.pdf.tmp", per_file, dpi=150)
    files = (pages + per_file - 1) // per_file
    for i in range(files):
        shutil.copyfile(template, folder / f"scan-{i:03d}.pdf")
    template.unlink()
    return folder


def single_process(folder: Path, url: str, in_flight: int) -> tuple[float, int]:
    from qwen_vl_core import QwenVLClient
    from qwen_vl_core.documents import DocumentPipeline

    async def run() -> int:
        client = QwenVLClient(api_key=KEY, base_url=url)
        pipeline = DocumentPipeline(client, num_workers=in_flight, processes=0, on_error="skip")
        n = 0
        async for result in pipeline.aresults(str(folder)):
            assert result.ok, result.error
            n += 1
        await client.aclose()
        return n

    started = time.perf_counter()
    n = asyncio.run(run())
    return time.perf_counter() - started, n


def ray_run(folder: Path, actors: int, in_flight: int, cpus: int, **kwargs: Any) -> tuple[float, int]:
    from qwen_vl_core.documents.ray_data import read_pages

    started = time.perf_counter()
    rows = read_pages(str(folder), concurrency=actors, in_flight=in_flight, pages_per_batch=in_flight,
                      num_cpus=cpus / actors, **kwargs).take_all()  # fmt: skip
    seconds = time.perf_counter() - started
    bad = [r for r in rows if r["error_type"]]
    assert not bad, bad[:3]
    return seconds, len(rows)


def span(arrivals: list[float], latency: float) -> float:
    return (arrivals[-1] + latency) - arrivals[0]


def most_in(arrivals: list[float], window: float) -> int:
    best, j = 0, 0
    for i, start in enumerate(arrivals):
        while j < len(arrivals) and arrivals[j] < start + window:
            j += 1
        best = max(best, j - i)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=192)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--in-flight", type=int, default=8)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--actors", default="1,2,4")
    ap.add_argument("--rpm", type=float, default=1200)
    ap.add_argument("--limit-seconds", type=float, default=30)
    ap.add_argument("--serve", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve is not None:
        serve(args.serve)
        return 0

    import ray

    server = Server(args.latency)
    tmp = Path(tempfile.mkdtemp(prefix="ray-reader-bench-"))
    try:
        folder = make_inputs(tmp / "scans", args.pages)
        ray_started = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, configure_logging=False, log_to_driver=False,
                 runtime_env={"env_vars": {"DASHSCOPE_API_KEY": KEY, "DASHSCOPE_BASE_URL": server.url}})  # fmt: skip
        from ray.data import DataContext

        DataContext.get_current().enable_progress_bars = False
        print(f"local Ray with {args.cpus} CPUs started in {time.perf_counter() - ray_started:.1f} s; "
              f"{args.pages} pages (A4 scans at 150 dpi), server latency {args.latency * 1000:.0f} ms, "
              f"{args.in_flight} requests in flight per actor\n")  # fmt: skip
        print(f"{'run':<26}{'pages/s wall':>13}{'steady':>9}{'ideal':>8}{'steady/ideal':>14}{'vs 1 process':>14}")
        for actors in [int(a) for a in args.actors.split(",")]:
            in_flight = actors * args.in_flight
            ideal = in_flight / args.latency
            server.arrivals()
            seconds, n = single_process(folder, server.url, in_flight)
            base = span(server.arrivals(), args.latency)
            base_rate = n / base
            print(f"{'1 process, ' + str(in_flight) + ' in flight':<26}{n / seconds:>13.1f}{base_rate:>9.1f}"
                  f"{ideal:>8.0f}{base_rate / ideal:>14.2f}{'':>14}")  # fmt: skip
            seconds, n = ray_run(folder, actors, args.in_flight, args.cpus)
            steady = n / span(server.arrivals(), args.latency)
            print(f"{'Ray, ' + str(actors) + ' actor(s)':<26}{n / seconds:>13.1f}{steady:>9.1f}{ideal:>8.0f}"
                  f"{steady / ideal:>14.2f}{steady / base_rate:>14.2f}")  # fmt: skip

        from qwen_vl_core.documents.ray_data import shared_rate_limiter

        limit_pages = int(args.rpm / 60 * args.limit_seconds)
        limit_folder = make_inputs(tmp / "limit", limit_pages)
        limiter = shared_rate_limiter(requests_per_minute=args.rpm, name="benchmark")
        server.arrivals()
        ray_run(limit_folder, 4, args.in_flight, args.cpus, rate_limit=limiter)
        arrivals = server.arrivals()
        rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) * 60
        per_second = args.rpm / 60
        print(f"\nlimit {args.rpm:.0f} requests/min, 4 actors, {len(arrivals)} requests: "
              f"{rate:.0f} requests/min at the server ({rate / args.rpm:.3f} of the limit); "
              f"most in any second {most_in(arrivals, 1.0)} (limit {per_second:.0f} + 1 burst), "
              f"in any 10 s {most_in(arrivals, 10.0)} (limit {per_second * 10:.0f} + 1); "
              f"limiter: {limiter.stats()}")  # fmt: skip
        limiter.close()
        ray.shutdown()
    finally:
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
