"""Soft preferences: one named scorer per term, each giving every feasible node a score in [0, 1].

Scorers see only the feasible rows (``idx``), in float64. Formulas (docs/scoring.md):

* ``reputation``  = clip(reputation, 0, 100) / 100; unknown -> 0.
* ``freshness``   = F / (F + age), age = max(0, now - last_seen_at), F = 600 s; unknown -> 0.
* ``images``      = preferred images cached / preferred images (1 when the job prefers none).
* ``fit``         GPU job, m = GPUs matching every per-GPU limit, c = count:
  pack = c / m; spread = (m - c) / (G - c) with G = the fleet's most GPUs on one node
  (:class:`TableStats`, a mergeable max), 0 when G <= c. CPU-only job: 1 / (1 + GPUs on node).
* ``idle``        = f * (1 - L) + (1 - f) * 0.5: L = mean load of the matching GPUs with known
  telemetry load (CPU-only: cpu.average), clipped to [0, 1]; f = T / (T + telemetry age),
  T = 300 s: live telemetry counts fully and fades to the neutral 0.5 as it ages;
  unknown L -> 0.5.

The combined score is ``sum(w_t * s_t) / sum(w_t)`` over the terms with weight > 0, in
``SCORE_TERMS`` order, so it is in [0, 1].
"""

from __future__ import annotations

from typing import Final

import attrs
import numpy as np
import numpy.typing as npt

from nodeselect.engine._constraints import CompiledJob, GpuEval, GpuSubset, _offsets
from nodeselect.table import NodeTable

__all__ = [
    "FRESHNESS_SCALE_S",
    "TELEMETRY_SCALE_S",
    "NodeScores",
    "combine",
    "combine_partial",
    "gpu_fit",
    "gpu_load_mean",
    "idle_bounds",
    "idle_exact",
    "idle_of",
    "score_cheap",
    "score_subset",
    "score_terms",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

FRESHNESS_SCALE_S: Final = 600.0
TELEMETRY_SCALE_S: Final = 300.0


@attrs.frozen(eq=False)
class NodeScores:
    """The job-independent per-node inputs of the score terms, for every row of a table at one
    ``now``: computed once for a batch of jobs, then gathered by row. Every value is the same
    elementwise computation the scorers do on the fly, so gathered values are bit for bit equal.

    Attributes:
        now_s: the time they hold for (epoch seconds).
        reputation / freshness: those terms.
        decay: the telemetry weight ``f`` of ``idle``.
        idle_lo / idle_hi: :func:`idle_bounds` of a GPU job.
        cpu_idle: the ``idle`` term of a CPU-only job.
    """

    now_s: float
    reputation: F64
    freshness: F64
    decay: F64
    idle_lo: F64
    idle_hi: F64
    cpu_idle: F64

    @classmethod
    def of(cls, t: NodeTable, now_s: float) -> NodeScores:
        """Every row's values at ``now_s``."""
        rows = np.arange(len(t), dtype=np.int64)
        f = _decay(now_s - t.telemetry_epoch_s, TELEMETRY_SCALE_S)
        lo, hi = _bounds(f)
        return cls(
            now_s=now_s,
            reputation=_reputation(t, rows),
            freshness=_decay(now_s - t.last_seen_epoch_s, FRESHNESS_SCALE_S),
            decay=f,
            idle_lo=lo,
            idle_hi=hi,
            cpu_idle=idle_of(f, t.cpu_load.astype(np.float64)),
        )


def _reputation(t: NodeTable, idx: I64) -> F64:
    r = t.reputation[idx].astype(np.float64)
    return np.where(np.isnan(r), 0.0, np.clip(r, 0.0, 100.0) / 100.0)


def _decay(age: F64, scale: float) -> F64:
    a = np.maximum(age, 0.0)
    return np.where(np.isnan(a), 0.0, scale / (scale + a))


def _freshness(cj: CompiledJob, t: NodeTable, idx: I64, pre: NodeScores | None) -> F64:
    if pre is not None:
        return pre.freshness[idx]
    return _decay(cj.now_s - t.last_seen_epoch_s[idx], FRESHNESS_SCALE_S)


def _images(cj: CompiledJob, t: NodeTable, idx: I64) -> F64:
    if not cj.preferred:
        return np.ones(len(idx))
    index = {v: j for j, v in enumerate(t.image_vocab)}
    hits = np.zeros(len(idx), dtype=np.float64)
    for img in cj.preferred:
        j = index.get(img)
        if j is not None:
            hits += ((t.image_bits[j >> 6, idx] >> np.uint64(j & 63)) & np.uint64(1)).astype(
                np.float64
            )
    return hits / float(len(cj.preferred))


def _fit(cj: CompiledJob, t: NodeTable, idx: I64, matching: I64 | None, max_gpus: int) -> F64:
    if matching is None:
        return 1.0 / (1.0 + t.gpu_count[idx].astype(np.float64))
    pack = cj.job.preferences.strategy == "pack"
    return gpu_fit(matching.astype(np.float64), float(cj.count), pack=pack, max_gpus=max_gpus)


def gpu_fit(m: F64, c: float | F64, *, pack: bool, max_gpus: int) -> F64:
    """The ``fit`` term of a GPU job from the matching GPU counts ``m`` and the job's ``count``
    ``c`` (a number, or one per row)."""
    if pack:
        return np.where(m > 0, c / np.maximum(m, 1.0), 0.0)
    room = float(max_gpus) - c  # spread: 0 when no node can have more GPUs than the job needs
    out: F64 = np.where(room > 0, (m - c) / np.where(room > 0, room, 1.0), 0.0)
    return out


def _telemetry_decay(cj: CompiledJob, t: NodeTable, idx: I64, pre: NodeScores | None) -> F64:
    if pre is not None:
        return pre.decay[idx]
    return _decay(cj.now_s - t.telemetry_epoch_s[idx], TELEMETRY_SCALE_S)


def _idle(
    cj: CompiledJob, t: NodeTable, idx: I64, gpus: GpuSubset | None, pre: NodeScores | None
) -> F64:
    if gpus is None:
        if pre is not None:
            return pre.cpu_idle[idx]
        load = t.cpu_load[idx].astype(np.float64)
    else:
        load = gpu_load_mean(t.gpu_load[gpus.rows], gpus.passes, gpus.lens, gpus.offsets[:-1])
    return idle_of(_telemetry_decay(cj, t, idx, pre), load)


def gpu_load_mean(
    load: npt.NDArray[np.float32], passes: npt.NDArray[np.bool_], lens: I64, starts: I64
) -> F64:
    """Per node, the mean load (clipped to [0, 1]) of its passing GPUs whose load is known, NaN
    when there are none; ``load`` and ``passes`` are per GPU, node by node (``lens`` each,
    from ``starts``)."""
    raw = load.astype(np.float64)
    known = passes & ~np.isnan(raw)
    vals = np.where(known, np.clip(raw, 0.0, 1.0), 0.0)
    nz = lens > 0
    if len(lens) and nz.all():  # every GPU job's feasible node has GPUs
        sums = np.add.reduceat(vals, starts)
        cnt = np.add.reduceat(known.astype(np.float64), starts)
    else:
        sums = np.zeros(len(lens))
        cnt = np.zeros(len(lens))
        if nz.any():
            sums[nz] = np.add.reduceat(vals, starts[nz])
            cnt[nz] = np.add.reduceat(known.astype(np.float64), starts[nz])
    out: F64 = np.where(cnt > 0, sums / np.maximum(cnt, 1.0), np.nan)  # no 0/0: max(cnt, 1)
    return out


def idle_of(f: F64, load: F64) -> F64:
    """``idle`` from the telemetry weight and the (unclipped, maybe unknown) load."""
    load = np.minimum(np.maximum(load, 0.0), 1.0)  # clip (NaN stays NaN), without its overhead
    s = f * (1.0 - load) + (1.0 - f) * 0.5
    return np.where(np.isnan(load), 0.5, s)


def idle_bounds(
    cj: CompiledJob, t: NodeTable, idx: I64, pre: NodeScores | None = None
) -> tuple[F64, F64]:
    """Per row of ``idx``, a lower and an upper bound of the computed ``idle`` score of a GPU
    job, from the telemetry age alone (the load, in [0, 1] or unknown, is not read).

    ``idle`` is ``f * (1 - L) + (1 - f) * 0.5`` (or 0.5): rounded products and sums are monotone,
    so ``L = 1`` / ``L = 0`` give float bounds of the float result, widened to include 0.5.
    """
    if pre is not None:
        return pre.idle_lo[idx], pre.idle_hi[idx]
    return _bounds(_telemetry_decay(cj, t, idx, None))


def _bounds(f: F64) -> tuple[F64, F64]:
    half = (1.0 - f) * 0.5
    lo = np.minimum(f * 0.0 + half, 0.5)
    hi = np.maximum(f * 1.0 + half, 0.5)
    return lo, hi


def combine(cj: CompiledJob, raw: dict[str, F64], n: int) -> F64:
    """The combined score ``sum(w_t * s_t) / sum(w_t)``, term by term in ``cj.weights`` order
    (elementwise, so a row's score does not depend on the other rows)."""
    score = np.zeros(n)
    for name, w in cj.weights:
        score = score + w * raw[name]
    out: F64 = score / cj.weight_total
    return out


def combine_partial(cj: CompiledJob, raw: dict[str, F64], n: int) -> F64:
    """:func:`combine`'s running sum before its last term and the division (so that
    ``(partial + w_last * s_last) / sum(w)`` is :func:`combine` bit for bit)."""
    score = np.zeros(n)
    for name, w in cj.weights[:-1]:
        score = score + w * raw[name]
    return score


def score_cheap(
    cj: CompiledJob,
    t: NodeTable,
    idx: I64,
    matching: I64 | None,
    max_gpus: int,
    *,
    pre: NodeScores | None = None,
) -> dict[str, F64]:
    """Every weighted term except a GPU job's ``idle`` for rows ``idx`` (``matching``: their
    matching GPU counts, ``None`` for a CPU-only job, whose ``idle`` is included; ``pre``:
    the per-node inputs, precomputed for this ``now``)."""
    out: dict[str, F64] = {}
    for name, _w in cj.weights:
        if name == "reputation":
            out[name] = _reputation(t, idx) if pre is None else pre.reputation[idx]
        elif name == "freshness":
            out[name] = _freshness(cj, t, idx, pre)
        elif name == "images":
            out[name] = _images(cj, t, idx)
        elif name == "fit":
            out[name] = _fit(cj, t, idx, matching, max_gpus)
        elif matching is None:
            out[name] = _idle(cj, t, idx, None, pre)
    return out


def idle_exact(
    cj: CompiledJob,
    t: NodeTable,
    idx: I64,
    gpus: GpuSubset | None,
    pre: NodeScores | None = None,
) -> F64:
    """The ``idle`` term of rows ``idx`` (``gpus``: their GPU group, ``None`` for CPU-only)."""
    return _idle(cj, t, idx, gpus, pre)


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
    if gpus is not None:  # a GPU job's idle term reads per-GPU load (score_cheap leaves it out)
        for name, _w in cj.weights:
            if name not in out:
                out[name] = _idle(cj, t, idx, gpus, None)
    return {name: out[name] for name, _w in cj.weights}
