"""The jobs of a :func:`nodeselect.rank_many` batch that no group takes (``alone``): each ranked
by the per-job engine, from feasibility candidates shared with the batch's other jobs.

A scheduler's handful of jobs rarely form a group (each has its own GPU limits), but they
usually share their categorical constraints (status, region, ...) and often a GPU model set.
The per-job prefilter (:func:`nodeselect.engine._prefilter.node_pass`) scans every row of the
table for each job; here the rows passing a job's categorical mask and GPU model-key test (the
*base*) are found once per distinct (categorical constraints, model set), with each column a
job tests gathered on them once, and each job applies its other fast tests (the same tests,
:func:`nodeselect.engine._prefilter._gpu_tests` and ``node_tests``, on the same values) to
those rows only. An AND of the same tests in any order is the same set, so each job's
survivors are exactly ``node_pass``'s, and its ranking (:func:`rank_compiled` from them) is
exactly :func:`nodeselect.rank`'s.

A batch with more distinct jobs than the table keeps row sets for
(:data:`nodeselect.table.MAX_ROWS`) would evict its own entries before reusing them, so these
jobs neither read nor keep them (``kept=False``): the same rows, without the bookkeeping. Their
GPU-group counts, kept per set of GPU limits, are still read and kept when the batch has few
such sets.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from nodeselect.engine._constraints import CompiledJob, _static_gpu_key, f32_at_least
from nodeselect.engine._prefilter import (
    _categorical,
    _categorical_key,
    _gathered,
    _gpu_tests,
    _scan,
    _static_tests,
    generic_pass,
    node_tests,
)
from nodeselect.engine._rank import Ranking, rank_compiled
from nodeselect.engine._scorers import NodeScores
from nodeselect.table import MAX_ROWS, NodeTable, uuid_hash, vram_level

__all__ = ["SharedRows", "kept_fits"]

B = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]

#: A base holding more than 1 / _LARGE of the table's rows is not gathered: its jobs take the
#: per-job scan (contiguous whole-column tests beat gathers there; measured at 100k nodes).
_LARGE: Final = 4
#: The kinds of :func:`_gpu_tests`' model-key test (the other GPU tests are ``ge``).
_MODEL_KINDS = frozenset({"any", "lut"})


class _Base:
    """The rows passing one categorical mask and model-key test (``None``: every row), and
    the columns' values on them, gathered on first use."""

    def __init__(self, rows: I64 | None) -> None:
        self.rows = rows
        # column address -> (column, its values on ``rows``); the column is held so that its
        # memory (and so the address) is not reused while the batch runs
        self._vals: dict[tuple[Any, ...], tuple[npt.NDArray[Any], npt.NDArray[Any]]] = {}

    def values(self, col: npt.NDArray[Any]) -> npt.NDArray[Any]:
        if self.rows is None:
            return col
        # a view (a slot of ``gpu_free_top``) is a new object per job: keyed by its memory
        key = (col.__array_interface__["data"][0], col.strides, col.shape, col.dtype.str)
        hit = self._vals.get(key)
        if hit is None:
            hit = self._vals[key] = (col, col.take(self.rows))
        return hit[1]


def kept_fits(cjs: list[CompiledJob], t: NodeTable) -> bool:
    """Whether the row sets and GPU counts the per-job path keeps for ``cjs`` (the rows passing
    each job's GPU, categorical and static tests, those passing its GPU and categorical tests,
    its GPU-group counts) fit in the table's :data:`nodeselect.table.MAX_ROWS`: then a loop
    over ``rank`` repeated on these jobs reads them again, and so must ``rank_many`` (the
    per-job path, with them). Else they evict one another before any is read again (least
    recently used first, jobs in a cycle), and :class:`SharedRows` skips them."""
    if len(cjs) > MAX_ROWS:
        return False
    entries: set[Hashable] = set()
    for cj in cjs:
        static, _other, _generic, (key, _deps), (base_key, _base_deps) = _static_tests(cj, t)
        entries.add(("rows", key))
        if static:
            entries.add(("base", base_key))
        if cj.count:
            entries.add(("gpu", _static_gpu_key(cj)))
    return len(entries) <= MAX_ROWS


class SharedRows:
    """Per batch: the bases of its jobs, and each job's ranking from them."""

    def __init__(self, t: NodeTable, cjs: list[CompiledJob], *, kept: bool = False) -> None:
        """For the jobs ``cjs``. ``kept``: rank each job by the per-job path itself, reading
        and keeping the rows the table keeps per job key (:func:`kept_fits`)."""
        self.t, self.kept = t, kept
        self._bases: dict[Hashable, _Base] = {}
        self._hashes: npt.NDArray[np.uint64] | None = None
        # every free-VRAM threshold's level at once (one NumPy pass instead of one per job)
        xs = sorted(
            {float(f32_at_least(x)) for cj in cjs if (x := cj.min_vram_free_gb) is not None}
        )
        self._levels = dict(zip(xs, vram_level(np.array(xs)).tolist(), strict=True))
        # Without the kept row sets, a job's GPU-group counts are still read from (and kept
        # with) the table per set of GPU limits (gpu_group) when the batch's sets fit beside
        # the score bound: 1,000 distinct jobs over 5 sets of limits ranked 1.2x faster than
        # with each job's GPUs gathered again (gpu_subset); more sets would evict each other.
        limits = {_static_gpu_key(cj) for cj in cjs if cj.count}
        self._gpu_kept = len(limits) < MAX_ROWS

    def _base(self, cj: CompiledJob, model: list[tuple[str, Any, Any]]) -> _Base:
        key = (_categorical_key(cj), cj.model_codes if model else None)
        hit = self._bases.get(key)
        if hit is None:
            t = self.t
            cat = _categorical(cj, t)
            mask: B | None = None
            for kind, col, arg in model:
                mask = _gathered(kind, col, arg)
                if cat is not None:
                    mask &= cat
            if mask is None and cat is not None:
                mask = cat
            rows = None
            if mask is not None and np.count_nonzero(mask) * _LARGE <= len(t):
                rows = np.flatnonzero(mask).astype(np.int64, copy=False)
            hit = self._bases[key] = _Base(rows)
        return hit

    def survivors(self, cj: CompiledJob) -> I64:
        """:func:`nodeselect.engine._prefilter.node_pass`'s rows for ``cj`` (ascending), from
        its base."""
        t = self.t
        gpu = _gpu_tests(cj, t, self._levels)
        model = [x for x in gpu if x[0] in _MODEL_KINDS]
        fast, generic = node_tests(cj, t)
        tests = [x for x in gpu if x[0] not in _MODEL_KINDS] + fast
        base = self._base(cj, model)
        rows: I64
        if base.rows is None:  # a large base: the per-job scan, without keeping its rows
            rows = _scan(cj, t, [], fast, collect=False)[0]
        elif not tests:
            rows = base.rows
        else:
            # the first test (the GPU count or free-VRAM level: the most selective) on the
            # base's values, the others on the values of the rows left
            kind, col, arg = tests[0]
            pos = np.flatnonzero(_gathered(kind, base.values(col), arg))
            rows = base.rows.take(pos)
            for kind, col, arg in tests[1:]:
                if not len(rows):
                    break
                rows = rows[_gathered(kind, col.take(rows), arg)]
            rows = rows.astype(np.int64, copy=False)
        more = generic_pass(cj, t, rows, generic)
        return rows if more is None else rows[more]

    def rank(
        self,
        cj: CompiledJob,
        *,
        k: int,
        seed: int,
        max_gpus: int,
        pre: NodeScores | None = None,
        keys: npt.NDArray[np.uint64] | None = None,
    ) -> Ranking:
        """``cj``'s ranking, equal to :func:`nodeselect.rank`'s (``pre``, ``keys``: the
        batch's per-node score inputs and tie keys, when its groups built them; else the tie
        keys of the few rows compared come from the table's uuid hashes, built once per
        table)."""
        t = self.t
        if self.kept:
            return rank_compiled(cj, t, k=k, seed=seed, max_gpus=max_gpus, pre=pre, keys=keys)
        if keys is None and self._hashes is None:
            self._hashes = uuid_hash(t)
        return rank_compiled(
            cj,
            t,
            k=k,
            seed=seed,
            max_gpus=max_gpus,
            pre=pre,
            keys=keys,
            hashes=self._hashes if keys is None else None,
            survivors=self.survivors(cj),
            kept=self._gpu_kept,
        )
