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
from typing import Any

from nodeselect.cli._common import EXIT_CODES_HELP, EXIT_INPUT, EXIT_NO_FIT, EXIT_OK, fail
from nodeselect.cli._render import Column, print_table, redact
from nodeselect.cli._source import add_source_arguments, load_fleet, source_exit_code
from nodeselect.errors import NodeSelectError
from nodeselect.fetch import (
    FetchedNode,
    FetchResult,
    NodeQuery,
    node_line,
    parse_time_range,
    save_sharded_snapshot,
    save_snapshot,
)

__all__ = ["query_from_args", "register", "run"]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the `nodes` subcommand."""
    p = subparsers.add_parser(
        "nodes",
        help="list nodes matching server-side filters (or save a snapshot)",
        description=__doc__,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    f = p.add_argument_group("filters (repeatable flags are unions, except --compliance)")
    f.add_argument(
        "--status",
        action="append",
        default=[],
        metavar="STATUS",
        help="e.g. AVAILABLE, RESOURCE_BUSY (DELETED implies --include-deleted)",
    )
    f.add_argument(
        "--continent", action="append", default=[], metavar="CODE", help="AF AN AS EU NA OC SA"
    )
    f.add_argument(
        "--country", action="append", default=[], metavar="ISO", help="ISO 3166-1 alpha-2, e.g. US"
    )
    f.add_argument(
        "--subdivision", action="append", default=[], metavar="ISO", help="ISO 3166-2, e.g. US-CA"
    )
    f.add_argument(
        "--compliance",
        action="append",
        default=[],
        metavar="TAG",
        help="GDPR or EEA; repeated = all of them",
    )
    f.add_argument("--name", action="append", default=[], help="exact node name")
    f.add_argument(
        "--operator", action="append", default=[], metavar="UUID", help="operator account uuid"
    )
    f.add_argument("--uuid", action="append", default=[], help="node uuid")
    f.add_argument(
        "--created-between",
        metavar="START,END",
        default=None,
        help="created_at range, inclusive; dates or ISO datetimes, either side open",
    )
    f.add_argument(
        "--seen-between",
        metavar="START,END",
        default=None,
        help="last_seen_at range, like --created-between",
    )
    f.add_argument("--include-deleted", action="store_true", help="also list deleted nodes")
    add_source_arguments(p)
    o = p.add_argument_group("output")
    o.add_argument(
        "--format",
        choices=("table", "json", "jsonl"),
        default="table",
        help="table (default), json (an array) or jsonl (one node per line)",
    )
    o.add_argument(
        "--out", metavar="FILE", default=None, help="also save the fetched fleet as a snapshot file"
    )
    o.add_argument(
        "--shards",
        metavar="N",
        type=int,
        default=None,
        help="with --out DIR: save the snapshot as N shard files and a manifest in DIR",
    )
    o.add_argument(
        "--show-private",
        "--include-personal",  # the first spelling; kept so existing scripts keep working
        dest="show_private",
        action="store_true",
        help="show operator e-mails, IP addresses and wallets (hidden by default)",
    )
    p.set_defaults(handler=run)


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


def _table(result: FetchResult, personal: bool) -> None:
    columns = [
        Column("uuid"),
        Column("name"),
        Column("status"),
        Column("where"),
        Column("gpus"),
        Column("reputation", "right"),
        Column("last_seen_at"),
    ]
    rows = []
    for n in result.nodes:
        lean = n.lean
        rows.append(
            [
                n.uuid,
                lean.name or "-",
                n.facts.status or "?",
                _where(n),
                _gpus(n),
                "-" if lean.reputation is None else f"{lean.reputation:g}",
                lean.last_seen_at or "-",
            ]
        )
    if not personal:
        rows = [[redact(c) for c in r] for r in rows]
    print_table(columns, rows, title=f"{len(rows)} nodes from {result.source}")


def run(args: argparse.Namespace) -> int:
    """The `nodes` handler."""
    if args.shards is not None and not args.out:
        return fail("--shards N needs --out DIR (the directory to write shards to)", EXIT_INPUT)
    try:
        query = query_from_args(args)
        result = load_fleet(args, query)
        if args.out and args.shards is not None:
            save_sharded_snapshot(args.out, result, args.shards)
        elif args.out:
            save_snapshot(args.out, result)
    except NodeSelectError as exc:
        return fail(str(exc), source_exit_code(exc))
    personal = bool(args.show_private)
    out = sys.stdout
    if args.format == "table":
        _table(result, personal)
    elif args.format == "jsonl":
        for node in result.nodes:
            line = node_line(node).decode()
            out.write((line if personal else redact(line)) + "\n")
    else:
        text = json.dumps([n.to_json() for n in result.nodes], indent=2)
        out.write((text if personal else redact(text)) + "\n")
    for issue in result.stats.issues:
        print(f"nodeselect: warning: {issue}", file=sys.stderr)
    if result.rejected:
        print(
            f"nodeselect: warning: {len(result.rejected)} node documents did not parse "
            f"(first: {redact(str(result.rejected[0].error))})",
            file=sys.stderr,
        )
    if args.out:
        where = f"{args.shards} shards in " if args.shards is not None else ""
        print(f"nodeselect: saved {len(result.nodes)} nodes to {where}{args.out}", file=sys.stderr)
    return EXIT_OK if result.nodes else EXIT_NO_FIT
