"""`nodeselect nodes`: list the nodes matching server-side filters, or save them as a snapshot.

Every filter of the List Nodes API has a flag. ``--status``, ``--continent``, ``--country``,
``--subdivision``, ``--name``, ``--uuid`` and ``--operator`` may be repeated (any of);
``--compliance`` may be repeated (all of). Output: a table (default), ``json`` (an array) or
``jsonl`` (one ``{"document": ..., "nodeselect": {proved facts}}`` per line). Operator e-mails,
IP addresses and wallets are hidden unless ``--show-private``; ``--out FILE`` saves a full
snapshot (documents exactly as received) for ``--snapshot FILE`` later; ``--out DIR --shards N``
saves it as N shard files and a manifest (``--snapshot DIR`` reads them all).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

import attrs

from nodeselect.cli._common import (
    EXIT_INPUT,
    EXIT_NO_FIT,
    EXIT_OK,
    EXIT_OUTPUT,
    fail,
    json_safe,
    note,
    plural,
    terminal_safe,
    warn,
)
from nodeselect.cli._output import OutWriteError, check_out_target, write_atomically
from nodeselect.cli._render import Column, print_table, private_fields, redact
from nodeselect.cli._source import fleet_error, load_fleet
from nodeselect.errors import InputError, NodeSelectError, SnapshotError
from nodeselect.fetch import (
    FetchedNode,
    FetchResult,
    NodeQuery,
    node_line,
    parse_time_range,
    save_sharded_snapshot,
    save_snapshot,
)

__all__ = ["query_from_args", "run"]


def query_from_args(args: argparse.Namespace) -> NodeQuery:
    """The :class:`NodeQuery` the filter flags describe (raises QueryError)."""
    return NodeQuery(
        statuses=args.status,
        continents=args.continent,
        countries=args.country,
        subdivisions=args.subdivision,
        compliance=args.compliance,
        names=args.name,
        uuids=args.uuid,
        operators=args.operator,
        created_between=(
            None
            if args.created_between is None
            else parse_time_range(args.created_between, "--created-between")
        ),
        seen_between=(
            None
            if args.seen_between is None
            else parse_time_range(args.seen_between, "--seen-between")
        ),
        include_deleted=args.include_deleted,
    )


def _gpus(node: FetchedNode) -> str:
    gpus = node.lean.gpus or []
    if not gpus:
        return "-"
    names: dict[str, int] = {}
    for g in gpus:
        key = g.name or "?"
        names[key] = names.get(key, 0) + 1
    return ", ".join(f"{n}x {name}" for name, n in names.items())


def _where(node: FetchedNode) -> str:
    f = node.facts
    parts = [p for p in (f.continent, f.subdivision or f.country) if p]
    return "/".join(parts) or "?"


def _private_cells(node: FetchedNode) -> list[str]:
    lean = node.lean
    address = lean.ipv4_address or lean.ipv6_address or "-"
    email = private_fields(node.raw).get("operator_email") or "-"
    return [str(address), str(email)]


def _table(result: FetchResult, personal: bool) -> None:
    columns = [
        Column("uuid", keep=8),
        Column("name", keep=9),
        Column("status", keep=6),
        Column("where", keep=5),
        Column("gpus", keep=7),
        Column("reputation", "right", keep=4),
        Column("last_seen_at", keep=3),
    ]
    if personal:
        columns += [Column("address", keep=2), Column("operator e-mail", keep=2)]
    rows = []
    for n in result.nodes:
        lean = n.lean
        row = [
            n.uuid,
            lean.name or "-",
            n.facts.status or "?",
            _where(n),
            _gpus(n),
            "-" if lean.reputation is None else f"{lean.reputation:g}",
            lean.last_seen_at or "-",
        ]
        if personal:
            row += _private_cells(n)
        rows.append(row if personal else [redact(c) for c in row])
    count = plural(len(rows), "node")
    print_table(columns, rows, title=f"{count} from {terminal_safe(result.source)}")


def _write_json_lines(result: FetchResult, personal: bool, out: TextIO) -> None:
    """One ``{"document", "nodeselect"}`` line per node, written (and flushed) as it goes.

    Written node by node so a per-page fetch hook can call it for each page as it arrives.
    """
    for node in result.nodes:
        line = json_safe(node_line(node).decode("utf-8", "replace"))
        out.write((line if personal else redact(line)) + "\n")


def _write_json_array(result: FetchResult, personal: bool, out: TextIO) -> None:
    text = json_safe(json.dumps([n.to_json() for n in result.nodes], indent=2))
    out.write((text if personal else redact(text)) + "\n")


# ------------------------------------------------------------------ filters on a snapshot
def _fact_filter(
    nodes: list[FetchedNode], flag: str, wanted: frozenset[str], fact: str
) -> list[FetchedNode]:
    if not wanted:
        return nodes
    unknown = sum(1 for n in nodes if getattr(n.facts, fact) is None)
    if unknown:
        raise InputError(
            f"{flag}: the snapshot does not record the {fact} of {plural(unknown, 'node')} "
            f"(the API proves it only when filtering); save the snapshot with the filter, "
            f"e.g. `nodeselect nodes {flag} ... --out FILE`, or fetch with --api/--demo"
        )
    return [n for n in nodes if getattr(n.facts, fact) in wanted]


def filter_snapshot(result: FetchResult, query: NodeQuery) -> FetchResult:
    """The nodes of a snapshot that ``query`` selects, checked locally.

    Names, uuids, operators and deleted nodes are read from the documents; status, geography
    and compliance tags only from what the snapshot's own fetch proved (a node with the fact
    unknown makes the filter an error, never a silent guess). Time ranges are refused.

    Raises:
        InputError: a filter that cannot be applied to this snapshot (the flag named).
    """
    if query.created_between is not None or query.seen_between is not None:
        raise InputError(
            "--created-between/--seen-between: cannot be applied to a snapshot; fetch with "
            "--api or --demo, or save the snapshot with the range"
        )
    nodes = list(result.nodes)
    if query.names:
        nodes = [n for n in nodes if n.lean.name in query.names]
    if query.uuids:
        nodes = [n for n in nodes if n.uuid in query.uuids]
    if query.operators:
        nodes = [n for n in nodes if n.lean.operator_account_uuid in query.operators]
    statuses = query.statuses
    if not (query.include_deleted or "DELETED" in statuses):
        nodes = [n for n in nodes if n.lean.deleted_at is None and n.facts.status != "DELETED"]
    if statuses == frozenset({"DELETED"}):
        nodes = [n for n in nodes if n.lean.deleted_at is not None or n.facts.status == "DELETED"]
    elif statuses:
        nodes = _fact_filter(nodes, "--status", statuses, "status")
    nodes = _fact_filter(nodes, "--continent", query.continents, "continent")
    nodes = _fact_filter(nodes, "--country", query.countries, "country")
    nodes = _fact_filter(nodes, "--subdivision", query.subdivisions, "subdivision")
    for tag in sorted(query.compliance):
        missing = [n for n in nodes if tag not in n.facts.compliance_tags]
        if missing and len(missing) == len(nodes):
            raise InputError(
                f"--compliance {tag}: the snapshot proves that tag for none of its nodes "
                "(the API proves tags only when filtering); save the snapshot with "
                f"--compliance {tag}, or fetch with --api/--demo"
            )
        nodes = [n for n in nodes if tag in n.facts.compliance_tags]
    if len(nodes) == len(result.nodes):
        return result
    return attrs.evolve(result, nodes=tuple(nodes) if isinstance(result.nodes, tuple) else nodes)


def _save(path: str, result: FetchResult, *, force: bool) -> None:
    def write(tmp: Path) -> None:
        try:
            save_snapshot(tmp, result)
        except SnapshotError as exc:  # its message names our private temporary file
            raise OutWriteError(
                f"--out {path}: cannot write the snapshot: {str(exc).rsplit(': ', 1)[-1]}"
            ) from None

    write_atomically(path, write, force=force)


def run(args: argparse.Namespace) -> int:
    """The `nodes` handler."""
    if args.shards is not None and not args.out:
        return fail("--shards N needs --out DIR (the directory to write shards to)", EXIT_INPUT)
    try:
        query = query_from_args(args)
        if args.out is not None and args.shards is None:
            check_out_target(args.out, force=args.force)  # before spending a fetch on it
        result = load_fleet(args, query)
        if args.snapshot:
            result = filter_snapshot(result, query)
        if args.out is not None and args.shards is not None:
            save_sharded_snapshot(args.out, result, args.shards)
        elif args.out is not None:
            _save(args.out, result, force=args.force)
    except OutWriteError as exc:
        return fail(str(exc), EXIT_OUTPUT)
    except NodeSelectError as exc:
        return fail(*fleet_error(exc, args))
    personal = bool(args.show_private)
    out = sys.stdout
    if args.format == "table":
        _table(result, personal)
    elif args.format == "jsonl":
        _write_json_lines(result, personal, out)
    else:
        _write_json_array(result, personal, out)
    for issue in result.stats.issues:
        warn(str(issue))
    if result.rejected:
        warn(
            f"{plural(len(result.rejected), 'node document')} did not parse "
            f"(first: {redact(str(result.rejected[0].error))})"
        )
    if args.out:
        where = f"{plural(args.shards, 'shard')} in " if args.shards is not None else ""
        note(f"saved {plural(len(result.nodes), 'node')} to {where}{args.out} (mode 0600)")
    return EXIT_OK if result.nodes else EXIT_NO_FIT
