"""Where a command's jobs come from: a job file, ``-`` (TOML or JSON on stdin), requirement
flags (``--gpu H100:4 --vram-free 60 --country DE``), and ``--set KEY=VALUE`` overrides.

Every way builds the same dict and goes through the one loader and validator
(:func:`nodeselect.jobs.loads_jobs`), in this order: the file, then the flags, then ``--set``
(later wins). An error in a key a flag set names the flag (``--vram-free: gpu.min_vram_free_gb:
expected a number ...``). The flags are documented in docs/cli.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from nodeselect.errors import JobSpecError

if TYPE_CHECKING:  # the job layer loads when a command runs, not for --help
    from nodeselect.jobs import Job, Override

__all__ = ["JOB_FLAGS", "add_job_arguments", "add_set_argument", "jobs_from_args"]

#: Requirement flags: (flag, dotted job key, kind, help). Kinds: "value" (parsed like a TOML
#: value, so "60" is a number and "abc" a string the validator refuses), "list" (repeatable,
#: comma-separated values), "str" (kept as written).
JOB_FLAGS: Final[tuple[tuple[str, str, str, str], ...]] = (
    ("--name", "name", "str", "the job's name (default: the file's name, or 'job')"),
    ("--nodes", "nodes", "value", "replicas; > 1 makes a gang"),
    ("--priority", "priority", "value", "placement priority (higher first)"),
    ("--gpus", "gpu.count", "value", "GPUs per node (overrides a --gpu count)"),
    ("--vram-free", "gpu.min_vram_free_gb", "value", "free VRAM per GPU, GB"),
    ("--vram-total", "gpu.min_vram_total_gb", "value", "total VRAM per GPU, GB"),
    ("--max-load", "gpu.max_load", "value", "highest GPU load, 0..1"),
    ("--cores", "cpu.min_cores", "value", "CPU cores per node"),
    ("--ram-free", "memory.min_free_gb", "value", "free RAM per node, GB"),
    ("--disk-free", "disk.min_free_gb", "value", "free disk per node, GB"),
    ("--country", "placement.countries", "list", "ISO country codes (repeatable, or DE,FR)"),
    ("--continent", "placement.continents", "list", "continent codes, e.g. EU (repeatable)"),
    ("--subdivision", "placement.subdivisions", "list", "ISO 3166-2 codes, e.g. US-CA"),
    ("--compliance", "placement.compliance", "list", "compliance tags, e.g. GDPR (repeatable)"),
    ("--status", "placement.statuses", "list", "node statuses (default AVAILABLE)"),
    ("--min-reputation", "placement.min_reputation", "value", "lowest reputation, 0..100"),
    ("--max-staleness", "placement.max_staleness", "str", 'oldest last-seen, e.g. "10m"'),
    ("--exclude-node", "placement.exclude_nodes", "list", "node uuids or names to avoid"),
    ("--only-node", "placement.only_nodes", "list", "node uuids or names allowed"),
    ("--arch", "software.arch", "str", "CPU architecture: x86_64 or aarch64"),
    ("--min-driver", "software.min_driver", "str", 'lowest GPU driver, e.g. "535"'),
    ("--image", "software.images_required", "list", "required cached image (repeatable)"),
    ("--prefer-image", "software.images_preferred", "list", "preferred cached image"),
    ("--strategy", "preferences.strategy", "str", "pack or spread"),
)
_DEST: Final = {flag: "req_" + flag[2:].replace("-", "_") for flag, _, _, _ in JOB_FLAGS}


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (repeatable): override a job key after the file and the flags."""
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="set_keys",
        help="set a job key, e.g. --set gpu.count=2 --set placement.countries='[\"DE\"]' "
        "(TOML values; repeatable; applies to every job of the file)",
    )


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
    """The requirement flags (``--gpu MODEL[:COUNT]`` and :data:`JOB_FLAGS`) and ``--set``."""
    group = parser.add_argument_group(
        "requirements (instead of, or on top of, a job file; docs/cli.md)"
    )
    group.add_argument(
        "--gpu",
        action="append",
        default=[],
        metavar="MODEL[:COUNT]",
        dest="req_gpu",
        help="a GPU model the job accepts, with the count per node (e.g. H100:4); repeatable",
    )
    for flag, _key, kind, text in JOB_FLAGS:
        if kind == "list":
            group.add_argument(flag, action="append", dest=_DEST[flag], metavar="V", help=text)
        else:
            group.add_argument(flag, dest=_DEST[flag], metavar="V", help=text)
    add_set_argument(parser)


def _gpu_overrides(specs: Sequence[str]) -> list[Override]:
    from nodeselect.jobs import Override, parse_value  # noqa: PLC0415

    models: list[str] = []
    counts: dict[str, Any] = {}
    for spec in specs:
        model, colon, count = spec.partition(":")
        models.append(model.strip())
        if colon:
            counts[spec] = parse_value(count.strip())
    if len({repr(c) for c in counts.values()}) > 1:
        raise JobSpecError(
            f"the counts differ ({', '.join(counts)}); one count applies to every model a job "
            "accepts: give it once (or use --gpus N), or use [[alternatives]] in a job file",
            source="--gpu",
            key="gpu.count",
        )
    out = [Override("gpu.models", models, "--gpu")]
    if counts:
        out.append(Override("gpu.count", next(iter(counts.values())), "--gpu"))
    return out


def flag_overrides(args: argparse.Namespace) -> list[Override]:
    """The requirement flags given, as overrides (the ``--gpu`` ones first)."""
    from nodeselect.jobs import Override, parse_value  # noqa: PLC0415

    out: list[Override] = []
    if getattr(args, "req_gpu", None):
        out += _gpu_overrides(args.req_gpu)
    for flag, key, kind, _ in JOB_FLAGS:
        raw = getattr(args, _DEST[flag], None)
        if raw is None:
            continue
        if kind == "list":
            value: Any = [v.strip() for item in raw for v in item.split(",") if v.strip()]
        elif kind == "value":
            value = parse_value(raw)
        else:
            value = raw
        out.append(Override(key, value, flag))
    return out


def jobs_from_args(args: argparse.Namespace, source_arg: str | Path | None) -> tuple[Job, ...]:
    """The jobs of a command: ``source_arg`` (a file, ``-`` for stdin, or ``None`` for the
    flags alone), then the requirement flags, then ``--set``.

    Raises:
        JobSpecError: a problem in any of them, naming the file and line, or the flag.
    """
    from nodeselect.jobs import (  # noqa: PLC0415
        MAX_JOB_FILE_BYTES,
        load_jobs,
        loads_jobs,
        parse_override,
    )

    overrides = flag_overrides(args)
    overrides += [parse_override(s) for s in getattr(args, "set_keys", []) or []]
    if source_arg is None:
        if not overrides:
            raise JobSpecError(
                "no job: give a job file, - to read TOML or JSON on stdin, or requirement "
                "flags (e.g. --gpu H100:1 --vram-free 40)",
                source="<command line>",
            )
        return loads_jobs("", source="<flags>", stem="job", overrides=overrides)
    if str(source_arg) == "-":  # (at most one character past the limit is read)
        text = sys.stdin.read(MAX_JOB_FILE_BYTES + 1)
        return loads_jobs(text, source="<stdin>", stem="job", overrides=overrides)
    # read up to the size limit, refused past it without reading the rest
    return load_jobs(source_arg, overrides=overrides)
