"""The score-term registry: every unit has every part, ``score_terms``/``combine`` follow the
registry, and a term added as one class and one registration changes ``rank``, ``rank_many``,
``explain_node`` and ``place`` identically (the toy term has no batch path: ``rank_many``
takes the per-job path for the jobs weighting it)."""

from __future__ import annotations

import re
from datetime import datetime

import numpy as np
import pytest

from nodeselect.engine import (
    SCORE_TERM_UNITS,
    CompiledJob,
    NodeScores,
    ScoreTerm,
    TermInputs,
    compile_job,
    explain_node,
    rank,
    rank_many,
    score_terms,
    score_units,
    table_stats,
)
from nodeselect.engine.scorers import F64, I64, registered
from nodeselect.jobs import DEFAULT_WEIGHTS, SCORE_TERMS, CpuReq, GpuReq, Job, Preferences
from nodeselect.placement import place
from nodeselect.table import NodeTable

NOW = datetime.fromisoformat("2026-03-01T12:00:00+00:00")
KEBAB = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


class ToyCores(ScoreTerm):
    """A toy term: more CPU cores score higher (``cores / (cores + 8)``), weight 2."""

    name = "toy-cores"

    def weight(self, cj: CompiledJob) -> float:
        return 2.0

    def values(self, cj: CompiledJob, t: NodeTable, idx: I64, inputs: TermInputs) -> F64:
        cores = t.cpu_cores[idx].astype(np.float64)
        out: F64 = cores / (cores + 8.0)
        return out


@pytest.fixture(scope="module")
def table() -> NodeTable:
    return NodeTable.synthetic(4000, seed=7, now=NOW)


def _jobs() -> list[Job]:
    spread = Preferences(strategy="spread", weights={"idle": 3.0})
    return [
        Job(name="cpu", cpu=CpuReq(min_cores=2)),
        Job(name="gpu1", gpu=GpuReq(count=1)),
        Job(name="gpu2", gpu=GpuReq(count=2), preferences=spread),
        Job(name="gpu4", gpu=GpuReq(count=1, min_vram_free_gb=8)),
        Job(name="cpu2", preferences=Preferences(weights={"reputation": 0.0})),
        Job(name="gpu8", gpu=GpuReq(count=1, max_load=0.5)),
    ]


def test_every_registered_term_has_every_part(table: NodeTable) -> None:
    assert tuple(u.name for u in SCORE_TERM_UNITS) == SCORE_TERMS
    assert score_units() == SCORE_TERM_UNITS
    pre = NodeScores.of(table, NOW.timestamp())
    cj = compile_job(Job(name="g", gpu=GpuReq(count=1)), NOW)
    for u in score_units():
        assert isinstance(u, ScoreTerm)
        assert KEBAB.match(u.name), u.name
        assert u.weight(cj) == DEFAULT_WEIGHTS[u.name]
        assert isinstance(u.per_gpu, bool)
        assert isinstance(u.batched, bool)
        assert isinstance(u.node_only(cj), bool)
        for name, col in u.precompute(table, NOW.timestamp()).items():
            assert col.shape == (len(table),)
            assert name in pre.cols
        if u.node_only(cj):
            assert u.node_column(pre, len(table)).shape == (len(table),)
        if u.per_gpu:  # pruned in rank: built-in per-GPU terms give bounds
            idx = np.arange(len(table), dtype=np.int64)
            b = u.bounds(cj, table, idx, None)
            assert b is not None
            assert np.all(b[0] <= b[1])
        hash(u.cache_key(cj))
        assert repr(u) == f"<score term {u.name}>"


def test_score_terms_follow_the_registry(table: NodeTable) -> None:
    cj = compile_job(Job(name="g", gpu=GpuReq(count=1)), NOW)
    idx = np.arange(100, dtype=np.int64)
    assert tuple(score_terms(cj, table, idx, None, 8)) == SCORE_TERMS


def test_a_registered_toy_term_changes_every_score_identically(table: NodeTable) -> None:
    jobs = _jobs()
    stats = table_stats(table)
    before = [rank(j, table, k=20, now=NOW, stats=stats) for j in jobs]
    toy = ToyCores()
    with registered(toy):
        assert score_units() == (*SCORE_TERM_UNITS, toy)
        cj = compile_job(jobs[0], NOW)
        assert cj.weights[-1] == ("toy-cores", 2.0)
        after = [rank(j, table, k=20, now=NOW, stats=stats) for j in jobs]
        many = rank_many(jobs, table, k=20, now=NOW, stats=stats)
        changed = 0
        for b, a, m in zip(before, after, many, strict=True):
            assert a.feasible == b.feasible
            assert [n.uuid for n in m.top] == [n.uuid for n in a.top]
            assert [n.score.hex() for n in m.top] == [n.score.hex() for n in a.top]
            for n, x in zip(a.top, m.top, strict=True):
                assert set(n.terms) == {*(k for k, _ in compile_job(a.job, NOW).weights)}
                assert "toy-cores" in n.terms
                assert n.terms == x.terms
            changed += [n.score for n in a.top] != [n.score for n in b.top]
        assert changed
        row = after[1].top[0].index
        expl = explain_node(jobs[1], table, row, now=NOW)
        assert expl.score == after[1].top[0].score
        assert "toy-cores" in expl.terms
        plan = place(jobs[:2], table, now=NOW)
        assert plan.totals.jobs_placed == 2
    assert score_units() == SCORE_TERM_UNITS
    again = [rank(j, table, k=20, now=NOW, stats=stats) for j in jobs]
    for b, a in zip(before, again, strict=True):
        assert [n.score.hex() for n in a.top] == [n.score.hex() for n in b.top]
        assert all("toy-cores" not in n.terms for n in a.top)


def test_a_toy_term_in_the_middle_keeps_the_pruning_exact(table: NodeTable) -> None:
    """``rank`` no longer assumes ``idle`` is the last term: with a term after it, the pruned
    top k equals an unpruned ranking (k = every feasible node)."""
    stats = table_stats(table)
    with registered(ToyCores()):
        for j in _jobs():
            top = rank(j, table, k=15, now=NOW, stats=stats).top
            full = rank(j, table, k=len(table), now=NOW, stats=stats).top[:15]
            assert [n.uuid for n in top] == [n.uuid for n in full]
            assert [n.score.hex() for n in top] == [n.score.hex() for n in full]


def test_duplicate_and_builtin_names_are_refused() -> None:
    from nodeselect.engine.scorers import register, unregister  # noqa: PLC0415

    with pytest.raises(ValueError, match="unique"), registered(ToyCores(), ToyCores()):
        pass
    with pytest.raises(ValueError, match="built-in"):
        unregister("idle")
    register(ToyCores())
    try:
        assert score_units()[-1].name == "toy-cores"
    finally:
        unregister("toy-cores")
    assert score_units() == SCORE_TERM_UNITS
