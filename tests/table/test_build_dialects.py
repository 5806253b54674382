"""The table builder gives bit-identical tables to the previous per-node builder on every dialect.

``tests/oracles/previous_build.py`` is the builder as it was before the column-wise rewrite of
issue 13. For each simulator dialect (units, timestamp forms, numeric strings, bulk
registration, compression), a fleet's documents are decoded as a fetch decodes them and built
both ways: every column (dtype, shape, bytes; NaN where NaN), every vocabulary, the unit
decisions with their evidence and fallback counts, and the derived columns must be equal.
A fleet mixing every dialect exercises the undecided units and the plausibility fallbacks.
"""

from __future__ import annotations

import functools
import itertools
import operator
import re
from datetime import UTC, datetime

import attrs
import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect.documents._facts import ProvedFacts
from nodeselect.fetch import (
    FetchedNode,
    FetchResult,
    FetchStats,
    NodeQuery,
    SnapshotNodes,
    save_sharded_snapshot,
    save_snapshot,
)
from nodeselect.fetch._decode import decode_body
from nodeselect.sim import DIALECTS, Fleet, generate_fleet
from nodeselect.table import _build, decide_unit
from nodeselect.table._derived import gpu_free_top, gpu_model_key, max_gpu_count
from nodeselect.table._table import NodeTable
from previous_build import previous_build_table

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
N_NODES = 300

# every test here runs with the C reader and with the pure-Python one (tests/table/conftest.py)
pytestmark = pytest.mark.usefixtures("table_reader")


def _fetched(fleet: Fleet) -> list[FetchedNode]:
    """Every document decoded as a fetch decodes it (pages of 50), with the hidden facts."""
    enc = msgspec.json.Encoder()
    docs = [enc.encode(d) for d in fleet.documents()]
    out: list[FetchedNode] = []
    for a in range(0, len(docs), 50):
        body = b'{"data":[%s],"limit":50,"page":1,"total":%d}' % (
            b",".join(docs[a : a + 50]),
            len(docs),
        )
        for node in decode_body(body, ProvedFacts()).nodes:
            h = fleet.hidden(node.uuid)
            facts = ProvedFacts(
                status=h.status,
                compliance_tags=h.compliance_tags,
                continent=h.continent,
                country=h.country,
                subdivision=h.subdivision,
            )
            out.append(FetchedNode(node.uuid, node.lean, node.raw, facts))
    return out


def assert_identical(got: NodeTable, want: NodeTable) -> None:
    """Every field equal: arrays in dtype, shape and bytes (so NaN payloads and -0.0 count),
    vocabularies and unit decisions by value; and the derived columns."""
    for f in attrs.fields(NodeTable):
        a, b = getattr(got, f.name), getattr(want, f.name)
        if isinstance(b, np.ndarray):
            assert isinstance(a, np.ndarray), f.name
            assert (a.dtype, a.shape) == (b.dtype, b.shape), (f.name, a.dtype, b.dtype)
            assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes(), f.name
        else:
            assert a == b, f.name
    for derive in (gpu_model_key, gpu_free_top):
        for x, y in zip(derive(got), derive(want), strict=True):
            assert np.array_equal(np.asarray(x), np.asarray(y)), derive.__name__
    assert max_gpu_count(got) == max_gpu_count(want)


_NODES: dict[str, list[FetchedNode]] = {}


def _nodes(name: str) -> list[FetchedNode]:
    if name not in _NODES:
        if name == "mixed":
            _NODES[name] = [
                node
                for k, other in enumerate(DIALECTS)
                for node in _nodes(other)[k * 20 : k * 20 + 40]
            ]
        else:
            seed = 17 + list(DIALECTS).index(name)  # distinct uuids: the mixed fleet repeats none
            fleet = generate_fleet(N_NODES, seed=seed, now=NOW, dialect=DIALECTS[name])
            _NODES[name] = _fetched(fleet)
    return _NODES[name]


@pytest.mark.parametrize("name", [*DIALECTS, "mixed"])
def test_every_column_equals_the_previous_builders(name: str) -> None:
    """Documents of the dialect -> the new and the previous builder -> identical tables."""
    nodes = _nodes(name)
    assert len(nodes) > 100
    got = NodeTable.from_nodes(nodes, now=NOW)
    assert_identical(got, previous_build_table(nodes, NOW.timestamp()))


@pytest.mark.parametrize("name", ["ram-gb-load-percent", "mixed"])
def test_a_part_built_with_given_units_equals_the_previous_builders(name: str) -> None:
    """A shard built with the whole fleet's units equals the previous builder told the same."""
    nodes = _nodes(name)
    whole = NodeTable.from_nodes(nodes, now=NOW)
    part = nodes[::7]
    got = NodeTable.from_nodes(part, now=NOW, units=whole.units)
    assert_identical(got, previous_build_table(part, NOW.timestamp(), whole.units))


def test_the_mixed_fleet_has_fallbacks_and_numeric_strings() -> None:
    """The mixed fleet reaches the paths the single dialects do not: the check has teeth."""
    units = NodeTable.from_nodes(_nodes("mixed"), now=NOW).units
    assert units.numeric_strings > 0
    assert units.telemetry_fallbacks > 0 or any(d.unit is None for d in units.decisions())


@pytest.mark.parametrize("name", ["numeric-strings", "mixed"])
def test_many_small_chunks_build_the_same_table(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read in chunks of 37 nodes (vocabularies, image bits, facts and GPU names grown across
    chunks), the table is still the previous builder's, bit for bit."""
    monkeypatch.setattr(_build, "CHUNK", 37)
    nodes = _nodes(name)
    got = NodeTable.from_nodes(nodes, now=NOW)
    assert_identical(got, previous_build_table(nodes, NOW.timestamp()))


def _result(nodes: list[FetchedNode]) -> FetchResult:
    return FetchResult(
        nodes=tuple(nodes),
        rejected=(),
        stats=FetchStats(),
        query=NodeQuery(),
        fetched_at=NOW,
        source="test",
    )


@pytest.mark.parametrize("name", [*DIALECTS, "mixed"])
def test_a_snapshot_built_chunk_by_chunk_is_the_whole_fleets_table(name: str, tmp_path) -> None:
    """A snapshot (3 shards, or one file) read a chunk at a time gives, bit for bit, the table
    of all its nodes at once: units decided on the whole fleet, vocabularies in fetched order
    (chunks of 41 nodes cut across shard ends and the reader's own chunks)."""
    nodes = _nodes(name)
    want = NodeTable.from_nodes(nodes, now=NOW)
    save_sharded_snapshot(tmp_path / "dir", _result(nodes), 3)
    save_snapshot(tmp_path / "one.jsonl", _result(nodes))
    assert_identical(NodeTable.from_snapshot(tmp_path / "dir", now=NOW), want)
    assert_identical(NodeTable.from_snapshot(tmp_path / "one.jsonl"), want)  # now: fetched_at
    small = SnapshotNodes(tmp_path / "dir")
    assert_identical(_build.build_table_chunks(small.chunks(41), NOW.timestamp()), want)
    assert [n.uuid for n in small] == [n.uuid for n in nodes]
    # from_snapshot reads lean_chunks (one decode a line): each node's lean view and facts
    # are those chunks() decodes, numeric strings (the lax decode) included
    lean = [n for c in small.lean_chunks(41) for n in c]
    assert [(n.uuid, n.lean, n.facts) for n in lean] == [(n.uuid, n.lean, n.facts) for n in nodes]


def test_a_snapshot_table_with_given_units_is_the_parts_table(tmp_path) -> None:
    """units= is passed through: a part of a fleet built with the whole's units."""
    nodes = _nodes("mixed")
    whole = NodeTable.from_nodes(nodes, now=NOW)
    part = nodes[::5]
    save_snapshot(tmp_path / "part.jsonl", _result(part))
    got = NodeTable.from_snapshot(tmp_path / "part.jsonl", now=NOW, units=whole.units)
    assert_identical(got, NodeTable.from_nodes(part, now=NOW, units=whole.units))


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from([*DIALECTS, "mixed"]), cuts=st.lists(st.integers(0, 400), max_size=6))
def test_shards_tallies_sum_to_the_whole_fleets_decisions(name: str, cuts: list[int]) -> None:
    """Cut a fleet anywhere into shards (empty ones too), build each alone: the sum of the
    shards' unit tallies decides exactly what the whole fleet decides (unit, evidence,
    agreeing; the how line less its median ratio), whatever each shard decided alone."""
    nodes = _nodes(name)
    whole = NodeTable.from_nodes(nodes, now=NOW).units
    bounds = [0, *sorted(min(c, len(nodes)) for c in cuts), len(nodes)]
    parts = [NodeTable.from_nodes(nodes[a:b], now=NOW).units for a, b in itertools.pairwise(bounds)]
    for want in whole.decisions():
        tallies = [getattr(p, want.quantity).tally for p in parts]
        got = decide_unit(want.quantity, functools.reduce(operator.add, tallies))
        assert (got.unit, got.evidence, got.agreeing) == (want.unit, want.evidence, want.agreeing)
        assert got.how == re.sub(r" \(median ratio [^)]*\)", "", want.how)
        assert got.tally == want.tally


def test_a_snapshot_table_is_built_without_holding_its_chunks_and_the_table_at_once(
    tmp_path,
) -> None:
    """The build joins each group of columns and frees its chunks as it goes: the traced
    memory's peak while building a 10k-node table stays under 5x the table's arrays (6.1-6.3x
    when every chunk list and vocabulary lived until the table was made; 3.8-4.1x now)."""
    import tracemalloc  # noqa: PLC0415

    nodes = _fetched(generate_fleet(10_000, seed=29, now=NOW))
    save_snapshot(tmp_path / "s.jsonl", _result(nodes))
    save_snapshot(tmp_path / "warm.jsonl", _result(nodes[:50]))
    NodeTable.from_snapshot(tmp_path / "warm.jsonl")  # (imports and caches first)
    tracemalloc.start()
    try:
        table = NodeTable.from_snapshot(tmp_path / "s.jsonl")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    arrays = [getattr(table, a.name) for a in attrs.fields(NodeTable)]
    size = sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))
    assert peak < 5 * size, (peak, size)
