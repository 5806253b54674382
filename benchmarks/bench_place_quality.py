"""Placement quality on contended batches: plain greedy, the default (greedy + repair + second
opinion) and the exact optimum (HiGHS, ``objective="optimal"``), side by side.

Instances are generated the way ``bench_place.py`` generates its batch (``make_jobs``) onto
``NodeTable.synthetic`` fleets small enough that capacity is short: 200 jobs x 500 nodes and
500 x 1,000, one seed per instance (the job seed and the fleet seed). Prints, per instance,
placed jobs and seconds for each mode, the default's share of the optimum, the solver's status
and gap, and the same-run ratio default time / greedy time. Figures only, no assertions.

    python benchmarks/bench_place_quality.py [--quick] [--seeds N] [--big-seeds N] [--time-limit S]

Needs ``highspy`` (``pip install "nodeselect[optimal]"``) for the optimum column; without it
only greedy and default are printed. ``--quick`` (CI smoke run): one 200 x 500 instance.
"""

from __future__ import annotations

import argparse
import importlib.util
import time

from bench_place import NOW, make_jobs

from nodeselect.placement._placer import place
from nodeselect.table._table import NodeTable

HAVE_SOLVER = importlib.util.find_spec("highspy") is not None


def run(n_jobs: int, n_nodes: int, seed: int, time_limit: float) -> tuple[str, float, float]:
    """One instance: print its line; return (line, default share of optimum, time ratio)."""
    table = NodeTable.synthetic(n_nodes, seed=seed, now=NOW)
    jobs = make_jobs(n_jobs, seed=seed)
    t0 = time.perf_counter()
    greedy = place(jobs, table, now=NOW, repair=False)
    t1 = time.perf_counter()
    default = place(jobs, table, now=NOW)
    t2 = time.perf_counter()
    if not HAVE_SOLVER:
        line = (
            f"  {n_jobs:>4} x {n_nodes:<5} seed {seed}: greedy {len(greedy.assignments):>4} "
            f"({t1 - t0:.2f} s)  default {len(default.assignments):>4} ({t2 - t1:.2f} s, "
            f"{(t2 - t1) / (t1 - t0):.1f}x greedy)  optimal: highspy not installed"
        )
        print(line, flush=True)
        return line, 1.0, (t2 - t1) / (t1 - t0)
    exact = place(jobs, table, now=NOW, objective="optimal", time_limit=time_limit)
    t3 = time.perf_counter()
    q = exact.quality.solver
    assert q is not None
    best = len(exact.assignments)
    share = len(default.assignments) / best if best else 1.0
    ratio = (t2 - t1) / (t1 - t0)
    bad = default.validate(table, now=NOW) or exact.validate(table, now=NOW)
    line = (
        f"  {n_jobs:>4} x {n_nodes:<5} seed {seed}: greedy {len(greedy.assignments):>4} "
        f"({t1 - t0:.2f} s)  default {len(default.assignments):>4} ({t2 - t1:.2f} s, "
        f"{ratio:.1f}x greedy)  optimal {best:>4} ({t3 - t2:.1f} s, {q.status}, gap "
        f"{q.gap:.4f}, model {q.columns} cols x {q.rows} rows)  default/optimal "
        f"{100 * share:.1f} %  capacity/no-fit unplaced {default.quality.unplaced_capacity}/"
        f"{default.quality.unplaced_no_fit}{'  INVALID' if bad else ''}"
    )
    print(line, flush=True)
    return line, share, ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds of 200 x 500 (default 5)")
    parser.add_argument("--big-seeds", type=int, default=5, help="seeds of 500 x 1,000")
    parser.add_argument("--time-limit", type=float, default=120.0, help="solver seconds each")
    parser.add_argument("--quick", action="store_true", help="one 200 x 500 instance (CI)")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.big_seeds, args.time_limit = 1, 0, 30.0
    print("bench_place_quality: placed jobs, plain greedy / default / optimal (same run)")
    for n_jobs, n_nodes, seeds in ((200, 500, args.seeds), (500, 1_000, args.big_seeds)):
        shares = []
        for seed in range(seeds):
            _, share, _ = run(n_jobs, n_nodes, seed, args.time_limit)
            shares.append(share)
        if shares:
            low = sum(1 for s in shares if s < 0.98)
            print(
                f"  {n_jobs} x {n_nodes}: default places {100 * min(shares):.1f}-"
                f"{100 * max(shares):.1f} % of the optimum over {len(shares)} seeds "
                f"({low} below 98 %)"
            )


if __name__ == "__main__":
    main()
