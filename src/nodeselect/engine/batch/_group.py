"""A group of a batch's jobs that share categorical constraints, a GPU model set and the other
per-GPU limits but free VRAM (``min_vram_total_gb``, ``max_load``): their candidate rows,
columns gathered once, GPUs in a dense sorted layout, feasibility per job, score bounds, and
the ranking of every job of the group (:func:`nodeselect.rank_many`)."""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator
from typing import Any, Final

import attrs
import numpy as np
import numpy.typing as npt

from nodeselect.engine._constraints import (
    CompiledJob,
    _gpu_limits,
    _offsets,
    f32_at_least,
    segment_counts,
)
from nodeselect.engine._prefilter import _block, _categorical, generic_pass, node_tests
from nodeselect.engine._rank import Ranking, ranking_of
from nodeselect.engine.batch._columns import BatchColumns
from nodeselect.engine.batch._pairs import PairScores
from nodeselect.engine.batch._top import TopRows
from nodeselect.engine.scorers import idle_of
from nodeselect.table import TELEMETRY_FRESH_S, csr_take, gpu_model_key, repeat

__all__ = ["CHUNK_PAIRS", "THREAD_CHUNK_PAIRS", "JobGroup", "grouped"]

B = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

#: Feasible (job, node) pairs scored together. Each chunk costs ~900 NumPy calls of Python (and
#: GIL) time whatever its size; 2**18 pairs (2 MB float64 temporaries, in L3) measured 12-30 %
#: less CPU than 2**15 (L2-sized) on 1,000 jobs x 1M nodes, one thread, and leaves the threads
#: of ``workers=N`` less GIL-held time to contend for.
CHUNK_PAIRS: Final = 1 << 18
#: The same, when threads rank a group's jobs at once (``rank_many(..., workers=N)``): fewer,
#: larger chunks hold the GIL for fewer NumPy calls. Medians of 9 interleaved runs, 1,000 jobs
#: x 1M nodes: 2 threads 0.92 s at 2**18, 0.77 s at 2**20, 0.73 s at 2**21 (one thread 1.12-1.23
#: s at each size, within its noise); peak RSS alike (the groups' layouts dominate it).
THREAD_CHUNK_PAIRS: Final = 1 << 21
#: Sort keys: a usable GPU whose free VRAM is unknown sorts after every known one.
_UNKNOWN: Final = 2.0 * float(np.finfo(np.float32).max)
#: Weighted score terms, as :meth:`JobGroup.score_bounds` takes them.
_Weights = tuple[tuple[str, float], ...]
#: Candidates per block of the layout's ``idle`` cells (x 8 slots x 8 bytes: 1 MB temporaries).
_BLOCK: Final = 1 << 14


def _running_sums(x: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``np.cumsum(x, axis=0)`` in place, row after row (the same additions in the same order;
    numpy's accumulate along a short axis loops per column)."""
    for j in range(1, len(x)):
        np.add(x[j - 1], x[j], out=x[j])
    return x


class JobGroup:
    """The candidate rows of jobs sharing categorical constraints, a GPU model set and the
    per-GPU limits but free VRAM, with their columns gathered and (GPU jobs) their GPUs in a
    dense, sorted layout: ``usable`` GPUs pass every limit the jobs share."""

    def __init__(self, batch: BatchColumns, cjs: list[CompiledJob], *, layout: bool = True) -> None:
        """The group's candidates; its GPU layout too unless ``layout`` is false (then built
        by :meth:`layout` or the first :meth:`rank_all`; :attr:`cells` says what it costs)."""
        self.batch = batch
        self.cells = 0
        self._laid_out = False
        self._lock = threading.Lock()  # the layout is built once when threads share the group
        self._bounds_lock = threading.Lock()
        self._cols: dict[int, npt.NDArray[Any]] = {}
        self._score_bounds: dict[Hashable, tuple[F64, F64]] = {}
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
        self._first = first
        starts = t.gpu_offsets[self.cand].astype(np.int64)
        self.lens: I64 = t.gpu_offsets[self.cand + 1].astype(np.int64) - starts
        self.cells = len(self.cand) * self._slots()
        if layout:
            self.layout()

    def _gather(self) -> None:
        """The candidates' GPUs (:func:`nodeselect.table.csr_take`: ``offsets``, ``rows``), which
        are usable, and how many per candidate: with the layout (in the pool, for ``workers=N``;
        a group too small to batch never needs them)."""
        t, first = self.batch.t, self._first
        lens, self.offsets, self.rows = csr_take(t.gpu_offsets, self.cand)
        self.avail: B | None = None if t.gpu_reserved is None else ~t.gpu_reserved[self.rows]
        # every per-GPU limit but free VRAM (the group's jobs share them: _group_key), by
        # gpu_subset's own tests; free VRAM is each job's threshold on the sorted layout
        load = np.zeros(0, dtype=np.float32)
        if first.max_load is not None:  # a stale node's GPU load is unknown (NaN): it fails
            fresh = repeat(
                (first.now_s - t.telemetry_epoch_s[self.cand]) <= TELEMETRY_FRESH_S, lens
            )
            load = np.where(fresh, t.gpu_load[self.rows], np.float32(np.nan))
        shared = attrs.evolve(first, min_vram_free_gb=None)
        limits = _gpu_limits(shared, t, self.rows, np.zeros(0, dtype=np.float32), load)
        tests = [m for m in (self.avail, *limits.values()) if m is not None]
        usable = tests[0].copy() if tests else np.ones(len(self.rows), dtype=np.bool_)
        for test in tests[1:]:
            usable &= test
        self.usable: B = usable
        self.n_usable = self._per_node(usable)

    def _slots(self) -> int:
        return -(-int(self.lens.max()) // 8) * 8 if len(self.cand) else 0

    @property
    def laid_out(self) -> bool:
        """Whether the layout is built (ranking the group's jobs would not wait for it)."""
        return self._laid_out

    def layout(self) -> None:
        """Build the GPU layout (:meth:`_sort_gpus`) once (nothing for a CPU group); a thread
        calling it while another builds it waits for that build (``workers=N``)."""
        if self._laid_out:
            return
        with self._lock:
            if self.gpu and not self._laid_out:
                self._gather()
                self._sort_gpus()
            self._laid_out = True

    def _per_node(self, per_gpu: B) -> I64:
        return segment_counts(per_gpu, self.offsets)

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
          order pass, at ``[(m - 1) * c + i]`` (from running sums of the known loads,
          clipped to [0, 1], and of how many are known; ``c`` candidates).

        A node's sums of loads are exact, so independent of the order they are added in, when
        each of its nonzero loads is at least 2**-26 and it has at most 16 GPUs: every partial
        sum is then a multiple of 2**-49 below 16 (53 bits). The other nodes (``inexact``)
        have their ``idle`` term computed GPU by GPU, as the engine does.
        """
        t = self.batch.t
        c, g = len(self.cand), len(self.rows)
        slots = self._slots()
        free = self.batch.free()[self.rows].astype(np.float64)
        self.free = free.astype(np.float32)
        known = self.usable & ~np.isnan(free)
        self.n_known = self._per_node(known)
        # each GPU's cell in the (c, slots) layouts, by GPU index, then in sorted order
        cell = np.arange(g, dtype=np.int64) + repeat(
            np.arange(c, dtype=np.int64) * slots - self.offsets[:-1], self.lens
        )
        nan_free = np.where(np.isnan(free), 0.0, free)
        unknown = np.where(self.usable, _UNKNOWN, np.inf)
        down = np.full(c * slots, np.inf)
        down[cell] = np.where(known, -nan_free, unknown)
        desc = np.argsort(down.reshape(c, slots), axis=1, kind="stable")
        self.desc = desc.astype(np.int8 if slots <= 127 else np.int16)
        del desc
        up = down  # (its memory again: a fresh c x slots array is faulted in page by page)
        up.fill(np.inf)
        up[cell] = np.where(known, nan_free, unknown)
        self.up = up.reshape(c, slots)
        del down
        # each slot's rank in its row's sorted order (the inverse of ``desc``), one sorted
        # position at a time, in the small dtype (no c x slots int64 index temporaries)
        rank = np.empty(c * slots, dtype=self.desc.dtype)
        first = np.arange(c, dtype=np.int64) * slots
        at = np.empty(c, dtype=np.int64)
        for j in range(slots):
            np.add(first, self.desc[:, j], out=at)
            rank[at] = j
        # each GPU's cell in the transposed (slots, c) layouts: rank * c + candidate
        node = cell // slots
        cell = rank.take(cell).astype(np.int64)
        cell *= c
        cell += node

        def by_free(v: npt.NDArray[Any], fill: float, dtype: Any) -> Any:
            out = np.full(slots * c, fill, dtype=dtype)
            out[cell] = v
            return out.reshape(slots, c)

        # (slots, c): row ``m - 1`` is every candidate's slot ``m``, so running sums over the
        # slots are ``slots`` vectorized additions (a cumsum along rows of 8 is a loop per row),
        # in the same order, so the same floats
        self.top_free: F32 = by_free(np.where(known, free, -np.inf), -np.inf, np.float32)
        self.top_rows: F32 = np.ascontiguousarray(self.top_free.T)
        raw = t.gpu_load[self.rows].astype(np.float64)
        has = ~np.isnan(raw)
        vals = np.where(has, np.clip(np.where(has, raw, 0.0), 0.0, 1.0), 0.0)
        sums = _running_sums(by_free(vals, 0.0, np.float64))
        # how many of the first m loads are known: small integers, exact in any dtype (their
        # quotients below are float64 divisions of the same values)
        cnt = _running_sums(by_free(has, 0, np.uint8 if slots < 256 else np.int32))
        decay = self.batch.pre.cols["decay"].take(self.cand)
        idle = np.empty((slots, c))  # (slots, c) as the sums: no transposed copy
        # a node's cells past its GPUs repeat its last one (nothing more is summed), so the
        # least / most over every slot is over its GPUs
        self.idle_lo: F64 = np.full(c, np.inf)
        self.idle_hi: F64 = np.full(c, -np.inf)
        for a in range(0, c if slots else 0, _BLOCK):  # blocks: the temporaries stay in cache
            b = min(c, a + _BLOCK)
            s, n = sums[:, a:b], cnt[:, a:b]
            load = np.where(n > 0, s / np.maximum(n, 1.0), np.nan)  # no 0/0: max(cnt, 1)
            cells = idle_of(decay[None, a:b], load)
            gpus = self.lens[None, a:b] > 0
            np.min(cells, axis=0, out=self.idle_lo[a:b], where=gpus, initial=np.inf)
            np.max(cells, axis=0, out=self.idle_hi[a:b], where=gpus, initial=-np.inf)
            idle[:, a:b] = cells
        del sums, cnt
        if not slots:  # no GPU, no ``idle`` cell
            self.idle_lo = self.idle_hi = np.zeros(c)
        self.idle: F64 = idle.ravel()  # candidate i, first m GPUs: [(m - 1) * c + i]
        tiny = self.usable & (vals > 0) & (vals < 2.0**-26)
        inexact = (self._per_node(tiny) > 0) | (self.lens > 16)
        self.inexact: B | None = inexact if inexact.any() else None

    def _column(self, col: npt.NDArray[Any]) -> Any:
        hit = self._cols.get(id(col))
        if hit is None:
            hit = self._cols[id(col)] = col[self.cand]
        return hit

    def _feasible(self, cj: CompiledJob, bufs: _Buffers) -> I64:
        """Positions in ``cand`` of the job's feasible rows (ascending): every test on the
        whole (compact) group columns, in the caller's reused ``bufs``, then one
        ``flatnonzero``. A registered unit without a fast test is applied by its ``check`` on
        the candidates."""
        tests: list[tuple[str, Any, Any]] = []
        if self.gpu:
            if cj.count > len(self.top_free):
                return np.zeros(0, dtype=np.int64)
            if cj.min_vram_free_gb is None:
                tests.append(("ge", self.n_usable, cj.count))
            else:
                x = f32_at_least(cj.min_vram_free_gb)
                tests.append(("ge", self.top_free[cj.count - 1], x))
        fast, generic = node_tests(cj, self.batch.t)
        tests += [(kind, self._column(col), arg) for kind, col, arg in fast]
        n = len(self.cand)
        # units without a fast test: their check on the candidates
        more = generic_pass(cj, self.batch.t, self.cand, generic)
        if not tests:
            return np.arange(n, dtype=np.int64) if more is None else np.flatnonzero(more)
        mask, tmp = bufs.masks(n)
        scratch = bufs.scratch(n) if any(kind == "age" for kind, _, _ in tests) else bufs.none
        kind, col, arg = tests[0]
        _block(kind, col, arg, mask, scratch)
        for kind, col, arg in tests[1:]:
            mask &= _block(kind, col, arg, tmp, scratch)
        if more is not None:
            mask &= more
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
        weights and strategy: the :meth:`BatchColumns.partial` of ``static``, then ``rest``
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
        with self._bounds_lock:  # computed once when threads rank the group's jobs at once
            hit = self._score_bounds.get(key)
            if hit is None:
                hit = self._score_bounds[key] = self._bounds(*key)
            return hit

    def _bounds(
        self, static: _Weights, rest: _Weights, total: float, pack: bool
    ) -> tuple[F64, F64]:
        """:meth:`score_bounds` computed (its arguments, as its cache key holds them)."""
        c = len(self.cand)
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
                t_lo, t_hi = self.idle_lo, self.idle_hi
            lo, hi = lo + w * t_lo, hi + w * t_hi
        lo, hi = lo / total, hi / total
        if self.inexact is not None:
            lo = np.where(self.inexact, -np.inf, lo)
            hi = np.where(self.inexact, np.inf, hi)
        return lo, hi

    def rank_all(self, cjs: list[CompiledJob], *, threads: bool = False) -> list[Ranking]:
        """Every job's ranking (each equal to :func:`nodeselect.engine._rank.rank`'s).

        Pairs are scored in chunks of consecutive jobs of about :data:`CHUNK_PAIRS` pairs
        (:data:`THREAD_CHUNK_PAIRS` when ``threads``: other threads rank this group's or other
        groups' jobs at once; a job's ranking is the same in any chunk), so that the
        temporaries of each step stay in cache and the fixed cost per chunk is spread over many
        pairs. A job's feasible positions are computed when its chunk is filled, not all at
        once: a group's jobs' positions together can take hundreds of MB
        (200 jobs x 100k pairs x 8 bytes), which the allocator hands back to the kernel after
        each call and faults in again on the next (measured: 0.2-0.5 s of system time a call
        at 1,000 jobs x 1M nodes).
        """
        b = self.batch
        out: list[Ranking] = []
        for start, idx, bounds, pairs in self._chunks(cjs, threads=threads):
            mine = cjs[start : start + len(bounds) - 1]
            tops = pairs.tops() if pairs is not None else [()] * len(mine)
            out += [
                ranking_of(cj, b.t, idx[bounds[j] : bounds[j + 1]], tops[j], b.seed)
                for j, cj in enumerate(mine)
            ]
        return out

    def best_rows(self, cjs: list[CompiledJob], members: I64) -> tuple[I64, list[TopRows]]:
        """:meth:`rank_all` as each job's feasible count and its best rows, as arrays
        (``members``: each job's index in the batch)."""
        feasible: list[I64] = []
        pieces: list[TopRows] = []
        for start, _idx, bounds, pairs in self._chunks(cjs, threads=False):
            feasible.append(np.diff(bounds))
            if pairs is not None:
                pieces.append(pairs.best_rows(members[start : start + len(bounds) - 1]))
        return (np.concatenate(feasible) if feasible else np.zeros(0, dtype=np.int64)), pieces

    def _chunks(
        self, cjs: list[CompiledJob], *, threads: bool
    ) -> Iterator[tuple[int, I64, I64, PairScores | None]]:
        """Per chunk of consecutive jobs (:meth:`rank_all`): its first job's index in ``cjs``,
        its feasible rows job after job (``bounds``: CSR offsets per job), and its pairs scored
        (``None`` when there are none to rank)."""
        self.layout()
        b = self.batch
        chunk_pairs = THREAD_CHUNK_PAIRS if threads else CHUNK_PAIRS
        bufs = _Buffers()  # this call's own (threads may rank the group's jobs at once)
        poss: dict[int, I64] = {}  # feasible positions of the jobs of the chunk being filled

        def feasible(i: int) -> I64:
            hit = poss.get(i)
            if hit is None:
                hit = poss[i] = self._feasible(cjs[i], bufs)
            return hit

        start = 0
        while start < len(cjs):
            stop, total = start, 0
            while stop < len(cjs) and (stop == start or total + len(feasible(stop)) <= chunk_pairs):
                total += len(feasible(stop))
                stop += 1
            mine = cjs[start:stop]
            parts = [poss.pop(i) for i in range(start, stop)]
            bounds = _offsets(np.array([len(p) for p in parts], dtype=np.int64))
            pos = np.concatenate(parts)
            del parts
            idx = self.cand.take(pos)
            pairs = None
            if b.k and len(pos):
                job = repeat(np.arange(len(mine), dtype=np.int64), np.diff(bounds))
                pairs = PairScores(self, mine, pos=pos, idx=idx, job=job, bounds=bounds)
            yield start, idx, bounds, pairs
            start = stop


class _Buffers:
    """The feasibility masks and float scratch of one :meth:`JobGroup.rank_all` call, allocated
    on first use and reused for each of its jobs (never shared between threads)."""

    def __init__(self) -> None:
        self._masks: tuple[B, B] | None = None
        self._scratch: F64 | None = None
        self.none: F64 = np.zeros(0)

    def masks(self, n: int) -> tuple[B, B]:
        if self._masks is None:
            self._masks = (np.empty(n, dtype=np.bool_), np.empty(n, dtype=np.bool_))
        return self._masks

    def scratch(self, n: int) -> F64:
        if self._scratch is None:
            self._scratch = np.empty(n)
        return self._scratch


def grouped(
    alone: list[int], candidates: list[list[int]], built: list[JobGroup | None]
) -> list[tuple[list[int], JobGroup]]:
    """The groups ranked together (members, group), from each candidate group's members and
    what was built of it (``None``: its jobs are ranked one by one, and join ``alone``, in
    place)."""
    alone += [i for m, g in zip(candidates, built, strict=True) if g is None for i in m]
    return [(m, g) for m, g in zip(candidates, built, strict=True) if g is not None]
