"""Ordered fallbacks: what trying alternatives in order costs, as ratios within one run.

* rank: a job whose first two alternatives fit nowhere, against ranking its third as a plain
  job (at most ~3x: each alternative is one rank, but one with no feasible node stops after
  the node-level masks, so less), and a job whose first alternative fits (~1x);
* place: a batch where every other job has a first alternative that fits nowhere, against
  placing the alternatives it ends with as plain jobs (each round is one full placement, so
  expected ~ the number of rounds).

Figures only, no assertions; machines are noisy, compare ratios within one run.

    python benchmarks/bench_alternatives.py [--quick] [--repeat N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime

from nodeselect.engine import rank
from nodeselect.jobs import Alternative, GpuReq, Job
from nodeselect.placement import place
from nodeselect.table import NodeTable

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
NOWHERE = GpuReq(models=("H100-80GB",), count=64)
LAST = GpuReq(models=("RTX-4090",), count=1)


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (CI smoke run)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best shown)")
    args = parser.parse_args()
    n_nodes = 20_000 if args.quick else 100_000
    n_jobs = 40 if args.quick else 200
    rep = max(1, args.repeat)
    table = NodeTable.synthetic(n_nodes, seed=3, now=NOW)
    print(f"bench_alternatives: {n_nodes:,} synthetic nodes, best of {rep}")

    plain = Job(name="plain", gpu=LAST)
    third = Job(
        name="third",
        alternatives=(
            Alternative(gpu=NOWHERE),
            Alternative(gpu=GpuReq(models=("H100-80GB",), count=32)),
            Alternative(gpu=LAST),
        ),
    )
    first = Job(name="first", alternatives=(Alternative(gpu=LAST), Alternative(gpu=NOWHERE)))
    assert rank(third, table, now=NOW).alternative == 2
    t_plain = best_of(lambda: rank(plain, table, k=10, now=NOW), rep)
    t_third = best_of(lambda: rank(third, table, k=10, now=NOW), rep)
    t_first = best_of(lambda: rank(first, table, k=10, now=NOW), rep)
    print(
        f"  rank: plain {t_plain * 1e3:.1f} ms; 3rd of 3 alternatives {t_third * 1e3:.1f} ms "
        f"({t_third / t_plain:.2f}x); 1st of 2 {t_first * 1e3:.1f} ms ({t_first / t_plain:.2f}x)"
    )

    sizes = (LAST, GpuReq(count=2), GpuReq(models=("A100-80GB",), count=1), GpuReq(count=4))
    jobs = []
    for i in range(n_jobs):
        g = sizes[i % len(sizes)]
        if i % 2:
            jobs.append(
                Job(name=f"j{i}", alternatives=(Alternative(gpu=NOWHERE), Alternative(gpu=g)))
            )
        else:
            jobs.append(Job(name=f"j{i}", gpu=g))
    plan = place(jobs, table, now=NOW)
    chosen = list(plan.jobs)
    t_alt = best_of(lambda: place(jobs, table, now=NOW), rep)
    t_chosen = best_of(lambda: place(chosen, table, now=NOW), rep)
    print(
        f"  place {n_jobs} jobs (half with a first alternative that fits nowhere): "
        f"{t_alt:.2f} s vs the chosen alternatives as plain jobs {t_chosen:.2f} s "
        f"({t_alt / t_chosen:.2f}x; 2 rounds expected)"
    )


if __name__ == "__main__":
    main()
