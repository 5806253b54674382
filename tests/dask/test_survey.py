"""nodeselect.dask gives, bit for bit, the single-machine ``rank_many`` on the whole fleet.

Every test here runs on Dask's synchronous scheduler (in process, fast) except the one marked
for a real ``distributed.LocalCluster`` of two worker processes.
"""

from __future__ import annotations

import collections
import itertools
import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import uuid as uuidlib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import attrs
import httpx
import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("distributed")

from dask.base import compute as dask_compute
from dask.core import get_dependencies
from dask.delayed import delayed

import nodeselect.dask as nd
from nodeselect import Client, NodeQuery, NodeTable, SnapshotError, rank_many
from nodeselect.dask import (
    _BATCHES,
    _IN_FLIGHT,
    JobResult,
    ScaleOutError,
    SnapshotShard,
    Survey,
    _batch,
    _Cluster,
    _code,
    _merge,
    _pack,
    _Part,
    _rank_tile,
    _results,
    _Root,
    _Synchronous,
    _Tile,
    _tops,
    _unpack,
    connect,
    fleet_units,
    merge_tops,
    result_rows,
    snapshot_shards,
    synthetic_shards,
    write_results,
)
from nodeselect.engine import RankedNode, merge_top, rank, table_stats
from nodeselect.errors import InputError
from nodeselect.fetch import load_snapshot, save_sharded_snapshot
from nodeselect.jobs import Alternative, CpuReq, GpuReq, Job, Preferences
from nodeselect.sim import DIALECTS, generate_fleet
from nodeselect.sim._query import parse_params
from nodeselect.table import Units
from strategies_fleet import NOW, FleetNode, fleets, jobs

SETTINGS = settings(max_examples=10, deadline=None)


@attrs.frozen
class NodesShard:
    """A shard given as fetched nodes (the tests' ShardSource)."""

    nodes: tuple[FleetNode, ...]
    index: int = 0

    @property
    def label(self) -> str:
        return f"test shard {self.index}"

    def build(self, now: datetime, units: Units | None) -> NodeTable:
        return NodeTable.from_nodes(self.nodes, now=now, units=units)


def key(top) -> list[tuple[object, ...]]:
    """Everything a ranked node says but its row, scores and terms as float.hex."""
    return [
        (
            r.uuid,
            r.name,
            r.score.hex(),
            sorted((n, v.hex()) for n, v in r.terms.items()),
            r.gpu_indices,
            r.tie_key,
        )
        for r in top
    ]


def assert_same(got: Sequence[JobResult], want, jobs: Sequence[Job]) -> None:
    assert len(got) == len(want) == len(jobs)
    for i, (g, w, job) in enumerate(zip(got, want, jobs, strict=True)):
        assert (g.index, g.job) == (i, job.name)
        assert g.feasible == w.feasible
        assert key(g.top) == key(w.top)
        assert g.alternative == w.alternative


def split(nodes: Sequence[FleetNode], cuts: Sequence[int]) -> list[NodesShard]:
    bounds = [0, *sorted(cuts), len(nodes)]
    return [NodesShard(tuple(nodes[a:b]), i) for i, (a, b) in enumerate(itertools.pairwise(bounds))]


@st.composite
def tied_fleets(draw: st.DrawFn) -> list[FleetNode]:
    """A fleet where most nodes have twins: equal documents under other uuids (equal scores,
    so the tie key decides), in a shuffled order."""
    base = draw(fleets(max_size=10))
    out = []
    for node in base:
        out.append(node)
        for _ in range(draw(st.integers(0, 3))):
            twin = msgspec.structs.replace(
                node.lean, uuid=str(uuidlib.UUID(int=draw(st.integers(0, 2**128 - 1))))
            )
            out.append(FleetNode(twin, node.facts))
    uuids = [n.lean.uuid for n in out]
    if len(set(uuids)) != len(uuids):
        out = list({n.lean.uuid: n for n in out}.values())
    return draw(st.permutations(out))


@st.composite
def sharded(draw: st.DrawFn) -> tuple[list[FleetNode], list[NodesShard]]:
    """A tied fleet cut into 1..17 shards (empty shards included)."""
    fleet = draw(tied_fleets())
    count = draw(st.integers(1, 17))
    cuts = draw(st.lists(st.integers(0, len(fleet)), min_size=count - 1, max_size=count - 1))
    return fleet, split(fleet, cuts)


@SETTINGS
@given(sharded(), st.lists(jobs(), min_size=1, max_size=8), st.data())
def test_survey_equals_rank_many_on_the_whole_fleet(fs, job_list, data) -> None:
    """Any shards (1-17, empty ones, twins everywhere), batches and fan-in: the survey's results
    are rank_many's on the whole fleet, scores and terms equal as float.hex."""
    fleet, shards = fs
    k, seed = data.draw(st.integers(0, 8)), data.draw(st.integers(0, 3))
    batch, fan_in = data.draw(st.integers(1, 5)), data.draw(st.integers(2, 5))
    whole = NodeTable.from_nodes(fleet, now=NOW)
    want = rank_many(job_list, whole, k=k, now=NOW, seed=seed)
    with Survey(shards, now=NOW, units=whole.units) as s:
        got = list(s.run(job_list, k=k, seed=seed, batch_size=batch, fan_in=fan_in))
        assert s.nodes == len(whole)
    assert_same(got, want, job_list)


@st.composite
def with_alternatives(draw: st.DrawFn) -> Job:
    """A job with 1-3 alternatives, each replacing some sections with another job's (so some
    fit nowhere, some somewhere), or a plain job."""
    base = draw(jobs())
    if draw(st.booleans()):
        return base
    alts = []
    if draw(st.booleans()):  # a first choice no node has: a later one is chosen, if any fits
        alts.append(Alternative(gpu=GpuReq(count=64)))
    for _ in range(draw(st.integers(1, 3))):
        other = draw(jobs())
        alts.append(
            Alternative(
                gpu=draw(st.sampled_from([None, other.gpu, GpuReq()])),
                cpu=draw(st.sampled_from([None, other.cpu, CpuReq()])),
                memory=draw(st.sampled_from([None, other.memory])),
            )
        )
    return attrs.evolve(base, alternatives=tuple(alts))


@settings(max_examples=25, deadline=None)
@given(sharded(), st.lists(with_alternatives(), min_size=1, max_size=6), st.data())
def test_jobs_with_alternatives_are_surveyed_as_rank_many_ranks_them(fs, job_list, data) -> None:
    """A job with alternatives gets, over the whole fleet, the alternative rank_many chooses
    (the first with a feasible node, else the first), with its nodes bit for bit, in any
    batches."""
    fleet, shards = fs
    k, batch = data.draw(st.integers(0, 5)), data.draw(st.integers(1, 4))
    whole = NodeTable.from_nodes(fleet, now=NOW)
    want = rank_many(job_list, whole, k=k, now=NOW)
    with Survey(shards, now=NOW, units=whole.units) as s:
        got = list(s.run(job_list, k=k, batch_size=batch))
    assert_same(got, want, job_list)


def test_a_job_gets_its_first_alternative_that_fits_somewhere_in_the_fleet() -> None:
    """An alternative no shard fits is passed over for the next one some shard fits; a job
    none of whose alternatives fits keeps its first, with no node."""
    shards = synthetic_shards(3000, 3, seed=2)
    whole = NodeTable.concat([s.build(NOW, None) for s in shards])
    fits = Job(
        name="fits",
        alternatives=(Alternative(gpu=GpuReq(count=64)), Alternative(gpu=GpuReq(count=1))),
    )
    never = Job(
        name="never",
        alternatives=(Alternative(gpu=GpuReq(count=64)), Alternative(gpu=GpuReq(count=65))),
    )
    with Survey(shards, now=NOW, units=whole.units) as s:
        got = list(s.run([fits, never, JOBS[0]], k=3, batch_size=2))
    assert [r.alternative for r in got] == [1, 0, None]
    assert got[0].feasible > 0
    assert (got[1].feasible, got[1].top) == (0, ())
    assert_same(got, rank_many([fits, never, JOBS[0]], whole, k=3, now=NOW), [fits, never, JOBS[0]])


def test_an_invalid_alternative_is_refused_before_anything_is_ranked() -> None:
    """An alternative the engine refuses is an InputError naming the job's position and the
    alternative, as rank names it."""
    bad = Job(name="bad", alternatives=(Alternative(gpu=GpuReq(count=1, models=("NOPE-9",))),))
    with Survey(synthetic_shards(1000, 2, seed=1), now=NOW) as s, pytest.raises(InputError) as e:
        s.run([JOBS[0], bad])
    assert "alternatives[0]" in str(e.value)
    assert "jobs[1]" in "".join(getattr(e.value, "__notes__", []))


@SETTINGS
@given(sharded(), st.lists(jobs(), min_size=1, max_size=4))
def test_inferred_units_are_the_whole_fleets(fs, job_list) -> None:
    """Without units given, the survey decides the whole fleet's units from the shards' unit
    tallies, whatever each shard decided alone (it refused when shards disagreed or were
    thin), and ranks like rank_many on the whole fleet."""
    fleet, shards = fs
    whole = NodeTable.from_nodes(fleet, now=NOW)
    with Survey(shards, now=NOW) as s:
        assert [(d.unit, d.evidence, d.agreeing) for d in s.units.decisions()] == [
            (d.unit, d.evidence, d.agreeing) for d in whole.units.decisions()
        ]
        got = list(s.run(job_list, k=5))
    assert_same(got, rank_many(job_list, whole, k=5, now=NOW), job_list)


def test_a_fleet_of_every_dialect_decides_its_units_on_any_shards() -> None:
    """Every simulator dialect's nodes in one fleet, cut in 6 shards that each decide other
    units than the whole (or none): the survey decides the whole's and ranks as rank_many."""
    nodes = [n for k, d in enumerate(sorted(DIALECTS)) for n in sim_nodes(40, d, seed=30 + k)]
    whole = NodeTable.from_nodes(nodes, now=NOW)
    shards = split(nodes, [len(nodes) * i // 6 for i in range(1, 6)])
    alone = [NodeTable.from_nodes(list(s.nodes), now=NOW).units for s in shards]
    wanted = whole.units.decisions()
    assert any(a.unit != w.unit for u in alone for a, w in zip(u.decisions(), wanted, strict=True))
    with Survey(shards, now=NOW) as s:
        assert [d.unit for d in s.units.decisions()] == [d.unit for d in whole.units.decisions()]
        got = list(s.run(JOBS, k=6, batch_size=5))
    assert_same(got, rank_many(JOBS, whole, k=6, now=NOW), JOBS)


def sim_nodes(n: int, dialect: str, seed: int) -> list[FleetNode]:
    """The decodable documents of a simulated fleet, with the facts the server knows."""
    from nodeselect.documents import ProvedFacts, decode_node  # noqa: PLC0415

    fleet = generate_fleet(n, seed=seed, now=NOW, dialect=DIALECTS[dialect])
    enc = msgspec.json.Encoder()
    out = []
    for doc in fleet.documents():
        try:
            lean = decode_node(enc.encode(doc))
        except msgspec.ValidationError:
            continue
        h = fleet.hidden(lean.uuid)
        facts = ProvedFacts(
            status=h.status,
            compliance_tags=h.compliance_tags,
            continent=h.continent,
            country=h.country,
            subdivision=h.subdivision,
        )
        out.append(FleetNode(lean, facts))
    return out


JOBS = [
    Job(
        name=f"job-{i}",
        gpu=GpuReq(count=i % 3, min_vram_free_gb=float(4 * (i % 5)) if i % 3 else None),
        cpu=CpuReq(min_cores=2 * (i % 4)),
        preferences=Preferences(weights={"idle": float(i % 2), "fit": 1.0}),
    )
    for i in range(12)
]


@pytest.mark.parametrize("dialect", ["default", "ram-mib-vram-bytes", "numeric-strings", "vram-gb"])
def test_simulated_fleets_decide_their_units_on_the_shards(dialect) -> None:
    """A simulated fleet in each dialect, cut in 5 shards, decides the whole fleet's units from
    the shards' decisions and ranks like rank_many on the whole."""
    nodes = sim_nodes(300, dialect, seed=5)
    whole = NodeTable.from_nodes(nodes, now=NOW)
    shards = split(nodes, [60, 120, 180, 240])
    with Survey(shards, now=NOW) as s:
        assert [d.unit for d in s.units.decisions()] == [d.unit for d in whole.units.decisions()]
        got = list(s.run(JOBS, k=6, batch_size=5))
    assert_same(got, rank_many(JOBS, whole, k=6, now=NOW), JOBS)


def _fetched(n: int, seed: int = 4, dialect: str = "default"):
    """A simulated fleet of ``n`` nodes, fetched (a ``FetchResult``, as snapshots save)."""
    sim = generate_fleet(n, seed=seed, now=NOW, dialect=DIALECTS[dialect])

    def handler(request: httpx.Request) -> httpx.Response:
        q = parse_params(dict(request.url.params))
        ids, total = sim.select(q)
        tail = b'],"limit":%d,"page":%d,"total":%d}' % (q.limit, q.page, total)
        return httpx.Response(200, content=b'{"data":[' + b",".join(sim.page_bytes(ids)) + tail)

    with Client("http://test", transport=httpx.MockTransport(handler)) as c:
        return c.fetch(NodeQuery())


def test_a_sharded_snapshot_surveys_like_the_fleet_it_holds(tmp_path) -> None:
    """Shard files written by save_sharded_snapshot, built on the workers, rank like the
    whole snapshot loaded on one machine."""
    result = _fetched(240)
    save_sharded_snapshot(tmp_path, result, 3)
    shards = snapshot_shards(tmp_path)
    assert [s.nodes for s in shards] == [80, 80, 80] or sum(s.nodes for s in shards) == len(
        result.nodes
    )
    whole = NodeTable.from_nodes(load_snapshot(tmp_path).nodes, now=NOW)
    with Survey(shards, now=NOW) as s:
        got = list(s.run(JOBS, k=4))
    assert_same(got, rank_many(JOBS, whole, k=4, now=NOW), JOBS)


def test_snapshot_shards_keep_an_absolute_path_and_name_the_worker_that_failed(
    tmp_path, monkeypatch
) -> None:
    """Workers started elsewhere read the shards themselves: a relative snapshot path is made
    absolute here (a worker resolved it from its own directory, and failed), and a shard a
    worker cannot read names that worker and says every worker needs the path; read here
    (the synchronous scheduler), the error is the snapshot's own."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fleet").mkdir()
    save_sharded_snapshot(tmp_path / "fleet", _fetched(60), 2)
    shards = snapshot_shards("fleet")
    assert all(s.path == tmp_path / "fleet" for s in shards)
    gone = SnapshotShard(tmp_path / "gone", 0, 5)
    with pytest.raises(SnapshotError, match="cannot read") as here:
        gone.build(NOW, None)
    assert "worker" not in str(here.value)
    monkeypatch.setattr(nd, "_worker_address", lambda: "tcp://10.0.0.7:4000")
    with pytest.raises(SnapshotError, match="cannot read") as there:
        gone.build(NOW, None)
    assert "on the Dask worker tcp://10.0.0.7:4000: every worker reads its shards" in str(
        there.value
    )
    monkeypatch.undo()
    assert nd._worker_address() is None  # (not in a worker; the slow test asks workers)


def test_synthetic_shards_cover_the_nodes_with_distinct_uuids() -> None:
    """synthetic_shards splits n rows into shards differing by at most one, uuids distinct."""
    shards = synthetic_shards(1001, 7, seed=2)
    sizes = [s.nodes for s in shards]
    assert sum(sizes) == 1001
    assert max(sizes) - min(sizes) <= 1
    tables = [s.build(NOW, None) for s in shards]
    uuids = [u for t in tables for u in t.uuid.tolist()]
    assert len(set(uuids)) == 1001


def test_merge_tops_is_the_engines_merge_top() -> None:
    """merge_tops of shards' top lists equals merge_top of their rankings."""
    t = NodeTable.synthetic(3000, seed=9, now=NOW)
    parts = [t.take(range(1000)), t.take(range(1000, 3000))]
    stats = parts[0] and None
    rankings = [rank(JOBS[4], p, k=9, now=NOW, stats=stats) for p in parts]
    assert merge_tops([r.top for r in rankings], 9) == merge_top(rankings, 9)


def test_a_shard_with_other_units_is_refused_naming_it() -> None:
    """Shards deciding RAM in bytes and in MiB are refused, naming the quantity and shards."""
    from nodeselect.table import UnitDecision  # noqa: PLC0415

    a = Units(ram=UnitDecision("ram", "bytes", "x", 10, 10))
    b = Units(ram=UnitDecision("ram", "MiB", "x", 10, 9))
    with pytest.raises(
        ScaleOutError, match=r"ram telemetry unit differently \(bytes in s0, MiB in s1"
    ):
        fleet_units([a, b], ["s0", "s1"])


def test_thin_evidence_in_one_shard_leaves_the_fleet_undecided() -> None:
    """A shard undecided on too few (but agreeing) values blocks a merged decision: the union
    might decide, so the survey refuses rather than guess."""
    from nodeselect.table import UnitDecision  # noqa: PLC0415

    a = Units(ram=UnitDecision("ram", None, "conflicting evidence", 10, 5))
    b = Units(ram=UnitDecision("ram", None, "some reason", 2, 2))
    with pytest.raises(ScaleOutError, match="ram telemetry unit"):
        fleet_units([a, b])
    assert fleet_units([a, a]).ram.unit is None


def test_a_shard_without_evidence_has_no_say() -> None:
    """A shard with no RAM evidence (undecided) does not block the others' decision."""
    from nodeselect.table import UnitDecision  # noqa: PLC0415

    a = Units(ram=UnitDecision("ram", "MiB", "x", 10, 10))
    b = Units(ram=UnitDecision("ram", None, "no telemetry", 0, 0))
    merged = fleet_units([b, a])
    assert merged.ram.unit == "MiB"
    assert merged.ram.evidence == 10


def test_results_are_written_as_json_lines_that_keep_every_bit(tmp_path) -> None:
    """write_results writes one row per ranked node (scores read back equal as float.hex) and
    one null row for a job no node fits."""
    shards = synthetic_shards(4000, 3, seed=1)
    none_fit = Job(name="nothing", gpu=GpuReq(count=64))
    jobs_ = [*JOBS[:3], none_fit]
    with Survey(shards, now=NOW) as s:
        results = list(s.run(jobs_, k=3))
        n = write_results(iter(results), tmp_path / "r.jsonl")
    assert n == 4
    rows = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    ranked = [r for r in rows if r["rank"] is not None]
    want = [
        (res.job, i + 1, node.uuid, node.score.hex())
        for res in results
        for i, node in enumerate(res.top)
    ]
    assert [(r["job"], r["rank"], r["node"], float(r["score"]).hex()) for r in ranked] == want
    assert rows[-1] == {
        "job": "nothing",
        "job_index": 3,
        "rank": None,
        "node": None,
        "score": None,
        "terms": None,
        "feasible": 0,
        "alternative": None,
    }
    first = ranked[0]
    assert sum(first["terms"].values()) == pytest.approx(first["score"])


def test_results_as_parquet_when_pyarrow_is_there(tmp_path) -> None:
    """A .parquet path writes the same rows as Parquet."""
    pq = pytest.importorskip("pyarrow.parquet")
    with Survey(synthetic_shards(2000, 2, seed=1), now=NOW) as s:
        results = list(s.run(JOBS[:3], k=2))
    write_results(results, tmp_path / "r.parquet")
    table = pq.read_table(tmp_path / "r.parquet").to_pylist()
    assert [(r["job"], r["node"], r["score"]) for r in table] == [
        (res.job, node.uuid, node.score) for res in results for node in res.top
    ]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_results_that_stop_midway_are_all_written(tmp_path, suffix) -> None:
    """Results that raise midway (a lost scheduler): the error goes on, and the file holds
    every job given before it, Parquet too (its pending rows were dropped: it writes every
    1,000 jobs)."""
    if suffix == ".parquet":
        pq = pytest.importorskip("pyarrow.parquet")
    with Survey(synthetic_shards(2000, 2, seed=1), now=NOW) as s:
        results = list(s.run(JOBS[:4], k=2))

    def stopping():
        yield from results[:3]
        raise RuntimeError("scheduler-connection-lost")

    with pytest.raises(RuntimeError, match="scheduler-connection-lost"):
        write_results(stopping(), tmp_path / f"r{suffix}")
    if suffix == ".parquet":
        rows = pq.read_table(tmp_path / f"r{suffix}").to_pylist()
    else:
        rows = [json.loads(line) for line in (tmp_path / f"r{suffix}").read_text().splitlines()]
    assert sorted({r["job_index"] for r in rows}) == [0, 1, 2]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_a_file_that_cannot_be_written_is_a_results_write_error(tmp_path, suffix) -> None:
    """The file failing (a full disk: a link to /dev/full) is a ResultsWriteError naming it;
    an OSError of the results themselves (a connection to the scheduler reset) goes on as it
    is, not taken for the file's (the CLI exits 5 for the one, 3 for the other)."""
    if suffix == ".parquet":
        pytest.importorskip("pyarrow.parquet")
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    with Survey(synthetic_shards(2000, 2, seed=1), now=NOW) as s:
        results = list(s.run(JOBS[:2], k=2))
    full = tmp_path / f"full{suffix}"
    full.symlink_to("/dev/full")
    with pytest.raises(nd.ResultsWriteError, match=f"{full}: cannot write the results: "):
        write_results(results * 400, full)

    def reset():
        yield results[0]
        raise ConnectionResetError("connection to the scheduler reset")

    with pytest.raises(ConnectionResetError, match="scheduler reset"):
        write_results(reset(), tmp_path / f"r{suffix}")


@st.composite
def _job_results(draw: st.DrawFn) -> list[JobResult]:
    """Results as a survey yields them: any job names and uuids (control and non-ASCII
    characters), jobs no node fits, term names and contributions of any finite value."""
    out = []
    for i in range(draw(st.integers(0, 6))):
        names = draw(_TERMS)
        top = tuple(
            RankedNode(
                index=draw(st.integers(0, 2**40)),
                uuid=draw(st.text(min_size=1, max_size=8)),
                name=None,
                score=draw(st.floats(allow_nan=False, allow_infinity=False)),
                terms={n: draw(st.floats(allow_nan=False, allow_infinity=False)) for n in names},
                gpu_indices=(),
                tie_key=0,
            )
            for _ in range(draw(st.integers(0, 3)))
        )
        alternative = draw(st.none() | st.integers(0, 3))
        out.append(
            JobResult(i, draw(st.text(max_size=8)), draw(st.integers(0, 2**40)), top, alternative)
        )
    return out


def _bits_of(row: dict[str, object]) -> dict[str, object]:
    """A row with its floats as their bits (so 0.0 and -0.0 differ)."""
    terms = row["terms"]
    return row | {
        "score": None if row["score"] is None else float(row["score"]).hex(),  # type: ignore[arg-type]
        "terms": None if terms is None else [(k, float(v).hex()) for k, v in dict(terms).items()],  # type: ignore[call-overload]
    }


@settings(max_examples=60, deadline=None)
@given(_job_results())
def test_written_rows_are_result_rows_bit_for_bit(results: list[JobResult]) -> None:
    """JSON lines and Parquet both hold exactly result_rows of every result, in order (names
    of any characters, null rows for jobs without nodes, every float's bits)."""
    want = [_bits_of(row) for r in results for row in result_rows(r)]
    with tempfile.TemporaryDirectory() as d:  # (hypothesis: no function-scoped tmp_path)
        assert write_results(iter(results), os.path.join(d, "r.jsonl")) == len(results)
        with open(os.path.join(d, "r.jsonl"), "rb") as f:
            lines = f.read().splitlines()
        assert [_bits_of(json.loads(line)) for line in lines] == want
        try:
            import pyarrow.parquet as pq  # noqa: PLC0415
        except ImportError:  # pragma: no cover - pyarrow is an optional extra
            return
        assert write_results(iter(results), os.path.join(d, "r.parquet")) == len(results)
        table = pq.read_table(os.path.join(d, "r.parquet"))
        assert [_bits_of(row) for row in table.to_pylist()] == want


def test_an_invalid_job_fails_before_anything_is_ranked() -> None:
    """A job the engine refuses is an InputError noting its position, raised by run()."""
    bad = Job(name="bad", gpu=GpuReq(count=1, models=("NOPE-9000",)))
    with Survey(synthetic_shards(100, 2), now=NOW) as s, pytest.raises(InputError) as info:
        s.run([JOBS[0], bad])
    assert "jobs[1]" in "".join(getattr(info.value, "__notes__", []))


@pytest.mark.parametrize(("k", "batch", "fan_in"), [(-1, 10, 2), (5, 0, 2), (5, 10, 1)])
def test_bad_options_say_what_is_accepted(k, batch, fan_in) -> None:
    """k < 0, batch_size < 1 or fan_in < 2 is a ScaleOutError naming the accepted ranges."""
    with Survey(synthetic_shards(10, 1), now=NOW) as s, pytest.raises(ScaleOutError, match=">= 0"):
        s.run(JOBS, k=k, batch_size=batch, fan_in=fan_in)


@pytest.mark.parametrize("spec", ["local:0", "local:two", "somewhere:8786"])
def test_a_bad_cluster_spec_says_what_is_accepted(spec) -> None:
    """connect() refuses local:0, local:two and an address without a scheme, naming the forms."""
    with pytest.raises(ScaleOutError, match=r"local:N"), connect(spec):
        pass


def test_a_survey_takes_the_cli_forms_of_where_and_refuses_wrong_types() -> None:
    """client="sync" is the synchronous scheduler (None); "local:0" is refused as connect()
    refuses it, before anything starts; a client or a shard of the wrong type is a TypeError
    naming what is accepted (a shard that was not one failed on a missing attribute, an int
    client as "could not ask the workers ... install nodeselect[dask] on every worker")."""
    shards = synthetic_shards(400, 2, seed=3)
    with Survey(shards, now=NOW, client="sync") as s, Survey(shards, now=NOW) as plain:
        assert isinstance(s._runner, _Synchronous)
        assert list(s.run(JOBS, k=3)) == list(plain.run(JOBS, k=3))
    with pytest.raises(ScaleOutError, match="local:N with N >= 1"):
        Survey(shards, client="local:0")
    with pytest.raises(TypeError, match=r"client: expected a distributed.Client, .* got int"):
        Survey(shards, client=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"shards\[1\]: expected a shard source .* got str"):
        Survey([shards[0], "fleet/"])  # type: ignore[list-item]


def test_wrong_argument_types_are_type_errors_that_say_what_to_pass() -> None:
    """Survey.run, Survey and place check their arguments as rank_many does: a path, one Job,
    a dict or None among the jobs, a float k, a naive now, a str table: a TypeError naming
    the argument (and the first bad job) and what to pass, before anything runs."""
    job = JOBS[0]
    with Survey(synthetic_shards(300, 2, seed=3), now=NOW) as s:
        for jobs, says in [
            ("jobs.toml", "expected a sequence of Jobs, got str"),
            (job, r"got one Job; pass \[job\]"),
            ([{"gpu": {"count": 1}}], r"jobs\[0\]: expected a Job, got dict"),
            ([job, None], r"jobs\[1\]: expected a Job, got NoneType"),
        ]:
            with pytest.raises(TypeError, match=says):
                s.run(jobs)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="k must be an int, got float"):
            s.run([job], k=2.0)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="expected a NodeTable, got str"):
            nd.place([job], "table", s)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="survey must be a Survey"):
            nd.place([job], NodeTable.synthetic(300, seed=3, now=NOW), "s")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="naive datetime"):
        Survey(synthetic_shards(10, 1), now=datetime(2026, 1, 1))


@pytest.mark.slow
def test_a_survey_given_local_n_starts_and_stops_its_cluster() -> None:
    """client="local:2" starts a local cluster of 2 workers (as connect() does) owned by the
    survey, which stops it on close; the answer is the synchronous scheduler's."""
    shards = synthetic_shards(3000, 3, seed=3)
    with Survey(shards, now=NOW) as plain:
        want = list(plain.run(JOBS, k=4))
    with Survey(shards, now=NOW, client="local:2") as s:
        client = s._runner.client  # type: ignore[attr-defined]
        assert len(client.scheduler_info()["workers"]) == 2
        assert list(s.run(JOBS, k=4)) == want
    assert client.status == "closed"


def test_no_shards_is_refused() -> None:
    """A survey of no shards is a ScaleOutError."""
    with pytest.raises(ScaleOutError, match="at least one shard"):
        Survey([], now=NOW)


def test_importing_nodeselect_does_not_import_dask() -> None:
    """``import nodeselect`` (and its CLI) leaves dask and distributed unimported."""
    code = (
        "import sys, nodeselect, nodeselect.cli._main\n"
        "bad = [m for m in ('dask', 'distributed') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_a_local_cluster_of_two_processes_gives_the_same_answer() -> None:
    """End to end on a real LocalCluster (2 worker processes, no dashboard): shards generated
    on the workers, jobs broadcast, tree reduction; equal to rank_many on the whole fleet."""
    shards = synthetic_shards(30_000, 5, seed=8)
    whole = NodeTable.concat([s.build(NOW, None) for s in shards])
    want = rank_many(JOBS, whole, k=7, now=NOW)
    ticks = []
    with connect("local:2") as client, Survey(shards, client=client, now=NOW) as s:
        assert len(client.scheduler_info()["workers"]) == 2
        trim = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
        assert set(trim.values()) == {None}  # glibc's own malloc tuning (docs/scale-out.md)
        got = list(s.run(JOBS, k=7, batch_size=5, on_tile=lambda: ticks.append(1)))
        # the shards stayed where they were built, one copy each, spread over the workers
        holders = client.who_has(s._tables)
        assert all(len(holders[t.key]) == 1 for t in s._tables)
        spread = collections.Counter(holders[t.key][0] for t in s._tables)
        assert sorted(spread.values()) == [2, 3]
        # (a shard's read error names the worker whose task it happened in)
        for w in spread:
            assert client.submit(nd._worker_address, workers=[w], pure=False).result() == w
    assert_same(got, want, JOBS)
    assert len(ticks) == s.tiles(len(JOBS), 5) == 15


def test_a_tile_ranks_a_pickled_batch_as_the_batch_itself() -> None:
    """The cluster sends a batch pickled into one bytes (Dask sent a tuple of jobs element by
    element: 0.3 s a batch); a tile given those bytes ranks exactly what it ranks given the
    jobs, and the cluster runner really sends bytes, under a key of each batch's own."""
    t = NodeTable.synthetic(2000, seed=4, now=NOW)
    batch = tuple(JOBS)
    spec = _Tile(5, NOW, 0, table_stats(t))
    want = _results(_unpack(_rank_tile(t, batch, spec)))
    assert _results(_unpack(_rank_tile(t, pickle.dumps(batch), spec))) == want
    assert any(feasible for feasible, _ in want)

    sent = _Cluster(None).broadcast(batch)  # type: ignore[arg-type]  # (no client used)
    blob = sent.compute(scheduler="synchronous")  # the graph's data: the bytes themselves
    assert isinstance(blob, bytes)
    assert pickle.loads(blob) == batch
    assert sent.key != _Cluster(None).broadcast(batch).key  # type: ignore[arg-type]


def test_a_workers_tiles_of_one_batch_share_its_unpickled_jobs() -> None:
    """A worker's tiles of one batch (and a batch sent again: equal bytes) share its jobs,
    unpickled once (and so checked once per worker); other bytes are unpickled; the cache keeps
    the batches in flight and one more, the least recently used leaving first."""
    _BATCHES.clear()
    blob = pickle.dumps(tuple(JOBS))
    first = _batch(blob)
    assert first == tuple(JOBS)
    assert _batch(blob) is first
    assert all(a is b for a, b in zip(_batch(blob), first, strict=True))
    assert _batch(bytes(bytearray(blob))) is first  # the same batch, another bytes object
    other = _batch(pickle.dumps(tuple(JOBS[:1])))
    assert other == tuple(JOBS[:1])
    assert other[0] is not first[0]
    for i in range(_IN_FLIGHT - 1):
        _batch(pickle.dumps((i,)))
    assert _batch(blob) is first  # used again: the most recent, kept
    for i in range(_IN_FLIGHT + 1):
        _batch(pickle.dumps(("more", i)))
    assert len(_BATCHES) == _IN_FLIGHT + 1
    assert _batch(pickle.dumps(tuple(JOBS))) is not first  # left: unpickled afresh
    t = NodeTable.synthetic(2000, seed=4, now=NOW)
    spec = _Tile(5, NOW, 0, table_stats(t))
    blob = pickle.dumps(tuple(JOBS))
    twice = [_results(_unpack(_rank_tile(t, blob, spec))) for _ in range(2)]
    assert twice[0] == twice[1] == _results(_unpack(_rank_tile(t, tuple(JOBS), spec)))


_TERMS = st.sampled_from([(), ("fit",), ("reputation", "idle"), ("idle", "fit", "freshness")])


@st.composite
def _tile_tops(draw: st.DrawFn) -> tuple[list[list[int]], list[list[list[RankedNode]]], int]:
    """Parts of several tiles: per part, per job, its best nodes in the engine's order, with
    heavy ties (few scores, few tie keys: equal pairs left to the uuid)."""
    jobs = draw(st.integers(1, 5))
    parts = draw(st.integers(1, 6))
    names = [draw(_TERMS) for _ in range(jobs)]
    k = draw(st.integers(0, 6))
    serial = itertools.count()
    feasible, tops = [], []
    for _ in range(parts):
        feasible.append([draw(st.integers(0, 50)) for _ in range(jobs)])
        per_job = []
        for j in range(jobs):
            top = [
                RankedNode(
                    index=draw(st.integers(0, 2**40)),
                    uuid=draw(st.sampled_from(["a", "b", "é", "\x00"])) + str(next(serial)),
                    name=draw(st.none() | st.text(max_size=3)),
                    score=draw(st.sampled_from([0.0, -0.0, 0.25, 1.0, 5e-324])),
                    terms={n: draw(st.floats(allow_nan=False)) for n in names[j]},
                    gpu_indices=tuple(draw(st.lists(st.integers(0, 9), max_size=3))),
                    tie_key=draw(st.sampled_from([0, 1, 2**64 - 1])),
                )
                for _ in range(draw(st.integers(0, 4)))
            ]
            per_job.append(sorted(top, key=lambda r: (-r.score, r.tie_key, r.uuid)))
        tops.append(per_job)
    return feasible, tops, k


def _nodes_part(
    feasible: Sequence[int], tops: Sequence[Sequence[RankedNode]], shard: int = 0
) -> _Part:
    """The part of ranked nodes given as objects (any uuids and names, no table behind them),
    as shard number ``shard`` ranked them."""
    rows = [n for top in tops for n in top]
    return _Part(
        feasible=np.array(feasible, dtype=np.int64),
        counts=np.array([len(top) for top in tops], dtype=np.int64),
        score=np.array([n.score for n in rows], dtype=np.float64),
        tie=np.array([n.tie_key for n in rows], dtype=np.uint64),
        shard_row=np.array([n.index for n in rows], dtype=np.int64),
        shard=np.full(len(rows), shard, dtype=np.int32),
        uuid=[n.uuid for n in rows],
        name=[n.name for n in rows],
        terms=[tuple(top[0].terms) if top else () for top in tops],
        values=np.array([v for n in rows for v in n.terms.values()], dtype=np.float64),
        gpu_counts=np.array([len(n.gpu_indices) for n in rows], dtype=np.int64),
        gpus=np.array([g for n in rows for g in n.gpu_indices], dtype=np.int64),
    )


@given(_tile_tops())
@settings(max_examples=60, deadline=None)
def test_the_tree_merge_of_columnar_parts_is_merge_tops(case) -> None:
    """Merging tiles' parts (arrays, as they travel) gives each job's feasible counts summed and
    exactly merge_tops of its tops: same nodes, every field, in the one order (score, tie key,
    then the uuid as Python orders str), with any number of parts merged at once."""
    feasible, tops, k = case
    blobs = [_pack(_nodes_part(f, t)) for f, t in zip(feasible, tops, strict=True)]
    got = _results(_unpack(_merge(k, *blobs)))
    for j, (count, top) in enumerate(got):
        assert count == sum(f[j] for f in feasible)
        want = merge_tops([t[j] for t in tops], k)
        assert top == want
        assert [r.score.hex() for r in top] == [r.score.hex() for r in want]
        assert [list(r.terms) for r in top] == [list(r.terms) for r in want]


@given(_tile_tops(), st.randoms(use_true_random=False), st.booleans())
@settings(max_examples=60, deadline=None)
def test_the_merge_is_the_same_in_any_order_and_grouping(case, rnd, one_node_everywhere) -> None:
    """The tree may group a batch's parts as their workers suit (each worker's own first):
    merged in any order and any grouping, the parts give merge_tops in shard order, also when
    one node is in every shard (rows equal in score, tie key and uuid: the shard decides)."""
    feasible, tops, k = case
    if one_node_everywhere:  # every part the first's nodes, each at its own shard's row
        tops = [
            [[attrs.evolve(n, index=s) for n in job] for job in tops[0]] for s in range(len(tops))
        ]
    parts = [_nodes_part(f, t, s) for s, (f, t) in enumerate(zip(feasible, tops, strict=True))]
    rnd.shuffle(parts)
    while len(parts) > 1:  # random groups of 1..3 consecutive parts, merged level by level
        level, at = [], 0
        while at < len(parts):
            n = rnd.randint(1, 3)
            level.append(_unpack(_merge(k, *[_pack(p) for p in parts[at : at + n]])))
            at += n
        parts = level
    got = _results(_unpack(_merge(k, *[_pack(p) for p in parts])))
    for j, (count, top) in enumerate(got):
        assert count == sum(f[j] for f in feasible)
        assert top == merge_tops([t[j] for t in tops], k)


@pytest.mark.parametrize(
    ("places", "fan_in"),
    [
        (["a", "b"] * 2, 4),
        (["a", "b"] * 4, 4),
        (["a", "b"] * 2 + ["a"], 4),
        (["a", "b", "c"] * 5 + ["a"], 2),
        (["a"] * 9, 4),
        (["a"], 4),
        ([f"w{i}" for i in range(9)] * 2, 2),
    ],
)
def test_the_tree_merges_each_workers_tiles_first(places, fan_in) -> None:
    """Up to fan_in tiles go to the driver (the root) as they are; more are merged each
    worker's first: each merge of tiles takes tiles of one worker only (nothing sent between
    workers at the first level), at most fan_in inputs a merge; at most fan_in parts reach
    the driver, and every tile reaches it once; merged there as they arrive, in any order,
    the answer is the merge of every tile's part."""
    tops = [[[RankedNode(i, f"u{i}-{r}", None, 1.0 / (r + 1), {}, (), r) for r in range(3)]]
            for i in range(len(places))]  # fmt: skip
    tiles = [
        delayed(_pack)(_nodes_part([3], top, i), dask_key_name=f"tile-{i}")
        for i, top in enumerate(tops)
    ]
    got = _tops(tiles, places, 2, fan_in)
    assert 1 <= len(got) <= fan_in
    if len(places) <= fan_in:
        assert got == tiles
    uses: collections.Counter[int] = collections.Counter()
    graph: dict = {}
    for top in got:
        graph.update(top.__dask_graph__())
    for top in got:  # each tile under exactly one top, once
        tile_keys = {key for key in top.__dask_graph__() if str(key).startswith("tile-")}
        uses.update(int(str(key)[5:]) for key in tile_keys)
    for key in graph:
        inputs = get_dependencies(graph, key)
        assert len(inputs) <= fan_in
        from_tiles = [int(str(d)[5:]) for d in inputs if str(d).startswith("tile-")]
        assert len({places[i] for i in from_tiles}) <= 1, (key, from_tiles)
    assert uses == collections.Counter(range(len(places)))
    blobs = dask_compute(*got, scheduler="synchronous")
    for order in (blobs, blobs[::-1]):
        root = _Root(2)
        for blob in order:
            root.add(blob)
        ((count, top),) = _results(root.result())
        assert count == 3 * len(places)
        assert top == merge_tops([t[0] for t in tops], 2)


@pytest.mark.slow
def test_two_local_clusters_at_once_raise_no_warning() -> None:
    """Each local cluster's scheduler serves its HTTP routes on a free loopback port: a
    second one beside the first (another survey, a test) found port 8787 taken and warned
    (an error here: warnings are errors in this suite)."""
    with connect("local:1") as a, connect("local:1") as b:
        assert a.scheduler_info()["address"] != b.scheduler_info()["address"]
        assert a.submit(sum, [1, 2]).result() == b.submit(sum, [3]).result() == 3


_LOSE_A_WORKER = """
import os, sys
from datetime import UTC, datetime
from nodeselect import NodeTable, rank_many
from nodeselect.dask import Survey, connect, synthetic_shards
from nodeselect.jobs import GpuReq, Job

now = datetime(2026, 11, 1, tzinfo=UTC)
jobs = [Job(name=f"j{i}", gpu=GpuReq(count=1 + i % 2)) for i in range(12)]
shards = synthetic_shards(8_000, 4, seed=8)
whole = NodeTable.concat([s.build(now, None) for s in shards])
want = [(r.feasible, [n.uuid for n in r.top]) for r in rank_many(jobs, whole, k=5, now=now)]
with connect("local:2") as client, Survey(shards, client=client, now=now) as s:
    def survey():
        return [(r.feasible, [n.uuid for n in r.top]) for r in s.run(jobs, k=5, batch_size=5)]
    assert survey() == want
    lost = sorted(client.scheduler_info()["workers"])[0]
    os.kill(client.run(os.getpid, workers=[lost])[lost], 9)  # its nanny starts another
    assert survey() == want
print("ok")
"""


@pytest.mark.slow
def test_a_worker_lost_between_batches_costs_no_answer() -> None:
    """A worker killed between two surveys (a preempted machine): its shards are built again
    elsewhere and the next survey gives the same answer. With the jobs scattered to every
    worker it hung: the scheduler's replication waited for the lost worker (here: killed
    after 120 s, a failure)."""
    out = subprocess.run(
        [sys.executable, "-c", _LOSE_A_WORKER],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")


class _Workers:
    """A client whose workers answer ``run`` as given (or raise it)."""

    scheduler = None  # (no address to name)

    def __init__(self, answer: object) -> None:
        self.answer = answer

    def run(self, fn: object) -> object:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_workers_running_other_code_are_refused_by_name(caplog) -> None:
    """Every worker must run this driver's nodeselect source and numpy (major.minor): a
    worker with other code ranks its shards by other rules, and the merged answer is no
    machine's. The refusal names each odd worker and what it runs, and what this one runs. No
    worker yet (an adaptive cluster) is a warning: the survey waits."""
    here = _code()
    assert here == _code()  # (computed once)
    assert len(here[1]) == 12
    _Cluster(_Workers({"tcp://a:1": here, "tcp://b:1": list(here)})).check()  # type: ignore[arg-type]
    odd = (here[0], "0" * 12, here[2])
    with pytest.raises(ScaleOutError) as exc:
        _Cluster(_Workers({"tcp://a:1": here, "tcp://b:1": odd})).check()  # type: ignore[arg-type]
    message = str(exc.value)
    assert "1 of 2 workers" in message
    assert f"tcp://b:1: nodeselect {here[0]}, source 000000000000" in message
    assert "tcp://a:1" not in message
    assert f"source {here[1]}, numpy {here[2]}" in message
    with caplog.at_level(logging.WARNING, logger="nodeselect.dask"):
        _Cluster(_Workers({})).check()  # type: ignore[arg-type]  # (no worker yet)
    assert "no workers yet; the survey waits for them" in caplog.text
    lost = ModuleNotFoundError("No module named 'nodeselect'")
    with pytest.raises(ScaleOutError, match=r"install nodeselect\[dask\] on every worker"):
        _Cluster(_Workers(lost)).check()  # type: ignore[arg-type]


def test_the_code_digest_follows_the_source(tmp_path, monkeypatch) -> None:
    """The digest is of the package's Python source: one byte more in one file changes it."""
    import nodeselect.dask as nd  # noqa: PLC0415

    original = _code()
    src = Path(nd.__file__).resolve().parent
    copy = tmp_path / "nodeselect"
    shutil.copytree(src, copy, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    monkeypatch.setattr(nd, "__file__", str(copy / "dask.py"))
    _code.cache_clear()
    try:
        same = _code()
        (copy / "engine" / "__init__.py").write_text(
            (copy / "engine" / "__init__.py").read_text() + "\n"
        )
        _code.cache_clear()
        assert _code()[1] != same[1]
    finally:
        _code.cache_clear()
    assert same == original  # a copy of the same source (no caches, no compiled module)


def test_the_survey_joins_the_whole_fleets_table_from_its_shards(tmp_path) -> None:
    """Survey.table() of a snapshot's shards (every dialect, 5 shards, two of which decide
    other units alone) is the table from_snapshot builds on the whole snapshot, column for
    column, with the same unit decisions, evidence and fallbacks."""
    parts = [_fetched(50, seed=40 + k, dialect=d) for k, d in enumerate(sorted(DIALECTS))]
    fleet = attrs.evolve(parts[0], nodes=tuple(n for r in parts for n in r.nodes))
    save_sharded_snapshot(tmp_path / "d", fleet, 5)
    want = NodeTable.from_snapshot(tmp_path / "d", now=NOW)
    with Survey(snapshot_shards(tmp_path / "d"), now=NOW) as s:
        got = s.table()
    for f in attrs.fields(NodeTable):
        a, b = getattr(got, f.name), getattr(want, f.name)
        if isinstance(b, np.ndarray):
            assert (a.dtype, a.shape) == (b.dtype, b.shape), f.name
            assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes(), f.name
        elif f.name != "units":
            assert a == b, f.name
    assert [(d.unit, d.evidence, d.agreeing, d.fallbacks) for d in got.units.decisions()] == [
        (d.unit, d.evidence, d.agreeing, d.fallbacks) for d in want.units.decisions()
    ]
    assert got.units.numeric_strings == want.units.numeric_strings > 0
