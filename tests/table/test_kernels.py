"""The array kernels of ``nodeselect.table``: ``repeat`` (``numpy.repeat``'s result, byte for
byte, copied by the C extension with the GIL released, or by ``numpy.repeat`` itself without
it), ``segment_counts``, ``kth_largest`` and ``reaching``, each against NumPy or plain Python."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nodeselect.table import _kernels, kth_largest, reaching, repeat, segment_counts

needs_c = pytest.mark.skipif(_kernels._cbuild is None, reason="the C extension is not built")

_DTYPES = st.sampled_from(
    [
        *(np.bool_, np.int8, np.uint8, np.int16, np.float16, np.int32, np.float32, np.int64),
        *(np.uint64, np.float64, np.complex64, "datetime64[s]", "S3", "U1", np.complex128),
    ]
)


@st.composite
def _cases(draw: st.DrawFn) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    dtype = np.dtype(draw(_DTYPES))
    n = draw(st.integers(0, 40))
    step = draw(st.sampled_from([1, 1, 2, -1]))  # strided and reversed views too
    base = draw(hnp.arrays(dtype, n * abs(step)))
    values = base[::step] if step > 0 else base[::-1]
    counts = draw(
        hnp.arrays(
            draw(st.sampled_from([np.int64, np.int32, np.uint8])),
            n,
            elements=st.integers(0, 7) | st.integers(0, 20),  # up to 8 stored at once, more
        )
    )
    return values, counts


@given(_cases())
@settings(max_examples=300, deadline=None)
def test_repeat_is_numpys_byte_for_byte(case: tuple[Any, Any]) -> None:
    """Every dtype (NaNs, -0.0 and bools as they are), strided views, zero counts, counts of
    any integer dtype: the same dtype, shape and bytes as ``numpy.repeat``, with the C
    extension and without it."""
    values, counts = case
    want = np.repeat(values, counts)
    for c in (_kernels._cbuild, None):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(_kernels, "_cbuild", c)
            mp.setattr(_kernels, "SMALL", 0)  # the kernel even for these few values
            got = repeat(values, counts)
        assert got.dtype == want.dtype
        assert got.shape == want.shape
        assert got.tobytes() == want.tobytes()


def test_repeat_raises_numpys_errors() -> None:
    """A negative count, counts of another length: ``numpy.repeat``'s ValueError."""
    v = np.arange(3, dtype=np.float64)
    for counts, message in (
        ([1, -1, 1], "negative"),
        ([-2, 0, 0], "negative"),
        ([1, 2], "broadcast"),
    ):
        with pytest.raises(ValueError, match=message):
            np.repeat(v, np.array(counts))
        with pytest.raises(ValueError, match=message):
            repeat(v, np.array(counts))


def test_repeat_of_other_shapes_is_numpys() -> None:
    """A scalar count, 2-D values (flattened) or 0-d values: left to ``numpy.repeat``."""
    v = np.arange(6, dtype=np.int64).reshape(2, 3)
    two = np.array(2)
    assert repeat(v, two).tolist() == np.repeat(v, 2).tolist()
    assert repeat(np.arange(3), two).tolist() == [0, 0, 1, 1, 2, 2]
    assert repeat(np.array(5), np.array(3)).tolist() == [5, 5, 5]  # 0-d values


@needs_c
def test_few_values_repeated_many_times_are_copied_without_the_gil() -> None:
    """The size that sends a copy to ``numpy.repeat`` is the input's and the output's: one
    value per job repeated over each job's pairs (200 values, 1M items out) is the kernel's
    (``numpy.repeat`` would hold the GIL for the whole copy); a small copy stays numpy's."""
    calls: list[int] = []
    real = _kernels._cbuild

    class Counting:
        def repeat(self, *args: Any) -> None:
            calls.append(len(args[2]))
            real.repeat(*args)

    values = np.arange(200, dtype=np.int64)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_kernels, "_cbuild", Counting())
        big = repeat(values, np.full(200, 5_000))
        small = repeat(values, np.full(200, 2))
    assert calls == [1_000_000 * 8]  # the big copy's bytes, the small one not at all
    assert big.tobytes() == np.repeat(values, 5_000).tobytes()
    assert small.tobytes() == np.repeat(values, 2).tobytes()


def test_counts_that_are_not_integers_raise_numpys_error() -> None:
    """Float counts are refused as ``numpy.repeat`` refuses them, not cast, at any size."""
    for n in (3, 10_000):
        with pytest.raises(TypeError):
            np.repeat(np.arange(n), np.full(n, 2.0))
        with pytest.raises(TypeError):
            repeat(np.arange(n), np.full(n, 2.0))


@needs_c
def test_the_c_copy_checks_its_buffers_and_writes_nothing_on_error() -> None:
    """The extension's ``repeat`` refuses a negative count, counts that add up to more or
    less than ``out`` holds, and buffers of the wrong size, before writing anything."""
    c = _kernels._cbuild
    assert c is not None
    v = np.arange(4, dtype=np.int64)
    for counts, size, itemsize in (
        ([1, -1, 1, 1], 2, 8),
        ([1, 1, 1, 1], 5, 8),
        ([1, 1, 1, 1], 3, 8),
        ([2**62, 2**62, 2**62, 1], 4, 8),  # a sum past int64
        ([1, 1, 1, 1], 4, 3),
        ([1, 1, 1], 3, 8),
    ):
        out = np.full(size, 77, dtype=np.int64)
        k = np.array(counts, dtype=np.int64)
        with pytest.raises(ValueError, match="repeat: "):
            c.repeat(v.view(np.uint8), k.view(np.uint8), out.view(np.uint8), itemsize)
        assert (out == 77).all()


@st.composite
def _segments(draw: st.DrawFn) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    lens = draw(st.lists(st.integers(0, 9) | st.integers(0, 30), max_size=30))
    offsets = np.concatenate([[0], np.cumsum(lens, dtype=np.int64)])
    if draw(st.booleans()):  # a sub-range of a longer mask, offsets not from 0
        offsets = offsets + draw(st.integers(0, 5))
    mask = draw(hnp.arrays(np.bool_, int(offsets[-1]) + draw(st.integers(0, 5))))
    return mask, offsets.astype(draw(st.sampled_from([np.int64, np.int32])))


def _counts_by_hand(mask: Any, offsets: Any) -> list[int]:
    return [int(mask[a:b].sum()) for a, b in itertools.pairwise(offsets)]


@given(_segments())
@settings(max_examples=300, deadline=None)
def test_segment_counts_count_the_trues_of_each_segment(case: tuple[Any, Any]) -> None:
    """Empty segments, offsets not starting at 0, a mask longer than the segments, int32 or
    int64 offsets: each segment's True values counted, with the C extension and without."""
    mask, offsets = case
    want = _counts_by_hand(mask, offsets)
    for c in (_kernels._cbuild, None):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(_kernels, "_cbuild", c)
            got = segment_counts(mask, offsets)
        assert got.dtype == np.int64
        assert got.tolist() == want


def test_segment_counts_of_offsets_out_of_order_are_the_cumulative_sums() -> None:
    """Offsets that go back (the C pass refuses them): the differences of the cumulative sum
    at the offsets, as without the extension (a segment read backwards counts negative)."""
    mask = np.array([True, False, True, True, False, True])
    offsets = np.array([0, 4, 2, 6])
    cs = np.concatenate([[0], np.cumsum(mask)])
    assert segment_counts(mask, offsets).tolist() == (cs[offsets[1:]] - cs[offsets[:-1]]).tolist()


@needs_c
def test_the_c_count_checks_its_offsets_and_writes_nothing_on_error() -> None:
    """Offsets out of order, negative or past the mask, and an ``out`` of the wrong size."""
    c = _kernels._cbuild
    assert c is not None
    mask = np.ones(5, dtype=np.bool_)
    for offsets, size in (([0, 3, 2], 2), ([-1, 2], 1), ([0, 6], 1), ([0, 2, 5], 3)):
        out = np.full(size, 77, dtype=np.int64)
        f = np.array(offsets, dtype=np.int64)
        with pytest.raises(ValueError, match="segment_counts: "):
            c.segment_counts(mask.view(np.uint8), f.view(np.uint8), out.view(np.uint8))
        assert (out == 77).all()


# ------------------------------------------------------------------------------ kth_largest
@st.composite
def _kth_cases(draw: st.DrawFn) -> tuple[np.ndarray[Any, Any], int]:
    """Values with heavy ties (a few distinct values, ``-inf``, NaN), from a handful to past
    the sampled path's threshold, sometimes with the largest ones only where the sample does
    not look (every 32nd value is the sample)."""
    palette = draw(
        st.lists(
            st.floats(allow_nan=True, allow_infinity=True, width=64)
            | st.sampled_from([-math.inf, 0.0, -0.0, 1.0]),
            min_size=1,
            max_size=6,
        )
    )
    n = draw(st.integers(1, 40) | st.integers(2_000, 12_000))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = np.array(palette, dtype=np.float64)[rng.integers(0, len(palette), n)]
    if draw(st.booleans()):  # distinct values among the ties
        some = rng.random(n) < draw(st.sampled_from([0.01, 0.3]))
        values[some] = rng.standard_normal(int(some.sum()))
    if draw(st.booleans()):  # the largest ones away from the sampled positions
        hidden = np.flatnonzero(np.arange(n) % _kernels._KTH_STEP != 0)
        top = draw(st.sampled_from([1e300, math.inf, math.nan]))  # NaN sorts last: largest
        values[hidden[: draw(st.integers(0, 400))]] = top
    k = draw(st.integers(1, min(n, 50)))
    return values, k


@given(_kth_cases())
@settings(max_examples=300, deadline=None)
def test_kth_largest_is_the_kth_of_the_sorted_values(case: tuple[Any, int]) -> None:
    """Against Python's sort, NaN last (as ``numpy.partition`` places it): the same value, on
    both paths (a partition, and the sample's threshold first)."""
    values, k = case
    want = sorted(values.tolist(), key=lambda v: (math.isnan(v), v))[len(values) - k]
    got = kth_largest(values, k)
    assert type(got) is float
    assert (math.isnan(want) and math.isnan(got)) or got == want


def test_kth_largest_of_a_bad_k_or_shape_says_what_it_takes() -> None:
    for values, k in ((np.zeros(3), 0), (np.zeros(3), 4), (np.zeros(0), 1), (np.zeros((2, 2)), 1)):
        with pytest.raises(ValueError, match="give 1 <= k <= n"):
            kth_largest(values, k)


# -------------------------------------------------------------------------------- reaching
def _reaching_told(
    lower: list[float], upper: list[float], pos: list[int] | None, bounds: list[int], k: int
) -> list[int]:
    """Plain Python: per segment, the k-th largest lower (NaN sorts last) by a full sort."""
    at = (lambda i: i) if pos is None else pos.__getitem__
    out: list[int] = []
    for a, e in itertools.pairwise(bounds):
        if e - a <= k:
            out += range(a, e)
            continue
        los = sorted((lower[at(i)] for i in range(a, e)), key=lambda v: (math.isnan(v), v))
        kth = los[len(los) - k]
        out += [i for i in range(a, e) if upper[at(i)] >= kth]  # (False for any NaN)
    return out


@st.composite
def _reaching_cases(draw: st.DrawFn) -> tuple[Any, Any, Any, Any, int]:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    c = draw(st.integers(1, 300))
    palette = np.array(
        draw(
            st.lists(
                st.sampled_from([0.0, -0.0, 0.5, 1.0, -math.inf, math.inf, math.nan]),
                min_size=1,
                max_size=4,
            )
        )
        + list(rng.random(3))
    )
    lower = palette[rng.integers(0, len(palette), c)]
    upper = lower + np.where(rng.random(c) < 0.5, 0.0, rng.random(c))  # ties with lower too
    direct = draw(st.booleans())
    lens = draw(st.lists(st.integers(0, 60), min_size=0, max_size=8))
    bounds = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(lens, out=bounds[1:])
    p = int(bounds[-1])
    if direct:  # pairs are the values themselves
        lower = palette[rng.integers(0, len(palette), p)]
        upper = lower + np.where(rng.random(p) < 0.5, 0.0, rng.random(p))
        pos = None
    else:
        pos = np.sort(rng.integers(0, c, p))  # (ascending within a segment, as a batch has)
    k = draw(st.integers(1, 12))
    return lower, upper, pos, bounds, k


@given(_reaching_cases())
@settings(max_examples=300, deadline=None)
def test_reaching_keeps_the_pairs_that_reach_the_kth_best_lower_bound(case: Any) -> None:
    """Against a full sort per segment (NaN last), with heavy ties, NaN and infinities: the C
    kernel and NumPy's path keep the same pairs, ascending."""
    lower, upper, pos, bounds, k = case
    want = _reaching_told(
        lower.tolist(), upper.tolist(), None if pos is None else pos.tolist(), bounds.tolist(), k
    )
    got = reaching(lower, upper, pos, bounds, k)
    assert got.dtype == np.int64
    assert got.tolist() == want
    saved = _kernels._cbuild
    try:
        _kernels._cbuild = None  # type: ignore[assignment]
        assert reaching(lower, upper, pos, bounds, k).tolist() == want
    finally:
        _kernels._cbuild = saved


def test_reaching_of_bad_positions_or_k_raises_numpys_errors() -> None:
    lower = upper = np.arange(4.0)
    bounds = np.array([0, 3], dtype=np.int64)
    with pytest.raises(IndexError):
        reaching(lower, upper, np.array([0, 1, 9], dtype=np.int64), bounds, 1)
    with pytest.raises(ValueError, match="give 1 <= k <= n"):
        reaching(lower, upper, np.array([0, 1, 2], dtype=np.int64), bounds, 0)


@needs_c
def test_the_c_reaching_checks_its_buffers_and_writes_nothing_on_error() -> None:
    c = _kernels._cbuild
    lo = np.arange(4.0)
    pos = np.array([0, 1, 2], dtype=np.int64)
    out = np.empty(3, dtype=np.int64)
    v = _kernels._bytes_view
    for bounds, p, k, o, message in (
        (np.array([0, 3]), pos, 1, out, None),
        (np.array([0, 4]), pos, 1, out, "bounds must run from 0 to the number of pairs"),
        (np.array([1, 3]), pos, 1, out, "bounds must run from 0 to the number of pairs"),
        (np.array([0, 2, 1, 3]), pos, 1, out, "bounds out of order"),
        (np.array([0, 3]), np.array([0, 1, 4]), 1, out, "a position beyond the candidates"),
        (np.array([0, 3]), np.array([0, -1, 2]), 1, out, "a position beyond the candidates"),
        (np.array([0, 3]), pos, 0, out, "k must be at least 1"),
        (np.array([0, 3]), pos, 1, out[:2], "buffers of the wrong size"),
    ):
        o.fill(77)
        args = (v(lo), v(lo), v(p.astype(np.int64)), v(bounds.astype(np.int64)), k, v(o), False)
        if message is None:
            assert c.reaching(*args) == 1  # the k-th best lower is 2.0: only pair 2 reaches it
            assert o[0] == 2
        else:
            with pytest.raises(ValueError, match=message):
                c.reaching(*args)
            assert (o == 77).all()
