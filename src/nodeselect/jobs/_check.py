"""The one job validator: every rule a job must satisfy, for every way a job arrives.

:func:`check_job` takes a :class:`~nodeselect.jobs.Job` -- built by the file loaders from TOML or
a dict, or constructed in Python -- and returns it checked and canonical: strings stripped,
lists de-duplicated, codes upper-cased, GPU models resolved to canonical registry names (sorted),
the architecture in its one spelling (:func:`nodeselect.documents.canonical_arch`), durations as
``timedelta``. Every problem is a :class:`~nodeselect.JobSpecError` naming the dotted key (and,
through the loader's :class:`Ctx`, the file and line).

The loaders (:mod:`nodeselect.jobs._file`) only give a job its shape (tables, known keys,
defaults); the engine's ``compile_job`` calls this on every job it compiles, so a file, a dict
and a Python object obey the same rules with the same messages.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Final, Literal, cast

from nodeselect.documents import (
    ARCH_SPELLINGS,
    COMPLIANCE_TAGS,
    CONTINENTS,
    STATUSES,
    canonical_arch,
)
from nodeselect.errors import GPUNameError, JobGPUNameError
from nodeselect.gpus import resolve_job_models
from nodeselect.jobs._model import (
    DEFAULT_WEIGHTS,
    SCORE_TERMS,
    Alternative,
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
    parse_duration,
    show,
)

__all__ = ["check_job"]

_DRIVER_RE: Final = re.compile(r"^\d+(\.\d+)*$")
_COUNTRY_RE: Final = re.compile(r"^[A-Z]{2}$")
_SUBDIVISION_RE: Final = re.compile(r"^[A-Z]{2}-[A-Z0-9]{1,3}$")
_LIMITS: Final = (
    ("min_vram_free_gb", None, " (GB)"),
    ("min_vram_total_gb", None, " (GB)"),
    ("max_load", 1.0, ""),
)


def _section(ctx: Ctx, key: str, value: object, kind: type[Any]) -> Any:
    if not isinstance(value, kind):
        raise ctx.error(key, f"expected a {kind.__name__} (the [{key}] table), got {show(value)}")
    return value


def _opt_num(
    ctx: Ctx, key: str, value: object, *, maximum: float | None = None, unit: str = ""
) -> float | None:
    return None if value is None else as_num(ctx, key, value, maximum=maximum, unit=unit)


def _gpu(ctx: Ctx, g: GpuReq) -> GpuReq:
    models: tuple[str, ...] = ()
    if g.models:
        names = as_strs(ctx, "gpu.models", g.models)
        try:
            models = tuple(sorted(resolve_job_models(names)))
        except GPUNameError as exc:
            idx = names.index(exc.name) if exc.name in names else None
            key = "gpu.models" if idx is None else f"gpu.models[{idx}]"
            source, line = ctx.where(key)
            raise JobGPUNameError(
                str(exc),
                name=exc.name,
                suggestions=exc.suggestions,
                source=source,
                key=ctx.path(key),
                line=line,
            ) from None
    limits = {
        name: _opt_num(ctx, f"gpu.{name}", getattr(g, name), maximum=top, unit=unit)
        for name, top, unit in _LIMITS
    }
    count = as_int(ctx, "gpu.count", g.count, minimum=0)
    if count == 0:
        bad = "models" if models else next((k for k, v in limits.items() if v is not None), None)
        if bad is not None:
            raise ctx.error(
                f"gpu.{bad}",
                "impossible requirement: a GPU requirement needs gpu.count >= 1, but "
                f"gpu.count = 0 (a CPU-only job); set gpu.count to 1 or more, or remove gpu.{bad}",
            )
    return GpuReq(
        models=models,
        count=count,
        min_vram_free_gb=limits["min_vram_free_gb"],
        min_vram_total_gb=limits["min_vram_total_gb"],
        max_load=limits["max_load"],
    )


def _software(ctx: Ctx, s: SoftwareReq) -> SoftwareReq:
    driver: str | None = None
    if s.min_driver is not None:
        v: object = s.min_driver
        if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
            v = str(v)
        if not isinstance(v, str) or not _DRIVER_RE.match(v.strip()) or not int(v.split(".")[0]):
            raise ctx.error(
                "software.min_driver",
                f'expected a driver version like "535" or "535.104.05" (digits and dots, as a '
                f"string, major version >= 1), got {show(v)}",
            )
        driver = v.strip()
    arch: str | None = None
    if s.arch is not None:
        raw = as_str(ctx, "software.arch", s.arch)
        arch = canonical_arch(raw)
        if arch not in ("x86_64", "aarch64"):
            raise ctx.error(
                "software.arch",
                f"unknown architecture {raw!r}; accepted: {', '.join(ARCH_SPELLINGS)}",
            )
    return SoftwareReq(
        images_required=as_strs(ctx, "software.images_required", s.images_required),
        images_preferred=as_strs(ctx, "software.images_preferred", s.images_preferred),
        min_driver=driver,
        arch=arch,
    )


def _staleness(ctx: Ctx, value: object) -> timedelta | None:
    key = "placement.max_staleness"
    if value is None:
        return None
    if isinstance(value, timedelta):
        age = value
    else:
        try:
            age = parse_duration(value)
        except ValueError as exc:
            raise ctx.error(key, str(exc)) from None
    if age <= timedelta(0):
        raise ctx.error(key, 'expected a duration > 0, e.g. "10m"')
    return age


def _placement(ctx: Ctx, p: PlacementReq) -> PlacementReq:
    k = "placement."
    only = as_strs(ctx, k + "only_nodes", p.only_nodes)
    exclude = as_strs(ctx, k + "exclude_nodes", p.exclude_nodes)
    both = [n for n in only if n in exclude]
    if both:
        raise ctx.error(
            k + "exclude_nodes",
            f"names {', '.join(repr(n) for n in both)}, also listed in placement.only_nodes: "
            "no node could be both; remove it from one of the lists",
        )
    return PlacementReq(
        statuses=as_choices(ctx, k + "statuses", p.statuses, STATUSES, "status"),
        continents=as_choices(ctx, k + "continents", p.continents, CONTINENTS, "continent"),
        countries=as_codes(
            ctx,
            k + "countries",
            p.countries,
            _COUNTRY_RE,
            'an ISO 3166-1 alpha-2 country code (two letters, e.g. "DE")',
        ),
        subdivisions=as_codes(
            ctx,
            k + "subdivisions",
            p.subdivisions,
            _SUBDIVISION_RE,
            'an ISO 3166-2 subdivision code (e.g. "US-CA", "DE-BY")',
        ),
        compliance=as_choices(
            ctx, k + "compliance", p.compliance, COMPLIANCE_TAGS, "compliance tag"
        ),
        min_reputation=_opt_num(ctx, k + "min_reputation", p.min_reputation, maximum=100.0),
        max_staleness=_staleness(ctx, p.max_staleness),
        exclude_operators=as_strs(ctx, k + "exclude_operators", p.exclude_operators),
        exclude_nodes=exclude,
        only_nodes=only,
        allow_suspended=as_bool(ctx, k + "allow_suspended", p.allow_suspended),
        allow_deleted=as_bool(ctx, k + "allow_deleted", p.allow_deleted),
    )


def _preferences(ctx: Ctx, p: Preferences) -> Preferences:
    strategy = as_one_of(ctx, "preferences.strategy", p.strategy, ("pack", "spread"))
    table = as_table(ctx, "preferences.weights", p.weights)
    check_keys(ctx, "preferences.weights", table, SCORE_TERMS)
    weights = {t: as_num(ctx, f"preferences.weights.{t}", w) for t, w in table.items()}
    if not any(weights.get(t, DEFAULT_WEIGHTS[t]) > 0 for t in SCORE_TERMS):
        raise ctx.error("preferences.weights", "every weight is 0; give at least one weight > 0")
    return Preferences(strategy=cast(Strategy, strategy), weights=weights)


def _gang(ctx: Ctx, g: GangReq) -> GangReq:
    same = None
    if g.same is not None:
        same = as_one_of(ctx, "gang.same", g.same, ("continent", "country", "subdivision"))
    distinct = as_one_of(ctx, "gang.distinct", g.distinct, ("operator", "node"))
    operators = as_one_of(ctx, "gang.operators", g.operators, ("spread", "pack"))
    return GangReq(
        same=cast(SameScope | None, same),
        distinct=cast(DistinctScope, distinct),
        operators=cast(Literal["spread", "pack"], operators),
    )


#: The default of each section: valid and canonical, so a section equal to it is returned as is
#: (most sections of most jobs; attrs equality is one tuple comparison).
_DEFAULT_SECTIONS: Final = {
    cls: cls()
    for cls in (GpuReq, CpuReq, MemoryReq, DiskReq, SoftwareReq, PlacementReq, Preferences, GangReq)
}
#: Jobs checked without a context, by identity: ``id -> (the job, its weights, the result)``.
#: A Job is frozen except its weights dict, which the entry compares; the job is held, so its
#: id cannot be reused while the entry lives. Bounded; the oldest entries go first. A job whose
#: canonical form is another object takes two entries; a survey's worker ranks each batch
#: once per shard it holds, with up to 3 batches of 4,000 jobs at hand (24k entries): at 4,096
#: entries a 4,000-job batch evicted itself, and its every tile checked each job again (9.5
#: against 0.3 us a job: ~10 % of a 4,000-job x 250k-node tile). An entry holds ~120 bytes.
_CHECKED: dict[int, tuple[Job, tuple[tuple[str, float], ...], Job]] = {}
_CHECKED_MAX: Final = 1 << 15


def _cached(job: Job) -> Job | None:
    hit = _CHECKED.get(id(job))
    if hit is not None and hit[0] is job and hit[1] == tuple(job.preferences.weights.items()):
        return hit[2]
    return None


def _remember(job: Job, out: Job) -> None:
    if len(_CHECKED) >= _CHECKED_MAX:
        for k in list(_CHECKED)[: _CHECKED_MAX // 4]:
            del _CHECKED[k]
    _CHECKED[id(job)] = (job, tuple(job.preferences.weights.items()), out)
    if out is not job:
        _CHECKED[id(out)] = (out, tuple(out.preferences.weights.items()), out)


#: Per section class, the fields whose type a value-equal section may differ in (``1``,
#: ``1.0`` and ``True`` are equal and hash alike; a bool count is refused, a float is not).
_TYPED: Final[dict[type[Any], tuple[str, ...]]] = {
    GpuReq: ("count", "min_vram_free_gb", "min_vram_total_gb", "max_load"),
    CpuReq: ("min_cores",),
    MemoryReq: ("min_free_gb",),
    DiskReq: ("min_free_gb",),
    SoftwareReq: ("min_driver",),
    PlacementReq: ("min_reputation", "max_staleness", "allow_suspended", "allow_deleted"),
    GangReq: (),
}
#: Sections that passed, by value and field types -> their canonical form (a batch of jobs
#: repeats a few sections many times). Bounded; cleared when full.
_SECTIONS: dict[tuple[object, ...], object] = {}
_SECTIONS_MAX: Final = 16384


def _part(c: Ctx, key: str, value: object, cls: type[Any], check: Any) -> Any:
    section = _section(c, key, value, cls)
    if section == _DEFAULT_SECTIONS[cls]:
        return section
    typed = _TYPED.get(cls)
    memo: tuple[object, ...] | None = None
    if cls is Preferences and isinstance(section.weights, dict):
        w = section.weights
        memo = (Preferences, section.strategy, *w.items(), *map(type, w.values()))
    if typed is not None or memo is not None:
        if memo is None:
            memo = (section, *[type(getattr(section, f)) for f in typed or ()])
        try:
            hit = _SECTIONS.get(memo)
        except TypeError:  # a list where a tuple belongs: checked (and refused or copied) below
            memo = hit = None
        if hit is not None:
            return hit
    out = check(c, section)
    if memo is not None:
        if len(_SECTIONS) >= _SECTIONS_MAX:
            _SECTIONS.clear()
        _SECTIONS[memo] = out
    return out


def _cpu(c: Ctx, cpu: CpuReq) -> CpuReq:
    cores = cpu.min_cores
    return CpuReq(min_cores=None if cores is None else as_int(c, "cpu.min_cores", cores, minimum=0))


def _memory(c: Ctx, m: MemoryReq) -> MemoryReq:
    return MemoryReq(min_free_gb=_opt_num(c, "memory.min_free_gb", m.min_free_gb, unit=" (GB)"))


def _disk(c: Ctx, d: DiskReq) -> DiskReq:
    return DiskReq(min_free_gb=_opt_num(c, "disk.min_free_gb", d.min_free_gb, unit=" (GB)"))


def _alternatives(c: Ctx, value: object) -> tuple[Alternative, ...]:
    """Each alternative's sections checked like the base job's, under ``alternatives[i].``."""
    if not isinstance(value, tuple | list):
        raise c.error(
            "alternatives", f"expected a list of alternatives (Alternative), got {show(value)}"
        )
    out: list[Alternative] = []
    for i, alt in enumerate(value):
        key = f"alternatives[{i}]"
        if not isinstance(alt, Alternative):
            raise c.error(key, f"expected a nodeselect.jobs.Alternative, got {show(alt)}")
        sub = c.sub(f"{key}.")
        parts = {
            name: None if section is None else _part(sub, name, section, cls, check)
            for name, cls, check, section in (
                ("gpu", GpuReq, _gpu, alt.gpu),
                ("cpu", CpuReq, _cpu, alt.cpu),
                ("memory", MemoryReq, _memory, alt.memory),
                ("disk", DiskReq, _disk, alt.disk),
            )
        }
        out.append(Alternative(**parts))
    return tuple(out)


def check_job(job: Job, ctx: Ctx | None = None) -> Job:
    """``job`` checked against every rule of docs/jobs.md and made canonical.

    Args:
        job: the job, from a loader or constructed in Python.
        ctx: where it came from (file, key prefix, key lines) for error messages; default
            ``"<job>"``.

    Raises:
        TypeError: ``job`` is not a :class:`Job`.
        JobSpecError: a value breaks a rule (the key and what is accepted are named);
            :class:`~nodeselect.JobGPUNameError` for an unknown or ambiguous GPU model.
    """
    if not isinstance(job, Job):
        raise TypeError(f"expected a nodeselect.Job, got {type(job).__name__}")
    hit = _cached(job)
    if hit is not None:
        return hit
    c = Ctx("<job>") if ctx is None else ctx
    out = Job(
        name=as_str(c, "name", job.name),
        nodes=as_int(c, "nodes", job.nodes, minimum=1),
        priority=as_int(c, "priority", job.priority),
        gpu=_part(c, "gpu", job.gpu, GpuReq, _gpu),
        cpu=_part(c, "cpu", job.cpu, CpuReq, _cpu),
        memory=_part(c, "memory", job.memory, MemoryReq, _memory),
        disk=_part(c, "disk", job.disk, DiskReq, _disk),
        software=_part(c, "software", job.software, SoftwareReq, _software),
        placement=_part(c, "placement", job.placement, PlacementReq, _placement),
        preferences=_part(c, "preferences", job.preferences, Preferences, _preferences),
        gang=_part(c, "gang", job.gang, GangReq, _gang),
        alternatives=_alternatives(c, job.alternatives) if job.alternatives else (),
    )
    if out == job:
        out = job
    _remember(job, out)
    return out
