"""`nodeselect place JOBS.toml`: place a batch of jobs (gangs included) on one fleet.

Output: one table per placed job (replica, node, GPUs, score; the node address only with
``--show-private``), then the unplaced jobs with their reasons against the capacity that was
left, then totals and a quality line (unplaced for lack of capacity versus fitting nothing; with
``--optimal``, the solver's verdict and gap). ``--json`` prints the plan (schema in
docs/placement.md). Exit code 1 when any job could not be placed.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Any

from nodeselect.cli._common import (
    EXIT_INPUT,
    EXIT_NO_FIT,
    EXIT_OK,
    fail,
    plural,
)
from nodeselect.cli._jobargs import jobs_from_args
from nodeselect.cli._render import (
    HIDDEN,
    Column,
    fmt_score,
    print_note,
    print_table,
    write_json,
)
from nodeselect.cli._source import fleet_error, load_fleet
from nodeselect.errors import InputError, NodeSelectError
from nodeselect.placement import Plan

__all__ = ["quality_line", "render_plan"]


def _blank_file(path: str | Path) -> bool:
    """Whether a job file that loaded holds no key at all (empty, or comments only): its one
    "job" would be every default, which is not what a batch means (``-``, stdin: not checked)."""
    if str(path) == "-":
        return False
    try:
        return not tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # it loaded a moment ago; anything else is not "blank"
        return False


def _run(args: argparse.Namespace) -> int:
    from nodeselect.pipeline import fleet_queries, merge_fetched  # noqa: PLC0415
    from nodeselect.placement import place  # noqa: PLC0415
    from nodeselect.table import NodeTable  # noqa: PLC0415

    try:
        jobs = jobs_from_args(args, args.jobs)
    except InputError as exc:
        return fail(str(exc), EXIT_INPUT)
    if not jobs or _blank_file(args.jobs):
        return fail(
            f"no jobs in {args.jobs}: add one [[job]] table per job (docs/jobs.md)", EXIT_INPUT
        )
    if args.time_limit is not None and not args.optimal:
        return fail("--time-limit applies to --optimal only; add --optimal", EXIT_INPUT)
    try:
        results = [load_fleet(args, q) for q in fleet_queries(jobs)]
    except NodeSelectError as exc:
        return fail(*fleet_error(exc, args))
    nodes = merge_fetched(results)
    table = NodeTable.from_nodes(nodes)
    try:
        plan = place(
            jobs,
            table,
            nodes=nodes,
            seed=args.seed,
            objective="optimal" if args.optimal else "greedy",
            time_limit=args.time_limit,
        )
    except NodeSelectError as exc:  # bad input, or the optimal extra not installed
        return fail(str(exc), EXIT_INPUT)
    if args.format != "table":
        doc = plan.to_json(show_private=args.show_private)
        doc["fleet"] = {
            "nodes": len(table),
            "source": results[0].source,
            "simulated": bool(args.demo),
        }
        write_json(doc, indent=2 if args.format == "json" else None)
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
            f"{a.job_name} (priority {a.priority}{alt}): {plural(len(a.replicas), 'node')}, "
            f"{plural(a.gpus, 'GPU')}, score {fmt_score(a.score)}"
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
            title=f"unplaced: {plural(len(plan.unplaced), 'job')}",
        )
    t = plan.totals
    print_note(
        f"placed {t.jobs_placed}/{plural(t.jobs_placed + t.jobs_unplaced, 'job')} on "
        f"{plural(t.nodes_used, 'node')}, {plural(t.gpus_used, 'GPU')} used, "
        f"{plural(t.free_gpus_left, 'GPU')} left "
        f"({t.stranded_gpus} stranded)",
        stream=out,
    )
    print_note(quality_line(plan), stream=out)


def quality_line(plan: Plan) -> str:
    """One line on how good the plan is: why jobs are unplaced, what repair or the solver did."""
    q = plan.quality
    parts = []
    if plan.unplaced:
        parts.append(
            f"unplaced: {q.unplaced_capacity} for lack of capacity (they fit the empty fleet), "
            f"{q.unplaced_no_fit} fit nothing at all"
        )
    if q.repaired or q.displaced or q.moved:
        parts.append(
            f"repair placed {q.repaired} job(s), left out {q.displaced}, moved {q.moved} replica(s)"
        )
    s = q.solver
    if s is not None:
        if s.status == "optimal":
            parts.append(f"optimal: proved by HiGHS in {s.seconds:.1f} s (gap 0)")
        else:
            why = "time limit reached" if s.status == "time-limit" else "no better plan found"
            parts.append(
                f"{why} after {s.seconds:.1f} s: best plan found, gap {100 * s.gap:.2f} %, "
                f"at most {s.jobs_bound} jobs placeable"
            )
    return "quality: " + ("; ".join(parts) if parts else "every job placed")
