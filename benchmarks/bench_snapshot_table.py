"""A node table from a sharded snapshot: loaded whole against read a chunk at a time.

Prints, for a simulated fleet saved as a sharded snapshot (default 100k nodes, 8 shards),
each way in a fresh process, in turns (no assertions; compare within a run):

* ``load_snapshot`` + ``NodeTable.from_fetch`` (what ``place --snapshot`` did): every
  node's document and parsed view held at once, then the table;
* ``NodeTable.from_snapshot(SnapshotNodes(dir))`` (what it does now): a chunk of 128
  lean nodes at a time (each line decoded once, no document kept), each chunk made columns
  before the next is read; then 200 nodes read back by index (the addresses placement
  fills in);
* when polars is installed, what a user might write instead: ``polars.read_ndjson`` of the
  same node lines (every field's type inferred; numbers that arrive as JSON strings in some
  dialects make their columns strings, and no column is derived yet);

each with its time, its peak RSS and the process's RSS before (imports), and a digest of
the table's columns, checked equal.

    python benchmarks/bench_snapshot_table.py [--nodes N] [--shards S] [--rounds R] [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import multiprocessing
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import msgspec
import numpy as np

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def make_snapshot(directory: Path, nodes: int, shards: int) -> None:
    """A simulated fleet, decoded as a fetch decodes it (pages of 50, the hidden facts
    proved), saved in ``shards`` shards."""
    from nodeselect.documents import ProvedFacts  # noqa: PLC0415 - (the children import apart)
    from nodeselect.fetch import (  # noqa: PLC0415
        FetchedNode,
        FetchResult,
        FetchStats,
        NodeQuery,
        save_sharded_snapshot,
    )
    from nodeselect.fetch._decode import decode_body  # noqa: PLC0415
    from nodeselect.sim import generate_fleet  # noqa: PLC0415

    fleet = generate_fleet(nodes, seed=21, now=NOW)
    enc = msgspec.json.Encoder()
    docs = [enc.encode(d) for d in fleet.documents()]
    out: list[FetchedNode] = []
    for a in range(0, len(docs), 50):
        body = b'{"data":[%s],"limit":50,"page":1,"total":%d}' % (
            b",".join(docs[a : a + 50]),
            len(docs),
        )
        for node in decode_body(body, ProvedFacts()).nodes:
            h = fleet.hidden(node.uuid)
            facts = ProvedFacts(status=h.status, compliance_tags=h.compliance_tags)
            out.append(FetchedNode(node.uuid, node.lean, node.raw, facts))
    result = FetchResult(
        nodes=tuple(out),
        rejected=(),
        stats=FetchStats(),
        query=NodeQuery(),
        fetched_at=NOW,
        source="bench",
    )
    save_sharded_snapshot(directory, result, shards)


def _hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _digest(table: Any) -> str:
    h = hashlib.sha256()
    for f in attrs.fields(type(table)):
        v = getattr(table, f.name)
        h.update(
            np.ascontiguousarray(v).tobytes() if isinstance(v, np.ndarray) else repr(v).encode()
        )
    return h.hexdigest()[:16]


def _polars_child(lines: str, out: Any) -> None:
    """What a user might write instead: polars reads the node lines (the headers dropped:
    they are not nodes) into a frame, every field's type inferred from all lines."""
    import polars as pl  # noqa: PLC0415 - in the child only

    base = _hwm_mb()
    t0 = time.perf_counter()
    # ignore_errors: the dialects' numbers arrive as JSON numbers and as strings; without it
    # the read stops ("cannot parse '6.0' (string) as f64"), with it they become strings
    frame = pl.read_ndjson(lines, infer_schema_length=None, ignore_errors=True)
    out.put(("polars", frame.height, time.perf_counter() - t0, base, _hwm_mb()))


def _child(mode: str, directory: str, out: Any) -> None:
    from nodeselect import NodeTable, load_snapshot  # noqa: PLC0415 - in the child only
    from nodeselect.fetch import SnapshotNodes  # noqa: PLC0415

    if mode == "polars":
        _polars_child(directory, out)
        return
    base = _hwm_mb()
    t0 = time.perf_counter()
    if mode == "whole":
        result = load_snapshot(directory)
        table = NodeTable.from_fetch(result, now=NOW)
        nodes: Any = result.nodes
    else:
        nodes = SnapshotNodes(directory)
        table = NodeTable.from_snapshot(nodes, now=NOW)
    built = time.perf_counter() - t0
    picks = np.linspace(0, len(table) - 1, 200).astype(int).tolist()
    t1 = time.perf_counter()
    addresses = [nodes[i].lean.ipv4_address for i in picks]
    back = time.perf_counter() - t1
    out.put(
        (
            mode,
            len(table),
            built,
            back,
            base,
            _hwm_mb(),
            _digest(table),
            hashlib.sha256(repr(addresses).encode()).hexdigest()[:16],
        )
    )


def run(mode: str, directory: str) -> tuple[Any, ...]:
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(mode, directory, q))
    p.start()
    got = q.get()
    p.join()
    return tuple(got)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="10k nodes, one round")
    args = parser.parse_args()
    if args.quick:
        args.nodes, args.rounds = 10_000, 1
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "fleet"
        t0 = time.perf_counter()
        make_snapshot(d, args.nodes, args.shards)
        size = sum(p.stat().st_size for p in d.iterdir()) / 2**20
        print(
            f"snapshot: {args.nodes:,} simulated nodes in {args.shards} shards, {size:,.0f} MB "
            f"on disk (made in {time.perf_counter() - t0:.1f} s)"
        )
        lines = None
        if importlib.util.find_spec("polars") is not None:
            lines = Path(tmp) / "lines.jsonl"  # the shards' node lines, for polars
            with lines.open("wb") as fh:
                for shard in sorted(d.glob("shard-*.jsonl")):
                    fh.write(shard.read_bytes().split(b"\n", 1)[1])
        for r in range(args.rounds):
            got = {}
            for mode in ("whole", "chunks") if r % 2 == 0 else ("chunks", "whole"):
                got[mode] = run(mode, str(d))
            (_, n, tw, bw, basew, peakw, dw, aw) = got["whole"]
            (_, _, tc, bc, basec, peakc, dc, ac) = got["chunks"]
            same = "equal" if (dw, aw) == (dc, ac) else "DIFFER"
            print(
                f"[{r + 1}] {n:,} nodes: load_snapshot + from_fetch {tw:.2f} s, peak RSS "
                f"{peakw:,.0f} MB; from_snapshot {tc:.2f} s, peak RSS {peakc:,.0f} MB "
                f"(imports: {basew:.0f} / {basec:.0f} MB): {(peakw - basew) / (peakc - basec):.1f}x"
                f" less memory above the imports ({(peakw - basew) * 1024 / n:.2f} against "
                f"{(peakc - basec) * 1024 / n:.2f} KB a node), {tw / tc:.2f}x the speed; 200 "
                f"nodes read back by index {bw * 1e3:.1f} / {bc * 1e3:.1f} ms; tables {same}"
            )
            if lines is not None:
                (_, rows, tp, basep, peakp) = run("polars", str(lines))
                print(
                    f"    polars.read_ndjson of the node lines (every type inferred, no "
                    f"columns derived): {rows:,} rows in {tp:.2f} s = {tp / tc:.1f}x "
                    f"from_snapshot's time, peak RSS {peakp:,.0f} MB (imports {basep:.0f} MB)"
                )


if __name__ == "__main__":
    main()
