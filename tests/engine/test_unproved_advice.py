"""An unfiltered fetch (issue 12 item 4): when nothing fits because no server-side filter
proved a fact, the advice is to fetch with NodeQuery.from_job(job), not to drop the constraint."""

from __future__ import annotations

from nodeselect.documents._facts import ProvedFacts
from nodeselect.engine._rank import rank
from nodeselect.jobs import GpuReq, Job, PlacementReq
from nodeselect.table._table import NodeTable
from reference_placement import NOW, FleetNode, TinyGpu, TinyNode

NODES = [
    TinyNode(f"00000000-0000-0000-0000-0000000000d{i}", (TinyGpu("T4", 16),), 8, 32, 100, "o", "DE")
    for i in range(3)
]


def _table(facts: ProvedFacts | None) -> NodeTable:
    nodes = [n.node() for n in NODES]
    if facts is not None:
        nodes = [FleetNode(lean=n.lean, facts=facts) for n in nodes]
    return NodeTable.from_nodes(nodes, now=NOW)


def test_status_never_proved_advises_fetching_with_the_jobs_query() -> None:
    """On a table with no proved facts, the summary and the status miss say to fetch with the
    job's query; nothing advises dropping the status constraint."""
    job = Job(gpu=GpuReq(count=1))  # statuses = AVAILABLE by default
    r = rank(job, _table(ProvedFacts()), now=NOW)
    assert r.feasible == 0
    assert r.explanation.unproved == (("status", 3),)
    assert "status unknown on 3 of 3 nodes" in r.explanation.summary()
    assert "NodeQuery.from_job(job)" in r.explanation.summary()
    (miss,) = r.explanation.nearest_misses
    assert miss.unproved == 3
    assert "NodeQuery.from_job(job)" in str(miss)
    assert "dropping it" not in str(miss)


def test_region_and_status_both_unknown_are_both_named() -> None:
    """A job needing status and country names both facts; no nearest miss exists (two fail)."""
    job = Job(gpu=GpuReq(count=1), placement=PlacementReq(countries=("DE",)))
    r = rank(job, _table(ProvedFacts()), now=NOW)
    assert r.explanation.unproved == (("status", 3), ("region", 3))
    assert "status unknown on 3 of 3 nodes, region unknown on 3 of 3 nodes" in (
        r.explanation.advice() or ""
    )


def test_a_proved_but_wrong_fact_keeps_the_old_advice() -> None:
    """A node proved OFFLINE fails status for real: no fetch advice, the miss says drop it."""
    job = Job(gpu=GpuReq(count=1))
    r = rank(job, _table(ProvedFacts(status="OFFLINE")), now=NOW)
    assert r.explanation.unproved == ()
    assert r.explanation.advice() is None
    (miss,) = r.explanation.nearest_misses
    assert str(miss) == "status: dropping it admits 3 more nodes"
    assert rank(job, _table(None), now=NOW).explanation.advice() is None
