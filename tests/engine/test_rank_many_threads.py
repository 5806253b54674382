"""``rank_many(..., workers=N)``: row shards ranked in threads and merged exactly, or the jobs
split between threads in pieces, give the single-thread result bit for bit, for any number of
workers (1..17, empty shards, pieces of one job, heavy ties)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_batch import _node_key, _residual, _synthetic_jobs

from nodeselect.engine._rank import Ranking
from nodeselect.engine._scorers import NodeScores
from nodeselect.engine._shard import table_stats
from nodeselect.engine.batch import _group as _batch_group
from nodeselect.engine.batch import _rank_many as _batch
from nodeselect.engine.batch import _shards
from nodeselect.engine.batch._columns import BatchColumns
from nodeselect.engine.batch._group import JobGroup
from nodeselect.engine.batch._rank_many import rank_many
from nodeselect.engine.batch._shards import shard_bounds
from nodeselect.errors import InputError
from nodeselect.jobs._model import Job
from nodeselect.table import _derived
from nodeselect.table._table import NodeTable
from strategies_fleet import NOW


@pytest.fixture(autouse=True, scope="module")
def tiny_shards() -> object:
    """Shards of any size (the library merges shards under MIN_SHARD_ROWS rows), so that small
    tables are really split, and the threads' chunks of pairs small, so that pieces of a group
    cross chunk boundaries (module scope: hypothesis-safe)."""
    saved = _shards.MIN_SHARD_ROWS, _shards.MIN_PIECE, _batch_group.THREAD_CHUNK_PAIRS
    _shards.MIN_SHARD_ROWS = 1  # type: ignore[misc]
    _shards.MIN_PIECE = 1  # type: ignore[misc]
    _batch_group.THREAD_CHUNK_PAIRS = 7  # type: ignore[misc]
    yield
    (  # type: ignore[misc]
        _shards.MIN_SHARD_ROWS,
        _shards.MIN_PIECE,
        _batch_group.THREAD_CHUNK_PAIRS,
    ) = saved


@contextlib.contextmanager
def split_by(how: str) -> Iterator[None]:
    """Force the split by ``rows`` or by ``jobs`` (whatever the batch size), then restore it."""
    saved = _shards.JOBS_PER_WORKER
    _shards.JOBS_PER_WORKER = 0 if how == "jobs" else 10**9  # type: ignore[misc]
    try:
        yield
    finally:
        _shards.JOBS_PER_WORKER = saved  # type: ignore[misc]


def _same(got: Ranking, want: Ranking) -> None:
    """Every field equal, floats compared as ``float.hex``, explanation counts included."""
    assert got.job is want.job
    assert (got.evaluated, got.feasible, got.seed) == (want.evaluated, want.feasible, want.seed)
    assert got.feasible_indices.dtype == want.feasible_indices.dtype
    assert got.feasible_indices.tolist() == want.feasible_indices.tolist()
    assert [_node_key(n) for n in got.top] == [_node_key(n) for n in want.top]
    assert got.explanation.rejected == want.explanation.rejected


def _tied(t: NodeTable, rng: np.random.Generator, uuids: int) -> NodeTable:
    """``t`` with every score input made equal across nodes (and GPUs) and the uuids drawn
    from ``uuids`` values, so that scores, tie keys and uuids tie in large blocks."""
    n, g = len(t), len(t.gpu_model_code)
    pool = t.uuid[: max(1, min(uuids, n))]
    return attrs.evolve(
        t,
        uuid=pool[rng.integers(0, len(pool), n)] if n else t.uuid,
        reputation=np.full(n, 60, np.float32),
        telemetry_epoch_s=np.full(n, t.telemetry_epoch_s[0] if n else 0.0),
        last_seen_epoch_s=np.full(n, t.last_seen_epoch_s[0] if n else 0.0),
        cpu_load=np.full(n, 0.25, np.float32),
        image_bits=np.zeros_like(t.image_bits),
        gpu_load=np.full(g, 0.5, np.float32),
    )


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, 2**16),
    st.integers(0, 300),
    st.integers(1, 17),
    st.sampled_from([0, 1, 3, 10, 400]),
    st.sampled_from(["plain", "tied", "residual"]),
    st.integers(0, 3),
    st.sampled_from(["rows", "jobs"]),
)
def test_threads_equal_one_thread_bit_for_bit(  # noqa: PLR0917 - hypothesis draws
    table_seed: int, n: int, workers: int, k: int, kind: str, seed: int, how: str
) -> None:
    """Any number of workers, split by rows (empty shards when above the rows) or by jobs
    (pieces of one job ranked at once from shared groups), gives one thread's rankings."""
    rng = np.random.default_rng(table_seed)
    t = NodeTable.synthetic(n, seed=table_seed, now=NOW)
    if kind == "tied":
        t = _tied(t, rng, int(rng.choice([1, 3, 50])))
    elif kind == "residual":
        t = _residual(t, rng)
    jobs = _synthetic_jobs(rng, int(rng.integers(1, 14)))
    want = rank_many(jobs, t, k=k, now=NOW, seed=seed)
    with split_by(how):
        got = rank_many(jobs, t, k=k, now=NOW, seed=seed, workers=workers)
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        _same(a, b)


def test_threads_use_the_given_stats_like_one_thread() -> None:
    """Given stats (a larger fleet's) reach every shard, as they reach the single thread."""
    rng = np.random.default_rng(5)
    t = NodeTable.synthetic(500, seed=5, now=NOW)
    stats = attrs.evolve(table_stats(t), max_gpu_count=64)
    jobs = _synthetic_jobs(rng, 12)
    want = rank_many(jobs, t, now=NOW, stats=stats)
    for how in ("rows", "jobs"):
        with split_by(how):
            got = rank_many(jobs, t, now=NOW, stats=stats, workers=3)
        for a, b in zip(got, want, strict=True):
            _same(a, b)


def test_shards_cover_every_row_once_in_order() -> None:
    """The shard bounds start at 0, end at n, never decrease, and differ by at most one row."""
    for n in (0, 1, 5, 17, 1000):
        for s in range(1, 19):
            b = shard_bounds(n, s)
            sizes = np.diff(b)
            assert (b[0], b[-1], len(b)) == (0, n, s + 1)
            assert sizes.min() >= 0
            assert sizes.max() - sizes.min() <= 1


def test_a_row_range_shares_the_derived_columns_and_equals_take() -> None:
    """A row range is the rows of ``take`` (same values) with its parent's derived columns."""
    t = NodeTable.synthetic(300, seed=2, now=NOW)
    view, copy = t.row_range(40, 170), t.take(np.arange(40, 170))
    for f in attrs.fields(NodeTable):
        a, b = getattr(view, f.name), getattr(copy, f.name)
        if isinstance(a, np.ndarray):
            assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), f.name
    assert np.shares_memory(view.reputation, t.reputation)
    assert np.array_equal(_derived.gpu_free_top(view), _derived._free_top(copy))
    assert np.array_equal(_derived.gpu_model_key(view)[0], _derived.gpu_model_key(t)[0][40:170])


@pytest.mark.parametrize("workers", [0, -2, 1.5, True])
def test_a_bad_worker_count_is_an_input_error(workers: object) -> None:
    """workers must be an integer >= 1; the message says what is accepted."""
    t = NodeTable.synthetic(10, seed=1, now=NOW)
    with pytest.raises(InputError, match="integer >= 1"):
        rank_many([Job()], t, now=NOW, workers=workers)  # type: ignore[arg-type]


def test_the_grouped_path_runs_inside_the_shards() -> None:
    """With a batch large enough to group, each shard still ranks through the grouped path."""
    assert _batch.MIN_JOBS <= 14
    rng = np.random.default_rng(9)
    t = NodeTable.synthetic(2000, seed=9, now=NOW)
    jobs = _synthetic_jobs(rng, 40)
    want = rank_many(jobs, t, now=NOW)
    with split_by("rows"):  # 40 jobs on 2 workers would be split by jobs
        got = rank_many(jobs, t, now=NOW, workers=2)
    for a, b in zip(got, want, strict=True):
        _same(a, b)


def test_a_small_table_is_split_into_fewer_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    """Below MIN_SHARD_ROWS rows per shard the table is split into fewer (same result)."""
    monkeypatch.setattr(_shards, "MIN_SHARD_ROWS", 100)
    seen: list[int] = []
    real = NodeTable.row_range

    def counting(self: NodeTable, start: int, stop: int) -> NodeTable:
        seen.append(stop - start)
        return real(self, start, stop)

    monkeypatch.setattr(NodeTable, "row_range", counting)
    t = NodeTable.synthetic(250, seed=3, now=NOW)
    jobs = _synthetic_jobs(np.random.default_rng(3), 5)
    want = rank_many(jobs, t, now=NOW)
    got = rank_many(jobs, t, now=NOW, workers=8)
    assert seen == [125, 125]
    for a, b in zip(got, want, strict=True):
        _same(a, b)


def test_a_large_batch_is_split_by_jobs_with_each_layout_built_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At JOBS_PER_WORKER jobs per worker the threads share one plan: no row shard, each GPU
    group's layout built once (as one thread builds it), and the same rankings."""
    monkeypatch.setattr(_batch, "GROUP_COST", 0)  # every group of MIN_GROUP jobs is laid out
    rng = np.random.default_rng(11)
    t = NodeTable.synthetic(3000, seed=11, now=NOW)
    jobs = _synthetic_jobs(rng, 2 * _shards.JOBS_PER_WORKER)
    layouts: list[int] = []
    real_sort = JobGroup._sort_gpus

    def counting_sort(self: JobGroup) -> None:
        layouts.append(id(self))
        real_sort(self)

    monkeypatch.setattr(JobGroup, "_sort_gpus", counting_sort)
    want = rank_many(jobs, t, now=NOW)
    one_thread = len(layouts)
    layouts.clear()
    monkeypatch.setattr(NodeTable, "row_range", None)  # a row shard would fail loudly
    got = rank_many(jobs, t, now=NOW, workers=2)
    assert one_thread > 0
    assert len(layouts) == len(set(layouts)) == one_thread
    for a, b in zip(got, want, strict=True):
        _same(a, b)


def test_pieces_are_consecutive_near_equal_and_cover_every_job() -> None:
    """A group's jobs are cut into consecutive pieces whose lengths differ by at most one,
    about ``size`` each, none empty (no pieces for no jobs)."""
    for n in (0, 1, 7, 16, 20, 200, 1001):
        for size in (1, 2, 16, 63, 5000):
            members = list(range(100, 100 + n))
            pieces = _shards._pieces(members, size)
            assert [j for p in pieces for j in p] == members
            lengths = [len(p) for p in pieces]
            assert not n or (min(lengths) >= 1 and max(lengths) - min(lengths) <= 1)
            assert len(pieces) == (max(1, round(n / size)) if n else 0)


def test_an_invalid_job_in_a_batch_split_by_jobs_is_named() -> None:
    """A job that does not compile, in a batch large enough to be split by jobs: the same
    InputError as one thread, noting ``jobs[i]``."""
    rng = np.random.default_rng(6)
    t = NodeTable.synthetic(500, seed=6, now=NOW)
    jobs = _synthetic_jobs(rng, 2 * _shards.JOBS_PER_WORKER)
    jobs[20] = attrs.evolve(jobs[20], gpu=attrs.evolve(jobs[20].gpu, count=-1))
    errors = []
    for workers in (1, 2):
        with pytest.raises(InputError) as info:
            rank_many(jobs, t, now=NOW, workers=workers)
        errors.append((str(info.value), info.value.__notes__))
    assert errors[0] == errors[1]
    assert any("jobs[20]" in note for note in errors[1][1])


def test_the_warm_tasks_build_the_score_inputs_one_thread_builds() -> None:
    """The shared columns built as separate tasks (each term's inputs, tie keys, free VRAM),
    in any order, give the score inputs ``NodeScores.of`` builds in one go, column for column
    and byte for byte, under the same names in the same order."""
    t = NodeTable.synthetic(3_000, seed=5, now=NOW)
    now_s = NOW.timestamp()
    want = NodeScores.of(t, now_s)
    batch = BatchColumns(t, now_s, 0, 8, 10)
    tasks = batch.warm_tasks(gpu=True)
    assert len(tasks) >= 3
    for task in reversed(tasks):
        task()
    got = batch.pre
    assert list(got.cols) == list(want.cols)
    for name, col in want.cols.items():
        assert got.cols[name].dtype == col.dtype
        assert got.cols[name].tobytes() == col.tobytes(), name
