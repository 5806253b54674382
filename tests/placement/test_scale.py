"""Placement at scale (issue 13, item 5): the bounded survey gives exactly the plan of the
exhaustive one.

The reference is the survey as it was before issue 13, with every per-node fact kept
(feasibility masks, all scores, every GPU group, node mask and whole-table score term cached:
budgets unbounded); the bounded survey keeps none of them (budgets 0), so every stage
recomputes them from the engine. The plans
must agree field for field, scores compared as ``float.hex``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect import InputError
from nodeselect.engine._rank import rank
from nodeselect.jobs._model import (
    Alternative,
    CpuReq,
    DiskReq,
    GangReq,
    GpuReq,
    Job,
    MemoryReq,
    PlacementReq,
)
from nodeselect.placement import _placer
from nodeselect.placement._placer import SurveyedJob, _Placer, place
from nodeselect.placement._plan import Plan
from nodeselect.table._table import NodeTable
from reference_placement import NOW, Instance, TinyNode, check_plan, random_instance

UNBOUNDED = 1 << 62


@contextmanager
def _budgets(size: int) -> Iterator[None]:
    """Every survey budget set to ``size`` bytes / floats for the duration; unbounded, every
    cacheable score term is computed over the whole table (as before issue 13), else only
    from the third job asking for it."""
    names = ("CACHE_BYTES", "KEEP_BITS", "KEEP_SCORES", "SHARE_TERMS_FROM")
    saved = {n: getattr(_placer, n) for n in names}
    try:
        for n in names[:3]:
            setattr(_placer, n, size)
        _placer.SHARE_TERMS_FROM = 1 if size == UNBOUNDED else 3
        yield
    finally:
        for n, v in saved.items():
            setattr(_placer, n, v)


def _facts(plan: Plan) -> tuple[object, ...]:
    """Everything a caller can read from a plan, scores as ``float.hex``."""
    return (
        tuple(
            (
                a.job_name,
                a.job_index,
                a.priority,
                tuple(
                    (r.node_index, r.node_uuid, r.gpu_indices, float(r.score).hex())
                    for r in a.replicas
                ),
                float(a.score).hex(),
            )
            for a in plan.assignments
        ),
        tuple((u.job_name, u.cause, u.reason, u.rejected) for u in plan.unplaced),
        plan.order,
        plan.totals,
        plan.quality,
    )


def _both(jobs: Sequence[Job], table: NodeTable, **kw: object) -> tuple[Plan, Plan]:
    with _budgets(UNBOUNDED):
        reference = place(jobs, table, now=NOW, **kw)  # type: ignore[arg-type]
    with _budgets(0):
        bounded = place(jobs, table, now=NOW, **kw)  # type: ignore[arg-type]
    return reference, bounded


def _with_ties(inst: Instance, copies: int, seed: int) -> Instance:
    """The instance with each node repeated ``copies`` times (new uuids, same values), and
    some jobs limited to some countries (a constraint placement never changes)."""
    nodes = [
        attrs.evolve(n, uuid=f"00000000-0000-0000-{c:04x}-{i:012x}")
        for c in range(copies)
        for i, n in enumerate(inst.nodes)
    ]
    rng = random.Random(seed)
    where = ((), (), ("DE",), ("DE", "US"))
    jobs = tuple(
        attrs.evolve(j, placement=PlacementReq(countries=rng.choice(where))) for j in inst.jobs
    )
    return Instance(tuple(nodes), jobs)


instances = st.builds(
    lambda s, copies: _with_ties(
        random_instance(random.Random(s), max_nodes=10, max_jobs=10), copies, s
    ),
    st.integers(0, 2**32 - 1),
    st.integers(1, 3),
)


@given(instances, st.sampled_from([1, 2, 64]), st.integers(0, 3), st.booleans())
@settings(max_examples=40, deadline=None)
def test_the_bounded_survey_gives_the_exhaustive_surveys_plan(
    inst: Instance, candidates: int, seed: int, repair: bool
) -> None:
    """With no per-node fact kept, placement equals the exhaustive survey's, heavy ties too."""
    fleet = inst.fleet()
    table = NodeTable.from_nodes(fleet, now=NOW)
    reference, bounded = _both(inst.jobs, table, seed=seed, candidates=candidates, repair=repair)
    assert _facts(bounded) == _facts(reference)
    assert check_plan(inst.nodes, inst.jobs, bounded) == []


def _jobs(n: int, seed: int) -> list[Job]:
    """Varied jobs (every requirement distinct), 1 in 5 a gang of 2-4 nodes."""
    rng = random.Random(seed)
    models = (("RTX-4090",), ("RTX-3090", "RTX-4090"), ("A100-80GB", "H100-80GB"), ("T4",), ())
    out = []
    for i in range(n):
        gang = i % 5 == 0
        out.append(
            Job(
                name=f"job-{i}",
                nodes=rng.randint(2, 4) if gang else 1,
                priority=rng.choice([0, 0, 1]),
                gpu=GpuReq(
                    models=rng.choice(models),
                    count=rng.choice([1, 2, 4]),
                    min_vram_free_gb=round(rng.uniform(4, 30), 1),
                ),
                cpu=CpuReq(min_cores=rng.randint(1, 24)),
                memory=MemoryReq(min_free_gb=round(rng.uniform(1, 64), 1)),
                disk=DiskReq(min_free_gb=rng.choice([None, 100.0])),
                placement=PlacementReq(
                    min_reputation=rng.choice([None, 40.0, 70.0]),
                    continents=rng.choice([(), (), ("EU",), ("NA", "AS")]),
                ),
                gang=GangReq(
                    same=rng.choice([None, "country"]) if gang else None,
                    distinct=rng.choice(["node", "operator"]) if gang else "node",
                ),
            )
        )
    return out


@pytest.mark.parametrize("candidates", [1, 8])
def test_a_contended_synthetic_batch_is_placed_identically(candidates: int) -> None:
    """80 varied jobs on 400 synthetic nodes (contended: widening, repair): the same plan."""
    table = NodeTable.synthetic(400, seed=4, now=NOW)
    jobs = _jobs(80, seed=candidates)
    reference, bounded = _both(jobs, table, candidates=candidates)
    assert _facts(bounded) == _facts(reference)
    assert bounded.unplaced, "the batch should be contended"


def test_the_bounded_survey_keeps_no_per_node_fact() -> None:
    """With budgets 0, no survey holds a feasibility mask or all scores, and the cache is empty."""
    table = NodeTable.synthetic(300, seed=4, now=NOW)
    with _budgets(0):
        placer = _Placer(_jobs(20, seed=1), table, now=NOW, seed=0, candidates=4)
    assert all(s.bits is None and s.all_scores is None for s in placer.surveys)
    assert placer.cache.held() == 0
    assert all(len(s.rows) <= 4 * 4 for s in placer.surveys)


def test_the_cache_never_holds_more_than_its_budget() -> None:
    """The survey's shared cache drops its oldest entries beyond ``CACHE_BYTES``."""
    table = NodeTable.synthetic(2000, seed=4, now=NOW)
    limit = 200_000
    with _budgets(UNBOUNDED):
        unbounded = _Placer(_jobs(30, seed=2), table, now=NOW, seed=0, candidates=4)
    assert unbounded.cache.held() > limit  # the budget bites
    with _budgets(limit):
        placer = _Placer(_jobs(30, seed=2), table, now=NOW, seed=0, candidates=4)
    assert 0 < placer.cache.held() <= limit


def test_a_tied_fleet_keeps_the_total_orders_tie_break() -> None:
    """Twelve identical nodes, one candidate kept per job: the order of the ties is the engine's."""
    node = TinyNode(
        uuid="", gpus=(), cores=8, ram_free_gb=64, disk_free_gb=500, operator="op-1", country="DE"
    )
    nodes = tuple(attrs.evolve(node, uuid=f"00000000-0000-0000-0000-{i:012x}") for i in range(12))
    jobs = tuple(
        Job(name=f"j{i}", cpu=CpuReq(min_cores=3 + i % 3), nodes=1 + i % 2) for i in range(8)
    )
    table = NodeTable.from_nodes(Instance(nodes, jobs).fleet(), now=NOW)
    for seed in range(3):
        reference, bounded = _both(jobs, table, candidates=1, seed=seed)
        assert _facts(bounded) == _facts(reference)


@given(instances, st.integers(2, 5), st.sampled_from([1, 64]), st.booleans())
@settings(max_examples=25, deadline=None)
def test_a_threaded_survey_gives_the_same_plan_as_one_thread(
    inst: Instance, workers: int, candidates: int, bounded: bool
) -> None:
    """``workers=N`` surveys in threads; the plan equals one thread's, heavy ties too."""
    table = NodeTable.from_nodes(inst.fleet(), now=NOW)
    with _budgets(UNBOUNDED):
        one = place(inst.jobs, table, now=NOW, candidates=candidates)
    with _budgets(0 if bounded else UNBOUNDED):
        many = place(inst.jobs, table, now=NOW, candidates=candidates, workers=workers)
    assert _facts(many) == _facts(one)


def test_threads_on_a_contended_synthetic_batch_give_the_same_plan() -> None:
    """80 varied jobs on 400 synthetic nodes, surveyed by 3 threads with a tiny cache each."""
    table = NodeTable.synthetic(400, seed=4, now=NOW)
    jobs = _jobs(80, seed=3)
    one = place(jobs, table, now=NOW, candidates=4)
    with _budgets(50_000):
        many = place(jobs, table, now=NOW, candidates=4, workers=3)
    assert _facts(many) == _facts(one)


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_workers_must_be_a_whole_number_of_threads(workers: object) -> None:
    """A bad ``workers`` is an input error naming the argument and what is accepted."""
    table = NodeTable.synthetic(10, seed=4, now=NOW)
    with pytest.raises(InputError, match=r"workers: .* must be a whole number of threads >= 1"):
        place([Job(name="a")], table, now=NOW, workers=workers)  # type: ignore[arg-type]


def _surveyed(jobs: Sequence[Job], table: NodeTable, seed: int, candidates: int) -> list:
    """Each job's survey as ``rank()`` gives it (what a cluster would compute); for a job
    with alternatives, one per alternative."""
    out: list = []
    for job in jobs:
        each = []
        for choice in job.choices():
            k = max(candidates, candidates * job.nodes)
            r = rank(choice, table, k=k, now=NOW, seed=seed)
            rows = np.array([n.index for n in r.top], dtype=np.int64)
            scores = np.array([n.score for n in r.top], dtype=np.float64)
            each.append(SurveyedJob(r.feasible, rows, scores))
        out.append(tuple(each) if job.alternatives else each[0])
    return out


@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 2, 64]), st.integers(0, 3))
@settings(max_examples=25, deadline=None)
def test_a_survey_made_elsewhere_places_alternatives_round_by_round(
    s: int, candidates: int, seed: int
) -> None:
    """Jobs with alternatives, each alternative surveyed by rank(): place's plan, each job on
    the same alternative."""
    rng = random.Random(s)
    inst = random_instance(rng, max_nodes=10, max_jobs=8)
    jobs = [
        attrs.evolve(
            j,
            alternatives=tuple(
                Alternative(gpu=o.gpu, cpu=o.cpu) for o in rng.choices(inst.jobs, k=2)
            ),
        )
        if rng.random() < 0.6
        else j
        for j in inst.jobs
    ]
    table = NodeTable.from_nodes(inst.fleet(), now=NOW)
    want = place(jobs, table, now=NOW, seed=seed, candidates=candidates)
    given_ = _surveyed(jobs, table, seed, candidates)
    got = place(jobs, table, now=NOW, seed=seed, candidates=candidates, surveyed=given_)
    assert _facts(got) == _facts(want)
    assert [a.alternative for a in got.assignments] == [a.alternative for a in want.assignments]


@given(instances, st.sampled_from([1, 2, 64]), st.integers(0, 3))
@settings(max_examples=25, deadline=None)
def test_a_survey_made_elsewhere_gives_the_same_plan(
    inst: Instance, candidates: int, seed: int
) -> None:
    """``surveyed=`` (each job's top K' from rank()) places exactly as ``place`` alone."""
    table = NodeTable.from_nodes(inst.fleet(), now=NOW)
    want = place(inst.jobs, table, now=NOW, seed=seed, candidates=candidates)
    given_ = _surveyed(inst.jobs, table, seed, candidates)
    got = place(inst.jobs, table, now=NOW, seed=seed, candidates=candidates, surveyed=given_)
    assert _facts(got) == _facts(want)


def test_a_made_elsewhere_survey_of_a_contended_batch_gives_the_same_plan() -> None:
    """80 varied jobs on 400 synthetic nodes, surveyed by rank(): the same plan as place."""
    table = NodeTable.synthetic(400, seed=4, now=NOW)
    jobs = _jobs(80, seed=5)
    want = place(jobs, table, now=NOW, candidates=2)
    got = place(jobs, table, now=NOW, candidates=2, surveyed=_surveyed(jobs, table, 0, 2))
    assert _facts(got) == _facts(want)
    assert got.totals.stranded_gpus == want.totals.stranded_gpus


def test_a_survey_that_does_not_match_the_batch_is_an_input_error() -> None:
    """A survey of the wrong length, or with rows outside the table, says what was expected."""
    table = NodeTable.synthetic(10, seed=4, now=NOW)
    jobs = [Job(name="a"), Job(name="b")]
    good = _surveyed(jobs, table, 0, 4)
    with pytest.raises(InputError, match=r"one item per job \(2\), got 1"):
        place(jobs, table, now=NOW, surveyed=good[:1])
    with pytest.raises(InputError, match=r"surveyed\[0\]: expected a SurveyedJob, got tuple"):
        place(jobs, table, now=NOW, surveyed=[(good[0],), good[1]])
    alt = [Job(name="a", alternatives=(Alternative(), Alternative())), jobs[1]]
    with pytest.raises(InputError, match=r"surveyed\[0\]: job 'a' has 2 alternatives: expected"):
        place(alt, table, now=NOW, surveyed=good)
    bad = [good[0], SurveyedJob(1, np.array([10]), np.array([0.5]))]
    with pytest.raises(InputError, match=r"surveyed\[1\]: rows outside the table's 0..9"):
        place(jobs, table, now=NOW, surveyed=bad)


def test_the_bounded_store_counts_a_replaced_entry_once() -> None:
    """Putting a key twice holds its latest size once; the oldest entries go past the limit."""
    store: _placer._Bounded[int] = _placer._Bounded(100)
    store.put(("a",), 1, 60)
    store.put(("a",), 2, 50)
    assert (store.used, store.get(("a",))) == (50, 2)
    store.put(("b",), 3, 40)
    store.get(("a",))  # "a" is now the most recently used
    store.put(("c",), 4, 30)
    assert store.get(("b",)) is None
    assert (store.get(("a",)), store.get(("c",)), store.used) == (2, 4, 80)
    store.put(("d",), 5, 101)  # larger than the limit: not kept
    assert store.get(("d",)) is None
    assert store.used == 80
