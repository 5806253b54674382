"""Node table build speed: NodeTable.from_nodes against the straightforward reference build.

Prints figures (no assertions; machines are noisy, compare ratios within one run), among them
the build with its optional C reader against the pure-Python build (``NODESELECT_PURE_PYTHON``
switched on in-process), side by side. For scale,
the same run times ``json.loads`` and the lean msgspec decode of the same documents. Each
figure is the best of ``--repeat`` rounds; rounds interleave the contenders so load changes
hit them alike, and the range over rounds is printed too. Beside wall time, each contender's
CPU time (``time.thread_time``, best of the rounds) and the load average are printed: on a
shared machine the CPU-time ratios are the steadier ones.

    python benchmarks/bench_build.py [--nodes 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import attrs
import msgspec

from nodeselect.documents._facts import ProvedFacts
from nodeselect.documents._lean import LeanNode, decode_node
from nodeselect.sim import generate_fleet
from nodeselect.table import _build
from nodeselect.table._table import NodeTable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "oracles"))
from nodeselect.fetch._decode import decode_body
from previous_build import previous_build_table
from reference_table import reference_from_nodes

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@attrs.frozen
class Node:
    lean: LeanNode
    facts: ProvedFacts


def documents(n: int) -> tuple[list[bytes], list[Node]]:
    """Encoded simulator documents and their lean decodes with the simulator's hidden facts."""
    fleet = generate_fleet(n, seed=7, now=NOW)
    enc = msgspec.json.Encoder()
    raws, nodes = [], []
    for doc in fleet.documents():
        raw = enc.encode(doc)
        try:
            lean = decode_node(raw)
        except msgspec.ValidationError:
            continue  # the simulator's deliberately malformed documents
        h = fleet.hidden(lean.uuid)
        facts = ProvedFacts(
            status=h.status,
            compliance_tags=h.compliance_tags,
            continent=h.continent,
            country=h.country,
            subdivision=h.subdivision,
        )
        raws.append(raw)
        nodes.append(Node(lean, facts))
    return raws, nodes


def pure_python(fn: Callable[[], object]) -> object:
    """``fn()`` with the table build's pure-Python reader (as without the C extension)."""
    saved, _build._cbuild = _build._cbuild, None
    try:
        return fn()
    finally:
        _build._cbuild = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    raws, nodes = documents(args.nodes)
    n = len(nodes)
    now_s = NOW.timestamp()
    pages = [
        b'{"data":[%s],"limit":50,"page":1,"total":%d}' % (b",".join(raws[a : a + 50]), n)
        for a in range(0, n, 50)
    ]
    fetched = [node for body in pages for node in decode_body(body, ProvedFacts()).nodes]
    contenders: dict[str, Callable[[], object]] = {
        "json.loads (scale)": lambda: [json.loads(r) for r in raws],
        "lean decode (scale)": lambda: [decode_node(r) for r in raws],
        "reference build": lambda: reference_from_nodes(nodes, now_s),
        "previous builder": lambda: previous_build_table(nodes, now_s),
        "NodeTable.from_nodes": lambda: NodeTable.from_nodes(nodes, now=NOW),
        "from_nodes, pure Python": lambda: pure_python(
            lambda: NodeTable.from_nodes(nodes, now=NOW)
        ),
        "fetch-decoded nodes": lambda: NodeTable.from_nodes(fetched, now=NOW),
        "decode pages + build": lambda: NodeTable.from_nodes(
            [node for body in pages for node in decode_body(body, ProvedFacts()).nodes], now=NOW
        ),
    }
    times: dict[str, list[float]] = {k: [] for k in contenders}
    cpu: dict[str, list[float]] = {k: [] for k in contenders}
    loads = [os.getloadavg()[0]]
    for _ in range(args.repeat):
        for name, fn in contenders.items():
            gc.collect()
            c0, t0 = time.thread_time(), time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.thread_time() - c0)
        loads.append(os.getloadavg()[0])
    print(
        f"{n:,} simulator nodes, best of {args.repeat} interleaved rounds (range over rounds); "
        f"load average {min(loads):.2f}-{max(loads):.2f} on {os.cpu_count()} CPUs; C reader "
        + ("built" if _build._cbuild is not None else "NOT built (both rows are pure Python)")
    )
    for name, ts in times.items():
        best, worst = min(ts), max(ts)
        print(
            f"  {name:22s} {n / best:9,.0f} nodes/s  {best / n * 1e6:6.2f} us/node"
            f"  (range {n / worst:,.0f}-{n / best:,.0f} nodes/s; CPU time "
            f"{n / min(cpu[name]):,.0f} nodes/s)"
        )
    for what, ts in (("wall", times), ("CPU", cpu)):
        fast = min(ts["NodeTable.from_nodes"])
        ref, prev = min(ts["reference build"]), min(ts["previous builder"])
        print(
            f"  from_nodes speedup ({what} time): {ref / fast:.2f}x the reference build, "
            f"{prev / fast:.2f}x the previous builder (834324c); target >= 200,000 nodes/s "
            f"({n / fast / 200_000:.2f} of it)"
        )
    for what, ts in (("wall", times), ("CPU", cpu)):
        fast, pure = min(ts["NodeTable.from_nodes"]), min(ts["from_nodes, pure Python"])
        print(
            f"  C reader vs pure Python ({what} time): {pure / fast:.2f}x "
            f"({n / fast:,.0f} vs {n / pure:,.0f} nodes/s)"
        )


if __name__ == "__main__":
    main()
