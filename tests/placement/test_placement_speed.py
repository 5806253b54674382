"""Placement's shortcuts are exact: shared surveys, residual re-evaluation and lazy explanations."""

from __future__ import annotations

import pickle
import random

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect.engine._rank import rank
from nodeselect.engine._shard import table_stats
from nodeselect.jobs._model import CpuReq, DiskReq, GangReq, GpuReq, Job, MemoryReq
from nodeselect.placement._placer import _Placer, place
from nodeselect.placement._plan import Residual
from nodeselect.table._table import NodeTable
from reference_placement import NOW as TINY_NOW
from reference_placement import random_instance
from strategies_fleet import NOW, fleets, jobs

job_lists = st.lists(jobs(), min_size=1, max_size=5).map(
    lambda js: [attrs.evolve(j, name=f"job-{i}") for i, j in enumerate(js)]
)


def _with_twins(js: list[Job]) -> list[Job]:
    """The jobs plus renamed copies of some of them (equal requirements, other gang rules)."""
    twins = [
        attrs.evolve(j, name=f"{j.name}-twin", nodes=2, priority=3, gang=GangReq()) for j in js[::2]
    ]
    return [*js, *twins]


def _check_survey_equals_rank(js: list[Job], table: NodeTable, seed: int, candidates: int) -> None:
    placer = _Placer(js, table, now=NOW, seed=seed, candidates=candidates)
    for j, job in enumerate(js):
        want = max(candidates, candidates * job.nodes)
        r = rank(job, table, k=want, now=NOW, seed=seed)
        survey = placer.surveys[j]
        assert survey.feasible == r.feasible
        assert survey.rows.tolist() == [n.index for n in r.top]
        assert survey.complete == (len(r.top) >= r.feasible)
        assert survey.feasible_rows(len(table)).tolist() == r.feasible_indices.tolist()


@pytest.mark.slow
@given(fleets(min_size=1, max_size=14), job_lists, st.integers(0, 3), st.integers(1, 4))
@settings(max_examples=60, deadline=None)
def test_the_shared_survey_equals_rank_for_every_job(
    fleet: list, js: list[Job], seed: int, candidates: int
) -> None:
    """Surveys sharing GPU groups, node masks and score terms give rank()'s rows and counts."""
    table = NodeTable.from_nodes(fleet, now=NOW)
    _check_survey_equals_rank(_with_twins(js), table, seed, candidates)


@given(job_lists, st.integers(0, 3))
@settings(max_examples=10, deadline=None)
def test_the_shared_survey_equals_rank_on_a_synthetic_fleet(js: list[Job], seed: int) -> None:
    """On 3,000 synthetic nodes (live telemetry, many GPU models) the survey equals rank()."""
    table = NodeTable.synthetic(3000, seed=5, now=NOW)
    rng = random.Random(seed)
    models = (("RTX-4090",), ("A100-80GB", "H100-80GB"), ("T4",), ())
    extra = [
        Job(name=f"gpu-{i}", gpu=GpuReq(models=rng.choice(models), count=rng.choice([1, 2, 4])))
        for i in range(4)
    ]
    _check_survey_equals_rank(_with_twins([*js, *extra]), table, seed, 2)


@pytest.mark.slow
@given(fleets(min_size=1, max_size=14), job_lists, st.integers(0, 3))
@settings(max_examples=60, deadline=None)
def test_residual_candidates_equal_rank_on_the_residual_view(
    fleet: list, js: list[Job], seed: int
) -> None:
    """After placing the batch, each job's re-evaluated candidates equal rank() on what is left.

    The full stage (every survey-feasible row) is the exact residual ranking; the near stage
    (untouched survey rows plus touched ones) is a prefix of it.
    """
    table = NodeTable.from_nodes(fleet, now=NOW)
    js = _with_twins(js)
    placer = _Placer(js, table, now=NOW, seed=seed, candidates=1)
    placer.run()
    view = placer.residual.view()
    stats = table_stats(table)
    for j, job in enumerate(js):
        r = rank(job, view, k=len(table), now=NOW, seed=seed, stats=stats)
        want = [(n.index, n.score) for n in r.top]
        full = placer._candidates(j, None, full=True)
        assert [(c.index, c.score) for c in full.cands] == want
        near = placer._candidates(j, None, full=False)
        assert [(c.index, c.score) for c in near.cands] == want[: len(near.cands)]


def _contended_jobs(rng: random.Random, n: int) -> list[Job]:
    """Many jobs that ask for cores, RAM and disk as well as GPUs, so capacity runs out."""
    models = (("RTX-4090",), ("A100-80GB", "H100-80GB"), ("T4",), ())
    out = []
    for i in range(n):
        count = rng.choice([0, 1, 1, 2])
        out.append(
            Job(
                name=f"c-{i}",
                nodes=rng.choice([1, 1, 1, 2]),
                gpu=GpuReq(models=rng.choice(models) if count else (), count=count),
                cpu=CpuReq(min_cores=rng.choice([None, 8, 16, 32])),
                memory=MemoryReq(min_free_gb=rng.choice([None, 16.0, 64.0])),
                disk=DiskReq(min_free_gb=rng.choice([None, 100.0, 500.0])),
            )
        )
    return out


@pytest.mark.slow  # several seconds; CI runs it with -m slow
@given(st.integers(0, 2**32 - 1))
@settings(max_examples=8, deadline=None)
def test_residual_candidates_equal_rank_on_a_contended_synthetic_fleet(s: int) -> None:
    """With 120 jobs on 150 synthetic nodes, re-evaluation still equals rank() on the residual."""
    rng = random.Random(s)
    table = NodeTable.synthetic(150, seed=s % 7, now=NOW)
    js = _contended_jobs(rng, 120)
    placer = _Placer(js, table, now=NOW, seed=s % 3, candidates=2)
    placer.run()
    assert placer.residual.version > 0
    view = placer.residual.view()
    stats = table_stats(table)
    for j, job in enumerate(js):
        r = rank(job, view, k=len(table), now=NOW, seed=s % 3, stats=stats)
        full = placer._candidates(j, None, full=True)
        assert [(c.index, c.score) for c in full.cands] == [(n.index, n.score) for n in r.top]


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_lazy_explanations_see_the_capacity_left_at_the_jobs_turn(s: int) -> None:
    """An unplaced job's reason, computed on first access, equals rank() on the residual that
    the assignments placed before it leave (rebuilt from scratch)."""
    inst = random_instance(random.Random(s))
    table = NodeTable.from_nodes(inst.fleet(), now=TINY_NOW)
    plan = place(inst.jobs, table, now=TINY_NOW)
    assert not any(u.detail.computed for u in plan.unplaced)
    turn = {j: t for t, j in enumerate(plan.order)}
    for u in plan.unplaced:
        before = Residual(table)
        for a in plan.assignments:
            if turn[a.job_index] < turn[u.job_index]:
                for rep in a.replicas:
                    before.reserve(plan.jobs[a.job_index], rep.node_index, rep.gpu_indices)
        job = plan.jobs[u.job_index]
        expl = rank(job, before.view(), k=0, now=TINY_NOW, stats=table_stats(table)).explanation
        assert u.reason.endswith(expl.summary())
        assert u.rejected == expl.rejected
        assert u.explanation.feasible == expl.feasible
        assert u.detail.computed


def test_view_at_rebuilds_each_past_residual_bit_for_bit() -> None:
    """view_at(v) equals the residual right after the v-th reservation, for every v."""
    table = NodeTable.synthetic(200, seed=1, now=NOW)
    res = Residual(table)
    job = Job(name="x", gpu=GpuReq(count=1))
    job = attrs.evolve(job, cpu=attrs.evolve(job.cpu, min_cores=2))
    rows = [int(r) for r in np.flatnonzero(np.diff(table.gpu_offsets) > 0)[:30]]
    snaps = []
    for row in rows + rows[:5]:
        start, end = int(table.gpu_offsets[row]), int(table.gpu_offsets[row + 1])
        free = [g for g in range(end - start) if not res.gpu_reserved[start + g]]
        res.reserve(job, row, free[:1])
        snaps.append((res.gpu_reserved.copy(), res.cpu_cores.copy(), res.ram_free_gb.copy()))
    for v, (gpus, cores, ram) in enumerate(snaps, start=1):
        past = res.view_at(v)
        assert past.gpu_reserved is not None
        assert np.array_equal(past.gpu_reserved, gpus)
        assert np.array_equal(past.cpu_cores, cores)
        assert np.array_equal(past.ram_free_gb, ram)


def test_a_plan_with_lazy_reasons_survives_pickling() -> None:
    """Pickling a plan carries its unplaced reasons and counts (computed then), not closures."""
    inst = random_instance(random.Random(11))
    jobs = (*inst.jobs, attrs.evolve(inst.jobs[0], name="impossible", gpu=GpuReq(count=64)))
    plan = place(jobs, NodeTable.from_nodes(inst.fleet(), now=TINY_NOW), now=TINY_NOW)
    assert plan.unplaced
    back = pickle.loads(pickle.dumps(plan))
    assert [(u.reason, u.rejected) for u in back.unplaced] == [
        (u.reason, u.rejected) for u in plan.unplaced
    ]
    assert all(u.explanation is None for u in back.unplaced)
