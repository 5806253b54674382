"""The GPU group's per-node counts kept per table (``gpu_matching``'s memo) equal the counts
computed afresh, whatever ``now`` (telemetry fresh or stale) and whichever job filled them."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from test_prefilter import _job, _mixed_synthetic

from nodeselect.engine._constraints import compile_job, gpu_eval, gpu_matching, gpu_subset
from nodeselect.engine._prefilter import models_known, node_pass
from nodeselect.engine._rank import rank
from nodeselect.jobs._model import GpuReq, Job
from nodeselect.table._table import NodeTable
from reference_engine import reference_rank
from strategies_fleet import NOW, fleets, jobs


@settings(max_examples=10, deadline=None)
@given(fleets(), jobs(), st.integers(0, 2_000), st.integers(0, 3))
def test_counts_kept_at_one_now_rank_like_the_reference_at_another(fleet, job, later, seed):
    """A job ranked at ``NOW`` fills the memo; ranked again ``later`` seconds on (some nodes'
    telemetry now stale), it still gives the reference's order, scores and GPUs there."""
    t = NodeTable.from_nodes(fleet, now=NOW)
    rank(job, t, k=len(t), now=NOW, seed=seed)  # fills the counts of the surviving nodes
    when = NOW + timedelta(seconds=later)
    r = rank(job, t, k=len(t), now=when, seed=seed)
    ref = reference_rank(job, fleet, when, seed, units=t.units)
    assert [n.uuid for n in r.top] == ref.order
    for n in r.top:
        assert math.isclose(n.score, ref.score[n.uuid], rel_tol=0, abs_tol=1e-9)
        assert n.gpu_indices == ref.gpu_choice[n.uuid]
    assert r.feasible == len(ref.order)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_kept_counts_equal_fresh_counts_across_jobs_nows_and_views(seed) -> None:
    """On mixed-model many-GPU tables, jobs sharing and not sharing limits, several ``now``s
    and partly overlapping node sets: the memo's counts equal ``gpu_subset``'s and the full
    group's, bit for bit; on capacity views (reservations, VRAM override) too."""
    t = _mixed_synthetic(600, seed)
    rng = np.random.default_rng(seed)
    n, g = len(t), len(t.gpu_model_code)
    views = [
        t,
        t.with_capacity(gpu_reserved=rng.random(g) < 0.3),
        t.with_capacity(gpu_vram_free_gb=(t.gpu_vram_free_gb * 1.2).astype(np.float32)),
    ]
    jobs = [_job(rng, seed + i) for i in range(4)]
    jobs.append(Job(gpu=GpuReq(count=1, min_vram_free_gb=8.0, max_load=0.5)))
    for job in jobs:
        for shift in rng.choice([0, 60, 600, 900, 1_000, 5_000], size=3):
            cj = compile_job(job, NOW + timedelta(seconds=int(shift)))
            for v in views:
                idx = np.sort(rng.choice(n, size=int(rng.integers(0, n)), replace=False))
                got = gpu_matching(cj, v, idx)
                want = gpu_subset(cj, v, idx)
                if cj.count == 0:
                    assert got is None
                    assert want is None
                    continue
                assert got is not None
                assert want is not None
                assert got.dtype == want.matching.dtype
                assert np.array_equal(got, want.matching)
                full = gpu_eval(cj, v)
                assert full is not None
                assert np.array_equal(got, full.matching[idx])


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10_000))
def test_counts_of_rows_whose_models_are_known_equal_the_full_group(seed) -> None:
    """Counted for the prefilter's rows of a table without mixed nodes (``gpu-model`` not read
    again), the kept counts equal the full group's, and serve later jobs and ``now``s."""
    t = NodeTable.synthetic(800, seed=seed, now=NOW)
    rng = np.random.default_rng(seed)
    for i in range(6):
        job = _job(rng, seed + i)
        for shift in (0, 900, 1_000):
            cj = compile_job(job, NOW + timedelta(seconds=shift))
            rows = node_pass(cj, t)
            got = gpu_matching(cj, t, rows, models_known=models_known(cj, t))
            full = gpu_eval(cj, t)
            if full is None:
                assert got is None
                continue
            assert got is not None
            assert np.array_equal(got, full.matching[rows])
