"""Rank many jobs against one table at once, sharing the work jobs have in common.

``rank_many(jobs, table)`` returns exactly what ``[rank(job, table) for job in jobs]`` returns
(same feasible sets, scores, terms, GPU choices and order, bit for bit), with one ``now``.

* :mod:`nodeselect.engine.batch._columns`: what every job shares (per-node score inputs, tie keys,
  effective free VRAM, per-node partial sums of the node-only score terms);
* :mod:`nodeselect.engine.batch._group`: jobs grouped by their categorical constraints (status,
  region, compliance, operators, nodes, arch, required images) and GPU model set; per group,
  once, the candidate rows, their columns, and their GPUs in a dense layout sorted by free VRAM
  (feasibility is one comparison per candidate, the matching GPUs a prefix, the ``idle`` term
  a table lookup);
* :mod:`nodeselect.engine.batch._pairs`: the feasible (job, node) pairs of many jobs scored together
  in cache-sized chunks, pruned by score bounds, then each job's top ``k`` and GPU choices.

Every value is the per-job engine's elementwise computation, so results are bit for bit those
of :func:`nodeselect.rank`. A group's jobs share their per-GPU limits but free VRAM
(``min_vram_total_gb``, ``max_load``: part of the group's key). Jobs weighting a score term
without a batch path (a registered unit
whose ``batched`` is false), CPU-only jobs whose terms all have upper bounds (``rank`` scores
only the rows that can reach their top), and batches or groups too small to repay the
gathering, take the per-job path (with the batch's per-node columns).

``workers=N`` ranks in ``N`` threads: a large batch split by jobs, a small one by rows (row
shards merged exactly); :mod:`nodeselect.engine.batch._shards`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Sequence
from datetime import UTC, datetime
from typing import Final

import numpy as np

from nodeselect.engine._boundary import (
    check_jobs_arg,
    check_k_arg,
    check_table_arg,
    checked_now,
)
from nodeselect.engine._constraints import CompiledJob, compile_job, f32_at_least, f32_at_most
from nodeselect.engine._prefilter import _categorical_key
from nodeselect.engine._rank import Ranking, has_score_upper, rank, rank_compiled
from nodeselect.engine._shard import TableStats
from nodeselect.engine.batch import _shards
from nodeselect.engine.batch._alone import SharedRows, kept_fits
from nodeselect.engine.batch._columns import BatchColumns
from nodeselect.engine.batch._group import JobGroup, grouped
from nodeselect.engine.batch._shards import rank_sharded
from nodeselect.engine.batch._top import TopColumns, assemble, rows_of, top_columns
from nodeselect.engine.scorers import score_unit, with_terms
from nodeselect.errors import InputError
from nodeselect.jobs import Job
from nodeselect.table import NodeTable, collector_paused, max_gpu_count, uuid_hash

__all__ = ["GROUP_COST", "MIN_GROUP", "MIN_JOBS", "rank_many", "rank_many_columns"]

#: Below this many jobs the batch is a plain loop (the shared columns would cost more).
MIN_JOBS: Final = 4
#: Below this many jobs a group takes the per-job path (gathering would cost more).
MIN_GROUP: Final = 4
#: A GPU group is ranked together only when its jobs x table rows reach this many times its
#: GPU layout's cells (candidates x slots): the layout is a fixed cost per group, the per-job
#: path costs about one pass over the table per job (measured break-even: 7-11 at 100k nodes).
GROUP_COST: Final = 12


def rank_many(
    jobs: Sequence[Job],
    table: NodeTable,
    *,
    k: int = 10,
    now: datetime | None = None,
    seed: int = 0,
    stats: TableStats | None = None,
    workers: int = 1,
) -> list[Ranking]:
    """Rank every job of ``jobs`` on ``table``, sharing the work the jobs have in common.

    The result equals ``[rank(job, table, k=k, now=now, seed=seed, stats=stats) for job in
    jobs]``, bit for bit, with one ``now`` (default: the current time, read once) for every job
    (a job with alternatives is ranked by ``rank``, alternative by alternative).

    ``workers``: threads to rank in (default 1). With ``N > 1`` a batch of at least 16 jobs
    per thread is split by jobs (pieces of consecutive jobs ranked in a thread pool, after
    one plan of the batch); a smaller one by rows, into ``N`` contiguous shards (views, no
    copy) ranked with the global statistics, each job's shard results merged with the exact
    top-k merge. The result is the same, bit for bit, for any ``workers``; only the time
    differs (NumPy releases the GIL, so the threads run in parallel on as many cores).

    The cyclic garbage collector is paused during the call
    (:func:`nodeselect.table.collector_paused`): a batch allocates thousands of result objects
    and no reference cycle, and the collections they would start (each full one walking every
    object of the process) cost 1,000 jobs on 100k nodes a sixth of their time.

    Raises:
        InputError: ``k < 0``, ``workers < 1``, or a job is invalid (the error notes which:
            ``jobs[i]``).
        TypeError: an argument of the wrong type (a path, a FetchResult, a float ``now``).
    """
    now = _checked(jobs, table, k, now, "rank_many")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers={workers!r}: give a number of threads, an integer >= 1")
    with collector_paused():  # thousands of result objects, no cycle: see collector_paused
        return _rank_many(jobs, table, k=k, now=now, seed=seed, stats=stats, workers=workers)


def _checked(
    jobs: Sequence[Job], table: NodeTable, k: int, now: datetime | None, name: str
) -> datetime:
    """The arguments both batch calls share, checked (``name``: the call, for messages);
    returns ``now``, read once when not given."""
    check_jobs_arg(jobs, name)
    check_table_arg(table, name)
    check_k_arg(k, name)
    checked_now(now, name)
    if k < 0:
        raise InputError(f"k={k}: give a number of nodes >= 0")
    return now or datetime.now(UTC)


def rank_many_columns(
    jobs: Sequence[Job],
    table: NodeTable,
    *,
    k: int = 10,
    now: datetime | None = None,
    seed: int = 0,
    stats: TableStats | None = None,
) -> TopColumns:
    """:func:`rank_many`'s feasible counts and best nodes as arrays (:class:`TopColumns`),
    equal to ``top_columns(rank_many(jobs, table, k=k, now=now, seed=seed, stats=stats))``
    bit for bit, without a :class:`Ranking` or :class:`RankedNode` per job and node where
    jobs are ranked together: for callers that ship or store the results as columns (a
    survey's tiles), for which building the objects cost ~12 % of the ranking.

    Raises:
        InputError: ``k < 0`` or a job is invalid (the error notes which: ``jobs[i]``).
        TypeError: an argument of the wrong type.
    """
    now = _checked(jobs, table, k, now, "rank_many_columns")
    with collector_paused():
        if any(isinstance(job, Job) and job.alternatives for job in jobs):
            return top_columns(
                _with_alternatives(jobs, table, k=k, now=now, seed=seed, stats=stats)
            )
        cjs = [_compile(i, job, now) for i, job in enumerate(jobs)]
        max_gpus = stats.max_gpu_count if stats is not None else max_gpu_count(table)
        return _columns_all(cjs, table, max_gpus, k=k, seed=seed)


def _rank_many(
    jobs: Sequence[Job],
    table: NodeTable,
    *,
    k: int,
    now: datetime,
    seed: int,
    stats: TableStats | None,
    workers: int,
) -> list[Ranking]:
    """:func:`rank_many` of checked arguments."""
    if any(isinstance(job, Job) and job.alternatives for job in jobs):
        return _with_alternatives(jobs, table, k=k, now=now, seed=seed, stats=stats)
    cjs = [_compile(i, job, now) for i, job in enumerate(jobs)]
    max_gpus = stats.max_gpu_count if stats is not None else max_gpu_count(table)
    if workers > 1 and len(cjs) >= max(MIN_JOBS, _shards.JOBS_PER_WORKER * workers):
        split = functools.partial(_shards.rank_split, workers=workers)
        return _rank_all(cjs, table, max_gpus, k=k, seed=seed, split=split)
    if workers > 1 and cjs:
        if len(cjs) >= MIN_JOBS:
            uuid_hash(table)  # once, shared by the shards (their tie keys)
        return rank_sharded(
            cjs,
            table,
            functools.partial(_rank_all, k=k, seed=seed),
            k=k,
            seed=seed,
            stats=stats,
            workers=workers,
        )
    return _rank_all(cjs, table, max_gpus, k=k, seed=seed)


#: Ranks a planned batch in threads: the shared columns, the jobs ranked alone, the member
#: lists of the would-be groups and what builds one (:func:`_group_of`).
_Split = Callable[
    [
        BatchColumns,
        list[CompiledJob],
        list[int],
        list[list[int]],
        Callable[[list[int]], JobGroup | None],
    ],
    list[Ranking],
]


def _rank_all(
    cjs: list[CompiledJob],
    table: NodeTable,
    max_gpus: int,
    *,
    k: int,
    seed: int,
    split: _Split | None = None,
) -> list[Ranking]:
    """Every compiled job's ranking on ``table`` (``max_gpus``: the global stat), in one
    thread, or planned here and ranked in threads by ``split`` (``_shards.rank_split``, which
    also builds the groups, in its pool)."""
    if len(cjs) < MIN_JOBS:
        return [rank_compiled(cj, table, k=k, seed=seed, max_gpus=max_gpus) for cj in cjs]
    batch = BatchColumns(table, cjs[0].now_s, seed, max_gpus, k)
    alone, candidates = _plan(cjs, table)
    build = functools.partial(_group_of, batch, cjs)
    if split is not None:
        return split(batch, cjs, alone, candidates, build)
    single, batched = _alone_first(batch, cjs, alone, candidates, build, k=k, seed=seed)
    out: list[Ranking | None] = [None] * len(cjs)
    for i, r in zip(alone, single, strict=True):
        out[i] = r
    batched.reverse()
    while batched:  # each group dropped once ranked: one GPU layout alive at a time
        members, group = batched.pop()
        mine = [cjs[i] for i in members]
        for i, r in zip(members, group.rank_all(mine), strict=True):
            out[i] = r
        del group
    return [r for r in out if r is not None]


def _alone_first(
    batch: BatchColumns,
    cjs: list[CompiledJob],
    alone: list[int],
    candidates: list[list[int]],
    build: Callable[[list[int]], JobGroup | None],
    *,
    k: int,
    seed: int,
) -> tuple[list[Ranking], list[tuple[list[int], JobGroup]]]:
    """A planned batch's groups built, and the rankings of the jobs ``alone`` (to which the
    jobs of a group not worth building are added, in place), ranked one by one."""
    batched = grouped(alone, candidates, [build(m) for m in candidates])
    # the per-node score inputs and tie keys cost a pass over the table: only when groups
    # build them anyway
    pre, keys = (batch.pre, batch.keys) if batched else (None, None)
    # (jobs whose kept rows fit in the table's entries: the per-job path with them, as a
    # repeated loop over ``rank`` reads them again)
    mine = [cjs[i] for i in alone]
    shared = SharedRows(batch.t, mine, kept=kept_fits(mine, batch.t))
    single = [
        shared.rank(cjs[i], k=k, seed=seed, max_gpus=batch.max_gpus, pre=pre, keys=keys)
        for i in alone
    ]
    return single, batched


def _columns_all(
    cjs: list[CompiledJob], table: NodeTable, max_gpus: int, *, k: int, seed: int
) -> TopColumns:
    """:func:`_rank_all` in one thread, as :class:`TopColumns`: the groups' best rows taken
    as arrays, the other jobs' rankings converted."""
    if len(cjs) < MIN_JOBS:
        return top_columns(
            [rank_compiled(cj, table, k=k, seed=seed, max_gpus=max_gpus) for cj in cjs]
        )
    batch = BatchColumns(table, cjs[0].now_s, seed, max_gpus, k)
    alone, candidates = _plan(cjs, table)
    build = functools.partial(_group_of, batch, cjs)
    single, batched = _alone_first(batch, cjs, alone, candidates, build, k=k, seed=seed)
    feasible = np.zeros(len(cjs), dtype=np.int64)
    feasible[alone] = [r.feasible for r in single]
    pieces = [rows_of(alone, single)]
    batched.reverse()
    while batched:  # each group dropped once ranked: one GPU layout alive at a time
        members, group = batched.pop()
        at = np.array(members, dtype=np.int64)
        counts, rows = group.best_rows([cjs[i] for i in members], at)
        feasible[at] = counts
        pieces += rows
        del group
    return assemble(pieces, feasible, [tuple(n for n, _ in cj.weights) for cj in cjs])


def _plan(cjs: list[CompiledJob], table: NodeTable) -> tuple[list[int], list[list[int]]]:
    """The jobs (by index in ``cjs``) ranked one by one, and the member lists of the would-be
    groups (jobs sharing a :func:`_group_key`, at least :data:`MIN_GROUP` of them)."""
    groups: dict[Hashable, list[int]] = {}
    alone: list[int] = []
    for i, cj in enumerate(cjs):
        if all(score_unit(name).batched for name, _ in cj.weights) and not _pruned_alone(cj, table):
            groups.setdefault(_group_key(cj), []).append(i)
        else:
            alone.append(i)
    candidates = [m for m in groups.values() if len(m) >= MIN_GROUP]
    alone += [i for m in groups.values() if len(m) < MIN_GROUP for i in m]
    return alone, candidates


def _group_of(batch: BatchColumns, cjs: list[CompiledJob], members: list[int]) -> JobGroup | None:
    """The group of the jobs ``members`` (its candidates, not yet its GPU layout), or ``None``
    when ranking them one by one costs less: jobs x table rows under :data:`GROUP_COST` x the
    layout's cells."""
    group = JobGroup(batch, [cjs[i] for i in members], layout=False)
    return group if len(members) * len(batch.t) >= GROUP_COST * group.cells else None


def _with_alternatives(
    jobs: Sequence[Job],
    table: NodeTable,
    *,
    k: int,
    now: datetime,
    seed: int,
    stats: TableStats | None,
) -> list[Ranking]:
    """:func:`rank_many` when some jobs have alternatives: those are ranked by :func:`rank`
    (alternative by alternative), the others together."""
    alt = [i for i, job in enumerate(jobs) if isinstance(job, Job) and job.alternatives]
    out: list[Ranking | None] = [None] * len(jobs)
    for i in alt:
        try:
            out[i] = rank(jobs[i], table, k=k, now=now, seed=seed, stats=stats)
        except InputError as e:
            e.add_note(f"in jobs[{i}] (name {jobs[i].name!r})")
            raise
    plain = [i for i in range(len(jobs)) if out[i] is None]
    for i in plain:  # an invalid job is named by its position in ``jobs``
        _compile(i, jobs[i], now)
    rest = rank_many([jobs[i] for i in plain], table, k=k, now=now, seed=seed, stats=stats)
    for i, r in zip(plain, rest, strict=True):
        out[i] = r
    return [r for r in out if r is not None]


def _compile(i: int, job: Job, now: datetime) -> CompiledJob:
    try:
        return with_terms(compile_job(job, now))
    except InputError as e:
        e.add_note(f"in jobs[{i}] (name {job.name!r})")
        raise


def _pruned_alone(cj: CompiledJob, table: NodeTable) -> bool:
    """A CPU-only job whose every weighted term has an upper bound: ``rank`` scores exactly only
    the rows that can reach its top (measured: 1.4-1.7x faster than a CPU-only group at 1M
    nodes, even at 100k), so it takes the per-job path."""
    return cj.count == 0 and has_score_upper(cj, table)


def _group_key(cj: CompiledJob) -> Hashable:
    """What a group's jobs share: categorical constraints, and for GPU jobs the model set and
    the per-GPU limits but free VRAM (thresholds as float32, as the limits compare them)."""
    if cj.count == 0:
        return (_categorical_key(cj), True, cj.model_codes)
    return (
        _categorical_key(cj),
        False,
        cj.model_codes,
        None if cj.min_vram_total_gb is None else float(f32_at_least(cj.min_vram_total_gb)),
        None if cj.max_load is None else float(f32_at_most(cj.max_load)),
    )
