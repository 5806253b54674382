"""`nodeselect place JOBS.toml`: place a batch of jobs (gangs included) on one fleet.

Output: one table per placed job (replica, node, GPUs, score; the node address only with
``--show-private``), then the unplaced jobs with their reasons against the capacity that was
left, then totals. ``--json`` prints the plan (schema in docs/placement.md). Exit code 1 when
any job could not be placed.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from nodeselect.cli._asof import add_now_argument, evaluation_time, fleet_time_info
from nodeselect.cli._common import EXIT_INPUT, EXIT_NO_FIT, EXIT_OK, fail
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
from nodeselect.jobs import load_jobs
from nodeselect.placement import Plan

__all__ = ["PLACE_FORMATS", "register", "render_env", "render_hostfile", "render_plan"]

#: The output formats of ``place --format`` (``env`` and ``hostfile`` are for launchers).
PLACE_FORMATS = ("table", "json", "env", "hostfile")


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
    parser.add_argument("jobs", metavar="JOBS.toml", type=Path, help="the job file")
    add_source_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument(
        "--format",
        choices=PLACE_FORMATS,
        default=None,
        help=(
            "output: table (default), json (= --json), env (each replica's launch environment: "
            "CUDA_VISIBLE_DEVICES, NODE_RANK, ...), hostfile (ADDRESS slots=GPUS per replica; "
            "needs --show-private)"
        ),
    )
    parser.add_argument(
        "--master-port",
        type=int,
        default=29500,
        metavar="PORT",
        help=(
            "first MASTER_PORT in --format env and json (default 29500; a job whose master "
            "shares a node with an earlier job's gets the next port)"
        ),
    )
    parser.add_argument(
        "--show-private",
        action="store_true",
        help="show node addresses (personal data; hidden by default)",
    )
    parser.add_argument("--seed", type=int, default=0, help="tie-break seed (default 0)")
    add_now_argument(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from nodeselect.pipeline import fleet_queries, merge_fetched  # noqa: PLC0415
    from nodeselect.placement import place  # noqa: PLC0415
    from nodeselect.table import NodeTable  # noqa: PLC0415

    fmt = "json" if args.json else (args.format or "table")
    if fmt == "hostfile" and not args.show_private:
        return fail(
            "--format hostfile lists node addresses, which are personal data; "
            "add --show-private to print them",
            EXIT_INPUT,
        )
    if not 0 < args.master_port < 65000:
        return fail(
            f"--master-port: {args.master_port} must be 1..64999 (later jobs count up from it)",
            EXIT_INPUT,
        )
    try:
        jobs = load_jobs(args.jobs)
    except InputError as exc:
        return fail(str(exc), EXIT_INPUT)
    if not jobs:
        return fail(f"{args.jobs}: no [[job]] tables found", EXIT_INPUT)
    try:
        results = [load_fleet(args, q) for q in fleet_queries(jobs)]
    except NodeSelectError as exc:
        return fail(str(exc), source_exit_code(exc))
    nodes = merge_fetched(results)
    try:
        now = evaluation_time(args, results[0])
        table = NodeTable.from_nodes(nodes, now=now)
        plan = place(jobs, table, nodes=nodes, now=now, seed=args.seed)
    except InputError as exc:
        return fail(str(exc), EXIT_INPUT)
    if fmt == "env":
        render_env(plan, master_port=args.master_port, show_private=args.show_private)
    elif fmt == "hostfile":
        render_hostfile(plan)
    elif fmt == "json":
        doc = plan.to_json(show_private=args.show_private, master_port=args.master_port)
        doc["fleet"] = {
            "nodes": len(table),
            "source": results[0].source,
            "simulated": bool(args.demo),
            "fetched_at": results[0].fetched_at.isoformat(),
            **fleet_time_info(results[0], now),
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
        title = (
            f"{a.job_name} (priority {a.priority}): {len(a.replicas)} node(s), "
            f"{a.gpus} GPU(s), score {fmt_score(a.score)}"
        )
        print_table(columns, rows, stream=out, title=title)
    if plan.unplaced:
        print_table(
            [Column("job"), Column("priority", "right"), Column("reason")],
            [[u.job_name, str(u.priority), u.reason] for u in plan.unplaced],
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


def render_env(
    plan: Plan, *, master_port: int = 29500, show_private: bool = False, stream: Any = None
) -> None:
    """Print each replica's launch environment (:meth:`Plan.launch_env`), one line per replica.

    A comment line names the job, replica and node; the next line is ``KEY=VALUE`` pairs,
    shell-quoted, ready for ``env $(...) torchrun ...`` or an ``export``. ``MASTER_ADDR`` only
    with ``show_private``.
    """
    out = sys.stdout if stream is None else stream
    for a in plan.assignments:
        private = show_private and a.replicas[0].address is not None
        port = plan.master_port(a.job_name, master_port)
        envs = plan.launch_env(a.job_name, master_port=port, show_private=private)
        for k, (r, env) in enumerate(zip(a.replicas, envs, strict=True)):
            node = _safe(r.node_name or "-")
            print(
                f"# job {_safe(a.job_name)} replica {k} on {node} ({_safe(r.node_uuid)})", file=out
            )
            print(" ".join(f"{key}={shlex.quote(v)}" for key, v in env.items()), file=out)
    for u in plan.unplaced:
        print(f"# unplaced: {_safe(u.job_name)}: {_safe(u.reason)}", file=out)


def render_hostfile(plan: Plan, *, stream: Any = None) -> None:
    """Print an MPI/DeepSpeed-style hostfile per job: ``ADDRESS slots=GPUS``, node-rank order.

    Addresses are personal data: the caller decides they may be shown. A replica whose node
    has no address is written as a comment naming the node.
    """
    out = sys.stdout if stream is None else stream
    for a in plan.assignments:
        print(f"# job {_safe(a.job_name)}", file=out)
        for k, r in enumerate(a.replicas):
            slots = max(len(r.gpu_indices), 1)
            if r.address is None:
                print(f"# replica {k}: node {_safe(r.node_uuid)} has no address", file=out)
            else:
                print(f"{_safe(r.address)} slots={slots}", file=out)
    for u in plan.unplaced:
        print(f"# unplaced: {_safe(u.job_name)}", file=out)


def _safe(text: str) -> str:
    """Operator-controlled text made inert for a terminal and a shell comment: control and
    other non-printable characters (escape sequences, newlines) become ``\\xNN`` / ``\\uNNNN``."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
