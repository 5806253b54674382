"""The jobs of a ``rank_many`` batch that no group takes (``SharedRows``: candidates shared per
categorical constraints and GPU model set) are ranked exactly as ``rank`` ranks them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_batch import _residual, _synthetic_jobs, assert_same

from nodeselect.engine._constraints import CompiledJob, compile_job
from nodeselect.engine._prefilter import node_pass
from nodeselect.engine._rank import rank, table_stats
from nodeselect.engine.batch import _alone
from nodeselect.engine.batch import _rank_many as _batch
from nodeselect.engine.batch._alone import SharedRows, kept_fits
from nodeselect.engine.batch._rank_many import rank_many
from nodeselect.jobs._model import CpuReq, GpuReq, Job, PlacementReq
from nodeselect.table import MAX_ROWS
from nodeselect.table._table import NodeTable
from strategies_fleet import NOW

#: ``_alone._LARGE`` values: every base gathered, the library's, no base gathered (the scan).
LARGE = [1, _alone._LARGE, 10**9]


@pytest.fixture(autouse=True, scope="module", params=LARGE)
def large(request: pytest.FixtureRequest) -> Iterator[int]:
    """Sets ``_LARGE``, no group and no kept rows (every job ranked by ``SharedRows``);
    module scope: hypothesis-safe."""
    saved = (_alone._LARGE, _batch.MIN_GROUP, _batch.kept_fits)
    _alone._LARGE, _batch.MIN_GROUP = request.param, 10**9  # type: ignore[misc]
    _batch.kept_fits = lambda cjs, t: False  # never the per-job path's kept rows
    yield int(request.param)
    _alone._LARGE, _batch.MIN_GROUP, _batch.kept_fits = saved  # type: ignore[misc]


def _shared_jobs(rng: np.random.Generator, n: int) -> list[Job]:
    """Jobs sharing some but not all constraints (few model sets and placements, their own
    counts and thresholds), plus jobs of one model set differing only in GPU limits."""
    jobs = _synthetic_jobs(rng, n)
    models = jobs[0].gpu.models
    for i in range(int(rng.integers(0, 4))):
        jobs.append(
            Job(
                name=f"same-models-{i}",
                gpu=GpuReq(
                    models=models,
                    count=int(rng.integers(1, 4)),
                    min_vram_free_gb=float(rng.choice([4.0, 16.0, 24.0])),
                ),
            )
        )
    return jobs


@settings(max_examples=12, deadline=None)
@given(
    table_seed=st.integers(0, 2**16),
    k=st.sampled_from([0, 1, 7, 40]),
    table=st.sampled_from(["full", "doubled", "residual"]),
    later=st.sampled_from([timedelta(0), timedelta(minutes=10), timedelta(days=3)]),
    max_rows=st.sampled_from([0, 10**9]),
)
def test_jobs_ranked_alone_equal_the_loop(
    large: int, *, table_seed: int, k: int, table: str, later: timedelta, max_rows: int
) -> None:
    """Heavy ties (every node twice), residual views (reserved GPUs, a VRAM override) and
    stale telemetry (``now`` days later): each result equals ``rank``'s, bit for bit, with
    the GPU-group counts kept per set of GPU limits or gathered for each job (``max_rows``:
    room for none, or for every set)."""
    saved = _alone.MAX_ROWS
    _alone.MAX_ROWS = max_rows  # type: ignore[misc]
    try:
        _alone_equal_the_loop(table_seed, k, table, later)
    finally:
        _alone.MAX_ROWS = saved  # type: ignore[misc]


def _alone_equal_the_loop(table_seed: int, k: int, table: str, later: timedelta) -> None:
    t = NodeTable.synthetic(1_500, seed=table_seed, now=NOW)
    stats = table_stats(t)
    rng = np.random.default_rng(table_seed)
    if table == "doubled":
        t = NodeTable.concat([t, t])
        stats = table_stats(t)
    elif table == "residual":
        t = _residual(t, rng)
    now, seed = NOW + later, table_seed % 4
    jobs = _shared_jobs(rng, int(rng.integers(4, 10)))
    got = rank_many(jobs, t, k=k, now=now, seed=seed, stats=stats)
    for job, r in zip(jobs, got, strict=True):
        assert_same(r, rank(job, t, k=k, now=now, seed=seed, stats=stats))


def test_shared_rows_are_node_pass_rows_on_both_routes(large: int) -> None:
    """Each job's survivors equal ``node_pass``'s, whether its base is gathered or scanned."""
    t = NodeTable.synthetic(3_000, seed=5, now=NOW)
    jobs = _shared_jobs(np.random.default_rng(5), 12)
    cjs = [compile_job(job, NOW) for job in jobs]
    shared = SharedRows(t, cjs[::2])  # free-VRAM levels computed for half the jobs
    for cj in cjs:
        got = shared.survivors(cj)
        want = node_pass(cj, t)
        assert got.dtype == want.dtype
        assert got.tolist() == want.tolist()


def test_kept_fits_counts_the_entries_the_per_job_path_keeps() -> None:
    """A batch whose kept row sets fit in ``MAX_ROWS`` keeps them (a repeated batch reads them
    again); ten distinct GPU jobs (three entries each) do not, nor more jobs than entries."""
    t = NodeTable.synthetic(2_000, seed=3, now=NOW)

    def cj(job: Job) -> CompiledJob:
        return compile_job(job, NOW)

    gpu = [cj(Job(gpu=GpuReq(count=1 + i % 3, min_vram_free_gb=8.0 + i))) for i in range(10)]
    # distinct static thresholds (reputation): distinct kept rows; a capacity one (cores) is
    # tested after them, so it keeps none of its own
    cpu = [cj(Job(placement=PlacementReq(min_reputation=i))) for i in range(MAX_ROWS + 1)]
    cores = [cj(Job(cpu=CpuReq(min_cores=4 + i))) for i in range(MAX_ROWS)]
    assert kept_fits(gpu[:2], t)
    assert not kept_fits(gpu, t)
    assert kept_fits([gpu[0]] * MAX_ROWS, t)  # one job's entries, however many times
    # each its rows, and one base (the rows passing their shared categorical tests)
    assert kept_fits(cpu[: MAX_ROWS - 1], t)
    assert not kept_fits(cpu[:MAX_ROWS], t)
    assert not kept_fits([cpu[0]] * (MAX_ROWS + 1), t)
    assert kept_fits(cores, t)
