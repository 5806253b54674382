"""Rank many jobs against one table at once, sharing the work jobs have in common.

``rank_many(jobs, table)`` returns exactly what ``[rank(job, table) for job in jobs]`` returns
(same feasible sets, scores, terms, GPU choices and order, bit for bit), with one ``now``.

Jobs are grouped by their categorical constraints (status, region, compliance, operators,
nodes, arch, required images) and GPU model set. Per group, once:

* the candidate rows (categorical mask, model key, GPU count) and their numeric columns;
* per candidate, its GPUs in a dense ``(candidates, slots)`` layout, usable ones (right model,
  not reserved) first by free VRAM descending: a job needing ``count`` GPUs with ``x`` GB free
  is feasible exactly where slot ``count - 1`` holds at least ``x``, and its matching GPUs are
  the first ``matching`` slots, so prefix sums of their loads give the ``idle`` term;

then each job's feasible rows are found with one comparison per candidate and a few gathered
tests, and the score terms, the combined score, the top-``k`` order and the GPU choices of every
job of the group are computed together, over all of the group's feasible (job, node) pairs at
once, with each job's parameters repeated per pair. Every value is the per-job engine's
elementwise computation, so results are bit for bit those of :func:`nodeselect.rank`.

Jobs with other per-GPU limits (``max_load``, ``min_vram_total_gb``), and groups too small to
repay the gathering, take the per-job path (with the batch's per-node columns).
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from nodeselect._constraints import (
    CompiledJob,
    _model_lut,
    _offsets,
    compile_job,
    effective_gpu_columns,
    f32_at_least,
)
from nodeselect._derived import gpu_model_key, max_gpu_count, uuid_hash
from nodeselect._engine import RankedNode, Ranking, rank_compiled, ranked_nodes, ranking_of
from nodeselect._exceptions import InputError
from nodeselect._job import SCORE_TERMS, Job
from nodeselect._prefilter import _block, _categorical, _categorical_key, _numeric_tests
from nodeselect._scorers import NodeScores, _images, gpu_fit, gpu_load_mean, idle_of
from nodeselect._shard import TableStats, tie_keys
from nodeselect._table import NodeTable

__all__ = ["CHUNK_PAIRS", "MIN_GROUP", "MIN_JOBS", "rank_many"]

B = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

#: Below this many jobs the batch is a plain loop (the shared columns would cost more).
MIN_JOBS: Final = 4
#: Below this many jobs a group takes the per-job path (gathering would cost more).
MIN_GROUP: Final = 4
#: Feasible (job, node) pairs scored together (their float64 temporaries stay in L2).
CHUNK_PAIRS: Final = 1 << 15
#: Sort keys: a usable GPU whose free VRAM is unknown sorts after every known one.
_UNKNOWN: Final = 2.0 * float(np.finfo(np.float32).max)


def rank_many(
    jobs: Sequence[Job],
    table: NodeTable,
    *,
    k: int = 10,
    now: datetime | None = None,
    seed: int = 0,
    stats: TableStats | None = None,
) -> list[Ranking]:
    """Rank every job of ``jobs`` on ``table``, sharing the work the jobs have in common.

    The result equals ``[rank(job, table, k=k, now=now, seed=seed, stats=stats) for job in
    jobs]``, bit for bit, with one ``now`` (default: the current time, read once) for every job.

    Raises:
        InputError: ``k < 0``, or a job is invalid (the error notes which: ``jobs[i]``).
    """
    if k < 0:
        raise InputError(f"k={k}: give a number of nodes >= 0")
    now = now or datetime.now(UTC)
    cjs = [_compile(i, job, now) for i, job in enumerate(jobs)]
    max_gpus = stats.max_gpu_count if stats is not None else max_gpu_count(table)
    if len(cjs) < MIN_JOBS:
        return [rank_compiled(cj, table, k=k, seed=seed, max_gpus=max_gpus) for cj in cjs]
    batch = _Batch(table, cjs[0].now_s, seed, max_gpus, k)
    out: list[Ranking | None] = [None] * len(cjs)
    groups: dict[Hashable, list[int]] = {}
    for i, cj in enumerate(cjs):
        if cj.min_vram_total_gb is None and cj.max_load is None:
            groups.setdefault(_group_key(cj), []).append(i)
        else:
            out[i] = batch.rank_one(cj)
    for members in groups.values():
        if len(members) < MIN_GROUP:
            for i in members:
                out[i] = batch.rank_one(cjs[i])
            continue
        mine = [cjs[i] for i in members]
        for i, r in zip(members, _Group(batch, mine).rank_all(mine), strict=True):
            out[i] = r
    return [r for r in out if r is not None]


def _compile(i: int, job: Job, now: datetime) -> CompiledJob:
    try:
        return compile_job(job, now)
    except InputError as e:
        e.add_note(f"in jobs[{i}] (name {job.name!r})")
        raise


def _group_key(cj: CompiledJob) -> Hashable:
    return (_categorical_key(cj), cj.count == 0, cj.model_codes)


class _Batch:
    """What every job of a batch shares: the table, ``now``, the seed and per-node columns."""

    def __init__(self, t: NodeTable, now_s: float, seed: int, max_gpus: int, k: int) -> None:
        self.t, self.now_s, self.max_gpus, self.k, self.seed = t, now_s, max_gpus, k, seed
        self.pre = NodeScores.of(t, now_s)
        self.keys = tie_keys(uuid_hash(t), seed)
        self._free: F32 | None = None
        self._partials: dict[tuple[tuple[str, float], ...], F64] = {}

    def free(self) -> F32:
        """Every GPU's effective free VRAM at ``now`` (as the constraints read it)."""
        if self._free is None:
            self._free = effective_gpu_columns(self.t, self.now_s)[0]
        return self._free

    def node_terms(self, cjs: list[CompiledJob]) -> frozenset[str]:
        """The terms whose raw value depends on the node alone for every job of ``cjs``."""
        if any(cj.preferred for cj in cjs):
            return frozenset(("reputation", "freshness"))
        return frozenset(("reputation", "freshness", "images"))

    def partial(self, terms: tuple[tuple[str, float], ...]) -> F64:
        """Per node, :func:`nodeselect._scorers.combine`'s running sum over the leading
        ``terms`` (name, weight), each a :meth:`node_terms` term (cached per ``terms``)."""
        hit = self._partials.get(terms)
        if hit is None:
            score = np.zeros(len(self.t))
            for name, w in terms:
                if name == "images":  # no job prefers images: every node scores 1
                    score = score + w * np.ones(len(self.t))
                else:
                    score = score + w * getattr(self.pre, name)
            hit = self._partials[terms] = score
        return hit

    def rank_one(self, cj: CompiledJob) -> Ranking:
        """The per-job path, with the batch's per-node columns."""
        return rank_compiled(
            cj,
            self.t,
            k=self.k,
            seed=self.seed,
            max_gpus=self.max_gpus,
            pre=self.pre,
            keys=self.keys,
        )


class _Group:
    """The candidate rows of jobs sharing categorical constraints and a GPU model set, with
    their columns gathered and (GPU jobs) their GPUs in a dense, sorted layout."""

    def __init__(self, batch: _Batch, cjs: list[CompiledJob]) -> None:
        self.batch = batch
        self._cols: dict[int, npt.NDArray[Any]] = {}
        self._masks: tuple[B, B] | None = None
        self._score_bounds: dict[Hashable, tuple[F64, F64]] = {}
        self._scratch: F64 | None = None
        t, first = batch.t, cjs[0]
        cat = _categorical(first, t)
        self.gpu = first.count > 0
        if not self.gpu:
            self.cand: I64 = (
                np.arange(len(t), dtype=np.int64) if cat is None else np.flatnonzero(cat)
            )
            return
        key, vocab, has_mixed = gpu_model_key(t)
        lut = np.zeros(256, dtype=np.bool_)
        if first.model_codes is None:
            lut[1:] = True
        else:
            lut[[j + 1 for j, c in enumerate(vocab.tolist()) if c in first.model_codes]] = True
            lut[len(vocab) + 1] = has_mixed
        mask = np.take(lut, key)
        mask &= t.gpu_count >= min(255, *(cj.count for cj in cjs))
        if cat is not None:
            mask &= cat
        self.cand = np.flatnonzero(mask)
        starts = t.gpu_offsets[self.cand].astype(np.int64)
        self.lens: I64 = t.gpu_offsets[self.cand + 1] - starts
        self.offsets = _offsets(self.lens)
        self.rows = np.arange(int(self.offsets[-1]), dtype=np.int64) + np.repeat(
            starts - self.offsets[:-1], self.lens
        )
        self.avail: B | None = None if t.gpu_reserved is None else ~t.gpu_reserved[self.rows]
        if first.model_codes is not None:
            usable = np.take(_model_lut(first), t.gpu_model_code[self.rows])
            if self.avail is not None:
                usable &= self.avail
        elif self.avail is not None:
            usable = self.avail
        else:
            usable = np.ones(len(self.rows), dtype=np.bool_)
        self.usable: B = usable
        self.n_usable = self._per_node(usable)
        self._sort_gpus()

    def _per_node(self, per_gpu: B) -> I64:
        cs = np.zeros(len(per_gpu) + 1, dtype=np.int64)
        np.cumsum(per_gpu, out=cs[1:])
        out: I64 = cs[self.offsets[1:]] - cs[self.offsets[:-1]]
        return out

    def _sort_gpus(self) -> None:
        """The dense layouts (``slots``: the most GPUs of a candidate, rounded up to 8).

        * ``top_rows[i]`` / ``top_free[:, i]``: candidate ``i``'s usable GPUs' free VRAM,
          descending (``-inf`` for unknown, unusable and padding): ``top_rows[i, c - 1] >= x``
          iff at least ``c`` usable GPUs have ``free >= x``;
        * ``desc``: slot order (GPU indices) by free VRAM descending, ties by GPU index,
          unknown free after known, unusable last: its first ``matching`` are the GPUs that
          pass (spread takes the first ``count``); ``up``: the keys of the ascending order
          (pack: the passing ones are ``asc[max(0, n_known - matching) :]``);
        * ``idle``: the ``idle`` term of candidate ``i`` when its first ``m`` GPUs in ``desc``
          order pass, at ``[i * slots + m - 1]`` (from running sums of the known loads,
          clipped to [0, 1], and of how many are known).

        A node's sums of loads are exact, so independent of the order they are added in, when
        each of its nonzero loads is at least 2**-26 and it has at most 16 GPUs: every partial
        sum is then a multiple of 2**-49 below 16 (53 bits). The other nodes (``inexact``)
        have their ``idle`` term computed GPU by GPU, as the engine does.
        """
        t = self.batch.t
        c, g = len(self.cand), len(self.rows)
        slots = -(-int(self.lens.max()) // 8) * 8 if c else 0
        free = self.batch.free()[self.rows].astype(np.float64)
        self.free = free.astype(np.float32)
        known = self.usable & ~np.isnan(free)
        self.n_known = self._per_node(known)
        # each GPU's cell in the (c, slots) layouts, by GPU index, then in sorted order
        cell = np.arange(g, dtype=np.int64) + np.repeat(
            np.arange(c, dtype=np.int64) * slots - self.offsets[:-1], self.lens
        )
        nan_free = np.where(np.isnan(free), 0.0, free)
        unknown = np.where(self.usable, _UNKNOWN, np.inf)
        down = np.full(c * slots, np.inf)
        down[cell] = np.where(known, -nan_free, unknown)
        desc = np.argsort(down.reshape(c, slots), axis=1, kind="stable")
        self.desc = desc.astype(np.int8 if slots <= 127 else np.int16)
        up = np.full(c * slots, np.inf)
        up[cell] = np.where(known, nan_free, unknown)
        self.up = up.reshape(c, slots)
        where = np.empty(c * slots, dtype=np.int64)
        where[(np.arange(c, dtype=np.int64)[:, None] * slots + desc).ravel()] = np.arange(c * slots)
        cell = where.take(cell)

        def by_free(v: npt.NDArray[Any], fill: float, dtype: Any) -> Any:
            out = np.full(c * slots, fill, dtype=dtype)
            out[cell] = v
            return out.reshape(c, slots)

        self.top_rows: F32 = by_free(np.where(known, free, -np.inf), -np.inf, np.float32)
        self.top_free: F32 = np.ascontiguousarray(self.top_rows.T)
        raw = t.gpu_load[self.rows].astype(np.float64)
        has = ~np.isnan(raw)
        vals = np.where(has, np.clip(np.where(has, raw, 0.0), 0.0, 1.0), 0.0)
        sums = np.cumsum(by_free(vals, 0.0, np.float64), axis=1)
        cnt = np.cumsum(by_free(has, 0.0, np.float64), axis=1)
        load = np.where(cnt > 0, sums / np.maximum(cnt, 1.0), np.nan)  # no 0/0: max(cnt, 1)
        decay = self.batch.pre.decay.take(self.cand)
        self.idle: F64 = idle_of(decay[:, None], load).ravel()
        tiny = self.usable & (vals > 0) & (vals < 2.0**-26)
        inexact = (self._per_node(tiny) > 0) | (self.lens > 16)
        self.inexact: B | None = inexact if inexact.any() else None

    def _column(self, col: npt.NDArray[Any]) -> Any:
        hit = self._cols.get(id(col))
        if hit is None:
            hit = self._cols[id(col)] = col[self.cand]
        return hit

    def _feasible(self, cj: CompiledJob) -> I64:
        """Positions in ``cand`` of the job's feasible rows (ascending): every test on the
        whole (compact) group columns, in reused buffers, then one ``flatnonzero``."""
        tests: list[tuple[str, Any, Any]] = []
        if self.gpu:
            if cj.count > len(self.top_free):
                return np.zeros(0, dtype=np.int64)
            if cj.min_vram_free_gb is None:
                tests.append(("ge", self.n_usable, cj.count))
            else:
                x = f32_at_least(cj.min_vram_free_gb)
                tests.append(("ge", self.top_free[cj.count - 1], x))
        tests += [
            (kind, self._column(col), arg) for kind, col, arg in _numeric_tests(cj, self.batch.t)
        ]
        n = len(self.cand)
        if not tests:
            return np.arange(n, dtype=np.int64)
        if self._masks is None:
            self._masks = (np.empty(n, dtype=np.bool_), np.empty(n, dtype=np.bool_))
        mask, tmp = self._masks
        if any(kind == "age" for kind, _, _ in tests) and self._scratch is None:
            self._scratch = np.empty(n)
        scratch = np.zeros(0) if self._scratch is None else self._scratch
        kind, col, arg = tests[0]
        _block(kind, col, arg, mask, scratch)
        for kind, col, arg in tests[1:]:
            mask &= _block(kind, col, arg, tmp, scratch)
        return np.flatnonzero(mask)

    def score_bounds(
        self,
        static: tuple[tuple[str, float], ...],
        rest: tuple[tuple[str, float], ...],
        total: float,
        *,
        pack: bool,
    ) -> tuple[F64, F64]:
        """Per candidate, a lower and an upper bound of the score of any GPU job with these
        weights and strategy: the :meth:`_Batch.partial` of ``static``, then ``rest``
        (``fit``, ``idle``) at their least / most, then ``/ total``, in combine's order.

        ``fit``: pack ``c / m`` with ``c <= m <= n_usable`` is in ``[1 / n_usable, 1]``;
        spread ``(m - c) / (G - c)`` is in ``[0, (n_usable - 1) / (G - 1)]`` (decreasing in
        ``c >= 1``). ``idle``: the least / most of the node's cells (``m`` of 1..GPUs); an
        inexact node is bounded by ``-inf`` / ``inf`` (always kept, never a threshold).
        """
        key = (static, rest, total, pack)
        hit = self._score_bounds.get(key)
        if hit is not None:
            return hit
        c, slots = len(self.cand), self.top_rows.shape[1]
        base = self.batch.partial(static).take(self.cand) if static else np.zeros(len(self.cand))
        lo, hi = base, base
        n = self.n_usable.astype(np.float64)
        g = float(self.batch.max_gpus)
        for name, w in rest:
            if name == "fit":
                if pack:
                    t_lo, t_hi = 1.0 / np.maximum(n, 1.0), np.ones(c)
                else:
                    t_lo, t_hi = np.zeros(c), (n - 1.0) / max(g - 1.0, 1.0)
            else:
                cells = self.idle.reshape(c, slots)
                valid = np.arange(slots)[None, :] < self.lens[:, None]
                t_lo = np.where(valid, cells, np.inf).min(axis=1) if slots else np.zeros(c)
                t_hi = np.where(valid, cells, -np.inf).max(axis=1) if slots else np.zeros(c)
            lo, hi = lo + w * t_lo, hi + w * t_hi
        lo, hi = lo / total, hi / total
        if self.inexact is not None:
            lo = np.where(self.inexact, -np.inf, lo)
            hi = np.where(self.inexact, np.inf, hi)
        out = self._score_bounds[key] = (lo, hi)
        return out

    def rank_all(self, cjs: list[CompiledJob]) -> list[Ranking]:
        """Every job's ranking (each equal to :func:`nodeselect._engine.rank`'s).

        Pairs are scored in chunks of consecutive jobs of about :data:`CHUNK_PAIRS` pairs,
        so that the temporaries of each step stay in cache.
        """
        b = self.batch
        poss = [self._feasible(cj) for cj in cjs]
        out: list[Ranking] = []
        start = 0
        while start < len(cjs):
            stop, total = start, 0
            while stop < len(cjs) and (stop == start or total + len(poss[stop]) <= CHUNK_PAIRS):
                total += len(poss[stop])
                stop += 1
            mine = cjs[start:stop]
            bounds = _offsets(np.array([len(p) for p in poss[start:stop]], dtype=np.int64))
            pos = np.concatenate(poss[start:stop])
            idx = self.cand.take(pos)
            tops: list[tuple[RankedNode, ...]] = [()] * len(mine)
            if b.k and len(pos):
                job = np.repeat(np.arange(len(mine), dtype=np.int64), np.diff(bounds))
                tops = _Pairs(self, mine, pos=pos, idx=idx, job=job, bounds=bounds).tops()
            out += [
                ranking_of(cj, b.t, idx[bounds[j] : bounds[j + 1]], tops[j], b.seed)
                for j, cj in enumerate(mine)
            ]
            start = stop
        return out


class _Pairs:
    """The feasible (job, node) pairs of a group: job ``job[i]`` (an index into ``cjs``) and
    candidate ``pos[i]`` (row ``idx[i]``), job by job (``bounds``: CSR offsets per job)."""

    def __init__(
        self, g: _Group, cjs: list[CompiledJob], *, pos: I64, idx: I64, job: I64, bounds: I64
    ) -> None:
        self.g, self.cjs, self.pos, self.idx, self.job, self.bounds = g, cjs, pos, idx, job, bounds
        self.wanted = [n for n in SCORE_TERMS if any(n == m for cj in cjs for m, _ in cj.weights)]
        self.static = self._static()
        keep = self._prune()
        if keep is not None:
            self.pos, self.idx, self.job = pos.take(keep), idx.take(keep), job.take(keep)
            self.bounds = _offsets(np.bincount(self.job, minlength=len(cjs)).astype(np.int64))
        self.matching: I64 | None = self._matching() if g.gpu else None
        self.full: dict[str, F64] = {}  # terms computed for every pair
        self.score = self._combine()

    def _static(self) -> tuple[tuple[str, float], ...]:
        """The leading weighted terms that depend on the node alone and have one weight in
        every job (their running sum is per node: :meth:`_Batch.partial`)."""
        static: list[tuple[str, float]] = []
        node_terms = self.g.batch.node_terms(self.cjs)
        for name in self.wanted:
            w = self._weights(name)
            if np.ndim(w) or name not in node_terms:
                break
            static.append((name, float(w)))
        return tuple(static)

    def _prune(self) -> I64 | None:
        """The pairs that can be in their job's top ``k`` (``None``: keep all), when the
        jobs share their weights and strategy: each node's score is bounded from the per-node
        partial sum, ``fit`` in its range and ``idle`` between the least and most of the
        node's cells (bounds of the float result: each step of the sum is monotone); a pair
        is kept when its upper bound reaches its job's ``k``-th best lower bound."""
        cjs, k = self.cjs, self.g.batch.k
        first = cjs[0]
        same = all(
            cj.weights == first.weights
            and cj.job.preferences.strategy == first.job.preferences.strategy
            for cj in cjs
        )
        rest = self.wanted[len(self.static) :]
        if not (self.g.gpu and same and set(rest) <= {"fit", "idle"} and len(self.idx) > k):
            return None
        weights = dict(first.weights)
        lower, upper = self.g.score_bounds(
            self.static,
            tuple((n, weights[n]) for n in rest),
            first.weight_total,
            pack=first.job.preferences.strategy == "pack",
        )
        lo, hi = lower.take(self.pos), upper.take(self.pos)
        parts: list[I64] = []
        for a, e in itertools.pairwise(self.bounds.tolist()):
            n = e - a
            if n > k:
                kth = np.partition(lo[a:e], n - k)[n - k]
                parts.append(np.flatnonzero(hi[a:e] >= kth) + a)
            elif n:
                parts.append(np.arange(a, e, dtype=np.int64))
        return np.concatenate(parts)

    def _per_job(self, values: list[Any], dtype: Any) -> Any:
        """One value per pair from one value per job (a number when all jobs agree)."""
        if all(v == values[0] for v in values):
            return np.asarray(values[0], dtype=dtype)[()]
        return np.asarray(values, dtype=dtype).take(self.job)

    def _matching(self) -> I64:
        g, cjs = self.g, self.cjs
        with_x = [cj.min_vram_free_gb is not None for cj in cjs]
        if not any(with_x):
            usable: I64 = g.n_usable.take(self.pos)
            return usable
        xs = [f32_at_least(cj.min_vram_free_gb or 0.0) for cj in cjs]
        x = self._per_job(xs, np.float32)
        # usable GPUs with enough free VRAM: a row's bool slots counted 8 bytes at a time
        ok = g.top_rows.take(self.pos, axis=0) >= (x if np.ndim(x) == 0 else x[:, None])
        counts = np.bitwise_count(ok.view(np.uint64))
        m: I64 = (counts[:, 0] if counts.shape[1] == 1 else counts.sum(axis=1)).astype(np.int64)
        if not all(with_x):
            m = np.where(np.take(with_x, self.job), m, g.n_usable.take(self.pos))
        return m

    def _weights(self, name: str, at: I64 | None = None) -> Any:
        """Each pair's job's weight of term ``name`` (0 when it does not weight it), for the
        pairs ``at`` (default all); a number when every job agrees."""
        w = self._per_job([dict(cj.weights).get(name, 0.0) for cj in self.cjs], np.float64)
        return w if np.ndim(w) == 0 or at is None else w.take(at)

    def _combine(self) -> F64:
        """:func:`nodeselect._scorers.combine` per pair (a term a job does not weight adds
        ``0 * s = 0``, which changes no sum). The leading :meth:`_static` terms are summed per
        node once per batch."""
        if self.static:
            score = self.g.batch.partial(self.static).take(self.idx)
        else:
            score = np.zeros(len(self.idx))
        for name in self.wanted[len(self.static) :]:
            self.full[name] = self.term(name)
            score = score + self._weights(name) * self.full[name]
        out: F64 = score / self._per_job([cj.weight_total for cj in self.cjs], np.float64)
        return out

    def term(self, name: str, at: I64 | None = None) -> F64:
        """The raw values of term ``name`` for the pairs ``at`` (default all)."""
        if name in self.full:
            return self.full[name] if at is None else self.full[name].take(at)
        b, t = self.g.batch, self.g.batch.t
        idx = self.idx if at is None else self.idx.take(at)
        if name == "reputation":
            return b.pre.reputation.take(idx)
        if name == "freshness":
            return b.pre.freshness.take(idx)
        if name == "images":
            job = self.job if at is None else self.job.take(at)
            images = np.ones(len(idx))
            for j, cj in enumerate(self.cjs):
                if cj.preferred:
                    sel = np.flatnonzero(job == j)
                    images[sel] = _images(cj, t, idx.take(sel))
            return images
        if name == "fit":
            return self._fit(np.arange(len(self.idx)) if at is None else at)
        if self.matching is None:
            cpu_idle: F64 = b.pre.cpu_idle.take(idx)
            return cpu_idle
        return self._idle(np.arange(len(self.idx)) if at is None else at)

    def _fit(self, at: I64) -> F64:
        g = self.g
        if self.matching is None:
            return 1.0 / (1.0 + g.batch.t.gpu_count.take(self.idx.take(at)).astype(np.float64))
        m = self.matching.take(at).astype(np.float64)
        c = self._per_job([float(cj.count) for cj in self.cjs], np.float64)
        c = c if np.ndim(c) == 0 else c.take(at)
        pack = [cj.job.preferences.strategy == "pack" for cj in self.cjs]
        if all(pack) or not any(pack):
            return gpu_fit(m, c, pack=pack[0], max_gpus=g.batch.max_gpus)
        out = np.empty(len(m))
        is_pack = np.take(pack, self.job.take(at))
        for want in (True, False):
            sel = is_pack == want
            cs = c if np.ndim(c) == 0 else c[sel]
            out[sel] = gpu_fit(m[sel], cs, pack=want, max_gpus=g.batch.max_gpus)
        return out

    def _idle(self, at: I64) -> F64:
        g, b = self.g, self.g.batch
        assert self.matching is not None
        pos, m = self.pos.take(at), self.matching.take(at)
        out: F64 = g.idle.take(pos * g.top_rows.shape[1] + (m - 1))  # feasible: m >= 1
        if g.inexact is not None:  # the few nodes whose sums depend on the order: GPU by GPU
            redo = np.flatnonzero(g.inexact.take(pos))
            if len(redo):
                pairs = at.take(redo)
                load = self._load_by_gpu(pairs)
                out[redo] = idle_of(b.pre.decay.take(self.idx.take(pairs)), load)
        return out

    def _load_by_gpu(self, pairs: I64) -> F64:
        """The mean load of each pair's passing GPUs, GPU by GPU as the engine computes it."""
        g = self.g
        p = self.pos.take(pairs)
        lens = g.lens.take(p)
        offsets = _offsets(lens)
        at = np.arange(int(offsets[-1]), dtype=np.int64) + np.repeat(
            g.offsets.take(p) - offsets[:-1], lens
        )
        passes = g.usable.take(at)
        with_x = [cj.min_vram_free_gb is not None for cj in self.cjs]
        if any(with_x):
            xs = [f32_at_least(cj.min_vram_free_gb or 0.0) for cj in self.cjs]
            jobs = self.job.take(pairs)
            x = np.repeat(np.asarray(xs, dtype=np.float32).take(jobs), lens)
            limit = np.repeat(np.take(with_x, jobs), lens)
            passes &= ~limit | (g.free.take(at) >= x)
        return gpu_load_mean(g.batch.t.gpu_load[g.rows.take(at)], passes, lens, offsets[:-1])

    def tops(self) -> list[tuple[RankedNode, ...]]:
        """Each job's best ``k`` nodes, in :func:`nodeselect._engine.top_positions`' order."""
        b, k = self.g.batch, self.g.batch.k
        cands: list[I64] = []
        for a, e in itertools.pairwise(self.bounds.tolist()):
            n = e - a
            if n > k:
                seg = self.score[a:e]
                kth = np.partition(seg, n - k)[n - k]
                cands.append(np.flatnonzero(seg >= kth) + a)
            elif n:
                cands.append(np.arange(a, e, dtype=np.int64))
        cand = np.concatenate(cands)
        rows = self.idx.take(cand)
        uu = b.t.uuid[rows]
        order = np.lexsort((uu, b.keys.take(rows), -self.score.take(cand), self.job.take(cand)))
        cand = cand[order]
        job = self.job.take(cand)
        first = np.searchsorted(job, job, side="left")
        chosen = cand[np.arange(len(cand)) - first < k]
        gpus = self._gpus(chosen)
        rows = self.idx.take(chosen)
        scores = self.score.take(chosen).tolist()
        ties = b.keys.take(rows).tolist()
        total = self._per_job([cj.weight_total for cj in self.cjs], np.float64)
        total = total if np.ndim(total) == 0 else total.take(chosen)
        contributions = {
            name: (self._weights(name, chosen) * self.term(name, chosen) / total).tolist()
            for name in self.wanted
        }
        out: list[tuple[RankedNode, ...]] = [()] * len(self.cjs)
        cuts = np.searchsorted(self.job.take(chosen), np.arange(len(self.cjs) + 1)).tolist()
        for j, cj in enumerate(self.cjs):
            a, e = cuts[j], cuts[j + 1]
            if a < e:
                out[j] = ranked_nodes(
                    cj,
                    b.t,
                    rows[a:e],
                    scores=scores[a:e],
                    contributions={n: c[a:e] for n, c in contributions.items()},
                    gpus=gpus[a:e],
                    ties=ties[a:e],
                )
        return out

    def _gpus(self, chosen: I64) -> list[tuple[int, ...]]:
        """The GPUs each chosen pair's job would use, as
        :func:`nodeselect._engine._gpu_choices` picks them: passing ones, pack by least free
        VRAM, spread by most, unknown free last, ties by GPU index."""
        g = self.g
        if self.matching is None:
            return [() for _ in range(len(chosen))]
        pos, m = self.pos.take(chosen), self.matching.take(chosen)
        jobs = self.job.take(chosen)
        count = np.array([cj.count for cj in self.cjs], dtype=np.int64).take(jobs)
        pack = np.array(
            [cj.job.preferences.strategy == "pack" for cj in self.cjs], dtype=np.bool_
        ).take(jobs)
        start = np.where(pack, np.maximum(g.n_known.take(pos) - m, 0), 0)
        asc = np.argsort(g.up.take(pos, axis=0), axis=1, kind="stable")
        order = np.where(pack[:, None], asc, g.desc.take(pos, axis=0))
        width = int(count.max()) if len(count) else 0
        cols = np.minimum(start[:, None] + np.arange(width), order.shape[1] - 1)
        picked = np.take_along_axis(order, cols, axis=1).tolist()
        return [tuple(p[:c]) for p, c in zip(picked, count.tolist(), strict=True)]
