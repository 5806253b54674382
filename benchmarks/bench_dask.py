"""Scale-out on Dask (nodeselect.dask): cluster vs one process, driver memory, extrapolation.

Prints figures (no assertions; machines are noisy, compare ratios within one run):

* the same tiles (job batches x synthetic node shards generated on the workers) ranked by a
  2-worker ``LocalCluster`` (processes, one thread each) and by one process (Dask's
  synchronous scheduler); both warmed first with the timed jobs (each shard's derived
  columns built, each worker's heap grown to a tile's size, as the ceiling's processes are
  warmed), timed in turns, results checked equal; the cluster's speedup, and its CPU
  seconds (driver, scheduler and workers) against one process's: the cluster's overhead,
  which a machine whose cores other processes hold cannot show as a speedup;
* before each run, the machine's ceiling: 2 processes doing 2 tiles' ``rank_many`` work at
  once against 1 doing both (this VM's second core has given 1.16-2.10x of the first within
  one hour), and at the end the medians: the cluster's ratio, the ceiling's, and the share
  of the ceiling the cluster reached;
* all of the above at 1M nodes (4 shards: the issue's figure) and again at 2M (8 shards):
  each job's merge and results, and the run's start, are paid once a run whatever the
  shards, so with twice the tiles a job they weigh half as much; a survey of a 10M-node
  fleet ranks each job on 40 shards (``--nodes N``: one size only);
* one process's honest best beside them: one ``rank_many`` call on a whole table of as many
  nodes from the same generator (no tiles: every job's fixed costs paid once, not once per
  shard; a group's layout built once, not once per batch), and the cluster against it;
* the driver's peak RSS (``ru_maxrss`` of the driver process, which also runs the scheduler)
  surveying 1M and 4M nodes on the cluster, each in a fresh process: the driver never holds
  the fleet, so it should stay flat;
* an extrapolation to 100k jobs x 10M nodes on N workers from the measured per-tile time.

    python benchmarks/bench_dask.py [--quick] [--repeat 4] [--batch JOBS] [--nodes N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from nodeselect import NodeTable, rank_many
from nodeselect.dask import DEFAULT_BATCH, Survey, connect, synthetic_shards
from nodeselect.jobs import CpuReq, GpuReq, Job, MemoryReq, PlacementReq

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _procs

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SHARD = 250_000


def make_jobs(n: int, seed: int = 3) -> list[Job]:
    """Varied jobs (the batch of bench_engine.py)."""
    rng = np.random.default_rng(seed)
    models = [("RTX-4090",), ("A100", "H100"), ("L40S",), ("T4",), ()]
    return [
        Job(
            name=f"job-{i}",
            gpu=GpuReq(
                models=models[i % len(models)],
                count=int(rng.integers(1, 4)),
                min_vram_free_gb=float(rng.integers(8, 40)),
            ),
            cpu=CpuReq(min_cores=int(rng.choice([4, 8, 16, 32]))),
            memory=MemoryReq(min_free_gb=float(rng.integers(8, 128))),
            placement=PlacementReq(min_reputation=float(rng.integers(0, 70))),
        )
        for i in range(n)
    ]


def run(survey: Survey, jobs: list[Job], batch: int) -> tuple[float, list]:
    t0 = time.perf_counter()
    out = [(r.feasible, [(n.uuid, n.score.hex()) for n in r.top])
           for r in survey.run(jobs, k=10, batch_size=batch)]  # fmt: skip
    return time.perf_counter() - t0, out


def process_cpu() -> float:
    """This process's CPU seconds (user + system, every thread)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(
    survey: Survey, jobs: list[Job], batch: int, client: Any = None
) -> tuple[float, float, list]:
    """Wall seconds, CPU seconds (this process, plus the workers' when ``client``), results."""
    w0 = client.run(process_cpu) if client is not None else {}
    c0 = process_cpu()
    wall, out = run(survey, jobs, batch)
    cpu = process_cpu() - c0
    if client is not None:
        w1 = client.run(process_cpu)
        cpu += sum(w1[w] - w0[w] for w in w0)
    return wall, cpu, out


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM; ``ru_maxrss`` survives exec on Linux, VmHWM does not)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def driver_rss(nodes: int, jobs: int, batch: int) -> None:
    """(child) Survey ``nodes`` on local:2 and print this process's peak RSS in MB as JSON."""
    base = peak_rss_mb()
    shards = synthetic_shards(nodes, max(1, nodes // SHARD), seed=1)
    with connect("local:2") as client, Survey(shards, client=client, now=NOW) as s:
        n = sum(1 for _ in s.run(make_jobs(jobs), k=10, batch_size=batch))
    print(json.dumps({"nodes": nodes, "jobs": n, "base_mb": base, "peak_mb": peak_rss_mb()}))


def _work(times: int, nodes: int, n_jobs: int, barrier: Any, out: Any) -> None:
    """(child) One tile's work (``n_jobs`` jobs x a ``nodes``-node table), warm, ``times``
    times in turn, started when every child is ready (``barrier``: no child's table build
    overlaps another's timed work); puts the seconds it took on ``out``."""
    t = NodeTable.synthetic(nodes, seed=5, now=NOW)
    jobs = make_jobs(n_jobs)
    rank_many(jobs, t, now=NOW)
    barrier.wait()
    t0 = time.perf_counter()
    for _ in range(times):
        rank_many(jobs, t, now=NOW)
    out.put(time.perf_counter() - t0)


def machine_parallelism(nodes: int, n_jobs: int) -> float:
    """How much faster 2 processes do 2 tiles' work (each ``n_jobs`` x ``nodes``) than 1
    process does, one after the other: the ceiling of a 2-worker cluster on this machine."""
    return _procs.longest(1, _work, 2, nodes, n_jobs) / _procs.longest(2, _work, 1, nodes, n_jobs)


def compare(n_nodes: int, n_jobs: int, batch: int, repeat: int) -> tuple[float, int, int]:
    """Time the cluster against one process on ``n_nodes`` nodes; print each run and the
    medians; return the cluster's best time, the nodes and the shards."""
    jobs = make_jobs(n_jobs)
    shards = synthetic_shards(n_nodes, max(2, n_nodes // SHARD), seed=1)
    per_shard = n_nodes // len(shards)
    tiles = -(-n_jobs // batch) * len(shards)
    print(
        f"cluster tiles: {n_jobs:,} jobs in batches of {batch} x {n_nodes:,} nodes in "
        f"{len(shards)} shards = {tiles} tiles of {batch} x {per_shard:,}; each run below also "
        f"measures the machine's ceiling: 2 processes doing 2 tiles' rank_many work against 1"
    )
    pairs = n_jobs * n_nodes
    ratios: list[float] = []
    ceilings: list[float] = []
    # both sides up at once, timed in turns (alternating who goes first): same load for both
    with (
        Survey(shards, now=NOW) as one,
        connect("local:2") as client,
        Survey(shards, client=client, now=NOW) as two,
    ):
        # warm, with the timed jobs themselves, as the ceiling's processes are: each shard's
        # derived columns built, and each worker's heap grown to a tile's size and its batch
        # unpickled (one-time costs: with 20 jobs as warm-up, the first timed tile on each
        # worker took 20k page faults and ~40 ms more, and the first run's ratio was 1.3-1.4x)
        run(one, jobs, batch)
        run(two, jobs, batch)
        whole = NodeTable.synthetic(n_nodes, seed=7, now=NOW)
        rank_many(jobs, whole, now=NOW)  # its derived columns
        best = float("inf")
        for r in range(repeat):
            ceilings.append(machine_parallelism(per_shard, batch))  # the cluster idle meanwhile
            sides = [("one", one, None), ("two", two, client)]
            got = {
                name: timed(s, jobs, batch, c)
                for name, s, c in (sides if r % 2 == 0 else sides[::-1])
            }
            (t_one, c_one, want), (t_two, c_two, out) = got["one"], got["two"]
            c0, t0 = process_cpu(), time.perf_counter()
            rank_many(jobs, whole, now=NOW)
            t_whole, c_whole = time.perf_counter() - t0, process_cpu() - c0
            best = min(best, t_two)
            ratios.append(t_one / t_two)
            print(
                f"[{r + 1}] one process (synchronous scheduler): {t_one:.2f} s = "
                f"{pairs / t_one / 1e6:,.0f} M pairs/s (CPU {c_one:.2f} s); LocalCluster 2 "
                f"workers: {t_two:.2f} s = {pairs / t_two / 1e6:,.0f} M pairs/s (CPU {c_two:.2f} s"
                f" over driver + workers); cluster / one process = {t_one / t_two:.2f}x "
                f"(target >= 1.6x; the machine's ceiling just before: {ceilings[-1]:.2f}x; CPU "
                f"cost {c_two / c_one:.2f}x one process's, load {os.getloadavg()[0]:.1f}); "
                f"results {'equal' if out == want else 'DIFFER'}"
            )
            print(
                f"    one process, one rank_many on a whole {n_nodes:,}-node table (no tiles):"
                f" {t_whole:.2f} s (CPU {c_whole:.2f} s; the tiles cost {c_one / c_whole:.2f}x"
                f" its CPU); cluster / that = {t_whole / t_two:.2f}x"
            )
    shares = [r / c for r, c in zip(ratios, ceilings, strict=True)]
    print(
        f"medians of {repeat} runs: cluster / one process {statistics.median(ratios):.2f}x "
        f"(target >= 1.6x); the machine's ceiling {statistics.median(ceilings):.2f}x; the "
        f"cluster reached {statistics.median(shares):.2f} of the ceiling measured just before it"
        f" ({n_nodes:,} nodes)"
    )
    return best, n_nodes, len(shards)


def report(quick: bool, repeat: int, batch: int | None, nodes: int | None = None) -> None:
    """Print this benchmark's figures (``main``'s, and ``bench_scale.py``'s cluster part): the
    cluster against one process at 1M nodes (the issue's figure) and at 2M (twice the shards
    per job: each job's merge and results, paid once a run on either side, weigh half as much
    against its tiles), or at ``nodes``; then the driver's memory and the extrapolation."""
    n_jobs, default_batch = (100, 50) if quick else (1_000, DEFAULT_BATCH)
    batch = min(batch or default_batch, n_jobs)  # a tile holds at most every job
    sizes = [nodes] if nodes else [200_000] if quick else [1_000_000, 2_000_000]
    best, n_nodes, n_shards = compare(sizes[0], n_jobs, batch, repeat)
    for n in sizes[1:]:
        compare(n, n_jobs, batch, repeat)

    rss = []
    for n in (200_000, 800_000) if quick else (1_000_000, 4_000_000):
        out = subprocess.run(
            [sys.executable, __file__, "--driver-rss", str(n), *(["--quick"] * quick)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        rss.append(json.loads(out.strip().splitlines()[-1]))
    a, b = rss
    print(
        f"driver peak RSS (driver + scheduler, workers apart): {a['nodes']:,} nodes "
        f"{a['peak_mb']:.0f} MB, {b['nodes']:,} nodes {b['peak_mb']:.0f} MB "
        f"({b['nodes'] // a['nodes']}x the nodes: {b['peak_mb'] / a['peak_mb']:.2f}x the RSS; "
        f"after imports {a['base_mb']:.0f} / {b['base_mb']:.0f} MB)"
    )

    tiles = -(-n_jobs // batch) * n_shards
    per_tile = best * 2 / tiles  # worker-seconds per tile on the cluster (best run)
    rate = batch * (n_nodes / n_shards) / per_tile
    big_tiles = -(-100_000 // batch) * (10_000_000 // SHARD)
    big_pairs = 100_000 * 10_000_000
    print(
        f"per tile ({batch} jobs x {n_nodes // n_shards:,} nodes): {per_tile:.2f} "
        f"worker-s = {rate / 1e6:,.0f} M pairs/s per worker"
    )
    cells = ", ".join(f"{w} workers {big_pairs / rate / w / 60:,.1f} min" for w in (2, 16, 64, 256))
    print(
        f"extrapolated, 100k jobs x 10M nodes ({big_tiles:,} tiles of {batch:,} x 250k) at that "
        f"rate: {cells} (ranking only; scheduling overhead and the shards' first build extra)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (CI smoke run)")
    parser.add_argument("--repeat", type=int, default=4, help="timed runs per side")
    parser.add_argument(
        "--batch",
        type=int,
        default=None,
        help=f"jobs per tile (default {DEFAULT_BATCH:,}, the Survey's; --quick: 50)",
    )
    parser.add_argument(
        "--nodes", type=int, default=None, help="fleet size (default 1,000,000; --quick 200,000)"
    )
    parser.add_argument("--driver-rss", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.driver_rss is not None:
        n_jobs, batch = (100, 50) if args.quick else (1_000, DEFAULT_BATCH)
        driver_rss(args.driver_rss, n_jobs, args.batch or batch)
        return
    report(args.quick, args.repeat, args.batch, args.nodes)


if __name__ == "__main__":
    main()
