"""Jobs pickle as their class and field values (the Dask survey ships batches of them)."""

from __future__ import annotations

import copy
import pickle

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

import nodeselect.jobs._model as model
from nodeselect.jobs import Alternative, CpuReq, GangReq, GpuReq, Job
from strategies_fleet import jobs


def _with_extras(job: Job, gang: bool, alternatives: int) -> Job:
    alts = tuple(
        Alternative(gpu=GpuReq(count=i + 1), cpu=CpuReq(min_cores=i)) for i in range(alternatives)
    )
    return attrs.evolve(
        job, gang=GangReq(same="country") if gang else job.gang, alternatives=alts, nodes=2
    )


@given(jobs(), st.booleans(), st.integers(0, 2), st.integers(0, pickle.HIGHEST_PROTOCOL))
@settings(max_examples=60, deadline=None)
def test_a_job_survives_pickle_and_copy_equal_field_by_field(
    job: Job, gang: bool, alternatives: int, protocol: int
) -> None:
    job = _with_extras(job, gang, alternatives)
    for back in (pickle.loads(pickle.dumps(job, protocol)), copy.deepcopy(job), copy.copy(job)):
        assert back == job
        assert type(back) is Job
        for a in attrs.fields(Job):  # same values and the same types (1 == 1.0 == True)
            mine, theirs = getattr(back, a.name), getattr(job, a.name)
            assert type(mine) is type(theirs)
            if attrs.has(type(theirs)):
                assert attrs.astuple(mine, recurse=False) == attrs.astuple(theirs, recurse=False)
                assert [type(v) for v in attrs.astuple(mine, recurse=False)] == [
                    type(v) for v in attrs.astuple(theirs, recurse=False)
                ]


def test_every_job_class_pickles_by_its_fields() -> None:
    """A class added to the job model without the field-wise pickling would fall back to attrs'
    slower per-object state dict: each one reduces to (its class, its field values)."""
    found = (getattr(model, n) for n in model.__all__)
    classes = [c for c in found if isinstance(c, type) and attrs.has(c)]
    assert {c.__name__ for c in classes} >= {"Job", "GpuReq", "Alternative", "GangReq"}
    for cls in classes:
        obj = cls(name="j") if cls is Job else cls()
        assert obj.__reduce__() == (cls, attrs.astuple(obj, recurse=False))


@attrs.frozen
class _TeamJob(Job):
    """A user's subclass with a field of its own."""

    team: str = "ml"


@given(jobs(), st.integers(0, pickle.HIGHEST_PROTOCOL))
@settings(max_examples=20, deadline=None)
def test_a_subclass_of_job_pickles_as_itself_with_its_own_fields(job: Job, protocol: int) -> None:
    mine = _TeamJob(**attrs.asdict(job, recurse=False), team="search")
    for back in (pickle.loads(pickle.dumps(mine, protocol)), copy.deepcopy(mine)):
        assert type(back) is _TeamJob
        assert back == mine
        assert back.team == "search"
