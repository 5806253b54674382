"""`nodeselect place JOBS.toml`: place a batch of jobs (gangs included) on one fleet.

Output: one table per placed job (replica, node, GPUs, score; the node address only with
``--show-private``), then the unplaced jobs with their reasons against the capacity that was
left, then totals. ``--json`` prints the plan (schema in docs/placement.md). Exit code 1 when
any job could not be placed.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from nodeselect.cli._common import EXIT_INPUT, EXIT_NO_FIT, EXIT_OK, fail
from nodeselect.cli._jobargs import add_set_argument, jobs_from_args
from nodeselect.cli._render import (
    HIDDEN,
    Column,
    fmt_score,
    print_note,
    print_table,
    write_json,
)
from nodeselect.cli._source import add_source_arguments, load_fleet, source_exit_code
from nodeselect.errors import InputError, NodeSelectError
from nodeselect.placement import Plan

__all__ = ["register", "render_plan"]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the `place` subcommand."""
    parser = subparsers.add_parser(
        "place",
        help="place a batch of jobs ([[job]] tables) on the fleet without double-booking",
        description=(
            "Place every job of JOBS.toml (a file of [[job]] tables) on one fleet: priority "
            "first, then hardest to place first; GPUs, cores, RAM and disk are reserved as jobs "
            "are placed, and gangs (nodes > 1) are placed all-or-nothing. "
            "Exit 1 when a job could not be placed."
        ),
    )
    parser.add_argument(
        "jobs", metavar="JOBS.toml", help="the job file; - reads TOML or JSON on stdin"
    )
    add_source_arguments(parser)
    add_set_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument(
        "--show-private",
        action="store_true",
        help="show node addresses (personal data; hidden by default)",
    )
    parser.add_argument("--seed", type=int, default=0, help="tie-break seed (default 0)")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from nodeselect.pipeline import fleet_queries, merge_fetched  # noqa: PLC0415
    from nodeselect.placement import place  # noqa: PLC0415
    from nodeselect.table import NodeTable  # noqa: PLC0415

    try:
        jobs = jobs_from_args(args, args.jobs)
    except InputError as exc:
        return fail(str(exc), EXIT_INPUT)
    if not jobs:
        return fail(f"{args.jobs}: no [[job]] tables found", EXIT_INPUT)
    try:
        results = [load_fleet(args, q) for q in fleet_queries(jobs)]
    except NodeSelectError as exc:
        return fail(str(exc), source_exit_code(exc))
    nodes = merge_fetched(results)
    table = NodeTable.from_nodes(nodes)
    try:
        plan = place(jobs, table, nodes=nodes, seed=args.seed)
    except InputError as exc:
        return fail(str(exc), EXIT_INPUT)
    if args.json:
        doc = plan.to_json(show_private=args.show_private)
        doc["fleet"] = {
            "nodes": len(table),
            "source": results[0].source,
            "simulated": bool(args.demo),
        }
        write_json(doc)
    else:
        render_plan(plan, show_private=args.show_private, simulated=bool(args.demo))
    return EXIT_NO_FIT if plan.unplaced else EXIT_OK


def render_plan(
    plan: Plan, *, show_private: bool = False, simulated: bool = False, stream: Any = None
) -> None:
    """Print the plan as tables (rich on a terminal, plain text when piped)."""
    out = sys.stdout if stream is None else stream
    if simulated:
        print_note("fleet: SIMULATED demo fleet (nodeselect.sim)", stream=out, style="yellow")
    columns = [
        Column("rank", "right"),
        Column("node"),
        Column("uuid"),
        Column("gpus"),
        Column("score", "right"),
        Column("address"),
    ]
    for a in plan.assignments:
        rows = [
            [
                str(k),
                r.node_name or "-",
                r.node_uuid,
                ",".join(str(g) for g in r.gpu_indices) or "-",
                fmt_score(r.score),
                (r.address or "-") if show_private else HIDDEN,
            ]
            for k, r in enumerate(a.replicas)
        ]
        alt = "" if a.alternative is None else f", alternative {a.alternative}"
        title = (
            f"{a.job_name} (priority {a.priority}{alt}): {len(a.replicas)} node(s), "
            f"{a.gpus} GPU(s), score {fmt_score(a.score)}"
        )
        print_table(columns, rows, stream=out, title=title)
    if plan.unplaced:
        print_table(
            [Column("job"), Column("priority", "right"), Column("reason")],
            [
                [
                    u.job_name,
                    str(u.priority),
                    u.reason
                    if u.alternative is None
                    else f"no alternative fits; the last ({u.alternative}): {u.reason}",
                ]
                for u in plan.unplaced
            ],
            stream=out,
            title=f"unplaced: {len(plan.unplaced)} job(s)",
        )
    t = plan.totals
    print_note(
        f"placed {t.jobs_placed}/{t.jobs_placed + t.jobs_unplaced} jobs on {t.nodes_used} "
        f"nodes, {t.gpus_used} GPUs used, {t.free_gpus_left} GPUs left "
        f"({t.stranded_gpus} stranded)",
        stream=out,
    )
