"""A scheduler's loop: place a whole queue of jobs in one call, re-check, then commit.

Runs against the embedded simulated fleet (no API key, nothing leaves the machine):

    python examples/scheduler_loop.py

Against the real API, replace the demo server by ``nodeselect.Client()`` (key from
``$NODESELECT_API_KEY``).
"""

from __future__ import annotations

from pathlib import Path

import nodeselect
from nodeselect.sim import demo_server

QUEUE = Path(__file__).parent / "jobs" / "queue.toml"


def fetch_fleet(client: nodeselect.Client, jobs: tuple[nodeselect.Job, ...]) -> list:
    """The fleet with every fact the jobs need proved (one fetch per distinct job query)."""
    results = [client.fetch(q, strict=True) for q in nodeselect.fleet_queries(jobs)]
    return nodeselect.merge_fetched(results)


def main() -> int:
    jobs = nodeselect.load_jobs(QUEUE)
    server = demo_server()  # a local simulated fleet (seed 7)
    try:
        with nodeselect.Client(server.url) as client:
            nodes = fetch_fleet(client, jobs)
            plan = nodeselect.place_from(nodes, jobs, seed=0)

            print(f"queue of {len(jobs)} jobs on {len(nodes)} simulated nodes")
            for a in plan.assignments:
                where = ", ".join(f"{r.node_name} gpus={list(r.gpu_indices)}" for r in a.replicas)
                head = f"  placed   {a.job_name:<16} prio {a.priority:>3}"
                print(f"{head}  score {a.score:.3f}  {where}")
            for u in plan.unplaced:
                print(f"  waiting  {u.job_name:<16} prio {u.priority:>3}  {u.reason}")
            t = plan.totals
            print(
                f"  totals: {t.gpus_used} GPUs on {t.nodes_used} nodes, "
                f"{t.free_gpus_left} GPUs free, {t.stranded_gpus} stranded"
            )

            # Just before committing, re-check the plan against a fresher fleet.
            problems = plan.validate(fetch_fleet(client, jobs))
            if problems:
                for p in problems:
                    print(f"  re-plan  {p.job_name}: replica {p.replica} {p.kind} ({p.detail})")
                return 1
            print("  plan still fits the fresh fleet: commit")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
