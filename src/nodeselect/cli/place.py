"""`nodeselect place JOBS.toml`: place a batch of jobs (gangs included) on one fleet.

Output: one table per placed job (replica, node, GPUs, score; the node address only with
``--show-private``), then the unplaced jobs with their reasons against the capacity that was
left, then totals and a quality line (unplaced for lack of capacity versus fitting nothing; with
``--optimal``, the solver's verdict and gap). ``--json`` prints the plan (schema in
docs/placement.md; every replica has its launch ``env``). ``--format env`` prints each
replica's launch environment (``CUDA_VISIBLE_DEVICES`` of its reserved GPUs, node rank, world
size, master port; the master address only with ``--show-private``), ``--format hostfile`` an
MPI/DeepSpeed hostfile (addresses: needs ``--show-private``). Exit code 1 when any job could
not be placed.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tomllib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from nodeselect.cli._asof import evaluation_time, fleet_time_info
from nodeselect.cli._common import (
    EXIT_API,
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    EXIT_NO_FIT,
    EXIT_OK,
    fail,
    plural,
    terminal_safe,
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
from nodeselect.cli._source import fleet_error, load_fleets, open_snapshot
from nodeselect.errors import InputError, NodeSelectError
from nodeselect.fetch import FetchedNode, SnapshotNodes
from nodeselect.placement import Plan

__all__ = ["quality_line", "render_env", "render_hostfile", "render_plan"]


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

    if args.format == "hostfile" and not args.show_private:
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
        jobs = jobs_from_args(args, args.jobs)
    except InputError as exc:
        return fail(str(exc), EXIT_INPUT)
    if not jobs or _blank_file(args.jobs):
        return fail(
            f"no jobs in {args.jobs}: add one [[job]] table per job (docs/jobs.md)", EXIT_INPUT
        )
    if args.time_limit is not None and not args.optimal:
        return fail("--time-limit applies to --optimal only; add --optimal", EXIT_INPUT)
    dask = getattr(args, "dask", None)
    if dask is not None:
        refused = _dask_refused(args)
        if refused:
            return fail(refused, EXIT_INPUT)
    snapshot: SnapshotNodes | None = None
    try:
        if getattr(args, "snapshot", None):  # read a chunk at a time: never the whole fleet's
            snapshot = open_snapshot(args, fleet_queries(jobs))  # documents (~10 KB a node)
            results = [snapshot.header]
        else:
            results = load_fleets(args, fleet_queries(jobs))
    except NodeSelectError as exc:
        return fail(*fleet_error(exc, args))
    nodes: Sequence[FetchedNode] = merge_fetched(results) if snapshot is None else snapshot
    try:
        now = evaluation_time(args, results[0])
        if dask is not None:  # (the table joined from the workers' shards: no document here)
            plan, table = _place_on_dask(args, jobs, nodes, now)
        else:
            table = NodeTable.from_nodes(nodes, now=now)  # (a snapshot: a chunk at a time)
            plan = place(
                jobs,
                table,
                nodes=nodes,
                now=now,
                seed=args.seed,
                objective="optimal" if args.optimal else "greedy",
                time_limit=args.time_limit,
                workers=args.workers,
            )
    except NodeSelectError as exc:  # bad input, or the optimal extra not installed
        return fail(str(exc), EXIT_INPUT)
    except KeyboardInterrupt:
        return fail("interrupted: nothing was placed", EXIT_INTERRUPTED)
    except Exception as exc:  # (only the Dask path raises others: a lost scheduler, ...)
        if dask is None:
            raise
        from nodeselect.cli._dask import failure  # noqa: PLC0415 - with --dask only

        return fail(f"the Dask computation failed, nothing was placed: {failure(exc)}", EXIT_API)
    if args.format == "env":
        render_env(plan, master_port=args.master_port, show_private=args.show_private)
    elif args.format == "hostfile":
        render_hostfile(plan)
    elif args.format != "table":
        doc = plan.to_json(show_private=args.show_private, master_port=args.master_port)
        doc["fleet"] = {
            "nodes": len(table),
            "source": results[0].source,
            "simulated": bool(args.demo),
            "fetched_at": results[0].fetched_at.isoformat(),
            **fleet_time_info(results[0], now),
        }
        write_json(doc, indent=2 if args.format == "json" else None)
    else:
        render_plan(plan, show_private=args.show_private, simulated=bool(args.demo))
    return EXIT_NO_FIT if plan.unplaced else EXIT_OK


def _dask_refused(args: argparse.Namespace) -> str:
    """Why ``--dask`` cannot run with these arguments ("" when it can)."""
    if not getattr(args, "snapshot", None):
        return (
            "--dask needs --snapshot DIR (or FILE): the workers read the fleet's shards "
            "themselves; save one with: nodeselect nodes --out DIR --shards N"
        )
    if args.workers > 1:
        return (
            f"--workers {args.workers} surveys in threads of this process; with --dask the "
            "survey runs on the cluster: leave --workers out"
        )
    try:
        import nodeselect.dask  # noqa: F401, PLC0415 - the optional extra, only when used
    except ImportError:
        return "--dask needs Dask: pip install 'nodeselect[dask]' (dask and distributed)"
    return ""


def _place_on_dask(
    args: argparse.Namespace, jobs: Sequence[Any], nodes: Any, now: datetime
) -> tuple[Plan, Any]:
    """``place`` with its survey on Dask (:func:`nodeselect.dask.place`): each job's candidate
    nodes ranked on the snapshot's shards, built on the workers (the fleet's units from
    their tallies); the jobs placed here on the whole table, joined from the workers'
    shard tables (``Survey.table``: the driver reads no document). The plan, the
    single-machine one, and the table."""
    import nodeselect.dask as nd  # noqa: PLC0415 - the optional extra, only when used
    from nodeselect.cli._dask import (  # noqa: PLC0415 - rich's progress bar, only when used
        cluster,
        dask_logs,
        interrupts,
        tile_bar,
    )

    plain = sum(len(j.alternatives) if j.alternatives else 1 for j in jobs)
    with (
        dask_logs(int(getattr(args, "verbose", 0) or 0)),
        interrupts() as interrupted,
        cluster(args.dask) as client,
        nd.Survey(nd.snapshot_shards(args.snapshot), client=client, now=now) as survey,
        tile_bar(survey.tiles(plain), interrupted) as tick,
    ):
        table = survey.table()
        plan: Plan = nd.place(
            jobs,
            table,
            survey,
            nodes=nodes,
            seed=args.seed,
            objective="optimal" if args.optimal else "greedy",
            time_limit=args.time_limit,
            on_tile=tick,
        )
        return plan, table


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
            node = terminal_safe(f"{r.node_name or '-'} ({r.node_uuid})")
            print(f"# job {terminal_safe(a.job_name)} replica {k} on {node}", file=out)
            print(" ".join(f"{key}={shlex.quote(v)}" for key, v in env.items()), file=out)
    for u in plan.unplaced:
        print(f"# unplaced: {terminal_safe(u.job_name)}: {terminal_safe(u.reason)}", file=out)


def render_hostfile(plan: Plan, *, stream: Any = None) -> None:
    """Print an MPI/DeepSpeed-style hostfile per job: ``ADDRESS slots=GPUS``, node-rank order.

    Addresses are personal data: the caller decides they may be shown. A replica whose node
    has no address is written as a comment naming the node.
    """
    out = sys.stdout if stream is None else stream
    for a in plan.assignments:
        print(f"# job {terminal_safe(a.job_name)}", file=out)
        for k, r in enumerate(a.replicas):
            slots = max(len(r.gpu_indices), 1)
            if r.address is None:
                print(f"# replica {k}: node {terminal_safe(r.node_uuid)} has no address", file=out)
            else:
                print(f"{terminal_safe(r.address)} slots={slots}", file=out)
    for u in plan.unplaced:
        print(f"# unplaced: {terminal_safe(u.job_name)}", file=out)
