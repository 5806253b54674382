"""Two training jobs share one GPU node, each launched on its own reserved GPUs.

    python examples/torchrun_two_jobs.py

Runs against the embedded simulated fleet (addresses are simulated too). It picks a node with
four free GPUs, pins two 2-GPU jobs to it (``placement.only_nodes``) and places them in one
batch: placement reserves GPUs by index, so the jobs get disjoint GPUs, and
``Plan.launch_env`` / ``Plan.torchrun_commands`` pass each job its own
``CUDA_VISIBLE_DEVICES`` (torchrun has no flag that selects devices: without it, both jobs
would start on GPUs 0 and 1).
"""

from __future__ import annotations

import nodeselect
from nodeselect.jobs import GpuReq, PlacementReq
from nodeselect.sim import demo_server


def main() -> int:
    server = demo_server()
    try:
        with nodeselect.Client(server.url) as client:
            probe = nodeselect.Job(name="probe", gpu=GpuReq(count=4))
            fleet = client.fetch(nodeselect.NodeQuery.from_job(probe))
    finally:
        server.stop()
    table = nodeselect.NodeTable.from_nodes(fleet.nodes)
    best = nodeselect.rank(probe, table, k=1)
    if not best.top:
        print("no node with 4 free GPUs in the demo fleet")
        return 1
    node = best.top[0].uuid
    jobs = [
        nodeselect.Job(name=name, gpu=GpuReq(count=2), placement=PlacementReq(only_nodes=(node,)))
        for name in ("train-a", "train-b")
    ]
    plan = nodeselect.place_from(fleet, jobs, seed=0)
    if plan.unplaced:
        for u in plan.unplaced:
            print(f"{u.job_name}: not placed: {u.reason}")
        return 1
    print(f"node {node} (simulated fleet) runs {len(jobs)} jobs:")
    for job in jobs:
        env = plan.launch_env(job.name)[0]
        (command,) = plan.torchrun_commands(job.name, "train.py")
        print(f"# {job.name}: CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']}")
        print(" ".join(command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
