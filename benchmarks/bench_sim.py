"""Simulator figures: fact generation, startup-to-first-page, page latency over loopback.

Run: ``.venv/bin/python benchmarks/bench_sim.py [--pages 400] [--sizes 100000,200000]``.
The server runs in its own process (the other core), the client is a sequential
``httpx.Client``. "cold" pages build their documents on first request; "warm" pages are
served from the encoded-document cache. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime

import httpx

from nodeselect.sim import generate_fleet

RUN_SIM = (
    "import argparse, sys\n"
    "from nodeselect._cli import _sim\n"
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


def bench_generation(sizes: list[int]) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    generate_fleet(1000, seed=0, now=now)  # warm imports
    for n in sizes:
        best = min(_timed(lambda n=n: generate_fleet(n, seed=1, now=now)) for _ in range(3))
        print(f"generate_fleet({n:>7,}): {best * 1000:7.1f} ms  (facts only; documents are lazy)")
    fleet = generate_fleet(20_000, seed=1, now=now)
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


def bench_server(n: int, pages: int) -> None:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN_SIM, "sim", "serve", "--nodes", str(n), "--seed", "1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().rsplit(" ", 1)[1].strip()
    t_url = time.perf_counter() - t0
    try:
        with httpx.Client() as client:
            first = client.get(url, params={"limit": 50, "sort": "created_at"})
            first.raise_for_status()
            t_first = time.perf_counter() - t0
            for label in ("cold", "warm"):
                lat = []
                t_pass = time.perf_counter()
                for page in range(2, pages + 2):
                    t = time.perf_counter()
                    r = client.get(url, params={"limit": 50, "page": page, "sort": "created_at"})
                    lat.append(time.perf_counter() - t)
                    assert r.status_code == 200
                wall = time.perf_counter() - t_pass
                median_ms = statistics.median(lat) * 1000
                print(
                    f"  {n:>7,} nodes, {label} page of 50: median {median_ms:5.2f} ms,"
                    f" p99 {_percentile(lat, 0.99) * 1000:6.2f} ms, {pages / wall:6.0f} pages/s"
                )
        print(
            f"  {n:>7,} nodes: URL printed after {t_url:.2f} s, first page after {t_first:.2f} s;"
            f" server RSS {rss_mib(proc.pid):.0f} MiB after {2 * pages + 1} pages"
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=400)
    parser.add_argument("--sizes", default="100000,200000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    bench_generation(sizes)
    for n in sizes:
        bench_server(n, args.pages)


if __name__ == "__main__":
    main()
