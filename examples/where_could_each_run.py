"""Where could each job run? Rank every example job on the fleet at once, each on its own.

Unlike a placement (`dry_run_report.py`), jobs do not compete here: each job's best nodes are
ranked as if it were alone, with `nodeselect.rank_many` (one pass for the whole batch, the
same results as calling `nodeselect.rank` per job). Useful to see, before placing, which jobs
have many homes and which have few.

    python examples/where_could_each_run.py                 # on the SIMULATED demo fleet
    python examples/where_could_each_run.py --api URL --top 5

Exit status: 0 when every job fits somewhere, 1 when some job fits nowhere.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nodeselect
from nodeselect.sim import demo_server

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", metavar="URL", help="a real List Nodes API (default: demo)")
    parser.add_argument("--top", type=int, default=3, help="nodes to show per job")
    args = parser.parse_args(argv)

    jobs = [j for f in sorted((HERE / "jobs").glob("*.toml")) for j in nodeselect.load_jobs(f)]
    server = None if args.api else demo_server()
    try:
        with nodeselect.Client(args.api or server.url) as client:  # type: ignore[union-attr]
            # one fetch per distinct pushed-down query, so every job's facts are proved
            results = [client.fetch(q, strict=True) for q in nodeselect.fleet_queries(jobs)]
    finally:
        if server is not None:
            server.stop()
    table = nodeselect.NodeTable.from_nodes(nodeselect.merge_fetched(results))

    rankings = nodeselect.rank_many(jobs, table, k=args.top)
    label = "SIMULATED demo fleet" if server is not None else "fleet"
    print(f"{len(jobs)} jobs ranked at once on the {label} ({len(table)} nodes)")
    for job, ranking in zip(jobs, rankings, strict=True):
        print(f"\n{job.name}: {ranking.explanation.summary()}")
        for node in ranking.top:
            gpus = ",".join(map(str, node.gpu_indices)) or "none"
            print(f"    {node.name or node.uuid}  score {node.score:.3f}  gpus [{gpus}]")
    return 0 if all(r.feasible for r in rankings) else 1


if __name__ == "__main__":
    raise SystemExit(main())
