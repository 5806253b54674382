"""The table's derived columns equal their plain-Python definitions, and the table builders
build them, so a fresh table's first rank finds them cached."""

from __future__ import annotations

import math

import attrs
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect.table import _derived
from nodeselect.table._derived import (
    TOP_GPUS,
    VRAM_EDGES_GB,
    gpu_free_top,
    gpu_model_key,
    vram_level,
)
from nodeselect.table._table import NodeTable
from reference_derived import EDGES, free_top, level, model_keys
from strategies_fleet import NOW, fleets

VRAM = st.one_of(
    st.floats(-2, 200, allow_nan=False, width=32),
    st.sampled_from([*VRAM_EDGES_GB.tolist(), 0.0, 32.25, 32.5, 32.999, 159.5, 1e30, math.inf]),
    st.just(math.nan),
)


@st.composite
def gpu_layouts(draw: st.DrawFn) -> tuple[list[int], list[int], list[float], list[float]]:
    """CSR GPU columns: many sizes (above the sorting network's 16, more than 8 distinct)."""
    lens = draw(st.lists(st.integers(0, 40) | st.sampled_from([0, 1, 2, 4, 8]), max_size=60))
    offsets = [0]
    for n in lens:
        offsets.append(offsets[-1] + n)
    g = offsets[-1]
    codes = draw(st.lists(st.sampled_from([3, 7, 7, 7, 9, 300]), min_size=g, max_size=g))
    free = draw(st.lists(VRAM, min_size=g, max_size=g))
    tele = draw(st.lists(VRAM, min_size=g, max_size=g))
    return offsets, codes, free, tele


def _table(offsets: list[int], codes: list[int], free: list[float], tele: list[float]) -> NodeTable:
    n = len(offsets) - 1
    t = NodeTable.synthetic(n, seed=1, now=NOW)
    return attrs.evolve(
        t,
        gpu_offsets=np.array(offsets, dtype=np.int32),
        gpu_count=np.minimum(np.diff(offsets), 255).astype(np.uint8),
        gpu_model_code=np.array(codes, dtype=np.uint16),
        gpu_vram_free_gb=np.array(free, dtype=np.float32),
        gpu_tele_vram_free_gb=np.array(tele, dtype=np.float32),
    )


def test_vram_edges_are_their_definition() -> None:
    """The level edges are the quarter-GB steps to 32 GB, then the 1 GB steps to 159."""
    assert VRAM_EDGES_GB.tolist() == EDGES


@settings(max_examples=150, deadline=None)
@given(VRAM)
def test_vram_level_counts_the_edges_at_or_below(v) -> None:
    """level(v) is how many edges are <= v, for float64 and for float32 values alike."""
    assert int(vram_level(v)[0]) == level(v)
    v32 = float(np.float32(v))
    assert int(vram_level(np.array([v32], dtype=np.float32))[0]) == level(v32)


@settings(max_examples=30, deadline=None)
@given(gpu_layouts())
def test_free_top_is_each_nodes_largest_levels_descending(layout) -> None:
    """Per node, the levels of its TOP_GPUS largest free-VRAM bounds, descending, 0-padded."""
    offsets, codes, free, tele = layout
    t = _table(offsets, codes, free, tele)
    f32 = [float(x) for x in t.gpu_vram_free_gb.tolist()]
    t32 = [float(x) for x in t.gpu_tele_vram_free_gb.tolist()]
    want = free_top(offsets, f32, t32, TOP_GPUS)
    got = gpu_free_top(t)
    assert got.shape == (TOP_GPUS, len(offsets) - 1)
    assert got.T.tolist() == want


@settings(max_examples=30, deadline=None)
@given(gpu_layouts())
def test_model_key_names_the_single_model_or_mixed(layout) -> None:
    """A node's key is its one model's place in the vocabulary, 0 without GPUs, else mixed."""
    offsets, codes, free, tele = layout
    key, vocab, has_mixed = gpu_model_key(_table(offsets, codes, free, tele))
    want, want_vocab = model_keys(offsets, codes)
    assert key.tolist() == want
    assert vocab.tolist() == want_vocab
    assert has_mixed == (len(want_vocab) + 1 in want)


def test_model_key_overflowing_the_byte_marks_the_rest_mixed() -> None:
    """With more than 253 distinct models, nodes of the models past the 253rd are mixed."""
    codes = list(range(1, 301))
    offsets = list(range(301))
    key, vocab, _ = gpu_model_key(_table(offsets, codes, [1.0] * 300, [1.0] * 300))
    want, want_vocab = model_keys(offsets, codes)
    assert key.tolist() == want
    assert vocab.tolist() == want_vocab


def _built(t: NodeTable) -> set[str]:
    """The names of the derived columns cached for ``t``'s own GPU columns."""
    mine = {id(t.gpu_offsets)}
    return {k[0] for k in _derived._cache if isinstance(k[0], str) and mine & set(k[2:])}


def test_table_builders_build_the_derived_columns() -> None:
    """synthetic and concat tables hold their model key, free-VRAM levels and most GPUs."""
    a = NodeTable.synthetic(50, seed=1, now=NOW)
    b = NodeTable.synthetic(30, seed=2, now=NOW)
    both = NodeTable.concat([a, b])
    for t in (a, b, both):
        assert {"model-key", "free-top", "max-gpus"} <= _built(t)
    view = a.take(np.arange(10))
    assert not _built(view)  # other tables build each on first use


@settings(max_examples=10, deadline=None)
@given(fleets())
def test_from_nodes_builds_the_derived_columns(fleet) -> None:
    """A table built from fetched nodes holds its derived columns, equal to a fresh build's."""
    t = NodeTable.from_nodes(fleet, now=NOW)
    assert {"model-key", "free-top", "max-gpus"} <= _built(t)
    assert np.array_equal(gpu_free_top(t), _derived._free_top(t))
    assert np.array_equal(gpu_model_key(t)[0], _derived._model_key(t)[0])
