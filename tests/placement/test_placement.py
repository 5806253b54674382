"""Batch placement: the properties issue 5 asks for, checked on random tiny instances."""

from __future__ import annotations

import random

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect import InputError
from nodeselect.documents._facts import ProvedFacts
from nodeselect.engine._rank import rank
from nodeselect.placement._placer import place
from nodeselect.placement._plan import Plan
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


def _plan(inst: Instance, seed: int = 0, fleet: list | None = None) -> Plan:
    nodes = inst.fleet() if fleet is None else fleet
    return place(inst.jobs, NodeTable.from_nodes(nodes, now=NOW), nodes=nodes, now=NOW, seed=seed)


def _shape(plan: Plan, *, reasons: bool = True) -> tuple:
    """The plan without table row numbers: what a node-order change must not alter."""
    return (
        tuple(
            (a.job_name, tuple((r.node_uuid, r.gpu_indices, round(r.score, 9)) for r in a.replicas))
            for a in plan.assignments
        ),
        tuple((u.job_name, u.reason if reasons else "") for u in plan.unplaced),
    )


@given(instances)
@settings(max_examples=150, deadline=None)
def test_no_resource_is_promised_beyond_what_a_node_has_free(inst: Instance) -> None:
    """No GPU is promised twice, and no node gives away more cores, RAM or disk than it has."""
    assert check_plan(inst.nodes, inst.jobs, _plan(inst)) == []


@given(instances)
@settings(max_examples=60, deadline=None)
def test_every_assignment_satisfies_its_jobs_hard_constraints(inst: Instance) -> None:
    """Each replica's node, alone and untouched, passes every hard constraint of its job."""
    fleet = inst.fleet()
    table = NodeTable.from_nodes(fleet, now=NOW)
    plan = place(inst.jobs, table, now=NOW)
    for a in plan.assignments:
        for r in a.replicas:
            alone = rank(inst.jobs[a.job_index], table.take([r.node_index]), k=1, now=NOW)
            assert alone.feasible == 1


@given(instances)
@settings(max_examples=150, deadline=None)
def test_gangs_are_all_or_nothing(inst: Instance) -> None:
    """Every job is placed with exactly `nodes` replicas or listed unplaced, never both."""
    plan = _plan(inst)
    placed = {a.job_index: len(a.replicas) for a in plan.assignments}
    unplaced = {u.job_index for u in plan.unplaced}
    assert not placed.keys() & unplaced
    assert placed.keys() | unplaced == set(range(len(inst.jobs)))
    for j, count in placed.items():
        assert count == inst.jobs[j].nodes


@given(instances, st.integers(0, 3))
@settings(max_examples=40, deadline=None)
def test_a_plan_is_identical_for_identical_inputs_and_seed(inst: Instance, seed: int) -> None:
    """Placing the same jobs on the same fleet with the same seed twice gives equal plans."""
    assert _plan(inst, seed) == _plan(inst, seed)


@given(instances, st.randoms(use_true_random=False))
@settings(max_examples=60, deadline=None)
def test_a_plan_is_independent_of_the_input_order_of_nodes(
    inst: Instance, rnd: random.Random
) -> None:
    """Shuffling the fleet changes no assignment, GPU index, score or reason."""
    fleet = inst.fleet()
    shuffled = fleet[:]
    rnd.shuffle(shuffled)
    assert _shape(_plan(inst, fleet=fleet)) == _shape(_plan(inst, fleet=shuffled))


@given(instances, st.integers(0, 7))
@settings(max_examples=60, deadline=None)
def test_adding_a_node_that_fits_no_job_changes_nothing(inst: Instance, pick: int) -> None:
    """An OFFLINE copy of a node (it fails every job's status constraint) changes no assignment."""
    fleet = inst.fleet()
    twin = fleet[pick % len(fleet)]
    offline = attrs.evolve(
        twin,
        lean=type(twin.lean)(
            **{**_fields(twin.lean), "uuid": "ffffffff-0000-0000-0000-000000000000"}
        ),
        facts=attrs.evolve(twin.facts, status="OFFLINE"),
    )
    before = _shape(_plan(inst, fleet=fleet), reasons=False)
    assert before == _shape(_plan(inst, fleet=[*fleet, offline]), reasons=False)


def _fields(lean: object) -> dict:
    return {f: getattr(lean, f) for f in lean.__struct_fields__}  # type: ignore[attr-defined]


@given(instances)
@settings(max_examples=60, deadline=None)
def test_unplaced_jobs_are_explained_against_the_capacity_left(inst: Instance) -> None:
    """An unplaced job's reason is non-empty, and its rejection counts cover the whole fleet."""
    plan = _plan(inst)
    for u in plan.unplaced:
        assert u.reason
        assert u.explanation is not None
        assert u.explanation.evaluated == len(inst.nodes)


# Measured over the seeds below; docs/placement.md reports the same figures.
GAP_SEEDS = range(200)
MAX_SHORTFALL_RATE = 0.01  # measured: 1 of 200 (0.5 %) by default; 4 (2.0 %) greedy alone
MAX_SHORTFALL = 1  # measured: never more than 1 job


@pytest.mark.slow
def test_greedy_placed_count_stays_close_to_the_brute_force_optimum() -> None:
    """On 200 seeded tiny instances the default placement (greedy, repair, second opinion) never
    beats the optimum and rarely falls short."""
    short = 0
    for seed in GAP_SEEDS:
        inst = random_instance(random.Random(seed))
        greedy = len(_plan(inst).assignments)
        best = optimum_placed(inst.nodes, inst.jobs)
        assert greedy <= best, seed
        assert best - greedy <= MAX_SHORTFALL, seed
        short += greedy < best
    assert short / len(GAP_SEEDS) <= MAX_SHORTFALL_RATE


def _two_node_gang() -> Instance:
    nodes = (
        TinyNode(
            "00000000-0000-0000-0000-0000000000a1",
            (TinyGpu("T4", 16),) * 2,
            16,
            64,
            500,
            "op-1",
            "DE",
        ),
        TinyNode(
            "00000000-0000-0000-0000-0000000000a2",
            (TinyGpu("T4", 16),) * 2,
            16,
            64,
            500,
            "op-2",
            "DE",
        ),
        TinyNode(
            "00000000-0000-0000-0000-0000000000a3", (TinyGpu("T4", 16),), 16, 64, 500, "op-3", "US"
        ),
    )
    jobs = (
        tiny_job("train", gpus=2, nodes=2, same="country", distinct="operator", priority=1),
        tiny_job("infer", gpus=1, models=("T4",)),
    )
    return Instance(nodes, jobs)


def test_a_gang_lands_in_one_country_on_distinct_operators() -> None:
    """The 2-node gang takes both German nodes (two operators); the single job takes the US node."""
    plan = _plan(_two_node_gang())
    train = plan.assignment("train")
    assert {r.node_uuid[-2:] for r in train.replicas} == {"a1", "a2"}
    assert plan.assignment("infer").replicas[0].node_uuid.endswith("a3")
    assert plan.totals.gpus_used == 5
    assert plan.totals.free_gpus_left == 0


def test_hosts_and_torchrun_args_describe_every_replica() -> None:
    """hosts() gives address and GPU count per replica; torchrun args rank them from 0."""
    plan = _plan(_two_node_gang())
    hosts = plan.hosts("train")
    assert [g for _, g in hosts] == [2, 2]
    args = plan.torchrun_args("train", master_port=29400)
    assert args[1] == [
        "--nnodes=2",
        "--nproc-per-node=2",
        "--node-rank=1",
        f"--master-addr={hosts[0][0]}",
        "--master-port=29400",
    ]


def test_hosts_of_an_unknown_job_is_an_input_error() -> None:
    """Asking for the hosts of a job that is not in the plan names the placed jobs."""
    with pytest.raises(InputError, match="no placed job named 'nope'"):
        _plan(_two_node_gang()).hosts("nope")


def test_duplicate_job_names_are_rejected() -> None:
    """A batch whose job names repeat is an input error (plans are looked up by name)."""
    inst = _two_node_gang()
    with pytest.raises(InputError, match="unique"):
        place([inst.jobs[1], inst.jobs[1]], NodeTable.from_nodes(inst.fleet(), now=NOW), now=NOW)


def test_a_gang_that_cannot_complete_reserves_nothing() -> None:
    """A 3-node gang on a 2-node country leaves every GPU for the job after it."""
    inst = _two_node_gang()
    jobs = (
        tiny_job("big", gpus=1, nodes=3, same="country", priority=5),
        tiny_job("small", gpus=2, models=("T4",)),
    )
    plan = _plan(Instance(inst.nodes, jobs))
    assert [u.job_name for u in plan.unplaced] == ["big"]
    assert "country" in plan.unplaced[0].reason
    assert plan.assignment("small").replicas[0].gpu_indices == (0, 1)


def test_validate_is_empty_on_the_same_fleet() -> None:
    """A plan re-checked against the table it was made from has no problems."""
    inst = _two_node_gang()
    fleet = inst.fleet()
    plan = _plan(inst, fleet=fleet)
    assert plan.validate(NodeTable.from_nodes(fleet, now=NOW)) == ()


def test_validate_reports_a_gone_node_and_a_shrunk_gpu() -> None:
    """A node missing from the fresh table is node-gone; a GPU now too small is no-longer-fits."""
    inst = _two_node_gang()
    plan = _plan(inst)
    a1, _a2, a3 = inst.nodes
    fresher = [
        attrs.evolve(a1, gpus=(TinyGpu("T4", 16),)),  # lost a GPU: index 1 is gone
        attrs.evolve(a3, gpus=(TinyGpu("T4", 16),)),
    ]
    problems = plan.validate(NodeTable.from_nodes([n.node() for n in fresher], now=NOW))
    kinds = {(p.job_name, p.node_uuid[-2:], p.kind) for p in problems}
    assert ("train", "a2", "node-gone") in kinds
    assert ("train", "a1", "gpu-gone") in kinds
    assert not any(p.job_name == "infer" for p in problems)


def test_validate_reports_an_assignment_that_no_longer_fits() -> None:
    """A GPU that a fresher fleet shows with too little free VRAM makes its replica not fit."""
    nodes = (
        TinyNode(
            "00000000-0000-0000-0000-0000000000b1",
            (TinyGpu("A100-80GB", 80),),
            16,
            64,
            500,
            "op-1",
            "DE",
        ),
    )
    jobs = (tiny_job("big-vram", gpus=1, vram=60),)
    plan = _plan(Instance(nodes, jobs))
    fresher = [attrs.evolve(nodes[0], gpus=(TinyGpu("A100-80GB", 40),)).node()]
    problems = plan.validate(fresher, now=NOW)  # fetched nodes are accepted too
    assert [(p.job_name, p.kind) for p in problems] == [("big-vram", "no-longer-fits")]


def test_unknown_node_facts_keep_a_scoped_gang_out() -> None:
    """Nodes whose country was never proved cannot form a same-country gang."""
    inst = _two_node_gang()
    fleet = [attrs.evolve(n, facts=ProvedFacts(status="AVAILABLE")) for n in inst.fleet()]
    plan = _plan(inst, fleet=fleet)
    assert [u.job_name for u in plan.unplaced] == ["train"]


@given(instances)
@settings(max_examples=100, deadline=None)
def test_the_survey_size_is_only_a_speed_knob(inst: Instance) -> None:
    """A survey of 1 candidate per job (forcing every widening stage) gives the same plan.

    Same-scope and pack gangs are excluded: they choose among the exact prefix only (see
    docs/placement.md), so their choice may depend on the survey size.
    """
    jobs = tuple(
        attrs.evolve(j, gang=attrs.evolve(j.gang, same=None, operators="spread")) for j in inst.jobs
    )
    inst = Instance(inst.nodes, jobs)
    fleet = inst.fleet()
    table = NodeTable.from_nodes(fleet, now=NOW)
    wide = place(inst.jobs, table, now=NOW, candidates=64)
    narrow = place(inst.jobs, table, now=NOW, candidates=1)
    assert check_plan(inst.nodes, inst.jobs, narrow) == []
    assert _shape(narrow) == _shape(wide)
