"""Batch placement speed: 1,000 jobs (10 % gangs of 2-8 nodes) onto 100,000 synthetic nodes.

Prints wall time for the headline case (best and worst of ``--repeat`` runs, split into the
survey -- one full-table evaluation per distinct job spec, sharing GPU groups, node masks and
score terms -- and the turns -- re-evaluating touched rows and choosing nodes), how time grows
with jobs and with nodes, the cost of reading every unplaced job's (lazy) explanation, and the
greedy-vs-optimum gap on tiny instances (brute force from tests/oracles/reference_placement.py).
Figures only, no assertions; machines are noisy, compare ratios within one run.

    python benchmarks/bench_place.py [--quick] [--repeat N]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from nodeselect.engine._rank import rank
from nodeselect.jobs._model import CpuReq, DiskReq, GangReq, GpuReq, Job, MemoryReq
from nodeselect.placement._placer import _Placer, place
from nodeselect.table._table import NodeTable

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
MODELS = (
    ("RTX-4090",),
    ("RTX-3090", "RTX-4090"),
    ("A100-80GB", "H100-80GB"),
    ("L40S",),
    ("T4",),
    ("A10",),
    (),
)


def make_jobs(n: int, seed: int = 1) -> list[Job]:
    """``n`` jobs: 10 % gangs of 2-8 replicas, the rest single-node, mixed sizes."""
    rng = random.Random(seed)
    jobs = []
    for i in range(n):
        gang = i % 10 == 0
        count = rng.choice([1, 1, 1, 2, 4] if not gang else [1, 2, 4, 8])
        jobs.append(
            Job(
                name=f"job-{i:04d}",
                nodes=rng.randint(2, 8) if gang else 1,
                priority=rng.choice([0, 0, 0, 1, 2]),
                gpu=GpuReq(
                    models=rng.choice(MODELS),
                    count=count,
                    min_vram_free_gb=rng.choice([None, 8.0, 16.0, 40.0]),
                ),
                cpu=CpuReq(min_cores=rng.choice([None, 4, 8, 16])),
                memory=MemoryReq(min_free_gb=rng.choice([None, 16.0, 64.0])),
                disk=DiskReq(min_free_gb=rng.choice([None, 100.0, 500.0])),
                gang=GangReq(
                    same=rng.choice([None, "country", "continent"]) if gang else None,
                    distinct=rng.choice(["node", "operator"]) if gang else "node",
                ),
            )
        )
    return jobs


def timed(jobs: list[Job], table: NodeTable) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    plan = place(jobs, table, now=NOW)
    return time.perf_counter() - t0, len(plan.assignments), plan.totals.gpus_used


def gap(instances: int) -> tuple[int, int, int]:
    """(instances, instances where greedy placed fewer jobs than the optimum, worst shortfall)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "oracles"))
    from reference_placement import NOW as TNOW  # noqa: PLC0415
    from reference_placement import optimum_placed, random_instance  # noqa: PLC0415

    short = worst = 0
    for seed in range(instances):
        inst = random_instance(random.Random(seed))
        fleet = inst.fleet()
        plan = place(inst.jobs, NodeTable.from_nodes(fleet, now=TNOW), now=TNOW)
        best = optimum_placed(inst.nodes, inst.jobs)
        miss = best - len(plan.assignments)
        short += miss > 0
        worst = max(worst, miss)
    return instances, short, worst


def split(jobs: list[Job], table: NodeTable) -> tuple[float, float, int, int]:
    """(survey seconds, turns seconds, jobs placed, GPUs reserved) of one placement."""
    t0 = time.perf_counter()
    placer = _Placer(jobs, table, now=NOW, seed=0, candidates=64)
    t1 = time.perf_counter()
    plan = placer.run()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, len(plan.assignments), plan.totals.gpus_used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (CI smoke run)")
    parser.add_argument("--repeat", type=int, default=3, help="headline runs (min and max shown)")
    args = parser.parse_args()
    n_nodes = 20_000 if args.quick else 100_000
    n_jobs = 200 if args.quick else 1_000
    table = NodeTable.synthetic(n_nodes, seed=3, now=NOW)
    jobs = make_jobs(n_jobs)
    print(f"bench_place: {n_jobs} jobs (10 % gangs of 2-8 nodes) onto {n_nodes:,} nodes")
    runs = [split(jobs, table) for _ in range(max(1, args.repeat))]
    total = sorted(a + b for a, b, _, _ in runs)
    _, _, placed, gpus = runs[0]
    best = min(runs, key=lambda r: r[0] + r[1])
    print(
        f"  headline: {total[0]:.2f}-{total[-1]:.2f} s over {len(runs)} runs "
        f"(best: survey {best[0]:.2f} s + turns {best[1]:.2f} s; "
        f"{placed}/{n_jobs} placed, {gpus} GPUs reserved)"
    )
    # The repair pass (and the second opinion, run only when capacity was short) against the
    # plain greedy, alternating in one run: the same-run ratio is the figure to compare.
    plain_runs, default_runs = [], []
    for _ in range(max(1, args.repeat)):
        t0 = time.perf_counter()
        plain = place(jobs, table, now=NOW, repair=False)
        t1 = time.perf_counter()
        plan = place(jobs, table, now=NOW)
        t2 = time.perf_counter()
        plain_runs.append(t1 - t0)
        default_runs.append(t2 - t1)
    ratios = sorted(d / g for d, g in zip(default_runs, plain_runs, strict=True))
    q = plan.quality
    print(
        f"  default (greedy + repair) vs plain greedy, same run: {min(default_runs):.2f} s vs "
        f"{min(plain_runs):.2f} s (best of {len(ratios)}); ratio per pair "
        f"{', '.join(f'{r:.2f}' for r in ratios)}; placed {len(plan.assignments)} vs "
        f"{len(plain.assignments)}; unplaced for capacity {q.unplaced_capacity}, fit nothing "
        f"{q.unplaced_no_fit}"
    )
    t0 = time.perf_counter()
    for u in plan.unplaced:
        _ = u.reason
    print(
        f"  reading the {len(plan.unplaced)} unplaced jobs' reasons (lazy, on first access): "
        f"{time.perf_counter() - t0:.2f} s"
    )
    t0 = time.perf_counter()
    for job in jobs:
        rank(job, table, k=1, now=NOW)
    floor = time.perf_counter() - t0
    print(
        f"  engine floor (rank() each job once, k=1): {floor:.2f} s; "
        f"placement = {total[0] / floor:.2f}x the floor"
    )
    print("  growth with jobs (nodes fixed):")
    for frac in (0.25, 0.5, 1.0):
        k = int(n_jobs * frac)
        s, p, _ = timed(jobs[:k], table)
        print(f"    {k:>5} jobs: {s:.2f} s  ({1e3 * s / k:.2f} ms/job, {p} placed)")
    print("  growth with nodes (jobs fixed):")
    for frac in (0.25, 0.5, 1.0):
        m = int(n_nodes * frac)
        s, p, _ = timed(jobs, table.take(range(m)))
        print(
            f"    {m:>7,} nodes: {s:.2f} s  ({1e9 * s / (m * n_jobs):.2f} ns/job-node, {p} placed)"
        )
    inst, short, worst = gap(60 if args.quick else 300)
    print(
        f"  default (greedy + repair) vs brute-force optimum on {inst} tiny instances "
        "(<= 8 nodes, <= 6 jobs): "
        f"short on {short} ({100 * short / inst:.1f} %), worst shortfall {worst} job(s)"
    )


if __name__ == "__main__":
    main()
