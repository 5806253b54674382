"""Costs issue 12 added to the data path, as same-run ratios (no assertions; noisy machines).

* the uuid-uniqueness check of ``NodeTable.from_nodes`` against the build without it
  (``build_table``), on simulator documents;
* ``NodeTable.to_arrow`` against the table build, and on a large synthetic table;
* the argument checks at the top of ``rank`` against a warm ``rank`` call.

Each figure is the best of ``--repeat`` interleaved rounds.

    python benchmarks/bench_data_out.py [--nodes 20000] [--big 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime

import attrs
import msgspec

from nodeselect.documents._facts import ProvedFacts
from nodeselect.documents._lean import LeanNode, decode_node
from nodeselect.engine._boundary import check_job_arg, check_k_arg, check_table_arg, checked_now
from nodeselect.engine._rank import rank
from nodeselect.jobs import GpuReq, Job
from nodeselect.sim import generate_fleet
from nodeselect.table._build import build_table
from nodeselect.table._table import NodeTable

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@attrs.frozen
class Node:
    lean: LeanNode
    facts: ProvedFacts


def nodes(n: int) -> list[Node]:
    fleet = generate_fleet(n, seed=7, now=NOW)
    enc = msgspec.json.Encoder()
    out = []
    for doc in fleet.documents():
        try:
            lean = decode_node(enc.encode(doc))
        except msgspec.ValidationError:
            continue
        h = fleet.hidden(lean.uuid)
        out.append(Node(lean, ProvedFacts(status=h.status, continent=h.continent)))
    return out


def best(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: min(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20_000)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2,000 nodes, 100k synthetic")
    a = parser.parse_args()
    n, big = (2_000, 100_000) if a.quick else (a.nodes, a.big)
    fleet = nodes(n)
    table = NodeTable.from_nodes(fleet, now=NOW)
    now_s = NOW.timestamp()
    t = best(
        {
            "from_nodes (checked)": lambda: NodeTable.from_nodes(fleet, now=NOW),
            "build_table (unchecked)": lambda: build_table(fleet, now_s, None),
            "to_arrow": table.to_arrow,
        },
        a.repeat,
    )
    print(f"{len(fleet)} simulator nodes, best of {a.repeat}:")
    for k, v in t.items():
        print(f"  {k:<26} {v * 1e3:9.2f} ms")
    base = t["build_table (unchecked)"]
    print(f"  uniqueness check overhead: x{t['from_nodes (checked)'] / base:.3f} of the build")
    print(f"  to_arrow / build:          x{t['to_arrow'] / base:.3f}")
    syn = NodeTable.synthetic(big, seed=1, now=NOW)
    job = Job(gpu=GpuReq(count=1))
    rank(job, syn, k=10, now=NOW)  # warm the derived columns

    def checks() -> None:
        check_job_arg(job, "rank")
        check_table_arg(syn, "rank")
        check_k_arg(10, "rank")
        checked_now(NOW, "rank")

    s = best(
        {
            "to_arrow": syn.to_arrow,
            "rank (warm)": lambda: rank(job, syn, k=10, now=NOW),
            "boundary checks x1000": lambda: [checks() for _ in range(1000)],
        },
        a.repeat,
    )
    print(f"{big} synthetic nodes, best of {a.repeat}:")
    for k, v in s.items():
        print(f"  {k:<26} {v * 1e3:9.2f} ms")
    per_call = s["boundary checks x1000"] / 1000
    print(f"  boundary checks / warm rank: x{per_call / s['rank (warm)']:.5f}")


if __name__ == "__main__":
    main()
