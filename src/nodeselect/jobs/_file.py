"""Job files: TOML (or a plain dict) -> a validated :class:`~nodeselect.Job`, and back.

Every problem is a :class:`~nodeselect.JobSpecError` naming the file, the line (found by
scanning the TOML text, best effort) and the dotted key, saying what was wrong and what is
accepted. An unknown or ambiguous GPU model is a :class:`~nodeselect.JobGPUNameError`, which is
both a ``JobSpecError`` and a ``GPUNameError``. The reference of every key is docs/jobs.md.

After loading, ``Job.gpu.models`` holds *canonical* model names, sorted (a family such as
``"H100"`` is already expanded), so the engine needs no registry look-ups.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from nodeselect._collector import collector_paused
from nodeselect.errors import JobSpecError
from nodeselect.jobs._check import check_job
from nodeselect.jobs._model import (
    ALTERNATIVE_SECTIONS,
    Alternative,
    CpuReq,
    DiskReq,
    GangReq,
    GpuReq,
    Job,
    MemoryReq,
    PlacementReq,
    Preferences,
    SoftwareReq,
)
from nodeselect.jobs._overrides import Override, apply_overrides
from nodeselect.jobs._values import (
    ARCH_ALIASES,
    Ctx,
    _strip_comment,
    _unquoted,
    as_table,
    check_keys,
    format_duration,
    key_lines,
    normalize_arch,
    parse_duration,
)

__all__ = [
    "ARCH_ALIASES",
    "MAX_JOB_FILE_BYTES",
    "MAX_KEY_PARTS",
    "format_duration",
    "job_from_dict",
    "job_to_dict",
    "load_job",
    "load_jobs",
    "loads_job",
    "loads_jobs",
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
_TOP: Final = ("alternatives", "name", "nodes", "priority", *_SECTIONS)
_GPU_LIMITS: Final = ("min_vram_free_gb", "min_vram_total_gb", "max_load")
_ALT_SET: Final = frozenset(ALTERNATIVE_SECTIONS)


def _gpu_req(g: Mapping[str, Any]) -> GpuReq:
    # A GPU requirement without a count asks for one GPU (docs/jobs.md).
    wants_gpu = bool(g.get("models")) or any(g.get(k) is not None for k in _GPU_LIMITS)
    return GpuReq(
        models=g.get("models", ()),
        count=g.get("count", int(wants_gpu)),
        min_vram_free_gb=g.get("min_vram_free_gb"),
        min_vram_total_gb=g.get("min_vram_total_gb"),
        max_load=g.get("max_load"),
    )


def _alternatives(
    ctx: Ctx, data: object, sec: Mapping[str, Mapping[str, Any]]
) -> tuple[Alternative, ...]:
    """Each ``[[alternatives]]`` table: its section keys merged over the base job's."""
    if not isinstance(data, list):
        raise ctx.error(
            "alternatives",
            "expected [[alternatives]] tables (an array of tables, most preferred first), "
            f"got {type(data).__name__}",
        )
    out: list[Alternative] = []
    for i, item in enumerate(data):
        key = f"alternatives[{i}]"
        alt = as_table(ctx, key, item)
        check_keys(ctx, key, alt, ALTERNATIVE_SECTIONS)
        merged: dict[str, Mapping[str, Any]] = {}
        for name in alt:
            own = as_table(ctx, f"{key}.{name}", alt[name])
            check_keys(ctx, f"{key}.{name}", own, _SECTIONS[name])
            merged[name] = {**sec[name], **own}
        out.append(
            Alternative(
                gpu=_gpu_req(merged["gpu"]) if "gpu" in merged else None,
                cpu=CpuReq(min_cores=merged["cpu"].get("min_cores")) if "cpu" in merged else None,
                memory=(
                    MemoryReq(min_free_gb=merged["memory"].get("min_free_gb"))
                    if "memory" in merged
                    else None
                ),
                disk=(
                    DiskReq(min_free_gb=merged["disk"].get("min_free_gb"))
                    if "disk" in merged
                    else None
                ),
            )
        )
    return tuple(out)


def _job(ctx: Ctx, data: object, default_name: str) -> Job:
    """The job's shape from the TOML structure (tables, known keys, defaults), then every
    value rule from :func:`~nodeselect.jobs._check.check_job` with this file's lines."""
    top = as_table(ctx, "", data)
    check_keys(ctx, "", top, _TOP)
    sec: dict[str, Mapping[str, Any]] = {}
    for name, allowed in _SECTIONS.items():
        sec[name] = as_table(ctx, name, top.get(name, {}))
        check_keys(ctx, name, sec[name], allowed)
    g, sw, pl, pr, gang = (sec[k] for k in ("gpu", "software", "placement", "preferences", "gang"))
    defaults = PlacementReq()
    job = Job(
        name=top.get("name", default_name),
        nodes=top.get("nodes", 1),
        priority=top.get("priority", 0),
        gpu=_gpu_req(g),
        cpu=CpuReq(min_cores=sec["cpu"].get("min_cores")),
        memory=MemoryReq(min_free_gb=sec["memory"].get("min_free_gb")),
        disk=DiskReq(min_free_gb=sec["disk"].get("min_free_gb")),
        software=SoftwareReq(
            images_required=sw.get("images_required", ()),
            images_preferred=sw.get("images_preferred", ()),
            min_driver=sw.get("min_driver"),
            arch=sw.get("arch"),
        ),
        placement=PlacementReq(
            **{f: pl.get(f, getattr(defaults, f)) for f in _SECTIONS["placement"]}
        ),
        preferences=Preferences(strategy=pr.get("strategy", "pack"), weights=pr.get("weights", {})),
        gang=GangReq(
            same=gang.get("same"),
            distinct=gang.get("distinct", "node"),
            operators=gang.get("operators", "spread"),
        ),
        alternatives=_alternatives(ctx, top["alternatives"], sec) if "alternatives" in top else (),
    )
    return check_job(job, ctx)


# ---------------------------------------------------------------------------------------------
# Public entry points


def _with(
    data: object, overrides: Sequence[Override], source: str, prefix: str, lines: Mapping[str, int]
) -> tuple[object, Ctx]:
    """``data`` with the overrides applied (when it is a table) and its context.

    An override of a key inside ``gpu``, ``cpu``, ``memory`` or ``disk`` is applied to every
    ``[[alternatives]]`` table that has that section too (an alternative without it inherits
    the base's), so a command-line value wins over the whole file."""
    if not overrides or not isinstance(data, Mapping):
        return data, Ctx(source, prefix, lines)
    out, origins = apply_overrides(data, overrides)
    alts = out.get("alternatives")
    if isinstance(alts, list):
        inner = [o for o in overrides if "." in o.key and o.key.split(".")[0] in _ALT_SET]
        copied: list[object] = []
        for i, alt in enumerate(alts):
            mine = [o for o in inner if isinstance(alt, Mapping) and o.key.split(".")[0] in alt]
            if not mine or not isinstance(alt, Mapping):
                copied.append(alt)
                continue
            changed, set_here = apply_overrides(alt, mine)
            origins.update({f"alternatives[{i}].{k}": v for k, v in set_here.items()})
            copied.append(changed)
        out["alternatives"] = copied
    return out, Ctx(source, prefix, lines, {prefix + k: v for k, v in origins.items()})


def job_from_dict(
    data: Mapping[str, Any], *, source: str = "<dict>", overrides: Sequence[Override] = ()
) -> Job:
    """Validate one job given as a dict (the TOML structure, see docs/jobs.md) into a Job.

    ``overrides`` set keys first (``--set`` and the CLI's requirement flags; errors in them
    name their origin). Raises :class:`~nodeselect.JobSpecError` (``key`` set, ``line``
    unknown) on any problem.
    """
    shaped, ctx = _with(data, overrides, source, "", {})
    return _job(ctx, shaped, "job")


#: The largest job file read, in bytes (checked before parsing). One job is a few hundred
#: bytes; a queue a planner surveys may hold 100k jobs (~14 MB: read in ~8 s, linear), so
#: 64 MiB: a few hundred thousand jobs, and a file far past any queue is refused unread.
MAX_JOB_FILE_BYTES: Final = 64 << 20
#: The most parts of a dotted key (``a.b.c``): a job file needs 4 (``job.gpu.count`` in a
#: ``[[job]]``); tomllib is quadratic in the number of parts (8,000 parts: 3 s).
MAX_KEY_PARTS: Final = 32
#: How deep arrays and inline tables may nest before tomllib runs out of stack.
_MAX_NESTING_SHOWN: Final = 32

# A run of more than MAX_KEY_PARTS dotted parts (bare or quoted). Starts only where a bare
# part starts or at a quote, and every part is possessive: one scan of each run (linear).
_PART: Final = r"""(?:[A-Za-z0-9_-]++|"[^"\n]*+"|'[^'\n]*+')"""
_LONG_KEY_RE: Final = re.compile(
    rf"(?<![A-Za-z0-9_-]){_PART}(?:[ \t]*+\.[ \t]*+{_PART}){{{MAX_KEY_PARTS}}}"
)
# Python refuses to convert an integer string of more than 4300 digits (its default limit); a
# run starts only after a non-digit, so each run is scanned once (linear).
_LONG_INT_RE: Final = re.compile(r"(?<![0-9_])[0-9_]{4300,}+")


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _nesting_line(text: str) -> int | None:
    """The first line where arrays/inline tables are nested deeper than shown in messages."""
    depth = 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        for _i, c in _unquoted(_strip_comment(raw)):
            depth += (c in "[{") - (c in "]}")
            if depth > _MAX_NESTING_SHOWN:
                return lineno
    return None


def _read_text(path: str | Path, source: str) -> str:
    """The file's text, refused above :data:`MAX_JOB_FILE_BYTES` before it is all read."""
    try:
        with Path(path).open("rb") as f:
            data = f.read(MAX_JOB_FILE_BYTES + 1)
    except OSError as exc:
        raise JobSpecError(f"cannot read the job file: {exc}", source=source) from None
    if len(data) > MAX_JOB_FILE_BYTES:
        raise JobSpecError(
            f"the job file is larger than {MAX_JOB_FILE_BYTES:,} bytes "
            f"({MAX_JOB_FILE_BYTES >> 20} MiB); a job is a "
            "few hundred bytes of TOML, 100k jobs ~14 MB: check that this is the job file",
            source=source,
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = _line_of(data[: exc.start].decode("utf-8", "replace"), exc.start)
        raise JobSpecError(
            f"cannot read the job file: not UTF-8 text (byte {exc.start + 1}: {exc.reason}); "
            "save it as UTF-8",
            source=source,
            line=line,
        ) from None


class _KeyLines(Mapping[str, int]):
    """:func:`key_lines` of a text, found on first use: only an error asks for a key's line,
    and the scan (a Python loop over every character) was ~40 % of loading a valid file of
    8,000 jobs."""

    def __init__(self, text: str) -> None:
        self._text: str | None = text
        self._lines: dict[str, int] = {}

    def _found(self) -> dict[str, int]:
        if self._text is not None:
            self._lines, self._text = key_lines(self._text), None
        return self._lines

    def __getitem__(self, key: str) -> int:
        return self._found()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._found())

    def __len__(self) -> int:
        return len(self._found())

    def __bool__(self) -> bool:  # (``lines or {}`` keeps it unscanned)
        return True


def _parse(text: str, source: str) -> tuple[dict[str, Any], Mapping[str, int]]:
    """TOML text, or JSON text (an object: ``{`` first), -> the data and its key lines; text
    above :data:`MAX_JOB_FILE_BYTES` and TOML bombs refused first or turned into JobSpecErrors."""
    if len(text) > MAX_JOB_FILE_BYTES:
        raise JobSpecError(
            f"the job text is larger than {MAX_JOB_FILE_BYTES:,} bytes "
            f"({MAX_JOB_FILE_BYTES >> 20} MiB); a job is a "
            "few hundred bytes, 100k jobs ~14 MB: check that this is the job file",
            source=source,
        )
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except RecursionError:
            raise JobSpecError("JSON nested too deeply to read", source=source) from None
        except ValueError as exc:
            line = getattr(exc, "lineno", None)
            raise JobSpecError(f"not valid JSON: {exc}", source=source, line=line) from None
        if not isinstance(data, dict):
            raise JobSpecError('expected a JSON object (one job, or {"job": [...]})', source=source)
        return data, {}
    return _parse_toml(text, source), _KeyLines(text)


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    """``tomllib.loads`` with its bombs refused first or turned into JobSpecErrors."""
    long_key = _LONG_KEY_RE.search(text)
    if long_key is not None:
        raise JobSpecError(
            f"a dotted key of more than {MAX_KEY_PARTS} parts; job-file keys have at most 4 "
            "(e.g. job.placement.max_staleness)",
            source=source,
            line=_line_of(text, long_key.start()),
        )
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        raise JobSpecError(
            f"not valid TOML: {exc}", source=source, line=int(found.group(1)) if found else None
        ) from None
    except RecursionError:
        raise JobSpecError(
            "arrays or inline tables nested too deeply to read; a job file nests at most 2 "
            "levels (e.g. weights = { images = 1.0 })",
            source=source,
            line=_nesting_line(text),
        ) from None
    except ValueError as exc:  # Python's integer-string limit (4300 digits)
        long_int = _LONG_INT_RE.search(text)
        raise JobSpecError(
            f"a number too long to read ({str(exc).split(':')[0]}); numbers in a job file "
            "are counts, sizes in GB and weights",
            source=source,
            line=None if long_int is None else _line_of(text, long_int.start()),
        ) from None


def _read(path: str | Path) -> tuple[str, str]:
    source = str(path)
    return source, _read_text(path, source)


def load_jobs(path: str | Path, *, overrides: Sequence[Override] = ()) -> tuple[Job, ...]:
    """Load every job of a TOML file: its ``[[job]]`` tables, or the one job at top level.

    A job without ``name`` is named after the file (``queue-2`` for the 2nd ``[[job]]`` of
    ``queue.toml``). ``overrides`` set keys of every job first (see :func:`loads_jobs`).
    """
    source, text = _read(path)
    return loads_jobs(text, source=source, stem=Path(path).stem, overrides=overrides)


def loads_jobs(
    text: str, *, source: str = "<text>", stem: str = "job", overrides: Sequence[Override] = ()
) -> tuple[Job, ...]:
    """:func:`load_jobs` of a job file's text: TOML, or JSON (an object; what ``-`` reads on
    stdin). ``stem`` names jobs without ``name``; ``overrides`` (``--set`` and the CLI's
    requirement flags) set keys of every job before it is validated, and errors in them name
    their origin.

    The cyclic garbage collector is paused while the jobs are read (a queue is hundreds of
    thousands of dicts and job objects, and no cycle): 104k jobs loaded in 8.2 s against 11.7.
    """
    with collector_paused():
        return _loads_jobs(text, source, stem, overrides)


def _loads_jobs(
    text: str, source: str, stem: str, overrides: Sequence[Override]
) -> tuple[Job, ...]:
    data, lines = _parse(text, source)
    if "job" not in data:
        shaped, ctx = _with(data, overrides, source, "", lines)
        return (_job(ctx, shaped, stem),)
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
    out: list[Job] = []
    for i, item in enumerate(jobs):
        shaped, ctx = _with(item, overrides, source, f"job[{i}].", lines)
        out.append(_job(ctx, shaped, f"{stem}-{i + 1}"))
    return tuple(out)


def _one(jobs: tuple[Job, ...], source: str) -> Job:
    if len(jobs) != 1:
        raise JobSpecError(
            f"expected one job, found {len(jobs)} [[job]] tables (use load_jobs / `place`)",
            source=source,
        )
    return jobs[0]


def load_job(path: str | Path, *, overrides: Sequence[Override] = ()) -> Job:
    """Load the one job of a TOML file (top-level keys, or a single ``[[job]]`` table)."""
    return _one(load_jobs(path, overrides=overrides), str(path))


def loads_job(
    text: str, *, source: str = "<text>", stem: str = "job", overrides: Sequence[Override] = ()
) -> Job:
    """:func:`load_job` of a job file's text (TOML or JSON, see :func:`loads_jobs`)."""
    return _one(loads_jobs(text, source=source, stem=stem, overrides=overrides), source)


def _gpu_dict(g: GpuReq) -> dict[str, Any]:
    gpu: dict[str, Any] = {"count": g.count}
    if g.models:
        gpu["models"] = list(g.models)
    for k in _GPU_LIMITS:
        if getattr(g, k) is not None:
            gpu[k] = getattr(g, k)
    return gpu


def _opt(name: str, value: object) -> dict[str, Any]:
    return {} if value is None else {name: value}


def _alternative_dict(a: Alternative) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if a.gpu is not None:
        out["gpu"] = _gpu_dict(a.gpu)
    if a.cpu is not None:
        out["cpu"] = _opt("min_cores", a.cpu.min_cores)
    if a.memory is not None:
        out["memory"] = _opt("min_free_gb", a.memory.min_free_gb)
    if a.disk is not None:
        out["disk"] = _opt("min_free_gb", a.disk.min_free_gb)
    return out


def job_to_dict(job: Job) -> dict[str, Any]:
    """A Job as the TOML-ready dict ``job_from_dict`` accepts (unset limits are left out).

    ``job_from_dict(job_to_dict(job)) == job`` for every valid job whose alternatives do not
    unset a limit the base job sets (a file's alternative inherits the base's keys it omits).
    """
    gpu = _gpu_dict(job.gpu)
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

    opt = _opt
    out: dict[str, Any] = {
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
    if job.alternatives:
        out["alternatives"] = [_alternative_dict(a) for a in job.alternatives]
    return out
