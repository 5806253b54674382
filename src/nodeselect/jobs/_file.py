"""Job files: TOML (or a plain dict) -> a validated :class:`~nodeselect.Job`, and back.

Every problem is a :class:`~nodeselect.JobSpecError` naming the file, the line (found by
scanning the TOML text, best effort) and the dotted key, saying what was wrong and what is
accepted. An unknown or ambiguous GPU model is a :class:`~nodeselect.JobGPUNameError`, which is
both a ``JobSpecError`` and a ``GPUNameError``. The reference of every key is docs/jobs.md.

After loading, ``Job.gpu.models`` holds *canonical* model names, sorted (a family such as
``"H100"`` is already expanded), so the engine needs no registry look-ups.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Final, Literal, cast

from nodeselect.documents import COMPLIANCE_TAGS, CONTINENTS, STATUSES
from nodeselect.errors import GPUNameError, JobGPUNameError, JobSpecError
from nodeselect.gpus import resolve_job_models
from nodeselect.jobs._model import (
    SCORE_TERMS,
    CpuReq,
    DiskReq,
    DistinctScope,
    GangReq,
    GpuReq,
    Job,
    MemoryReq,
    PlacementReq,
    Preferences,
    SameScope,
    SoftwareReq,
    Strategy,
)
from nodeselect.jobs._values import (
    ARCH_ALIASES,
    Ctx,
    as_bool,
    as_choices,
    as_codes,
    as_int,
    as_num,
    as_one_of,
    as_str,
    as_strs,
    as_table,
    check_keys,
    format_duration,
    key_lines,
    normalize_arch,
    optional,
    parse_duration,
    show,
)

__all__ = [
    "ARCH_ALIASES",
    "format_duration",
    "job_from_dict",
    "job_to_dict",
    "load_job",
    "load_jobs",
    "normalize_arch",
    "parse_duration",
]


_SECTIONS: Final[dict[str, tuple[str, ...]]] = {
    "gpu": ("count", "max_load", "min_vram_free_gb", "min_vram_total_gb", "models"),
    "cpu": ("min_cores",),
    "memory": ("min_free_gb",),
    "disk": ("min_free_gb",),
    "software": ("arch", "images_preferred", "images_required", "min_driver"),
    "placement": (
        "allow_deleted",
        "allow_suspended",
        "compliance",
        "continents",
        "countries",
        "exclude_nodes",
        "exclude_operators",
        "max_staleness",
        "min_reputation",
        "only_nodes",
        "statuses",
        "subdivisions",
    ),
    "preferences": ("strategy", "weights"),
    "gang": ("distinct", "operators", "same"),
}
_TOP: Final = ("name", "nodes", "priority", *_SECTIONS)
_DRIVER_RE: Final = re.compile(r"^\d+(\.\d+)*$")
_COUNTRY_RE: Final = re.compile(r"^[A-Z]{2}$")
_SUBDIVISION_RE: Final = re.compile(r"^[A-Z]{2}-[A-Z0-9]{1,3}$")


def _gpu(ctx: Ctx, d: Mapping[str, Any]) -> GpuReq:
    models: tuple[str, ...] = ()
    if "models" in d:
        names = as_strs(ctx, "gpu.models", d["models"])
        try:
            models = tuple(sorted(resolve_job_models(names)))
        except GPUNameError as exc:
            idx = names.index(exc.name) if exc.name in names else None
            key = "gpu.models" if idx is None else f"gpu.models[{idx}]"
            raise JobGPUNameError(
                str(exc),
                name=exc.name,
                suggestions=exc.suggestions,
                source=ctx.source,
                key=ctx.path(key),
                line=ctx.line(key),
            ) from None

    def limit(key: str, maximum: float | None = None, unit: str = "") -> float | None:
        if key not in d:
            return None
        return as_num(ctx, f"gpu.{key}", d[key], maximum=maximum, unit=unit)

    limits: dict[str, float | None] = {
        "min_vram_free_gb": limit("min_vram_free_gb", unit=" (GB)"),
        "min_vram_total_gb": limit("min_vram_total_gb", unit=" (GB)"),
        "max_load": limit("max_load", maximum=1.0),
    }
    wants_gpu = bool(models) or any(v is not None for v in limits.values())
    count = as_int(ctx, "gpu.count", d["count"], minimum=0) if "count" in d else int(wants_gpu)
    if count == 0 and wants_gpu:
        bad = "models" if models else next(k for k, v in limits.items() if v is not None)
        raise ctx.error(
            f"gpu.{bad}",
            "a GPU requirement needs gpu.count >= 1, but gpu.count = 0 (a CPU-only job); "
            f"set gpu.count to 1 or more, or remove gpu.{bad}",
        )
    return GpuReq(
        models=models,
        count=count,
        min_vram_free_gb=limits["min_vram_free_gb"],
        min_vram_total_gb=limits["min_vram_total_gb"],
        max_load=limits["max_load"],
    )


def _software(ctx: Ctx, d: Mapping[str, Any]) -> SoftwareReq:
    driver: str | None = None
    if "min_driver" in d:
        v = d["min_driver"]
        if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
            v = str(v)
        if not isinstance(v, str) or not _DRIVER_RE.match(v.strip()):
            raise ctx.error(
                "software.min_driver",
                f'expected a driver version like "535" or "535.104.05" (digits and dots, as a '
                f"string), got {show(v)}",
            )
        driver = v.strip()
    arch: str | None = None
    if "arch" in d:
        raw = as_str(ctx, "software.arch", d["arch"])
        arch = normalize_arch(raw)
        if arch not in ("x86_64", "aarch64"):
            raise ctx.error(
                "software.arch",
                f"unknown architecture {raw!r}; accepted: {', '.join(ARCH_ALIASES)}",
            )
    return SoftwareReq(
        images_required=as_strs(ctx, "software.images_required", d.get("images_required", [])),
        images_preferred=as_strs(ctx, "software.images_preferred", d.get("images_preferred", [])),
        min_driver=driver,
        arch=arch,
    )


def _placement(ctx: Ctx, d: Mapping[str, Any]) -> PlacementReq:
    k = "placement."
    statuses = PlacementReq().statuses
    if "statuses" in d:
        statuses = as_choices(ctx, k + "statuses", d["statuses"], STATUSES, "status")
        if not statuses:
            raise ctx.error(
                k + "statuses", f"must name at least one status; accepted: {', '.join(STATUSES)}"
            )
    staleness: timedelta | None = None
    if "max_staleness" in d:
        try:
            staleness = parse_duration(d["max_staleness"])
        except ValueError as exc:
            raise ctx.error(k + "max_staleness", str(exc)) from None
        if staleness <= timedelta(0):
            raise ctx.error(k + "max_staleness", 'expected a duration > 0, e.g. "10m"')
    only = as_strs(ctx, k + "only_nodes", d.get("only_nodes", []))
    exclude = as_strs(ctx, k + "exclude_nodes", d.get("exclude_nodes", []))
    both = [n for n in only if n in exclude]
    if both:
        raise ctx.error(
            k + "exclude_nodes",
            f"names {', '.join(repr(n) for n in both)}, also listed in placement.only_nodes: "
            "no node could be both; remove it from one of the lists",
        )
    return PlacementReq(
        statuses=statuses,
        continents=as_choices(
            ctx, k + "continents", d.get("continents", []), CONTINENTS, "continent"
        ),
        countries=as_codes(
            ctx,
            k + "countries",
            d.get("countries", []),
            _COUNTRY_RE,
            'an ISO 3166-1 alpha-2 country code (two letters, e.g. "DE")',
        ),
        subdivisions=as_codes(
            ctx,
            k + "subdivisions",
            d.get("subdivisions", []),
            _SUBDIVISION_RE,
            'an ISO 3166-2 subdivision code (e.g. "US-CA", "DE-BY")',
        ),
        compliance=as_choices(
            ctx, k + "compliance", d.get("compliance", []), COMPLIANCE_TAGS, "compliance tag"
        ),
        min_reputation=optional(
            d, "min_reputation", lambda v: as_num(ctx, k + "min_reputation", v, maximum=100.0)
        ),
        max_staleness=staleness,
        exclude_operators=as_strs(ctx, k + "exclude_operators", d.get("exclude_operators", [])),
        exclude_nodes=exclude,
        only_nodes=only,
        allow_suspended=as_bool(ctx, k + "allow_suspended", d.get("allow_suspended", False)),
        allow_deleted=as_bool(ctx, k + "allow_deleted", d.get("allow_deleted", False)),
    )


def _preferences(ctx: Ctx, d: Mapping[str, Any]) -> Preferences:
    strategy = as_one_of(ctx, "preferences.strategy", d.get("strategy", "pack"), ("pack", "spread"))
    weights: dict[str, float] = {}
    if "weights" in d:
        table = as_table(ctx, "preferences.weights", d["weights"])
        check_keys(ctx, "preferences.weights", table, SCORE_TERMS)
        for term, w in table.items():
            weights[term] = as_num(ctx, f"preferences.weights.{term}", w)
    return Preferences(strategy=cast(Strategy, strategy), weights=weights)


def _gang(ctx: Ctx, d: Mapping[str, Any]) -> GangReq:
    same = None
    if "same" in d:
        same = as_one_of(ctx, "gang.same", d["same"], ("continent", "country", "subdivision"))
    distinct = as_one_of(ctx, "gang.distinct", d.get("distinct", "node"), ("operator", "node"))
    operators = as_one_of(ctx, "gang.operators", d.get("operators", "spread"), ("spread", "pack"))
    return GangReq(
        same=cast(SameScope | None, same),
        distinct=cast(DistinctScope, distinct),
        operators=cast(Literal["spread", "pack"], operators),
    )


def _job(ctx: Ctx, data: object, default_name: str) -> Job:
    top = as_table(ctx, "", data)
    check_keys(ctx, "", top, _TOP)
    sections: dict[str, Mapping[str, Any]] = {}
    for name, allowed in _SECTIONS.items():
        sec = as_table(ctx, name, top.get(name, {}))
        check_keys(ctx, name, sec, allowed)
        sections[name] = sec

    def simple(section: str, key: str, unit: str) -> float | None:
        return optional(
            sections[section], key, lambda v: as_num(ctx, f"{section}.{key}", v, unit=unit)
        )

    return Job(
        name=as_str(ctx, "name", top["name"]) if "name" in top else default_name,
        nodes=as_int(ctx, "nodes", top.get("nodes", 1), minimum=1),
        priority=as_int(ctx, "priority", top.get("priority", 0)),
        gpu=_gpu(ctx, sections["gpu"]),
        cpu=CpuReq(
            min_cores=optional(
                sections["cpu"], "min_cores", lambda v: as_int(ctx, "cpu.min_cores", v, minimum=0)
            )
        ),
        memory=MemoryReq(min_free_gb=simple("memory", "min_free_gb", " (GB)")),
        disk=DiskReq(min_free_gb=simple("disk", "min_free_gb", " (GB)")),
        software=_software(ctx, sections["software"]),
        placement=_placement(ctx, sections["placement"]),
        preferences=_preferences(ctx, sections["preferences"]),
        gang=_gang(ctx, sections["gang"]),
    )


# ---------------------------------------------------------------------------------------------
# Public entry points


def job_from_dict(data: Mapping[str, Any], *, source: str = "<dict>") -> Job:
    """Validate one job given as a dict (the TOML structure, see docs/jobs.md) into a Job.

    Raises :class:`~nodeselect.JobSpecError` (``key`` set, ``line`` unknown) on any problem.
    """
    return _job(Ctx(source), data, "job")


def _read(path: str | Path) -> tuple[str, dict[str, Any], dict[str, int]]:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise JobSpecError(f"cannot read the job file: {exc}", source=source) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        raise JobSpecError(
            f"not valid TOML: {exc}", source=source, line=int(found.group(1)) if found else None
        ) from None
    return source, data, key_lines(text)


def load_jobs(path: str | Path) -> tuple[Job, ...]:
    """Load every job of a TOML file: its ``[[job]]`` tables, or the one job at top level.

    A job without ``name`` is named after the file (``queue-2`` for the 2nd ``[[job]]`` of
    ``queue.toml``).
    """
    source, data, lines = _read(path)
    stem = Path(path).stem
    if "job" not in data:
        return (_job(Ctx(source, "", lines), data, stem),)
    jobs = data["job"]
    if not isinstance(jobs, list):
        raise JobSpecError(
            "expected [[job]] tables (an array of tables), got a single [job] table or value",
            source=source,
            key="job",
            line=lines.get("job[0]", lines.get("job")),
        )
    others = [k for k in data if k != "job"]
    if others:
        key = others[0]
        raise JobSpecError(
            f"a file of [[job]] tables cannot also have top-level keys ({', '.join(others)}); "
            "move them into each [[job]]",
            source=source,
            key=key,
            line=lines.get(key),
        )
    return tuple(
        _job(Ctx(source, f"job[{i}].", lines), item, f"{stem}-{i + 1}")
        for i, item in enumerate(jobs)
    )


def load_job(path: str | Path) -> Job:
    """Load the one job of a TOML file (top-level keys, or a single ``[[job]]`` table)."""
    jobs = load_jobs(path)
    if len(jobs) != 1:
        raise JobSpecError(
            f"expected one job, found {len(jobs)} [[job]] tables (use load_jobs / `place`)",
            source=str(path),
        )
    return jobs[0]


def job_to_dict(job: Job) -> dict[str, Any]:
    """A Job as the TOML-ready dict ``job_from_dict`` accepts (unset limits are left out).

    ``job_from_dict(job_to_dict(job)) == job`` for every valid job.
    """
    gpu: dict[str, Any] = {"count": job.gpu.count}
    if job.gpu.models:
        gpu["models"] = list(job.gpu.models)
    for k in ("min_vram_free_gb", "min_vram_total_gb", "max_load"):
        if getattr(job.gpu, k) is not None:
            gpu[k] = getattr(job.gpu, k)
    sw: dict[str, Any] = {
        "images_required": list(job.software.images_required),
        "images_preferred": list(job.software.images_preferred),
    }
    if job.software.min_driver is not None:
        sw["min_driver"] = job.software.min_driver
    if job.software.arch is not None:
        sw["arch"] = job.software.arch
    p = job.placement
    pl: dict[str, Any] = {
        "statuses": list(p.statuses),
        "continents": list(p.continents),
        "countries": list(p.countries),
        "subdivisions": list(p.subdivisions),
        "compliance": list(p.compliance),
        "exclude_operators": list(p.exclude_operators),
        "exclude_nodes": list(p.exclude_nodes),
        "only_nodes": list(p.only_nodes),
        "allow_suspended": p.allow_suspended,
        "allow_deleted": p.allow_deleted,
    }
    if p.min_reputation is not None:
        pl["min_reputation"] = p.min_reputation
    if p.max_staleness is not None:
        pl["max_staleness"] = format_duration(p.max_staleness)
    gang: dict[str, Any] = {"distinct": job.gang.distinct, "operators": job.gang.operators}
    if job.gang.same is not None:
        gang["same"] = job.gang.same

    def opt(name: str, value: object) -> dict[str, Any]:
        return {} if value is None else {name: value}

    return {
        "name": job.name,
        "nodes": job.nodes,
        "priority": job.priority,
        "gpu": gpu,
        "cpu": opt("min_cores", job.cpu.min_cores),
        "memory": opt("min_free_gb", job.memory.min_free_gb),
        "disk": opt("min_free_gb", job.disk.min_free_gb),
        "software": sw,
        "placement": pl,
        "preferences": {
            "strategy": job.preferences.strategy,
            "weights": dict(job.preferences.weights),
        },
        "gang": gang,
    }
