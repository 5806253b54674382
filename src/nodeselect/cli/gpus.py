"""`nodeselect gpus`: the GPU models in a fleet, like a catalogue.

One row per canonical GPU model: how many nodes carry it, how many GPUs of it there are, and
the range of free VRAM per GPU (GB). Names the registry does not know are listed as they were
reported, marked ``unknown``, so a new model shows up instead of vanishing.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs

from nodeselect.cli._common import EXIT_INPUT, EXIT_OK, fail
from nodeselect.cli._render import (
    SIMULATED_BANNER,
    Column,
    fleet_info,
    fleet_line,
    fmt_gb,
    is_terminal,
    print_note,
    print_table,
    redact,
    write_json,
)
from nodeselect.errors import NodeSelectError
from nodeselect.gpus import GPU_MODELS, canonical_node_gpu

if TYPE_CHECKING:  # the fetch layer (httpx, msgspec) loads only when a fleet is fetched
    from datetime import datetime

    from nodeselect.fetch import FetchedNode, LeanFetchedNode
    from nodeselect.table import NodeTable

__all__ = [
    "AVAILABLE_COUNTS",
    "AVAILABLE_SCHEMA",
    "GPUS_SCHEMA",
    "GpuModelRow",
    "GpuSighting",
    "available_now",
    "catalogue",
    "sightings",
]

#: The ``schema`` value of ``gpus --json``.
GPUS_SCHEMA: Final = "nodeselect.gpus/1"


@attrs.frozen
class GpuSighting:
    """One GPU on one node, as the catalogue sees it.

    Attributes:
        model: the canonical model name, or the reported name when ``known`` is false.
        known: whether the GPU registry recognised the reported name.
        vram_free_gb: free VRAM of this GPU in GB (2**30 bytes), or ``None`` when unknown.
        vram_total_gb: total VRAM of this GPU in GB, or ``None`` when unknown.
    """

    model: str
    known: bool = True
    vram_free_gb: float | None = None
    vram_total_gb: float | None = None


@attrs.frozen
class GpuModelRow:
    """One model in the catalogue.

    Attributes:
        model: canonical name (or the reported name when not recognised).
        known: whether the registry recognised it.
        nodes: nodes carrying at least one GPU of this model.
        gpus: GPUs of this model across the fleet.
        vram_free_min_gb / vram_free_max_gb: the range of free VRAM per GPU (GB), ``None`` when
            no GPU of the model reported it.
        vram_total_gb: the largest total VRAM reported for the model (GB), or ``None``.
    """

    model: str
    known: bool
    nodes: int
    gpus: int
    vram_free_min_gb: float | None
    vram_free_max_gb: float | None
    vram_total_gb: float | None

    def to_json(self) -> dict[str, object]:
        """The row as the ``gpus --json`` schema (docs/cli.md) spells it."""
        return {
            "model": self.model,
            "known": self.known,
            "nodes": self.nodes,
            "gpus": self.gpus,
            "vram_free_min_gb": self.vram_free_min_gb,
            "vram_free_max_gb": self.vram_free_max_gb,
            "vram_total_gb": self.vram_total_gb,
        }


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def catalogue(fleet: Iterable[Sequence[GpuSighting]]) -> list[GpuModelRow]:
    """Summarise the GPUs of a fleet (one sequence of sightings per node) by model.

    Rows are ordered by GPU count (most first), then by model name, so the output is stable.
    """
    acc: dict[tuple[str, bool], list[Any]] = {}
    for node in fleet:
        seen_here: set[tuple[str, bool]] = set()
        for g in node:
            key = (g.model, g.known)
            row = acc.setdefault(key, [0, 0, None, None, None])
            row[1] += 1
            if key not in seen_here:
                seen_here.add(key)
                row[0] += 1
            free = _finite(g.vram_free_gb)
            if free is not None:
                row[2] = free if row[2] is None else min(row[2], free)
                row[3] = free if row[3] is None else max(row[3], free)
            total = _finite(g.vram_total_gb)
            if total is not None:
                row[4] = total if row[4] is None else max(row[4], total)
    rows = [
        GpuModelRow(model, known, n, c, lo, hi, tot)
        for (model, known), (n, c, lo, hi, tot) in acc.items()
    ]
    rows.sort(key=lambda r: (-r.gpus, r.model, not r.known))
    return rows


def sightings(nodes: Iterable[FetchedNode | LeanFetchedNode]) -> Iterable[list[GpuSighting]]:
    """Each fetched node's GPUs as catalogue sightings (registry names where recognised)."""
    for node in nodes:
        out: list[GpuSighting] = []
        for g in node.lean.gpus or ():
            vmax = None if g.vram_gb_max is None else float(g.vram_gb_max)
            canonical = canonical_node_gpu(g.name, vmax)
            free = None if g.vram_gb_available is None else float(g.vram_gb_available)
            if canonical is None:
                raw = redact((g.name or "").strip()) or "(unnamed)"
                out.append(GpuSighting(raw, False, free, vmax))
            else:
                out.append(GpuSighting(canonical, True, free, vmax))
        yield out


def _known(fmt: str) -> int:
    """Print the GPU registry itself (no fleet needed)."""
    if fmt != "table":
        models = [
            {
                "model": m.canonical,
                "family": m.family,
                "vendor": m.vendor,
                "vram_gb": m.vram_gb,
                "aliases": list(m.aliases),
                "datacenter": m.datacenter,
            }
            for m in GPU_MODELS
        ]
        doc = {"schema": GPUS_SCHEMA, "fleet": None, "models": models}
        write_json(doc, indent=2 if fmt == "json" else None)
        return EXIT_OK
    cols = (Column("model"), Column("family"), Column("vendor"), Column("VRAM GB", "right"))
    rows = [
        [m.canonical, m.family, m.vendor, "-" if m.vram_gb is None else str(m.vram_gb)]
        for m in GPU_MODELS
    ]
    print_table(cols, rows, title="GPU models nodeselect knows (job files accept these names)")
    return EXIT_OK


#: The ``schema`` value of ``gpus --available --json``.
AVAILABLE_SCHEMA: Final = "nodeselect.gpus-available/1"
#: The GPU counts ``gpus --available`` reports, per model and continent.
AVAILABLE_COUNTS: Final = (1, 2, 4, 8)
#: How a node whose continent no filter proved is listed.
UNKNOWN_CONTINENT: Final = "unknown"


def available_now(table: NodeTable, *, now: datetime) -> list[dict[str, Any]]:
    """Per GPU model in ``table``: how many nodes could take 1, 2, 4, 8 GPUs of it now.

    A node counts for ``c`` when a job asking for ``c`` GPUs of the model (and nothing else:
    status AVAILABLE, not suspended or deleted, GPUs not reserved) ranks it feasible, i.e.
    exactly what ``rank`` would admit; each count is split by the node's proved continent.
    Models in registry order of most nodes first; each entry: ``model``, ``total`` (a count
    per entry of :data:`AVAILABLE_COUNTS`) and ``continents`` (continent -> counts).
    """
    import numpy as np  # noqa: PLC0415 - the command's heavy imports load when it runs

    from nodeselect.engine import rank_many  # noqa: PLC0415
    from nodeselect.jobs import GpuReq, Job  # noqa: PLC0415

    codes = np.unique(table.gpu_model_code[table.gpu_model_code > 0])
    models = [GPU_MODELS[int(c) - 1].canonical for c in codes]
    jobs = [
        Job(name=f"{m}:{c}", gpu=GpuReq(models=(m,), count=c))
        for m in models
        for c in AVAILABLE_COUNTS
    ]
    rankings = rank_many(jobs, table, k=0, now=now)
    vocab = [v or UNKNOWN_CONTINENT for v in table.continent_vocab]
    out: list[dict[str, Any]] = []
    for i, m in enumerate(models):
        per: dict[str, list[int]] = {}
        total: list[int] = []
        for j, _ in enumerate(AVAILABLE_COUNTS):
            rows = rankings[i * len(AVAILABLE_COUNTS) + j].feasible_indices
            total.append(len(rows))
            counts = np.bincount(table.continent_code[rows], minlength=len(vocab))
            for code in np.flatnonzero(counts):
                per.setdefault(vocab[code], [0] * len(AVAILABLE_COUNTS))[j] = int(counts[code])
        if total[0]:
            out.append({"model": m, "total": total, "continents": dict(sorted(per.items()))})
    out.sort(key=lambda e: (-e["total"][0], e["model"]))
    return out


def _available(args: argparse.Namespace) -> int:
    """``gpus --available``: per model, nodes able to give 1/2/4/8 GPUs now, per continent."""
    from nodeselect.cli._asof import evaluation_time, fleet_time_info  # noqa: PLC0415
    from nodeselect.cli._source import fleet_error, load_fleet, open_snapshot  # noqa: PLC0415
    from nodeselect.documents import CONTINENTS  # noqa: PLC0415
    from nodeselect.fetch import NodeQuery  # noqa: PLC0415
    from nodeselect.pipeline import merge_fetched  # noqa: PLC0415
    from nodeselect.table import NodeTable  # noqa: PLC0415

    queries = [
        NodeQuery(statuses=frozenset({"AVAILABLE"})),
        NodeQuery(statuses=frozenset({"AVAILABLE"}), continents=frozenset(CONTINENTS)),
    ]
    snapshot = None
    try:
        if args.snapshot:  # read a chunk at a time: never the whole fleet's documents
            snapshot = open_snapshot(args, queries[:1])
            results = [snapshot.header]
        else:
            results = [load_fleet(args, q) for q in queries]
    except NodeSelectError as exc:
        return fail(*fleet_error(exc, args))
    try:
        now = evaluation_time(args, results[0])
        nodes = merge_fetched(results) if snapshot is None else snapshot  # (read in chunks)
        table = NodeTable.from_nodes(nodes, now=now)
        entries = available_now(table, now=now)
    except NodeSelectError as exc:
        return fail(str(exc), EXIT_INPUT)
    fleet = {**fleet_info(args, results[0]), **fleet_time_info(results[0], now)}
    fleet["nodes"] = len(table)
    if args.format != "table":
        write_json(
            {
                "schema": AVAILABLE_SCHEMA,
                "fleet": fleet,
                "counts": list(AVAILABLE_COUNTS),
                "models": entries,
            },
            indent=2 if args.format == "json" else None,
        )
        return EXIT_OK
    out = sys.stdout
    term = is_terminal(out)
    if fleet["simulated"]:
        print_note(SIMULATED_BANNER, stream=out, terminal=term, style="bold yellow")
    print_note(fleet_line(fleet), stream=out, terminal=term)
    cols = (
        Column("model"),
        Column("continent"),
        *(Column(f"{c} GPU{'s' if c > 1 else ''}", "right") for c in AVAILABLE_COUNTS),
    )
    rows: list[list[str]] = []
    for e in entries:
        rows.append([e["model"], "all", *map(str, e["total"])])
        rows.extend(["", cont, *map(str, counts)] for cont, counts in e["continents"].items())
    title = "nodes that could take N GPUs of each model now (AVAILABLE, unreserved)"
    print_table(cols, rows, stream=out, terminal=term, title=title)
    return EXIT_OK


def _handle(args: argparse.Namespace) -> int:
    if args.known:
        return _known(args.format)
    if args.available:
        return _available(args)
    from nodeselect.cli._source import fleet_error, load_fleet, open_snapshot  # noqa: PLC0415
    from nodeselect.fetch import NodeQuery  # noqa: PLC0415

    try:
        if args.snapshot:  # read a chunk at a time: never the whole fleet's documents
            snapshot = open_snapshot(args, [NodeQuery()])
            result = snapshot.header
            rows = catalogue(sightings(n for chunk in snapshot.lean_chunks() for n in chunk))
            count = len(snapshot)
        else:
            result = load_fleet(args, NodeQuery())
            rows = catalogue(sightings(result.nodes))
            count = len(result.nodes)
    except NodeSelectError as exc:
        return fail(*fleet_error(exc, args))
    fleet = fleet_info(args, result, nodes=count)
    if args.format != "table":
        write_json(
            {
                "schema": GPUS_SCHEMA,
                "fleet": fleet,
                "models": [r.to_json() for r in rows],
            },
            indent=2 if args.format == "json" else None,
        )
        return EXIT_OK
    out = sys.stdout
    term = is_terminal(out)
    if fleet["simulated"]:
        print_note(SIMULATED_BANNER, stream=out, terminal=term, style="bold yellow")
    print_note(fleet_line(fleet), stream=out, terminal=term)
    cols = (
        Column("model"),
        Column("nodes", "right"),
        Column("GPUs", "right"),
        Column("free VRAM GB (min-max)", "right"),
        Column("VRAM GB", "right"),
    )
    table_rows = [
        [
            r.model if r.known else f"{r.model} (unknown)",
            str(r.nodes),
            str(r.gpus),
            "-"
            if r.vram_free_min_gb is None
            else f"{fmt_gb(r.vram_free_min_gb)}-{fmt_gb(r.vram_free_max_gb)}",
            fmt_gb(r.vram_total_gb),
        ]
        for r in rows
    ]
    print_table(cols, table_rows, stream=out, terminal=term, title="GPU models")
    return EXIT_OK
