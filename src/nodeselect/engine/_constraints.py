"""Hard constraints: a job compiled once, then one small named unit per constraint, each a mask.

Every unit answers "does node i pass?" for all nodes at once. Names are stable and kebab-case;
:data:`CONSTRAINT_NAMES` is the order explanations use. The node-level units live one per module
in :mod:`nodeselect.engine.constraints`, listed once in its registry; :func:`node_checks`
iterates it. The GPU group is evaluated here, together. GPU limits are per GPU: a node passes the
GPU group when at least ``count`` of its GPUs each pass *all* per-GPU limits (not reserved,
``gpu-model``, ``gpu-vram-total``, ``gpu-vram-free``, ``gpu-load``). A node failing the group is
blamed on exactly one GPU constraint, by cumulative counts in that order: ``gpu-count`` if it has
fewer than ``count`` unreserved GPUs, else the first limit whose cumulative count drops below
``count`` (e.g. 4 H100 of which 2 have enough free VRAM -> ``gpu-vram-free``).

Float columns are float32; a threshold is rounded *outward* to float32 so that
``column >= t`` in float32 is exactly ``float(column) >= t`` in float64.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import attrs
import numpy as np
import numpy.typing as npt

from nodeselect.engine.constraints import (
    ALL_ROWS,
    GPU_CONSTRAINTS,
    Check,
    Luts,
    Rows,
    constraint_names,
    f32_at_least,
    f32_at_most,
    lut_take,
    node_constraints,
)
from nodeselect.errors import InputError
from nodeselect.gpus import GPU_MODELS, gpu_code
from nodeselect.jobs import DEFAULT_WEIGHTS, SCORE_TERMS, Job, check_job
from nodeselect.table import (
    TELEMETRY_FRESH_S,
    NodeTable,
    csr_take,
    driver_number,
    find_rows,
    keep_rows,
    max_gpu_count,
    repeat,
    segment_counts,
)

__all__ = [
    "CONSTRAINT_NAMES",
    "GPU_CONSTRAINTS",
    "Check",
    "CompiledJob",
    "GpuEval",
    "GpuSubset",
    "compile_job",
    "effective_gpu_columns",
    "f32_at_least",
    "f32_at_most",
    "gpu_attribution",
    "gpu_eval",
    "gpu_group",
    "gpu_matching",
    "gpu_subset",
    "node_checks",
    "node_mask",
    "segment_counts",
    "subset_to_eval",
]

B = npt.NDArray[np.bool_]
F64 = npt.NDArray[np.float64]

#: Every constraint name in stable order (the built-in registry's node-level units, then the GPU
#: group); :func:`nodeselect.engine.constraints.constraint_names` includes run-time units.
CONSTRAINT_NAMES: Final = constraint_names()


@attrs.frozen
class CompiledJob:
    """A validated job with names resolved, ready to evaluate against any table."""

    job: Job
    now_s: float
    count: int
    model_codes: frozenset[int] | None
    min_vram_free_gb: float | None
    min_vram_total_gb: float | None
    max_load: float | None
    min_driver: int | None
    arch: str | None
    weights: tuple[tuple[str, float], ...]
    weight_total: float
    preferred: tuple[str, ...]
    #: The job as the caller gave it (``Ranking.job`` is this object); ``job`` is its canonical
    #: form (:func:`nodeselect.jobs.check_job`), which the constraints and terms read.
    given: Job


def compile_job(job: Job, now: datetime | None = None) -> CompiledJob:
    """Check ``job`` (:func:`nodeselect.jobs.check_job`, the rules every loader obeys) and
    resolve its names; raises JobSpecError / JobGPUNameError (InputError), or TypeError for a
    value that is not a Job. ``CompiledJob.job`` is the canonical job, ``given`` the argument."""
    given, job = job, check_job(job)
    if job.alternatives:
        raise InputError(
            f"job {job.name!r} has {len(job.alternatives)} alternatives: rank and place try "
            "them in order; to compile one, pass one of job.choices()"
        )
    g = job.gpu
    weights = dict(DEFAULT_WEIGHTS)
    weights.update(job.preferences.weights)
    wt = tuple((t, weights[t]) for t in SCORE_TERMS if weights[t] > 0)
    total = 0.0
    for _, w in wt:
        total += w
    return CompiledJob(
        job=job,
        now_s=(now or datetime.now(UTC)).timestamp(),
        count=g.count,
        model_codes=frozenset(gpu_code(m) for m in g.models) if g.models else None,
        min_vram_free_gb=g.min_vram_free_gb,
        min_vram_total_gb=g.min_vram_total_gb,
        max_load=g.max_load,
        min_driver=driver_number(job.software.min_driver) if job.software.min_driver else None,
        arch=job.software.arch,
        weights=wt,
        weight_total=total,
        preferred=job.software.images_preferred,
        given=given,
    )


_ALL: Final = ALL_ROWS


def node_checks(
    cj: CompiledJob, t: NodeTable, sl: Rows = _ALL, luts: Luts | None = None
) -> list[Check]:
    """Every active node-level constraint of ``cj`` on rows ``sl`` of ``t``, in stable order:
    each registered unit's :meth:`~nodeselect.engine.constraints.NodeConstraint.check`.

    ``luts`` caches vocabulary look-up tables between calls on chunks of one table.
    """
    cache: Luts = {} if luts is None else luts
    return [u.check(cj, t, sl, cache) for u in node_constraints() if u.active(cj)]


def node_mask(cj: CompiledJob, t: NodeTable) -> B:
    """Where every active node-level constraint of ``cj`` passes, over every row of ``t``
    (the AND of :func:`node_checks`; the GPU group is separate: :func:`gpu_eval`)."""
    mask = np.ones(len(t), dtype=np.bool_)
    for check in node_checks(cj, t):
        mask &= check.passes
    return mask


@attrs.frozen
class GpuEval:
    """The GPU group of a job on a table.

    Attributes:
        active: the per-GPU limits in force, in attribution order (subset of GPU_CONSTRAINTS[1:]).
        limit_passes: per limit, a per-GPU bool array (True = passes that limit alone).
        available: per GPU, not reserved.
        passes: per GPU, available and passes every active limit.
        matching: per node, how many GPUs pass (``m``).
        ok: per node, ``matching >= count``.
        vram_free_gb: per GPU, the effective free VRAM (override, fresh telemetry, or reported).
        load: per GPU, the load used by ``gpu-load`` (NaN unless telemetry is fresh).
    """

    count: int
    active: tuple[str, ...]
    limit_passes: dict[str, B]
    available: B
    passes: B
    matching: npt.NDArray[np.int64]
    ok: B
    vram_free_gb: npt.NDArray[np.float32]
    load: npt.NDArray[np.float32]


def effective_gpu_columns(
    t: NodeTable,
    now_s: float,
    idx: npt.NDArray[np.int64] | None = None,
    rows: npt.NDArray[np.int64] | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Per GPU (of the nodes ``idx``, default all, node by node): the free VRAM the constraints
    use (override > fresh telemetry > reported) and the load (fresh telemetry only, else NaN)."""
    sel: slice | npt.NDArray[np.int64]
    if idx is None:
        sel = _ALL
        fresh_node = (now_s - t.telemetry_epoch_s) <= TELEMETRY_FRESH_S
        lens = np.diff(t.gpu_offsets)
    else:
        sel = t.gpu_rows(idx) if rows is None else rows
        fresh_node = (now_s - t.telemetry_epoch_s[idx]) <= TELEMETRY_FRESH_S
        lens = t.gpu_offsets[idx + 1] - t.gpu_offsets[idx]
    fresh = repeat(fresh_node, lens)
    load = np.where(fresh, t.gpu_load[sel], np.float32(np.nan)).astype(np.float32, copy=False)
    if t.gpu_vram_free_override_gb is not None:
        return t.gpu_vram_free_override_gb[sel], load
    tele = t.gpu_tele_vram_free_gb[sel]
    use_tele = fresh & ~np.isnan(tele)
    free = np.where(use_tele, tele, t.gpu_vram_free_gb[sel]).astype(np.float32, copy=False)
    return free, load


@attrs.frozen(eq=False)
class GpuSubset:
    """The GPU group of a job evaluated for some nodes only (the engine's fast path).

    Attributes:
        idx: the nodes (table rows).
        rows: their GPUs' positions in the table, node by node.
        lens: GPUs per node.
        offsets: CSR offsets of ``rows`` per node (``len(idx) + 1``).
        available: per GPU of ``rows``, not reserved (``None``: none is reserved).
        passes: per GPU of ``rows``, available and passes every active limit.
        matching: per node, how many of its GPUs pass.
        active: the per-GPU limits in force, in attribution order.
        vram_free_gb: per GPU of ``rows``, the effective free VRAM, when the job has a
            free-VRAM limit (else ``None``).
    """

    idx: npt.NDArray[np.int64]
    rows: npt.NDArray[np.int64]
    lens: npt.NDArray[np.int64]
    offsets: npt.NDArray[np.int64]
    available: B | None
    passes: B
    matching: npt.NDArray[np.int64]
    active: tuple[str, ...]
    vram_free_gb: npt.NDArray[np.float32] | None = None

    def select(self, keep: B) -> GpuSubset:
        """The subset of the nodes where ``keep`` (per node) is True."""
        lens = self.lens[keep]
        return self._gather(keep, repeat(keep, self.lens), lens, _offsets(lens))

    def take(self, pos: npt.NDArray[np.int64]) -> GpuSubset:
        """The subset of the nodes at positions ``pos`` (ascending), by integer gathers: what
        :meth:`select` gives for the same nodes, cheaper when ``pos`` is short."""
        lens, offsets, at = csr_take(self.offsets, pos)
        return self._gather(pos, at, lens, offsets)

    def _gather(
        self,
        nodes: npt.NDArray[Any],
        gpus: npt.NDArray[Any],
        lens: npt.NDArray[np.int64],
        offsets: npt.NDArray[np.int64],
    ) -> GpuSubset:
        return GpuSubset(
            idx=self.idx[nodes],
            rows=self.rows[gpus],
            lens=lens,
            offsets=offsets,
            available=None if self.available is None else self.available[gpus],
            passes=self.passes[gpus],
            matching=self.matching[nodes],
            active=self.active,
            vram_free_gb=None if self.vram_free_gb is None else self.vram_free_gb[gpus],
        )


def _offsets(lens: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """CSR offsets (``len(lens) + 1``) for per-node lengths."""
    offsets = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    return offsets


def _model_lut(cj: CompiledJob) -> B:
    lut = np.zeros(len(GPU_MODELS) + 1, dtype=np.bool_)
    if cj.model_codes:
        lut[sorted(cj.model_codes)] = True
    return lut


def _gpu_limits(
    cj: CompiledJob,
    t: NodeTable,
    rows: slice | npt.NDArray[np.int64],
    free: npt.NDArray[np.float32],
    load: npt.NDArray[np.float32],
    *,
    models_known: bool = False,
) -> dict[str, B | None]:
    """Per active per-GPU limit, which GPUs of ``rows`` pass it (attribution order);
    ``models_known``: every GPU of ``rows`` is of an accepted model (``gpu-model``: ``None``)."""
    limits: dict[str, B | None] = {}
    if cj.model_codes is not None:
        limits["gpu-model"] = (
            None if models_known else np.take(_model_lut(cj), t.gpu_model_code[rows])
        )
    if cj.min_vram_total_gb is not None:
        limits["gpu-vram-total"] = t.gpu_vram_total_gb[rows] >= f32_at_least(cj.min_vram_total_gb)
    if cj.min_vram_free_gb is not None:
        limits["gpu-vram-free"] = free >= f32_at_least(cj.min_vram_free_gb)
    if cj.max_load is not None:
        limits["gpu-load"] = load <= f32_at_most(cj.max_load)
    return limits


def gpu_subset(
    cj: CompiledJob, t: NodeTable, idx: npt.NDArray[np.int64], *, models_known: bool = False
) -> GpuSubset | None:
    """The GPU group of a GPU job for the nodes ``idx`` only (``None`` for a CPU-only job).

    Reads only the columns the job's limits need (same values as :func:`effective_gpu_columns`).
    ``models_known``: every GPU of ``idx`` is of an accepted model (the prefilter's model key
    said so), so ``gpu-model`` is not read again.
    """
    if cj.count == 0:
        return None
    lens, offsets, rows = csr_take(t.gpu_offsets, idx)
    size = len(rows)
    free: npt.NDArray[np.float32] | None = None
    load = np.zeros(0, dtype=np.float32)
    fresh: B | None = None
    if cj.max_load is not None or (
        cj.min_vram_free_gb is not None and t.gpu_vram_free_override_gb is None
    ):
        fresh = repeat((cj.now_s - t.telemetry_epoch_s[idx]) <= TELEMETRY_FRESH_S, lens)
    if cj.min_vram_free_gb is not None:
        if t.gpu_vram_free_override_gb is not None:
            free = t.gpu_vram_free_override_gb[rows]
        else:
            assert fresh is not None
            tele = t.gpu_tele_vram_free_gb[rows]
            free = np.where(fresh & ~np.isnan(tele), tele, t.gpu_vram_free_gb[rows])
    if cj.max_load is not None:
        assert fresh is not None
        load = np.where(fresh, t.gpu_load[rows], np.float32(np.nan)).astype(np.float32, copy=False)
    avail = None if t.gpu_reserved is None else ~t.gpu_reserved[rows]
    limits = _gpu_limits(
        cj,
        t,
        rows,
        np.zeros(0, np.float32) if free is None else free,
        load,
        models_known=models_known,
    )
    masks = [m for m in (avail, *limits.values()) if m is not None]
    if masks:
        passes = masks[0] if avail is None else masks[0].copy()
        for m in masks[1:]:
            passes &= m
    else:
        passes = np.ones(size, dtype=np.bool_)
    matching = segment_counts(passes, offsets)
    return GpuSubset(idx, rows, lens, offsets, avail, passes, matching, tuple(limits), free)


#: A node's entry in :func:`gpu_matching`'s memo before it is counted (zeros: calloc, only
#: the pages touched cost; a counted node's fresh count is stored plus one).
_UNCOUNTED: Final = np.uint32(0)


def _static_gpu_key(cj: CompiledJob) -> tuple[Any, ...]:
    """The job fields the per-GPU limits read, but telemetry freshness (thresholds rounded to
    float32 as the limits compare them)."""
    return (
        "gpu-matching",
        cj.model_codes,
        None if cj.min_vram_total_gb is None else float(f32_at_least(cj.min_vram_total_gb)),
        None if cj.min_vram_free_gb is None else float(f32_at_least(cj.min_vram_free_gb)),
        None if cj.max_load is None else float(f32_at_most(cj.max_load)),
    )


def _counted(
    cj: CompiledJob, t: NodeTable, idx: npt.NDArray[np.int64], *, models_known: bool
) -> npt.NDArray[np.uint32]:
    """Per node of ``idx``: how many of its GPUs pass every per-GPU limit of ``cj`` if its
    telemetry is fresh (plus one, high 16 bits: never 0) and if it is stale (low 16 bits), no
    GPU reserved and no VRAM override (the values :func:`gpu_subset` computes for either
    freshness; ``models_known``: as for :func:`gpu_subset`)."""
    _lens, offsets, rows = csr_take(t.gpu_offsets, idx)
    size = len(rows)
    stale = np.ones(size, dtype=np.bool_)
    if cj.model_codes is not None and not models_known:
        stale &= lut_take(_model_lut(cj), t.gpu_model_code[rows])
    if cj.min_vram_total_gb is not None:
        stale &= t.gpu_vram_total_gb[rows] >= f32_at_least(cj.min_vram_total_gb)
    fresh = stale.copy()
    if cj.min_vram_free_gb is not None:
        thr = f32_at_least(cj.min_vram_free_gb)
        reported = t.gpu_vram_free_gb[rows]
        tele = t.gpu_tele_vram_free_gb[rows]
        stale &= reported >= thr
        fresh &= np.where(np.isnan(tele), reported, tele) >= thr
    if cj.max_load is not None:
        fresh &= t.gpu_load[rows] <= f32_at_most(cj.max_load)
        stale[:] = False  # a stale GPU's load is unknown (NaN): it fails gpu-load
    out = np.empty(len(idx), dtype=np.uint32)
    for mask, shift in ((fresh, 16), (stale, 0)):
        cs = np.zeros(size + 1, dtype=np.int64)
        np.cumsum(mask, out=cs[1:])
        part = (cs[offsets[1:]] - cs[offsets[:-1]]).astype(np.uint32)
        if shift:
            out[:] = (part + np.uint32(1)) << np.uint32(shift)
        else:
            out |= part
    return out


def gpu_matching(
    cj: CompiledJob, t: NodeTable, idx: npt.NDArray[np.int64], *, models_known: bool = False
) -> npt.NDArray[np.int64] | None:
    """Per node of ``idx``, how many of its GPUs pass the job's GPU group: ``matching`` of
    :func:`gpu_subset` (``None`` for a CPU-only job), from counts kept per table when it can
    (:func:`gpu_group`). ``models_known``: as for :func:`gpu_subset`."""
    got = gpu_group(cj, t, idx, models_known=models_known)
    return None if got is None else got[0]


def gpu_group(
    cj: CompiledJob, t: NodeTable, idx: npt.NDArray[np.int64], *, models_known: bool = False
) -> tuple[npt.NDArray[np.int64], GpuSubset | None] | None:
    """Per node of ``idx``, how many of its GPUs pass the job's GPU group, and the
    :class:`GpuSubset` of ``idx`` when it was computed to get them (``None`` when the counts
    were read from the kept ones); ``None`` for a CPU-only job.

    With no GPU reserved and no VRAM override (the columns placement writes), a node's count
    depends on ``now`` only through its telemetry freshness, so both counts (fresh and stale)
    are kept per table and per the job's limits (one ``uint32`` per node, filled as nodes are
    asked for; :func:`nodeselect.table.keep_rows`): a later job with the same GPU limits reads
    two counts per node instead of gathering its GPUs. The first call with a set of limits
    only notes it and evaluates :func:`gpu_subset` (so a loop over more limit sets than are
    kept costs about what it did); the calls after it count the nodes not counted yet.
    ``models_known``: as for :func:`gpu_subset` (the counts are the same either way: a node
    whose GPUs are all of accepted models passes ``gpu-model`` on every GPU).
    """
    if cj.count == 0:
        return None
    key = _static_gpu_key(cj)
    deps = (
        t.gpu_offsets,
        t.gpu_model_code,
        t.gpu_vram_total_gb,
        t.gpu_vram_free_gb,
        t.gpu_tele_vram_free_gb,
        t.gpu_load,
    )
    hit = None
    if (
        t.gpu_reserved is None
        and (t.gpu_vram_free_override_gb is None or cj.min_vram_free_gb is None)
        and max_gpu_count(t) < 0xFFFF
    ):
        hit = find_rows(key, deps)
        if hit is None:  # seen once: room for the counts only when seen again
            keep_rows(key, deps, [None])
        elif hit[0] is None:
            hit[0] = np.zeros(len(t), dtype=np.uint32)  # every entry _UNCOUNTED
    if hit is None:
        sub = gpu_subset(cj, t, idx, models_known=models_known)
        assert sub is not None
        return sub.matching, sub
    memo: npt.NDArray[np.uint32] = hit[0]
    both = memo[idx]
    todo = np.flatnonzero(both == _UNCOUNTED)
    if len(todo):
        got = _counted(cj, t, idx[todo], models_known=models_known)
        both[todo] = got
        memo[idx[todo]] = got  # each element one aligned word: a racing reader sees old or new
    fresh = (cj.now_s - t.telemetry_epoch_s[idx]) <= TELEMETRY_FRESH_S
    out: npt.NDArray[np.int64] = np.where(
        fresh, (both >> np.uint32(16)) - np.uint32(1), both & np.uint32(0xFFFF)
    ).astype(np.int64)
    return out, None


def gpu_eval(
    cj: CompiledJob, t: NodeTable, idx: npt.NDArray[np.int64] | None = None
) -> GpuEval | None:
    """The GPU group for a GPU job (``None`` for a CPU-only job).

    With ``idx`` only those nodes' GPUs are evaluated (see :func:`gpu_subset`): ``matching``,
    ``passes`` and ``available`` keep the table's shapes (other nodes count 0 matching GPUs);
    ``limit_passes``, ``vram_free_gb`` and ``load`` are empty.
    """
    if cj.count == 0:
        return None
    if idx is not None:
        sub = gpu_subset(cj, t, idx)
        assert sub is not None
        return subset_to_eval(cj, t, sub)
    free, load = effective_gpu_columns(t, cj.now_s)
    g = len(t.gpu_model_code)
    avail = ~t.gpu_reserved if t.gpu_reserved is not None else np.ones(g, dtype=np.bool_)
    limits = {name: m for name, m in _gpu_limits(cj, t, _ALL, free, load).items() if m is not None}
    passes = avail.copy()
    for m in limits.values():
        passes &= m
    matching = segment_counts(passes, t.gpu_offsets)
    return GpuEval(
        count=cj.count,
        active=tuple(limits),
        limit_passes=limits,
        available=avail,
        passes=passes,
        matching=matching,
        ok=matching >= cj.count,
        vram_free_gb=free,
        load=load,
    )


def subset_to_eval(cj: CompiledJob, t: NodeTable, sub: GpuSubset) -> GpuEval:
    """A :class:`GpuEval` in the table's shapes from a subset (other nodes: 0 matching GPUs)."""
    n, g = len(t), len(t.gpu_model_code)
    matching = np.zeros(n, dtype=np.int64)  # calloc: only touched pages cost
    matching[sub.idx] = sub.matching
    passes = np.zeros(g, dtype=np.bool_)
    passes[sub.rows] = sub.passes
    avail = np.zeros(g, dtype=np.bool_)
    avail[sub.rows] = True if sub.available is None else sub.available
    # ``matching >= count`` without a pass over every node: the others match 0 GPUs, fewer
    # than any GPU job's count (placement re-checks a few rows per turn: this ran per turn)
    if cj.count > 0:
        ok = np.zeros(n, dtype=np.bool_)
        ok[sub.idx] = sub.matching >= cj.count
    else:  # pragma: no cover - a CPU-only job has no GPU group
        ok = matching >= cj.count
    empty = np.zeros(0, dtype=np.float32)
    return GpuEval(
        count=cj.count,
        active=sub.active,
        limit_passes={},
        available=avail,
        passes=passes,
        matching=matching,
        ok=ok,
        vram_free_gb=empty,
        load=empty,
    )


def gpu_attribution(ge: GpuEval, t: NodeTable) -> dict[str, B]:
    """Per GPU constraint, the nodes it is blamed for (exactly one per node failing the group)."""
    out: dict[str, B] = {}
    cum = ge.available.copy()
    prev_ok = segment_counts(cum, t.gpu_offsets) >= ge.count
    out["gpu-count"] = ~prev_ok
    for name in ge.active:
        cum &= ge.limit_passes[name]
        now_ok = segment_counts(cum, t.gpu_offsets) >= ge.count
        out[name] = prev_ok & ~now_ok
        prev_ok = now_ok
    return out
