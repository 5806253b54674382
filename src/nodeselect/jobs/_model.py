"""Job requirements: what a job needs (hard constraints) and prefers (soft, weighted scores).

Every quantity carries its unit in its name. Defaults are the documented ones (docs/jobs.md).
Construct from TOML with :func:`load_job` / :func:`load_jobs` or from a dict with
:func:`job_from_dict` (all in ``_jobfile``); they validate and raise
:class:`~nodeselect.JobSpecError` naming the file, line and key, and store GPU models as
canonical registry names (families expanded). Constructing these classes directly does not
validate.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal, TypeVar

import attrs

__all__ = [
    "ALTERNATIVE_SECTIONS",
    "DEFAULT_WEIGHTS",
    "SCORE_TERMS",
    "Alternative",
    "CpuReq",
    "DiskReq",
    "GangReq",
    "GpuReq",
    "Job",
    "MemoryReq",
    "PlacementReq",
    "Preferences",
    "SoftwareReq",
]

#: The soft-preference score terms, in the stable order explanations use, with default weights.
#: reputation: node reputation; freshness: recency of last_seen_at/telemetry; images: preferred
#: images cached; fit: pack/spread fit of the job on the node's matching GPUs (for a CPU-only job:
#: preferring nodes without GPUs); idle: low GPU/CPU load from telemetry.
SCORE_TERMS: tuple[str, ...] = ("reputation", "freshness", "images", "fit", "idle")
DEFAULT_WEIGHTS: dict[str, float] = {
    "reputation": 1.0,
    "freshness": 1.0,
    "images": 1.0,
    "fit": 1.0,
    "idle": 1.0,
}

Strategy = Literal["pack", "spread"]
SameScope = Literal["continent", "country", "subdivision"]
DistinctScope = Literal["operator", "node"]

_C = TypeVar("_C", bound=type)


def _restored(cls: type[Any], state: Any) -> Any:
    """An instance of ``cls`` from attrs' pickled state (how a subclass of a job class
    unpickles)."""
    obj = object.__new__(cls)
    obj.__setstate__(state)
    return obj


def _pickled_by_fields(cls: _C) -> _C:
    """``cls`` pickled as itself and its field values, in order, and unpickled through its
    ``__init__`` (these classes have no validators, converters or post-init). attrs pickles a
    slotted class as a dict of its state per object; this is about 4x faster both ways (1,000
    varied jobs: 19 -> 4 ms to pickle, 17 -> 4.5 ms to unpickle, 180 -> 103 kB), which a Dask
    survey pays once per batch on the driver and once per batch on every worker
    (nodeselect.dask). A subclass pickles as attrs pickles it."""
    names = [a.name for a in attrs.fields(cls)]
    get = operator.attrgetter(*names)
    values: Callable[[Any], tuple[Any, ...]] = (
        get if len(names) > 1 else (lambda self: (get(self),))
    )

    def reduce(self: Any) -> tuple[Any, ...]:
        if type(self) is not cls:  # a subclass, maybe with fields of its own: attrs' state
            return _restored, (type(self), self.__getstate__())
        return cls, values(self)

    setattr(cls, "__reduce__", reduce)  # noqa: B010 (mypy: a method cannot be assigned)
    return cls


@_pickled_by_fields
@attrs.frozen
class GpuReq:
    """Per-node GPU needs.

    Attributes:
        models: canonical GPU model names (any of), e.g. ``("H100-80GB", "H100-94GB")``. The
            job file loaders resolve aliases and expand a family ("H100") into its variants and
            store them sorted, so this holds canonical names only. Empty means any model.
        count: how many GPUs on one node must each satisfy the limits below. 0 = CPU-only job.
        min_vram_free_gb: free VRAM each counted GPU needs, in GB.
        min_vram_total_gb: total VRAM each counted GPU needs, in GB.
        max_load: the highest GPU load (0..1, from telemetry) a counted GPU may have.
    """

    models: tuple[str, ...] = ()
    count: int = 0
    min_vram_free_gb: float | None = None
    min_vram_total_gb: float | None = None
    max_load: float | None = None


@_pickled_by_fields
@attrs.frozen
class CpuReq:
    """Attributes: min_cores: total CPU cores the node must have."""

    min_cores: int | None = None


@_pickled_by_fields
@attrs.frozen
class MemoryReq:
    """Attributes: min_free_gb: free RAM the node must have, in GB."""

    min_free_gb: float | None = None


@_pickled_by_fields
@attrs.frozen
class DiskReq:
    """Attributes: min_free_gb: free disk the node must have (largest single drive), in GB."""

    min_free_gb: float | None = None


@_pickled_by_fields
@attrs.frozen
class SoftwareReq:
    """Software needs.

    Attributes:
        images_required: image tags that must already be cached on the node (all of).
        images_preferred: image tags whose presence raises the score.
        min_driver: the lowest NVIDIA driver version, e.g. "535" or "535.104.05".
        arch: the CPU/OS architecture, e.g. "x86_64" or "arm64"/"aarch64" (aliases accepted).
    """

    images_required: tuple[str, ...] = ()
    images_preferred: tuple[str, ...] = ()
    min_driver: str | None = None
    arch: str | None = None


@_pickled_by_fields
@attrs.frozen
class PlacementReq:
    """Where the job may run and on whose nodes.

    Attributes:
        statuses: node statuses accepted (any of), proved by server-side filters.
        continents / countries / subdivisions: geography accepted (any of, each list).
        compliance: compliance tags required (all of).
        min_reputation: the lowest reputation (0..100).
        max_staleness: the oldest ``last_seen_at`` accepted, as an age.
        exclude_operators / exclude_nodes / only_nodes: operator uuids; node uuids or names.
        allow_suspended / allow_deleted: admit suspended / deleted nodes (default: no).
    """

    statuses: tuple[str, ...] = ("AVAILABLE",)
    continents: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    subdivisions: tuple[str, ...] = ()
    compliance: tuple[str, ...] = ()
    min_reputation: float | None = None
    max_staleness: timedelta | None = None
    exclude_operators: tuple[str, ...] = ()
    exclude_nodes: tuple[str, ...] = ()
    only_nodes: tuple[str, ...] = ()
    allow_suspended: bool = False
    allow_deleted: bool = False


@_pickled_by_fields
@attrs.frozen
class Preferences:
    """Soft preferences.

    Attributes:
        strategy: "pack" fills nodes whose matching free GPUs the job uses best; "spread" prefers
            nodes with the most matching capacity left over.
        weights: score term name -> weight >= 0. Unnamed terms use their default weight.
    """

    strategy: Strategy = "pack"
    weights: dict[str, float] = attrs.field(factory=dict)


@_pickled_by_fields
@attrs.frozen
class GangReq:
    """How the replicas of a multi-node job relate (only meaningful when ``Job.nodes > 1``).

    Attributes:
        same: all replicas in the same continent / country / subdivision, or ``None``.
        distinct: "operator" = each replica on a different operator account; "node" (default) =
            each replica on a different node.
        operators: "spread" (default) or "pack" = use as few operator accounts as possible.
    """

    same: SameScope | None = None
    distinct: DistinctScope = "node"
    operators: Literal["spread", "pack"] = "spread"


#: The sections an :class:`Alternative` may replace (docs/jobs.md#alternatives). Placement,
#: software, preferences and gang are shared by every alternative, so the server-side filters
#: of a fetch (``NodeQuery.from_job``) hold for each of them.
ALTERNATIVE_SECTIONS: tuple[str, ...] = ("gpu", "cpu", "memory", "disk")


@_pickled_by_fields
@attrs.frozen
class Alternative:
    """One choice of a job with ordered fallbacks: the sections it replaces.

    A section left ``None`` is the base job's. The file loaders merge an alternative's keys
    over the base job's (``[gpu] min_vram_free_gb = 40`` holds for every alternative that does
    not set it) and store whole sections here.

    Attributes:
        gpu, cpu, memory, disk: the replaced sections, or ``None`` for the base job's.
    """

    gpu: GpuReq | None = None
    cpu: CpuReq | None = None
    memory: MemoryReq | None = None
    disk: DiskReq | None = None


@_pickled_by_fields
@attrs.frozen
class Job:
    """A job's requirements.

    Attributes:
        name: a label for output.
        nodes: replicas; > 1 makes a gang placed all-or-nothing.
        priority: higher is placed first in a batch.
        gpu, cpu, memory, disk, software, placement, preferences, gang: the sections.
        alternatives: ordered fallbacks, most preferred first (empty: the job itself is the
            only choice). When given, the job's choices are exactly these, each the base job
            with the alternative's sections (:meth:`choices`); ``rank`` and ``place`` try them
            in order.
    """

    name: str = "job"
    nodes: int = 1
    priority: int = 0
    gpu: GpuReq = GpuReq()
    cpu: CpuReq = CpuReq()
    memory: MemoryReq = MemoryReq()
    disk: DiskReq = DiskReq()
    software: SoftwareReq = SoftwareReq()
    placement: PlacementReq = PlacementReq()
    preferences: Preferences = Preferences()
    gang: GangReq = GangReq()
    alternatives: tuple[Alternative, ...] = ()

    def choices(self) -> tuple[Job, ...]:
        """The plain jobs (without alternatives) this job may run as, most preferred first:
        ``(self,)`` without alternatives, else the base job with each alternative's sections."""
        if not self.alternatives:
            return (self,)
        return tuple(
            attrs.evolve(
                self,
                alternatives=(),
                gpu=self.gpu if a.gpu is None else a.gpu,
                cpu=self.cpu if a.cpu is None else a.cpu,
                memory=self.memory if a.memory is None else a.memory,
                disk=self.disk if a.disk is None else a.disk,
            )
            for a in self.alternatives
        )
