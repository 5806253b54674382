"""The feasible (job, node) pairs of a chunk of a group's jobs: pruning by score bounds, the
score terms, the combined score, each job's top ``k`` and GPU choices, computed for all the
chunk's jobs together (:func:`nodeselect.rank_many`)."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from nodeselect.engine._constraints import CompiledJob, _offsets, f32_at_least
from nodeselect.engine._rank import RankedNode, ranked_nodes
from nodeselect.engine.batch._top import TopRows
from nodeselect.engine.scorers import gpu_fit, gpu_load_mean, idle_of, score_units
from nodeselect.engine.scorers import images as image_term
from nodeselect.table import csr_take, reaching, repeat

if TYPE_CHECKING:
    from nodeselect.engine.batch._group import JobGroup

__all__ = ["PairScores"]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


class PairScores:
    """The feasible (job, node) pairs of a group: job ``job[i]`` (an index into ``cjs``) and
    candidate ``pos[i]`` (row ``idx[i]``), job by job (``bounds``: CSR offsets per job)."""

    def __init__(
        self, g: JobGroup, cjs: list[CompiledJob], *, pos: I64, idx: I64, job: I64, bounds: I64
    ) -> None:
        self.g, self.cjs, self.pos, self.idx, self.job, self.bounds = g, cjs, pos, idx, job, bounds
        self._job_dicts: list[dict[str, float]] | None = None
        self._weights_by_term: dict[str, list[float]] = {}
        self.wanted = [
            u.name for u in score_units() if any(u.name == m for cj in cjs for m, _ in cj.weights)
        ]
        self.pack = [cj.job.preferences.strategy == "pack" for cj in cjs]
        # per job: does it limit free VRAM, and the float32 threshold (0 when it does not)
        self.with_x = [cj.min_vram_free_gb is not None for cj in cjs]
        self.xs = [f32_at_least(cj.min_vram_free_gb or 0.0) for cj in cjs]
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
        every job (their running sum is per node: :meth:`BatchColumns.partial`)."""
        static: list[tuple[str, float]] = []
        node_terms = self.g.batch.node_terms(self.cjs)
        for name in self.wanted:
            ws = self._job_weights(name)
            if name not in node_terms or any(w != ws[0] for w in ws):
                break
            static.append((name, ws[0]))
        return tuple(static)

    def _prune(self) -> I64 | None:
        """The pairs that can be in their job's top ``k`` (``None``: keep all), when the
        jobs share their weights and strategy: each node's score is bounded from the per-node
        partial sum, ``fit`` in its range and ``idle`` between the least and most of the
        node's cells (bounds of the float result: each step of the sum is monotone); a pair
        is kept when its upper bound reaches its job's ``k``-th best lower bound."""
        cjs, k = self.cjs, self.g.batch.k
        first = cjs[0]
        same = all(cj.weights == first.weights for cj in cjs) and len(set(self.pack)) == 1
        rest = self.wanted[len(self.static) :]
        if not (self.g.gpu and same and set(rest) <= {"fit", "idle"} and len(self.idx) > k):
            return None
        weights = dict(first.weights)
        lower, upper = self.g.score_bounds(
            self.static,
            tuple((n, weights[n]) for n in rest),
            first.weight_total,
            pack=self.pack[0],
        )
        return reaching(lower, upper, self.pos, self.bounds, k)

    def _per_job(self, values: list[Any], dtype: Any) -> Any:
        """One value per pair from one value per job (a number when all jobs agree)."""
        if all(v == values[0] for v in values):
            return np.asarray(values[0], dtype=dtype)[()]
        return np.asarray(values, dtype=dtype).take(self.job)

    def _matching(self) -> I64:
        g = self.g
        if not any(self.with_x):
            usable: I64 = g.n_usable.take(self.pos)
            return usable
        x = self._per_job(self.xs, np.float32)
        # usable GPUs with enough free VRAM: a row's bool slots counted 8 bytes at a time
        ok = g.top_rows.take(self.pos, axis=0) >= (x if np.ndim(x) == 0 else x[:, None])
        counts = np.bitwise_count(ok.view(np.uint64))
        m: I64 = (counts[:, 0] if counts.shape[1] == 1 else counts.sum(axis=1)).astype(np.int64)
        if not all(self.with_x):
            m = np.where(np.take(self.with_x, self.job), m, g.n_usable.take(self.pos))
        return m

    def _weights(self, name: str, at: I64 | None = None) -> Any:
        """Each pair's job's weight of term ``name`` (0 when it does not weight it), for the
        pairs ``at`` (default all); a number when every job agrees."""
        w = self._per_job(self._job_weights(name), np.float64)
        return w if np.ndim(w) == 0 or at is None else w.take(at)

    def _job_weights(self, name: str) -> list[float]:
        """Each job's weight of term ``name`` (0 when it does not weight it; built once per
        chunk: Python work, which threads of ``workers=N`` take turns at)."""
        hit = self._weights_by_term.get(name)
        if hit is None:
            if self._job_dicts is None:
                self._job_dicts = [dict(cj.weights) for cj in self.cjs]
            hit = self._weights_by_term[name] = [w.get(name, 0.0) for w in self._job_dicts]
        return hit

    def _combine(self) -> F64:
        """:func:`nodeselect.engine._scorers.combine` per pair (a term a job does not weight adds
        ``0 * s = 0``, which changes no sum). The leading :meth:`_static` terms are summed per
        node once per batch."""
        if self.static:
            score = self.g.batch.partial(self.static).take(self.idx)
        else:
            score = np.zeros(len(self.idx))
        for name in self.wanted[len(self.static) :]:
            self.full[name] = self.term(name)
            score = score + self._weights(name) * self.full[name]
        self.total = self._per_job([cj.weight_total for cj in self.cjs], np.float64)
        out: F64 = score / self.total
        return out

    def term(self, name: str, at: I64 | None = None) -> F64:
        """The raw values of term ``name`` for the pairs ``at`` (default all)."""
        if name in self.full:
            return self.full[name] if at is None else self.full[name].take(at)
        b, t = self.g.batch, self.g.batch.t
        idx = self.idx if at is None else self.idx.take(at)
        if name == "reputation":
            return b.pre.cols["reputation"].take(idx)
        if name == "freshness":
            return b.pre.cols["freshness"].take(idx)
        if name == "images":
            job = self.job if at is None else self.job.take(at)
            images = np.ones(len(idx))
            for j, cj in enumerate(self.cjs):
                if cj.preferred:
                    sel = np.flatnonzero(job == j)
                    images[sel] = image_term(cj, t, idx.take(sel))
            return images
        if name == "fit":
            return self._fit(np.arange(len(self.idx)) if at is None else at)
        if self.matching is None:
            cpu_idle: F64 = b.pre.cols["cpu_idle"].take(idx)
            return cpu_idle
        return self._idle(np.arange(len(self.idx)) if at is None else at)

    def _fit(self, at: I64) -> F64:
        g = self.g
        if self.matching is None:
            return 1.0 / (1.0 + g.batch.t.gpu_count.take(self.idx.take(at)).astype(np.float64))
        m = self.matching.take(at).astype(np.float64)
        c = self._per_job([float(cj.count) for cj in self.cjs], np.float64)
        c = c if np.ndim(c) == 0 else c.take(at)
        if len(set(self.pack)) == 1:
            return gpu_fit(m, c, pack=self.pack[0], max_gpus=g.batch.max_gpus)
        out = np.empty(len(m))
        is_pack = np.take(self.pack, self.job.take(at))
        for want in (True, False):
            sel = is_pack == want
            cs = c if np.ndim(c) == 0 else c[sel]
            out[sel] = gpu_fit(m[sel], cs, pack=want, max_gpus=g.batch.max_gpus)
        return out

    def _idle(self, at: I64) -> F64:
        g, b = self.g, self.g.batch
        assert self.matching is not None
        pos, m = self.pos.take(at), self.matching.take(at)
        out: F64 = g.idle.take((m - 1) * len(g.cand) + pos)  # feasible: m >= 1
        if g.inexact is not None:  # the few nodes whose sums depend on the order: GPU by GPU
            redo = np.flatnonzero(g.inexact.take(pos))
            if len(redo):
                pairs = at.take(redo)
                load = self._load_by_gpu(pairs)
                out[redo] = idle_of(b.pre.cols["decay"].take(self.idx.take(pairs)), load)
        return out

    def _load_by_gpu(self, pairs: I64) -> F64:
        """The mean load of each pair's passing GPUs, GPU by GPU as the engine computes it."""
        g = self.g
        lens, offsets, at = csr_take(g.offsets, self.pos.take(pairs))
        passes = g.usable.take(at)
        if any(self.with_x):
            jobs = self.job.take(pairs)
            x = repeat(np.asarray(self.xs, dtype=np.float32).take(jobs), lens)
            limit = repeat(np.take(self.with_x, jobs), lens)
            passes &= ~limit | (g.free.take(at) >= x)
        return gpu_load_mean(g.batch.t.gpu_load[g.rows.take(at)], passes, lens, offsets[:-1])

    def _chosen(self) -> I64:
        """The pairs in their job's best ``k``, job after job, each job's best first, in
        :func:`nodeselect.engine._rank.top_positions`' order."""
        b, k = self.g.batch, self.g.batch.k
        cand = reaching(self.score, self.score, None, self.bounds, k)
        rows = self.idx.take(cand)
        uu = b.t.uuid[rows]
        order = np.lexsort((uu, b.keys.take(rows), -self.score.take(cand), self.job.take(cand)))
        cand = cand[order]
        job = self.job.take(cand)
        first = np.searchsorted(job, job, side="left")
        chosen: I64 = cand[np.arange(len(cand)) - first < k]
        return chosen

    def _contributions(self, chosen: I64) -> dict[str, F64]:
        """Per weighted term, each chosen pair's contribution ``w * s / sum(w)``."""
        total = self.total if np.ndim(self.total) == 0 else self.total.take(chosen)
        return {
            name: self._weights(name, chosen) * self.term(name, chosen) / total
            for name in self.wanted
        }

    def tops(self) -> list[tuple[RankedNode, ...]]:
        """Each job's best ``k`` nodes, in :func:`nodeselect.engine._rank.top_positions`' order."""
        b = self.g.batch
        chosen = self._chosen()
        lens, flat = self._gpu_columns(chosen)
        cuts, listed = _offsets(lens).tolist(), flat.tolist()
        gpus = [tuple(listed[a:e]) for a, e in itertools.pairwise(cuts)]
        rows = self.idx.take(chosen)
        scores = self.score.take(chosen).tolist()
        ties = b.keys.take(rows).tolist()
        contributions = {n: c.tolist() for n, c in self._contributions(chosen).items()}
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

    def best_rows(self, members: I64) -> TopRows:
        """:meth:`tops` as arrays (``members``: each of ``cjs``' index in the batch)."""
        b = self.g.batch
        chosen = self._chosen()
        job = self.job.take(chosen)
        rows = self.idx.take(chosen)
        contributions = self._contributions(chosen)
        names = [tuple(n for n, _ in cj.weights) for cj in self.cjs]
        n_terms = np.array([len(n) for n in names], dtype=np.int64)
        n_values = n_terms.take(job)
        at = _offsets(n_values)
        values = np.empty(int(at[-1]), dtype=np.float64)
        for terms in set(names):  # the jobs weighting these terms, in this order
            if not terms:
                continue
            mine = np.flatnonzero(np.array([n == terms for n in names], dtype=np.bool_).take(job))
            put = at[mine][:, None] + np.arange(len(terms))
            values[put] = np.stack([contributions[n].take(mine) for n in terms], axis=1)
        lens, flat = self._gpu_columns(chosen)
        return TopRows(
            job=members.take(job),
            rows=rows,
            score=self.score.take(chosen),
            tie=b.keys.take(rows),
            n_values=n_values,
            values=values,
            gpu_counts=lens,
            gpus=flat,
        )

    def _gpu_columns(self, chosen: I64) -> tuple[I64, I64]:
        """The GPUs each chosen pair's job would use, as
        :func:`nodeselect.engine._rank._gpu_choices` picks them: passing ones, pack by least free
        VRAM, spread by most, unknown free last, ties by GPU index. Per pair their number, and
        them, pair after pair."""
        g = self.g
        if self.matching is None:
            return np.zeros(len(chosen), dtype=np.int64), np.zeros(0, dtype=np.int64)
        pos, m = self.pos.take(chosen), self.matching.take(chosen)
        jobs = self.job.take(chosen)
        count = np.array([cj.count for cj in self.cjs], dtype=np.int64).take(jobs)
        pack = np.array(self.pack, dtype=np.bool_).take(jobs)
        start = np.where(pack, np.maximum(g.n_known.take(pos) - m, 0), 0)
        asc = np.argsort(g.up.take(pos, axis=0), axis=1, kind="stable")
        order = np.where(pack[:, None], asc, g.desc.take(pos, axis=0))
        width = int(count.max()) if len(count) else 0
        cols = np.minimum(start[:, None] + np.arange(width), order.shape[1] - 1)
        picked = np.take_along_axis(order, cols, axis=1)
        flat: I64 = picked[np.arange(width) < count[:, None]].astype(np.int64, copy=False)
        return count, flat
