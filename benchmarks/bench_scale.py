"""Scaling ``rank_many`` past one thread (issue 13): same-run ratios, repeated.

Prints, in one run (no assertions; the machine is shared, so compare the ratios):

* threads: 1,000 jobs x 1M nodes with ``workers=1`` and ``workers=2`` (and ``--workers``),
  interleaved (alternating which goes first) so both see the same load; the results are
  checked equal; the target on this 2-core machine is >= 1.7x one thread. Beside each, the
  same runs with the C extension's GIL-free kernels off (``numpy.repeat`` and a ``cumsum``,
  which hold the GIL): what the kernels give the threads. Each figure says
  the process's CPU time (user + system, from ``getrusage``) and the cores it kept busy, its
  voluntary context switches (mostly GIL hand-offs between the threads), and the line the
  load average: a ratio measured while other processes hold the cores says little about the
  threads, while the CPU times (``N threads CPU / 1 thread CPU``: the work the threads add)
  hold under load.
* the machine's ceiling: two processes each doing the one-thread run's work at once, against
  one process doing both in turn (``--no-ceiling`` skips it). Threads share the process's
  memory bandwidth and caches exactly as two processes share the machine's, so this is the
  most two threads can gain here; a VM whose second core adds little memory bandwidth shows
  it below 2x.
* a summary line: the threads' median ratio, how many runs reached 1.7x, and the median
  ceiling (the threads' share of it).
* the cluster (``bench_dask.py``'s figures, when ``distributed`` is installed; ``--no-dask``
  skips them): a 2-worker ``LocalCluster`` against one process on the same tiles, each run
  beside a fresh ceiling, at 1M nodes and at 2M (twice the shards per job); the driver's
  memory from 1M to 4M nodes; the extrapolation to 100k jobs x 10M nodes. The issue's
  figures all come from one run of this file.

    python benchmarks/bench_scale.py [--quick] [--repeat N] [--workers N] [--no-dask]
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.util
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from nodeselect import rank_many
from nodeselect.engine._rank import table_stats
from nodeselect.table import _kernels
from nodeselect.table._table import NodeTable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _procs
from bench_engine import NOW
from bench_fresh import batch_jobs


def threads(n: int, n_jobs: int, workers: list[int], repeat: int) -> list[float]:
    """Print each repeat's figures; return the first thread count's ratios to one thread."""
    t = NodeTable.synthetic(n, seed=2, now=NOW)
    st = table_stats(t)
    jobs = batch_jobs(n_jobs)
    one = rank_many(jobs, t, now=NOW, stats=st)  # warm: uuid hashes, categorical masks
    for w in workers:
        got = rank_many(jobs, t, now=NOW, stats=st, workers=w)
        assert all(
            a.top == b.top and a.feasible_indices.tolist() == b.feasible_indices.tolist()
            for a, b in zip(got, one, strict=True)
        ), f"workers={w} differs from one thread"
    del one, got
    pairs = n_jobs * n
    kernels = _kernels._cbuild
    ratios: list[float] = []
    for r in range(repeat):
        gc.collect()
        times: dict[int, float] = {}
        cpu: dict[int, tuple[float, float, int]] = {}  # user, system, voluntary switches
        plain: dict[int, float] = {}  # the same runs with NumPy's repeat and cumsum
        order = [1, *workers] if r % 2 == 0 else [*workers, 1]  # alternate who goes first
        for w in order:
            r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            rank_many(jobs, t, now=NOW, stats=st, workers=w)
            times[w] = time.perf_counter() - t0
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu[w] = (
                r1.ru_utime - r0.ru_utime,
                r1.ru_stime - r0.ru_stime,
                r1.ru_nvcsw - r0.ru_nvcsw,
            )
        if kernels is not None:
            _kernels._cbuild = None  # type: ignore[assignment]
            try:
                for w in order[::-1]:
                    t0 = time.perf_counter()
                    rank_many(jobs, t, now=NOW, stats=st, workers=w)
                    plain[w] = time.perf_counter() - t0
            finally:
                _kernels._cbuild = kernels
        base = times[1]
        base_cpu = cpu[1][0] + cpu[1][1]
        ratios.append(base / times[workers[0]])
        parts = [
            f"1 thread {base:.2f} s ({pairs / base / 1e6:,.0f} M pairs/s,"
            f" CPU {base_cpu:.2f} s = user {cpu[1][0]:.2f} + sys {cpu[1][1]:.2f})"
        ]
        for w in workers:
            user, system, switches = cpu[w]
            parts.append(
                f"{w} threads {times[w]:.2f} s = {base / times[w]:.2f}x"
                f" (CPU {user + system:.2f} s = user {user:.2f} + sys {system:.2f},"
                f" {(user + system) / base_cpu:.2f}x one thread's;"
                f" {(user + system) / times[w]:.2f} cores busy; {switches:,} voluntary switches)"
            )
        print(
            f"[{r + 1}] threads, {n_jobs:,} jobs x {n:,} nodes (os.cpu_count {os.cpu_count()},"
            f" load {os.getloadavg()[0]:.1f}): "
            + ", ".join(parts)
            + " (target: 2 threads >= 1.7x; same results)"
        )
        if plain:
            print(
                "    with NumPy's repeat and cumsum (the C extension's GIL-free kernels off):"
                f" 1 thread {plain[1]:.2f} s, "
                + ", ".join(
                    f"{w} threads {plain[w]:.2f} s = {plain[1] / plain[w]:.2f}x"
                    f" (its time / the kernels' {w}-thread time: {plain[w] / times[w]:.2f}x)"
                    for w in workers
                )
            )
    return ratios


def _same_work(n: int, n_jobs: int, times: int, barrier: Any, out: Any) -> None:
    """(child) The one-thread run of :func:`threads`, warm, ``times`` times in turn, started
    when every child is ready (``barrier``); puts the seconds from start to end on ``out``."""
    t = NodeTable.synthetic(n, seed=2, now=NOW)
    st = table_stats(t)
    jobs = batch_jobs(n_jobs)
    rank_many(jobs, t, now=NOW, stats=st)
    barrier.wait()
    t0 = time.perf_counter()
    for _ in range(times):
        rank_many(jobs, t, now=NOW, stats=st)
    out.put(time.perf_counter() - t0)


def ceiling(n: int, n_jobs: int, repeat: int) -> list[float]:
    """Two processes doing the work once each at once vs one process doing it twice (each
    repeat printed; the ratios returned)."""
    out: list[float] = []
    for r in range(repeat):
        serial = _procs.longest(1, _same_work, n, n_jobs, 2)
        parallel = _procs.longest(2, _same_work, n, n_jobs, 1)
        out.append(serial / parallel)
        print(
            f"[{r + 1}] machine ceiling: 2 processes each ranking the same {n_jobs:,} jobs x "
            f"{n:,} nodes (one thread each) finish {serial / parallel:.2f}x faster than 1 "
            f"process ranking them twice ({serial:.2f} s vs {parallel:.2f} s, load "
            f"{os.getloadavg()[0]:.1f}): the most 2 threads can gain on this machine now"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (CI smoke run)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each figure")
    parser.add_argument("--workers", type=int, nargs="*", default=[2], help="thread counts")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the 2-process ceiling")
    parser.add_argument("--no-dask", action="store_true", help="skip the LocalCluster figures")
    args = parser.parse_args()
    n, n_jobs = (100_000, 100) if args.quick else (1_000_000, 1_000)
    counts = [w for w in args.workers if w > 1] or [2]
    ratios = threads(n, n_jobs, counts, args.repeat)
    met = sum(r >= 1.7 for r in ratios)
    line = (
        f"threads, {len(ratios)} runs: {counts[0]} threads a median "
        f"{statistics.median(ratios):.2f}x one thread, >= 1.7x in {met} of {len(ratios)}"
    )
    if not args.no_ceiling:
        ceil = statistics.median(ceiling(n, n_jobs, max(1, args.repeat - 1)))
        line += (
            f"; the machine's ceiling (median) {ceil:.2f}x: the threads reached "
            f"{statistics.median(ratios) / ceil:.2f} of it"
        )
    print(line)
    if not args.no_dask:
        if importlib.util.find_spec("distributed") is None:
            print("cluster: skipped (pip install 'nodeselect[dask]' for its figures)")
        else:
            dask_figures = importlib.import_module("bench_dask")  # imports distributed
            dask_figures.report(args.quick, max(args.repeat, 4), None)


if __name__ == "__main__":
    main()
