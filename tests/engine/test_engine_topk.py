"""The engine's top-k pruning (exact scoring only for nodes that can reach the top k) is exact."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect.engine._rank import rank
from nodeselect.jobs._model import GpuReq, Job, Preferences
from nodeselect.table._table import NodeTable
from strategies_fleet import NOW, fleets, jobs

SETTINGS = settings(max_examples=40, deadline=None)


@pytest.mark.slow
@SETTINGS
@given(fleets(), jobs(), st.integers(1, 6), st.integers(0, 3))
def test_small_k_top_is_the_prefix_of_the_unpruned_full_ranking(fleet, job, k, seed) -> None:
    """rank with a small k returns bit for bit the first k nodes (scores, terms, GPUs) of k=len."""
    t = NodeTable.from_nodes(fleet, now=NOW)
    full = rank(job, t, k=len(t), now=NOW, seed=seed)
    small = rank(job, t, k=k, now=NOW, seed=seed)
    assert small.top == full.top[:k]
    assert small.feasible == full.feasible
    assert small.feasible_indices.tolist() == full.feasible_indices.tolist()


@pytest.mark.slow  # several seconds; CI runs it with -m slow
@SETTINGS
@given(fleets(min_size=2), jobs(), st.integers(0, 3))
def test_pruned_ranking_on_a_duplicated_fleet_keeps_tied_nodes_exact(fleet, job, seed) -> None:
    """With every node present twice (scores tied in pairs), k=1..3 tops are prefixes of k=len."""
    # from_nodes refuses repeated uuids (issue 12); concat of one table twice keeps the pairs
    once = NodeTable.from_nodes(fleet, now=NOW)
    t = NodeTable.concat([once, once])
    full = rank(job, t, k=len(t), now=NOW, seed=seed)
    for k in (1, 2, 3):
        assert rank(job, t, k=k, now=NOW, seed=seed).top == full.top[:k]


@settings(max_examples=15, deadline=None)
@given(
    st.integers(0, 2**16),
    st.integers(1, 3),
    st.sampled_from([{}, {"idle": 5.0}, {"idle": 1.0, "fit": 0.0}, {"idle": 0.2}]),
    st.integers(1, 12),
)
def test_synthetic_small_k_matches_the_unpruned_ranking(table_seed, count, weights, k) -> None:
    """On a 3,000-node synthetic fleet with GPU loads, a small-k top is the k=len top's prefix."""
    t = NodeTable.synthetic(3_000, seed=table_seed, now=NOW)
    job = Job(gpu=GpuReq(count=count), preferences=Preferences(weights=weights))
    full = rank(job, t, k=len(t), now=NOW)
    assert rank(job, t, k=k, now=NOW).top == full.top[:k]
