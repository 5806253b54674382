"""nodeselect.dask.place: candidates surveyed on the cluster, reserved on the driver, and the
plan of the single-machine ``place`` (issue 13, item 5). Dask's synchronous scheduler."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime
from itertools import pairwise

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("distributed")

from nodeselect import NodeTable
from nodeselect.dask import ScaleOutError, Survey, place
from nodeselect.errors import InputError
from nodeselect.jobs import Alternative, CpuReq, Job
from nodeselect.placement import Plan
from nodeselect.placement import place as place_here
from nodeselect.table import Units
from reference_placement import NOW, FleetNode, Instance, random_instance


@attrs.frozen
class NodesShard:
    """A shard given as fetched nodes."""

    nodes: tuple[FleetNode, ...]
    index: int = 0

    @property
    def label(self) -> str:
        return f"test shard {self.index}"

    def build(self, now: datetime, units: Units | None) -> NodeTable:
        return NodeTable.from_nodes(self.nodes, now=now, units=units)


def _facts(plan: Plan) -> tuple[object, ...]:
    """Everything a caller reads from a plan, scores as ``float.hex``."""
    return (
        tuple(
            (
                a.job_name,
                tuple(
                    (r.node_uuid, r.node_index, r.gpu_indices, float(r.score).hex())
                    for r in a.replicas
                ),
                float(a.score).hex(),
            )
            for a in plan.assignments
        ),
        tuple((u.job_name, u.cause, u.reason) for u in plan.unplaced),
        plan.order,
        plan.totals,
        plan.quality,
    )


def _shards(fleet: Sequence[FleetNode], cuts: Sequence[int]) -> list[NodesShard]:
    """The fleet split at ``cuts`` (shards may be empty)."""
    bounds = [0, *sorted(min(c, len(fleet)) for c in cuts), len(fleet)]
    return [NodesShard(tuple(fleet[a:b]), i) for i, (a, b) in enumerate(pairwise(bounds))]


def _tied(inst: Instance) -> Instance:
    """Each node twice (new uuid, same values): ties only the tie key breaks."""
    nodes = [
        attrs.evolve(n, uuid=f"00000000-0000-0000-{c:04x}-{i:012x}")
        for c in range(2)
        for i, n in enumerate(inst.nodes)
    ]
    return Instance(tuple(nodes), inst.jobs)


@given(
    st.integers(0, 2**32 - 1),
    st.lists(st.integers(0, 20), max_size=6),
    st.sampled_from([1, 2, 64]),
    st.integers(0, 3),
    st.booleans(),
)
@settings(max_examples=25, deadline=None)
def test_the_cluster_surveyed_plan_equals_place(
    s: int, cuts: list[int], candidates: int, seed: int, shuffle: bool
) -> None:
    """1-7 shards (empty ones too), heavy ties, any row order on the driver: place's plan."""
    inst = _tied(random_instance(random.Random(s), max_nodes=10, max_jobs=10))
    fleet = inst.fleet()
    with Survey(_shards(fleet, cuts), now=NOW) as survey:
        here_fleet = list(fleet)
        if shuffle:
            random.Random(s).shuffle(here_fleet)
        table = NodeTable.from_nodes(here_fleet, now=NOW, units=survey.units)
        got = place(inst.jobs, table, survey, seed=seed, candidates=candidates, batch_size=3)
    want = place_here(inst.jobs, table, now=NOW, seed=seed, candidates=candidates)
    assert _facts(got) == _facts(want)


def test_a_table_of_another_fleet_is_refused() -> None:
    """The driver's table must be the shards' fleet: another size or other nodes say so."""
    inst = _tied(random_instance(random.Random(3), max_nodes=6, max_jobs=3))
    fleet = inst.fleet()
    with Survey(_shards(fleet, [len(fleet) // 2]), now=NOW) as survey:
        smaller = NodeTable.from_nodes(fleet[:-1], now=NOW, units=survey.units)
        with pytest.raises(ScaleOutError, match="same fleet as the shards"):
            place(inst.jobs, smaller, survey)
        other = random_instance(random.Random(4), max_nodes=6, max_jobs=1).fleet()
        if len(other) == len(fleet):
            table = NodeTable.from_nodes(other, now=NOW, units=survey.units)
            with pytest.raises(ScaleOutError):
                place(inst.jobs, table, survey)


def _with_alternatives(rng: random.Random, jobs: Sequence[Job]) -> tuple[Job, ...]:
    """Give some jobs 2-3 alternatives taken from other random jobs' sections."""
    out = []
    for j in jobs:
        if rng.random() < 0.6:
            others = [rng.choice(jobs) for _ in range(rng.randint(2, 3))]
            alts = tuple(Alternative(gpu=o.gpu, cpu=o.cpu, memory=o.memory) for o in others)
            out.append(attrs.evolve(j, alternatives=alts))
        else:
            out.append(j)
    return tuple(out)


@given(st.integers(0, 2**32 - 1), st.lists(st.integers(0, 20), max_size=4), st.integers(0, 3))
@settings(max_examples=25, deadline=None)
def test_jobs_with_alternatives_are_placed_round_by_round_as_place_does(
    s: int, cuts: list[int], seed: int
) -> None:
    """Each alternative surveyed on the shards, the rounds run on the driver: place's plan,
    each job on the same alternative."""
    inst = random_instance(random.Random(s), max_nodes=10, max_jobs=8)
    jobs = _with_alternatives(random.Random(s + 1), inst.jobs)
    fleet = inst.fleet()
    with Survey(_shards(fleet, cuts), now=NOW) as survey:
        table = NodeTable.from_nodes(fleet, now=NOW, units=survey.units)
        got = place(jobs, table, survey, seed=seed, candidates=2, batch_size=3)
    want = place_here(jobs, table, now=NOW, seed=seed, candidates=2)
    assert _facts(got) == _facts(want)
    assert [a.alternative for a in got.assignments] == [a.alternative for a in want.assignments]
    assert [u.alternative for u in got.unplaced] == [u.alternative for u in want.unplaced]


def test_a_job_moves_on_to_the_alternative_that_fits() -> None:
    """A first alternative no node has leaves the job unplaced in round one; it is placed as
    its second, as place places it."""
    inst = random_instance(random.Random(5), max_nodes=4, max_jobs=1)
    fleet = inst.fleet()
    job = Job(name="a", cpu=CpuReq(min_cores=64), alternatives=(
        Alternative(cpu=CpuReq(min_cores=100_000)), Alternative(cpu=CpuReq())
    ))  # fmt: skip
    with Survey(_shards(fleet, [1]), now=NOW) as survey:
        table = NodeTable.from_nodes(fleet, now=NOW, units=survey.units)
        got = place([job], table, survey)
    assert [a.alternative for a in got.assignments] == [1]
    assert _facts(got) == _facts(place_here([job], table, now=NOW))


def test_an_invalid_alternative_is_an_input_error_naming_it() -> None:
    """An alternative the engine refuses is named with the job's position, before any survey."""
    inst = random_instance(random.Random(5), max_nodes=4, max_jobs=1)
    fleet = inst.fleet()
    bad = Job(name="bad", alternatives=(Alternative(cpu=CpuReq(min_cores=-1)),))
    with Survey(_shards(fleet, []), now=NOW) as survey:
        table = NodeTable.from_nodes(fleet, now=NOW, units=survey.units)
        with pytest.raises(InputError, match=r"alternatives\[0\]") as e:
            place([inst.jobs[0], bad], table, survey)
    assert "jobs[1]" in "".join(getattr(e.value, "__notes__", []))


@pytest.mark.slow
def test_a_local_cluster_survey_places_as_place() -> None:
    """End to end on a real LocalCluster (2 worker processes): 60 contended jobs on 3,000
    synthetic nodes in 4 shards, surveyed on the workers, reserved here: place's plan."""
    from nodeselect.dask import connect, synthetic_shards  # noqa: PLC0415
    from nodeselect.jobs import GpuReq  # noqa: PLC0415

    shards = synthetic_shards(3_000, 4, seed=9)
    rng = random.Random(2)
    jobs = [
        Job(
            name=f"j{i}",
            nodes=1 + (i % 6 == 0),
            gpu=GpuReq(count=rng.choice([1, 2, 4]), min_vram_free_gb=rng.choice([None, 16.0])),
            cpu=CpuReq(min_cores=rng.randint(1, 16)),
        )
        for i in range(60)
    ]
    whole = NodeTable.concat([s.build(NOW, None) for s in shards])
    want = place_here(jobs, whole, now=NOW, candidates=2)
    with connect("local:2") as client, Survey(shards, client=client, now=NOW) as survey:
        got = place(jobs, whole, survey, candidates=2, batch_size=16)
    assert _facts(got) == _facts(want)
