"""The optional C extension (``_cbuild.c``), loaded once, and the array kernels it offers the
layers above, which run without holding the GIL (the threads of ``rank_many(..., workers=N)``
take turns at it): :func:`repeat` (``numpy.repeat``), :func:`segment_counts` (the True
values per CSR segment, which a ``cumsum`` of a bool mask into ``int64`` computes holding it)
and :func:`reaching` (the pairs of a batch that can be in their job's top k); and
:func:`kth_largest`, NumPy only.

The extension is compiled at install when a C compiler is there (``hatch_build.py``); without
it, or with ``NODESELECT_PURE_PYTHON=1``, or when the extension in ``src/`` is of another
version than this code calls (a stale editable build: re-run ``pip install -e .``), ``_cbuild``
is ``None`` and everything falls back to NumPy and Python, with the same results.
"""

from __future__ import annotations

import itertools
import os
from typing import Any, Final, TypeVar

import numpy as np
import numpy.typing as npt

#: The version of ``_cbuild.c`` this package calls (its ``VERSION``).
CBUILD_VERSION: Final = 5

try:
    from nodeselect.table import _cbuild
except ImportError:  # not compiled (no C compiler at install): NumPy and Python only
    _cbuild = None  # type: ignore[assignment]
if (
    os.environ.get("NODESELECT_PURE_PYTHON", "") not in ("", "0")
    or getattr(_cbuild, "VERSION", None) != CBUILD_VERSION
):
    _cbuild = None  # type: ignore[assignment]

# _cbuild: the extension module, or None (the table build reads nodes with it)
__all__ = [
    "CBUILD_VERSION",
    "SMALL",
    "_cbuild",
    "kth_largest",
    "reaching",
    "repeat",
    "segment_counts",
]

_T = TypeVar("_T", bound=np.generic)

#: Below this many values and this many items out, :func:`repeat` is ``numpy.repeat``: its
#: copy is then a few microseconds, less than the kernel's call (measured: 2-4 us against
#: 5-7 us at 10-1,000 values; at 100k values with counts of 0-8 the kernel is 2.3-3x
#: faster). Few values with large counts (one value per job, repeated over the job's pairs)
#: take the kernel: ``numpy.repeat`` would copy millions of items holding the GIL.
SMALL: Final = 4096


def repeat(values: npt.NDArray[_T], counts: npt.NDArray[np.integer[Any]]) -> npt.NDArray[_T]:
    """``numpy.repeat(values, counts)`` for a 1-D ``values`` of 1-, 2-, 4- or 8-byte items
    and a 1-D ``counts`` of the same length, copied with the GIL released.

    ``numpy.repeat`` copies holding the GIL, which the threads of
    ``rank_many(..., workers=N)`` then take turns at; this copy (in the C extension) lets them
    run it at once, and is faster on small counts (no branch per count up to 8). The result
    is ``numpy.repeat``'s, byte for byte; any other input (fewer than :data:`SMALL` values
    and items out, other shapes or dtypes, counts that are not integers, a negative count, no
    extension) goes to ``numpy.repeat`` itself, which also raises its errors.
    """
    c = _cbuild
    if (
        c is None
        or values.ndim != 1
        or values.dtype.hasobject
        or values.dtype.itemsize not in (1, 2, 4, 8)
        or counts.dtype.kind not in "iu"
    ):
        return np.repeat(values, counts)
    k = np.ascontiguousarray(counts, dtype=np.int64)
    if k.shape != values.shape:
        return np.repeat(values, counts)
    total = int(k.sum())
    # (negative counts: numpy's error)
    if total < 0 or (len(values) < SMALL and total < SMALL):
        return np.repeat(values, counts)
    v = np.ascontiguousarray(values)
    out = np.empty_like(v, shape=total)
    try:
        c.repeat(_bytes_view(v), _bytes_view(k), _bytes_view(out), v.dtype.itemsize)
    except ValueError:  # a negative count among positive ones: numpy's error, numpy's result
        return np.repeat(values, counts)
    return out


def _bytes_view(a: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    """A contiguous array's bytes, as a buffer of unsigned bytes (any dtype, even bool or
    datetime, whose buffer formats some consumers refuse)."""
    return a.view(np.uint8)


def segment_counts(
    mask: npt.NDArray[np.bool_], offsets: npt.NDArray[np.integer[Any]]
) -> npt.NDArray[np.int64]:
    """Per segment ``i`` of a CSR layout (``offsets``, ``len(mask)`` entries), how many of
    ``mask[offsets[i]:offsets[i + 1]]`` are True.

    The same counts as the difference of a cumulative sum at the offsets (any offsets
    within the mask, even out of order), which is what runs without the extension or for
    offsets that are not non-decreasing; with it, one pass in C with the GIL released, no
    temporary of the mask's length, and 8 bytes at a time.
    """
    c = _cbuild
    m = np.ascontiguousarray(mask)
    f = np.ascontiguousarray(offsets, dtype=np.int64)
    if c is not None and m.dtype == np.bool_ and m.ndim == 1 and f.ndim == 1 and len(f):
        out = np.empty(len(f) - 1, dtype=np.int64)
        try:
            c.segment_counts(_bytes_view(m), _bytes_view(f), _bytes_view(out))
        except ValueError:  # offsets out of order: the cumulative sum's differences
            pass
        else:
            return out
    cs = np.zeros(len(m) + 1, dtype=np.int64)
    np.cumsum(m, out=cs[1:])
    counts: npt.NDArray[np.int64] = cs[f[1:]] - cs[f[:-1]]
    return counts


#: :func:`kth_largest` of at least this many values (and at least 8 x :data:`_KTH_STEP` x
#: ``k``) first finds a threshold in every :data:`_KTH_STEP`-th value.
_KTH_SAMPLED: Final = 2048
_KTH_STEP: Final = 32


def kth_largest(values: npt.NDArray[np.floating[Any]], k: int) -> float:
    """The ``k``-th largest of a 1-D ``values`` (``1 <= k <= len(values)``): what
    ``numpy.partition(values, n - k)[n - k]`` gives (NaN sorts last, as the largest), faster
    (k = 10: 2x at 3k values, 14-16x at 20k-200k) and at a cost that does not depend on how
    many are equal.

    Many values: the ``k``-th largest of every 32nd value (``tau``) is at most the answer
    (a subset's ``k``-th largest never exceeds the whole's), and at least ``k`` values are
    not below it, so the answer is the ``k``-th largest of the values not below ``tau`` (NaN
    included): about ``32 * k`` of them. One comparison and one selection over all the values
    instead of a partition of them (measured: ~10 ns a value for ``numpy.partition``).

    The partitions here pass two ``kth`` (the one asked for and its neighbour): with one,
    ``numpy.partition`` takes a SIMD quickselect on x86 machines with AVX-512 (NumPy 2.x)
    that is 10-30x slower when many values are equal (measured on NumPy 2.4, 200k values of
    which three quarters are one value: 25-31 ms against 1-2 ms; 2,689 values: 0.1-0.24 ms
    against 0.025), and ties are the rule here: the rows a bound rules out score ``-inf``,
    integer attributes give equal scores. With two, NumPy runs its introselect, as fast on
    distinct values and as fast on equal ones.

    Raises:
        ValueError: ``values`` is not 1-D or ``k`` is out of range.
    """
    n = len(values)
    if values.ndim != 1 or not 1 <= k <= n:
        raise ValueError(f"kth_largest: k={k} of a {values.shape} array; give 1 <= k <= n")
    if n >= _KTH_SAMPLED and k * _KTH_STEP * 8 <= n:
        sample = values[::_KTH_STEP]
        tau = _partitioned(sample, len(sample) - k)
        # not below tau: at least the k sampled ones (NaN is never below: it sorts last)
        values = values[~(values < tau)]
        n = len(values)
    return _partitioned(values, n - k)


def _partitioned(values: npt.NDArray[np.floating[Any]], at: int) -> float:
    """``numpy.partition(values, at)[at]`` through NumPy's introselect (two ``kth``)."""
    if len(values) == 1:
        return float(values[0])
    pair = [at - 1, at] if at else [at, at + 1]
    return float(np.partition(values, pair)[at])


def reaching(
    lower: npt.NDArray[np.float64],
    upper: npt.NDArray[np.float64],
    pos: npt.NDArray[np.int64] | None,
    bounds: npt.NDArray[np.int64],
    k: int,
) -> npt.NDArray[np.int64]:
    """The pairs that can be in their segment's top ``k`` by score bounds, ascending.

    Pair ``i`` is candidate ``pos[i]`` (value ``i`` when ``pos`` is ``None``), whose score
    lies in ``[lower, upper]`` there; segment ``j`` (a job) is the pairs
    ``bounds[j]:bounds[j + 1]`` (``bounds``: non-decreasing, from 0 to the number of pairs,
    as CSR offsets are). A segment of at most ``k`` pairs keeps them all (even a
    NaN); a longer one keeps the pairs whose ``upper`` reaches the segment's
    :func:`kth_largest` ``lower`` (NaN the largest; no pair reaches a NaN). Every pair left
    out scores below ``k`` pairs of its segment.

    With the C extension: one pass per segment keeps its ``k`` largest ``lower`` in a heap and
    one more keeps the pairs, with the GIL released, and nothing of the pairs' length but the
    result is written (NumPy gathers both bounds for every pair and compares them with a
    threshold repeated per pair). Without it, or for other dtypes or ``k < 1``: NumPy, the
    same pairs (``kth_largest`` raises for ``k < 1``).
    """
    c = _cbuild
    if (
        c is not None
        and k >= 1
        and lower.dtype == np.float64
        and upper.dtype == np.float64
        and lower.shape == upper.shape
        and lower.ndim == 1
        and (pos is None or (pos.dtype == np.int64 and pos.ndim == 1))
        and bounds.dtype == np.int64
        and bounds.ndim == 1
        and len(bounds)
    ):
        lo, hi = np.ascontiguousarray(lower), np.ascontiguousarray(upper)
        p = np.zeros(0, dtype=np.int64) if pos is None else np.ascontiguousarray(pos)
        b = np.ascontiguousarray(bounds)
        out = np.empty(len(lo) if pos is None else len(p), dtype=np.int64)
        try:
            n = c.reaching(_bytes_view(lo), _bytes_view(hi), _bytes_view(p), _bytes_view(b), k,
                           _bytes_view(out), pos is None)  # fmt: skip
        except ValueError:  # positions or bounds out of range: NumPy's own error below
            pass
        else:
            return out[:n]
    lo, hi = (lower, upper) if pos is None else (lower.take(pos), upper.take(pos))
    n_pairs = np.diff(bounds)
    # one threshold per segment, then one comparison over every pair
    kth = np.full(len(n_pairs), -np.inf)
    for j, (a, e) in enumerate(itertools.pairwise(bounds.tolist())):
        if e - a > k:
            kth[j] = kth_largest(lo[a:e], k)
    keep = hi >= repeat(kth, n_pairs)
    few = n_pairs <= k
    if few.any():  # a segment with at most k pairs keeps them all (even a NaN)
        keep |= repeat(few, n_pairs)
    return np.flatnonzero(keep)
