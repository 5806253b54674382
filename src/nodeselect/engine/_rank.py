"""The engine: rank every node of a table for a job, vectorized, and say why the rest were rejected.

``rank`` compiles the job (validating it: a bad job is an :class:`InputError`, never an empty
result), evaluates each hard constraint as a mask, scores only the feasible rows, and selects
the top k with ``argpartition``. Order: score descending, then a seeded hash of the uuid, then
the uuid, so the ranking does not depend on row order and the same seed gives the same ranking.

Residual capacity (placement): rank ``table.with_capacity(...)`` (see :class:`NodeTable`) with the
full table's :func:`table_stats` passed as ``stats``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import attrs
import numpy as np
import numpy.typing as npt

from nodeselect.engine._boundary import (
    check_job_arg,
    check_k_arg,
    check_table_arg,
    checked_now,
)
from nodeselect.engine._constraints import (
    CompiledJob,
    GpuEval,
    GpuSubset,
    effective_gpu_columns,
    gpu_eval,
    gpu_group,
    gpu_subset,
    node_checks,
    subset_to_eval,
)
from nodeselect.engine._constraints import compile_job as compile_constraints
from nodeselect.engine._explain import (
    Evaluation,
    Explanation,
    NearestMiss,
    NodeExplanation,
    explain_node,
)
from nodeselect.engine._prefilter import feasible_rows, models_known, node_pass
from nodeselect.engine._scorers import (
    NodeScores,
    combine,
    combine_from,
    combine_partial,
    score_cheap,
    term_exact,
)
from nodeselect.engine._shard import RankedNode, TableStats, merge_top, table_stats, tie_keys
from nodeselect.engine.scorers import ScoreTerm, f32_up, score_unit, with_terms
from nodeselect.jobs import Job, check_job
from nodeselect.table import (
    NodeTable,
    find_rows,
    keep_rows,
    kth_largest,
    max_gpu_count,
    on_build,
    uuid_hashes,
)

__all__ = [
    "Explanation",
    "NearestMiss",
    "NodeExplanation",
    "RankedNode",
    "Ranking",
    "TableStats",
    "compile_job",
    "evaluate",
    "evaluate_compiled",
    "explain_node",
    "fast_feasible",
    "gpu_choice",
    "merge_top",
    "rank",
    "table_stats",
    "top_positions",
]

F64 = npt.NDArray[np.float64]


@attrs.frozen(eq=False)
class Ranking:
    """The result of ranking one job on one table.

    Attributes:
        job: the job.
        evaluated: nodes looked at (the table's length).
        feasible: nodes passing every hard constraint.
        top: the best ``k`` feasible nodes, best first.
        explanation: counts, per-constraint rejections and nearest misses.
        feasible_indices: rows of every feasible node (ascending), for placement.
        seed: the tie-break seed used.
        alternative: for a job with alternatives, the position of the one ranked here (the
            first with a feasible node, else the first); ``None`` for a job without.
        tried: for a job with alternatives, the ranking of each alternative tried, in order
            (every one before ``alternative`` had no feasible node; all of them when none had
            one), each with its own explanation; empty for a job without.
    """

    job: Job
    evaluated: int
    feasible: int
    top: tuple[RankedNode, ...]
    explanation: Explanation
    feasible_indices: npt.NDArray[np.int64]
    seed: int = 0
    alternative: int | None = None
    tried: tuple[Ranking, ...] = ()

    def to_records(self) -> list[dict[str, Any]]:
        """The top nodes as plain dicts, best first (for pandas, polars, CSV writers).

        Keys: ``rank`` (1-based), ``index`` (the table row), ``uuid``, ``name``, ``score``,
        ``gpu_indices`` (a list), then one ``term_<name>`` per weighted score term (its
        contribution ``w * s / sum(w)``; the contributions sum to ``score``).
        """
        return [
            {
                "rank": pos,
                "index": r.index,
                "uuid": r.uuid,
                "name": r.name,
                "score": r.score,
                "gpu_indices": list(r.gpu_indices),
                **{f"term_{name}": v for name, v in r.terms.items()},
            }
            for pos, r in enumerate(self.top, start=1)
        ]


def compile_job(job: Job, now: datetime | None = None) -> CompiledJob:
    """Validate ``job`` and compile it once: its constraints, and the weights of every
    registered score term (:mod:`nodeselect.engine.scorers`) in registry order."""
    return with_terms(compile_constraints(job, now))


def evaluate(job: Job, table: NodeTable, *, now: datetime | None = None) -> Evaluation:
    """Every constraint mask of ``job`` on ``table`` and the feasible mask."""
    cj = compile_job(job, now)
    return evaluate_compiled(cj, table)


def evaluate_compiled(cj: CompiledJob, table: NodeTable) -> Evaluation:
    """:func:`evaluate` for a job compiled once (:func:`compile_job`): every constraint mask,
    the GPU group and the feasible mask (``Evaluation.feasible``)."""
    checks = tuple(node_checks(cj, table))
    ge = gpu_eval(cj, table)
    if checks:
        feasible = checks[0].passes.copy()
        for c in checks[1:]:
            feasible &= c.passes
    else:
        feasible = np.ones(len(table), dtype=np.bool_)
    if ge is not None:
        feasible &= ge.ok
    return Evaluation(cj=cj, table=table, checks=checks, gpu=ge, feasible=feasible)


def fast_feasible(cj: CompiledJob, t: NodeTable) -> tuple[npt.NDArray[np.int64], GpuEval | None]:
    """Feasible rows (ascending) and the GPU group, in the table's shapes, of every node that
    passed the node-level constraints (the fast pass of :mod:`nodeselect.engine._prefilter`)."""
    idx, _, survivors = feasible_rows(cj, t)
    return idx, None if survivors is None else subset_to_eval(cj, t, survivors)


#: The GPU group of chosen rows of ``idx``: positions in ``idx`` (any order) -> their subset.
TakeGpus = Callable[[npt.NDArray[np.int64]], GpuSubset]


def _scores(
    cj: CompiledJob,
    t: NodeTable,
    idx: npt.NDArray[np.int64],
    *,
    matching: npt.NDArray[np.int64] | None,
    take: TakeGpus | None,
    max_gpus: int,
    k: int,
    pre: NodeScores | None,
) -> tuple[F64, dict[str, F64]]:
    """Scores and raw terms of the feasible rows ``idx`` (``matching``: their matching GPU
    counts, ``take``: their GPU group, both ``None`` for a CPU-only job), exact for every row
    that can be in the top ``k``; the rest score ``-inf``.

    A GPU job's ``per_gpu`` terms (built-in: ``idle``, reading per-GPU load), wherever they
    are in the order, are bounded first (each unit's ``bounds``); only rows whose upper-bound
    score reaches the ``k``-th best lower-bound score (a superset of the rows scoring at least
    the exact ``k``-th best) are scored exactly. Rounded sums and products are monotone, so
    the bounds of a term bound the combined score wherever the term is; scores are
    elementwise, so each exact score is bit for bit the full computation's. A per-GPU term
    without bounds is scored exactly on every row.
    """
    n = len(idx)
    raw = score_cheap(cj, t, idx, matching, max_gpus, pre=pre)
    if take is None:
        return combine(cj, raw, n), raw
    # the per-GPU terms (built-in: idle), wherever they are in the order
    late = [j for j, (name, _) in enumerate(cj.weights) if name not in raw]
    if not late:
        return combine(cj, raw, n), raw
    names = [cj.weights[j][0] for j in late]
    bounds = [score_unit(name).bounds(cj, t, idx, pre) for name in names] if n > k else []
    if n <= k or any(b is None for b in bounds):
        everything = take(np.arange(n))
        for name in names:
            raw[name] = term_exact(cj, name, t, idx, everything, max_gpus=max_gpus, pre=pre)
        return combine(cj, raw, n), raw
    # the terms before the first per-GPU one: their partial sum is shared by both bounds
    first = late[0]
    partial = combine_partial(cj, raw, n, first)
    lo_raw, hi_raw = dict(raw), dict(raw)
    for name, b in zip(names, bounds, strict=True):
        assert b is not None
        lo_raw[name], hi_raw[name] = b
    s_lo = combine_from(cj, partial, first, lo_raw)
    s_hi = combine_from(cj, partial, first, hi_raw)
    kth_lo = kth_largest(s_lo, k)
    may = np.flatnonzero(s_hi >= kth_lo)
    some = take(may)
    for name in names:
        exact = np.zeros(n)
        exact[may] = term_exact(cj, name, t, idx[may], some, max_gpus=max_gpus, pre=pre)
        raw[name] = exact
    score = np.full(n, -np.inf)
    score[may] = combine_from(cj, partial[may], first, raw, may)
    return score, raw


#: A CPU-only job with more feasible rows than this is pruned by its terms' upper bounds.
_PRUNE_MIN: Final = 4096
#: Bound values sampled to pick the first threshold.
_SAMPLE: Final = 1024


def _upper(cj: CompiledJob, t: NodeTable, idx: npt.NDArray[np.int64]) -> F64 | None:
    """Per row of ``idx``, an upper bound of a CPU-only job's combined score (``None`` when a
    weighted term has no :meth:`~nodeselect.engine.scorers.ScoreTerm.upper`): :func:`combine`'s
    operations, in its order, on each term's upper bound. Rounded products by ``w >= 0``,
    sums and the division are monotone, so the bound holds for the computed score.

    The bound depends only on the job's weights, so it is computed for every row once per
    weights (float32 rounded up: still a bound) and kept with the table
    (:func:`nodeselect.table.keep_rows`; the default weights' with the table's build)."""
    units = [score_unit(name) for name, _w in cj.weights]
    if any(type(u).upper is ScoreTerm.upper for u in units):
        return None
    deps = _fixed_columns(t)
    key = ("score-upper", cj.weights, tuple(units))
    hit = find_rows(key, deps)
    if hit is None:
        uppers: list[npt.NDArray[np.float32] | float] = []
        for u in units:
            b = u.upper(cj, t)
            if b is None:
                return None
            uppers.append(b)
        hit = (f32_up(_combined_upper(cj, uppers, len(t))),)
        keep_rows(key, deps, hit)
    out: F64 = hit[0][idx].astype(np.float64)
    return out


def has_score_upper(cj: CompiledJob, t: NodeTable) -> bool:
    """Whether every weighted term of a CPU-only job has an upper bound on ``t``: the bound
    :func:`_upper` computes once per weights and keeps with the table, so that asking for
    each job of a batch costs a lookup, not a pass over the table's columns per term."""
    return _upper(cj, t, _NO_ROWS) is not None


_NO_ROWS: Final = np.zeros(0, dtype=np.int64)


#: Columns placement writes in place (residual capacity): no kept bound depends on them.
_CAPACITY: Final = frozenset(
    {"cpu_cores", "ram_free_gb", "disk_free_gb", "gpu_reserved", "gpu_vram_free_override_gb"}
)


def _fixed_columns(t: NodeTable) -> tuple[npt.NDArray[Any], ...]:
    """Every array column of ``t`` but the capacity ones: what a kept score bound may read
    (capacity views share them, so they share the bound)."""
    names = _FIXED.get(type(t))
    if names is None:
        names = _FIXED[type(t)] = tuple(
            f.name for f in attrs.fields(type(t)) if f.name not in _CAPACITY
        )
    return tuple(v for v in (getattr(t, name) for name in names) if isinstance(v, np.ndarray))


_FIXED: dict[type, tuple[str, ...]] = {}


def _combined_upper(cj: CompiledJob, uppers: list[npt.NDArray[np.float32] | float], n: int) -> F64:
    """:func:`_upper` for every row: the weighted bounds summed in ``cj.weights`` order."""
    score: F64 | None = None
    for (_name, w), u in zip(cj.weights, uppers, strict=True):
        if isinstance(u, float):
            if score is None:
                score = np.full(n, w * u)
            else:
                score += w * u
        elif score is None:
            score = np.multiply(u, w, dtype=np.float64)
        elif w == 1.0:  # w * u is u
            score += u
        else:
            score += np.multiply(u, w, dtype=np.float64)
    assert score is not None  # a job weights at least one term
    score /= cj.weight_total
    return score


def _default_bounds(t: NodeTable) -> None:
    """Build the default weights' CPU-only score bound with the table (``table.on_build``)."""
    if len(t) > _PRUNE_MIN:
        _upper(compile_job(Job(name="default")), t, np.zeros(0, dtype=np.int64))


on_build(_default_bounds)


def _pruned(
    cj: CompiledJob, t: NodeTable, idx: npt.NDArray[np.int64], k: int, pre: NodeScores | None
) -> tuple[npt.NDArray[np.intp], F64, dict[str, F64]] | None:
    """Positions in ``idx`` (ascending) of a superset of a CPU-only job's top ``k``, with their
    exact scores and raw terms (:func:`_scores`): every row whose score upper bound
    (:func:`_upper`) reaches the ``k``-th best exact score of the rows with the highest bounds.
    ``None``: not worth it (few rows) or no bound. Every row left out scores below that
    ``k``-th best score, so the top ``k`` of the positions is the top ``k`` of ``idx``."""
    n = len(idx)
    j = 2 * k  # the sample's j-th best bound: about j * step rows reach it, at least j
    if n <= _PRUNE_MIN or j > _SAMPLE or j * _SAMPLE > n:
        return None
    ub = _upper(cj, t, idx)
    if ub is None:
        return None
    step = n // _SAMPLE
    sample = ub[::step]
    tau = kth_largest(sample, j)
    first = np.flatnonzero(ub >= tau)
    exact, raw = _scores(cj, t, idx[first], matching=None, take=None, max_gpus=0, k=k, pre=pre)
    kth = kth_largest(exact, k)
    if kth >= tau:
        return first, exact, raw  # every row reaching kth reaches tau
    pos = np.flatnonzero(ub >= kth)
    exact, raw = _scores(cj, t, idx[pos], matching=None, take=None, max_gpus=0, k=k, pre=pre)
    return pos, exact, raw


def _gpu_choices(
    cj: CompiledJob,
    t: NodeTable,
    rows: list[int],
    passes: npt.NDArray[np.bool_] | None,
    free: npt.NDArray[np.float32] | None = None,
) -> list[tuple[int, ...]]:
    """For each row, the GPUs the job would use: passing ones, best fit first.

    ``passes`` (and ``free``, the effective free VRAM, computed when not given) are per GPU of
    ``rows``, node by node (``None`` for a CPU-only job).
    """
    if passes is None:
        return [() for _ in rows]
    if free is None:
        free, _ = effective_gpu_columns(t, cj.now_s, np.array(rows, dtype=np.int64))
    sign = 1.0 if cj.job.preferences.strategy == "pack" else -1.0
    out: list[tuple[int, ...]] = []
    pos = 0
    free_l, passes_l = free.tolist(), passes.tolist()
    for i in rows:
        size = int(t.gpu_offsets[i + 1]) - int(t.gpu_offsets[i])
        mine = free_l[pos : pos + size]
        ok = [g for g in range(size) if passes_l[pos + g]]
        pos += size

        def key(g: int, mine: list[float] = mine) -> tuple[bool, float, int]:
            v = mine[g]
            unknown = math.isnan(v)
            return (unknown, 0.0 if unknown else sign * v, g)

        out.append(tuple(sorted(ok, key=key)[: cj.count]))
    return out


def gpu_choice(cj: CompiledJob, t: NodeTable, ge: GpuEval | None, i: int) -> tuple[int, ...]:
    """The GPUs of row ``i`` the job would use (placement calls this per candidate)."""
    passes = None if ge is None else ge.passes[t.gpu_offsets[i] : t.gpu_offsets[i + 1]]
    return _gpu_choices(cj, t, [i], passes)[0]


def top_positions(
    table: NodeTable,
    idx: npt.NDArray[np.int64],
    score: npt.NDArray[np.float64],
    *,
    seed: int,
    k: int,
    keys: npt.NDArray[np.uint64] | None = None,
    hashes: npt.NDArray[np.uint64] | None = None,
) -> npt.NDArray[np.intp]:
    """Positions in ``idx`` of the best ``k`` rows, best first, in the one total order shared by
    ranking, placement and shard merges: score descending, then the seeded uuid key, then uuid.

    ``argpartition``-style selection first (every row scoring at least the k-th best), then an
    exact sort of only those candidates. ``keys``: every row's tie key for ``seed``, when
    precomputed (else computed for the candidates, from ``hashes``, every row's seed-free uuid
    hash, when given: :func:`nodeselect.table.uuid_hash`).
    """
    if len(idx) > k:
        kth = kth_largest(score, k)
        cand = np.flatnonzero(score >= kth)
    else:
        cand = np.arange(len(idx))
    rows = idx[cand]
    uu = table.uuid[rows]
    tie = _ties(uu, rows, seed, keys, hashes)
    out: npt.NDArray[np.intp] = cand[np.lexsort((uu, tie, -score[cand]))[:k]]
    return out


def _ties(
    uu: npt.NDArray[np.bytes_],
    rows: npt.NDArray[np.int64],
    seed: int,
    keys: npt.NDArray[np.uint64] | None,
    hashes: npt.NDArray[np.uint64] | None,
) -> npt.NDArray[np.uint64]:
    """The tie keys of ``rows`` (uuids ``uu``): from every row's ``keys`` or uuid ``hashes``
    when given, else hashed from the uuids (the same keys: the hash is elementwise)."""
    if keys is not None:
        return keys[rows]
    return tie_keys(uuid_hashes(uu) if hashes is None else hashes[rows], seed)


def rank(
    job: Job,
    table: NodeTable,
    *,
    k: int = 10,
    now: datetime | None = None,
    seed: int = 0,
    stats: TableStats | None = None,
) -> Ranking:
    """Rank every node of ``table`` for ``job`` and return the best ``k`` with an explanation.

    ``stats`` are the global reductions used to normalize scores (default: this table's); pass
    the merged stats of all shards when ranking a shard or a residual view.

    A job with alternatives (``Job.alternatives``) is ranked as each of ``job.choices()`` in
    order until one has a feasible node; that ranking is returned, with ``alternative`` set to
    its position and ``tried`` holding the ranking of every alternative tried.

    Raises TypeError when an argument has the wrong type (a path instead of a Job, a
    FetchResult instead of a NodeTable, a float or naive datetime as ``now``), InputError
    when the job is invalid or ``k < 0``.
    """
    check_job_arg(job, "rank")
    check_table_arg(table, "rank")
    check_k_arg(k, "rank")
    checked_now(now, "rank")
    if k < 0:
        from nodeselect.errors import InputError  # noqa: PLC0415

        raise InputError(f"k={k}: give a number of nodes >= 0")
    if isinstance(job, Job) and job.alternatives:
        check_job(job)  # every alternative's errors, keyed alternatives[i]..., before any work
        tried: list[Ranking] = []
        when = now or datetime.now(UTC)  # one instant for every alternative
        for i, choice in enumerate(job.choices()):
            r = rank(choice, table, k=k, now=when, seed=seed, stats=stats)
            tried.append(attrs.evolve(r, alternative=i))
            if r.feasible:
                break
        chosen = tried[-1] if tried[-1].feasible else tried[0]
        return attrs.evolve(chosen, tried=tuple(tried))
    cj = compile_job(job, now)
    max_gpus = stats.max_gpu_count if stats is not None else max_gpu_count(table)
    return rank_compiled(cj, table, k=k, seed=seed, max_gpus=max_gpus)


def rank_compiled(
    cj: CompiledJob,
    table: NodeTable,
    *,
    k: int,
    seed: int,
    max_gpus: int,
    pre: NodeScores | None = None,
    keys: npt.NDArray[np.uint64] | None = None,
    hashes: npt.NDArray[np.uint64] | None = None,
    survivors: npt.NDArray[np.int64] | None = None,
    kept: bool = True,
) -> Ranking:
    """:func:`rank` of a compiled job (``pre``, ``keys``, ``hashes``: see :func:`rank_rows`).

    ``survivors``: the rows :func:`nodeselect.engine._prefilter.node_pass` returns for ``cj``,
    when a batch found them (default: found here). ``kept``: read and keep the GPU-group
    counts the table keeps per set of GPU limits (:func:`gpu_group`); else the GPU group is
    computed for the survivors (the same counts)."""
    if survivors is None:
        survivors = node_pass(cj, table)
    known = models_known(cj, table)
    if kept:
        group = gpu_group(cj, table, survivors, models_known=known)
    else:
        sub = gpu_subset(cj, table, survivors, models_known=known)
        group = None if sub is None else (sub.matching, sub)
    ranked = functools.partial(
        rank_rows, cj, table, k=k, seed=seed, max_gpus=max_gpus, pre=pre, keys=keys, hashes=hashes
    )
    if group is None:
        return ranked(survivors, None, None)
    matching, whole = group
    okpos = np.flatnonzero(matching >= cj.count)
    feasible = survivors[okpos]

    def take(pos: npt.NDArray[np.int64]) -> GpuSubset:
        if whole is not None:
            return whole.take(okpos[pos])
        # counts were kept: the GPU group of only the rows scored exactly or returned
        sub = gpu_subset(cj, table, feasible[pos], models_known=known)
        assert sub is not None
        return sub

    return ranked(feasible, matching[okpos], take)


def rank_rows(
    cj: CompiledJob,
    table: NodeTable,
    idx: npt.NDArray[np.int64],
    matching: npt.NDArray[np.int64] | None,
    take: TakeGpus | None,
    *,
    k: int,
    seed: int,
    max_gpus: int,
    pre: NodeScores | None = None,
    keys: npt.NDArray[np.uint64] | None = None,
    hashes: npt.NDArray[np.uint64] | None = None,
) -> Ranking:
    """The ranking of the feasible rows ``idx`` (ascending; ``matching`` and ``take``: their
    matching GPU counts and GPU group, ``None`` for a CPU-only job). ``pre`` and ``keys``: the
    per-node score inputs and tie keys, when a batch has them; ``hashes``: every node's uuid
    hash (:func:`nodeselect.table.uuid_hash`), when a batch has them and not ``keys``."""
    top: tuple[RankedNode, ...] = ()
    if len(idx) and k:
        # a CPU-only job with many feasible rows: score exactly only those that can be in the top
        pruned = None if take is not None else _pruned(cj, table, idx, k, pre)
        if pruned is None:
            cand, sidx = None, idx
            score, raw = _scores(
                cj, table, idx, matching=matching, take=take, max_gpus=max_gpus, k=k, pre=pre
            )
        else:
            cand, score, raw = pruned
            sidx = idx[cand]
        spos = top_positions(table, sidx, score, seed=seed, k=k, keys=keys, hashes=hashes)
        pos = spos if cand is None else cand[spos]
        rows = idx[pos]
        if take is None:
            gpus: list[tuple[int, ...]] = [() for _ in range(len(rows))]
        else:
            tsub = take(pos)
            gpus = _gpu_choices(cj, table, rows.tolist(), tsub.passes, tsub.vram_free_gb)
        tie = _ties(table.uuid[rows], rows, seed, keys, hashes)
        top = ranked_nodes(
            cj,
            table,
            rows,
            scores=score[spos].tolist(),
            # w * s / sum(w) elementwise, as Python floats would compute it
            contributions={n: (w * raw[n][spos] / cj.weight_total).tolist() for n, w in cj.weights},
            gpus=gpus,
            ties=tie.tolist(),
        )
    return ranking_of(cj, table, idx, top, seed)


def ranked_nodes(
    cj: CompiledJob,
    table: NodeTable,
    rows: npt.NDArray[np.int64],
    *,
    scores: list[float],
    contributions: Mapping[str, list[float]],
    gpus: list[tuple[int, ...]],
    ties: list[int],
) -> tuple[RankedNode, ...]:
    """The :class:`RankedNode` of each of ``rows`` (best first) from its score, each weighted
    term's contribution ``w * s / sum(w)``, its GPUs and its tie key (lists along ``rows``)."""
    names = [n for n, _ in cj.weights]
    vocab = table.name_vocab
    return tuple(
        RankedNode(
            index=row,
            uuid=uuid.decode(),
            name=bytes(vocab[code]).decode() if code > 0 else None,
            score=scores[i],
            terms={n: contributions[n][i] for n in names},
            gpu_indices=gpus[i],
            tie_key=ties[i],
        )
        for i, (row, uuid, code) in enumerate(
            zip(
                rows.tolist(),
                table.uuid[rows].tolist(),
                table.name_code[rows].tolist(),
                strict=True,
            )
        )
    )


def ranking_of(
    cj: CompiledJob,
    table: NodeTable,
    idx: npt.NDArray[np.int64],
    top: tuple[RankedNode, ...],
    seed: int,
) -> Ranking:
    """The :class:`Ranking` of a job with feasible rows ``idx`` and best nodes ``top``."""
    return Ranking(
        job=cj.given,
        evaluated=len(table),
        feasible=len(idx),
        top=top,
        explanation=Explanation(
            functools.partial(evaluate_compiled, cj, table),
            evaluated=len(table),
            feasible=len(idx),
            units=table.units,
        ),
        feasible_indices=idx,
        seed=seed,
    )
