"""Issue 15: the repair pass, the quality report and the exact mode, on tiny and contended
instances (the brute-force optimum of tests/oracles/reference_placement.py is the truth)."""

from __future__ import annotations

import random
import sys
from collections import Counter

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect.errors import NodeSelectError
from nodeselect.jobs._model import CpuReq, DiskReq, GangReq, GpuReq, Job, MemoryReq
from nodeselect.placement._model import tier_weights
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
    optimum_placed,
    random_instance,
    tiny_job,
)

instances = st.integers(0, 2**32 - 1).map(lambda s: random_instance(random.Random(s)))


def _table(inst: Instance) -> NodeTable:
    return NodeTable.from_nodes(inst.fleet(), now=NOW)


def _tiers(plan: Plan) -> Counter[int]:
    return Counter(a.priority for a in plan.assignments)


def _shape(plan: Plan) -> tuple:
    """The plan by node uuid (not row number), reasons included."""
    return (
        tuple(
            (a.job_name, tuple((r.node_uuid, r.gpu_indices, round(r.score, 9)) for r in a.replicas))
            for a in plan.assignments
        ),
        tuple((u.job_name, u.reason, u.cause) for u in plan.unplaced),
        attrs.evolve(plan.quality, solver=None),
    )


def _contended(n_nodes: int, n_jobs: int, seed: int) -> tuple[list[Job], NodeTable]:
    """A synthetic fleet too small for its batch (generated like benchmarks/bench_place.py)."""
    rng = random.Random(seed)
    models = (("RTX-4090",), ("RTX-3090", "RTX-4090"), ("A100-80GB", "H100-80GB"), ("T4",), ())
    jobs = []
    for i in range(n_jobs):
        gang = i % 10 == 0
        jobs.append(
            Job(
                name=f"job-{i:03d}",
                nodes=rng.randint(2, 4) if gang else 1,
                priority=rng.choice([0, 0, 0, 1, 2]),
                gpu=GpuReq(
                    models=rng.choice(models),
                    count=rng.choice([1, 1, 2, 4]),
                    min_vram_free_gb=rng.choice([None, 8.0, 16.0, 40.0]),
                ),
                cpu=CpuReq(min_cores=rng.choice([None, 4, 8, 16])),
                memory=MemoryReq(min_free_gb=rng.choice([None, 16.0, 64.0])),
                disk=DiskReq(min_free_gb=rng.choice([None, 100.0, 500.0])),
                gang=GangReq(
                    same=rng.choice([None, "country"]) if gang else None,
                    distinct=rng.choice(["node", "operator"]) if gang else "node",
                ),
            )
        )
    return jobs, NodeTable.synthetic(n_nodes, seed=seed, now=NOW)


# --- the repair pass ---------------------------------------------------------------------------


@given(instances)
@settings(max_examples=40, deadline=None)
def test_repair_never_lowers_the_placed_count_of_any_priority_tier(inst: Instance) -> None:
    """Per priority tier, the default places at least as many jobs as the plain greedy, and the
    plan passes the from-scratch checker and Plan.validate."""
    table = _table(inst)
    greedy = place(inst.jobs, table, now=NOW, repair=False)
    default = place(inst.jobs, table, now=NOW)
    before, after = _tiers(greedy), _tiers(default)
    assert all(after[t] >= n for t, n in before.items())
    assert check_plan(inst.nodes, inst.jobs, default) == []
    assert default.validate(table, now=NOW) == ()
    assert len(default.assignments) <= optimum_placed(inst.nodes, inst.jobs)


@pytest.mark.parametrize("seed", [0, 1])
def test_repair_on_a_contended_fleet_keeps_every_tier_and_validates(seed: int) -> None:
    """On a fleet too small for the batch the default places at least the greedy's jobs of
    every tier, and its plan validates."""
    jobs, table = _contended(80, 60, seed)
    greedy = place(jobs, table, now=NOW, repair=False)
    default = place(jobs, table, now=NOW)
    before, after = _tiers(greedy), _tiers(default)
    assert all(after[t] >= n for t, n in before.items())
    assert default.validate(table, now=NOW) == ()
    q = default.quality
    assert q.unplaced_capacity + q.unplaced_no_fit == len(default.unplaced)


def test_a_move_makes_room_for_a_job_the_greedy_left_out() -> None:
    """Seed 4212 (gang rules relaxed): the greedy leaves job-5 out because a replica of the
    gang job-3 sits on the node it needs; the repair pass alone moves that replica and places
    job-5, and the plan passes the from-scratch checker."""
    inst = random_instance(random.Random(4212))
    jobs = tuple(
        attrs.evolve(j, gang=attrs.evolve(j.gang, same=None, operators="spread")) for j in inst.jobs
    )
    inst = Instance(inst.nodes, jobs)
    table = _table(inst)
    placer = _Placer(jobs, table, now=NOW, seed=0, candidates=64)
    placer.greedy()
    assert "job-5" in [jobs[j].name for j in placer.left]
    repair_plan(placer)  # the repair pass alone (no second opinion)
    plan = placer.plan()
    assert "job-5" in {a.job_name for a in plan.assignments}
    assert (plan.quality.repaired, plan.quality.displaced, plan.quality.moved) == (1, 0, 1)
    assert check_plan(inst.nodes, jobs, plan) == []
    assert plan.validate(table, now=NOW) == ()


@given(instances, st.randoms(use_true_random=False))
@settings(max_examples=30, deadline=None)
def test_the_default_plan_is_independent_of_the_order_of_nodes(
    inst: Instance, rnd: random.Random
) -> None:
    """Shuffling the fleet changes no assignment, GPU, score, reason or quality figure (repair
    and second opinion included)."""
    fleet = inst.fleet()
    shuffled = fleet[:]
    rnd.shuffle(shuffled)
    a = place(inst.jobs, NodeTable.from_nodes(fleet, now=NOW), now=NOW)
    b = place(inst.jobs, NodeTable.from_nodes(shuffled, now=NOW), now=NOW)
    assert _shape(a) == _shape(b)


@pytest.mark.parametrize("seed", [0])
def test_a_contended_plan_is_independent_of_the_order_of_rows(seed: int) -> None:
    """On a contended synthetic fleet (where repair and the second opinion run), permuting the
    table's rows gives the same plan modulo row numbers."""
    jobs, table = _contended(80, 60, seed)
    perm = np.random.default_rng(seed).permutation(len(table))
    a = place(jobs, table, now=NOW)
    b = place(jobs, table.take(perm), now=NOW)
    assert _shape(a) == _shape(b)


# --- the quality report ------------------------------------------------------------------------


def test_unplaced_jobs_say_capacity_or_no_fit() -> None:
    """A job that fits the empty fleet but lost its node is "capacity"; one that fits nothing
    is "no-fit"; both in the totals and in to_json."""
    node = TinyNode(
        "00000000-0000-0000-0000-0000000000c1", (TinyGpu("T4", 16),), 8, 64, 500, "op-1", "DE"
    )
    jobs = (
        tiny_job("first", gpus=1, priority=2),
        tiny_job("second", gpus=1, priority=1),
        tiny_job("never", gpus=1, models=("A100-80GB",)),
    )
    plan = place(jobs, _table(Instance((node,), jobs)), now=NOW)
    causes = {u.job_name: u.cause for u in plan.unplaced}
    assert causes == {"second": "capacity", "never": "no-fit"}
    assert (plan.quality.unplaced_capacity, plan.quality.unplaced_no_fit) == (1, 1)
    doc = plan.to_json()
    assert {u["job"]: u["cause"] for u in doc["unplaced"]} == causes
    assert doc["quality"]["unplaced_capacity"] == 1


def test_a_gang_whose_scope_never_has_enough_nodes_is_no_fit() -> None:
    """A gang of 3 in one country on a fleet with 2 nodes per country fits nothing."""
    nodes = tuple(
        TinyNode(
            f"00000000-0000-0000-0000-0000000000d{i}",
            (TinyGpu("T4", 16),),
            8,
            64,
            500,
            f"op-{i}",
            country,
        )
        for i, country in enumerate(["DE", "DE", "US", "US"])
    )
    jobs = (tiny_job("gang", gpus=1, nodes=3, same="country"),)
    plan = place(jobs, _table(Instance(nodes, jobs)), now=NOW)
    assert [u.cause for u in plan.unplaced] == ["no-fit"]


# --- the exact mode ----------------------------------------------------------------------------


def test_tier_weights_make_one_higher_job_outweigh_every_lower_job() -> None:
    """One job of a tier weighs more than all jobs of the lower tiers together."""
    prios = [0, 0, 0, 1, 1, 5]
    w = tier_weights(prios)
    assert w[3] > sum(w[:3])
    assert w[5] > sum(w[:5])
    assert w[0] == w[1] == w[2] == 1.0


def test_optimal_without_highspy_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without highspy, objective="optimal" is a NodeSelectError naming nodeselect[optimal]."""
    monkeypatch.setitem(sys.modules, "highspy", None)
    inst = random_instance(random.Random(1))
    with pytest.raises(NodeSelectError, match=r"nodeselect\[optimal\]"):
        place(inst.jobs, _table(inst), now=NOW, objective="optimal")


def test_bad_objective_and_time_limit_are_input_errors() -> None:
    """An unknown objective or a negative time limit says what is accepted."""
    inst = random_instance(random.Random(1))
    with pytest.raises(NodeSelectError, match="greedy"):
        place(inst.jobs, _table(inst), now=NOW, objective="best")  # type: ignore[arg-type]
    with pytest.raises(NodeSelectError, match="time_limit"):
        place(inst.jobs, _table(inst), now=NOW, objective="optimal", time_limit=-1)


@given(instances)
@settings(max_examples=30, deadline=None)
def test_exact_plans_validate_and_reach_the_brute_force_optimum(inst: Instance) -> None:
    """With one priority tier the exact plan places the brute-force optimum; it passes the
    from-scratch checker and Plan.validate, and never places fewer jobs than the default."""
    pytest.importorskip("highspy")
    jobs = tuple(attrs.evolve(j, priority=0) for j in inst.jobs)
    inst = Instance(inst.nodes, jobs)
    table = _table(inst)
    plan = place(jobs, table, now=NOW, objective="optimal")
    assert check_plan(inst.nodes, jobs, plan) == []
    assert plan.validate(table, now=NOW) == ()
    assert len(plan.assignments) == optimum_placed(inst.nodes, jobs)
    assert len(plan.assignments) >= len(place(jobs, table, now=NOW).assignments)
    s = plan.quality.solver
    assert s is not None
    assert s.status == "optimal"
    assert s.gap == 0
    assert s.jobs_bound >= len(plan.assignments)


@given(instances)
@settings(max_examples=20, deadline=None)
def test_exact_plans_with_flow_variables_equal_those_with_hall_rows(inst: Instance) -> None:
    """Forcing the GPU-type flow formulation everywhere gives the same optimum as Hall rows."""
    pytest.importorskip("highspy")
    import nodeselect.placement._model as model  # noqa: PLC0415

    jobs = tuple(attrs.evolve(j, priority=0) for j in inst.jobs)
    table = _table(Instance(inst.nodes, jobs))
    hall = place(jobs, table, now=NOW, objective="optimal")
    saved = model.HALL_SETS
    model.HALL_SETS = 0
    try:
        flow = place(jobs, table, now=NOW, objective="optimal")
    finally:
        model.HALL_SETS = saved
    assert len(flow.assignments) == len(hall.assignments)
    assert flow.validate(table, now=NOW) == ()


@given(instances)
@settings(max_examples=20, deadline=None)
def test_exact_plans_never_lose_a_tier_to_the_default(inst: Instance) -> None:
    """With priorities, the exact plan is lexicographically at least the default: at the first
    tier (highest first) where they differ, it places more."""
    pytest.importorskip("highspy")
    table = _table(inst)
    default = place(inst.jobs, table, now=NOW)
    exact = place(inst.jobs, table, now=NOW, objective="optimal")
    assert exact.validate(table, now=NOW) == ()
    a, b = _tiers(exact), _tiers(default)
    for t in sorted({j.priority for j in inst.jobs}, reverse=True):
        if a[t] != b[t]:
            assert a[t] > b[t]
            break


def test_exact_mode_on_a_contended_fleet_is_proved_and_beats_or_ties_the_default() -> None:
    """A contended synthetic batch: the solver proves optimality, the plan validates, and the
    default places at least 90 % of it."""
    pytest.importorskip("highspy")
    jobs, table = _contended(60, 50, 3)
    default = place(jobs, table, now=NOW)
    exact = place(jobs, table, now=NOW, objective="optimal", time_limit=60)
    s = exact.quality.solver
    assert s is not None
    assert s.status == "optimal"
    assert exact.validate(table, now=NOW) == ()
    assert len(exact.assignments) >= len(default.assignments)
    assert len(default.assignments) >= 0.9 * len(exact.assignments)
    assert exact.quality.objective == "optimal"
    assert exact.to_json()["quality"]["solver"]["status"] == "optimal"


def test_a_zero_time_limit_returns_a_valid_plan_and_says_so() -> None:
    """With no time to search, the plan is still valid and never worse than the default."""
    pytest.importorskip("highspy")
    jobs, table = _contended(60, 50, 4)
    default = place(jobs, table, now=NOW)
    exact = place(jobs, table, now=NOW, objective="optimal", time_limit=0)
    s = exact.quality.solver
    assert s is not None
    assert exact.validate(table, now=NOW) == ()
    assert len(exact.assignments) >= len(default.assignments)
    if s.status != "optimal":
        assert s.bound >= s.objective
