"""``rank_many`` returns exactly ``[rank(job, table, ...) for job in jobs]``, bit for bit.

These tests pin the batch API's contract so that a batched implementation sharing work across
jobs (grouping by categorical constraints and GPU models, per-batch score columns, a fast GPU
path) cannot change a feasible set, a score bit, a GPU choice, an explanation count or the
order of the results.
"""

from __future__ import annotations

import gc
import random
from datetime import datetime, timedelta

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect.engine._constraints import compile_job
from nodeselect.engine._rank import RankedNode, Ranking, rank
from nodeselect.engine._shard import TableStats, table_stats
from nodeselect.engine.batch import TopColumns, rank_many_columns, top_columns
from nodeselect.engine.batch import _group as _batch_group
from nodeselect.engine.batch import _rank_many as _batch
from nodeselect.engine.batch._columns import BatchColumns
from nodeselect.engine.batch._group import JobGroup
from nodeselect.engine.batch._pairs import PairScores
from nodeselect.engine.batch._rank_many import rank_many
from nodeselect.errors import InputError
from nodeselect.jobs._model import (
    CpuReq,
    DiskReq,
    GpuReq,
    Job,
    MemoryReq,
    PlacementReq,
    Preferences,
    SoftwareReq,
)
from nodeselect.table._derived import max_gpu_count
from nodeselect.table._table import NodeTable
from strategies_fleet import NOW, FleetNode, fleets, jobs

# Models of NodeTable.synthetic (plus one it lacks), alone and in overlapping sets.
MODELS: list[tuple[str, ...]] = [
    (),
    ("RTX-4090",),
    ("A100-80GB", "H100-80GB"),
    ("L40S", "T4", "A10", "RTX-3080"),
    ("T4",),
    ("RTX-3090", "RTX-4090"),
    ("H200",),
]
SYN_IMAGES = tuple(f"image-{i}:latest" for i in range(8))
WEIGHTS: list[dict[str, float]] = [
    {},
    {"idle": 5.0},
    {"idle": 1.0, "fit": 0.0},
    {"freshness": 2.0, "images": 1.0},
    {"reputation": 0.0, "fit": 3.0, "idle": 0.5},
]


# Every test runs three times: with the library's thresholds (small batches take the per-job
# path), with every group batched and each chunk of pairs small (chunk boundaries everywhere),
# and with every group batched in one chunk (many jobs' parameters mixed in each array).
PATHS = {
    "default": (_batch.MIN_JOBS, _batch.MIN_GROUP, _batch.GROUP_COST, _batch_group.CHUNK_PAIRS),
    "grouped-small-chunks": (1, 1, 0, 5),
    "grouped-one-chunk": (1, 1, 0, 1 << 20),
}


@pytest.fixture(autouse=True, scope="module", params=list(PATHS))
def batch_path(request: pytest.FixtureRequest) -> object:
    """Sets rank_many's thresholds for one of PATHS (module scope: hypothesis-safe)."""
    saved = (_batch.MIN_JOBS, _batch.MIN_GROUP, _batch.GROUP_COST, _batch_group.CHUNK_PAIRS)
    (_batch.MIN_JOBS, _batch.MIN_GROUP, _batch.GROUP_COST, _batch_group.CHUNK_PAIRS) = PATHS[  # type: ignore[misc]
        request.param
    ]
    yield request.param
    (_batch.MIN_JOBS, _batch.MIN_GROUP, _batch.GROUP_COST, _batch_group.CHUNK_PAIRS) = saved  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# comparison


def _bits(x: float) -> str:
    """The exact bits of a float (so -0.0 != 0.0 and NaN == NaN)."""
    return float(x).hex()


def _node_key(n: RankedNode) -> tuple[object, ...]:
    """Every field of a ranked node, floats as bits, terms in their order, with scalar types."""
    return (
        n.index,
        type(n.index),
        n.uuid,
        n.name,
        _bits(n.score),
        type(n.score),
        [(name, _bits(v), type(v)) for name, v in n.terms.items()],
        n.gpu_indices,
        [type(g) for g in n.gpu_indices],
        n.tie_key,
        type(n.tie_key),
    )


def assert_same(got: Ranking, want: Ranking) -> None:
    """``got`` equals ``want`` in every field, bit for bit, explanation counts included."""
    assert got.job is want.job
    assert (got.evaluated, got.feasible, got.seed) == (want.evaluated, want.feasible, want.seed)
    assert type(got.evaluated) is type(want.evaluated)
    assert type(got.feasible) is type(want.feasible)
    assert got.feasible_indices.dtype == want.feasible_indices.dtype
    assert got.feasible_indices.tolist() == want.feasible_indices.tolist()
    assert got.top == want.top
    assert [_node_key(n) for n in got.top] == [_node_key(n) for n in want.top]
    ge, we = got.explanation, want.explanation
    assert (ge.evaluated, ge.feasible) == (we.evaluated, we.feasible)
    assert ge.rejected == we.rejected
    assert ge.nearest_misses == we.nearest_misses
    assert ge.summary() == we.summary()


def check_batch(
    batch: list[Job],
    t: NodeTable,
    *,
    k: int,
    seed: int,
    now: datetime | None = NOW,
    stats: TableStats | None = None,
) -> list[Ranking]:
    """rank_many on ``batch`` equals the per-job loop, result by result, in input order."""
    got = rank_many(batch, t, k=k, now=now, seed=seed, stats=stats)
    assert isinstance(got, list)
    assert len(got) == len(batch)
    for job, r in zip(batch, got, strict=True):
        assert_same(r, rank(job, t, k=k, now=now, seed=seed, stats=stats))
    if now is not None:  # (one instant for both calls)
        columns = rank_many_columns(batch, t, k=k, now=now, seed=seed, stats=stats)
        assert_columns_hold(columns, got)
        assert columns.equals(top_columns(got))
    return got


def assert_columns_hold(c: TopColumns, rankings: list[Ranking]) -> None:
    """``c`` holds each ranking's feasible count and best nodes, field by field (walked here
    row by row: a plain reference for top_columns and rank_many_columns)."""
    assert len(c.feasible) == len(c.counts) == len(c.terms) == len(rankings)
    row = value = gpu = 0
    for j, r in enumerate(rankings):
        assert c.feasible[j] == r.feasible
        assert c.counts[j] == len(r.top)
        assert c.terms[j] == (tuple(r.top[0].terms) if r.top else ())
        for n in r.top:
            assert (int(c.rows[row]), int(c.tie[row])) == (n.index, n.tie_key)
            assert _bits(c.score[row]) == _bits(n.score)
            values = c.values[value : value + len(c.terms[j])].tolist()
            assert [_bits(v) for v in values] == [_bits(v) for v in n.terms.values()]
            assert c.gpu_counts[row] == len(n.gpu_indices)
            assert tuple(c.gpus[gpu : gpu + len(n.gpu_indices)].tolist()) == n.gpu_indices
            row, value, gpu = row + 1, value + len(n.terms), gpu + len(n.gpu_indices)
    assert (len(c.rows), len(c.score), len(c.tie), len(c.gpu_counts)) == (row,) * 4
    assert (len(c.values), len(c.gpus)) == (value, gpu)


# --------------------------------------------------------------------------------------------
# strategies


@st.composite
def job_batches(draw: st.DrawFn, base: st.SearchStrategy[Job] | None = None) -> list[Job]:
    """1..8 jobs: the same object twice, equal copies, jobs sharing GPU models / placement /
    software with another, and fresh jobs, interleaved (so groups hold several jobs)."""
    base = base if base is not None else jobs()
    pool = draw(st.lists(base, min_size=1, max_size=4))
    out: list[Job] = []
    for i in range(draw(st.integers(1, 8))):
        a = draw(st.sampled_from(pool))
        b = draw(st.sampled_from(pool))
        kind = draw(st.integers(0, 5))
        if kind == 0:
            job = a  # the very same object
        elif kind == 1:
            job = attrs.evolve(a, name=f"copy-{i}")  # equal requirements, another object
        elif kind == 2:
            job = attrs.evolve(a, placement=b.placement, software=b.software)
        elif kind == 3 and a.gpu.count and b.gpu.count:
            # same model set, other count / VRAM limits: one GPU group, several thresholds
            job = attrs.evolve(
                a, gpu=attrs.evolve(b.gpu, models=a.gpu.models, count=draw(st.integers(1, 3)))
            )
        elif kind == 4:
            job = attrs.evolve(a, preferences=b.preferences)
        else:
            job = draw(base)
        out.append(job)
    return out


def _k_for(choice: str, n: int, small: int) -> int:
    return {"zero": 0, "small": small, "len": n, "more": n + small}[choice]


K_CHOICES = st.sampled_from(["zero", "small", "small", "len", "more"])


def _synthetic_jobs(rng: np.random.Generator, n: int) -> list[Job]:
    """``n`` jobs for synthetic tables, drawn from few groups (shared models, placement and
    images) with varied counts, VRAM thresholds, per-GPU fallbacks, weights and strategies."""
    groups = [
        (
            MODELS[int(rng.integers(len(MODELS)))],
            PlacementReq(
                statuses=("AVAILABLE",) if rng.random() < 0.7 else ("AVAILABLE", "WORKING"),
                continents=("EU", "NA") if rng.random() < 0.3 else (),
                countries=("US", "DE") if rng.random() < 0.2 else (),
                compliance=("GDPR",) if rng.random() < 0.2 else (),
                min_reputation=float(rng.integers(0, 80)) if rng.random() < 0.4 else None,
                max_staleness=timedelta(seconds=1800) if rng.random() < 0.2 else None,
                allow_suspended=bool(rng.random() < 0.2),
            ),
            SoftwareReq(
                images_required=(SYN_IMAGES[int(rng.integers(8))],) if rng.random() < 0.3 else (),
                arch="x86_64" if rng.random() < 0.2 else None,
                min_driver="535" if rng.random() < 0.2 else None,
            ),
        )
        for _ in range(3)
    ]
    out: list[Job] = []
    for i in range(n):
        models, placement, software = groups[int(rng.integers(len(groups)))]
        count = int(rng.choice([0, 1, 1, 2, 3, 4]))
        gpu = GpuReq()
        if count:
            r = rng.random()
            gpu = GpuReq(
                models=models,
                count=count,
                min_vram_free_gb=float(rng.choice([0.5, 8, 20, 23.9, 40, 79.5]))
                if rng.random() < 0.7
                else None,
                # the fallbacks: max_load / min_vram_total beside the fast model+free-VRAM path
                max_load=float(rng.choice([0.3, 0.5, 0.9])) if r < 0.25 else None,
                min_vram_total_gb=24.0 if 0.25 <= r < 0.4 else None,
            )
        preferred = tuple(rng.choice(SYN_IMAGES, size=int(rng.integers(0, 3)), replace=False))
        out.append(
            Job(
                name=f"syn-{i}",
                gpu=gpu,
                cpu=CpuReq(min_cores=int(rng.choice([4, 16, 64])) if rng.random() < 0.3 else None),
                memory=MemoryReq(
                    min_free_gb=float(rng.integers(8, 300)) if rng.random() < 0.3 else None
                ),
                disk=DiskReq(min_free_gb=float(rng.integers(10, 3000)) if i % 4 == 3 else None),
                software=attrs.evolve(software, images_preferred=tuple(map(str, preferred))),
                placement=placement,
                preferences=Preferences(
                    strategy="pack" if rng.random() < 0.5 else "spread",
                    weights=dict(WEIGHTS[int(rng.integers(len(WEIGHTS)))]),
                ),
            )
        )
    # duplicates: the same object and an equal copy, at random positions
    if n >= 2:
        out.insert(int(rng.integers(len(out) + 1)), out[int(rng.integers(n))])
        out.insert(int(rng.integers(len(out) + 1)), attrs.evolve(out[0], name="dup"))
    return out


def _residual(t: NodeTable, rng: np.random.Generator) -> NodeTable:
    """A residual-capacity view: some GPUs reserved, VRAM/CPU/RAM/disk partly consumed."""
    g, n = len(t.gpu_model_code), len(t)
    return t.with_capacity(
        gpu_reserved=rng.random(g) < 0.3,
        gpu_vram_free_gb=(
            np.nan_to_num(t.gpu_vram_free_gb, nan=16.0) * rng.uniform(0.3, 1.2, g)
        ).astype(np.float32),
        cpu_cores=np.maximum(t.cpu_cores - rng.integers(0, 16, n), 0).astype(np.int32),
        ram_free_gb=(np.nan_to_num(t.ram_free_gb, nan=64.0) * rng.uniform(0.2, 1.0, n)).astype(
            np.float32
        ),
        disk_free_gb=(np.nan_to_num(t.disk_free_gb, nan=500.0) * rng.uniform(0.2, 1.0, n)).astype(
            np.float32
        ),
    )


# --------------------------------------------------------------------------------------------
# 1. generated fleets


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(fleets(), job_batches(), K_CHOICES, st.integers(1, 5), st.integers(0, 3))
def test_rank_many_equals_the_per_job_loop_on_generated_fleets(
    fleet: list[FleetNode], batch: list[Job], kc: str, small: int, seed: int
) -> None:
    """On document fleets, every result of rank_many equals rank for that job, bit for bit."""
    t = NodeTable.from_nodes(fleet, now=NOW)
    check_batch(batch, t, k=_k_for(kc, len(t), small), seed=seed)


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(fleets(min_size=2), job_batches(), st.integers(1, 3), st.integers(0, 3))
def test_rank_many_equals_the_loop_on_a_duplicated_fleet(
    fleet: list[FleetNode], batch: list[Job], k: int, seed: int
) -> None:
    """With every node present twice (scores tied in pairs), ties break as rank breaks them."""
    # from_nodes refuses repeated uuids (issue 12); concat of one table twice keeps the pairs
    once = NodeTable.from_nodes(fleet, now=NOW)
    t = NodeTable.concat([once, once])
    check_batch(batch, t, k=k, seed=seed)


# --------------------------------------------------------------------------------------------
# 2. synthetic fleets (GPU loads, many GPUs per node)


@settings(max_examples=10, deadline=None)
@given(
    st.integers(0, 2**16),
    st.sampled_from([2_000, 3_000, 4_000]),
    st.sampled_from([0, 1, 5, 12, 50]),
    st.integers(0, 3),
)
def test_rank_many_equals_the_loop_on_synthetic_fleets(
    table_seed: int, n: int, k: int, seed: int
) -> None:
    """On thousands-node synthetic fleets, batches of grouped GPU and CPU jobs match the loop."""
    t = NodeTable.synthetic(n, seed=table_seed, now=NOW)
    rng = np.random.default_rng(table_seed)
    check_batch(_synthetic_jobs(rng, int(rng.integers(4, 9))), t, k=k, seed=seed)


# --------------------------------------------------------------------------------------------
# 3. residual-capacity views


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 2**16), st.sampled_from([1, 7, 40]), st.integers(0, 3))
def test_rank_many_equals_the_loop_on_residual_views_of_synthetic_fleets(
    table_seed: int, k: int, seed: int
) -> None:
    """On with_capacity views ranked with the full table's stats, rank_many equals the loop."""
    t = NodeTable.synthetic(2_500, seed=table_seed, now=NOW)
    rng = np.random.default_rng(table_seed + 1)
    view = _residual(t, rng)
    check_batch(_synthetic_jobs(rng, 6), view, k=k, seed=seed, stats=table_stats(t))


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 2**16), st.sampled_from([9, 12, 16]))
def test_rank_many_uses_the_given_stats_like_rank(table_seed: int, max_gpus: int) -> None:
    """With merged shard stats (a larger max GPU count than this table's), spread-fit scores
    are normalized by the given stats, as rank normalizes them."""
    t = NodeTable.synthetic(2_000, seed=table_seed, now=NOW)
    stats = table_stats(t).merge(TableStats(nodes=1, gpus=max_gpus, max_gpu_count=max_gpus))
    assert stats.max_gpu_count != table_stats(t).max_gpu_count
    spread = Preferences(strategy="spread", weights={"fit": 3.0})
    batch = [
        Job(name="cpu", preferences=spread),
        Job(name="one", gpu=GpuReq(count=1), preferences=spread),
        Job(name="two", gpu=GpuReq(models=("RTX-4090",), count=2), preferences=spread),
        Job(name="pack", gpu=GpuReq(count=1, min_vram_free_gb=10.0)),
    ]
    got = check_batch(batch, t, k=10, seed=0, stats=stats)
    assert got[1].top != rank(batch[1], t, k=10, now=NOW).top  # the stats matter here


@pytest.mark.slow
@settings(max_examples=30, deadline=None)
@given(fleets(), job_batches(), st.integers(0, 2**16), K_CHOICES, st.integers(0, 3))
def test_rank_many_equals_the_loop_on_residual_views_of_generated_fleets(
    fleet: list[FleetNode], batch: list[Job], cap_seed: int, kc: str, seed: int
) -> None:
    """On residual views of document fleets (NaN capacities included), with full stats."""
    t = NodeTable.from_nodes(fleet, now=NOW)
    view = _residual(t, np.random.default_rng(cap_seed))
    stats = table_stats(t)
    if cap_seed % 2:  # a shard's view: the merged stats of a fleet with bigger nodes
        stats = stats.merge(TableStats(nodes=1, gpus=8, max_gpu_count=8))
    check_batch(batch, view, k=_k_for(kc, len(t), 3), seed=seed, stats=stats)


# --------------------------------------------------------------------------------------------
# 4. mixed, interleaved batches


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 2**16), st.randoms(use_true_random=False))
def test_interleaved_mixed_batches_come_back_in_input_order(
    table_seed: int, rnd: random.Random
) -> None:
    """GPU and CPU-only jobs, with and without images, across placements, shuffled together:
    each result is the loop's result for the job at that position."""
    t = NodeTable.synthetic(2_000, seed=table_seed, now=NOW)
    img = SYN_IMAGES[table_seed % 8]
    eu = PlacementReq(continents=("EU",))
    batch = [
        Job(name="gpu-a", gpu=GpuReq(models=("RTX-4090",), count=1, min_vram_free_gb=10.0)),
        Job(name="gpu-a2", gpu=GpuReq(models=("RTX-4090",), count=2, min_vram_free_gb=20.0)),
        Job(name="gpu-a-eu", gpu=GpuReq(models=("RTX-4090",), count=1), placement=eu),
        Job(name="gpu-b", gpu=GpuReq(models=("A100-80GB", "H100-80GB"), count=1)),
        Job(
            name="gpu-b-load", gpu=GpuReq(models=("A100-80GB", "H100-80GB"), count=1, max_load=0.4)
        ),
        Job(name="gpu-any", gpu=GpuReq(count=4), preferences=Preferences(strategy="spread")),
        Job(name="cpu", cpu=CpuReq(min_cores=16)),
        Job(name="cpu-eu", placement=eu, software=SoftwareReq(images_preferred=(img,))),
        Job(name="cpu-img", software=SoftwareReq(images_required=(img,))),
        Job(
            name="gpu-img",
            gpu=GpuReq(models=("T4",), count=1),
            software=SoftwareReq(images_required=(img,), images_preferred=(SYN_IMAGES[0], img)),
        ),
        Job(name="cpu-any-status", placement=PlacementReq(statuses=())),
    ]
    rnd.shuffle(batch)
    got = check_batch(batch, t, k=5, seed=table_seed % 4)
    assert [r.job.name for r in got] == [j.name for j in batch]


# --------------------------------------------------------------------------------------------
# 5. edge cases


def _small_table() -> NodeTable:
    return NodeTable.synthetic(200, seed=11, now=NOW)


def test_empty_job_list_gives_an_empty_list() -> None:
    """No jobs, no rankings (and no error), on a full and an empty table."""
    assert rank_many([], _small_table(), now=NOW) == []
    assert rank_many([], NodeTable.from_nodes([], now=NOW)) == []


def test_empty_table_gives_the_loops_empty_rankings() -> None:
    """On an empty table every job gets rank's empty ranking (0 evaluated, 0 feasible)."""
    t = NodeTable.from_nodes([], now=NOW)
    batch = [Job(), Job(gpu=GpuReq(models=("T4",), count=2, min_vram_free_gb=4.0))]
    got = check_batch(batch, t, k=10, seed=0)
    assert [(r.evaluated, r.feasible, r.top) for r in got] == [(0, 0, ()), (0, 0, ())]


def test_negative_k_raises_the_same_input_error_as_rank() -> None:
    """k < 0 is an InputError of rank's class, with and without jobs in the batch."""
    t = _small_table()
    with pytest.raises(InputError) as want:
        rank(Job(), t, k=-1, now=NOW)
    with pytest.raises(type(want.value)) as got:
        rank_many([Job(), Job(cpu=CpuReq(min_cores=8))], t, k=-1, now=NOW)
    assert "k=-1" in str(got.value)


@pytest.mark.parametrize("position", [0, 1, 3])
@pytest.mark.parametrize(
    ("bad", "names"),
    [
        (Job(gpu=GpuReq(count=0, min_vram_free_gb=10.0)), "gpu.count"),
        (Job(gpu=GpuReq(models=("H1000",), count=1)), "H1000"),
        (Job(gpu=GpuReq(models=("RTX-4090",), count=-2)), "gpu.count"),
    ],
)
def test_an_invalid_job_anywhere_in_the_batch_raises_rank_s_input_error(
    position: int, bad: Job, names: str
) -> None:
    """One invalid job at any position raises rank's InputError class, naming the fault."""
    t = _small_table()
    with pytest.raises(InputError) as want:
        rank(bad, t, now=NOW)
    assert names in str(want.value)
    good = [Job(), Job(gpu=GpuReq(count=1)), Job(gpu=GpuReq(models=("T4",), count=1))]
    batch = [*good[:position], bad, *good[position:]]
    with pytest.raises(type(want.value)) as got:
        rank_many(batch, t, now=NOW)
    assert names in str(got.value)


def test_default_now_is_read_once_for_every_job() -> None:
    """With now=None, equal jobs get bit-identical freshness terms (one clock read per batch)."""
    t = NodeTable.synthetic(3_000, seed=5)  # last_seen relative to the real clock
    fresh = Preferences(weights={"freshness": 1.0})
    jobs_ = [
        Job(name=f"j{i}", placement=PlacementReq(statuses=()), preferences=fresh) for i in range(6)
    ]
    got = rank_many(jobs_, t, k=len(t))
    first = [_node_key(n) for n in got[0].top]
    assert len(first) > 100
    for r in got[1:]:
        assert [_node_key(n) for n in r.top] == first


def test_explicit_now_reaches_every_job() -> None:
    """An explicit now is used for every job: freshness equals rank's at that now, not today's."""
    t = NodeTable.synthetic(1_000, seed=6, now=NOW)
    job = Job(preferences=Preferences(weights={"freshness": 1.0}))
    later = NOW + timedelta(hours=3)
    got = rank_many([job, job], t, k=20, now=later)
    for r in got:
        assert_same(r, rank(job, t, k=20, now=later))
    assert got[0].top != rank(job, t, k=20, now=NOW).top


# --------------------------------------------------------------------------------------------
# 6. determinism and order


@pytest.mark.slow  # several seconds; CI runs it with -m slow
@settings(max_examples=25, deadline=None)
@given(fleets(), job_batches(), st.integers(0, 5), st.integers(0, 3), st.data())
def test_rank_many_is_deterministic_and_permutation_equivariant(
    fleet: list[FleetNode], batch: list[Job], k: int, seed: int, data: st.DataObject
) -> None:
    """Twice gives equal results; permuting the jobs permutes the results the same way."""
    t = NodeTable.from_nodes(fleet, now=NOW)
    first = rank_many(batch, t, k=k, now=NOW, seed=seed)
    again = rank_many(batch, t, k=k, now=NOW, seed=seed)
    for a, b in zip(first, again, strict=True):
        assert_same(a, b)
    perm = data.draw(st.permutations(range(len(batch))))
    permuted = rank_many([batch[i] for i in perm], t, k=k, now=NOW, seed=seed)
    for pos, i in enumerate(perm):
        assert_same(permuted[pos], first[i])


@settings(max_examples=5, deadline=None)
@given(st.integers(0, 2**16))
def test_synthetic_batches_are_permutation_equivariant(table_seed: int) -> None:
    """On a synthetic fleet, reversing and rotating a grouped batch reorders results alike."""
    t = NodeTable.synthetic(2_000, seed=table_seed, now=NOW)
    batch = _synthetic_jobs(np.random.default_rng(table_seed), 7)
    base = rank_many(batch, t, k=8, now=NOW, seed=1)
    rev = rank_many(batch[::-1], t, k=8, now=NOW, seed=1)
    for a, b in zip(base, rev[::-1], strict=True):
        assert_same(b, a)
    rot = rank_many(batch[3:] + batch[:3], t, k=8, now=NOW, seed=1)
    for a, b in zip(base[3:] + base[:3], rot, strict=True):
        assert_same(b, a)


def test_a_job_alone_and_in_a_batch_rank_the_same() -> None:
    """A job's ranking does not depend on which other jobs share its batch."""
    t = NodeTable.synthetic(2_000, seed=9, now=NOW)
    job = Job(gpu=GpuReq(models=("RTX-4090",), count=2, min_vram_free_gb=12.0))
    alone = rank_many([job], t, k=10, now=NOW)[0]
    others = _synthetic_jobs(np.random.default_rng(9), 6)
    mixed = rank_many([*others[:3], job, *others[3:]], t, k=10, now=NOW)[3]
    assert_same(mixed, alone)
    assert alone.feasible > 0
    assert alone.top


def test_the_grouped_paths_really_rank_through_groups(
    batch_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under the grouped PATHS, a small batch of GPU jobs is ranked by JobGroup.rank_all."""
    calls: list[int] = []
    real = JobGroup.rank_all

    def counting(self: JobGroup, cjs: list[object]) -> list[Ranking]:
        calls.append(len(cjs))
        return real(self, cjs)  # type: ignore[arg-type]

    monkeypatch.setattr(JobGroup, "rank_all", counting)
    t = NodeTable.synthetic(500, seed=3, now=NOW)
    batch = [Job(gpu=GpuReq(count=1, min_vram_free_gb=8.0)), Job(gpu=GpuReq(count=2))]
    got = rank_many(batch, t, now=NOW)
    assert [r.top for r in got] == [rank(j, t, now=NOW).top for j in batch]
    assert (sum(calls) == 2) == (batch_path != "default")


@settings(max_examples=15, deadline=None)
@given(
    st.integers(0, 2**16),
    st.sampled_from(["pack", "spread"]),
    st.sampled_from(WEIGHTS),
    st.integers(1, 4),
    st.sampled_from([None, 4.0, 16.0]),
)
def test_group_score_bounds_contain_every_exact_score(
    table_seed: int, strategy: str, weights: dict[str, float], count: int, vram: float | None
) -> None:
    """The per-node score bounds the batch prunes with contain every feasible node's score."""
    t = NodeTable.synthetic(1_500, seed=table_seed, now=NOW)
    job = Job(
        gpu=GpuReq(count=count, min_vram_free_gb=vram),
        preferences=Preferences(strategy=strategy, weights=weights),
    )
    full = rank(job, t, k=len(t), now=NOW)
    cj = compile_job(job, NOW)
    b = BatchColumns(t, cj.now_s, 0, max_gpu_count(t), len(t))
    g = JobGroup(b, [cj])
    pos = np.searchsorted(g.cand, full.feasible_indices)
    assert np.array_equal(g.cand[pos], full.feasible_indices)
    bounds = np.array([0, len(pos)], dtype=np.int64)
    pairs = PairScores(
        g, [cj], pos=pos, idx=full.feasible_indices, job=np.zeros(len(pos), np.int64), bounds=bounds
    )
    rest = tuple((n, w) for n, w in cj.weights if n not in dict(pairs.static))
    lo, hi = g.score_bounds(pairs.static, rest, cj.weight_total, pack=strategy == "pack")
    at = {row: i for i, row in enumerate(g.cand.tolist())}
    for r in full.top:
        assert lo[at[r.index]] <= r.score <= hi[at[r.index]]


@pytest.mark.parametrize("workers", [1, 2])
def test_rank_many_pauses_the_collector_and_restores_it(
    monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """rank_many ranks with the collector paused and turns it on again, also after refusing
    a job."""
    seen: list[bool] = []
    ranked = _batch._rank_all

    def spy(*args: object, **kwargs: object) -> list[Ranking]:
        seen.append(gc.isenabled())
        return ranked(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_batch, "_rank_all", spy)
    table = NodeTable.synthetic(300, seed=2, now=NOW)
    batch = [Job(name=f"j{i}", gpu=GpuReq(count=1 + i % 2)) for i in range(8)]
    assert gc.isenabled()
    assert len(rank_many(batch, table, now=NOW, workers=workers)) == len(batch)
    assert seen
    assert not any(seen)  # paused while ranking
    assert gc.isenabled()
    bad = [*batch, Job(name="bad", gpu=GpuReq(count=-1))]
    with pytest.raises(InputError):
        rank_many(bad, table, now=NOW, workers=workers)
    assert gc.isenabled()  # restored when a job is refused inside the pause


def test_rank_many_columns_checks_its_arguments_as_rank_many_does() -> None:
    """A bad k, table or job is refused by rank_many_columns, naming the call."""
    t = NodeTable.synthetic(50, seed=1, now=NOW)
    with pytest.raises(InputError, match="k=-1"):
        rank_many_columns([Job(name="a")], t, k=-1, now=NOW)
    with pytest.raises(TypeError, match="rank_many_columns"):
        rank_many_columns([Job(name="a")], [t], now=NOW)  # type: ignore[arg-type]
    with pytest.raises(InputError) as e:
        rank_many_columns([Job(name="a"), Job(name="b", gpu=GpuReq(count=-1))], t, now=NOW)
    assert "jobs[1]" in "".join(getattr(e.value, "__notes__", []))
