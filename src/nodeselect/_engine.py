"""The engine: rank every node of a table for a job, vectorized, and say why the rest were rejected.

``rank`` compiles the job (validating it: a bad job is an :class:`InputError`, never an empty
result), evaluates each hard constraint as a mask, scores only the feasible rows, and selects
the top k with ``argpartition``. Order: score descending, then a seeded hash of the uuid, then
the uuid, so the ranking does not depend on row order and the same seed gives the same ranking.

Residual capacity (placement): rank ``table.with_capacity(...)`` (see :class:`NodeTable`) with the
full table's :func:`table_stats` passed as ``stats``.
"""

from __future__ import annotations

import functools
import math
from datetime import datetime

import attrs
import numpy as np
import numpy.typing as npt

from nodeselect._constraints import (
    CompiledJob,
    GpuEval,
    GpuSubset,
    compile_job,
    effective_gpu_columns,
    gpu_eval,
    gpu_subset,
    node_checks,
    subset_to_eval,
)
from nodeselect._derived import max_gpu_count
from nodeselect._explain import Evaluation, Explanation, NearestMiss, NodeExplanation, explain_node
from nodeselect._job import Job
from nodeselect._prefilter import feasible_rows, node_pass
from nodeselect._scorers import combine, combine_partial, idle_bounds, idle_exact, score_cheap
from nodeselect._shard import RankedNode, TableStats, merge_top, table_stats, tie_keys
from nodeselect._table import NodeTable, uuid_hashes

__all__ = [
    "Explanation",
    "NearestMiss",
    "NodeExplanation",
    "RankedNode",
    "Ranking",
    "TableStats",
    "evaluate",
    "explain_node",
    "merge_top",
    "rank",
    "table_stats",
]

F64 = npt.NDArray[np.float64]


@attrs.frozen(eq=False)
class Ranking:
    """The result of ranking one job on one table.

    Attributes:
        job: the job.
        evaluated: nodes looked at (the table's length).
        feasible: nodes passing every hard constraint.
        top: the best ``k`` feasible nodes, best first.
        explanation: counts, per-constraint rejections and nearest misses.
        feasible_indices: rows of every feasible node (ascending), for placement.
        seed: the tie-break seed used.
    """

    job: Job
    evaluated: int
    feasible: int
    top: tuple[RankedNode, ...]
    explanation: Explanation
    feasible_indices: npt.NDArray[np.int64]
    seed: int = 0


def evaluate(job: Job, table: NodeTable, *, now: datetime | None = None) -> Evaluation:
    """Every constraint mask of ``job`` on ``table`` and the feasible mask."""
    cj = compile_job(job, now)
    return _evaluate(cj, table)


def _evaluate(cj: CompiledJob, table: NodeTable) -> Evaluation:
    checks = tuple(node_checks(cj, table))
    ge = gpu_eval(cj, table)
    if checks:
        feasible = checks[0].passes.copy()
        for c in checks[1:]:
            feasible &= c.passes
    else:
        feasible = np.ones(len(table), dtype=np.bool_)
    if ge is not None:
        feasible &= ge.ok
    return Evaluation(cj=cj, table=table, checks=checks, gpu=ge, feasible=feasible)


def _fast_feasible(cj: CompiledJob, t: NodeTable) -> tuple[npt.NDArray[np.int64], GpuEval | None]:
    """Feasible rows (ascending) and the GPU group, in the table's shapes, of every node that
    passed the node-level constraints (the fast pass of :mod:`nodeselect._prefilter`)."""
    idx, _, survivors = feasible_rows(cj, t)
    return idx, None if survivors is None else subset_to_eval(cj, t, survivors)


def _scores(
    cj: CompiledJob,
    t: NodeTable,
    idx: npt.NDArray[np.int64],
    *,
    sub: GpuSubset | None,
    okpos: npt.NDArray[np.int64] | None,
    max_gpus: int,
    k: int,
) -> tuple[F64, dict[str, F64], GpuSubset | None, npt.NDArray[np.int64]]:
    """Scores and raw terms of the feasible rows ``idx`` (``sub``: the GPU group of the node-pass
    survivors, ``okpos``: the positions of ``idx`` in it), exact for every row that can be in
    the top ``k``; the rest score ``-inf``. Also the GPU group holding the rows that may be
    chosen and, per row of ``idx``, its node's position in that group.

    A GPU job's ``idle`` term, the only one reading per-GPU load, is bounded from the telemetry
    age first; only rows whose upper-bound score reaches the ``k``-th best lower-bound score
    (a superset of the rows scoring at least the exact ``k``-th best) are scored exactly.
    Scores are elementwise, so each exact score is bit for bit the full computation's.
    """
    if sub is None or okpos is None:
        raw = score_cheap(cj, t, idx, None, max_gpus)
        return combine(cj, raw, len(idx)), raw, None, np.zeros(0, dtype=np.int64)
    raw = score_cheap(cj, t, idx, sub.matching[okpos], max_gpus)
    if all(name != "idle" for name, _ in cj.weights):
        return combine(cj, raw, len(idx)), raw, sub, okpos
    n = len(idx)
    if n <= k:
        keep_all = np.zeros(len(sub.idx), dtype=np.bool_)
        keep_all[okpos] = True
        feas = sub.select(keep_all)
        raw["idle"] = idle_exact(cj, t, idx, feas)
        return combine(cj, raw, n), raw, feas, np.arange(n)
    lo, hi = idle_bounds(cj, t, idx)
    # idle is the last term (SCORE_TERMS order): the other terms' partial sum is shared.
    w_idle = cj.weights[-1][1]
    partial = combine_partial(cj, raw, n)
    s_lo = (partial + w_idle * lo) / cj.weight_total
    s_hi = (partial + w_idle * hi) / cj.weight_total
    kth_lo = np.partition(s_lo, n - k)[n - k]
    may = np.flatnonzero(s_hi >= kth_lo)
    part = sub.take(okpos[may])
    idle = np.zeros(n)
    idle[may] = idle_exact(cj, t, idx[may], part)
    raw["idle"] = idle
    score = np.full(n, -np.inf)
    score[may] = (partial[may] + w_idle * idle[may]) / cj.weight_total
    gpos = np.zeros(n, dtype=np.int64)
    gpos[may] = np.arange(len(may))
    return score, raw, part, gpos


def _gpu_choices(
    cj: CompiledJob,
    t: NodeTable,
    rows: list[int],
    passes: npt.NDArray[np.bool_] | None,
    free: npt.NDArray[np.float32] | None = None,
) -> list[tuple[int, ...]]:
    """For each row, the GPUs the job would use: passing ones, best fit first.

    ``passes`` (and ``free``, the effective free VRAM, computed when not given) are per GPU of
    ``rows``, node by node (``None`` for a CPU-only job).
    """
    if passes is None:
        return [() for _ in rows]
    if free is None:
        free, _ = effective_gpu_columns(t, cj.now_s, np.array(rows, dtype=np.int64))
    sign = 1.0 if cj.job.preferences.strategy == "pack" else -1.0
    out: list[tuple[int, ...]] = []
    pos = 0
    free_l, passes_l = free.tolist(), passes.tolist()
    for i in rows:
        size = int(t.gpu_offsets[i + 1]) - int(t.gpu_offsets[i])
        mine = free_l[pos : pos + size]
        ok = [g for g in range(size) if passes_l[pos + g]]
        pos += size

        def key(g: int, mine: list[float] = mine) -> tuple[bool, float, int]:
            v = mine[g]
            unknown = math.isnan(v)
            return (unknown, 0.0 if unknown else sign * v, g)

        out.append(tuple(sorted(ok, key=key)[: cj.count]))
    return out


def _gpu_choice(cj: CompiledJob, t: NodeTable, ge: GpuEval | None, i: int) -> tuple[int, ...]:
    """The GPUs of row ``i`` the job would use (placement calls this per candidate)."""
    passes = None if ge is None else ge.passes[t.gpu_offsets[i] : t.gpu_offsets[i + 1]]
    return _gpu_choices(cj, t, [i], passes)[0]


def top_positions(
    table: NodeTable,
    idx: npt.NDArray[np.int64],
    score: npt.NDArray[np.float64],
    *,
    seed: int,
    k: int,
) -> npt.NDArray[np.intp]:
    """Positions in ``idx`` of the best ``k`` rows, best first, in the one total order shared by
    ranking, placement and shard merges: score descending, then the seeded uuid key, then uuid.

    ``argpartition``-style selection first (every row scoring at least the k-th best), then an
    exact sort of only those candidates.
    """
    if len(idx) > k:
        kth = np.partition(score, len(idx) - k)[len(idx) - k]
        cand = np.flatnonzero(score >= kth)
    else:
        cand = np.arange(len(idx))
    uu = table.uuid[idx[cand]]
    keys = tie_keys(uuid_hashes(uu), seed)
    out: npt.NDArray[np.intp] = cand[np.lexsort((uu, keys, -score[cand]))[:k]]
    return out


def rank(
    job: Job,
    table: NodeTable,
    *,
    k: int = 10,
    now: datetime | None = None,
    seed: int = 0,
    stats: TableStats | None = None,
) -> Ranking:
    """Rank every node of ``table`` for ``job`` and return the best ``k`` with an explanation.

    ``stats`` are the global reductions used to normalize scores (default: this table's); pass
    the merged stats of all shards when ranking a shard or a residual view.
    """
    if k < 0:
        from nodeselect._exceptions import InputError  # noqa: PLC0415

        raise InputError(f"k={k}: give a number of nodes >= 0")
    cj = compile_job(job, now)
    max_gpus = stats.max_gpu_count if stats is not None else max_gpu_count(table)
    survivors = node_pass(cj, table)
    sub = gpu_subset(cj, table, survivors)
    if sub is None:
        idx, okpos = survivors, None
    else:
        okpos = np.flatnonzero(sub.matching >= cj.count)
        idx = survivors[okpos]
    top: tuple[RankedNode, ...] = ()
    if len(idx) and k:
        score, raw, gsub, gpos = _scores(
            cj, table, idx, sub=sub, okpos=okpos, max_gpus=max_gpus, k=k
        )
        pos = top_positions(table, idx, score, seed=seed, k=k)
        chosen = idx[pos].tolist()
        passes = free = None
        if gsub is not None:
            at = gpos[pos]
            starts, stops = gsub.offsets[at].tolist(), gsub.offsets[at + 1].tolist()
            spans = [slice(a, b) for a, b in zip(starts, stops, strict=True)]
            passes = np.concatenate([gsub.passes[s] for s in spans])
            if gsub.vram_free_gb is not None:
                free = np.concatenate([gsub.vram_free_gb[s] for s in spans])
        gpus = _gpu_choices(cj, table, chosen, passes, free)
        scores = score[pos].tolist()
        terms = [(n, w, raw[n][pos].tolist()) for n, w in cj.weights]
        tie = tie_keys(uuid_hashes(table.uuid[idx[pos]]), seed).tolist()
        top = tuple(
            RankedNode(
                index=row,
                uuid=table.uuid_of(row),
                name=table.name_of(row),
                score=scores[j],
                terms={n: w * float(v[j]) / cj.weight_total for n, w, v in terms},
                gpu_indices=g,
                tie_key=int(tie[j]),
            )
            for j, (row, g) in enumerate(zip(chosen, gpus, strict=True))
        )
    return Ranking(
        job=job,
        evaluated=len(table),
        feasible=len(idx),
        top=top,
        explanation=Explanation(
            functools.partial(_evaluate, cj, table), evaluated=len(table), feasible=len(idx)
        ),
        feasible_indices=idx,
        seed=seed,
    )
