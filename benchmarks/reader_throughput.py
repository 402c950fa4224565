"""Document reading throughput and client CPU per page: the document pipeline against the pre-move
reader and against hand-written floors, measured side by side in one run.

Inputs (A4, generated with ``tests.support.pdfs``): ``scan200`` and ``scan150``, pages of text
scanned at 200 and 150 dpi and stored as one JPEG per page (what scanners write), and ``vector``,
pages of text and shapes that must be rendered.

Server: the local DashScope-protocol test server (``tests.fake_dashscope``) in its own process,
answering every request after ``--latency`` seconds; it also reports the size of every image it
receives. Ideal throughput is ``workers / latency``.

Code under test, each in its own long-lived process (readers, clients and one event loop kept
from run to run, as in an application; a warm-up run first), the runs interleaved (order reversed
every other repeat) so that machine load falls on all of them alike:

- new: ``llama_index_qwen_vl.QwenVLReader.aload_data`` and ``qwen_vl_core.documents.DocumentPipeline``
  (``aresults`` and the threaded ``results``) from this working tree, or from ``--new COMMIT``;
- pre-move: ``QwenVLReader.aload_data`` from the tree at ``--pre-move`` (extracted with
  ``git archive`` into a temporary directory and run with ``PYTHONPATH`` pointing at it);
- floors, written out in ``_reader_worker.py`` with pypdfium2, Pillow and httpx2 only, with the same
  concurrency: (a) render at the model's pixel budget (or the dpi asked) + JPEG q92 + base64 + request;
  (b) the page's embedded JPEG bytes (``PdfImage.get_data(decode_simple=False)``) + base64 + request.

Every measuring process first raises glibc's mmap threshold (see ``prime_allocator`` in
``_reader_worker.py``; ``--no-prime`` to see the difference in the sys/faults columns).

Reported: (1) pages/s as a ratio of ideal and of the pre-move reader (paired: both runs of one repeat);
(2) client CPU per page (``time.process_time`` of the measuring process / pages) against the floors, with
the path the pipeline took per page (``PageResult.path``); (3) on vector pages, render in threads
(``processes=0``) against a process pool (``processes=2`` and ``"auto"``), and the pool's start-up cost.
Figures are medians over ``--repeats``; ratios are medians of per-repeat ratios. Nothing is left behind:
the temporary directory holds the extracted trees, the PDFs and the children's TMPDIR, and the run
ends by checking that no process it started is still alive.

    python benchmarks/reader_throughput.py [--pages 24] [--latency 0.2] [--workers 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.pdfs import scanned_pdf, vector_pdf  # noqa: E402

WORKER = Path(__file__).resolve().parent / "_reader_worker.py"
PRE_MOVE = "893b2c0"
DOCS = ("scan200", "scan150", "vector")
TOKEN_VAR = "READER_BENCH_RUN"


# ---------------------------------------------------------------- child processes


class Child:
    """A child process speaking one JSON line per command (see ``_reader_worker.py``)."""

    def __init__(self, name: str, args: list[str], pythonpath: Path, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._log = open(log, "w")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env={**env, "PYTHONPATH": str(pythonpath)},
            cwd=str(log.parent),
        )

    def line(self) -> str:
        out = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not out:
            raise RuntimeError(f"{self.name} exited; its stderr:\n{self.log.read_text()[-3000:]}")
        return out

    def send(self, text: str) -> None:
        self.proc.stdin.write(text + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]

    def ask(self, **cmd: Any) -> dict[str, Any]:
        self.send(json.dumps(cmd))
        answer = json.loads(self.line())
        if "error" in answer:
            raise RuntimeError(f"{self.name} {cmd.get('op')} failed: {answer['error']}")
        return answer

    def close(self) -> None:
        """EOF on stdin ends the child cleanly; kill it only if it does not end."""
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()  # type: ignore[union-attr]
        self._log.close()


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True).stdout.strip()


def extract(commit: str, dest: Path, *paths: str) -> Path:
    """``git archive <commit> qwen_vl_core llama_index_qwen_vl [paths] | tar -x -C dest``."""
    dest.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "qwen_vl_core", "llama_index_qwen_vl", *paths],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def survivors(token: str) -> list[int]:
    """Processes still alive that were started by this run (they inherit ``TOKEN_VAR``)."""
    needle = f"{TOKEN_VAR}={token}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


# ---------------------------------------------------------------- the runs


@dataclass
class Run:
    key: str  # doc/who/setting
    doc: str
    who: str  # old | new | floor
    op: str  # reader | pipeline | floor
    label: str
    settings: dict[str, Any] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    short: bool = False  # on the document's first ``--workers`` pages only (a slow run: CPU per page is what counts)

    def median(self, name: str) -> float:
        return statistics.median(s[name] for s in self.samples)


def plan(budget_dpi: float, docs: list[str]) -> list[Run]:
    b = f"{budget_dpi:.0f}"
    runs: list[Run] = []
    for doc in docs:
        runs.append(Run(f"{doc}/old/default", doc, "old", "reader", "pre-move reader, defaults (dpi=150)"))
        runs.append(Run(f"{doc}/new/default", doc, "new", "reader", f"new reader, defaults (budget, {b} dpi)"))
        if doc != "scan150":  # a 150-dpi scan is sent as it is whether dpi is 150 or unset
            runs.append(Run(f"{doc}/new/dpi150", doc, "new", "reader", "new reader, dpi=150", {"dpi": 150}))
        if doc == "scan200":  # the 3.4x case; the new reader at dpi=200 is its default (budget < 200 dpi)
            runs.append(Run(f"{doc}/old/dpi200", doc, "old", "reader", "pre-move reader, dpi=200 (short doc)",
                            {"dpi": 200}, short=True))  # fmt: skip
        if doc != "vector":
            runs.append(Run(f"{doc}/pipe/async", doc, "new", "pipeline", "DocumentPipeline.aresults, defaults"))
        if doc == "scan150":  # the threaded engine (load_data, the CLI) where a page costs least
            runs.append(Run(f"{doc}/pipe/sync", doc, "new", "pipeline", "DocumentPipeline.results (threads)",
                            {"sync": True}))  # fmt: skip
        if doc != "scan150":  # the new code renders these at the budget
            runs.append(Run(f"{doc}/floor/a", doc, "floor", "floor", f"floor (a) render at budget ({b} dpi)",
                            {"kind": "render"}))  # fmt: skip
        runs.append(Run(f"{doc}/floor/a150", doc, "floor", "floor", "floor (a) render at 150 dpi",
                        {"kind": "render", "dpi": 150}))  # fmt: skip
        if doc != "vector":
            runs.append(Run(f"{doc}/floor/b", doc, "floor", "floor", "floor (b) embedded JPEG as stored",
                            {"kind": "embedded"}))  # fmt: skip
    return runs


#: Table 1: (doc, comparison, new run, pre-move run, floor run at the new run's settings)
THROUGHPUT = [
    ("scan200", "defaults", "new/default", "old/default", "floor/a"),
    ("scan200", "dpi=150 both", "new/dpi150", "old/default", "floor/a150"),
    ("scan200", "dpi=200 both (new: at budget; pre: short doc)", "new/default", "old/dpi200", "floor/a"),
    ("scan200", "DocumentPipeline.aresults vs defaults", "pipe/async", "old/default", "floor/a"),
    ("scan150", "defaults (= dpi=150 both)", "new/default", "old/default", "floor/b"),
    ("scan150", "DocumentPipeline.aresults vs defaults", "pipe/async", "old/default", "floor/b"),
    ("scan150", "DocumentPipeline.results (sync) vs defaults", "pipe/sync", "old/default", "floor/b"),
    ("vector", "defaults", "new/default", "old/default", "floor/a"),
    ("vector", "dpi=150 both", "new/dpi150", "old/default", "floor/a150"),
]

#: Table 2: for each code run, (floor (a) at the same scale, floor (b), pre-move run at matched settings)
CPU_REFS = {
    "old/default": ("floor/a150", "floor/b", None),
    "old/dpi200": ("floor/a", "floor/b", None),
    "new/default": ("floor/a", "floor/b", "old/default"),
    "new/dpi150": ("floor/a150", "floor/b", "old/default"),
    "pipe/async": ("floor/a", "floor/b", "old/default"),
    "pipe/sync": ("floor/a", "floor/b", "old/default"),
}


def paired(a: Run, b: Run, name: str, invert: bool = False) -> float:
    """Median over repeats of a[name] / b[name] (b / a with ``invert``), same repeat paired."""
    ratios = [(y[name] / x[name]) if invert else (x[name] / y[name]) for x, y in zip(a.samples, b.samples)]
    return statistics.median(ratios)


def do_run(run: Run, child: Child, server: Child, pdf: Path, url: str, workers: int,
           record: bool = True) -> dict[str, Any]:  # fmt: skip
    """One measured run; checks that the server saw one request per page."""
    out = child.ask(op=run.op, pdf=str(pdf), url=url, workers=workers, **run.settings)
    server.send("stats")
    stats = json.loads(server.line())
    if stats["requests"] != out["pages"]:
        raise RuntimeError(f"{run.key}: {out['pages']} pages but the server saw {stats['requests']} requests")
    out["pps"] = out["pages"] / out["wall"]
    out["cpu_ms"] = out["cpu"] / out["pages"] * 1000
    out["sys_ms"] = out["sys"] / out["pages"] * 1000
    out["faults_pp"] = out["faults"] / out["pages"]
    out["kb"] = stats["bytes"] / max(1, stats["requests"]) / 1024
    out["sizes"] = stats["sizes"]  # of the images as the server received them
    if record:
        run.samples.append(out)
    return out


# ---------------------------------------------------------------- report


def fmt_paths(sample: dict[str, Any]) -> str:
    return ",".join(f"{k} {v}" for k, v in sorted(sample.get("paths", {}).items()))


def fmt_sizes(sample: dict[str, Any]) -> str:
    sizes = sample.get("sizes") or {}
    return ",".join(sorted(sizes)) if sizes else "-"


def spread(run: Run, name: str) -> str:
    values = [s[name] for s in run.samples]
    return f"{min(values):.1f}-{max(values):.1f}"


def report(runs: dict[str, Run], s3: dict[str, Any] | None, args: argparse.Namespace, meta: dict[str, Any]) -> None:
    ideal = args.workers / args.latency
    print("== 1. Throughput: pages/s against the ideal (workers / latency) and the pre-move reader ==")
    print(f"ideal {ideal:.1f} pages/s ({args.workers} in flight, {args.latency * 1000:.0f} ms per request); "
          f"{args.pages} pages per document ('short doc': {args.workers}); median of {args.repeats} repeats (min-max)")  # fmt: skip
    head = (f"{'doc':8} {'comparison':44} {'new p/s':>8} {'(range)':>11} {'/ideal':>6} {'pre p/s':>8} "
            f"{'/ideal':>6} {'new/pre':>7} {'floor p/s':>9}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for doc, label, new_key, old_key, floor_key in THROUGHPUT:
        if f"{doc}/{new_key}" not in runs:
            continue
        new, old, floor = runs[f"{doc}/{new_key}"], runs[f"{doc}/{old_key}"], runs[f"{doc}/{floor_key}"]
        print(f"{doc:8} {label:44} {new.median('pps'):>8.1f} {spread(new, 'pps'):>11} "
              f"{new.median('pps') / ideal:>6.2f} {old.median('pps'):>8.1f} {old.median('pps') / ideal:>6.2f} "
              f"{paired(new, old, 'pps'):>6.2f}x {floor.median('pps'):>9.1f}")  # fmt: skip
    print()
    print("== 2. Client CPU per page (process CPU time of the measuring process / pages) ==")
    print("x floor (a): against rendering at the same scale by hand; x floor (b): against sending the stored JPEG;")
    print("x pre: against the pre-move reader at matched settings (paired per repeat). * = the floor for that path.")
    print("sys ms and faults: the system-time part of CPU ms and minor page faults per page (getrusage).")
    print("floor (b) on scan200 sends the 1653x2339 scan as stored: over the model's pixel budget, so not a path the")
    print("pipeline may take there; it is the lower bound of the client's work only.")
    head = (f"{'doc':8} {'run':44} {'CPU ms':>7} {'(range)':>11} {'x fl(a)':>8} {'x fl(b)':>8} {'x pre':>6} "
            f"{'sys ms':>6} {'faults':>6} {'KB/req':>6}  {'sent px (at server)':19} path per page")  # fmt: skip
    print(head)
    print("-" * len(head))
    for doc in dict.fromkeys(r.doc for r in runs.values()):
        for run in (r for r in runs.values() if r.doc == doc):
            short = run.key.split("/", 1)[1]
            cells = ["", "", ""]
            refs = CPU_REFS.get(short)
            if refs is not None:
                path = fmt_paths(run.samples[-1])
                for i, ref in enumerate(refs[:2]):
                    other = runs.get(f"{doc}/{ref}")
                    if other is not None:
                        star = "*" if (i == 0) == ("embedded" not in path) else " "
                        cells[i] = f"{paired(run, other, 'cpu_ms'):.2f}{star}"
                if refs[2] is not None:
                    cells[2] = f"{paired(run, runs[f'{doc}/{refs[2]}'], 'cpu_ms'):.2f}"
            sample = run.samples[-1]
            print(f"{doc:8} {run.label:44} {run.median('cpu_ms'):>7.1f} {spread(run, 'cpu_ms'):>11} {cells[0]:>8} "
                  f"{cells[1]:>8} {cells[2]:>6} {run.median('sys_ms'):>6.1f} {run.median('faults_pp'):>6.0f} "
                  f"{run.median('kb'):>6.0f}  {fmt_sizes(sample):19} {fmt_paths(sample)}")  # fmt: skip
    print()
    if s3 is not None:
        section3_report(s3, args)
    print(f"machine: {os.cpu_count()} CPUs; load average (1/5/15 min) before {meta['load_before']}, "
          f"after {meta['load_after']}; run took {meta['seconds']:.0f} s")  # fmt: skip
    print(f"left behind: {meta['survivors']} processes, {meta['leftover_tmp']} entries in the children's TMPDIR")


def section3_report(s3: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"== 3. Render stage on vector pages: threads vs a process pool "
          f"(DocumentPipeline.aresults, {s3['pages']} pages, {args.render_workers} in flight) ==")  # fmt: skip
    ideal3 = args.render_workers / args.latency
    print(f"ideal {ideal3:.1f} pages/s; CPU is this process only (the pool's workers are not counted)")
    warm = statistics.median(s3["startup"])
    head = (f"{'processes':12} {'pages/s':>8} {'(range)':>11} {'/ideal':>6} {'x threads':>9} {'p/s w/o start-up':>16} "
            f"{'CPU ms':>7}  path per page")  # fmt: skip
    print(head)
    print("-" * len(head))
    threads = s3["runs"]["0"]
    for name, run in s3["runs"].items():
        ratio = paired(run, threads, "pps")
        pooled = s3["pooled"][name]
        net = statistics.median(s["pages"] / max(1e-3, s["wall"] - warm) for s in run.samples) if pooled else run.median("pps")
        print(f"{name:12} {run.median('pps'):>8.1f} {spread(run, 'pps'):>11} {run.median('pps') / ideal3:>6.2f} "
              f"{ratio:>8.2f}x {net:>16.1f} {run.median('cpu_ms'):>7.1f}  {fmt_paths(run.samples[-1])}")  # fmt: skip
    print(f"pool start-up (a 1-page run with processes=2 minus the same run with processes=0): first pool in a "
          f"process {s3['cold'] * 1000:.0f} ms (starts the fork server), later pools {warm * 1000:.0f} ms "
          f"(median of {len(s3['startup'])})")  # fmt: skip
    print()


# ---------------------------------------------------------------- main


def section3(child: Child, server: Child, args: argparse.Namespace, url: str, one: Path, pdf: Path,
             pages: int, auto_min: int) -> dict[str, Any]:  # fmt: skip
    """Threads vs processes. ``child`` is a fresh process: after one run that imports everything,
    its first pool also starts multiprocessing's fork server (the cold start-up cost)."""
    workers = args.render_workers
    small = {p: Run(f"one/{p}", "vector", "new", "pipeline", str(p), {"processes": p}) for p in (0, 2)}
    do_run(small[0], child, server, one, url, workers, record=False)  # imports, connections
    cold = do_run(small[2], child, server, one, url, workers, record=False)["wall"]
    base = do_run(small[0], child, server, one, url, workers, record=False)["wall"]
    big = {str(p): Run(f"many/{p}", "vector", "new", "pipeline", str(p), {"processes": p}) for p in (0, 2, "auto")}
    order = [small[0], small[2], *big.values()]
    for repeat in range(args.repeats):
        for run in order if repeat % 2 == 0 else order[::-1]:
            do_run(run, child, server, one if run.key.startswith("one/") else pdf, url, workers)
    startup = [b["wall"] - a["wall"] for a, b in zip(small[0].samples, small[2].samples)]
    pooled = {"0": False, "2": True, "auto": pages >= auto_min}  # "auto" starts a pool from auto_min pages on
    return {"runs": big, "cold": cold - base, "startup": startup, "pages": pages, "pooled": pooled}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=" ".join(__doc__.split("\n\n")[0].split()), formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:-1]),
    )  # fmt: skip
    ap.add_argument("--pages", type=int, default=24, help="pages per document (default 24)")
    ap.add_argument("--latency", type=float, default=0.2, help="server latency per request, seconds (default 0.2)")
    ap.add_argument("--workers", type=int, default=8, help="pages in flight, all readers and floors (default 8)")
    ap.add_argument("--repeats", type=int, default=3, help="measured repeats of every run (default 3)")
    ap.add_argument("--render-workers", type=int, default=16,
                    help="pages in flight in section 3, so latency is not the limit (default 16)")  # fmt: skip
    ap.add_argument("--render-pages", type=int, default=None,
                    help="vector pages in section 3 (default: enough for processes='auto' to start a pool)")  # fmt: skip
    ap.add_argument("--pre-move", default=PRE_MOVE, help=f"commit of the pre-move code (default {PRE_MOVE})")
    ap.add_argument("--new", default=None, metavar="COMMIT",
                    help="measure this commit as the new code (and its test server) instead of the working tree")  # fmt: skip
    ap.add_argument("--docs", default=",".join(DOCS), help=f"documents for sections 1-2 (default {','.join(DOCS)})")
    ap.add_argument("--skip-pool", action="store_true", help="skip section 3 (threads vs processes)")
    ap.add_argument("--no-prime", action="store_true",
                    help="do not raise glibc's mmap threshold in the measuring processes first (see _reader_worker.py)")
    ap.add_argument("--raw", action="store_true", help="also print every run's figures as JSON lines")
    args = ap.parse_args(argv)
    doc_names = [d for d in args.docs.split(",") if d]
    if not set(doc_names) <= set(DOCS):
        ap.error(f"--docs: choose from {', '.join(DOCS)}")

    # SIGTERM ends the run through the same clean-up as an error or Ctrl-C (children closed, temp dir removed)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.perf_counter()
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    token = uuid.uuid4().hex
    children: list[Child] = []
    with tempfile.TemporaryDirectory(prefix="reader-bench-") as tmp_name:
        tmp = Path(tmp_name)
        child_tmp = tmp / "tmp"
        child_tmp.mkdir()
        env = {**os.environ, TOKEN_VAR: token, "TMPDIR": str(child_tmp), "READER_BENCH_PRIME": "0" if args.no_prime else "1"}
        old_tree = extract(args.pre_move, tmp / "pre-move")
        if args.new:
            new_commit = git("rev-parse", "--short", args.new)
            new_tree = extract(new_commit, tmp / "new", "tests")
            new_what = f"commit {new_commit} (git archive)"
        else:
            new_tree = ROOT
            changed = git("status", "--porcelain", "--", "qwen_vl_core", "llama_index_qwen_vl").splitlines()
            new_what = f"this working tree (HEAD {git('rev-parse', '--short', 'HEAD')}, {len(changed)} changed files)"
        try:
            server = Child("server", ["serve", str(args.latency)], new_tree, env, tmp / "server.log")
            children.append(server)
            url = server.line().strip()
            # one process per code under test, so that none inherits another's heap or threads
            new = Child("new", ["work"], new_tree, env, tmp / "new.log")
            old = Child("pre-move", ["work"], old_tree, env, tmp / "old.log")
            floor = Child("floor", ["work"], new_tree, env, tmp / "floor.log")
            children += [new, old, floor]
            info, old_info = new.ask(op="info"), old.ask(op="info")
            if not old_info["qwen_vl_core"].startswith(str(old_tree)) or not info["qwen_vl_core"].startswith(
                str(new_tree)
            ):
                raise RuntimeError(f"wrong code under test: {old_info} / {info}")

            makers = {"scan200": lambda p, n: scanned_pdf(p, n, dpi=200),
                      "scan150": lambda p, n: scanned_pdf(p, n, dpi=150), "vector": vector_pdf}  # fmt: skip
            docs = {name: makers[name](tmp / f"{name}.pdf", args.pages) for name in doc_names}
            # the first warm-up run of each process on each document is as long as the window of pages in
            # flight, so that every thread starts and grows its heap
            warm = {name: makers[name](tmp / f"{name}-warm.pdf", args.workers) for name in doc_names}

            runs = plan(info["a4_budget_dpi"], doc_names)
            by_who = {"old": old, "new": new, "floor": floor}
            if args.pages >= info["auto_min_pages"]:  # keep rendering in the measured process (section 3 does pools)
                for run in runs:
                    if run.who == "new":
                        run.settings.setdefault("processes", 0)
            one_page = {name: makers[name](tmp / f"{name}-one.pdf", 1) for name in doc_names}
            short = {name: warm[name] for name in doc_names}  # --workers pages: one full window
            warmed: set = set()
            for run in runs:  # warm-up: imports, code paths, pools, connections, heaps; not counted
                first = (run.who, run.doc) not in warmed
                warmed.add((run.who, run.doc))
                pdf = warm[run.doc] if first else one_page[run.doc]
                do_run(run, by_who[run.who], server, pdf, url, args.workers, record=False)
            for repeat in range(args.repeats):
                for run in runs if repeat % 2 == 0 else runs[::-1]:
                    do_run(run, by_who[run.who], server, (short if run.short else docs)[run.doc], url, args.workers)
            for child in (new, old, floor):
                child.close()
            s3 = None
            if not args.skip_pool:
                render_pages = args.render_pages or max(args.pages, info["auto_min_pages"])
                many = vector_pdf(tmp / "vector-many.pdf", render_pages)
                one = vector_pdf(tmp / "vector-one.pdf", 1)
                fresh = Child("new (section 3)", ["work"], new_tree, env, tmp / "new3.log")
                children.append(fresh)
                s3 = section3(fresh, server, args, url, one, many, render_pages, info["auto_min_pages"])
        finally:
            for child in children:
                child.close()
        deadline = time.monotonic() + 5
        left = survivors(token)
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = survivors(token)
        leftover_tmp = sorted(p.name for p in child_tmp.iterdir())
    meta = {
        "load_before": load_before,
        "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "seconds": time.perf_counter() - started,
        "survivors": f"{len(left)} {left}" if left else "0",
        "leftover_tmp": f"{len(leftover_tmp)} {leftover_tmp}" if leftover_tmp else "0",
    }
    print(f"pre-move code: {args.pre_move} (its QwenVLReader, dpi=150 by default); new code: {new_what}; "
          f"model {info['model']}, pixel budget {info['budget']:,} px = A4 at {info['a4_budget_dpi']:.0f} dpi")  # fmt: skip
    print(f"documents: A4, {args.pages} pages each: scan200 / scan150 (one JPEG q85 per page, 1654x2339 / "
          f"1240x1754 px), vector (text and shapes, rendered); all readers num_workers={args.workers}, "
          f"max_retries=0, other settings at their defaults unless named")  # fmt: skip
    if args.pages < info["auto_min_pages"]:
        print(f"(processes='auto' renders in threads below {info['auto_min_pages']} pages, so every CPU figure in "
              f"sections 1-2 is the whole client's work)")  # fmt: skip
    print()
    report({r.key: r for r in runs}, s3, args, meta)
    if args.raw:
        for run in [*runs, *(s3["runs"].values() if s3 else [])]:
            for i, sample in enumerate(run.samples):
                print(json.dumps({"run": run.key, "repeat": i, **sample}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
