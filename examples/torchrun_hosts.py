"""An ML launcher: place a multi-node training gang and print the torchrun command per node.

    python examples/torchrun_hosts.py

Runs against the embedded simulated fleet (addresses are simulated too). The gang asks for
``same = "country"``: a node's country is only known when a server-side filter proved it, so
the job lists the countries it accepts (``placement.countries``) and ``place_from`` fetches
with that filter.
"""

from __future__ import annotations

from pathlib import Path

import nodeselect
from nodeselect.sim import demo_server

JOB = Path(__file__).parent / "jobs" / "gang-training.toml"


def main() -> int:
    job = nodeselect.load_job(JOB)
    server = demo_server()
    try:
        with nodeselect.Client(server.url) as client:
            plan = nodeselect.place_from(client, [job], seed=0)
    finally:
        server.stop()
    if plan.unplaced:
        print(f"{job.name}: not placed: {plan.unplaced[0].reason}")
        return 1
    hosts = plan.hosts(job.name)
    print(f"{job.name}: {len(hosts)} nodes, {sum(g for _, g in hosts)} GPUs (simulated fleet)")
    envs = plan.launch_env(job.name, master_port=29500)
    for rank, ((address, gpus), args, env) in enumerate(
        zip(hosts, plan.torchrun_args(job.name, master_port=29500), envs, strict=True)
    ):
        print(f"# node {rank}: {address} ({gpus} GPU)")
        # torchrun cannot pick devices itself: pin it to the GPUs the plan reserved
        print(f"export CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']}")
        print("torchrun " + " ".join(args) + " train.py")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
