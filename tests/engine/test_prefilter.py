"""The engine's fast path (derived columns, prefilters, GPU subsets) equals the full evaluation."""

from __future__ import annotations

import gc
import math

import attrs
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect.engine import _prefilter
from nodeselect.engine._constraints import compile_job, gpu_eval
from nodeselect.engine._prefilter import feasible_rows
from nodeselect.engine._rank import evaluate_compiled, fast_feasible, rank
from nodeselect.engine._scorers import score_terms
from nodeselect.engine._shard import table_stats
from nodeselect.jobs._model import CpuReq, GpuReq, Job, MemoryReq, PlacementReq
from nodeselect.table import _derived
from nodeselect.table._derived import TOP_GPUS, gpu_free_top, gpu_model_key, vram_level
from nodeselect.table._table import NodeTable
from strategies_fleet import NOW, fleets, jobs

SETTINGS = settings(max_examples=25, deadline=None)
MODELS = [(), ("RTX-4090",), ("A100", "H100"), ("L40S", "T4", "A10", "RTX-3080"), ("T4",)]


def _check_fast_equals_full(job: Job, t: NodeTable, k: int = 10_000) -> None:
    """Fast feasible rows, GPU group and ranking equal the full masks and scorers, bit for bit."""
    cj = compile_job(job, NOW)
    full = evaluate_compiled(cj, t)
    want = np.flatnonzero(full.feasible)
    idx, sub, _ = feasible_rows(cj, t)
    assert np.array_equal(idx, want)
    fidx, fge = fast_feasible(cj, t)
    assert np.array_equal(fidx, want)
    if full.gpu is not None:
        assert sub is not None
        assert fge is not None
        assert np.array_equal(sub.matching, full.gpu.matching[idx])
        assert np.array_equal(sub.passes, full.gpu.passes[sub.rows])
        assert np.array_equal(fge.ok[idx], full.gpu.ok[idx])
    r = rank(job, t, k=k, now=NOW)
    assert np.array_equal(r.feasible_indices, want)
    if len(want):
        raw = score_terms(cj, t, want, full.gpu, table_stats(t).max_gpu_count)
        score = np.zeros(len(want))
        for name, w in cj.weights:
            score = score + w * raw[name]
        score = score / cj.weight_total
        by_row = dict(zip(want.tolist(), score.tolist(), strict=True))
        assert [n.score for n in r.top] == [by_row[n.index] for n in r.top]
        assert len(r.top) == min(k, len(want))
        assert [n.score for n in r.top] == sorted(score.tolist(), reverse=True)[: len(r.top)]


def _mixed_synthetic(n: int, seed: int) -> NodeTable:
    """A synthetic table whose GPUs are partly re-modelled (mixed nodes) and many-GPU nodes."""
    t = NodeTable.synthetic(n, seed=seed, now=NOW)
    rng = np.random.default_rng(seed)
    codes = t.gpu_model_code.copy()
    flip = rng.random(len(codes)) < 0.15
    codes[flip] = rng.choice(np.unique(codes), size=int(flip.sum()))
    tele = t.gpu_tele_vram_free_gb.copy()
    tele[rng.random(len(tele)) < 0.1] = np.float32(200.0)  # telemetry above the reported value
    free = t.gpu_vram_free_gb.copy()
    free[rng.random(len(free)) < 0.05] = np.nan
    return attrs.evolve(t, gpu_model_code=codes, gpu_tele_vram_free_gb=tele, gpu_vram_free_gb=free)


def _job(rng: np.random.Generator, i: int) -> Job:
    count = int(rng.choice([0, 1, 2, 3, 4, 5, 8, 9]))
    gpu = GpuReq()
    if count:
        gpu = GpuReq(
            models=MODELS[i % len(MODELS)],
            count=count,
            min_vram_free_gb=float(rng.choice([0.1, 8, 20, 23.9, 40, 79.5])) if i % 3 else None,
            min_vram_total_gb=24.0 if i % 4 == 1 else None,
            max_load=0.5 if i % 5 == 2 else None,
        )
    return Job(
        gpu=gpu,
        cpu=CpuReq(min_cores=int(rng.choice([4, 16, 64])) if i % 2 else None),
        memory=MemoryReq(min_free_gb=float(rng.integers(8, 300)) if i % 3 != 1 else None),
        placement=PlacementReq(
            min_reputation=float(rng.integers(0, 80)) if i % 2 == 0 else None,
            statuses=("AVAILABLE",) if i % 7 else (),
            allow_suspended=i % 6 == 5,
        ),
    )


@SETTINGS
@given(fleets(), jobs(), st.integers(1, 5))
def test_fast_path_equals_full_evaluation_on_documents_in_small_blocks(fleet, job, chunk) -> None:
    """With blocks of 1..5 rows (dense and sparse paths), the fast path equals the full masks."""
    t = NodeTable.from_nodes(fleet, now=NOW)
    old = _prefilter.CHUNK_ROWS
    _prefilter.CHUNK_ROWS = chunk  # type: ignore[misc]
    try:
        _check_fast_equals_full(job, t)
    finally:
        _prefilter.CHUNK_ROWS = old  # type: ignore[misc]


@settings(max_examples=12, deadline=None)
@given(st.integers(0, 10_000))
def test_fast_path_equals_full_evaluation_on_mixed_many_gpu_tables(seed) -> None:
    """Mixed-model nodes, up to 8 GPUs, counts above the derived block, reservations, overrides."""
    t = _mixed_synthetic(400, seed)
    rng = np.random.default_rng(seed)
    views = [
        t,
        t.with_capacity(gpu_reserved=rng.random(len(t.gpu_model_code)) < 0.3),
        t.with_capacity(
            gpu_vram_free_gb=(t.gpu_vram_free_gb * rng.uniform(0.5, 1.5)).astype(np.float32),
            ram_free_gb=(t.ram_free_gb / 2).astype(np.float32),
        ),
    ]
    for i in range(6):
        job = _job(rng, seed + i)
        for v in views:
            _check_fast_equals_full(job, v, k=int(rng.integers(1, 30)))


def test_gpu_free_top_is_each_nodes_largest_bounds_descending() -> None:
    """The derived block holds, per node, the levels of its TOP_GPUS largest free-VRAM bounds."""
    t = _mixed_synthetic(300, 3)
    top = gpu_free_top(t)
    for i in range(len(t)):
        a, b = int(t.gpu_offsets[i]), int(t.gpu_offsets[i + 1])
        bounds = []
        for g in range(a, b):
            vals = [float(t.gpu_vram_free_gb[g]), float(t.gpu_tele_vram_free_gb[g])]
            known = [v for v in vals if not math.isnan(v)]
            bounds.append(int(vram_level(max(known))[0]) if known else 0)
        want = (sorted(bounds, reverse=True) + [0] * TOP_GPUS)[:TOP_GPUS]
        assert top[:, i].tolist() == want


def test_gpu_model_key_names_the_single_model_or_mixed() -> None:
    """A node's model key is its one model's local code, 0 without GPUs, or the mixed code."""
    t = _mixed_synthetic(300, 4)
    key, vocab, has_mixed = gpu_model_key(t)
    mixed = len(vocab) + 1
    seen_mixed = False
    for i in range(len(t)):
        codes = set(t.gpu_model_code[t.gpu_offsets[i] : t.gpu_offsets[i + 1]].tolist())
        if not codes:
            assert key[i] == 0
        elif len(codes) == 1:
            assert int(vocab[key[i] - 1]) == codes.pop()
        else:
            seen_mixed = True
            assert key[i] == mixed
    assert has_mixed == seen_mixed


@settings(max_examples=200, deadline=None)
@given(st.floats(-1, 500, allow_nan=False) | st.just(math.nan), st.floats(-1, 500, allow_nan=False))
def test_vram_level_is_monotone(a, b) -> None:
    """v >= x implies level(v) >= level(x) (the prefilter never drops a passing GPU)."""
    if not math.isnan(a) and a >= b:
        assert vram_level(a)[0] >= vram_level(b)[0]
    if math.isnan(a):
        assert vram_level(a)[0] == 0


def test_capacity_columns_written_in_place_are_read_fresh() -> None:
    """Placement writes residual columns in place; the next rank sees the new values."""
    t = NodeTable.synthetic(2000, seed=5, now=NOW)
    ram = t.ram_free_gb.copy()
    reserved = np.zeros(len(t.gpu_model_code), dtype=np.bool_)
    view = t.with_capacity(ram_free_gb=ram, gpu_reserved=reserved)
    job = Job(gpu=GpuReq(count=1, min_vram_free_gb=4.0), memory=MemoryReq(min_free_gb=16.0))
    before = rank(job, view, k=5, now=NOW)
    assert before.feasible > 0
    ram[before.feasible_indices[:10]] = 0.0
    reserved[:] = True
    reserved[t.gpu_offsets[before.feasible_indices[-1]]] = False
    after = rank(job, view, k=5, now=NOW)
    _check_fast_equals_full(job, view)
    assert after.feasible <= 1


def test_categorical_masks_are_bounded_and_dropped_with_the_table() -> None:
    """At most MAX_MASKS categorical masks stay per table; a collected table leaves none."""
    t = NodeTable.synthetic(500, seed=6, now=NOW)
    for r in range(_derived.MAX_MASKS + 3):
        code = chr(65 + r // 26) + chr(65 + r % 26)  # a distinct valid country code per job
        rank(Job(placement=PlacementReq(min_reputation=float(r), countries=(code,))), t)
    status_id = id(t.status_code)
    held = [k for k in _derived._cache if k[0] == "categorical" and status_id in k[2:]]
    assert len(held) == _derived.MAX_MASKS
    del t
    gc.collect()
    assert not [k for k in _derived._cache if k[0] == "categorical" and status_id in k[2:]]


def test_gpu_eval_on_a_subset_matches_the_full_group_there() -> None:
    """gpu_eval with idx keeps the table's shapes and equals the full evaluation on idx."""
    t = _mixed_synthetic(500, 8)
    rng = np.random.default_rng(1)
    for i in range(8):
        job = _job(rng, i)
        cj = compile_job(job, NOW)
        full = gpu_eval(cj, t)
        idx = np.sort(rng.choice(len(t), size=100, replace=False))
        part = gpu_eval(cj, t, idx)
        if full is None:
            assert part is None
            continue
        assert part is not None
        assert np.array_equal(part.matching[idx], full.matching[idx])
        assert np.array_equal(part.ok[idx], full.ok[idx])
        rows = t.gpu_rows(idx)
        assert np.array_equal(part.passes[rows], full.passes[rows])


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 10_000))
def test_kept_rows_of_a_job_key_give_the_full_evaluation_on_every_capacity_view(seed) -> None:
    """The rows kept for a job's GPU, categorical and static tests (``keep_rows``), reused by
    every later job with the same key (and those kept for its GPU and categorical tests alone,
    reused by a job with another static threshold), give the full masks' feasible set on the
    table and on capacity views sharing its columns: reservations, a VRAM override, fewer
    cores, less RAM and disk, and capacity written in place after the rows were kept."""
    t = _mixed_synthetic(1500, seed)
    rng = np.random.default_rng(seed)
    g, n = len(t.gpu_model_code), len(t)
    views = [
        t,
        t.with_capacity(gpu_reserved=rng.random(g) < 0.3),
        # more free VRAM than the table reports: rows the table's levels drop must come back
        t.with_capacity(gpu_vram_free_gb=(t.gpu_vram_free_gb * 1.5 + 10).astype(np.float32)),
        t.with_capacity(
            cpu_cores=(t.cpu_cores // 2).astype(np.int32),
            ram_free_gb=(t.ram_free_gb * rng.uniform(0, 1, n)).astype(np.float32),
            disk_free_gb=(t.disk_free_gb / 3).astype(np.float32),
        ),
    ]
    selective = Job(
        gpu=GpuReq(models=("T4",), count=1, min_vram_free_gb=8.0),
        cpu=CpuReq(min_cores=2),
        memory=MemoryReq(min_free_gb=1.0),
        placement=PlacementReq(min_reputation=40.0),
    )
    # the same GPU and categorical tests, another static threshold: starts from the base rows
    stricter = attrs.evolve(selective, placement=PlacementReq(min_reputation=60.0))
    _, _, _, _, (base_key, base_deps) = _prefilter._static_tests(compile_job(stricter, NOW), t)
    reused = 0
    for job in [selective, stricter, *(_job(rng, seed + i) for i in range(4))]:
        if job is stricter:  # kept by the selective job's scan
            assert _derived.find_rows(base_key, base_deps) is not None
        for v in views:
            _check_fast_equals_full(job, v)
            _, _, _, (key, deps), _ = _prefilter._static_tests(compile_job(job, NOW), v)
            kept = _derived.find_rows(key, deps)
            reused += kept is not None and kept[0] is not None
    assert reused  # the selective job's rows were kept, and reused by the calls after the first
    last = views[-1]
    assert rank(selective, last, now=NOW).feasible
    last.ram_free_gb[:] = 0  # placement writes capacity in place: the kept rows still hold
    _check_fast_equals_full(selective, last)
    assert rank(selective, last, now=NOW).feasible == 0


def test_only_the_latest_row_sets_are_kept_per_table() -> None:
    """At most MAX_ROWS job keys keep rows per table (least recently used dropped)."""
    t = NodeTable.synthetic(3000, seed=9, now=NOW)
    jobs = [
        Job(gpu=GpuReq(models=("T4",), count=1, min_vram_free_gb=1.0 + i / 4))
        for i in range(_derived.MAX_ROWS + 3)
    ]
    keys = []
    for job in jobs:
        cj = compile_job(job, NOW)
        _prefilter.node_pass(cj, t)
        keys.append(_prefilter._static_tests(cj, t)[3])
    kept = [_derived.find_rows(key, deps) is not None for key, deps in keys]
    assert kept == [False] * 3 + [True] * _derived.MAX_ROWS


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 10_000))
def test_static_values_kept_with_the_base_rows_follow_the_column(seed) -> None:
    """The static columns' values kept with the rows passing a job's GPU and categorical
    tests are those of the column a job reads: jobs with new static thresholds on the table,
    then on a table sharing its GPU and categorical columns but not its reputation or driver
    columns, each give the full evaluation's feasible set."""
    t = _mixed_synthetic(1500, seed)
    rng = np.random.default_rng(seed)
    other = attrs.evolve(
        t,
        reputation=rng.uniform(0, 100, len(t)).astype(t.reputation.dtype),
        driver_version=t.driver_version[::-1].copy(),
    )
    base = Job(
        gpu=GpuReq(models=("T4",), count=1, min_vram_free_gb=8.0),
        placement=PlacementReq(min_reputation=40.0),
    )
    used = 0
    for v in (t, other, t):
        for rep in (40.0, *rng.uniform(0, 90, 3).tolist()):
            job = attrs.evolve(base, placement=PlacementReq(min_reputation=rep))
            _, _, _, _, (base_key, base_deps) = _prefilter._static_tests(compile_job(job, NOW), v)
            kept = _derived.find_rows(base_key, base_deps)
            used += kept is not None and kept[0] is not None and bool(kept[1])
            _check_fast_equals_full(job, v)
    assert used  # later jobs started from the kept rows and their kept values


@settings(max_examples=4, deadline=None)
@given(st.integers(0, 10_000))
def test_a_job_without_static_tests_keeps_its_rows_apart_from_the_base_rows(seed) -> None:
    """A job with no static test (no reputation or driver minimum) keeps its rows under a key
    of its own: a job with the same GPU and categorical tests and a static threshold, ranked
    after it on the same table, starts from the base rows and gives the full evaluation."""
    t = _mixed_synthetic(1500, seed)
    plain = Job(gpu=GpuReq(models=("T4",), count=1, min_vram_free_gb=8.0))
    with_static = attrs.evolve(plain, placement=PlacementReq(min_reputation=40.0))
    for job in (plain, with_static, plain, with_static):
        _check_fast_equals_full(job, t)
