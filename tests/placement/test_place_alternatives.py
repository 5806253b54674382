"""place() of jobs with ordered alternatives: each job is placed as its first alternative that
could be placed in its round, the plan says which, and it never double-books."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect.engine import rank
from nodeselect.jobs import Alternative, GpuReq, Job
from nodeselect.placement import JobAssignment, Plan, Unplaced, place
from nodeselect.table import NodeTable
from reference_placement import NOW, TinyGpu, TinyNode, check_plan, random_instance


def _shape(plan: Plan) -> tuple[object, ...]:
    return (
        tuple(
            (a.job_name, tuple((r.node_uuid, r.gpu_indices, r.score) for r in a.replicas))
            for a in plan.assignments
        ),
        tuple((u.job_name, u.reason) for u in plan.unplaced),
    )


def _with_alternatives(rng: random.Random, jobs: tuple[Job, ...]) -> tuple[Job, ...]:
    """Give some jobs 2-3 alternatives taken from other random jobs' sections."""
    out = []
    for j in jobs:
        if rng.random() < 0.6:
            others = [rng.choice(jobs) for _ in range(rng.randint(2, 3))]
            alts = tuple(Alternative(gpu=o.gpu, cpu=o.cpu, memory=o.memory) for o in others)
            out.append(
                Job(name=j.name, nodes=j.nodes, priority=j.priority, gang=j.gang, alternatives=alts)
            )
        else:
            out.append(j)
    return tuple(out)


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_a_single_job_is_placed_as_its_first_placeable_alternative(seed: int) -> None:
    """For one job, the plan equals placing the chosen alternative alone, and no earlier
    alternative could be placed alone."""
    rng = random.Random(seed)
    inst = random_instance(rng, max_jobs=4)
    (job,) = _with_alternatives(random.Random(seed), inst.jobs[:1])
    fleet = inst.fleet()
    table = NodeTable.from_nodes(fleet, now=NOW)
    plan = place([job], table, now=NOW)
    alone = [place([c], table, now=NOW) for c in job.choices()]
    placed = [bool(p.assignments) for p in alone]
    if job.alternatives:
        chosen = placed.index(True) if any(placed) else len(placed) - 1
        entry: JobAssignment | Unplaced = (
            plan.assignments[0] if plan.assignments else plan.unplaced[0]
        )
        assert entry.alternative == chosen
        assert not any(placed[:chosen])
    else:
        chosen = 0
        assert all(a.alternative is None for a in (*plan.assignments, *plan.unplaced))
    assert plan.jobs == (job.choices()[chosen],)
    assert _shape(plan) == _shape(alone[chosen])


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=40, deadline=None)
def test_a_batch_with_alternatives_is_a_plain_batch_of_the_chosen_ones(seed: int) -> None:
    """The plan is placing the chosen alternatives as plain jobs; it double-books nothing;
    a job left unplaced tried every alternative; ``alternative`` is set only for jobs that
    have alternatives, and to_json carries it."""
    rng = random.Random(seed)
    inst = random_instance(rng)
    jobs = _with_alternatives(rng, inst.jobs)
    fleet = inst.fleet()
    table = NodeTable.from_nodes(fleet, now=NOW)
    plan = place(jobs, table, now=NOW)
    plain = place(plan.jobs, table, now=NOW)
    assert _shape(plan) == _shape(plain)
    assert check_plan(inst.nodes, plan.jobs, plan) == []
    doc = plan.to_json()
    for a, d in zip(plan.assignments, doc["assignments"], strict=True):
        job = jobs[a.job_index]
        assert (a.alternative is None) == (not job.alternatives)
        assert plan.jobs[a.job_index] == job.choices()[a.alternative or 0]
        assert d.get("alternative") == a.alternative
    for u in plan.unplaced:
        job = jobs[u.job_index]
        assert u.alternative == (len(job.alternatives) - 1 if job.alternatives else None)


def test_three_ordered_alternatives_place_on_the_first_that_fits() -> None:
    """1x H100 (none in the fleet), else 2x A100-80GB (one node has them), else 4x RTX-4090:
    the job goes to the A100 node and the plan says alternative 1."""
    nodes = (
        TinyNode(
            "00000000-0000-0000-0000-000000000001",
            (TinyGpu("A100-80GB", 80),) * 2,
            16,
            64,
            500,
            "op-1",
            "DE",
        ),
        TinyNode(
            "00000000-0000-0000-0000-000000000002",
            (TinyGpu("RTX-4090", 24),) * 4,
            16,
            64,
            500,
            "op-2",
            "FR",
        ),
    )
    job = Job(
        name="train",
        alternatives=(
            Alternative(gpu=GpuReq(models=("H100-80GB",), count=1)),
            Alternative(gpu=GpuReq(models=("A100-80GB",), count=2)),
            Alternative(gpu=GpuReq(models=("RTX-4090",), count=4)),
        ),
    )
    table = NodeTable.from_nodes([n.node() for n in nodes], now=NOW)
    plan = place([job], table, now=NOW)
    (a,) = plan.assignments
    assert a.alternative == 1
    assert a.replicas[0].node_uuid == nodes[0].uuid
    assert a.replicas[0].gpu_indices == (0, 1)
    assert plan.to_json()["assignments"][0]["alternative"] == 1
    assert rank(job, table, now=NOW).alternative == 1
