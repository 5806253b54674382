"""Simulator figures: fact generation, startup-to-first-page, page latency over loopback.

Run: ``.venv/bin/python benchmarks/bench_sim.py [--pages 400] [--sizes 100000,200000]
[--baseline-src DIR] [--dialect NAME]``. The server runs in its own process (the other core),
the client is a sequential ``httpx.Client``. "cold" pages build their documents on first
request; "warm" pages are served from the encoded-document cache. Prints figures; asserts nothing.

``--baseline-src DIR`` (e.g. ``git archive <rev> src | tar -x -C /tmp/base``, then
``/tmp/base/src``) also starts a server from that source tree and alternates every request
between the two (A then B, then B then A), so both see the same load on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime

import httpx

from nodeselect.sim import DIALECTS, generate_fleet

RUN_SIM = (
    "import argparse, sys\n"
    "from nodeselect.cli import sim as _sim\n"
    "p = argparse.ArgumentParser(prog='nodeselect')\n"
    "_sim.register(p.add_subparsers())\n"
    "a = p.parse_args(sys.argv[1:])\n"
    "sys.exit(a.handler(a))\n"
)


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def bench_generation(sizes: list[int], dialect_name: str = "default") -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    dialect = DIALECTS[dialect_name]
    generate_fleet(1000, seed=0, now=now, dialect=dialect)  # warm imports
    print(f"dialect {dialect_name}: {dialect.describe()}")
    for n in sizes:
        best = min(
            _timed(lambda n=n: generate_fleet(n, seed=1, now=now, dialect=dialect))
            for _ in range(3)
        )
        print(f"generate_fleet({n:>7,}): {best * 1000:7.1f} ms  (facts only; documents are lazy)")
    fleet = generate_fleet(20_000, seed=1, now=now, dialect=dialect)
    t = time.perf_counter()
    fleet.page_bytes(list(range(2000)))
    per_doc = (time.perf_counter() - t) / 2000
    print(f"document build + encode: {per_doc * 1e6:7.1f} us/node (cold)")


def _timed(fn: object) -> float:
    t = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _start(
    n: int, src: str | None, dialect: str = "default"
) -> tuple[subprocess.Popen[str], str, float]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = src
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN_SIM, "sim", "serve", "--nodes", str(n), "--seed", "1"]
        + ([] if dialect == "default" else ["--dialect", dialect]),
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().rsplit(" ", 1)[1].strip()
    return proc, url, t0


def bench_server(n: int, pages: int, baseline_src: str | None, dialect: str = "default") -> None:
    labels = ["this tree"] + ([] if baseline_src is None else [f"baseline {baseline_src}"])
    servers: list[tuple[subprocess.Popen[str], str, float]] = []
    t_url: list[float] = []
    t_first: list[float] = []
    try:
        with httpx.Client() as client:
            # One server at a time until its first page, so the startups do not overlap.
            for src in [None] + ([] if baseline_src is None else [baseline_src]):
                proc, url, t0 = _start(n, src, dialect if src is None else "default")
                servers.append((proc, url, t0))
                t_url.append(time.perf_counter() - t0)
                first = client.get(url, params={"limit": 50, "sort": "created_at"})
                first.raise_for_status()
                t_first.append(time.perf_counter() - t0)
            for label in ("cold", "warm"):
                lat: list[list[float]] = [[] for _ in servers]
                wall = [0.0 for _ in servers]
                for page in range(2, pages + 2):
                    order = range(len(servers)) if page % 2 else reversed(range(len(servers)))
                    for k in order:
                        t = time.perf_counter()
                        r = client.get(
                            servers[k][1],
                            params={"limit": 50, "page": page, "sort": "created_at"},
                        )
                        elapsed = time.perf_counter() - t
                        lat[k].append(elapsed)
                        wall[k] += elapsed
                        assert r.status_code == 200
                for k, name in enumerate(labels):
                    median_ms = statistics.median(lat[k]) * 1000
                    print(
                        f"  {n:>7,} nodes, {label} page of 50 [{name}]: median {median_ms:5.2f} ms,"
                        f" p99 {_percentile(lat[k], 0.99) * 1000:6.2f} ms,"
                        f" {pages / wall[k]:6.0f} pages/s"
                    )
        for k, name in enumerate(labels):
            print(
                f"  {n:>7,} nodes [{name}]: URL printed after {t_url[k]:.2f} s, first page after"
                f" {t_first[k]:.2f} s; server RSS {rss_mib(servers[k][0].pid):.0f} MiB after"
                f" {2 * pages + 1} pages"
            )
    finally:
        for proc, _, _ in servers:
            proc.send_signal(signal.SIGTERM)
        for proc, _, _ in servers:
            proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=400)
    parser.add_argument("--sizes", default="100000,200000")
    parser.add_argument("--baseline-src", default=None, help="another tree's src/ to compare")
    parser.add_argument("--dialect", default="default", choices=sorted(DIALECTS))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    bench_generation(sizes, args.dialect)
    for n in sizes:
        bench_server(n, args.pages, args.baseline_src, args.dialect)


if __name__ == "__main__":
    main()
