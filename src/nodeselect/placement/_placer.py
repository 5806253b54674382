"""Batch placement: many jobs, some of them gangs, on one fleet, never promising a resource twice.

How it works (docs/placement.md has the full story):

1. **Survey.** Every job is ranked once on the full table (the engine's masks and scorers,
   normalized with the table's global statistics). This gives each job's feasible count, its
   best ``candidates`` nodes, and, OR-ed together, which nodes any job fits at all.
2. **Order.** Priority first (higher first); then hardest to place first: fewest feasible
   nodes per replica needed (``feasible / nodes``); then more GPUs in total
   (``gpu.count * nodes``); then a seeded hash of (seed, job index, job name). Deterministic and
   independent of the order of the nodes.
3. **Place, reserving as it goes.** A residual-capacity object tracks reserved GPUs and the
   cores / RAM / disk still free per node. Reserving only ever *lowers* capacity, and a node's
   score depends only on its own columns and the global statistics, so a node nobody has
   touched keeps its survey score. At a job's turn, its survey candidates that are untouched
   plus every touched node are re-ranked together on the residual view (exact scores and the
   engine's own tie order); the prefix of that list down to the last untouched survey
   candidate is provably the exact residual ranking. When the gang rules need more than that
   prefix, or the candidates ran out, the job is re-ranked on the whole residual table instead:
   untouched nodes with their survey scores (kept for gangs, else surveyed again and kept per
   job group within a budget), touched nodes re-checked.
4. **Gangs** (``nodes > 1``) pick all replicas from that list (see
   :mod:`nodeselect.placement._gang`) and reserve nothing unless every replica fits.
5. **Leftovers.** An unplaced job's explanation is computed against the residual capacity.
   Stranded GPUs are free GPUs on nodes that some job of the batch fitted before placement
   but none fits after it.
6. **Repair and second opinion** (the default; ``repair=False`` skips them): left-out jobs
   that fit the empty fleet are placed by moving, swapping or evicting replicas of lower or
   equal priority (:mod:`nodeselect.placement._repair`); when some are still left out on a
   fleet of at most ``SECOND_OPINION_NODES`` nodes, greedy passes that prefer the least
   contended of each job's best nodes are tried and kept when no tier loses and some tier
   gains. ``objective="optimal"`` then hands the plan to the exact solver
   (:mod:`nodeselect.placement._optimal`).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import threading
from collections import Counter, OrderedDict, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

import attrs
import numpy as np
import numpy.typing as npt

from nodeselect.engine import (
    CompiledJob,
    GpuEval,
    TableStats,
    check_jobs_arg,
    check_table_arg,
    checked_now,
    combine,
    compile_job,
    evaluate_compiled,
    gpu_choice,
    gpu_eval,
    node_key,
    node_mask,
    rank,
    rows_pass,
    score_terms,
    score_unit,
    table_stats,
    top_positions,
)
from nodeselect.errors import InputError, NodeSelectError
from nodeselect.jobs import GangReq, Job, check_job
from nodeselect.placement._gang import UNKNOWN, Candidate, select_nodes
from nodeselect.placement._plan import (
    JobAssignment,
    Plan,
    PlanQuality,
    Replica,
    Residual,
    SolverReport,
    Unplaced,
    UnplacedCause,
    UnplacedDetail,
    UnplacedWhy,
    totals_from,
)
from nodeselect.table import NodeTable, TableNode, repeated_uuids

__all__ = ["SurveyedJob", "place"]

#: Survey candidates kept per job (per replica for gangs, at least this many).
DEFAULT_CANDIDATES = 64
#: Candidates re-ranked per replica at a job's turn before widening.
HEAD = 8
#: Candidates per replica taken from the whole residual table before taking them all.
FULL = 64


@attrs.frozen
class _Survey:
    """What the first ranking of a job on the full table told us.

    Only ``feasible`` and the best ``rows`` (with their ``scores``) are always held: memory
    per job is O(candidates). The per-node facts -- the packed feasibility mask ``bits``,
    ``all_scores`` and the per-GPU passes of the GPU group (``ge``) -- are kept within
    budgets (``KEEP_BITS``, ``KEEP_SCORES``, ``CACHE_BYTES``) and otherwise recomputed from
    the full table by the engine when asked for (same functions, same inputs: the same
    values), so a batch of 100k jobs on 100k nodes does not hold jobs x nodes of them.
    """

    feasible: int
    rows: npt.NDArray[np.int64] = attrs.field(eq=False)  # best first
    complete: bool  # rows holds every feasible node
    bits: npt.NDArray[np.uint8] | None = attrs.field(eq=False)  # packed feasibility mask
    scores: npt.NDArray[np.float64] = attrs.field(eq=False)  # of rows
    #: recomputes what is not kept (the job's compiled form and the placer's bounded cache)
    source: _Source = attrs.field(eq=False)
    #: the score of every feasible row (ascending rows), kept for gangs within a memory budget
    all_scores: npt.NDArray[np.float64] | None = attrs.field(eq=False, default=None)

    @property
    def ge(self) -> GpuEval | None:
        """The GPU group on the full table (only ``passes`` kept; shared per GPU limits)."""
        return self.source.cache.passes(self.source.cj)

    def was_feasible(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Whether each row admitted a replica on the full table (before any reservation)."""
        if self.bits is None:
            return self.source.was_feasible(rows)
        bit: npt.NDArray[np.bool_] = ((self.bits[rows >> 3] >> (7 - (rows & 7))) & 1).astype(
            np.bool_
        )
        return bit

    def feasible_rows(self, n: int) -> npt.NDArray[np.int64]:
        """Every row that admitted a replica on the full table, ascending."""
        if self.bits is None:
            return self.source.feasible_rows()
        # as bool: NumPy's nonzero is ~6x faster on bools than on the uint8 unpackbits gives
        bits = np.unpackbits(self.bits, count=n).view(np.bool_)
        return np.flatnonzero(bits).astype(np.int64)


@attrs.frozen(eq=False)
class SurveyedJob:
    """One job's survey computed elsewhere (on a cluster: :func:`nodeselect.dask.place`).

    Attributes:
        feasible: how many nodes of the table pass every hard constraint of the job.
        rows: the best ``max(candidates, candidates * job.nodes)`` of them (all when fewer),
            best first in the engine's total order, as rows of the table placed on.
        scores: their scores, normalized with the whole table's statistics.

    ``place(..., surveyed=...)`` trusts these to be the job's exact ranking on the table (what
    ``rank(job, table, k=...)`` gives); the plan then equals ``place`` without them.
    """

    feasible: int
    rows: npt.NDArray[np.int64]
    scores: npt.NDArray[np.float64]


#: The second opinions tried in turn (``small_first`` of each), while capacity is short.
SECOND_OPINIONS = (False, True)
#: Second opinions run on fleets of at most this many nodes: each is a whole greedy pass, worth
#: it where the repair budget is at least one attempt per job (``_repair.budget``).
SECOND_OPINION_NODES = 16_000

#: What one greedy + repair run changes on a placer (swapped in by the second opinion).
_STATE = (
    "residual",
    "order",
    "placed",
    "left",
    "repaired",
    "moved",
    "displaced",
    "displaced_jobs",
    "replay_reasons",
    "pressure",
    "small_first",
)


def _tiers(p: _Placer) -> tuple[int, ...]:
    """Placed jobs per priority tier, highest tier first."""
    tiers = sorted({job.priority for job in p.jobs}, reverse=True)
    return tuple(sum(1 for j in p.placed if p.jobs[j].priority == t) for t in tiers)


def _tie(seed: int, index: int, name: str) -> int:
    digest = hashlib.blake2b(f"{seed}\x00{index}\x00{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _order(
    jobs: Sequence[Job], surveys: Sequence[_Survey], seed: int, *, small_first: bool = False
) -> list[int]:
    """Job indices in placement order (module docstring, step 2). ``small_first`` (a second
    opinion only): within a priority, fewest feasible nodes per replica times GPUs asked for
    first -- jobs that are both easy to place elsewhere and big wait."""

    def key(j: int) -> tuple[float, float, float, int]:
        job = jobs[j]
        slack = surveys[j].feasible / max(job.nodes, 1)
        size = job.gpu.count * job.nodes
        if small_first:
            return (-job.priority, slack * (1 + size), -size, _tie(seed, j, job.name))
        return (-job.priority, slack, -size, _tie(seed, j, job.name))

    return sorted(range(len(jobs)), key=key)


def _requirements_key(job: Job) -> str:
    """Jobs with equal keys evaluate identically on every table (name, priority, replica count
    and gang rules do not enter the engine), so they share one survey."""
    return repr(attrs.evolve(job, name="", priority=0, nodes=1, gang=GangReq()))


def _scope_codes(table: NodeTable, scope: str | None) -> npt.NDArray[np.int64] | None:
    """Per-node code of a gang's ``same`` scope (UNKNOWN where not proved)."""
    if scope is None:
        return None
    if scope == "continent":
        codes = table.continent_code.astype(np.int64)
    elif scope == "country":
        codes = table.country_code.astype(np.int64)
    else:
        codes = table.subdivision_code.astype(np.int64)
    return np.where(codes == 0, UNKNOWN, codes)


def _best(
    table: NodeTable,
    idx: npt.NDArray[np.int64],
    score: npt.NDArray[np.float64],
    *,
    seed: int,
    k: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The best ``k`` rows of ``idx`` (any order) by the engine's total order (score desc,
    seeded uuid key, uuid), with their scores, best first."""
    if len(idx) == 0 or k == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    pos = top_positions(table, idx, score, seed=seed, k=k)
    return idx[pos], score[pos]


#: The per-node columns residual capacity changes (``NodeTable.with_capacity``).
_CAPACITY_COLUMNS = frozenset({"cpu_cores", "ram_free_gb", "disk_free_gb"})


def _capacity_ok(
    cj: CompiledJob, view: NodeTable, rows: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """The node-level constraints reading a column placement changes (today ``cpu-cores``,
    ``ram-free``, ``disk-free``; any registered unit whose ``columns`` meet
    ``_CAPACITY_COLUMNS``), exactly as the engine states them, on ``rows`` of the residual view.
    Every other node-level constraint reads columns placement never changes, so a row the
    survey found feasible still passes them."""
    return rows_pass(cj, view, rows, reading=_CAPACITY_COLUMNS)


#: Bytes the survey's shared work (GPU groups, node masks, score terms, per-GPU passes) may
#: hold; beyond it the oldest entries are dropped and recomputed when needed again.
CACHE_BYTES = 512 << 20
#: Packed feasibility masks are kept per job group up to this many bytes in all (64 MiB: 5,000
#: groups at 100k nodes); beyond it a group's feasibility is recomputed when asked for.
KEEP_BITS = 1 << 26

#: A cacheable score term is computed over the whole table and cached from the n-th survey
#: asking for its key on (1: always, as before issue 13); earlier ones score their own rows.
SHARE_TERMS_FROM = 2

_V = TypeVar("_V")


class _Bounded(Generic[_V]):
    """A dict of arrays holding at most ``limit`` bytes: least recently used entries go first
    (an entry larger than the limit is not kept). A speed aid only: a dropped value is
    recomputed by the same function on the same inputs."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._items: OrderedDict[tuple[object, ...], tuple[_V, int]] = OrderedDict()

    def get(self, key: tuple[object, ...]) -> _V | None:
        got = self._items.get(key)
        if got is None:
            return None
        self._items.move_to_end(key)
        return got[0]

    def put(self, key: tuple[object, ...], value: _V, size: int) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.used -= old[1]
        if size > self.limit:
            return
        self._items[key] = (value, size)
        self.used += size
        while self.used > self.limit:
            _, (_, dropped) = self._items.popitem(last=False)
            self.used -= dropped


def _gpu_bytes(ge: GpuEval) -> int:
    arrays = [ge.available, ge.passes, ge.matching, ge.ok, ge.vram_free_gb, ge.load]
    return sum(a.nbytes for a in arrays) + sum(m.nbytes for m in ge.limit_passes.values())


class _SurveyCache:
    """Work the survey shares between jobs whose requirements partly agree.

    The engine evaluates one job at a time; a batch repeats most of that work. Per GPU limits
    (models, VRAM, load -- not the count) the per-GPU pass mask and the per-node matching count
    are the same for every job, so the GPU group is evaluated once per distinct limits; the
    node-level masks once per distinct node-level requirements (``node_key``); the raw score
    of every term with a :meth:`~nodeselect.engine.ScoreTerm.cache_key` once per distinct key
    over the whole table (``reputation``, ``freshness``; ``idle`` per GPU limits), then
    gathered. Every value is computed by the engine's own functions on the same inputs and the
    combination is the engine's, so the survey equals ``rank()`` bit for bit (tested).
    """

    def __init__(self, table: NodeTable, stats: TableStats, budget: int | None = None) -> None:
        self.table = table
        self.stats = stats
        self.all_rows = np.arange(len(table), dtype=np.int64)
        limit = CACHE_BYTES if budget is None else budget
        self._gpu: _Bounded[GpuEval] = _Bounded(limit // 4)
        self._nodes: _Bounded[npt.NDArray[np.bool_]] = _Bounded(limit // 4)
        self._terms: _Bounded[npt.NDArray[np.float64]] = _Bounded(limit // 4)
        self._slim: _Bounded[GpuEval] = _Bounded(limit // 4)
        self._seen: dict[tuple[object, ...], int] = {}

    def held(self) -> int:
        """Bytes of arrays the cache holds now (at most ``CACHE_BYTES``)."""
        return sum(c.used for c in (self._gpu, self._nodes, self._terms, self._slim))

    @staticmethod
    def _gpu_key(cj: CompiledJob) -> tuple[object, ...]:
        return (cj.model_codes, cj.min_vram_free_gb, cj.min_vram_total_gb, cj.max_load)

    def gpu(self, cj: CompiledJob) -> GpuEval | None:
        """The job's GPU group on the full table (``None`` for a CPU-only job)."""
        if cj.count == 0:
            return None
        key = self._gpu_key(cj)
        ge = self._gpu.get(key)
        if ge is None:
            ge = gpu_eval(cj, self.table)
            assert ge is not None  # count > 0
            self._gpu.put(key, ge, _gpu_bytes(ge))
        if ge.count == cj.count:
            return ge
        return attrs.evolve(ge, count=cj.count, ok=ge.matching >= cj.count)

    def nodes(self, cj: CompiledJob) -> npt.NDArray[np.bool_]:
        """Where the job passes every node-level constraint (read-only; shared)."""
        key = node_key(cj)
        mask = self._nodes.get(key)
        if mask is None:
            mask = node_mask(cj, self.table)
            self._nodes.put(key, mask, mask.nbytes)
        return mask

    def terms(
        self, cj: CompiledJob, idx: npt.NDArray[np.int64], ge: GpuEval | None
    ) -> dict[str, npt.NDArray[np.float64]]:
        """Each weighted term's raw score for rows ``idx``, as ``score_terms`` gives them.

        A cacheable term is computed over the whole table (and cached) from the
        ``SHARE_TERMS_FROM``-th job asking for its key on; the ones before compute it for
        their own rows only, so a batch whose jobs are all different pays no whole-table term
        per job.
        """
        keys = {name: score_unit(name).cache_key(cj) for name, _ in cj.weights}
        for name, ck in list(keys.items()):
            if ck is not None and self._seen.get((name, ck), 0) + 1 < SHARE_TERMS_FROM:
                self._seen[(name, ck)] = self._seen.get((name, ck), 0) + 1
                keys[name] = None
        own = tuple((n, w) for n, w in cj.weights if keys[n] is None)
        out: dict[str, npt.NDArray[np.float64]] = {}
        if own:
            single = attrs.evolve(cj, weights=own)
            out.update(score_terms(single, self.table, idx, ge, self.stats.max_gpu_count))
        for name, _ in cj.weights:
            ck = keys[name]
            if ck is None:
                continue
            arr = self._terms.get((name, ck))
            if arr is None:
                single = attrs.evolve(cj, weights=((name, 1.0),), weight_total=1.0)
                arr = score_terms(single, self.table, self.all_rows, ge, self.stats.max_gpu_count)[
                    name
                ]
                self._terms.put((name, ck), arr, arr.nbytes)
            out[name] = arr[idx]
        return out

    def survey(self, cj: CompiledJob, seed: int, k: int) -> tuple[npt.NDArray[Any], ...]:
        """(every feasible row ascending, their scores, the best ``k`` rows best first, and
        the scores of those). The GPU group is evaluated over the whole table (and cached)
        from the ``SHARE_TERMS_FROM``-th job with its GPU limits on; before, over the rows
        passing the node-level constraints only (the engine's subset evaluation)."""
        mask = self.nodes(cj)
        ge = None
        if cj.count:
            key = ("gpu", *self._gpu_key(cj))
            seen = self._seen.get(key, 0) + 1
            if seen < SHARE_TERMS_FROM and self._gpu.get(self._gpu_key(cj)) is None:
                self._seen[key] = seen
                ge = gpu_eval(cj, self.table, np.flatnonzero(mask).astype(np.int64))
            else:
                ge = self.gpu(cj)
            assert ge is not None  # count > 0
            mask = mask & ge.ok
        idx = np.flatnonzero(mask).astype(np.int64)
        score = combine(cj, self.terms(cj, idx, ge), len(idx)) if len(idx) else np.zeros(0)
        rows, top = _best(self.table, idx, score, seed=seed, k=k)
        return idx, score, rows, top

    def passes(self, cj: CompiledJob) -> GpuEval | None:
        """The job's GPU group with only the per-GPU ``passes`` kept (for picking GPUs)."""
        if cj.count == 0:
            return None
        key = self._gpu_key(cj)
        slim = self._slim.get(key)
        if slim is None:
            ge = self.gpu(cj)
            assert ge is not None
            empty = np.zeros(0, dtype=np.float32)
            none = np.zeros(0, dtype=np.bool_)
            slim = attrs.evolve(
                ge,
                limit_passes={},
                available=none,
                matching=np.zeros(0, dtype=np.int64),
                ok=none,
                vram_free_gb=empty,
                load=empty,
            )
            self._slim.put(key, slim, slim.passes.nbytes)
        return slim


#: Job groups surveyed ahead of the one being consumed, per worker thread (bounds the full
#: feasible lists and scores in flight).
AHEAD = 2


def _survey_all(
    cache: _SurveyCache,
    tasks: Sequence[tuple[CompiledJob, int]],
    seed: int,
    workers: int,
) -> Iterator[tuple[npt.NDArray[Any], ...]]:
    """:meth:`_SurveyCache.survey` of each (compiled job, k), in order.

    With ``workers > 1`` the surveys run in a thread pool (numpy releases the GIL), each
    thread with a cache of its own (``CACHE_BYTES / workers``), at most ``AHEAD * workers``
    groups ahead of the caller. Every value comes from the same engine functions on the same
    inputs, so the results are those of one thread, bit for bit.
    """
    if workers <= 1 or len(tasks) <= 1:
        for cj, k in tasks:
            yield cache.survey(cj, seed, k)
        return
    local = threading.local()
    share = max(1, CACHE_BYTES // workers)

    def one(task: tuple[CompiledJob, int]) -> tuple[npt.NDArray[Any], ...]:
        mine: _SurveyCache | None = getattr(local, "cache", None)
        if mine is None:
            mine = local.cache = _SurveyCache(cache.table, cache.stats, share)
        return mine.survey(task[0], seed, task[1])

    window = AHEAD * workers
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nodeselect-survey") as pool:
        pending: deque[Future[tuple[npt.NDArray[Any], ...]]] = deque()
        it = iter(tasks)
        for task in itertools.islice(it, window):
            pending.append(pool.submit(one, task))
        while pending:
            got = pending.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.submit(one, nxt))
            yield got


@attrs.frozen(eq=False)
class _Source:
    """Recomputes a survey's per-node facts on the full table when they were not kept."""

    cache: _SurveyCache
    cj: CompiledJob

    def feasible_rows(self) -> npt.NDArray[np.int64]:
        """Every row the job fits on the full table, ascending (one full evaluation)."""
        mask = self.cache.nodes(self.cj)
        ge = self.cache.gpu(self.cj)
        if ge is not None:
            mask = mask & ge.ok
        return np.flatnonzero(mask).astype(np.int64)

    def was_feasible(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Whether each of ``rows`` admits the job on the full table (only those rows)."""
        if len(rows) == 0:
            return np.zeros(0, dtype=np.bool_)
        table = self.cache.table
        ok = rows_pass(self.cj, table, rows)
        if self.cj.count:
            ge = gpu_eval(self.cj, table, rows)
            assert ge is not None  # count > 0
            ok &= ge.ok[rows]
        return ok


@attrs.frozen(eq=False)
class _Stage:
    """Candidates of one widening stage."""

    cands: list[Candidate]
    truncated: bool  # feasible nodes were left out by the cut at k
    ge: GpuEval | None = None  # the GPU group on the residual, for the re-evaluated rows


@attrs.define(eq=False)
class _Touched:
    """The touched rows one turn re-checked (still feasible and fitting the residual), with
    their residual scores and GPU group: shared by the widening stages of that turn."""

    rows: npt.NDArray[np.int64] | None = None
    scores: npt.NDArray[np.float64] = attrs.field(factory=lambda: np.zeros(0))
    ge: GpuEval | None = None


#: Survey scores of every feasible row are kept for gangs (whose wider stages need them) up
#: to this many floats in all (64 MiB); beyond it the wide stages re-score those rows.
KEEP_SCORES = 1 << 23


class _Placer:
    """One run of :func:`place` (holds the residual state and the survey)."""

    def __init__(
        self,
        jobs: Sequence[Job],
        table: NodeTable,
        *,
        now: datetime,
        seed: int,
        candidates: int,
        workers: int = 1,
        surveyed: Sequence[SurveyedJob] | None = None,
    ) -> None:
        self.workers = workers
        self.jobs = jobs
        self.table = table
        self.now = now
        self.seed = seed
        self.candidates = candidates
        self.stats = table_stats(table)
        self.residual = Residual(table)
        ops = table.operator_code.astype(np.int64)
        self.operator_of = np.where(ops == 0, UNKNOWN, ops)
        #: per node, whether some job of the batch fits it on the empty fleet (``None``: not
        #: computed, as with a survey from elsewhere; :meth:`_stranded` asks for touched rows)
        self.fits_before: npt.NDArray[np.bool_] | None = None
        self.compiled = [compile_job(job, now) for job in jobs]
        #: per node, what the jobs still to come need of it (the second opinion only)
        self.pressure: npt.NDArray[np.float64] | None = None
        self.small_first = False
        self.second_opinion = False
        self._fits_empty: dict[int, bool] = {}
        self.keys = [_requirements_key(job) for job in jobs]
        #: the survey's shared work, bounded (``CACHE_BYTES``); also recomputes what surveys
        #: did not keep
        self.cache = _SurveyCache(table, self.stats)
        #: per job group, every feasible row's survey score, surveyed again when a job's best
        #: candidates ran out (:meth:`_all_scores`)
        self._rescored: _Bounded[npt.NDArray[np.float64]] = _Bounded(KEEP_SCORES * 8)
        self.surveys = self._surveys() if surveyed is None else self._given(surveyed)

    def _want(self, j: int) -> int:
        return max(self.candidates, self.candidates * self.jobs[j].nodes)

    def _surveys(self) -> list[_Survey]:
        """One full-table ranking per distinct set of requirements (jobs that differ only in
        name, priority, replica count or gang rules share it), cut per job."""
        groups: dict[str, list[int]] = {}
        for j, key in enumerate(self.keys):
            groups.setdefault(key, []).append(j)
        out: dict[int, _Survey] = {}
        cache = self.cache
        budget, bits_budget = KEEP_SCORES, KEEP_BITS
        tasks = [
            (self.compiled[members[0]], max(self._want(j) for j in members))
            for members in groups.values()
        ]
        results = _survey_all(cache, tasks, self.seed, self.workers)
        self.fits_before = fits_before = np.zeros(len(self.table), dtype=np.bool_)
        for members, got in zip(groups.values(), results, strict=True):
            feasible, score, top, top_scores = got
            fits_before[feasible] = True
            bits = None
            if bits_budget >= (len(self.table) + 7) // 8:
                mask = np.zeros(len(self.table), dtype=np.bool_)
                mask[feasible] = True
                bits = np.packbits(mask)
                bits_budget -= len(bits)
            n = len(feasible)
            keep = None
            if any(self.jobs[j].nodes > 1 for j in members) and len(top) < n <= budget:
                keep, budget = score, budget - n
            for j in members:
                w = self._want(j)
                rows = top[:w]
                out[j] = _Survey(
                    n,
                    rows,
                    len(rows) >= n,
                    bits,
                    top_scores[:w],
                    _Source(cache, self.compiled[j]),
                    keep,
                )
        return [out[j] for j in range(len(self.jobs))]

    def _given(self, surveyed: Sequence[SurveyedJob]) -> list[_Survey]:
        """Surveys from elsewhere (one per job), cut to each job's ``_want``; per-node facts
        are recomputed on this table when asked for."""
        out = []
        for j, sj in enumerate(surveyed):
            w = self._want(j)
            rows, scores = sj.rows[:w], sj.scores[:w]
            source = _Source(self.cache, self.compiled[j])
            out.append(_Survey(sj.feasible, rows, len(rows) >= sj.feasible, None, scores, source))
        return out

    def _candidates(
        self, j: int, k: int | None, *, full: bool, memo: _Touched | None = None
    ) -> _Stage:
        """The job's best candidates on the residual (an exact prefix of its residual ranking).

        Only rows the survey found feasible can fit (capacity only shrinks), and a row nothing
        was reserved on is as feasible, and scores, as in the survey: it keeps its survey
        score. The rows are: ``full`` -- every survey-feasible row; otherwise the survey's
        best rows plus the touched survey-feasible rows. Touched rows are re-checked (capacity
        constraints, then the GPU group and scores on the residual view, for just these rows).
        ``k=None`` keeps every feasible one. ``memo``: the touched rows' evaluation of an
        earlier stage of the same turn (nothing was reserved since), filled on first use:
        every stage re-checks the same rows (the touched rows the survey found feasible), so
        the widening stages of one turn check them once.
        """
        survey = self.surveys[j]
        view = self.residual.view()
        touched = self.residual.touched_mask
        if full:
            base = survey.feasible_rows(len(self.table))
            base_scores = self._all_scores(j)
        else:
            base, base_scores = survey.rows, survey.scores
        hit = touched[base]
        kept, kept_scores = base[~hit], base_scores[~hit]
        if memo is not None and memo.rows is not None:
            again, again_scores, ge = memo.rows, memo.scores, memo.ge
        else:
            again, again_scores, ge = self._recheck(j, base[hit] if full else None)
            if memo is not None:
                memo.rows, memo.scores, memo.ge = again, again_scores, ge
        if len(again):
            idx = np.concatenate([kept, again])
            scores = np.concatenate([kept_scores, again_scores])
        else:
            idx, scores = kept, kept_scores
        want = len(idx) if k is None else min(k, len(idx))
        rows, best = _best(view, idx, scores, seed=self.seed, k=want)
        cands = [Candidate(g, s, ()) for g, s in zip(rows.tolist(), best.tolist(), strict=True)]
        truncated = len(idx) > len(cands)
        if not full and not survey.complete:
            # Only the prefix down to the last untouched survey node is provably exact; nodes
            # beyond the survey may follow it.
            last = set(base[~hit].tolist())
            end = max((i for i, c in enumerate(cands) if c.index in last), default=-1)
            cands = cands[: end + 1]
        return _Stage(cands, truncated, ge)

    def _all_scores(self, j: int) -> npt.NDArray[np.float64]:
        """The survey score of every row job ``j`` fits on the full table (ascending rows), for
        the widest stages: kept with the survey for gangs; else, when a job's best candidates
        ran out, surveyed again on the full table and kept for its job group (jobs with the
        same requirements score alike) within ``KEEP_SCORES`` floats, least recently used
        first out. A row's survey score is its residual score while nothing is reserved on
        it, whatever the residual state: a stored array stays valid for the whole run."""
        survey = self.surveys[j]
        if survey.all_scores is not None:
            return survey.all_scores
        key = (self.keys[j],)
        got = self._rescored.get(key)
        if got is None:
            _rows, got, _top, _top_scores = self.cache.survey(self.compiled[j], self.seed, 0)
            if len(got) != survey.feasible:  # pragma: no cover - the same tests as the survey
                raise NodeSelectError(
                    f"internal error: job {self.jobs[j].name!r} surveyed again found "
                    f"{len(got)} feasible nodes, not {survey.feasible}; please report this"
                )
            self._rescored.put(key, got, got.nbytes)
        return got

    def _recheck(
        self, j: int, rows: npt.NDArray[np.int64] | None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], GpuEval | None]:
        """Of ``rows`` (``None``: the touched rows the survey found feasible), those that
        still fit the residual (capacity constraints, enough unreserved GPUs, the GPU group on
        the residual view), with their residual scores and that GPU group."""
        cj, survey = self.compiled[j], self.surveys[j]
        view = self.residual.view()
        if rows is None:
            t = self.residual.touched_rows()
            if survey.bits is None and len(t):
                # No mask kept: the cheap residual tests below first, so the engine recomputes
                # survey feasibility for fewer rows (a filter: the same rows, in the same order).
                near = _capacity_ok(cj, view, t)
                if cj.count:
                    near &= self.residual.free_gpu_count[t] >= cj.count
                t = t[near]
            rows = t[survey.was_feasible(t)] if len(t) else t
        # The capacity constraints again, and enough unreserved GPUs (a cheap necessary
        # condition of the GPU group; rows whose GPUs are all taken drop out here).
        keep = _capacity_ok(cj, view, rows)
        if cj.count:
            keep &= self.residual.free_gpu_count[rows] >= cj.count
        rows = rows[keep]
        if not len(rows):
            return rows, np.zeros(0), None
        ge = gpu_eval(cj, view, rows)
        if ge is not None:
            rows = rows[ge.ok[rows]]
        raw = score_terms(cj, view, rows, ge, self.stats.max_gpu_count)
        return rows, combine(cj, raw, len(rows)), ge

    def run(self, *, repair: bool = True) -> Plan:
        """The greedy pass, then (unless ``repair=False``) the repair pass and, when jobs that
        fit the empty fleet are still left out, the second opinion; the plan."""
        self.improve(repair=repair)
        return self.plan()

    def improve(self, *, repair: bool = True) -> None:
        """The greedy pass; with ``repair``: the repair pass, then the second opinion -- a
        greedy pass whose single-node jobs take, of their best ``HEAD`` nodes, the one the jobs
        still to come need least, repaired too -- kept when it places more jobs of some
        priority tier and no fewer of any. The second opinion runs only when capacity was
        short for some job and the fleet has at most ``SECOND_OPINION_NODES`` nodes, so an
        uncontended batch pays nothing for it and keeps best-scored nodes."""
        self.greedy()
        if not repair:
            return
        from nodeselect.placement._repair import repair_plan  # noqa: PLC0415

        repair_plan(self)
        if len(self.table) > SECOND_OPINION_NODES or not any(self.fits_empty(j) for j in self.left):
            return
        for small_first in SECOND_OPINIONS:
            alt = copy.copy(self)
            alt.residual = Residual(self.table)
            alt.pressure = self._pressure()
            alt.small_first = small_first
            alt.greedy()
            repair_plan(alt)
            ours, theirs = _tiers(self), _tiers(alt)
            if theirs != ours and all(a >= b for a, b in zip(theirs, ours, strict=True)):
                for name in _STATE:
                    setattr(self, name, getattr(alt, name))
                self.second_opinion = True
            if not any(self.fits_empty(j) for j in self.left):
                return

    def _pressure(self) -> npt.NDArray[np.float64]:
        """Per node, how much the batch needs it: the sum over jobs of (replicas / feasible
        nodes) over the nodes each job fits on the empty fleet."""
        n = len(self.table)
        out = np.zeros(n)
        for j, survey in enumerate(self.surveys):
            if survey.feasible:
                out[survey.feasible_rows(n)] += self.jobs[j].nodes / survey.feasible
        return out

    def greedy(self) -> None:
        """Place every job in order, reserving as it goes (fills ``placed`` and ``left``)."""
        self.order = _order(self.jobs, self.surveys, self.seed, small_first=self.small_first)
        #: placed jobs, in placement order: job index -> its candidates (with GPUs)
        self.placed: dict[int, tuple[Candidate, ...]] = {}
        #: unplaced jobs, in order: job index -> (gang reason, residual version at its turn)
        self.left: dict[int, tuple[str, int]] = {}
        self.repaired = 0
        self.moved = 0
        self.displaced = 0
        self.displaced_jobs: set[int] = set()
        #: explain unplaced jobs by replaying the final plan (after a repair or the solver)
        self.replay_reasons = False
        for j in self.order:
            if self.pressure is not None and self.surveys[j].feasible:
                # this job no longer competes for its nodes
                rows = self.surveys[j].feasible_rows(len(self.table))
                self.pressure[rows] -= self.jobs[j].nodes / self.surveys[j].feasible
            got = self._place_one(j)
            if isinstance(got, str):
                self.left[j] = (got, self.residual.version)
                continue
            for c in got:
                self.residual.reserve(self.jobs[j], c.index, c.gpu_indices)
            self.placed[j] = got

    def fits_empty(self, j: int) -> bool:
        """Whether job ``j`` fits the empty fleet: enough feasible nodes under its gang rules
        (cached: it depends on the survey only)."""
        got = self._fits_empty.get(j)
        if got is None:
            got = self._fits_empty[j] = self._fits_empty_now(j)
        return got

    def _fits_empty_now(self, j: int) -> bool:
        job, survey = self.jobs[j], self.surveys[j]
        if survey.feasible < job.nodes:
            return False
        if job.nodes == 1:
            return True
        rows = survey.feasible_rows(len(self.table))
        ops = self.operator_of[rows]
        distinct = job.gang.distinct == "operator"
        if distinct:
            rows, ops = rows[ops != UNKNOWN], ops[ops != UNKNOWN]
        scope = _scope_codes(self.table, job.gang.same)
        if scope is None:
            groups = [np.ones(len(rows), dtype=np.bool_)]
        else:
            codes = scope[rows]
            groups = [codes == s for s in np.unique(codes).tolist() if s != UNKNOWN]
        for g in groups:
            size = len(np.unique(ops[g])) if distinct else int(g.sum())
            if size >= job.nodes:
                return True
        return False

    def plan(self, *, objective: str = "greedy", solver: SolverReport | None = None) -> Plan:
        """The plan of the current ``placed`` / ``left`` state."""
        assignments = []
        for j in self.order:  # turn order (repaired jobs at their turn): priorities never rise
            got = self.placed.get(j)
            if got is None:
                continue
            job = self.jobs[j]
            replicas = [self._replica(c) for c in got]
            mean = sum(r.score for r in replicas) / len(replicas)
            assignments.append(JobAssignment(job.name, j, job.priority, tuple(replicas), mean))
        unplaced = []
        no_fit = 0
        final = None
        turn: dict[int, int] = {}
        if self.replay_reasons:
            turn = {j: t for t, j in enumerate(self.order)}
            final = [(turn[j], self.jobs[j], got) for j, got in self.placed.items()]
        for j, (reason, version) in self.left.items():
            fits = self.fits_empty(j)
            no_fit += not fits
            cause: UnplacedCause = "capacity" if fits else "no-fit"
            unplaced.append(self._unplaced(j, reason, version, cause, final, turn=turn.get(j, 0)))
        quality = PlanQuality(
            objective="optimal" if objective == "optimal" else "greedy",
            unplaced_capacity=len(unplaced) - no_fit,
            unplaced_no_fit=no_fit,
            repaired=self.repaired,
            displaced=self.displaced,
            moved=self.moved,
            solver=solver,
        )
        return Plan(
            jobs=tuple(self.jobs),
            assignments=tuple(assignments),
            unplaced=tuple(unplaced),
            totals=totals_from(
                tuple(assignments),
                tuple(unplaced),
                total_gpus=len(self.table.gpu_model_code),
                stranded_gpus=self._stranded(),
            ),
            order=tuple(self.order),
            seed=self.seed,
            now=self.now,
            quality=quality,
        )

    def _place_one(self, j: int) -> tuple[Candidate, ...] | str:
        """The chosen candidates (with their GPUs), or the reason the job cannot be placed.

        Widening stages: the best few candidates, then every re-scored candidate, then every
        row the survey found feasible; each stage runs only when the previous one may have
        missed some.
        """
        job, survey = self.jobs[j], self.surveys[j]
        if survey.feasible < job.nodes:
            return ""  # not even the full table has enough nodes: the explanation says why
        scope = _scope_codes(self.table, job.gang.same) if job.nodes > 1 else None
        reason = ""
        # Widening stages: (full?, k). A near stage that was not cut at k already holds
        # every candidate it can; a complete survey makes the full stages pointless.
        stages = [(False, HEAD * job.nodes), (False, None), (True, FULL * job.nodes), (True, None)]
        if self.pressure is not None and job.nodes == 1:
            return self._least_contended(j, stages)
        skip_near = False
        memo = _Touched()
        for full, k in stages:
            if (not full and skip_near) or (full and survey.complete):
                continue
            stage = self._candidates(j, k, full=full, memo=memo)
            choice = select_nodes(
                stage.cands, job.nodes, job.gang, operator_of=self.operator_of, scope_of=scope
            )
            if choice.chosen:
                return self._with_gpus(j, choice.chosen, stage)
            reason = choice.reason if stage.cands else ""
            if not full:
                skip_near = not stage.truncated
            elif not stage.truncated:
                break
        return reason

    def _least_contended(
        self, j: int, stages: list[tuple[bool, int | None]]
    ) -> tuple[Candidate, ...] | str:
        """Of the job's best ``HEAD`` nodes (an exact prefix of its residual ranking, widened
        until it has ``HEAD`` or every candidate), the one the jobs still to come need least
        (``pressure``), then the best-ranked. Used by the second opinion only."""
        survey = self.surveys[j]
        pool: list[Candidate] = []
        last: _Stage | None = None
        skip_near = False
        memo = _Touched()
        for full, k in stages:
            if (not full and skip_near) or (full and survey.complete):
                continue
            last = self._candidates(j, k, full=full, memo=memo)
            pool = last.cands[:HEAD]
            if len(pool) >= HEAD:
                break
            if not full:
                skip_near = not last.truncated
            elif not last.truncated:
                break
        if not pool or last is None:
            return ""
        assert self.pressure is not None
        press = self.pressure[[c.index for c in pool]].round(9).tolist()
        best = min(range(len(pool)), key=lambda i: (press[i], i))
        return self._with_gpus(j, [pool[best]], last)

    def _with_gpus(
        self, j: int, chosen: Sequence[Candidate], stage: _Stage
    ) -> tuple[Candidate, ...]:
        """The candidates with the GPUs the engine picks for them, checked against the residual.

        A touched row's GPUs come from the stage's evaluation on the residual view; an untouched
        row's from the GPU group of just the untouched chosen rows (nothing on them was
        reserved, so it is the survey's there, without holding a per-GPU mask per job).
        """
        cj, view = self.compiled[j], self.residual.view()
        touched = self.residual.touched_mask
        fresh = np.array([c.index for c in chosen if not touched[c.index]], dtype=np.int64)
        near = gpu_eval(cj, view, fresh) if len(fresh) else None
        out = []
        for c in chosen:
            ge = stage.ge if touched[c.index] else near
            gpus = gpu_choice(cj, view, ge, c.index)
            if not self.residual.fits(self.jobs[j], c.index, gpus):  # pragma: no cover
                raise NodeSelectError(
                    f"internal error: job {self.jobs[j].name!r} offered node {c.index} with "
                    f"GPUs {gpus} beyond its residual capacity; please report this"
                )
            out.append(attrs.evolve(c, gpu_indices=tuple(int(g) for g in gpus)))
        return tuple(out)

    def _replica(self, c: Candidate) -> Replica:
        t = self.table
        op = int(t.operator_code[c.index])
        return Replica(
            node_index=c.index,
            node_uuid=t.uuid_of(c.index),
            node_name=t.name_of(c.index),
            address=None,
            operator=t.operator_vocab[op] if op > 0 else None,
            gpu_indices=c.gpu_indices,
            score=c.score,
        )

    def _unplaced(
        self,
        j: int,
        gang_reason: str,
        version: int,
        cause: UnplacedCause,
        final: list[tuple[int, Job, tuple[Candidate, ...]]] | None,
        *,
        turn: int,
    ) -> Unplaced:
        """The job as unplaced; its explanation is computed on first access, against the
        residual capacity at its turn: the capacity the plan's assignments of the jobs before
        it in ``order`` leave. Without a repair that changed anything that is the greedy's
        residual at the job's turn (a snapshot: the residual's version number then); after a
        repair or the solver, ``final`` (turn, job, replicas of every assignment) is replayed."""
        job = self.jobs[j]
        residual, table = self.residual, self.table
        now, seed, stats = self.now, self.seed, self.stats
        displaced = j in self.displaced_jobs

        def why() -> UnplacedWhy:
            if final is None:
                view = residual.view_at(version)
            else:
                past = Residual(table)
                for t, other, got in final:
                    if t < turn:
                        for c in got:
                            past.reserve(other, c.index, c.gpu_indices)
                view = past.view()
            expl = rank(job, view, k=0, now=now, seed=seed, stats=stats).explanation
            summary = str(expl.summary())
            reason = f"{gang_reason}; {summary}" if gang_reason else summary
            if displaced:
                reason = (
                    "left out by the repair pass to place more jobs of its priority or higher; "
                    + reason
                )
            return reason, tuple((str(n), int(c)) for n, c in expl.rejected), expl

        return Unplaced(job.name, j, job.priority, UnplacedDetail(why), cause)

    def _stranded(self) -> int:
        """Free GPUs on touched nodes that a job fitted before placement but none fits now."""
        rows = self.residual.touched_rows()
        free = self.residual.free_gpus(rows)
        # Only nodes with free GPUs that some job fitted before can strand anything.
        if self.fits_before is None:
            before = np.zeros(len(rows), dtype=np.bool_)
            for j in {key: j for j, key in reversed(list(enumerate(self.keys)))}.values():
                if self.surveys[j].feasible:
                    before |= self.surveys[j].was_feasible(rows)
        else:
            before = self.fits_before[rows]
        open_rows = rows[before & (free > 0)]
        if len(open_rows) == 0:
            return 0
        view = self.residual.view()
        seen: set[str] = set()
        for j, key in enumerate(self.keys):
            if key in seen or len(open_rows) == 0:
                continue
            seen.add(key)
            maybe = open_rows[self.surveys[j].was_feasible(open_rows)]  # capacity only shrank
            if len(maybe) == 0:
                continue
            fits = evaluate_compiled(self.compiled[j], view.take(maybe)).feasible
            if fits.any():
                open_rows = np.setdiff1d(open_rows, maybe[fits], assume_unique=True)
        return int(self.residual.free_gpus(open_rows).sum())


def place(
    jobs: Sequence[Job],
    table: NodeTable,
    *,
    nodes: Sequence[TableNode] | None = None,
    now: datetime | None = None,
    seed: int = 0,
    candidates: int = DEFAULT_CANDIDATES,
    objective: Literal["greedy", "optimal"] = "greedy",
    time_limit: float | None = None,
    repair: bool = True,
    workers: int = 1,
    surveyed: Sequence[SurveyedJob | tuple[SurveyedJob, ...]] | None = None,
) -> Plan:
    """Place a batch of jobs on ``table``, reserving capacity as it goes.

    Args:
        jobs: the jobs; names must be unique (plans are looked up by job name).
        table: the fleet.
        nodes: the fetched nodes the table was built from (same order), used only to fill
            each replica's ``address`` (the table holds no addresses).
        now: the evaluation time (default: the current time).
        seed: the tie-break seed (same inputs and seed give the same plan).
        candidates: survey candidates kept per job and replica (a speed knob; the result is
            exact whatever its value, see the module docstring).
        objective: ``"greedy"`` (default: the greedy pass, then the bounded repair pass) or
            ``"optimal"``: the exact integer program solved by HiGHS (the ``nodeselect[optimal]``
            extra), seeded with the default plan and never worse than it; priorities are
            lexicographic (docs/placement.md). ``plan.quality.solver`` holds the bound and gap.
        time_limit: seconds the solver may take (``"optimal"`` only; ``None`` = no limit). On
            the limit the best plan found is returned and ``quality.solver.status`` says so.
        repair: run the repair pass after the greedy pass (default ``True``; ``False`` gives
            the plain greedy, for comparison).
        workers: threads surveying the job groups (default 1). The plan is the same for any
            value; reservation stays sequential (docs/placement.md, "Placement at scale").
        surveyed: each job's survey computed elsewhere, as :func:`nodeselect.dask.place`
            passes it: one per job, in order, a :class:`SurveyedJob` (for a job with
            alternatives, a tuple of one per ``job.choices()``, in order: the survey is of
            the empty table, so each round takes its alternatives' from it). Only the
            sequential part runs here.

    Jobs with alternatives (``Job.alternatives``) start as their first; the batch is placed,
    and every job left unplaced moves on to its next alternative and the batch is placed
    again, until no unplaced job has one left (a job never moves back). The plan is that of
    the last round: ``JobAssignment.alternative`` says which alternative each such job used,
    and ``Plan.jobs`` holds the alternatives as placed.
    """
    check_jobs_arg(jobs, "place")
    check_table_arg(table, "place")
    checked_now(now, "place")
    repeated = repeated_uuids(table)
    if repeated:
        more = f" and {len(repeated) - 5} more" if len(repeated) > 5 else ""
        shown = ", ".join(repeated[:5]) + more
        raise InputError(
            f"table: {len(repeated)} node uuid(s) held by more than one row ({shown}); placing "
            "on it could reserve one machine twice. Build the table with "
            'NodeTable.from_nodes(..., duplicates="newest"), or take each row once'
        )
    jobs = tuple(jobs)
    how: dict[str, Any] = {
        "objective": objective,
        "time_limit": time_limit,
        "repair": repair,
        "workers": workers,
    }
    alternatives = any(isinstance(j, Job) and j.alternatives for j in jobs)
    if surveyed is not None:
        _check_surveyed(jobs, surveyed)
    if not alternatives:
        if surveyed is not None:
            how["surveyed"] = tuple(surveyed)
        return _place(jobs, table, nodes=nodes, now=now, seed=seed, candidates=candidates, **how)
    options: list[tuple[Job, ...]] = []
    for job in jobs:
        if isinstance(job, Job) and job.alternatives:
            check_job(job)  # every alternative's errors, keyed alternatives[i]..., first
            options.append(job.choices())
        else:
            options.append((job,))
    pick = [0] * len(jobs)
    when = now or datetime.now(UTC)
    while True:
        current = tuple(o[p] for o, p in zip(options, pick, strict=True))
        if surveyed is not None:  # each job's current alternative's survey
            how["surveyed"] = tuple(
                x[p] if isinstance(x, tuple) else x for x, p in zip(surveyed, pick, strict=True)
            )
        plan = _place(
            current, table, nodes=nodes, now=when, seed=seed, candidates=candidates, **how
        )
        ahead = [
            u.job_index for u in plan.unplaced if pick[u.job_index] + 1 < len(options[u.job_index])
        ]
        if not ahead:
            break
        for k in ahead:
            pick[k] += 1

    def which(j: int) -> int | None:
        return pick[j] if isinstance(jobs[j], Job) and jobs[j].alternatives else None

    return attrs.evolve(
        plan,
        assignments=tuple(
            attrs.evolve(a, alternative=which(a.job_index)) for a in plan.assignments
        ),
        unplaced=tuple(attrs.evolve(u, alternative=which(u.job_index)) for u in plan.unplaced),
    )


def _check_surveyed(
    jobs: Sequence[Job], surveyed: Sequence[SurveyedJob | tuple[SurveyedJob, ...]]
) -> None:
    """``surveyed`` holds one survey per job: a job with alternatives one per choice."""
    if len(surveyed) != len(jobs):
        raise InputError(
            f"surveyed: expected one item per job ({len(jobs)}), got {len(surveyed)} items"
        )
    for i, (job, x) in enumerate(zip(jobs, surveyed, strict=True)):
        if isinstance(job, Job) and job.alternatives:
            n = len(job.alternatives)
            if not (
                isinstance(x, tuple) and len(x) == n and all(isinstance(y, SurveyedJob) for y in x)
            ):
                raise InputError(
                    f"surveyed[{i}]: job {job.name!r} has {n} alternatives: expected a tuple of "
                    f"{n} SurveyedJob (one per job.choices()), got {type(x).__name__}"
                )
        elif not isinstance(x, SurveyedJob):
            raise InputError(f"surveyed[{i}]: expected a SurveyedJob, got {type(x).__name__}")


def _place(
    jobs: Sequence[Job],
    table: NodeTable,
    *,
    nodes: Sequence[TableNode] | None = None,
    now: datetime | None = None,
    seed: int = 0,
    candidates: int = DEFAULT_CANDIDATES,
    objective: Literal["greedy", "optimal"] = "greedy",
    time_limit: float | None = None,
    repair: bool = True,
    workers: int = 1,
    surveyed: Sequence[SurveyedJob] | None = None,
) -> Plan:
    """:func:`place` of plain jobs (no alternatives)."""
    jobs = tuple(jobs)
    for i, job in enumerate(jobs):
        if not isinstance(job, Job):
            raise InputError(f"jobs[{i}]: expected a nodeselect.Job, got {type(job).__name__}")
    names = [j.name for j in jobs]
    dup = sorted(n for n, c in Counter(names).items() if c > 1)
    if dup:
        raise InputError(f"job names must be unique within a batch; repeated: {', '.join(dup)}")
    if candidates < 1:
        raise InputError(f"candidates: {candidates} must be >= 1")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers: {workers!r} must be a whole number of threads >= 1")
    if nodes is not None and len(nodes) != len(table):
        raise InputError(f"nodes: {len(nodes)} given for a table of {len(table)} rows")
    if objective not in ("greedy", "optimal"):
        raise InputError(f'objective: {objective!r} is not one of "greedy", "optimal"')
    if time_limit is not None and not time_limit >= 0:
        raise InputError(f"time_limit: {time_limit} must be a number of seconds >= 0")
    when = now or datetime.now(UTC)
    if surveyed is not None:
        n = len(table)
        for i, sj in enumerate(surveyed):
            if len(sj.rows) != len(sj.scores) or not 0 <= sj.feasible <= n:
                raise InputError(
                    f"surveyed[{i}]: {len(sj.rows)} rows, {len(sj.scores)} scores and "
                    f"{sj.feasible} feasible on a table of {n} rows; expected as many scores "
                    "as rows and 0 <= feasible <= rows of the table"
                )
            if len(sj.rows) and not (int(sj.rows.min()) >= 0 and int(sj.rows.max()) < n):
                raise InputError(f"surveyed[{i}]: rows outside the table's 0..{n - 1}")
    placer = _Placer(
        jobs,
        table,
        now=when,
        seed=seed,
        candidates=candidates,
        workers=workers,
        surveyed=surveyed,
    )
    if objective == "optimal":
        from nodeselect.placement._optimal import solve_optimal  # noqa: PLC0415

        placer.improve(repair=repair)
        plan = solve_optimal(placer, time_limit=time_limit)
    else:
        plan = placer.run(repair=repair)
    if nodes is not None:
        plan = _with_addresses(plan, nodes)
    return plan


def _with_addresses(plan: Plan, nodes: Sequence[TableNode]) -> Plan:
    def addr(r: Replica) -> Replica:
        lean = nodes[r.node_index].lean
        return attrs.evolve(r, address=lean.ipv4_address or lean.ipv6_address or None)

    return attrs.evolve(
        plan,
        assignments=tuple(
            attrs.evolve(a, replicas=tuple(addr(r) for r in a.replicas)) for a in plan.assignments
        ),
    )
