"""Issue 15, the last figure: swaps and evictions refill small first, and a scarce job's cluster
is repacked. Checked on crowded tiny instances against the from-scratch checker and on the
contended batches of benchmarks/bench_place_quality.py against the optimum's counts."""

from __future__ import annotations

import random
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect.jobs._model import Job
from nodeselect.placement._placer import _Placer, place
from nodeselect.placement._plan import Plan
from nodeselect.placement._repair import repair_plan
from nodeselect.table._table import NodeTable
from reference_placement import (
    NOW,
    Instance,
    TinyGpu,
    TinyNode,
    check_plan,
    random_instance,
    tiny_job,
)

#: More jobs than the nodes hold: the repair pass (and the cluster repack) runs on most draws.
crowded = st.integers(0, 2**32 - 1).map(
    lambda s: random_instance(random.Random(s), max_nodes=5, max_jobs=10)
)


def _table(inst: Instance) -> NodeTable:
    return NodeTable.from_nodes(inst.fleet(), now=NOW)


def _repaired(jobs: tuple[Job, ...], table: NodeTable) -> tuple[dict[int, int], Plan]:
    """The greedy's placed jobs (index -> priority) and the plan after the repair pass alone."""
    p = _Placer(jobs, table, now=NOW, seed=0, candidates=64)
    p.greedy()
    greedy = {j: jobs[j].priority for j in p.placed}
    repair_plan(p)
    return greedy, p.plan()


def _shape(plan: Plan) -> tuple[object, ...]:
    """The plan by node uuid (not row number)."""
    return tuple(
        (a.job_name, tuple((r.node_uuid, r.gpu_indices, round(r.score, 9)) for r in a.replicas))
        for a in plan.assignments
    )


@given(crowded)
@settings(max_examples=60, deadline=None)
def test_repair_keeps_every_tier_and_takes_out_only_jobs_it_outranks(inst: Instance) -> None:
    """On a crowded fleet the repair pass alone places at least the greedy's jobs of every
    tier, every job it left out is outranked (or equalled) by a job it placed instead, and the
    plan passes the from-scratch checker and Plan.validate."""
    table = _table(inst)
    greedy, plan = _repaired(inst.jobs, table)
    placed = {a.job_index: a.priority for a in plan.assignments}
    before, after = Counter(greedy.values()), Counter(placed.values())
    assert all(after[t] >= n for t, n in before.items())
    out = [greedy[j] for j in greedy if j not in placed]
    new = [placed[j] for j in placed if j not in greedy]
    if out:
        assert new
        assert max(out) <= max(new)
    assert check_plan(inst.nodes, inst.jobs, plan) == []
    assert plan.validate(table, now=NOW) == ()


@given(crowded, st.randoms(use_true_random=False))
@settings(max_examples=30, deadline=None)
def test_a_crowded_default_plan_is_independent_of_the_order_of_nodes(
    inst: Instance, rnd: random.Random
) -> None:
    """Shuffling a crowded fleet changes no assignment, GPU or score of the default plan."""
    fleet = inst.fleet()
    shuffled = fleet[:]
    rnd.shuffle(shuffled)
    a = place(inst.jobs, NodeTable.from_nodes(fleet, now=NOW), now=NOW)
    b = place(inst.jobs, NodeTable.from_nodes(shuffled, now=NOW), now=NOW)
    assert _shape(a) == _shape(b)
    assert a.quality == b.quality


def _node(i: int, gpus: int, cores: int) -> TinyNode:
    return TinyNode(
        uuid=f"00000000-0000-0000-0000-00000000{i:04x}",
        gpus=tuple(TinyGpu("T4", 16) for _ in range(gpus)),
        cores=cores,
        ram_free_gb=64,
        disk_free_gb=500,
        operator="op-1",
        country="DE",
    )


def test_a_cluster_repack_moves_a_higher_priority_job_to_make_room() -> None:
    """The high-priority job takes the only node the 16-core job fits (its best-scored one);
    no move or swap may touch it (it outranks the left-out job), but repacking that node's
    cluster places the left-out job there and the high-priority job on the other node."""
    nodes = (_node(0, 2, 32), _node(1, 4, 8))
    jobs = (
        tiny_job("hi", gpus=2, priority=1),
        tiny_job("wide", gpus=2, cores=16),
        tiny_job("lo", gpus=1),
    )
    table = NodeTable.from_nodes([n.node() for n in nodes], now=NOW)
    greedy = place(jobs, table, now=NOW, repair=False)
    hi_node = {a.job_name: a.replicas[0].node_uuid for a in greedy.assignments}.get("hi")
    if hi_node != nodes[0].uuid:  # pragma: no cover - the scores put "hi" on node 0 today
        pytest.skip("the greedy put the high-priority job on the other node")
    assert "wide" in {u.job_name for u in greedy.unplaced}
    _, plan = _repaired(jobs, table)
    where = {a.job_name: a.replicas[0].node_uuid for a in plan.assignments}
    assert where["wide"] == nodes[0].uuid
    assert where["hi"] == nodes[1].uuid
    assert len(plan.assignments) == 3
    assert check_plan(nodes, jobs, plan) == []


#: The optimum's placed jobs on the contended batches of bench_place_quality.py (HiGHS 1.16,
#: ``objective="optimal"``, every one proved: gap 0), by (jobs, nodes, seed).
OPTIMUM = {
    (200, 500, 0): 140,
    (200, 500, 1): 138,
    (200, 500, 2): 141,
    (200, 500, 3): 137,
    (200, 500, 4): 151,
    (500, 1_000, 0): 356,
    (500, 1_000, 1): 363,
    (500, 1_000, 2): 363,
    (500, 1_000, 3): 335,
    (500, 1_000, 4): 367,
}


@pytest.mark.slow
@pytest.mark.parametrize(("n_jobs", "n_nodes", "seed"), sorted(OPTIMUM))
def test_the_default_places_98_percent_of_the_optimum_on_each_contended_batch(
    n_jobs: int, n_nodes: int, seed: int
) -> None:
    """The issue's figure, per instance: the default places >= 98 % of the optimum's jobs,
    no tier fewer than the plain greedy, and its plan validates (a row permutation of the
    smaller fleets gives the same plan)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from bench_place import NOW as BNOW  # noqa: PLC0415
    from bench_place import make_jobs  # noqa: PLC0415

    table = NodeTable.synthetic(n_nodes, seed=seed, now=BNOW)
    jobs = make_jobs(n_jobs, seed=seed)
    greedy = place(jobs, table, now=BNOW, repair=False)
    plan = place(jobs, table, now=BNOW)
    assert len(plan.assignments) >= 0.98 * OPTIMUM[(n_jobs, n_nodes, seed)]
    before = Counter(a.priority for a in greedy.assignments)
    after = Counter(a.priority for a in plan.assignments)
    assert all(after[t] >= n for t, n in before.items())
    assert plan.validate(table, now=BNOW) == ()
    if n_nodes <= 500:
        perm = np.random.default_rng(seed).permutation(len(table))
        assert _shape(place(jobs, table.take(perm), now=BNOW)) == _shape(plan)
