"""The plain-Python reference of the engine's semantics, over node documents (not the table).

Written for clarity, node by node, straight from docs/scoring.md. Values the table stores as
float32 are rounded to float32 here too (``f32``); everything else is float64.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime

from nodeselect.documents._timestamps import parse_timestamp
from nodeselect.gpus import canonical_node_gpu, gpu_code, resolve_job_models
from nodeselect.jobs._model import DEFAULT_WEIGHTS, SCORE_TERMS, Job
from reference_table import implausible, ram_known, told_load, told_units, vram_known

__all__ = ["RefNode", "RefResult", "reference_rank", "tie_key"]

NAN = math.nan
FRESH_S = 900.0
FRESHNESS_SCALE_S = 600.0
TELEMETRY_SCALE_S = 300.0
M64 = (1 << 64) - 1
ARCH = {
    "x8664": "x86_64",
    "amd64": "x86_64",
    "x64": "x86_64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv8": "arm64",
}


def f32(x: float) -> float:
    """Round to float32 as the table stores it."""
    if math.isnan(x):
        return x
    try:
        return struct.unpack("f", struct.pack("f", x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def epoch_s(s: str | None) -> float:
    if s is None:
        return NAN
    try:
        dt = parse_timestamp(s)
    except ValueError:
        return NAN
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    us = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    return us / 1e6


def arch_of(raw: str | None) -> str:
    if not raw:
        return ""
    key = re.sub(r"[^a-z0-9]+", "", raw.lower())
    return ARCH.get(key, raw.strip().lower())


def driver_of(v: str | None) -> int:
    if not v:
        return 0
    nums = []
    for p in v.strip().split(".")[:3]:
        if not p.isdigit():
            return 0
        nums.append(min(int(p), 999) if nums else min(int(p), 2000))
    nums += [0] * (3 - len(nums))
    return nums[0] * 1_000_000 + nums[1] * 1000 + nums[2]


def names_agree(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return True
    norm = lambda s: re.sub(r"[^a-z0-9]+", "", s.lower())  # noqa: E731
    if norm(a) == norm(b):
        return True
    ca = canonical_node_gpu(a)
    return ca is not None and ca == canonical_node_gpu(b)


def tie_key(uuid: str, seed: int) -> int:
    def mix(x: int) -> int:
        z = (x + 0x9E3779B97F4A7C15) & M64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    h = sum(b * pow(0x100000001B3, i, 1 << 64) for i, b in enumerate(uuid.encode())) & M64
    return mix(h ^ mix(seed & M64))


@dataclass
class RefGpu:
    code: int
    free: float  # effective, float32-rounded
    total: float
    load: float  # for the gpu-load constraint (fresh telemetry only)
    raw_load: float  # telemetry load regardless of age (idle score)


@dataclass
class RefNode:
    """One node's values, derived from its document and facts exactly as the docs say."""

    uuid: str
    name: str | None
    operator: str | None
    reputation: float
    cores: int
    ram_free: float
    disk_free: float
    last_seen: float
    tele: float
    cpu_load: float
    suspended: bool
    deleted: bool
    arch: str
    driver: int
    images: set[str]
    status: str | None
    compliance: frozenset[str]
    continent: str | None
    country: str | None
    subdivision: str | None
    gpus: list[RefGpu] = field(default_factory=list)


#: The documented units of the telemetry (docs/units.md): what an untold reference assumes.
DEFAULT_UNITS = {"ram": "bytes", "vram": "MiB", "gpu_load": "fraction", "cpu_load": "fraction"}
#: What each telemetry unit is per nodeselect unit (GB = 2**30 bytes; fraction).
UNIT_FACTORS = {"bytes": float(2**30), "MiB": 1024.0, "GB": 1.0, "fraction": 1.0, "percent": 100.0}


def ref_node(fn: object, now_s: float, units: object = None, *, checks: bool = True) -> RefNode:
    """One node's values; telemetry read in ``units``: a simulator ``Dialect`` telling the true
    ``ram_unit``/``vram_unit``/``load_unit``, or the units a table decided (a ``Units``; an
    undecided unit means the telemetry is not used), default the documented defaults. Per node,
    implausible telemetry is not used either (docs/units.md; ``reference_table``'s rules)."""
    told = told_units(units) if units is not None else dict(DEFAULT_UNITS)
    ram_f = None if told["ram"] is None else UNIT_FACTORS[told["ram"]]
    vram_f = None if told["vram"] is None else UNIT_FACTORS[told["vram"]]
    d = fn.lean  # type: ignore[attr-defined]
    f = fn.facts  # type: ignore[attr-defined]
    ev = d.latest_hardware_event
    md = ev.metadata if ev is not None else None
    tele = NAN
    if ev is not None:
        tele = ev.timestamp_ms / 1000.0 if ev.timestamp_ms is not None else epoch_s(ev.created_at)
    fresh = (now_s - tele) <= FRESH_S
    static = NAN
    for r in d.rams or []:
        if r.memory_gb_available is not None:
            static = (0.0 if math.isnan(static) else static) + r.memory_gb_available
    ram = static
    r = md.ram if md is not None else None
    if fresh and r is not None and r.free is not None and ram_f is not None:
        free = r.free / ram_f
        total = NAN if r.total is None else r.total / ram_f
        if not checks or not implausible(free, total, ram_known(d)):
            ram = free
    disks = [
        h.available_capacity_gb for h in d.hard_drives or [] if h.available_capacity_gb is not None
    ]
    sw = d.current_software
    hw_os = d.current_hardware.operating_system if d.current_hardware else None
    sw_os = sw.operating_system if sw else None
    arch = next(
        (o.architecture for o in (hw_os, sw_os, d.operating_system) if o and o.architecture), None
    )
    gpus = d.gpus or []
    tg = md.gpu.gpus if md is not None and md.gpu is not None else None
    matched = (
        tg is not None
        and len(tg) == len(gpus)
        and all(names_agree(t.name, g.name) for t, g in zip(tg, gpus, strict=True))
    )
    out_gpus = []
    for j, g in enumerate(gpus):
        t = tg[j] if matched and tg is not None else None
        tv = t.vram if t is not None else None
        g_max = NAN if g.vram_gb_max is None else float(g.vram_gb_max)
        tfree = NAN if tv is None or tv.free is None or vram_f is None else tv.free / vram_f
        ttotal = NAN if tv is None or tv.total is None or vram_f is None else tv.total / vram_f
        if checks and implausible(tfree, ttotal, vram_known(d, j, g_max)):
            tfree = ttotal = NAN
        total = ttotal if math.isnan(g_max) else g_max
        reported = NAN if g.vram_gb_available is None else float(g.vram_gb_available)
        free = tfree if fresh and not math.isnan(tfree) else reported
        raw_load = (
            told_load(None if t is None else t.load, told["gpu_load"])
            if checks
            else NAN
            if t is None or t.load is None
            else float(t.load) / UNIT_FACTORS[told["gpu_load"] or "fraction"]
        )
        code = gpu_code(canonical_node_gpu(g.name, None if math.isnan(total) else total))
        out_gpus.append(
            RefGpu(code, f32(free), f32(total), f32(raw_load) if fresh else NAN, f32(raw_load))
        )
    cpu_load = told_load(None if md is None or md.cpu is None else md.cpu.average, told["cpu_load"])
    return RefNode(
        uuid=d.uuid,
        name=d.name or None,
        operator=d.operator_account_uuid or None,
        reputation=f32(NAN if d.reputation is None else float(d.reputation)),
        cores=sum(c.num_cores or 0 for c in d.cpus or []),
        ram_free=f32(ram),
        disk_free=f32(float(max(disks)) if disks else NAN),
        last_seen=epoch_s(d.last_seen_at),
        tele=tele,
        cpu_load=f32(cpu_load),
        suspended=d.suspended_at is not None,
        deleted=d.deleted_at is not None,
        arch=arch_of(arch),
        driver=driver_of(sw.nvidia_driver.version) if sw and sw.nvidia_driver else 0,
        images=set(sw.cached_image_tags or []) if sw else set(),
        status=f.status,
        compliance=f.compliance_tags,
        continent=f.continent,
        country=f.country.upper() if f.country else None,
        subdivision=f.subdivision.upper() if f.subdivision else None,
        gpus=out_gpus,
    )


def gpu_limits(job: Job, codes: frozenset[int] | None, g: RefGpu) -> list[str]:
    """The per-GPU limits (attribution order) one GPU fails."""
    out = []
    if codes is not None and g.code not in codes:
        out.append("gpu-model")
    if job.gpu.min_vram_total_gb is not None and not g.total >= job.gpu.min_vram_total_gb:
        out.append("gpu-vram-total")
    if job.gpu.min_vram_free_gb is not None and not g.free >= job.gpu.min_vram_free_gb:
        out.append("gpu-vram-free")
    if job.gpu.max_load is not None and not g.load <= job.gpu.max_load:
        out.append("gpu-load")
    return out


def node_failures(job: Job, n: RefNode, now_s: float, codes: frozenset[int] | None) -> list[str]:
    """Every constraint node ``n`` fails (GPU group blamed on one constraint), in stable order."""
    p, fails = job.placement, []
    if p.statuses and n.status not in p.statuses:
        fails.append("status")
    if n.suspended and not p.allow_suspended:
        fails.append("suspended")
    if n.deleted and not p.allow_deleted:
        fails.append("deleted")
    if p.continents or p.countries or p.subdivisions:
        ok = (not p.continents or n.continent in {c.upper() for c in p.continents}) and (
            not p.countries or n.country in {c.upper() for c in p.countries}
        )
        ok = ok and (not p.subdivisions or n.subdivision in {s.upper() for s in p.subdivisions})
        if not ok:
            fails.append("region")
    if p.compliance and not set(p.compliance) <= n.compliance:
        fails.append("compliance")
    if p.exclude_operators and n.operator in p.exclude_operators:
        fails.append("operator")
    if p.exclude_nodes or p.only_nodes:
        keys = {n.uuid} | ({n.name} if n.name else set())
        if keys & set(p.exclude_nodes) or (p.only_nodes and not keys & set(p.only_nodes)):
            fails.append("node")
    if p.min_reputation is not None and not n.reputation >= p.min_reputation:
        fails.append("reputation")
    if p.max_staleness is not None and not (now_s - n.last_seen) <= p.max_staleness.total_seconds():
        fails.append("staleness")
    if job.software.arch and n.arch != arch_of(job.software.arch):
        fails.append("arch")
    if job.software.min_driver and not n.driver >= driver_of(job.software.min_driver):
        fails.append("driver")
    if job.software.images_required and not set(job.software.images_required) <= n.images:
        fails.append("images")
    if job.cpu.min_cores is not None and not n.cores >= job.cpu.min_cores:
        fails.append("cpu-cores")
    if job.memory.min_free_gb is not None and not n.ram_free >= job.memory.min_free_gb:
        fails.append("ram-free")
    if job.disk.min_free_gb is not None and not n.disk_free >= job.disk.min_free_gb:
        fails.append("disk-free")
    c = job.gpu.count
    if c > 0:
        if len(n.gpus) < c:
            fails.append("gpu-count")
        else:
            order = ["gpu-model", "gpu-vram-total", "gpu-vram-free", "gpu-load"]
            failed = [set(gpu_limits(job, codes, g)) for g in n.gpus]
            for k, name in enumerate(order):
                upto = set(order[: k + 1])
                if sum(1 for fs in failed if not fs & upto) < c:
                    fails.append(name)
                    break
    return fails


def scores(
    job: Job, n: RefNode, now_s: float, codes: frozenset[int] | None, max_gpus: int
) -> dict[str, float]:
    """Each weighted term's raw score for node ``n``."""
    c = job.gpu.count
    matching = [g for g in n.gpus if not gpu_limits(job, codes, g)]
    out: dict[str, float] = {}
    rep = n.reputation
    out["reputation"] = 0.0 if math.isnan(rep) else min(max(rep, 0.0), 100.0) / 100.0
    age = max(now_s - n.last_seen, 0.0)
    out["freshness"] = 0.0 if math.isnan(age) else FRESHNESS_SCALE_S / (FRESHNESS_SCALE_S + age)
    pref = list(dict.fromkeys(job.software.images_preferred))
    out["images"] = 1.0 if not pref else sum(1.0 for i in pref if i in n.images) / float(len(pref))
    if c == 0:
        out["fit"] = 1.0 / (1.0 + len(n.gpus))
    elif job.preferences.strategy == "pack":
        out["fit"] = c / float(len(matching)) if matching else 0.0
    else:
        out["fit"] = (len(matching) - c) / float(max_gpus - c) if max_gpus > c else 0.0
    t_age = max(now_s - n.tele, 0.0)
    f = 0.0 if math.isnan(t_age) else TELEMETRY_SCALE_S / (TELEMETRY_SCALE_S + t_age)
    if c == 0:
        load = n.cpu_load
    else:
        known = [min(max(g.raw_load, 0.0), 1.0) for g in matching if not math.isnan(g.raw_load)]
        total = 0.0
        for v in known:
            total += v
        load = total / len(known) if known else NAN
    load = min(max(load, 0.0), 1.0) if not math.isnan(load) else NAN
    out["idle"] = 0.5 if math.isnan(load) else f * (1.0 - load) + (1.0 - f) * 0.5
    return out


@dataclass
class RefResult:
    """Everything the reference decides for one job."""

    order: list[str]  # every feasible uuid, best first
    score: dict[str, float]
    failures: dict[str, list[str]]  # uuid -> failing constraints
    gpu_choice: dict[str, tuple[int, ...]]


def reference_rank(
    job: Job,
    fleet: list[object],
    now: datetime,
    seed: int = 0,
    units: object = None,
    *,
    checks: bool = True,
) -> RefResult:
    """Rank ``fleet`` for ``job`` node by node, reading telemetry in ``units`` (see ref_node);
    ``checks=False`` trusts every telemetry value (the naive reading issue 10 measured)."""
    now_s = now.timestamp()
    codes = (
        frozenset(gpu_code(m) for m in resolve_job_models(job.gpu.models))
        if job.gpu.models
        else None
    )
    nodes = [ref_node(fn, now_s, units, checks=checks) for fn in fleet]
    max_gpus = max((len(n.gpus) for n in nodes), default=0)
    weights = dict(DEFAULT_WEIGHTS) | dict(job.preferences.weights)
    terms = [(t, float(weights[t])) for t in SCORE_TERMS if weights[t] > 0]
    wsum = 0.0
    for _, w in terms:
        wsum += w
    failures, score, choice = {}, {}, {}
    for n in nodes:
        failures[n.uuid] = node_failures(job, n, now_s, codes)
        if failures[n.uuid]:
            continue
        raw = scores(job, n, now_s, codes, max_gpus)
        acc = 0.0
        for t, w in terms:
            acc += w * raw[t]
        score[n.uuid] = acc / wsum
        ok = [j for j, g in enumerate(n.gpus) if not gpu_limits(job, codes, g)]
        sign = 1.0 if job.preferences.strategy == "pack" else -1.0
        ok.sort(
            key=lambda j, n=n: (
                math.isnan(n.gpus[j].free),
                0.0 if math.isnan(n.gpus[j].free) else sign * n.gpus[j].free,
                j,
            )
        )
        choice[n.uuid] = tuple(ok[: job.gpu.count]) if job.gpu.count else ()
    order = sorted(score, key=lambda u: (-score[u], tie_key(u, seed), u))
    return RefResult(order=order, score=score, failures=failures, gpu_choice=choice)
