"""`nodeselect plan JOB.toml`: where would this job go, and if nowhere, why?

The command loads a job file, fetches the fleet (``--api`` / ``--snapshot`` / ``--demo``)
pushing down only the filters the API can evaluate, ranks every node, and prints a report:
the ranked table, the rejection summary and the nearest misses (``--explain NODE`` adds one
node's failing constraints and score terms). The report is built once as a JSON-ready dict
(:func:`build_report`, schema in docs/cli.md); ``--json`` prints it, otherwise
:func:`render_report` draws it (rich on a terminal, plain text when piped).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from nodeselect.cli._asof import evaluation_time, fleet_time_info, snapshot_gaps
from nodeselect.cli._common import (
    EXIT_INPUT,
    EXIT_NO_FIT,
    EXIT_OK,
    fail,
    note,
    plural,
)
from nodeselect.cli._jobargs import jobs_from_args
from nodeselect.cli._render import (
    fleet_info,
    float32_value,
    print_note,
    private_fields,
    redact,
    render_report,
    write_json,
)
from nodeselect.cli._source import (
    api_error_message,
    fleet_error,
    load_fleet_explained,
    open_snapshot,
    require_source,
)
from nodeselect.engine import Ranking, explain_node, rank
from nodeselect.errors import (
    InputError,
    JobSpecError,
    NodeSelectError,
)
from nodeselect.fetch import FetchedNode, NodeQuery, PushdownReport, SnapshotNodes
from nodeselect.gpus import GPU_MODELS
from nodeselect.jobs import Job
from nodeselect.placement import place
from nodeselect.table import NodeTable

__all__ = [
    "REPORT_SCHEMA",
    "api_error_message",
    "build_report",
    "node_summary",
    "private_fields",
    "pushed_down_filters",
    "render_report",
]

#: The ``schema`` value of ``plan --json`` (bumped on incompatible changes).
REPORT_SCHEMA: Final = "nodeselect.plan-report/1"


def _f(x: Any) -> float | None:
    v = float32_value(x)
    return v if math.isfinite(v) else None


def _meant(x: float | None) -> float | None:
    """A threshold read from a float32 column, to the 7 digits float32 holds (9.6, not
    9.600000381469727)."""
    return None if x is None else float(f"{x:.7g}")


def _vocab(vocab: tuple[str, ...], code: Any) -> str | None:
    c = int(code)
    return vocab[c] if 0 < c < len(vocab) and vocab[c] else None


def _gpu_label(models: Sequence[str]) -> str:
    """``["H100-80GB", "H100-80GB"]`` -> ``"2x H100-80GB"``; mixed models joined by ``+``."""
    if not models:
        return "-"
    counts: dict[str, int] = {}
    for m in models:
        counts[m] = counts.get(m, 0) + 1
    return " + ".join(f"{n}x {m}" for m, n in counts.items())


def node_summary(
    table: NodeTable, i: int, *, now_s: float, show_private: bool = False
) -> dict[str, Any]:
    """The facts of node ``i`` that the report shows (units in the key names)."""
    lo, hi = int(table.gpu_offsets[i]), int(table.gpu_offsets[i + 1])
    gpus: list[dict[str, Any]] = []
    for g in range(lo, hi):
        code = int(table.gpu_model_code[g])
        gpus.append(
            {
                "model": GPU_MODELS[code - 1].canonical if code > 0 else "unknown",
                "vram_free_gb": _f(table.gpu_vram_free_gb[g]),
                "vram_total_gb": _f(table.gpu_vram_total_gb[g]),
                "load": _f(table.gpu_load[g]),
            }
        )
    free = [g["vram_free_gb"] for g in gpus if g["vram_free_gb"] is not None]
    tele = _f(table.telemetry_epoch_s[i])
    seen = _f(table.last_seen_epoch_s[i])
    name = table.name_of(i)
    operator = _vocab(table.operator_vocab, table.operator_code[i])
    return {
        "uuid": table.uuid_of(i),
        "name": name if show_private or name is None else redact(name),
        "gpu_label": _gpu_label([g["model"] for g in gpus]),
        "gpus": gpus,
        "vram_free_gb": sum(free) if free else None,
        "cpu_cores": int(table.cpu_cores[i]),
        "ram_free_gb": _f(table.ram_free_gb[i]),
        "disk_free_gb": _f(table.disk_free_gb[i]),
        "reputation": _f(table.reputation[i]),
        "region": {
            "continent": _vocab(table.continent_vocab, table.continent_code[i]),
            "country": _vocab(table.country_vocab, table.country_code[i]),
            "subdivision": _vocab(table.subdivision_vocab, table.subdivision_code[i]),
        },
        "status": _vocab(table.status_vocab, table.status_code[i]),
        "operator": operator,
        "telemetry_age_s": None if tele is None else round(max(0.0, now_s - tele), 1),
        "last_seen_age_s": None if seen is None else round(max(0.0, now_s - seen), 1),
    }


def build_report(
    *,
    job: Mapping[str, Any],
    fleet: Mapping[str, Any],
    pushed_down: Sequence[Mapping[str, Any]],
    local: Sequence[str],
    evaluated: int,
    feasible: int,
    ranked: Sequence[Mapping[str, Any]],
    rejected: Mapping[str, int],
    nearest_misses: Sequence[Mapping[str, Any]],
    gang: Mapping[str, Any] | None = None,
    explain: Mapping[str, Any] | None = None,
    pushdown: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``plan --json`` document (docs/cli.md): every key always present, in this order."""
    return {
        "schema": REPORT_SCHEMA,
        "job": dict(job),
        "fleet": dict(fleet),
        "pushed_down": [dict(p) for p in pushed_down],
        "local": list(local),
        "evaluated": evaluated,
        "feasible": feasible,
        "ranked": [dict(r) for r in ranked],
        "rejected": dict(rejected),
        "nearest_misses": [dict(m) for m in nearest_misses],
        "gang": None if gang is None else dict(gang),
        "explain": None if explain is None else dict(explain),
        "pushdown": None if pushdown is None else dict(pushdown),
    }


def _add_private(report: dict[str, Any], nodes: Sequence[FetchedNode], table: NodeTable) -> None:
    """Attach ``private`` to each ranked node, nearest miss and the explained node (each
    found by its table row: a snapshot's node is read again from its file, not searched)."""
    wanted = {r["uuid"] for r in report["ranked"]}
    if report.get("explain"):
        wanted.add(report["explain"]["uuid"])
    found = {u: private_fields(nodes[table.index_of(u)].raw) for u in wanted}
    for item in report["ranked"]:
        item["private"] = found.get(item["uuid"], {})
    if report.get("explain"):
        report["explain"]["private"] = found.get(report["explain"]["uuid"], {})


def ranked_rows(
    ranking: Ranking, table: NodeTable, *, now_s: float, show_private: bool
) -> list[dict[str, Any]]:
    """The ``ranked`` entries: rank, identity, score and terms, then the node's facts."""
    rows: list[dict[str, Any]] = []
    for pos, r in enumerate(ranking.top, start=1):
        facts = node_summary(table, r.index, now_s=now_s, show_private=show_private)
        rows.append(
            {
                "rank": pos,
                "uuid": r.uuid,
                "name": facts.pop("name"),
                "score": round(float(r.score), 6),
                "terms": {k: round(float(v), 6) for k, v in r.terms.items()},
                "gpu_indices": list(r.gpu_indices),
                **{k: v for k, v in facts.items() if k != "uuid"},
            }
        )
    return rows


def rejected_counts(ranking: Ranking) -> dict[str, int]:
    """Constraint -> nodes it rejected, in the engine's stable order, zero counts left out."""
    return {name: n for name, n in ranking.explanation.rejected if n}


def nearest_misses(ranking: Ranking) -> list[dict[str, Any]]:
    """The single relaxations that would admit the most nodes, most admitted first."""
    misses = sorted(ranking.explanation.nearest_misses, key=lambda m: (-m.only_this, -m.admits))
    return [
        {
            "constraint": m.constraint,
            "only_this": m.only_this,
            "relaxed_threshold": _meant(m.relaxed_threshold),
            "admits": m.admits,
            "advice": str(m),
            "server_side": False,
        }
        for m in misses
    ]


def server_side_misses(report: PushdownReport) -> list[dict[str, Any]]:
    """The pushed-down filters as nearest misses: dropping one admits what it alone removed
    (before the local constraints are checked, hence "up to")."""
    return [
        {
            "constraint": m.key,
            "only_this": m.removed,
            "relaxed_threshold": None,
            "admits": m.removed,
            "advice": f"{m.advice}: dropping {m.key} admits up to {plural(m.removed, 'more node')}",
            "server_side": True,
        }
        for m in report.misses
        if m.removed
    ]


def gang_placement(
    job: Job, table: NodeTable, nodes: Sequence[FetchedNode], *, now: datetime, seed: int
) -> dict[str, Any]:
    """For a multi-node job, the replicas ``place`` would choose, or why the gang cannot run."""
    plan = place([job], table, nodes=nodes, now=now, seed=seed)
    if plan.assignments:
        a = plan.assignments[0]
        replicas = [
            {
                "replica": i,
                "uuid": r.node_uuid,
                "name": r.node_name,
                "gpu_indices": list(r.gpu_indices),
                "score": round(float(r.score), 6),
            }
            for i, r in enumerate(a.replicas)
        ]
        alt = {} if a.alternative is None else {"alternative": a.alternative}
        return {"nodes": job.nodes, "placed": True, "replicas": replicas, "reason": None, **alt}
    reason = plan.unplaced[0].reason if plan.unplaced else "not placed"
    return {"nodes": job.nodes, "placed": False, "replicas": [], "reason": reason}


def _gpu_want(job: Job) -> str:
    """``"2x A100-80GB"``, ``"1x any GPU"``, ``"CPU only"``: an alternative in one phrase."""
    g = job.gpu
    if g.count == 0:
        return "CPU only"
    return f"{g.count}x {'/'.join(g.models) if g.models else 'any GPU'}"


def alternatives_info(job: Job, ranking: Ranking) -> dict[str, Any]:
    """For a job with alternatives, the ``job`` keys ``alternative`` (the position ranked) and
    ``alternatives`` (each alternative: what it asks, whether it was tried, its feasible count
    and rejections); empty for a job without."""
    if not job.alternatives:
        return {}
    tried = {t.alternative: t for t in ranking.tried}
    rows: list[dict[str, Any]] = []
    for i, choice in enumerate(job.choices()):
        t = tried.get(i)
        rows.append(
            {
                "alternative": i,
                "gpu": _gpu_want(choice),
                "tried": t is not None,
                "feasible": None if t is None else t.feasible,
                "rejected": None if t is None else rejected_counts(t),
            }
        )
    return {"alternative": ranking.alternative, "alternatives": rows}


def _print_alternatives(job: Mapping[str, Any]) -> None:
    """One line per alternative before the report (jobs with alternatives only)."""
    for a in job.get("alternatives", ()):
        if not a["tried"]:
            state = "not tried (an earlier alternative fits)"
        else:
            top = ", ".join(
                f"{n} {c}" for n, c in sorted(a["rejected"].items(), key=lambda kv: -kv[1])[:3]
            )
            state = f"{a['feasible']} feasible" + (f"; rejected: {top}" if top else "")
        mark = "*" if a["alternative"] == job["alternative"] else " "
        print_note(
            f"{mark} alternative {a['alternative']} ({a['gpu']}): {state}", stream=sys.stdout
        )


def explain_one(
    job: Job, table: NodeTable, node: str, *, now: datetime, show_private: bool
) -> dict[str, Any]:
    """The ``explain`` object for ``--explain NODE`` (raises InputError for an unknown node)."""
    e = explain_node(job, table, node, now=now)
    facts = node_summary(table, e.index, now_s=now.timestamp(), show_private=show_private)
    return {
        "uuid": e.uuid,
        "name": facts["name"],
        "feasible": e.feasible,
        "failures": [
            {"constraint": f.constraint, "value": f.value, "required": f.required}
            for f in e.failures
        ],
        "score": round(float(e.score), 6),
        "terms": {k: round(float(v), 6) for k, v in e.terms.items()},
        "gpus": [
            {
                "index": g.index,
                "model": g.model,
                "vram_free_gb": _f(g.vram_free_gb),
                "vram_total_gb": _f(g.vram_total_gb),
                "load": _f(g.load),
                "fails": list(g.fails),
            }
            for g in e.gpus
        ],
        "node": {k: v for k, v in facts.items() if k not in ("uuid", "name")},
    }


_FILTERS: Final = {
    "placement.statuses": ("filter[status]", "statuses"),
    "placement.continents": ("filter[continent_code]", "continents"),
    "placement.countries": ("filter[country_iso_code]", "countries"),
    "placement.subdivisions": ("filter[subdivision_iso_code]", "subdivisions"),
    "placement.compliance": ("filter[compliance_tags]", "compliance"),
    "placement.allow_deleted": ("filter[include_deleted]", "allow_deleted"),
}


def pushed_down_filters(job: Job, keys: Sequence[str]) -> list[dict[str, Any]]:
    """The job keys a query pushed to the server, each with its API filter and values."""
    out: list[dict[str, Any]] = []
    for key in keys:
        api, attr = _FILTERS.get(key, (key, ""))
        value = getattr(job.placement, attr, None) if attr else None
        values = list(value) if isinstance(value, tuple) else value
        out.append({"key": key, "filter": api, "values": values})
    return out


def _explained_node(
    job: Job, table: NodeTable, ranking: Ranking, node: str, *, now: datetime
) -> str:
    """``--explain NODE``: a uuid or name, or else a row number of the ranked table."""
    try:
        explain_node(job, table, node, now=now)
    except InputError:
        text = node.strip().lstrip("#")
        if not text.isdigit():
            raise
        row = int(text)
        if not 1 <= row <= len(ranking.top):
            raise InputError(
                f"--explain {node}: no node has that uuid or name, and the ranked table has "
                f"rows 1 to {len(ranking.top)}; give a uuid, a name, or a row number"
            ) from None
        return ranking.top[row - 1].uuid
    return node


def _job_source(arg: str | None) -> str:
    """The report's ``job.file``: the path, ``<stdin>`` for ``-``, ``<flags>`` for none."""
    if arg is None:
        return "<flags>"
    return "<stdin>" if arg == "-" else str(arg)


def _handle(args: argparse.Namespace) -> int:
    if args.top < 1:
        return fail(f"--top: {args.top} must be >= 1", EXIT_INPUT)
    try:
        jobs = jobs_from_args(args, args.job)
        if len(jobs) != 1:
            raise JobSpecError(
                f"expected one job, found {len(jobs)} [[job]] tables (use `nodeselect place`)",
                source=str(args.job),
            )
        job = jobs[0]
    except NodeSelectError as exc:  # JobSpecError / JobGPUNameError name file:line: key
        return fail(str(exc), EXIT_INPUT)
    try:
        require_source(args)  # the same rule and message on every command
    except NodeSelectError as exc:
        return fail(str(exc), EXIT_INPUT)
    snapshot: SnapshotNodes | None = None
    try:
        query = NodeQuery.from_job(job)
        if args.snapshot:  # read a chunk at a time: never the whole fleet's documents
            snapshot = open_snapshot(args, [query])
            result, pushdown = snapshot.header, None
        else:
            result, pushdown = load_fleet_explained(args, query)
    except NodeSelectError as exc:
        return fail(*fleet_error(exc, args))
    try:
        now = evaluation_time(args, result)
    except InputError as exc:
        return fail(str(exc), EXIT_INPUT)
    gaps = snapshot_gaps(query, result.query, str(args.snapshot)) if args.snapshot else []
    nodes: Sequence[FetchedNode] = result.nodes if snapshot is None else snapshot
    try:
        table = NodeTable.from_nodes(nodes, now=now)  # (a snapshot: a chunk at a time)
    except NodeSelectError as exc:
        return fail(*fleet_error(exc, args))
    try:
        ranking = rank(job, table, k=args.top, now=now, seed=args.seed)
        chosen = ranking.job  # the alternative ranked, for a job with alternatives
        explain = None
        if args.explain is not None:
            node = _explained_node(chosen, table, ranking, args.explain, now=now)
            explain = explain_one(chosen, table, node, now=now, show_private=args.show_private)
        gang = None
        if job.nodes > 1:
            gang = gang_placement(job, table, nodes, now=now, seed=args.seed)
    except InputError as exc:
        return fail(str(exc), EXIT_INPUT)
    report = build_report(
        job={
            "name": job.name,
            "file": _job_source(args.job),
            "nodes": job.nodes,
            **alternatives_info(job, ranking),
        },
        fleet={
            **fleet_info(args, result, nodes=len(table)),
            "units": table.units.to_dict(),
            **fleet_time_info(result, now),
            "unproved": gaps,
        },
        # a snapshot was filtered when it was saved, not for this job: nothing is pushed down
        pushed_down=[] if args.snapshot else pushed_down_filters(job, query.pushed_down),
        local=[name for name, _ in ranking.explanation.rejected],
        evaluated=ranking.evaluated,
        feasible=ranking.feasible,
        ranked=ranked_rows(ranking, table, now_s=now.timestamp(), show_private=args.show_private),
        rejected={**({} if pushdown is None else pushdown.rejected), **rejected_counts(ranking)},
        nearest_misses=[
            *([] if pushdown is None else server_side_misses(pushdown)),
            *nearest_misses(ranking),
        ],
        gang=gang,
        explain=explain,
        pushdown=None if pushdown is None else pushdown.to_json(),
    )
    if args.show_private:
        _add_private(report, nodes, table)
    if args.format == "table":
        _print_alternatives(report["job"])
        render_report(report, stream=sys.stdout)
    else:
        write_json(report, indent=2 if args.format == "json" else None)
        if report["feasible"] == 0:  # the table output shows these in its header
            for line in gaps:
                note(line)
    if report["feasible"] == 0 or (gang is not None and not gang["placed"]):
        if args.format != "table":  # the explanation is in the document; say it on stderr too
            what = "no node fits" if report["feasible"] == 0 else "the gang cannot be placed:"
            print(f"nodeselect: {what} job {job.name!r}", file=sys.stderr)
        return EXIT_NO_FIT
    return EXIT_OK
