"""QwenVLReader throughput and memory on scanned PDFs, against a local DashScope-protocol server
that answers every request after a fixed latency (run in its own process, so its work does not
compete with the reader's).

Throughput: pages per second of ``aload_data`` versus the ideal ``num_workers / latency`` (what
an infinitely fast client would reach), for a 20-page and a 200-page PDF. For context it also
measures the local limit: the same 200 pages against a server with no latency, where only the
client's own work (rendering, encoding, sending) counts.
Memory: peak Python heap (tracemalloc) while reading 20 and 200 pages. The reader renders, sends
and releases pages one at a time per worker, so the 200-page peak should stay near the 20-page
one; a naive loader measured in the same run (render every page, then send them all with
asyncio.gather) grows with the page count.

    python benchmarks/reader_throughput.py [--workers 8] [--latency 0.1] [--dpi 150]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import multiprocessing as mp
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEY = "sk-benchmark-not-a-real-key"
SIZES = (20, 200)


# ---------------------------------------------------------------- inputs and server


def make_pdf(path: Path, pages: int) -> Path:
    """A letter-size scanned-looking PDF: a JPEG image per page, with lines of text on it."""
    from PIL import Image, ImageDraw

    images = []
    for n in range(1, pages + 1):
        img = Image.new("RGB", (612, 792), (250, 248, 240))
        draw = ImageDraw.Draw(img)
        draw.rectangle([36, 36, 576, 90], fill=(225, 225, 235))
        draw.text((48, 52), f"QUARTERLY REPORT - page {n}", fill="black")
        for i in range(32):
            draw.text(
                (48, 110 + i * 20),
                f"{n}.{i} The quick brown fox jumps over the lazy dog; total = {n * i * 37}",
                fill="black",
            )
        images.append(img)
    images[0].save(path, format="PDF", save_all=True, append_images=images[1:], resolution=72)
    return path


def _serve(latency: float, conn) -> None:
    from tests.fake_dashscope import DashScopeServer, Json, completion

    answer = Json(completion("## Description\nA report page.\n\n## Text\nQUARTERLY REPORT"))
    with DashScopeServer() as server:
        server.latency = latency
        server.responder = lambda rec: answer
        conn.send(server.url)
        conn.recv()  # until the parent says stop
        conn.send(len(server.chat_requests))


class Server:
    def __init__(self, latency: float) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(latency, child), daemon=True)
        self.proc.start()
        self.url = self.conn.recv()

    def stop(self) -> int:
        self.conn.send("stop")
        requests = self.conn.recv()
        self.proc.join(5)
        return requests


# ---------------------------------------------------------------- runs


def reader_run(url: str, pdf: Path, workers: int, dpi: float, trace: bool) -> tuple[float, int, int]:
    """(seconds, documents, peak traced bytes) for one aload_data over ``pdf``."""
    from llama_index_qwen_vl import QwenVLReader

    reader = QwenVLReader(api_key=KEY, base_url=url, num_workers=workers, dpi=dpi, max_retries=0)
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    docs = asyncio.run(reader.aload_data(pdf))
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    if trace:
        tracemalloc.stop()
    return elapsed, len(docs), peak


def naive_run(url: str, pdf: Path, workers: int, dpi: float) -> int:
    """Peak traced bytes of the obvious loader: render every page to a data URL, then send all."""
    import pypdfium2 as pdfium

    from qwen_vl_core import DEFAULT_MODEL, QwenVLClient

    tracemalloc.start()
    document = pdfium.PdfDocument(str(pdf))
    urls = []
    for page in document:
        buf = io.BytesIO()
        page.render(scale=dpi / 72).to_pil().save(buf, format="JPEG", quality=92, subsampling=0)
        urls.append("data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode())
    document.close()

    async def send() -> None:
        client = QwenVLClient(api_key=KEY, base_url=url, max_retries=0)
        limit = asyncio.Semaphore(workers)

        async def one(u: str):
            async with limit:
                return await client.achat(
                    [{"role": "user", "content": [{"image": u}, {"text": "Read."}]}], model=DEFAULT_MODEL
                )

        await asyncio.gather(*(one(u) for u in urls))
        await client.aclose()

    asyncio.run(send())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def mb(n: int) -> str:
    return f"{n / 1048576:.1f} MB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--latency", type=float, default=0.1, help="server latency per request, seconds")
    ap.add_argument("--dpi", type=float, default=150)
    args = ap.parse_args(argv)

    server = Server(args.latency)
    instant = Server(0.0)
    ideal = args.workers / args.latency
    results: dict[int, dict[str, float]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            pdf = make_pdf(Path(tmp) / "limit.pdf", SIZES[-1])
            reader_run(instant.url, pdf, args.workers, args.dpi, trace=False)  # warm-up: imports, pools
            limit_elapsed, _, _ = reader_run(instant.url, pdf, args.workers, args.dpi, trace=False)
            local_limit = SIZES[-1] / limit_elapsed
            for n in SIZES:
                pdf = make_pdf(Path(tmp) / f"scan-{n}.pdf", n)
                elapsed, docs, _ = reader_run(server.url, pdf, args.workers, args.dpi, trace=False)
                assert docs == n, f"read {docs} of {n} pages"
                _, _, peak = reader_run(server.url, pdf, args.workers, args.dpi, trace=True)
                naive_peak = naive_run(server.url, pdf, args.workers, args.dpi)
                results[n] = {"pps": n / elapsed, "elapsed": elapsed, "peak": peak, "naive_peak": naive_peak}
    finally:
        requests = server.stop()
        instant.stop()

    print(f"QwenVLReader.aload_data, {args.workers} workers, server latency {args.latency:.2f} s, "
          f"PDF pages rendered at {args.dpi:g} DPI (letter size)")  # fmt: skip
    print(f"ideal: {ideal:.1f} pages/s (workers / latency); {requests} requests served")
    print(f"local limit: {local_limit:.1f} pages/s (the same reader against a server without latency; "
          f"{mp.cpu_count()} CPUs)")  # fmt: skip
    print()
    print(f"{'pages':>6} {'time':>8} {'pages/s':>9} {'vs ideal':>9} {'peak heap':>11} {'naive peak':>11}")
    for n, r in results.items():
        print(f"{n:>6} {r['elapsed']:>7.2f}s {r['pps']:>9.1f} {r['pps'] / ideal:>9.2f} {mb(int(r['peak'])):>11} "
              f"{mb(int(r['naive_peak'])):>11}")  # fmt: skip
    small, large = results[SIZES[0]], results[SIZES[-1]]
    print()
    print(f"throughput ratio (200 pages, actual / ideal): {large['pps'] / ideal:.2f}")
    print(f"throughput ratio (20 pages, actual / ideal):  {small['pps'] / ideal:.2f}")
    print(f"throughput ratio (200 pages, actual / min(ideal, local limit)): "
          f"{large['pps'] / min(ideal, local_limit):.2f}")  # fmt: skip
    print(f"memory ratio (peak 200 pages / peak 20 pages): reader {large['peak'] / small['peak']:.2f}, "
          f"naive loader {large['naive_peak'] / small['naive_peak']:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
