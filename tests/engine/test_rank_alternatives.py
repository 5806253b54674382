"""rank() of a job with ordered alternatives: the first alternative with a feasible node,
ranked exactly as that alternative alone; every earlier one had none."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect.engine import rank, rank_many
from nodeselect.jobs import Alternative, Job
from nodeselect.table import NodeTable
from reference_placement import NOW, random_instance


def _job_with_alternatives(seed: int) -> tuple[NodeTable, Job]:
    """A random tiny fleet and a job whose 1-4 alternatives are random tiny jobs' sections."""
    rng = random.Random(seed)
    inst = random_instance(rng, max_jobs=5)
    alts = tuple(
        Alternative(gpu=j.gpu, cpu=j.cpu, memory=j.memory, disk=j.disk) for j in inst.jobs[:4]
    )
    return NodeTable.from_nodes(inst.fleet(), now=NOW), Job(name="alt", alternatives=alts)


def _shape(r: object) -> tuple[object, ...]:
    return (
        r.feasible,  # type: ignore[attr-defined]
        r.evaluated,  # type: ignore[attr-defined]
        tuple((n.uuid, n.score, n.gpu_indices, tuple(n.terms.items())) for n in r.top),  # type: ignore[attr-defined]
        r.feasible_indices.tolist(),  # type: ignore[attr-defined]
        r.explanation.rejected,  # type: ignore[attr-defined]
    )


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_rank_uses_the_first_feasible_alternative_as_a_plain_job(seed: int) -> None:
    """The ranking equals ranking the chosen alternative alone, no earlier alternative has a
    feasible node, and ``tried`` holds each alternative tried with its own explanation."""
    table, job = _job_with_alternatives(seed)
    choices = job.choices()
    r = rank(job, table, k=3, now=NOW)
    alone = [rank(c, table, k=3, now=NOW) for c in choices]
    feasible = [a.feasible > 0 for a in alone]
    expected = feasible.index(True) if any(feasible) else 0
    assert r.alternative == expected
    assert r.job == choices[expected]
    assert _shape(r) == _shape(alone[expected])
    tried = len(choices) if not any(feasible) else expected + 1
    assert [t.alternative for t in r.tried] == list(range(tried))
    for t, a in zip(r.tried, alone, strict=False):
        assert _shape(t) == _shape(a)


def test_a_job_without_alternatives_has_no_alternative_in_its_ranking() -> None:
    """Plain jobs rank as before: alternative None, nothing tried."""
    table, job = _job_with_alternatives(7)
    r = rank(job.choices()[0], table, k=3, now=NOW)
    assert r.alternative is None
    assert r.tried == ()


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=15, deadline=None)
def test_rank_many_ranks_jobs_with_alternatives_as_rank_does(seed: int) -> None:
    """rank_many over a mix of plain jobs and jobs with alternatives equals rank per job."""
    table, job = _job_with_alternatives(seed)
    jobs = [*job.choices(), job, *job.choices()[:2], job]
    many = rank_many(jobs, table, k=3, now=NOW)
    for j, r in zip(jobs, many, strict=True):
        one = rank(j, table, k=3, now=NOW)
        assert _shape(r) == _shape(one)
        assert (r.alternative, len(r.tried)) == (one.alternative, len(one.tried))
