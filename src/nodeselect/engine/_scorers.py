"""Soft preferences: the registered score terms (:mod:`nodeselect.engine.scorers`, one unit each),
each giving every feasible node a score in [0, 1], and their combination.

Scorers see only the feasible rows (``idx``), in float64. The formulas are in each unit's
module and in docs/scoring.md. The combined score is ``sum(w_t * s_t) / sum(w_t)`` over the
terms with weight > 0, in registry order (``cj.weights``), so it is in [0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs
import numpy as np
import numpy.typing as npt

from nodeselect.engine._constraints import CompiledJob, GpuEval, GpuSubset, _offsets
from nodeselect.engine.scorers import (
    FRESHNESS_SCALE_S,
    TELEMETRY_SCALE_S,
    TermInputs,
    gpu_fit,
    gpu_load_mean,
    idle_of,
    score_unit,
    score_units,
)
from nodeselect.table import NodeTable

__all__ = [
    "FRESHNESS_SCALE_S",
    "TELEMETRY_SCALE_S",
    "NodeScores",
    "combine",
    "combine_from",
    "combine_partial",
    "gpu_fit",
    "gpu_load_mean",
    "idle_bounds",
    "idle_exact",
    "idle_of",
    "score_cheap",
    "score_subset",
    "score_terms",
    "term_exact",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@attrs.frozen(eq=False)
class NodeScores:
    """The job-independent per-node inputs of the score terms, for every row of a table at one
    ``now``: computed once for a batch of jobs, then gathered by row. Every value is the same
    elementwise computation the scorers do on the fly, so gathered values are bit for bit equal.

    Attributes:
        now_s: the time they hold for (epoch seconds).
        cols: every registered term's :meth:`~nodeselect.engine.scorers.ScoreTerm.precompute`
            columns by name (e.g. ``reputation``, ``freshness``; ``idle``'s ``decay``,
            ``idle_lo``, ``idle_hi``, ``cpu_idle``).
    """

    now_s: float
    cols: Mapping[str, F64]

    @classmethod
    def of(
        cls, t: NodeTable, now_s: float, built: Mapping[str, Mapping[str, F64]] | None = None
    ) -> NodeScores:
        """Every row's values at ``now_s`` (``built``: the columns some terms' ``precompute``
        already returned at ``now_s``, by term name; the others are computed here)."""
        cols: dict[str, F64] = {}
        for u in score_units():
            hit = None if built is None else built.get(u.name)
            cols.update(u.precompute(t, now_s) if hit is None else hit)
        return cls(now_s=now_s, cols=cols)


def combine(cj: CompiledJob, raw: Mapping[str, F64], n: int) -> F64:
    """The combined score ``sum(w_t * s_t) / sum(w_t)``, term by term in ``cj.weights`` order
    (elementwise, so a row's score does not depend on the other rows)."""
    score = np.zeros(n)
    for name, w in cj.weights:
        score = score + w * raw[name]
    out: F64 = score / cj.weight_total
    return out


def combine_partial(cj: CompiledJob, raw: Mapping[str, F64], n: int, stop: int = -1) -> F64:
    """:func:`combine`'s running sum over the terms before position ``stop`` of ``cj.weights``
    (default: all but the last), before the division."""
    score = np.zeros(n)
    for name, w in cj.weights[:stop]:
        score = score + w * raw[name]
    return score


def combine_from(
    cj: CompiledJob,
    partial: F64,
    start: int,
    raw: Mapping[str, F64],
    at: npt.NDArray[np.int64] | None = None,
) -> F64:
    """:func:`combine` continued from ``partial`` (:func:`combine_partial` up to ``start``) over
    the terms from position ``start`` (``raw`` values taken at ``at`` when given), then the
    division: ``combine_from(cj, combine_partial(cj, raw, n, s), s, raw)`` is
    :func:`combine` bit for bit."""
    score = partial
    for name, w in cj.weights[start:]:
        score = score + w * (raw[name] if at is None else raw[name][at])
    out: F64 = score / cj.weight_total
    return out


def score_cheap(
    cj: CompiledJob,
    t: NodeTable,
    idx: I64,
    matching: I64 | None,
    max_gpus: int,
    *,
    pre: NodeScores | None = None,
) -> dict[str, F64]:
    """Every weighted term except a GPU job's ``per_gpu`` ones for rows ``idx`` (``matching``:
    their matching GPU counts, ``None`` for a CPU-only job, whose every term is included;
    ``pre``: the per-node inputs, precomputed for this ``now``)."""
    inputs = TermInputs(matching=matching, gpus=None, max_gpus=max_gpus, pre=pre)
    out: dict[str, F64] = {}
    for name, _w in cj.weights:
        u = score_unit(name)
        if matching is None or not u.per_gpu:
            out[name] = u.values(cj, t, idx, inputs)
    return out


def term_exact(
    cj: CompiledJob,
    name: str,
    t: NodeTable,
    idx: I64,
    gpus: GpuSubset | None,
    *,
    max_gpus: int,
    pre: NodeScores | None = None,
) -> F64:
    """The term ``name`` of rows ``idx`` (``gpus``: their GPU group, ``None`` for CPU-only)."""
    matching = None if gpus is None else gpus.matching
    inputs = TermInputs(matching=matching, gpus=gpus, max_gpus=max_gpus, pre=pre)
    return score_unit(name).values(cj, t, idx, inputs)


def idle_exact(
    cj: CompiledJob,
    t: NodeTable,
    idx: I64,
    gpus: GpuSubset | None,
    pre: NodeScores | None = None,
) -> F64:
    """The ``idle`` term of rows ``idx`` (``gpus``: their GPU group, ``None`` for CPU-only)."""
    return term_exact(cj, "idle", t, idx, gpus, max_gpus=0, pre=pre)


def idle_bounds(
    cj: CompiledJob, t: NodeTable, idx: I64, pre: NodeScores | None = None
) -> tuple[F64, F64]:
    """Per row of ``idx``, a lower and an upper bound of the computed ``idle`` score of a GPU
    job, from the telemetry age alone (the load, in [0, 1] or unknown, is not read)."""
    out = score_unit("idle").bounds(cj, t, idx, pre)
    assert out is not None
    return out


def score_terms(
    cj: CompiledJob, t: NodeTable, idx: I64, ge: GpuEval | None, max_gpus: int
) -> dict[str, F64]:
    """Each weighted term's raw score in [0, 1] for rows ``idx`` (weight-0 terms skipped)."""
    gpus = None
    if ge is not None:
        rows = t.gpu_rows(idx)
        lens = (t.gpu_offsets[idx + 1] - t.gpu_offsets[idx]).astype(np.int64)
        gpus = GpuSubset(
            idx=idx,
            rows=rows,
            lens=lens,
            offsets=_offsets(lens),
            available=None,
            passes=ge.passes[rows],
            matching=ge.matching[idx],
            active=ge.active,
        )
    return score_subset(cj, t, idx, gpus, max_gpus)


def score_subset(
    cj: CompiledJob, t: NodeTable, idx: I64, gpus: GpuSubset | None, max_gpus: int
) -> dict[str, F64]:
    """:func:`score_terms` with the GPU group of exactly the nodes ``idx`` (``gpus.idx``)."""
    out = score_cheap(cj, t, idx, None if gpus is None else gpus.matching, max_gpus)
    if gpus is not None:  # a GPU job's per-GPU terms read the GPU group (score_cheap skips them)
        for name, _w in cj.weights:
            if name not in out:
                out[name] = term_exact(cj, name, t, idx, gpus, max_gpus=max_gpus)
    return {name: out[name] for name, _w in cj.weights}
