"""A placement dry run: place every example job at once on a fleet and print a report.

Nothing is launched. The report says, per job, which nodes (and which GPU indices) it would
get and with what score; for a job that cannot be placed, why not; and at the end, what the
batch uses and leaves (including GPUs stranded by fragmentation).

    python examples/dry_run_report.py                   # on the embedded SIMULATED demo fleet
    python examples/dry_run_report.py --api URL         # on a real API (NODESELECT_API_KEY)
    python examples/dry_run_report.py --jobs a.toml b.toml --seed 3

Exit status: 0 when every job was placed, 1 when some job was not.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nodeselect
from nodeselect.sim import demo_server

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", metavar="URL", help="a real List Nodes API (default: demo)")
    parser.add_argument("--jobs", nargs="+", type=Path, help="job files (default: examples/jobs)")
    parser.add_argument("--seed", type=int, default=0, help="tie-break seed")
    args = parser.parse_args(argv)

    files = args.jobs or sorted((HERE / "jobs").glob("*.toml"))
    jobs = [job for f in files for job in nodeselect.load_jobs(f)]
    names = [j.name for j in jobs]
    jobs = [j for i, j in enumerate(jobs) if j.name not in names[:i]]  # names must be unique

    server = None if args.api else demo_server()
    try:
        url = args.api or server.url  # type: ignore[union-attr]
        with nodeselect.Client(url) as client:
            # One fetch per distinct server-side query, so each job's status, geography and
            # compliance facts are proved (a fact no filter proved counts as unknown).
            results = [client.fetch(q, strict=True) for q in nodeselect.fleet_queries(jobs)]
    finally:
        if server is not None:
            server.stop()
    nodes = nodeselect.merge_fetched(results)
    plan = nodeselect.place_from(nodes, jobs, seed=args.seed)

    label = "SIMULATED demo fleet" if server is not None else f"fleet at {url}"
    print(f"dry run of {len(jobs)} jobs on the {label}: {len(nodes)} nodes")
    print()
    for a in plan.assignments:
        print(f"PLACED   {a.job_name}  (priority {a.priority}, score {a.score:.3f}, {a.gpus} GPUs)")
        for rank, r in enumerate(a.replicas):
            gpus = ",".join(str(i) for i in r.gpu_indices) or "none"
            print(
                f"    replica {rank}: node {r.node_name or r.node_uuid}  gpus [{gpus}]  "
                f"score {r.score:.3f}"
            )
    for u in plan.unplaced:
        print(f"UNPLACED {u.job_name}  (priority {u.priority}): {u.reason}")
    t = plan.totals
    print()
    print(
        f"placed {t.jobs_placed}/{t.jobs_placed + t.jobs_unplaced} jobs on {t.nodes_used} nodes, "
        f"{t.gpus_used} GPUs used, {t.free_gpus_left} GPUs left free, "
        f"{t.stranded_gpus} stranded"
    )
    return 0 if not plan.unplaced else 1


if __name__ == "__main__":
    sys.exit(main())
