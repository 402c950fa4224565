"""Child processes of ``reader_throughput.py``; run as a script, never imported by the package.

``serve LATENCY``: a local DashScope-protocol server (``tests.fake_dashscope``) in its own process
that answers every chat request after ``LATENCY`` seconds. Prints its URL; on stdin ``stats``
prints (and resets) the number of chat requests, their body bytes and the sizes of the images they
carried; EOF stops it.

``work``: runs measurements one at a time, a JSON command per stdin line and a JSON answer per
stdout line; EOF ends it cleanly (so ``multiprocessing`` removes its temporary files and the render
pool's fork server exits). Which code it measures is decided by ``PYTHONPATH``: the working tree, a
commit, or the pre-move tree, extracted from git. The pre-move tree has no ``qwen_vl_core.documents``;
only the ``reader`` command is used with it. What the ``floor`` command does is written out here with
pypdfium2, Pillow and httpx2 only (it takes the model name, its pixel budget and the prompt from the core).

Every measurement reports wall seconds, this process's CPU seconds (``time.process_time``: all
threads of this process; worker processes of a render pool are not included), split into user and
system time, and its minor page faults (``getrusage``).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import math
import os
import resource
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

KEY = "sk-benchmark-not-a-real-key"
ANSWER = "## Description\nA scanned report page.\n\n## Text\nPage 1\n000 Lorem ipsum dolor sit amet."


# ---------------------------------------------------------------- server


def serve(latency: float) -> None:
    from tests.fake_dashscope import DashScopeServer, Json, completion, data_url_image_size

    reply = Json(completion(ANSWER))
    lock = threading.Lock()
    stats: dict[str, Any] = {"requests": 0, "bytes": 0, "sizes": Counter()}

    def image_size(body: Any) -> str:
        for message in body.get("messages", []):
            for part in message.get("content", []):
                if isinstance(part, dict) and part.get("type") == "image_url":
                    size = data_url_image_size(part["image_url"]["url"])
                    return f"{size[0]}x{size[1]}" if size else "?"
        return "none"

    with DashScopeServer(latency=latency) as server:

        def responder(rec: Any) -> Any:
            size = image_size(rec.json or {})
            with lock:
                stats["sizes"][size] += 1
                stats["requests"] += 1
                stats["bytes"] += len(rec.body)
                server.requests.clear()  # bodies are megabytes of base64: keep the log empty
            return reply

        server.responder = responder
        print(server.url, flush=True)
        for line in sys.stdin:
            if line.strip() == "stats":
                with lock:
                    print(json.dumps(stats), flush=True)
                    stats["requests"] = stats["bytes"] = 0
                    stats["sizes"] = Counter()
                    errors = list(server.errors)
                if errors:
                    print(errors[-1], file=sys.stderr, flush=True)


# ---------------------------------------------------------------- measured runs


def _measure(run: Any) -> dict[str, Any]:
    """``run()``'s answer plus wall and CPU seconds, user and system CPU and minor page faults."""
    before, cpu, wall = resource.getrusage(resource.RUSAGE_SELF), time.process_time(), time.perf_counter()
    out = run()
    out["wall"] = time.perf_counter() - wall
    out["cpu"] = time.process_time() - cpu
    after = resource.getrusage(resource.RUSAGE_SELF)
    out["user"] = after.ru_utime - before.ru_utime
    out["sys"] = after.ru_stime - before.ru_stime
    out["faults"] = after.ru_minflt - before.ru_minflt
    return out


# Readers, clients and the event loop live as long as this process, as in an application that
# reads many documents: set-up (an HTTP pool, its TLS context: ~45 ms of CPU each) is paid in the
# warm-up run, and the figures are the per-page cost. ``asyncio.run`` per document would also build
# a new async pool per run (a pool belongs to its loop).
LOOP = asyncio.new_event_loop()
_KEPT: dict[Any, Any] = {}


def _kept(key: Any, make: Any) -> Any:
    if key not in _KEPT:
        _KEPT[key] = make()
    return _KEPT[key]


def _settings(cmd: dict[str, Any]) -> dict[str, Any]:
    return {name: cmd[name] for name in ("dpi", "processes") if cmd.get(name) is not None}


def reader(cmd: dict[str, Any]) -> dict[str, Any]:
    """``QwenVLReader.aload_data`` (either version): settings not given stay at their defaults."""
    from llama_index_qwen_vl import QwenVLReader

    settings = _settings(cmd)
    reader = _kept(
        ("reader", cmd["url"], cmd["workers"], tuple(sorted(settings.items()))),
        lambda: QwenVLReader(api_key=KEY, base_url=cmd["url"], num_workers=cmd["workers"], max_retries=0, **settings),
    )

    def run() -> dict[str, Any]:
        docs = LOOP.run_until_complete(reader.aload_data(cmd["pdf"]))
        paths = Counter(str(d.metadata.get("page_path", "rendered (pre-move)")) for d in docs)
        return {"pages": len(docs), "paths": dict(paths)}

    return _measure(run)


def pipeline(cmd: dict[str, Any]) -> dict[str, Any]:
    """``DocumentPipeline`` used directly: ``aresults`` on the event loop, or ``results`` (threads)."""
    from qwen_vl_core import QwenVLClient
    from qwen_vl_core.documents import DocumentPipeline

    client = _kept(("client", cmd["url"]), lambda: QwenVLClient(api_key=KEY, base_url=cmd["url"], max_retries=0))
    pipe = DocumentPipeline(client, num_workers=cmd["workers"], **_settings(cmd))

    async def collect() -> list[Any]:
        return [r async for r in pipe.aresults(cmd["pdf"])]

    def run() -> dict[str, Any]:
        results = list(pipe.results(cmd["pdf"])) if cmd.get("sync") else LOOP.run_until_complete(collect())
        failed = [r for r in results if not r.ok]
        if failed:
            raise RuntimeError(f"{len(failed)} pages failed, first: {failed[0].error!r}")
        return {"pages": len(results), "paths": dict(Counter(str(r.path) for r in results))}

    return _measure(run)


def budget_scale(width_pt: float, height_pt: float, budget: int, dpi: float | None) -> float:
    """Pixels per point that fill the model's pixel budget, or ``dpi`` when that is lower."""
    scale = min(math.sqrt(budget / (width_pt * height_pt)), (dpi or 300.0) / 72.0)
    while math.ceil(width_pt * scale) * math.ceil(height_pt * scale) > budget:
        scale *= 0.998
    return scale


def floor(cmd: dict[str, Any]) -> dict[str, Any]:
    """The least a client can do per page, by hand, with the same concurrency as the readers:

    ``render``: PDFium renders the page at the budget scale (``dpi`` caps it), Pillow encodes it
    (JPEG q92 4:4:4, as the pipeline does), base64, one JSON request through httpx2.
    ``embedded``: the page's one JPEG as stored in the PDF (``get_data(decode_simple=False)``),
    base64, one JSON request. PDFium calls hold one lock, as in the pipeline.
    """
    try:
        import httpx2
    except ImportError:  # Python 3.10: the package depends on httpx there
        import httpx as httpx2  # type: ignore[no-redef]
    import pypdfium2 as pdfium

    from qwen_vl_core import DEFAULT_MODEL
    from qwen_vl_core.documents import prompt_for
    from qwen_vl_core.tokens import image_pixel_bounds

    budget = image_pixel_bounds(DEFAULT_MODEL)[2]
    prompt = prompt_for("caption+ocr", None)
    endpoint = cmd["url"] + "/compatible-mode/v1/chat/completions"
    headers = {"Authorization": f"Bearer {KEY}"}
    lock = threading.Lock()
    limits = httpx2.Limits(max_connections=cmd["workers"], max_keepalive_connections=cmd["workers"])
    http = _kept(("httpx2", cmd["workers"]), lambda: httpx2.Client(timeout=60.0, limits=limits))

    def run() -> dict[str, Any]:
        with lock:
            pdf = pdfium.PdfDocument(cmd["pdf"])
            pages = len(pdf)

        def one(index: int) -> None:
            with lock:
                page = pdf[index]
                try:
                    if cmd["kind"] == "embedded":
                        obj = next(iter(page.get_objects(max_depth=1)))
                        data = bytes(obj.get_data(decode_simple=False))
                        del obj
                    else:
                        width_pt, height_pt = page.get_size()
                        bitmap = page.render(scale=budget_scale(width_pt, height_pt, budget, cmd.get("dpi")))
                        image = bitmap.to_pil()
                        bitmap.close()
                finally:
                    page.close()
            if cmd["kind"] != "embedded":
                buf = io.BytesIO()
                image.save(buf, format="JPEG", quality=92, subsampling=0)
                data = buf.getvalue()
            url = "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
            content = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": prompt}]
            body = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": content}]}
            resp = http.post(endpoint, json=body, headers=headers)
            resp.raise_for_status()
            if not resp.json()["choices"][0]["message"]["content"]:
                raise RuntimeError("empty answer")

        try:
            with ThreadPoolExecutor(cmd["workers"]) as pool:
                list(pool.map(one, range(pages)))
        finally:
            with lock:
                pdf.close()
        return {"pages": pages, "paths": {cmd["kind"]: pages}}

    return _measure(run)


def info(cmd: dict[str, Any]) -> dict[str, Any]:
    import llama_index_qwen_vl
    import qwen_vl_core

    out: dict[str, Any] = {
        "qwen_vl_core": os.path.dirname(qwen_vl_core.__file__),
        "llama_index_qwen_vl": os.path.dirname(llama_index_qwen_vl.__file__),
        "pid": os.getpid(),
    }
    try:
        from qwen_vl_core import DEFAULT_MODEL
        from qwen_vl_core.documents import pipeline as pipeline_module
        from qwen_vl_core.tokens import image_pixel_bounds
    except ImportError:  # the pre-move tree has no qwen_vl_core.documents
        return out
    budget = image_pixel_bounds(DEFAULT_MODEL)[2]
    out.update(model=DEFAULT_MODEL, budget=budget, auto_min_pages=getattr(pipeline_module, "AUTO_PROCESS_MIN_PAGES", 64))
    out["a4_budget_dpi"] = budget_scale(595.0, 842.0, budget, None) * 72
    return out


COMMANDS = {"reader": reader, "pipeline": pipeline, "floor": floor, "info": info}


def prime_allocator() -> None:
    """Allocate and free 32 MB once, so that glibc's dynamic mmap threshold (and with it the trim
    threshold) is at its maximum in every measuring process. Otherwise a process's history decides
    whether a page's large transient buffers (PDFium's decoded JPEG, the bitmap, the PIL image: 10-30 MB
    a page) are mapped and faulted in afresh for every page: about 6,000 minor faults and 15 ms of
    system time a page on 200-dpi scans, in whichever process has not yet freed a block that big."""
    block = bytearray(32_000_000)
    del block


def work() -> None:
    if os.environ.get("READER_BENCH_PRIME", "1") == "1":
        prime_allocator()
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            answer = COMMANDS[cmd["op"]](cmd)
        except Exception as exc:  # the orchestrator prints it and stops
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)
    for kept in _KEPT.values():  # close the pools this process opened
        if hasattr(kept, "aclose"):
            LOOP.run_until_complete(kept.aclose())
        if hasattr(kept, "close"):
            kept.close()
    LOOP.run_until_complete(LOOP.shutdown_default_executor())
    LOOP.close()


if __name__ == "__main__":
    import signal

    # Ctrl-C reaches the whole process group: leave it to the parent, which ends this process by closing stdin
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.argv[1] == "serve":
        serve(float(sys.argv[2]))
    else:
        work()
