"""The repair pass: after the greedy pass, place left-out jobs by moving a replica out of the way.

The greedy pass gives each replica its best-scored node, which can strand capacity a later job
needed. For every job the greedy left out although it fits the empty fleet (in placement order:
priority first), the repair looks at the nodes that admitted it on the empty fleet and at the
replicas now on them. A replica is a *move candidate* when its job's priority is lower than or
equal to the left-out job's, and taking it off its node would free enough cores, RAM, disk and
eligible GPUs there (a vectorized test over every replica at once). Candidates are tried in a
fixed order -- lowest priority first, then the engine's seeded node order -- at most
``TRIES`` per job: the replica is taken off, the left-out job must then pass the engine's own
capacity and GPU checks on the freed node, and the replica must find another node under its own
job's constraints and gang rules (the engine's exact residual ranking of that job, its best
valid node). Only then are both reserved; otherwise the state is restored exactly.

A gang is repaired the same way, one move per node: the nodes that fit it now plus the nodes
one move would free are offered to the gang rules (``select_nodes``), and the moves of the
chosen nodes are made one by one (all or nothing).

When no move works, a *swap* takes one placed job of lower or equal priority out (its replica
sits on a node the left-out job needs), places the left-out job, then the taken-out job and
other left-out jobs a freed node now admits; an *eviction* does the same after clearing one
node of every replica of lower or equal priority. Both are kept only when no priority tier
places fewer jobs and the total rises (``TRIES_SWAP`` of each per job). What they took out is
placed again with the left-out jobs the freed nodes may admit *small first* (higher priority
first, then fewer GPUs in all): the room one big job held is best spent on several small
ones. Last, a left-out job that fits at most ``CLUSTER`` nodes of the empty fleet has *its
cluster repacked* (once per repair pass): every replica on those nodes is taken out
(single-node jobs of any priority -- those of a higher priority must all find a node again,
or nothing is kept -- and gangs of its priority or lower) and all of them are placed again
with it, highest priority first, small first within a tier.

Guarantees: a move never unplaces anything and swaps and evictions are undone unless every
tier keeps its count, so no priority tier loses a placed job; the order
of attempts depends only on priorities, job indices and the seeded node order, never on the
order of the rows; the work is bounded (``TRIES`` moves per job, ``BUDGET`` per job on
average for the batch).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING

import attrs
import numpy as np
import numpy.typing as npt

from nodeselect.engine import GpuEval, combine, gpu_choice, gpu_eval, score_terms, top_positions
from nodeselect.placement._gang import UNKNOWN, Candidate, select_nodes
from nodeselect.placement._plan import Residual, _demand

if TYPE_CHECKING:
    from nodeselect.placement._placer import _Placer

__all__ = ["BUDGET", "CLUSTER", "TRIES", "TRIES_SWAP", "budget", "repair_plan"]

#: Moves tried per left-out job (replica candidates, best first).
TRIES = 8
#: Swaps and evictions tried per left-out job (each re-places what it took out).
TRIES_SWAP = 8
#: A left-out job that fits at most this many nodes of the empty fleet may have them all
#: cleared (of replicas of its priority or lower) and packed again with it.
CLUSTER = 16
#: Jobs feasible on at most this many nodes keep them as a set for the refill filter.
SMALL_SET = 4096
#: Passes over the left-out jobs (another pass only when the previous one placed a job).
ROUNDS = 3
#: Attempts (moves, swaps, placements) for the whole batch per job, on a fleet of
#: ``BUDGET_NODES`` nodes; an attempt costs about what one greedy turn costs, which grows with
#: the fleet, so the budget shrinks with it (at least ``BUDGET_MIN`` per job): the repair pass
#: stays a bounded fraction of the greedy pass on large fleets.
BUDGET = 8
BUDGET_NODES = 2_000
BUDGET_MIN = 0.25


def budget(jobs: int, nodes: int) -> int:
    """The attempts the repair pass may make on a batch of ``jobs`` jobs and ``nodes`` nodes."""
    per_job = max(BUDGET_MIN, min(BUDGET, BUDGET * BUDGET_NODES / max(nodes, 1)))
    return int(per_job * jobs)


@attrs.frozen(eq=False)
class _Replicas:
    """Every placed replica as flat arrays (rebuilt after each successful repair)."""

    job: npt.NDArray[np.int64]
    pos: npt.NDArray[np.int64]  # position in its assignment
    row: npt.NDArray[np.int64]
    priority: npt.NDArray[np.int64]
    cores: npt.NDArray[np.int64]
    ram: npt.NDArray[np.float64]
    disk: npt.NDArray[np.float64]
    gpu: npt.NDArray[np.int64]  # global GPU ids of all replicas, concatenated
    gpu_rep: npt.NDArray[np.int64]  # which replica each of ``gpu`` belongs to


def _replicas(p: _Placer) -> _Replicas:
    job: list[int] = []
    pos: list[int] = []
    row: list[int] = []
    pri: list[int] = []
    cores: list[int] = []
    ram: list[float] = []
    disk: list[float] = []
    gpu: list[int] = []
    gpu_rep: list[int] = []
    offsets = p.table.gpu_offsets
    for j, got in p.placed.items():
        c, r, d = _demand(p.jobs[j])
        for k, cand in enumerate(got):
            rid = len(job)
            job.append(j)
            pos.append(k)
            row.append(cand.index)
            pri.append(p.jobs[j].priority)
            cores.append(c)
            ram.append(r)
            disk.append(d)
            start = int(offsets[cand.index])
            for g in cand.gpu_indices:
                gpu.append(start + g)
                gpu_rep.append(rid)
    i64 = np.int64
    return _Replicas(
        np.array(job, dtype=i64),
        np.array(pos, dtype=i64),
        np.array(row, dtype=i64),
        np.array(pri, dtype=i64),
        np.array(cores, dtype=i64),
        np.array(ram, dtype=np.float64),
        np.array(disk, dtype=np.float64),
        np.array(gpu, dtype=i64),
        np.array(gpu_rep, dtype=i64),
    )


class _Repair:
    def __init__(self, p: _Placer) -> None:
        self.p = p
        self.reps = _replicas(p)
        self.budget = budget(len(p.jobs), len(p.table))
        self.fits: dict[int, bool] = {}
        self.row_sets: dict[int, frozenset[int] | None] = {}
        self.feasible_rows: dict[int, npt.NDArray[np.int64]] = {}
        self.bits: npt.NDArray[np.uint8] | None = None  # distinct packed masks, stacked
        self.bits_of = np.zeros(0, dtype=np.int64)  # per job, its row of ``bits``
        self.stacked = False
        self.clustered: set[int] = set()
        self.turn = {j: t for t, j in enumerate(p.order)}
        n = len(p.table)
        self.gpu_node = np.repeat(np.arange(n, dtype=np.int64), np.diff(p.table.gpu_offsets))

    # ------------------------------------------------------------------ engine checks
    def _fit(
        self, j: int, rows: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.bool_], GpuEval | None]:
        """Whether each of ``rows`` (survey-feasible for ``j``) admits a replica of ``j`` on the
        residual now: the engine's capacity constraints and GPU group."""
        from nodeselect.placement._placer import _capacity_ok  # noqa: PLC0415

        p = self.p
        cj, view = p.compiled[j], p.residual.view()
        ok = _capacity_ok(cj, view, rows)
        ge = None
        if cj.count:
            ge = gpu_eval(cj, view, rows)
            assert ge is not None
            ok &= ge.ok[rows]
        return ok, ge

    def _candidate(self, j: int, row: int, ge: GpuEval | None) -> Candidate:
        """Job ``j``'s replica on ``row`` (which fits): its GPUs and score on the residual."""

        p = self.p
        cj, view = p.compiled[j], p.residual.view()
        rows = np.array([row], dtype=np.int64)
        score = float(combine(cj, score_terms(cj, view, rows, ge, p.stats.max_gpu_count), 1)[0])
        gpus = gpu_choice(cj, view, ge, row)
        return Candidate(row, score, tuple(int(g) for g in gpus))

    # ------------------------------------------------------------------ move candidates
    def _movable(self, u: int) -> npt.NDArray[np.int64]:
        """Replica ids whose removal would free their node for a replica of ``u`` (by the
        numbers: cores, RAM, disk, eligible unreserved GPUs), best first."""
        p, reps = self.p, self.reps
        if len(reps.job) == 0:
            return reps.job
        job, survey = p.jobs[u], p.surveys[u]
        cand = np.flatnonzero((reps.priority <= job.priority) & survey.was_feasible(reps.row))
        if len(cand) == 0:
            return cand
        rows = reps.row[cand]
        res = p.residual
        cores, ram, disk = _demand(job)
        ok = np.ones(len(cand), dtype=np.bool_)
        if cores:
            ok &= res.cpu_cores[rows] + reps.cores[cand] >= cores
        if ram:
            ok &= res.ram_free_gb[rows].astype(np.float64) + reps.ram[cand] >= ram
        if disk:
            ok &= res.disk_free_gb[rows].astype(np.float64) + reps.disk[cand] >= disk
        ge = survey.ge
        if job.gpu.count and ge is not None:
            passes = ge.passes
            # eligible GPUs free on each node now, and eligible GPUs each replica holds
            free_ok = passes & ~res.gpu_reserved
            have = np.bincount(self.gpu_node[free_ok], minlength=len(p.table))[rows]
            held = np.bincount(reps.gpu_rep, weights=passes[reps.gpu], minlength=len(reps.job))
            ok &= have + held[cand].astype(np.int64) >= job.gpu.count
        cand = cand[ok]
        if len(cand) == 0:
            return cand
        # Order: lowest priority first, then the engine's seeded node order (row-order free),
        # then job index and replica position.
        key = -reps.priority[cand].astype(np.float64)
        pos = top_positions(p.table, reps.row[cand], key, seed=p.seed, k=len(cand))
        return cand[pos]

    # ------------------------------------------------------------------ relocation
    def _target(self, jr: int, k: int, away: int) -> Candidate | None:
        """Where replica ``k`` of placed job ``jr`` could go instead of ``away``: its best valid
        node on the residual (gang rules against the job's other replicas)."""
        p = self.p
        job = p.jobs[jr]
        others = [c for i, c in enumerate(p.placed[jr]) if i != k]
        taken = {c.index for c in others} | {away}
        ops = {int(p.operator_of[c.index]) for c in others}
        scope_code = None
        if job.nodes > 1 and job.gang.same is not None and others:
            from nodeselect.placement._placer import _scope_codes  # noqa: PLC0415

            scope = _scope_codes(p.table, job.gang.same)
            assert scope is not None
            scope_code = int(scope[others[0].index])
        else:
            scope = None
        # The greedy's widening stages: an exact prefix of the residual ranking each.
        stages: list[tuple[bool, int | None]] = [(False, 8 + len(taken)), (False, None)]
        if not p.surveys[jr].complete:
            stages.append((True, None))
        skip_near = False
        for full, kk in stages:
            if not full and skip_near:
                continue
            stage = p._candidates(jr, kk, full=full)
            for c in stage.cands:
                if c.index in taken:
                    continue
                if job.nodes > 1 and job.gang.distinct == "operator":
                    op = int(p.operator_of[c.index])
                    if op == UNKNOWN or op in ops:
                        continue
                if scope is not None and int(scope[c.index]) != scope_code:
                    continue
                return p._with_gpus(jr, [c], stage)[0]
            if not full:
                skip_near = not stage.truncated
        return None

    def _move(self, rid: int, u: int) -> bool:
        """Take replica ``rid`` off its node, then move it elsewhere if ``u`` then fits there.
        On success both stay reserved (``u`` not yet); on failure the state is restored."""
        p, reps = self.p, self.reps
        jr, k, row = int(reps.job[rid]), int(reps.pos[rid]), int(reps.row[rid])
        old = p.placed[jr][k]
        state = p.residual.snapshot()
        p.residual.release(p.jobs[jr], row, old.gpu_indices)
        ok, _ = self._fit(u, np.array([row], dtype=np.int64))
        # by the numbers first: the engine ranks the replica's job only when it may fit elsewhere
        if ok[0] and self._room(jr, row):
            target = self._target(jr, k, row)
            if target is not None:
                p.residual.reserve(p.jobs[jr], target.index, target.gpu_indices)
                got = list(p.placed[jr])
                got[k] = target
                p.placed[jr] = tuple(got)
                return True
        p.residual.restore(state)
        return False

    # ------------------------------------------------------------------ jobs
    def single(self, u: int) -> bool:
        """Place single-node job ``u`` by one move, or leave everything as it was."""
        for tried, rid in enumerate(self._movable(u).tolist()):
            if tried >= TRIES or self.budget <= 0:
                break
            self.budget -= 1
            row = int(self.reps.row[rid])
            if self._move(rid, u):
                self._settle(u, row)
                self.p.moved += 1
                return True
        return False

    def _settle(self, u: int, row: int) -> None:
        """Reserve single-node job ``u`` on ``row`` (which fits it now) and record it."""
        p = self.p
        ok, ge = self._fit(u, np.array([row], dtype=np.int64))
        assert ok[0]
        c = self._candidate(u, row, ge)
        p.residual.reserve(p.jobs[u], row, c.gpu_indices)
        p.placed[u] = (c,)

    def gang(self, u: int) -> bool:
        """Place gang ``u``: nodes that fit now plus nodes one move frees, all or nothing."""
        p = self.p
        job = p.jobs[u]
        stage = p._candidates(u, None, full=not p.surveys[u].complete)
        direct = {c.index: c for c in stage.cands}
        free_by: dict[int, int] = {}
        for rid in self._movable(u).tolist():
            row = int(self.reps.row[rid])
            if row not in direct and row not in free_by:
                free_by[row] = rid
        if len(direct) + len(free_by) < job.nodes or not free_by:
            return False
        # Offer both kinds in the engine's order of the job's survey scores (freed nodes have
        # the score they would have without the moved replica; approximated by their position).
        extra = np.array(list(free_by), dtype=np.int64)
        pos = top_positions(p.table, extra, np.zeros(len(extra)), seed=p.seed, k=len(extra))
        cands = list(stage.cands) + [Candidate(int(r), 0.0, ()) for r in extra[pos].tolist()]
        from nodeselect.placement._placer import _scope_codes  # noqa: PLC0415

        scope = _scope_codes(p.table, job.gang.same)
        choice = select_nodes(cands, job.nodes, job.gang, operator_of=p.operator_of, scope_of=scope)
        if not choice.chosen:
            return False
        moves = [free_by[c.index] for c in choice.chosen if c.index in free_by]
        if len(moves) > TRIES or self.budget < len(moves):
            return False
        state = p.residual.snapshot()
        placed_before = dict(p.placed)
        self.budget -= len(moves)
        for rid in moves:
            if not self._move(rid, u):
                p.residual.restore(state)
                p.placed = placed_before
                return False
        rows = np.array([c.index for c in choice.chosen], dtype=np.int64)
        ok, ge = self._fit(u, rows)
        if not ok.all():
            p.residual.restore(state)
            p.placed = placed_before
            return False
        got: list[Candidate] = []
        for r in rows.tolist():
            c = self._candidate(u, r, ge)
            p.residual.reserve(job, r, c.gpu_indices)
            got.append(c)
        got.sort(key=lambda c: -c.score)
        p.placed[u] = tuple(got)
        p.moved += len(moves)
        return True

    def swap(self, u: int) -> bool:
        """Place ``u`` in the room of one placed job ``v`` of lower or equal priority, then
        place ``v`` again or other left-out jobs: kept only when no priority tier loses a
        placed job and more jobs are placed than before (else restored exactly)."""
        p = self.p
        before = Counter(p.jobs[j].priority for j in p.placed)
        tried: set[int] = set()
        for rid in self._movable(u).tolist():
            v = int(self.reps.job[rid])
            if v in tried:
                continue
            if len(tried) >= TRIES_SWAP or self.budget <= 0:
                break
            tried.add(v)
            self.budget -= 1
            state = p.residual.snapshot()
            placed0, left0 = dict(p.placed), dict(p.left)
            for c in p.placed.pop(v):
                p.residual.release(p.jobs[v], c.index, c.gpu_indices)
            p.left[v] = ("", p.residual.version)
            rows = np.array([c.index for c in placed0[v]], dtype=np.int64)
            if self._try(u):
                self._refill([v], rows, u)
                if self._gain(placed0, before):
                    return True
            p.residual.restore(state)
            p.placed, p.left = placed0, left0
        return False

    def _evictable(self, u: int) -> list[tuple[int, list[int]]]:
        """Nodes that admitted ``u`` on the empty fleet and would admit it again with every
        replica of priority at most ``u``'s taken off, with the jobs to take off: fewest jobs
        first, then the engine's seeded node order."""
        p, reps = self.p, self.reps
        job, survey = p.jobs[u], p.surveys[u]
        mine = np.flatnonzero((reps.priority <= job.priority) & survey.was_feasible(reps.row))
        if len(mine) == 0:
            return []
        rows, inverse = np.unique(reps.row[mine], return_inverse=True)
        res = p.residual
        cores, ram, disk = _demand(job)
        ok = np.ones(len(rows), dtype=np.bool_)
        if cores:
            got = np.bincount(inverse, weights=reps.cores[mine], minlength=len(rows))
            ok &= res.cpu_cores[rows] + got >= cores
        if ram:
            got = np.bincount(inverse, weights=reps.ram[mine], minlength=len(rows))
            ok &= res.ram_free_gb[rows].astype(np.float64) + got >= ram
        if disk:
            got = np.bincount(inverse, weights=reps.disk[mine], minlength=len(rows))
            ok &= res.disk_free_gb[rows].astype(np.float64) + got >= disk
        ge = survey.ge
        if job.gpu.count and ge is not None:
            passes = ge.passes
            free_ok = passes & ~res.gpu_reserved
            have = np.bincount(self.gpu_node[free_ok], minlength=len(p.table))[rows]
            held = np.bincount(reps.gpu_rep, weights=passes[reps.gpu], minlength=len(reps.job))
            got = np.bincount(inverse, weights=held[mine], minlength=len(rows))
            ok &= have + got.astype(np.int64) >= job.gpu.count
        if not ok.any():
            return []
        jobs_on: dict[int, set[int]] = {}
        for rid, i in zip(mine.tolist(), inverse.tolist(), strict=True):
            if ok[i]:
                jobs_on.setdefault(int(rows[i]), set()).add(int(reps.job[rid]))
        cand = np.array(sorted(jobs_on), dtype=np.int64)
        size = np.array([len(jobs_on[r]) for r in cand.tolist()], dtype=np.float64)
        pos = top_positions(p.table, cand, -size, seed=p.seed, k=len(cand))
        turn = self.turn
        return [(r, sorted(jobs_on[r], key=turn.__getitem__)) for r in cand[pos].tolist()]

    def evict(self, u: int) -> bool:
        """Place ``u`` on a node cleared of every replica of priority at most ``u``'s, then
        place the evicted jobs again, or other left-out jobs: kept only when no priority tier
        loses a placed job and more jobs are placed than before (else restored exactly).
        Last, when ``u`` fits few nodes (at most ``CLUSTER``), all of them are cleared so at
        once and packed again."""
        for tried, (_, evicted) in enumerate(self._evictable(u)):
            if tried >= TRIES_SWAP or self.budget <= 0:
                break
            if self._clear(u, evicted):
                return True
        return self._cluster(u)

    def _cluster(self, u: int) -> bool:
        """Clear every node ``u`` fits on the empty fleet (when at most ``CLUSTER``) of its
        replicas -- of any priority, single-node jobs; gangs only of priority at most
        ``u``'s -- and pack them all again with ``u``, higher priority first (``_refill``)."""
        p, reps = self.p, self.reps
        if p.surveys[u].feasible > CLUSTER or self.budget <= 0 or len(reps.job) == 0:
            return False
        if u in self.clustered:  # once per job and pass: a repack takes out many jobs
            return False
        self.clustered.add(u)
        on = p.surveys[u].was_feasible(reps.row)
        single = np.array([p.jobs[j].nodes == 1 for j in reps.job.tolist()], dtype=np.bool_)
        mine = on & (single | (reps.priority <= p.jobs[u].priority))
        evicted = sorted({int(j) for j in reps.job[mine].tolist()}, key=self.turn.__getitem__)
        if not evicted:
            return False
        # ``u`` first (the others must then find room), then ``u`` in its turn among them
        return self._clear(u, evicted, first=True, keep=True) or (
            len(evicted) > 1 and self._clear(u, evicted, first=False, keep=True)
        )

    def _kept(self, u: int, evicted: list[int]) -> bool:
        """Whether every evicted job of a priority above ``u``'s is placed again."""
        p = self.p
        top = p.jobs[u].priority
        return all(v in p.placed for v in evicted if p.jobs[v].priority > top)

    def _clear(self, u: int, evicted: list[int], *, first: bool = True, keep: bool = False) -> bool:
        """Take the ``evicted`` jobs out, place ``u`` (``first``, else in its turn among
        them), then place the evicted jobs and other left-out jobs again (``_refill``): kept
        when more jobs are placed and no tier fewer (with ``keep``: and every evicted job of
        a priority above ``u``'s is placed again)."""
        p = self.p
        self.budget -= 1
        before = Counter(p.jobs[j].priority for j in p.placed)
        state = p.residual.snapshot()
        placed0, left0 = dict(p.placed), dict(p.left)
        freed: set[int] = set()
        for v in evicted:
            for c in p.placed.pop(v):
                p.residual.release(p.jobs[v], c.index, c.gpu_indices)
                freed.add(c.index)
            p.left[v] = ("", p.residual.version)
        rows = np.array(sorted(freed), dtype=np.int64)
        if first and self._try(u):
            self._refill(evicted, rows, u)
        elif not first:
            self._refill([*evicted, u], rows)
        if u in p.placed and (not keep or self._kept(u, evicted)) and self._gain(placed0, before):
            return True
        p.residual.restore(state)
        p.placed, p.left = placed0, left0
        return False

    def _refill(self, taken: list[int], rows: npt.NDArray[np.int64], *placed: int) -> None:
        """After jobs were ``taken`` out (freeing ``rows``) and ``placed`` put in, place again
        the taken jobs and the left-out jobs the freed rows may admit: higher priority first,
        then fewer GPUs in all (small jobs first: the room freed is best spent on many), then
        turn order."""
        p, turn = self.p, self.turn
        out = set(taken)
        cands = [*taken, *(w for w in self._hitting(rows) if w not in out and w not in placed)]

        def key(w: int) -> tuple[int, int, int]:
            job = p.jobs[w]
            return (-job.priority, job.gpu.count * job.nodes, turn[w])

        for w in sorted(cands, key=key):
            if self.budget <= 0:
                break
            if w in out or self._may_fit(w, rows):
                self.budget -= 1
                self._try(w)

    def _may_fit(self, w: int, freed: npt.NDArray[np.int64]) -> bool:
        """Whether left-out job ``w`` may fit now: it failed before, and since then only the
        ``freed`` rows gained capacity, so one of them must admit a replica of it now."""
        if not self._fits(w):
            return False
        p = self.p
        small = self._rows_of(w)
        if small is not None:
            if not any(r in small for r in freed.tolist()):
                return False
            rows = np.array([r for r in freed.tolist() if r in small], dtype=np.int64)
        else:
            rows = freed[p.surveys[w].was_feasible(freed)]
        if len(rows) == 0:
            return False
        # by the numbers first (cores, RAM, disk, eligible unreserved GPUs), then the engine
        ok = self._by_numbers(w, rows)
        if not ok.any():
            return False
        self.budget -= 1
        return bool(self._fit(w, rows[ok])[0].any())

    def _hitting(self, rows: npt.NDArray[np.int64]) -> list[int]:
        """The left-out jobs (in turn order) that fit the empty fleet and admitted a replica
        on one of ``rows`` there: the only ones freeing ``rows`` can help (one vectorized
        test of every job's packed feasibility bits)."""
        p = self.p
        left = np.fromiter(p.left, dtype=np.int64, count=len(p.left))
        if len(left) == 0 or len(rows) == 0:
            return []
        if not self.stacked:
            self._stack_bits()
        if self.bits is None:
            # Placement at scale keeps packed masks only within a memory budget: past it,
            # each left-out job asks its survey (the engine, on these rows only).
            hit = [int(w) for w in left if p.surveys[w].was_feasible(rows).any()]
        else:
            group = self.bits[self.bits_of[left]]
            cols = group[:, rows >> 3] >> (7 - (rows & 7)).astype(np.uint8)
            hit = left[(cols & 1).any(axis=1)].tolist()
        return [w for w in hit if self._fits(w)]

    def _stack_bits(self) -> None:
        """Stack the surveys' packed masks once, each distinct mask once (the jobs of one
        group share theirs: stacking per job would hold jobs x nodes/8 bytes); nothing when
        some survey kept no mask."""
        self.stacked = True
        where: dict[int, int] = {}
        masks: list[npt.NDArray[np.uint8]] = []
        of = np.empty(len(self.p.surveys), dtype=np.int64)
        for j, s in enumerate(self.p.surveys):
            if s.bits is None:
                return
            of[j] = where.setdefault(id(s.bits), len(masks))
            if of[j] == len(masks):
                masks.append(s.bits)
        self.bits, self.bits_of = (np.stack(masks) if masks else None), of

    def _by_numbers(self, w: int, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Whether each of ``rows`` has the cores, RAM, disk and eligible unreserved GPUs a
        replica of ``w`` takes (a necessary condition of the engine's check, vectorized)."""
        p = self.p
        res, job = p.residual, p.jobs[w]
        cores, ram, disk = _demand(job)
        ok = np.ones(len(rows), dtype=np.bool_)
        if cores:
            ok &= res.cpu_cores[rows] >= cores
        if ram:
            ok &= res.ram_free_gb[rows] >= np.float32(ram)
        if disk:
            ok &= res.disk_free_gb[rows] >= np.float32(disk)
        ge = p.surveys[w].ge
        if job.gpu.count and ge is not None and ok.any():
            ok &= res.free_gpu_count[rows] >= job.gpu.count
            if ok.any():
                sub = rows[ok]
                gpus = p.table.gpu_rows(sub)
                usable = ge.passes[gpus] & ~res.gpu_reserved[gpus]
                owner = np.repeat(np.arange(len(sub)), np.diff(p.table.gpu_offsets)[sub])
                ok[ok] = np.bincount(owner[usable], minlength=len(sub)) >= job.gpu.count
        return ok

    def _room(self, w: int, away: int = -1) -> bool:
        """Whether enough nodes (other than ``away``) that admitted ``w`` on the empty fleet
        have, by the numbers, room for a replica of it now: one, or every replica of a gang."""
        rows = self._feasible(w)
        if away >= 0:
            rows = rows[rows != away]
        need = self.p.jobs[w].nodes if away < 0 else 1
        return int(self._by_numbers(w, rows).sum()) >= need

    def _feasible(self, w: int) -> npt.NDArray[np.int64]:
        """Job ``w``'s feasible rows on the empty fleet, ascending (cached)."""
        got = self.feasible_rows.get(w)
        if got is None:
            got = self.feasible_rows[w] = self.p.surveys[w].feasible_rows(len(self.p.table))
        return got

    def _rows_of(self, w: int) -> frozenset[int] | None:
        """Job ``w``'s feasible rows on the empty fleet as a set, when it has few (cached)."""
        if w not in self.row_sets:
            survey = self.p.surveys[w]
            self.row_sets[w] = (
                frozenset(survey.feasible_rows(len(self.p.table)).tolist())
                if survey.feasible <= SMALL_SET
                else None
            )
        return self.row_sets[w]

    def _gain(self, placed0: Mapping[int, object], before: Counter[int]) -> bool:
        """Whether the placed jobs now outnumber those of ``placed0`` with no tier lower."""
        p = self.p
        after = Counter(before)
        for j in placed0:
            if j not in p.placed:
                after[p.jobs[j].priority] -= 1
        for j in p.placed:
            if j not in placed0:
                after[p.jobs[j].priority] += 1
        return len(p.placed) > len(placed0) and all(after[t] >= n for t, n in before.items())

    def _fits(self, w: int) -> bool:
        """Whether job ``w`` fits the empty fleet (cached)."""
        got = self.fits.get(w)
        if got is None:
            got = self.fits[w] = self.p.fits_empty(w)
        return got

    def _try(self, w: int) -> bool:
        """Place left-out job ``w`` the greedy way on the residual now."""
        p = self.p
        if not self._room(w):
            return False
        got = p._place_one(w)
        if isinstance(got, str):
            return False
        for c in got:
            p.residual.reserve(p.jobs[w], c.index, c.gpu_indices)
        p.placed[w] = got
        del p.left[w]
        return True


def repair_plan(p: _Placer) -> None:
    """Run the repair pass on a placer after its greedy pass (see the module docstring)."""
    if not p.left or not p.placed:
        return
    fixer = _Repair(p)
    before = (dict(p.placed), dict(p.left), p.residual.snapshot())
    for _ in range(ROUNDS):
        progress = False
        for u in [j for j in p.order if j in p.left]:
            if fixer.budget <= 0:
                break
            if u not in p.left or not fixer._fits(u):
                continue
            ok = fixer.single(u) if p.jobs[u].nodes == 1 else fixer.gang(u)
            if ok:
                del p.left[u]
            else:
                ok = fixer.swap(u) or fixer.evict(u)
            if ok:
                fixer.reps = _replicas(p)
                progress = True
        if not progress:
            break
    p.left = {j: p.left[j] for j in p.order if j in p.left}
    p.repaired = sum(1 for j in p.placed if j not in before[0])
    p.displaced_jobs = {j for j in before[0] if j not in p.placed}
    p.displaced = len(p.displaced_jobs)
    p.moved = sum(
        1
        for j, got in p.placed.items()
        if j in before[0]
        for a, b in zip(got, before[0][j], strict=True)
        if a.index != b.index
    )
    p.replay_reasons = bool(p.repaired or p.displaced or p.moved)
    if fixer.budget < budget(len(p.jobs), len(p.table)) and not _replays(p):  # pragma: no cover
        # float32 capacities are released by adding back what was subtracted; should that ever
        # differ by a rounding step from a fresh replay, keep the greedy plan.
        p.placed, p.left = before[0], before[1]
        p.residual.restore(before[2])
        p.repaired = p.moved = p.displaced = 0
        p.displaced_jobs = set()
        p.replay_reasons = False


def _replays(p: _Placer) -> bool:
    """Whether the placed replicas, reserved afresh in plan order, all fit."""
    fresh = Residual(p.table)
    for j, got in p.placed.items():
        for c in got:
            if not fresh.fits(p.jobs[j], c.index, c.gpu_indices):
                return False
            fresh.reserve(p.jobs[j], c.index, c.gpu_indices)
    return True
