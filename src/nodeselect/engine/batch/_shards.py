"""``rank_many(..., workers=N)``: the batch's work split between ``N`` threads, by jobs (a large
batch) or by rows (a few jobs), with the same result bit for bit as one thread.

**By jobs** (:func:`rank_split`, at least :data:`JOBS_PER_WORKER` jobs per worker): the batch is
planned once, as one thread plans it (shared per-node columns, job groups); the shared
columns (each score term's, the tie keys, free VRAM) and the groups' candidates are built at
once in the pool, then each group's GPU layout once, in the pool, and the jobs' rankings are
computed in pieces of consecutive jobs of a group, in the pool. A job's ranking does not
depend on which other jobs are ranked beside it (every value is elementwise per pair, every
top ``k`` per job), so the result is one thread's. Nothing per group or per job is repeated,
no large temporary is allocated per thread, and the threads share nothing mutable but caches
of equal values.

**By rows** (:func:`rank_sharded`, fewer jobs): the table's rows split into contiguous shards,
ranked in a thread pool, and each job's shard results merged exactly.

A shard is a :meth:`NodeTable.row_range` view (no copy; the derived columns are shared). Every
shard is ranked with the same ``now``, seed and the *global* :class:`TableStats` (the shards'
stats merged), so each shard ranks its rows exactly as the whole table would: scores are
elementwise, and the one total order (score descending, seeded tie key, uuid) makes the
exact top-k merge (:func:`nodeselect.engine.merge_top`, stable, shards in row order) the
whole table's top ``k``, ties between equal nodes broken by row as one table breaks them.
NumPy releases the GIL inside its loops, so the threads run the shards in parallel.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Final

import numpy as np

from nodeselect.engine._constraints import CompiledJob
from nodeselect.engine._rank import RankedNode, Ranking, ranking_of
from nodeselect.engine._shard import TableStats, merge_top, table_stats
from nodeselect.engine.batch._columns import BatchColumns
from nodeselect.engine.batch._group import JobGroup, grouped
from nodeselect.table import NodeTable

__all__ = [
    "JOBS_PER_WORKER",
    "MIN_PIECE",
    "MIN_SHARD_ROWS",
    "PIECES_PER_WORKER",
    "merge_shards",
    "rank_sharded",
    "rank_split",
    "shard_bounds",
]

#: A batch of at least this many jobs per worker is split by jobs (:func:`rank_split`), a
#: smaller one by rows (:func:`rank_sharded`: each shard repeats the per-job work, but a few
#: jobs cannot keep the workers busy).
JOBS_PER_WORKER: Final = 16
#: Pieces of jobs per worker (several, so a thread that drew cheap jobs takes another piece).
PIECES_PER_WORKER: Final = 8
#: Jobs per piece at least (each piece allocates its own feasibility buffers and starts its
#: own chunks of pairs: 8 cost 25 % more CPU than one thread at 100 jobs x 1M nodes).
MIN_PIECE: Final = 16

#: Rows per shard at least: a smaller table is split into fewer shards (the result is the same
#: for any number of shards; tiny shards would only repeat each job's fixed work).
MIN_SHARD_ROWS: Final = 1 << 14

#: Ranks compiled jobs on one table with the given most GPUs per node (the global stat).
RankAll = Callable[[list[CompiledJob], NodeTable, int], list[Ranking]]


def shard_bounds(n: int, shards: int) -> list[int]:
    """The first row of each of ``shards`` contiguous, near-equal shards of ``n`` rows, then
    ``n`` (shards are empty when ``shards > n``)."""
    return [i * n // shards for i in range(shards + 1)]


def _moved(node: RankedNode, by: int) -> RankedNode:
    """``node`` with its row shifted from its shard's numbering to the whole table's."""
    return RankedNode(
        index=node.index + by,
        uuid=node.uuid,
        name=node.name,
        score=node.score,
        terms=node.terms,
        gpu_indices=node.gpu_indices,
        tie_key=node.tie_key,
    )


def merge_shards(
    cj: CompiledJob,
    table: NodeTable,
    parts: Sequence[Ranking],
    starts: Sequence[int],
    *,
    k: int,
    seed: int,
) -> Ranking:
    """The ranking of ``cj`` on ``table`` from its rankings on the shards starting at ``starts``
    (in row order): feasible rows concatenated and renumbered, the exact top-``k`` merge."""
    idx = np.concatenate(
        [p.feasible_indices + np.int64(a) for p, a in zip(parts, starts, strict=True)]
    )
    start_of = {id(n): a for p, a in zip(parts, starts, strict=True) for n in p.top}
    top = tuple(_moved(n, start_of[id(n)]) if start_of[id(n)] else n for n in merge_top(parts, k))
    return ranking_of(cj, table, idx.astype(np.int64, copy=False), top, seed)


def rank_sharded(
    cjs: list[CompiledJob],
    table: NodeTable,
    rank_all: RankAll,
    *,
    k: int,
    seed: int,
    stats: TableStats | None,
    workers: int,
) -> list[Ranking]:
    """Every job's ranking on ``table``, computed by ``rank_all`` on ``workers`` row shards in
    as many threads (fewer when a shard would hold under :data:`MIN_SHARD_ROWS` rows) and
    merged (``stats``: the global stats, default the shards' merged)."""
    shards_n = max(1, min(workers, len(table) // max(1, MIN_SHARD_ROWS)))
    bounds = shard_bounds(len(table), shards_n)
    starts = bounds[:-1]
    shards = [table.row_range(a, b) for a, b in itertools.pairwise(bounds)]
    if stats is None:
        stats = table_stats(shards[0])
        for s in shards[1:]:
            stats = stats.merge(table_stats(s))
    max_gpus = stats.max_gpu_count
    with ThreadPoolExecutor(max_workers=shards_n, thread_name_prefix="nodeselect-rank") as pool:
        per_shard = list(pool.map(lambda s: rank_all(cjs, s, max_gpus), shards))
    return [
        merge_shards(cj, table, [p[j] for p in per_shard], starts, k=k, seed=seed)
        for j, cj in enumerate(cjs)
    ]


#: A task of :func:`_rank_pieces`: the group whose layout it needs (or ``None``), and it.
_Task = tuple[JobGroup | None, Callable[[], None]]


def _queue(
    batched: list[tuple[list[int], JobGroup]],
    alone: list[list[int]],
    *,
    size: int,
    workers: int,
    group_piece: Callable[[JobGroup, list[int]], None],
    alone_piece: Callable[[list[int]], None],
) -> list[_Task]:
    """:func:`_rank_pieces`' tasks in order of preference (``batched`` emptied: the tasks
    hold the groups, each freed once its last piece is done): the largest ``workers``
    groups' layouts at once, the jobs ranked alone (``alone``: their pieces), then each
    group's pieces, largest group first, each further layout queued after the pieces of the
    group ``workers`` before it, so that a few layouts (at most about ``2 * workers``) are
    alive at once, not every group's (1,000 jobs in 5 groups by VRAM total, 1M nodes, 2
    threads: a peak of 1.90 GB above the table, against 2.22 GB with every layout built
    first; bench_scale's 1,000 jobs x 1M nodes in 5 groups: 2 threads 1.68-1.76x one
    thread, against 1.57-1.58x with every layout first, in turns)."""
    by_size = sorted(batched, key=lambda mg: -mg[1].cells)
    batched.clear()
    layouts: list[_Task] = [(None, g.layout) for _, g in by_size if g.gpu]
    pending = layouts[:workers]
    later = layouts[workers:]
    pending += [(None, functools.partial(alone_piece, p)) for p in alone]
    for members, group in by_size:
        pending += [
            (group if group.gpu else None, functools.partial(group_piece, group, p))
            for p in _pieces(members, size)
        ]
        if group.gpu and later:
            pending.append(later.pop(0))
    return pending


def _pieces(members: list[int], size: int) -> list[list[int]]:
    """``members`` in consecutive pieces of near-equal length, about ``size`` each (never a
    short remainder: each piece pays a chunk's fixed cost and its own buffers)."""
    if not members:
        return []
    n = max(1, round(len(members) / size))
    return [members[i * len(members) // n : (i + 1) * len(members) // n] for i in range(n)]


def rank_split(
    batch: BatchColumns,
    cjs: list[CompiledJob],
    alone: list[int],
    candidates: list[list[int]],
    build: Callable[[list[int]], JobGroup | None],
    *,
    workers: int,
) -> list[Ranking]:
    """Every job's ranking, from one thread's plan of the batch (``alone``: the jobs ranked one
    by one; ``candidates``: the would-be groups' jobs, by index in ``cjs``, each group built
    by ``build``, ``None`` when its jobs are better ranked one by one), computed in
    ``workers`` threads: the shared per-node columns and the groups' candidates first, all
    at once, then the groups' layouts (largest first, a few at a time: :func:`_queue`), then
    pieces of consecutive jobs (:data:`PIECES_PER_WORKER` per worker, at least
    :data:`MIN_PIECE` jobs), the jobs ranked alone before the groups' (each costs a pass over
    the table); a thread takes the first piece whose group's layout is built, so none waits
    for a layout while other work is ready."""
    out: list[Ranking | None] = [None] * len(cjs)
    size = max(MIN_PIECE, math.ceil(len(cjs) / (PIECES_PER_WORKER * workers)))

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nodeselect-rank") as pool:
        # each column built once, before anything reads it; the groups' candidates beside them
        gpu = any(cjs[m[0]].count > 0 for m in candidates)
        warm = [pool.submit(f) for f in batch.warm_tasks(gpu=gpu)]
        built = [pool.submit(build, m) for m in candidates]
        for w in warm:
            w.result()
        _ = batch.pre  # assembled from the tasks' columns, once, before any reader
        batched = grouped(alone, candidates, [f.result() for f in built])
        built.clear()  # (the futures hold the groups too)
        _rank_pieces(batch, cjs, alone, batched, out, size=size, pool=pool, workers=workers)
    done = [r for r in out if r is not None]
    # every job is in ``alone`` or one group: a gap would shift every later job's ranking
    assert len(done) == len(cjs), "rank_split: a job was left unranked"
    return done


def _rank_pieces(
    batch: BatchColumns,
    cjs: list[CompiledJob],
    alone: list[int],
    batched: list[tuple[list[int], JobGroup]],
    out: list[Ranking | None],
    *,
    size: int,
    pool: ThreadPoolExecutor,
    workers: int,
) -> None:
    """:func:`rank_split`'s second step, with the shared columns built: every job's ranking
    into ``out``, by ``workers`` tasks of ``pool`` taking the layouts and pieces of jobs."""

    def group_piece(group: JobGroup, piece: list[int]) -> None:
        mine = [cjs[i] for i in piece]
        for i, r in zip(piece, group.rank_all(mine, threads=True), strict=True):
            out[i] = r

    def alone_piece(piece: list[int]) -> None:
        for i in piece:
            out[i] = batch.rank_one(cjs[i])

    pending = _queue(
        batched,
        _pieces(alone, size),
        size=size,
        workers=workers,
        group_piece=group_piece,
        alone_piece=alone_piece,
    )
    lock = threading.Lock()

    def work() -> None:
        """Take tasks until none is left: the first whose group is laid out (a thread that
        built the small groups' layouts ranks their jobs while another still builds the
        largest's, instead of waiting for it), else the first."""
        while True:
            with lock:
                if not pending:
                    return
                i = next((i for i, (g, _) in enumerate(pending) if g is None or g.laid_out), 0)
                _, task = pending.pop(i)
            task()

    for f in [pool.submit(work) for _ in range(workers)]:
        f.result()
