"""Exact placement: the integer program of :mod:`nodeselect.placement._model`, solved by HiGHS.

``place(..., objective="optimal")`` runs the default placement (greedy pass and repair) first,
hands its plan to HiGHS as the starting incumbent, and solves for the lexicographic maximum of
placed jobs per priority tier. The solver's plan is then replayed on a fresh residual in the
greedy's order (highest priority first), which gives each replica its GPUs -- a small
bipartite matching per node, which Hall's condition in the model guarantees to exist -- and its
score against the capacity left at its turn, exactly as the greedy reports scores. Should the
replay ever fail (it cannot when the model is right), the seed plan is kept.

``highspy`` is imported only here, only when asked for; without it a
:class:`~nodeselect.errors.NodeSelectError` names the extra to install.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from nodeselect.engine import combine, gpu_eval, score_terms
from nodeselect.errors import OptionalDependencyError
from nodeselect.placement._gang import Candidate
from nodeselect.placement._model import JobData, Model, build_model
from nodeselect.placement._plan import Plan, Residual, SolverReport, _demand

if TYPE_CHECKING:
    from nodeselect.placement._placer import _Placer

__all__ = ["OptionalDependencyError", "solve_optimal"]


def _highspy() -> Any:
    try:
        import highspy  # noqa: PLC0415
    except ImportError as exc:
        raise OptionalDependencyError(
            'objective="optimal" needs the HiGHS solver: pip install "nodeselect[optimal]" '
            f"(installs highspy); it could not be imported: {exc}"
        ) from exc
    return highspy


def _quiet(hs: Any) -> Any:
    """A ``Highs`` object that prints nothing: its constructor writes a banner straight to file
    descriptor 1 (below Python), which would corrupt ``--json`` output, so that descriptor
    points at the null device while it runs."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            h = hs.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    h.setOptionValue("output_flag", False)
    return h


def _job_data(p: _Placer) -> list[JobData]:
    out = []
    for j, job in enumerate(p.jobs):
        survey = p.surveys[j]
        cores, ram, disk = _demand(job)
        rows = survey.feasible_rows(len(p.table)) if survey.feasible else np.zeros(0, np.int64)
        passes = None if survey.ge is None else survey.ge.passes
        out.append(JobData(job, rows, passes, cores, ram, disk))
    return out


def _seed_vector(model: Model, p: _Placer) -> list[float]:
    """The greedy plan as a point of the model (every column, flow variables included)."""
    x = np.zeros(model.num_col)
    for j, got in p.placed.items():
        x[model.x_col[j]] = 1.0
        for c in got:
            x[model.y_of[j, c.index]] = 1.0
            job = p.jobs[j]
            if job.nodes > 1 and job.gang.same is not None:
                from nodeselect.placement._placer import _scope_codes  # noqa: PLC0415

                scope = _scope_codes(p.table, job.gang.same)
                assert scope is not None
                x[model.z_of[j, int(scope[c.index])]] = 1.0
            flow = model.flow.get(c.index)
            if flow is not None and c.gpu_indices:
                cols, types = flow
                for ti, members in enumerate(types):
                    inside = sum(1 for g in c.gpu_indices if g in members)
                    if inside:
                        x[cols[j, ti]] += inside
    out: list[float] = x.tolist()
    return out


def _match(
    demands: list[tuple[int, tuple[int, ...]]], free: set[int]
) -> list[tuple[int, ...]] | None:
    """GPUs for each (count, eligible GPUs) demand from ``free``, or None (augmenting paths)."""
    owner: dict[int, int] = {}
    units = [(i, e) for i, (c, e) in enumerate(demands) for _ in range(c)]

    def augment(u: int, seen: set[int]) -> bool:
        _, eligible = units[u]
        for g in eligible:
            if g not in free or g in seen:
                continue
            seen.add(g)
            if g not in owner or augment(owner[g], seen):
                owner[g] = u
                return True
        return False

    for u in range(len(units)):
        if not augment(u, set()):
            return None
    out: list[list[int]] = [[] for _ in demands]
    for g, u in owner.items():
        out[units[u][0]].append(g)
    return [tuple(sorted(g)) for g in out]


def _gpus_per_node(
    p: _Placer, model: Model, chosen: dict[int, list[int]]
) -> dict[tuple[int, int], tuple[int, ...]] | None:
    """Per (job, row) of the solution, its GPUs (positions in the node's ``gpus[]``)."""
    by_row: dict[int, list[int]] = {}
    for j, rows in chosen.items():
        for r in rows:
            if p.jobs[j].gpu.count:
                by_row.setdefault(r, []).append(j)
    reserved = p.table.gpu_reserved
    out: dict[tuple[int, int], tuple[int, ...]] = {}
    for r, js in by_row.items():
        start, end = int(p.table.gpu_offsets[r]), int(p.table.gpu_offsets[r + 1])
        free = {g for g in range(end - start) if reserved is None or not reserved[start + g]}
        ordered = sorted(js, key=lambda j: (len(model.eligible[j, r]), j))
        got = _match([(p.jobs[j].gpu.count, model.eligible[j, r]) for j in ordered], free)
        if got is None:
            return None
        for j, g in zip(ordered, got, strict=True):
            out[j, r] = g
    return out


def solve_optimal(p: _Placer, *, time_limit: float | None, threads: int = 1) -> Plan:
    """Solve the placer's batch exactly, seeded with its current (greedy + repair) plan.

    ``p`` is a ``_Placer`` after its greedy and repair passes. Returns a normal plan with
    ``quality.solver`` filled in; never places fewer jobs of any tier than the seed (the
    objective is lexicographic and the seed is the starting incumbent).
    """
    hs = _highspy()
    data = _job_data(p)
    from nodeselect.placement._placer import _scope_codes  # noqa: PLC0415

    scopes = {}
    for name in ("continent", "country", "subdivision"):
        codes = _scope_codes(p.table, name)
        assert codes is not None
        scopes[name] = codes
    t = p.table
    model = build_model(
        data,
        gpu_offsets=t.gpu_offsets.astype(np.int64),
        cores=t.cpu_cores.astype(np.int64),
        ram=t.ram_free_gb,
        disk=t.disk_free_gb,
        reserved=t.gpu_reserved,
        operator_of=p.operator_of,
        scopes=scopes,
    )
    seed_placed = len(p.placed)
    seed_obj = sum(model.weights[j] for j in p.placed)
    h = _quiet(hs)
    h.setOptionValue("threads", threads)
    h.setOptionValue("random_seed", 0)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 0.5)  # objective values are integers
    if time_limit is not None:
        h.setOptionValue("time_limit", float(time_limit))
    lp = hs.HighsLp()
    lp.num_col_ = model.num_col
    lp.num_row_ = model.num_row
    lp.col_cost_ = model.cost
    lp.col_lower_ = model.lower
    lp.col_upper_ = model.upper
    lp.row_lower_ = model.row_lower
    lp.row_upper_ = model.row_upper
    lp.sense_ = hs.ObjSense.kMaximize
    lp.a_matrix_.format_ = hs.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = model.start.astype(np.int32)
    lp.a_matrix_.index_ = model.index.astype(np.int32)
    lp.a_matrix_.value_ = model.value
    lp.integrality_ = [hs.HighsVarType.kInteger] * model.num_col
    started = time.perf_counter()
    if model.num_col == 0:
        report = _report("optimal", seed_obj, seed_obj, seed_placed, model, 0.0)
        return p.plan(objective="optimal", solver=report)
    h.passModel(lp)
    sol = hs.HighsSolution()
    sol.col_value = _seed_vector(model, p)
    sol.value_valid = True
    h.setSolution(sol)
    h.run()
    seconds = time.perf_counter() - started
    status = h.getModelStatus()
    info = h.getInfo()
    optimal = status == hs.HighsModelStatus.kOptimal
    bound = float(info.mip_dual_bound)
    if not math.isfinite(bound):
        bound = float(sum(model.weights[j] for j, c in enumerate(model.x_col) if c >= 0))
    values = np.asarray(h.getSolution().col_value) if info.primal_solution_status else None
    obj = float(info.objective_function_value) if values is not None else seed_obj
    if values is None or obj <= seed_obj + 0.5:
        # Nothing better than the seed: keep the seed plan, with the solver's verdict.
        state = "optimal" if optimal else ("time-limit" if seconds > 0 else "greedy")
        return p.plan(
            objective="optimal",
            solver=_report(state, seed_obj, max(bound, seed_obj), seed_placed, model, seconds),
        )
    chosen = _solution(model, values)
    if not _install(p, model, chosen):  # pragma: no cover - the model guarantees a replay
        return p.plan(
            objective="optimal",
            solver=_report("greedy", seed_obj, bound, seed_placed, model, seconds),
        )
    state = "optimal" if optimal else "time-limit"
    return p.plan(
        objective="optimal",
        solver=_report(state, obj, max(bound, obj), seed_placed, model, seconds),
    )


def _report(  # noqa: PLR0917
    status: str,
    obj: float,
    /,
    bound: float,
    seed_placed: int,
    model: Model,
    seconds: float,
) -> SolverReport:
    gap = 0.0 if status == "optimal" else max(0.0, (bound - obj) / max(obj, 1.0))
    return SolverReport(
        status=status,  # type: ignore[arg-type]
        objective=obj,
        bound=bound,
        gap=gap,
        jobs_bound=_jobs_bound(model, bound),
        seed_placed=seed_placed,
        seconds=seconds,
        columns=model.num_col,
        rows=model.num_row,
    )


def _jobs_bound(model: Model, bound: float) -> int:
    """The most jobs any plan of objective at most ``bound`` can place: take the lightest
    placeable jobs first."""
    ws = sorted(model.weights[j] for j, c in enumerate(model.x_col) if c >= 0)
    total, count = 0.0, 0
    for w in ws:
        if total + w > bound + 1e-6:
            break
        total += w
        count += 1
    return count


def _solution(model: Model, values: npt.NDArray[np.float64]) -> dict[int, list[int]]:
    """Per placed job, its rows (ascending)."""
    out: dict[int, list[int]] = {}
    for j, col in enumerate(model.x_col):
        if col >= 0 and values[col] > 0.5:
            out[j] = []
    for i, (j, r) in enumerate(model.pairs):
        if values[model.y_start + i] > 0.5 and j in out:
            out[j].append(r)
    return out


def _install(p: _Placer, model: Model, chosen: dict[int, list[int]]) -> bool:
    """Replace the placer's state by the solution, replayed on a fresh residual in the
    greedy's job order (scores against the capacity left at each job's turn)."""
    gpus = _gpus_per_node(p, model, chosen)
    if gpus is None:
        return False
    from nodeselect.placement._placer import _best  # noqa: PLC0415

    residual = Residual(p.table)
    placed: dict[int, tuple[Candidate, ...]] = {}
    for j in p.order:
        if j not in chosen:
            continue
        job, cj = p.jobs[j], p.compiled[j]
        rows = np.array(chosen[j], dtype=np.int64)
        view = residual.view()
        ge = gpu_eval(cj, view, rows) if cj.count else None
        scores = combine(cj, score_terms(cj, view, rows, ge, p.stats.max_gpu_count), len(rows))
        order_rows, order_scores = _best(view, rows, scores, seed=p.seed, k=len(rows))
        got = []
        for r, s in zip(order_rows.tolist(), order_scores.tolist(), strict=True):
            g = gpus.get((j, r), ())
            if not residual.fits(job, r, g):
                return False
            got.append(Candidate(r, s, g))
        for c in got:
            residual.reserve(job, c.index, c.gpu_indices)
        placed[j] = tuple(got)
    p.residual = residual
    p.placed = placed
    # Unplaced jobs are explained against the final capacity (the solver has no "turns").
    p.left = {j: ("", residual.version) for j in p.order if j not in chosen}
    p.repaired = p.moved = p.displaced = 0
    p.displaced_jobs = set()
    p.replay_reasons = True
    return True
