"""Server-side rejections: explain_pushdown's counts equal a plain count of the fleet's truth."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect.fetch._pushdown import explain_pushdown
from nodeselect.fetch._query import NodeQuery, expand_query
from nodeselect.fetch._result import NodeCount
from nodeselect.sim import Fleet, generate_fleet

NOW = datetime(2026, 11, 1, tzinfo=UTC)


@cache
def _fleet() -> Fleet:
    return generate_fleet(1500, seed=11, now=NOW)


def _server_count(fleet: Fleet, query: NodeQuery) -> NodeCount:
    """Count as a client would: one limit=1 request per server query, summed over branches
    (disjoint for single-valued facts), the smallest tag total within a branch."""
    branches: dict[int, list[int]] = {}
    for sq in expand_query(query):
        _, total = fleet.query({**dict(sq.params), "limit": "1"})
        branches.setdefault(sq.branch, []).append(total)
    multi_tag = len(query.compliance) > 1
    return NodeCount(sum(min(v) for v in branches.values()), exact=not multi_tag)


def _truth(fleet: Fleet, query: NodeQuery) -> int:
    """Nodes matching ``query`` by the fleet's hidden facts, node by node."""
    n = 0
    for uuid in fleet.uuids():
        h = fleet.hidden(uuid)
        if h.status == "DELETED" and not query.include_deleted:
            continue
        if query.statuses and h.status not in query.statuses:
            continue
        if query.continents and h.continent not in query.continents:
            continue
        if query.countries and h.country not in query.countries:
            continue
        if query.subdivisions and h.subdivision not in query.subdivisions:
            continue
        if not query.compliance <= h.compliance_tags:
            continue
        n += 1
    return n


queries = st.builds(
    NodeQuery,
    statuses=st.frozensets(st.sampled_from(["AVAILABLE", "WORKING", "OFFLINE"]), max_size=2),
    continents=st.frozensets(st.sampled_from(["AF", "EU", "NA", "AS"]), max_size=2),
    countries=st.frozensets(st.sampled_from(["DE", "US", "NG", "FR"]), max_size=1),
    compliance=st.frozensets(st.sampled_from(["GDPR", "EEA"]), max_size=1),
)


@settings(max_examples=25, deadline=None)
@given(query=queries)
def test_removed_counts_equal_a_plain_count_of_the_truth(query: NodeQuery) -> None:
    """Per filter, removed = (nodes passing every other filter) - (nodes passing all), counted
    from the fleet's hidden facts; matched and considered likewise."""
    fleet = _fleet()
    report = explain_pushdown(lambda q: _server_count(fleet, q), query)
    fields = {
        "placement.statuses": "statuses",
        "placement.continents": "continents",
        "placement.countries": "countries",
        "placement.compliance": "compliance",
    }
    active = [k for k, f in fields.items() if getattr(query, f)]
    if not active:
        assert report is None
        return
    assert report is not None
    assert report.exact
    assert report.matched == _truth(fleet, query)
    cleared = {f: frozenset() for f in fields.values()}
    assert report.considered == _truth(fleet, NodeQuery(**cleared))  # type: ignore[arg-type]
    assert sorted(m.key for m in report.misses) == sorted(active)
    for m in report.misses:
        without = _truth(fleet, NodeQuery(**{**_fields(query), fields[m.key]: frozenset()}))
        assert m.without == without
        assert m.removed == without - report.matched
    assert [m.removed for m in report.misses] == sorted(
        (m.removed for m in report.misses), reverse=True
    )


def _fields(q: NodeQuery) -> dict[str, frozenset[str]]:
    return {
        "statuses": q.statuses,
        "continents": q.continents,
        "countries": q.countries,
        "compliance": q.compliance,
    }


def test_an_emptied_fleet_names_the_filter_that_emptied_it() -> None:
    """AF + GDPR leaves nothing (no African country is GDPR-tagged); the advice counts the
    AVAILABLE nodes in AF and says none is tagged GDPR."""
    fleet = _fleet()
    query = NodeQuery(statuses={"AVAILABLE"}, continents={"AF"}, compliance={"GDPR"})
    report = explain_pushdown(lambda q: _server_count(fleet, q), query)
    assert report is not None
    assert report.matched == 0
    in_af = _truth(fleet, NodeQuery(statuses={"AVAILABLE"}, continents={"AF"}))
    assert in_af > 0
    assert report.rejected["placement.compliance"] == in_af
    by_key = {m.key: m for m in report.misses}
    assert by_key["placement.compliance"].advice == (
        f"{in_af} AVAILABLE nodes in AF, none tagged GDPR"
    )
    assert by_key["placement.continents"].advice.endswith("tagged GDPR, none in AF")
    assert report.to_json()["rejected"] == report.rejected


def test_two_tags_make_the_counts_upper_bounds() -> None:
    """A query needing an intersection (GDPR and EEA) is reported as not exact."""
    fleet = _fleet()
    query = NodeQuery(continents={"EU"}, compliance={"GDPR", "EEA"})
    report = explain_pushdown(lambda q: _server_count(fleet, q), query)
    assert report is not None
    assert not report.exact
    assert report.matched >= _truth(fleet, query)


@pytest.mark.parametrize("query", [NodeQuery(), NodeQuery(include_deleted=True)])
def test_a_query_without_pushed_down_filters_has_no_report(query: NodeQuery) -> None:
    """Nothing to explain server-side, and no request is made."""

    def never(_q: NodeQuery) -> int:
        raise AssertionError("no count expected")

    assert explain_pushdown(never, query) is None
