"""Repeated uuids in a table (``take`` with a repeated row, ``concat`` of overlapping shards):
found exactly, and refused by placement, which would otherwise reserve one machine twice."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect import InputError, Job
from nodeselect.placement import place
from nodeselect.table import NodeTable, repeated_uuids

NOW = datetime(2026, 11, 30, tzinfo=UTC)
BASE = NodeTable.synthetic(40, seed=5, now=NOW)


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.integers(0, len(BASE) - 1), max_size=60))
def test_repeated_uuids_are_exactly_those_taken_twice(rows: list[int]) -> None:
    """Against a plain count of the uuid strings the rows hold."""
    t = BASE.take(np.array(rows, dtype=np.int64))
    counts = Counter(u.decode() for u in t.uuid.tolist())
    assert repeated_uuids(t) == tuple(sorted(u for u, c in counts.items() if c > 1))


def test_a_fresh_table_has_none_and_concat_of_overlaps_has_them() -> None:
    assert repeated_uuids(BASE) == ()
    both = NodeTable.concat([BASE.row_range(0, 30), BASE.row_range(20, 40)])
    assert repeated_uuids(both) == tuple(sorted(u.decode() for u in BASE.uuid[20:30].tolist()))


def test_place_refuses_a_table_with_a_machine_twice() -> None:
    t = BASE.take(np.array([0, 1, 2, 1], dtype=np.int64))
    with pytest.raises(InputError, match=r"1 node uuid\(s\) held by more than one row") as err:
        place([Job(name="a")], t, now=NOW)
    assert BASE.uuid[1].decode() in str(err.value)
    assert 'duplicates="newest"' in str(err.value)
