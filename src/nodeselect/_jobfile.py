"""Job files: TOML (or a plain dict) -> a validated :class:`~nodeselect.Job`, and back.

Every problem is a :class:`~nodeselect.JobSpecError` naming the file, the line (found by
scanning the TOML text, best effort) and the dotted key, saying what was wrong and what is
accepted. An unknown or ambiguous GPU model is a :class:`~nodeselect.JobGPUNameError`, which is
both a ``JobSpecError`` and a ``GPUNameError``. The reference of every key is docs/jobs.md.

After loading, ``Job.gpu.models`` holds *canonical* model names, sorted (a family such as
``"H100"`` is already expanded), so the engine needs no registry look-ups.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Final, Literal, TypeVar, cast

from nodeselect._exceptions import GPUNameError, JobGPUNameError, JobSpecError
from nodeselect._facts import COMPLIANCE_TAGS, CONTINENTS, STATUSES
from nodeselect._gpus import resolve_job_models
from nodeselect._job import (
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

#: Architecture spellings -> the canonical name jobs store (and node tables should compare with).
ARCH_ALIASES: Final[dict[str, str]] = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "x64": "x86_64",
    "x86-64": "x86_64",
    "aarch64": "aarch64",
    "arm64": "aarch64",
    "armv8": "aarch64",
}

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
_DURATION_UNITS: Final[dict[str, int]] = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_RE: Final = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_DRIVER_RE: Final = re.compile(r"^\d+(\.\d+)*$")
_COUNTRY_RE: Final = re.compile(r"^[A-Z]{2}$")
_SUBDIVISION_RE: Final = re.compile(r"^[A-Z]{2}-[A-Z0-9]{1,3}$")

T = TypeVar("T")


def normalize_arch(value: str | None) -> str | None:
    """An architecture spelling -> ``"x86_64"`` / ``"aarch64"``; other values lower-cased."""
    if value is None:
        return None
    v = value.strip().lower()
    return ARCH_ALIASES.get(v, v) or None


def parse_duration(value: object) -> timedelta:
    """``"90s"``, ``"10m"``, ``"2h"``, ``"1d"``, ``"1h30m"``, or a number of seconds -> timedelta.

    Raises ``ValueError`` (with what is accepted) for anything else or a negative duration.
    """
    accepted = 'accepted: a duration like "90s", "10m", "2h", "1d", "1h30m", or seconds'
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected a duration, got {_show(value)}; {accepted}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"expected a duration >= 0, got {value!r}; {accepted}")
        return timedelta(seconds=value)
    text = value.strip().lower().replace(" ", "")
    if not text or _DURATION_RE.sub("", text) != "":
        raise ValueError(f"{value!r} is not a duration; {accepted}")
    seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_RE.findall(text))
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str | float:
    """A timedelta as the shortest exact job-file spelling (``"10m"``), or seconds as a float."""
    us = value // timedelta(microseconds=1)
    if us % 1_000_000:
        return value.total_seconds()
    seconds = us // 1_000_000
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in sorted(_DURATION_UNITS.items(), key=lambda kv: -kv[1]):
        if unit == "w":
            continue
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts)


def _show(value: object) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    return type(value).__name__


# ---------------------------------------------------------------------------------------------
# Finding the line of a key in TOML text (tomllib reports none)


def _strip_comment(line: str) -> str:
    """The line without its comment, honouring quotes (escapes in basic strings included)."""
    quote = ""
    i = 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "#":
            return line[:i]
        i += 1
    return line


def _depth(text: str) -> int:
    """Open brackets/braces minus closed ones, outside quoted strings."""
    depth, quote, i = 0, "", 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        i += 1
    return depth


def _norm_key(raw: str) -> str:
    return ".".join(p.strip().strip("\"'") for p in raw.split("."))


_HEADER_RE: Final = re.compile(r"^\[\[?\s*([^\[\]]+?)\s*\]\]?$")
_ASSIGN_RE: Final = re.compile(
    r"""^((?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*'))*)\s*="""
)
_INLINE_KEY_RE: Final = re.compile(r"[{,]\s*([A-Za-z0-9_\-]+)\s*=")


def _key_lines(text: str) -> dict[str, int]:
    """Dotted key (``job[1].gpu.count`` for the 2nd ``[[job]]``) -> first 1-based line."""
    lines: dict[str, int] = {}
    table = ""
    jobs = -1
    depth = 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw).strip()
        if depth > 0:
            depth = max(0, depth + _depth(line))
            continue
        if not line:
            continue
        header = _HEADER_RE.match(line)
        if header is not None:
            name = _norm_key(header.group(1))
            if line.startswith("[[") and name == "job":
                jobs += 1
                table = f"job[{jobs}]"
            elif (name == "job" or name.startswith("job.")) and jobs >= 0:
                table = f"job[{jobs}]{name[3:]}"
            else:
                table = name
            lines.setdefault(table, lineno)
            continue
        assign = _ASSIGN_RE.match(line)
        if assign is None:
            continue
        key = _norm_key(assign.group(1))
        full = f"{table}.{key}" if table else key
        lines.setdefault(full, lineno)
        rest = line[assign.end() :]
        if rest.lstrip().startswith("{"):
            for inner in _INLINE_KEY_RE.findall(rest):
                lines.setdefault(f"{full}.{inner}", lineno)
        depth = max(0, _depth(rest))
    return lines


# ---------------------------------------------------------------------------------------------
# Validation


class _Ctx:
    """Where a job came from: the source, the key prefix of this job, and the key lines."""

    def __init__(
        self, source: str, prefix: str = "", lines: Mapping[str, int] | None = None
    ) -> None:
        self.source = source
        self.prefix = prefix
        self.lines = lines or {}

    def path(self, key: str) -> str:
        return f"{self.prefix}{key}" if key else self.prefix.rstrip(".")

    def line(self, key: str) -> int | None:
        k = self.path(key)
        while k:
            if k in self.lines:
                return self.lines[k]
            k = k[: k.rindex("[")] if k.endswith("]") and "[" in k else k.rpartition(".")[0]
        return None

    def error(self, key: str, message: str) -> JobSpecError:
        return JobSpecError(
            message, source=self.source, key=self.path(key) or None, line=self.line(key)
        )


def _table(ctx: _Ctx, key: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ctx.error(key, f"expected a table, got {_show(value)}")
    return value


def _check_keys(ctx: _Ctx, key: str, table: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for k in table:
        if k not in allowed:
            close = difflib.get_close_matches(str(k), allowed, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            where = f"{key}.{k}" if key else str(k)
            raise ctx.error(
                where, f"unknown key {k!r}{hint}; accepted keys here: {', '.join(sorted(allowed))}"
            )


def _int(ctx: _Ctx, key: str, value: object, *, minimum: int | None = None) -> int:
    lo = "" if minimum is None else f" >= {minimum}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ctx.error(key, f"expected an integer{lo}, got {_show(value)}")
    if isinstance(value, float):
        if not value.is_integer():
            raise ctx.error(key, f"expected an integer{lo}, got {value!r}")
        value = int(value)
    if minimum is not None and value < minimum:
        raise ctx.error(key, f"expected an integer{lo}, got {value}")
    return value


def _num(
    ctx: _Ctx, key: str, value: object, *, maximum: float | None = None, unit: str = ""
) -> float:
    accepted = "a number >= 0" if maximum is None else f"a number from 0 to {maximum:g}"
    accepted += unit
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ctx.error(key, f"expected {accepted}, got {_show(value)}")
    f = float(value)
    if not math.isfinite(f) or f < 0 or (maximum is not None and f > maximum):
        raise ctx.error(key, f"expected {accepted}, got {value!r}")
    return f


def _str(ctx: _Ctx, key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ctx.error(key, f"expected a non-empty string, got {_show(value)}")
    return value.strip()


def _bool(ctx: _Ctx, key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ctx.error(key, f"expected true or false, got {_show(value)}")
    return value


def _strs(ctx: _Ctx, key: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ctx.error(key, f'expected an array of strings (e.g. ["{value}"]), got a string')
    if not isinstance(value, (list, tuple)):
        raise ctx.error(key, f"expected an array of strings, got {_show(value)}")
    out = [_str(ctx, f"{key}[{i}]", v) for i, v in enumerate(value)]
    return tuple(dict.fromkeys(out))


def _choices(
    ctx: _Ctx, key: str, value: object, accepted: tuple[str, ...], what: str
) -> tuple[str, ...]:
    out = []
    for i, v in enumerate(_strs(ctx, key, value)):
        u = v.upper()
        if u not in accepted:
            raise ctx.error(f"{key}[{i}]", f"unknown {what} {v!r}; accepted: {', '.join(accepted)}")
        out.append(u)
    return tuple(dict.fromkeys(out))


def _pattern(
    ctx: _Ctx, key: str, value: object, pattern: re.Pattern[str], accepted: str
) -> tuple[str, ...]:
    out = []
    for i, v in enumerate(_strs(ctx, key, value)):
        u = v.upper()
        if not pattern.match(u):
            raise ctx.error(f"{key}[{i}]", f"{v!r} is not {accepted}")
        out.append(u)
    return tuple(dict.fromkeys(out))


def _one_of(ctx: _Ctx, key: str, value: object, accepted: tuple[str, ...]) -> str:
    choices = ", ".join(f'"{a}"' for a in accepted)
    if not isinstance(value, str) or value.strip().lower() not in accepted:
        raise ctx.error(key, f"expected one of {choices}, got {_show(value)}")
    return value.strip().lower()


def _opt(section: Mapping[str, Any], key: str, conv: Callable[[object], T]) -> T | None:
    return conv(section[key]) if key in section else None


def _gpu(ctx: _Ctx, d: Mapping[str, Any]) -> GpuReq:
    models: tuple[str, ...] = ()
    if "models" in d:
        names = _strs(ctx, "gpu.models", d["models"])
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
        return _num(ctx, f"gpu.{key}", d[key], maximum=maximum, unit=unit)

    limits: dict[str, float | None] = {
        "min_vram_free_gb": limit("min_vram_free_gb", unit=" (GB)"),
        "min_vram_total_gb": limit("min_vram_total_gb", unit=" (GB)"),
        "max_load": limit("max_load", maximum=1.0),
    }
    wants_gpu = bool(models) or any(v is not None for v in limits.values())
    count = _int(ctx, "gpu.count", d["count"], minimum=0) if "count" in d else int(wants_gpu)
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


def _software(ctx: _Ctx, d: Mapping[str, Any]) -> SoftwareReq:
    driver: str | None = None
    if "min_driver" in d:
        v = d["min_driver"]
        if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
            v = str(v)
        if not isinstance(v, str) or not _DRIVER_RE.match(v.strip()):
            raise ctx.error(
                "software.min_driver",
                f'expected a driver version like "535" or "535.104.05" (digits and dots, as a '
                f"string), got {_show(v)}",
            )
        driver = v.strip()
    arch: str | None = None
    if "arch" in d:
        raw = _str(ctx, "software.arch", d["arch"])
        arch = normalize_arch(raw)
        if arch not in ("x86_64", "aarch64"):
            raise ctx.error(
                "software.arch",
                f"unknown architecture {raw!r}; accepted: {', '.join(ARCH_ALIASES)}",
            )
    return SoftwareReq(
        images_required=_strs(ctx, "software.images_required", d.get("images_required", [])),
        images_preferred=_strs(ctx, "software.images_preferred", d.get("images_preferred", [])),
        min_driver=driver,
        arch=arch,
    )


def _placement(ctx: _Ctx, d: Mapping[str, Any]) -> PlacementReq:
    k = "placement."
    statuses = PlacementReq().statuses
    if "statuses" in d:
        statuses = _choices(ctx, k + "statuses", d["statuses"], STATUSES, "status")
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
    only = _strs(ctx, k + "only_nodes", d.get("only_nodes", []))
    exclude = _strs(ctx, k + "exclude_nodes", d.get("exclude_nodes", []))
    both = [n for n in only if n in exclude]
    if both:
        raise ctx.error(
            k + "exclude_nodes",
            f"names {', '.join(repr(n) for n in both)}, also listed in placement.only_nodes: "
            "no node could be both; remove it from one of the lists",
        )
    return PlacementReq(
        statuses=statuses,
        continents=_choices(
            ctx, k + "continents", d.get("continents", []), CONTINENTS, "continent"
        ),
        countries=_pattern(
            ctx,
            k + "countries",
            d.get("countries", []),
            _COUNTRY_RE,
            'an ISO 3166-1 alpha-2 country code (two letters, e.g. "DE")',
        ),
        subdivisions=_pattern(
            ctx,
            k + "subdivisions",
            d.get("subdivisions", []),
            _SUBDIVISION_RE,
            'an ISO 3166-2 subdivision code (e.g. "US-CA", "DE-BY")',
        ),
        compliance=_choices(
            ctx, k + "compliance", d.get("compliance", []), COMPLIANCE_TAGS, "compliance tag"
        ),
        min_reputation=_opt(
            d, "min_reputation", lambda v: _num(ctx, k + "min_reputation", v, maximum=100.0)
        ),
        max_staleness=staleness,
        exclude_operators=_strs(ctx, k + "exclude_operators", d.get("exclude_operators", [])),
        exclude_nodes=exclude,
        only_nodes=only,
        allow_suspended=_bool(ctx, k + "allow_suspended", d.get("allow_suspended", False)),
        allow_deleted=_bool(ctx, k + "allow_deleted", d.get("allow_deleted", False)),
    )


def _preferences(ctx: _Ctx, d: Mapping[str, Any]) -> Preferences:
    strategy = _one_of(ctx, "preferences.strategy", d.get("strategy", "pack"), ("pack", "spread"))
    weights: dict[str, float] = {}
    if "weights" in d:
        table = _table(ctx, "preferences.weights", d["weights"])
        _check_keys(ctx, "preferences.weights", table, SCORE_TERMS)
        for term, w in table.items():
            weights[term] = _num(ctx, f"preferences.weights.{term}", w)
    return Preferences(strategy=cast(Strategy, strategy), weights=weights)


def _gang(ctx: _Ctx, d: Mapping[str, Any]) -> GangReq:
    same = None
    if "same" in d:
        same = _one_of(ctx, "gang.same", d["same"], ("continent", "country", "subdivision"))
    distinct = _one_of(ctx, "gang.distinct", d.get("distinct", "node"), ("operator", "node"))
    operators = _one_of(ctx, "gang.operators", d.get("operators", "spread"), ("spread", "pack"))
    return GangReq(
        same=cast(SameScope | None, same),
        distinct=cast(DistinctScope, distinct),
        operators=cast(Literal["spread", "pack"], operators),
    )


def _job(ctx: _Ctx, data: object, default_name: str) -> Job:
    top = _table(ctx, "", data)
    _check_keys(ctx, "", top, _TOP)
    sections: dict[str, Mapping[str, Any]] = {}
    for name, allowed in _SECTIONS.items():
        sec = _table(ctx, name, top.get(name, {}))
        _check_keys(ctx, name, sec, allowed)
        sections[name] = sec

    def simple(section: str, key: str, unit: str) -> float | None:
        return _opt(sections[section], key, lambda v: _num(ctx, f"{section}.{key}", v, unit=unit))

    return Job(
        name=_str(ctx, "name", top["name"]) if "name" in top else default_name,
        nodes=_int(ctx, "nodes", top.get("nodes", 1), minimum=1),
        priority=_int(ctx, "priority", top.get("priority", 0)),
        gpu=_gpu(ctx, sections["gpu"]),
        cpu=CpuReq(
            min_cores=_opt(
                sections["cpu"], "min_cores", lambda v: _int(ctx, "cpu.min_cores", v, minimum=0)
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
    return _job(_Ctx(source), data, "job")


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
    return source, data, _key_lines(text)


def load_jobs(path: str | Path) -> tuple[Job, ...]:
    """Load every job of a TOML file: its ``[[job]]`` tables, or the one job at top level.

    A job without ``name`` is named after the file (``queue-2`` for the 2nd ``[[job]]`` of
    ``queue.toml``).
    """
    source, data, lines = _read(path)
    stem = Path(path).stem
    if "job" not in data:
        return (_job(_Ctx(source, "", lines), data, stem),)
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
        _job(_Ctx(source, f"job[{i}].", lines), item, f"{stem}-{i + 1}")
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
