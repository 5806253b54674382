"""What a node-level constraint unit owns, and the small helpers units share.

A unit (:class:`NodeConstraint`) is one hard constraint on a node's own columns. It owns:

* ``name``: the stable kebab-case name explanations and nearest misses use;
* ``columns``: the table columns its mask reads (placement re-checks a unit reading a column
  that residual capacity changes: ``cpu_cores``, ``ram_free_gb``, ``disk_free_gb``);
* ``categorical``: True when its mask depends only on :meth:`key` and columns placement never
  changes, so the prefilter folds it into one cached mask per distinct combination;
* ``static``: True when its mask depends only on :meth:`key` (no ``now``) and columns never
  written in place, though not categorical (a numeric threshold on a static column): the
  prefilter caches the rows passing it with the GPU and categorical tests;
* :meth:`active`: whether the job asks for it;
* :meth:`check`: its :class:`Check` on some rows (the mask, the requirement in words, and for a
  numeric threshold the direction, threshold and per-node values that nearest misses relax);
* :meth:`key`: the job fields its mask depends on (its part of the cache keys);
* :meth:`fast_test`: a one-comparison test for the prefilter, or ``None`` for the generic
  fallback (the prefilter, ``rank_many`` and placement then apply :meth:`check` to the
  candidate rows, so a new unit is enforced everywhere without a fast path).

Float columns are float32; a threshold is rounded *outward* to float32 so that
``column >= t`` in float32 is exactly ``float(column) >= t`` in float64.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal

import attrs
import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from nodeselect.engine._constraints import CompiledJob
    from nodeselect.table import NodeTable

__all__ = [
    "ALL_ROWS",
    "Check",
    "Direction",
    "FastTest",
    "Luts",
    "MinimumConstraint",
    "NodeConstraint",
    "Rows",
    "f32_at_least",
    "f32_at_most",
    "has_all",
    "lut_take",
    "nan_if_zero",
    "vocab_lut",
]

B = npt.NDArray[np.bool_]
F64 = npt.NDArray[np.float64]
Direction = Literal["min", "max"]
#: Rows of a table a unit is evaluated on: a slice, or row indices (ascending).
Rows = slice | npt.NDArray[np.int64]
#: A vocabulary look-up-table cache shared by the units' checks on chunks of one table.
Luts = dict[str, B]
#: A prefilter test ``(kind, column, argument)`` on a whole table column. Kinds: ``"ge"``
#: ``col >= arg``; ``"age"`` ``(arg[0] - col) <= arg[1]``; ``"any"`` ``col`` equals one of
#: ``arg`` (a tuple); ``"lut"`` ``arg[col]``.
FastTest = tuple[str, Any, Any]
ALL_ROWS: slice = slice(None)


def f32_at_least(t: float) -> np.float32:
    """The smallest float32 >= t (so ``x32 >= it`` <=> ``float(x32) >= t``)."""
    x = np.float32(t)
    if float(x) < t:
        x = np.nextafter(x, np.float32(np.inf))
    return x


def f32_at_most(t: float) -> np.float32:
    """The largest float32 <= t (so ``x32 <= it`` <=> ``float(x32) <= t``)."""
    x = np.float32(t)
    if float(x) > t:
        x = np.nextafter(x, np.float32(-np.inf))
    return x


@attrs.frozen
class Check:
    """One node-level constraint evaluated on a table.

    Attributes:
        name: the stable constraint name.
        passes: True where the node passes.
        required: the requirement in words, e.g. ``">= 60"``.
        direction: ``"min"``/``"max"`` for numeric thresholds, else ``None``.
        threshold: the job's number (for nearest-miss relaxation), or ``None``.
        values: per-node value the threshold is compared with (NaN = unknown), for numeric ones.
        unit: the unit of ``values``.
    """

    name: str
    passes: B
    required: str
    direction: Direction | None = None
    threshold: float | None = None
    values: Callable[[], F64] | None = None
    unit: str = ""


def vocab_lut(cache: Luts | None, key: str, vocab: tuple[str, ...], accepted: set[str]) -> B:
    """A bool look-up table over a vocabulary, True for the accepted entries (cached under
    ``key`` in ``cache`` between calls on chunks of one table)."""
    hit = None if cache is None else cache.get(key)
    if hit is None:
        hit = np.zeros(len(vocab), dtype=np.bool_)
        for v in accepted:
            try:
                hit[vocab.index(v)] = True
            except ValueError:
                continue
        if cache is not None:
            cache[key] = hit
    return hit


#: A look-up with at most this many True (or False) entries is tested by equalities.
_FEW: Final = 3


def lut_take(lut: B, codes: npt.NDArray[np.integer[Any]]) -> B:
    """``lut[codes]`` (codes within ``lut``): by an OR of ``==`` on the few accepted codes (or
    an AND of ``!=`` on the few refused ones) when there are at most three, which numpy
    vectorizes about 20x faster than a gather with one-byte indices; else ``np.take``."""
    yes = np.flatnonzero(lut)
    no = np.flatnonzero(~lut)
    if len(yes) <= _FEW or len(no) <= _FEW:
        wanted, equal = (yes, True) if len(yes) <= len(no) else (no, False)
        top = np.iinfo(codes.dtype).max  # a code the column cannot hold matches no node
        vals = [codes.dtype.type(v) for v in wanted.tolist() if v <= top]
        if not vals:
            return np.full(len(codes), not equal, dtype=np.bool_)
        out: B = codes == vals[0] if equal else codes != vals[0]
        for v in vals[1:]:
            if equal:
                out |= codes == v
            else:
                out &= codes != v
        return out
    got: B = np.take(lut, codes)
    return got


def has_all(bits: npt.NDArray[np.uint64], vocab: tuple[str, ...], wanted: tuple[str, ...]) -> B:
    """Per node (columns of the bitset ``bits``), whether every tag of ``wanted`` is set."""
    index = {v: j for j, v in enumerate(vocab)}
    n = bits.shape[1]
    if any(w not in index for w in wanted):
        return np.zeros(n, dtype=np.bool_)
    out = np.ones(n, dtype=np.bool_)
    for w in range(bits.shape[0]):
        req = 0
        for tag in wanted:
            j = index[tag]
            if j >> 6 == w:
                req |= 1 << (j & 63)
        if req:
            r = np.uint64(req)
            out &= (bits[w] & r) == r
    return out


def nan_if_zero(a: npt.NDArray[np.int32]) -> F64:
    """``a`` as float64 with 0 (unknown) as NaN."""
    v = a.astype(np.float64)
    v[a == 0] = np.nan
    return v


class NodeConstraint(abc.ABC):
    """One node-level hard constraint (see the module docstring for what a unit owns).

    Subclasses set ``name`` and ``columns`` (and ``categorical`` when it applies) and implement
    :meth:`active`, :meth:`check` and :meth:`key`; :meth:`fast_test` is optional.
    """

    #: The stable kebab-case name.
    name: ClassVar[str]
    #: The table columns the mask reads.
    columns: ClassVar[frozenset[str]]
    #: Folded into the prefilter's cached categorical mask (see the module docstring).
    categorical: ClassVar[bool] = False
    #: Its passing rows are cached with the GPU and categorical tests' (see the module docstring).
    static: ClassVar[bool] = False

    @abc.abstractmethod
    def active(self, cj: CompiledJob) -> bool:
        """Whether the job asks for this constraint."""

    @abc.abstractmethod
    def check(self, cj: CompiledJob, t: NodeTable, rows: Rows, luts: Luts | None) -> Check:
        """The constraint on ``rows`` of ``t`` (only called when :meth:`active`)."""

    @abc.abstractmethod
    def key(self, cj: CompiledJob) -> Hashable:
        """The job fields the mask depends on (this unit's part of the cache keys)."""

    def fast_test(self, cj: CompiledJob, t: NodeTable) -> FastTest | None:
        """A prefilter test equivalent to :meth:`check` (``None``: use :meth:`check`)."""
        return None

    def __repr__(self) -> str:
        return f"<constraint {self.name}>"


class MinimumConstraint(NodeConstraint):
    """A minimum on one float32 column, from one job field (``reputation``, ``ram-free``,
    ``disk-free``): the threshold rounded outward to float32 so the float32 comparison equals
    the float64 one, and the column's values kept for nearest misses.

    Subclasses set ``name``, ``columns``, ``column`` (the table column), ``section`` and
    ``field`` (the job field, ``job.<section>.<field>``) and ``unit`` (for explanations).
    """

    column: ClassVar[str]
    section: ClassVar[str]
    field: ClassVar[str]
    unit: ClassVar[str] = ""

    def _threshold(self, cj: CompiledJob) -> float | None:
        value = getattr(getattr(cj.job, self.section), self.field)
        return None if value is None else float(value)

    def active(self, cj: CompiledJob) -> bool:
        """When the job sets the minimum."""
        return self._threshold(cj) is not None

    def check(
        self, cj: CompiledJob, t: NodeTable, rows: Rows = ALL_ROWS, luts: Luts | None = None
    ) -> Check:
        """The comparison, with the column's values for nearest misses."""
        thr = self._threshold(cj)
        assert thr is not None
        col = getattr(t, self.column)[rows]
        words = f">= {thr:g} {self.unit}" if self.unit else f">= {thr:g}"
        return Check(
            self.name,
            col >= f32_at_least(thr),
            words,
            "min",
            thr,
            functools.partial(np.asarray, col, dtype=np.float64),
            self.unit,
        )

    def key(self, cj: CompiledJob) -> Hashable:
        """The minimum."""
        return self._threshold(cj)

    def fast_test(self, cj: CompiledJob, t: NodeTable) -> FastTest | None:
        """``column >= t32``."""
        thr = self._threshold(cj)
        assert thr is not None
        return ("ge", getattr(t, self.column), f32_at_least(thr))
