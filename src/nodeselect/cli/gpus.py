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

from nodeselect.cli._common import EXIT_OK, fail
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
    from nodeselect.fetch import FetchedNode

__all__ = ["GPUS_SCHEMA", "GpuModelRow", "GpuSighting", "catalogue", "sightings"]

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


def sightings(nodes: Iterable[FetchedNode]) -> Iterable[list[GpuSighting]]:
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


def _handle(args: argparse.Namespace) -> int:
    if args.known:
        return _known(args.format)
    from nodeselect.cli._source import fleet_error, load_fleet  # noqa: PLC0415
    from nodeselect.fetch import NodeQuery  # noqa: PLC0415

    try:
        result = load_fleet(args, NodeQuery())
    except NodeSelectError as exc:
        return fail(*fleet_error(exc, args))
    rows = catalogue(sightings(result.nodes))
    fleet = fleet_info(args, result)
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
