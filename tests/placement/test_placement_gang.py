"""Gang node selection (replica count, same-scope, distinct operators, packing) on plain arrays."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect.jobs._model import GangReq
from nodeselect.placement._gang import UNKNOWN, Candidate, select_nodes


def _cands(scores: list[float]) -> list[Candidate]:
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return [Candidate(index=i, score=scores[i], gpu_indices=()) for i in order]


def test_plain_gang_takes_the_best_k_nodes() -> None:
    """Without gang rules the k best-scored candidates are chosen, best first."""
    cands = _cands([0.1, 0.9, 0.5, 0.7])
    ops = np.zeros(4, dtype=np.int64)
    got = select_nodes(cands, 2, GangReq(), operator_of=ops, scope_of=None)
    assert [c.index for c in got.chosen] == [1, 3]


def test_distinct_operator_skips_a_second_node_of_the_same_operator() -> None:
    """distinct = operator takes at most one node per operator account."""
    cands = _cands([0.9, 0.8, 0.7])
    ops = np.array([5, 5, 6], dtype=np.int64)
    got = select_nodes(cands, 2, GangReq(distinct="operator"), operator_of=ops, scope_of=None)
    assert [c.index for c in got.chosen] == [0, 2]


def test_distinct_operator_never_uses_an_unknown_operator() -> None:
    """A node whose operator is unknown cannot be proved distinct, so it is not used."""
    cands = _cands([0.9, 0.8])
    ops = np.array([UNKNOWN, 3], dtype=np.int64)
    got = select_nodes(cands, 2, GangReq(distinct="operator"), operator_of=ops, scope_of=None)
    assert got.chosen == ()
    assert "distinct operators" in got.reason


def test_same_country_picks_the_country_with_the_best_total() -> None:
    """same = country tries every country and keeps the highest total score."""
    cands = _cands([1.0, 0.2, 0.8, 0.7])
    ops = np.arange(4, dtype=np.int64)
    scope = np.array([0, 0, 1, 1], dtype=np.int64)  # country 0: 1.2, country 1: 1.5
    got = select_nodes(cands, 2, GangReq(same="country"), operator_of=ops, scope_of=scope)
    assert sorted(c.index for c in got.chosen) == [2, 3]


def test_same_scope_failure_names_the_best_scope_capacity() -> None:
    """When no single scope can hold the gang, nothing is chosen and the reason says why."""
    cands = _cands([0.9, 0.8, 0.7])
    ops = np.arange(3, dtype=np.int64)
    scope = np.array([0, 1, 2], dtype=np.int64)
    got = select_nodes(cands, 2, GangReq(same="country"), operator_of=ops, scope_of=scope)
    assert got.chosen == ()
    assert "only 1 usable nodes" in got.reason


def test_a_scoped_gang_without_proved_scopes_says_what_to_list() -> None:
    """When no candidate has a proved country, the reason asks for placement.countries."""
    cands = _cands([0.9, 0.8])
    ops = np.arange(2, dtype=np.int64)
    scope = np.full(2, UNKNOWN, dtype=np.int64)
    got = select_nodes(cands, 2, GangReq(same="country"), operator_of=ops, scope_of=scope)
    assert got.chosen == ()
    assert "placement.countries" in got.reason


def test_pack_uses_the_fewest_operators() -> None:
    """operators = pack fills the gang from the operators with the most candidates first."""
    cands = _cands([0.99, 0.5, 0.4, 0.3, 0.2])
    ops = np.array([9, 1, 1, 1, 2], dtype=np.int64)
    got = select_nodes(cands, 3, GangReq(operators="pack"), operator_of=ops, scope_of=None)
    assert sorted(c.index for c in got.chosen) == [1, 2, 3]


@st.composite
def _instances(draw: st.DrawFn) -> tuple[list[Candidate], np.ndarray, np.ndarray, int, GangReq]:
    n = draw(st.integers(0, 7))
    scores = draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))
    ops = np.array(draw(st.lists(st.integers(-1, 2), min_size=n, max_size=n)), dtype=np.int64)
    scope = np.array(draw(st.lists(st.integers(-1, 2), min_size=n, max_size=n)), dtype=np.int64)
    k = draw(st.integers(1, 4))
    rule = GangReq(
        same=draw(st.sampled_from([None, "country"])),
        distinct=draw(st.sampled_from(["node", "operator"])),
        operators=draw(st.sampled_from(["spread", "pack"])),
    )
    return _cands(scores), ops, scope, k, rule


def _valid(chosen: tuple[Candidate, ...], k: int, rule: GangReq, ops, scope) -> bool:
    idx = [c.index for c in chosen]
    if len(idx) != k or len(set(idx)) != k:
        return False
    if rule.distinct == "operator":
        o = [int(ops[i]) for i in idx]
        if UNKNOWN in o or len(set(o)) != k:
            return False
    if rule.same is not None:
        s = {int(scope[i]) for i in idx}
        if UNKNOWN in s or len(s) != 1:
            return False
    return True


@given(_instances())
@settings(max_examples=300, deadline=None)
def test_selection_obeys_the_rules_and_finds_a_gang_whenever_one_exists(inst) -> None:
    """A chosen gang has k distinct nodes obeying same/distinct, and one is found if any exists."""
    cands, ops, scope, k, rule = inst
    got = select_nodes(cands, k, rule, operator_of=ops, scope_of=scope if rule.same else None)
    exists = any(_valid(combo, k, rule, ops, scope) for combo in itertools.combinations(cands, k))
    if got.chosen:
        assert _valid(got.chosen, k, rule, ops, scope)
    else:
        assert got.reason
    assert bool(got.chosen) == exists


@given(_instances())
@settings(max_examples=200, deadline=None)
def test_pack_never_uses_more_operators_than_necessary(inst) -> None:
    """Without distinct/same rules, pack uses the minimum possible number of operators."""
    cands, ops, _scope, k, _rule = inst
    rule = GangReq(operators="pack")
    got = select_nodes(cands, k, rule, operator_of=ops, scope_of=None)

    def n_ops(combo: tuple[Candidate, ...]) -> int:
        known = {int(ops[c.index]) for c in combo if ops[c.index] != UNKNOWN}
        return len(known) + sum(1 for c in combo if ops[c.index] == UNKNOWN)

    combos = list(itertools.combinations(cands, k))
    if combos:
        assert n_ops(got.chosen) == min(n_ops(c) for c in combos)
