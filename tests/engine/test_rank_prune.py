"""A CPU-only job's top k scored from upper bounds (``_rank._pruned``): the bounds are bounds,
and the ranking is bit for bit the ranking that scores every feasible row."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import attrs
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect.engine import _rank
from nodeselect.engine._rank import compile_job, rank
from nodeselect.engine._scorers import combine, score_cheap
from nodeselect.engine.scorers import ScoreTerm, TermInputs, registered
from nodeselect.engine.scorers._idle import cpu_idle_upper
from nodeselect.jobs._model import CpuReq, Job, PlacementReq, Preferences, SoftwareReq
from nodeselect.table._table import NodeTable
from strategies_fleet import NOW

SETTINGS = settings(max_examples=25, deadline=None)
TERMS = ["reputation", "freshness", "images", "fit", "idle"]
IMAGES = ("img-a", "img-b", "img-c")


@st.composite
def tables(draw: st.DrawFn) -> NodeTable:
    """A synthetic table of 1,500-4,000 nodes, its score inputs coarsened so that many nodes
    tie, with unknown values (NaN reputation, load, times) and clocks ahead of ``now``."""
    n = draw(st.integers(1_500, 4_000))
    t = NodeTable.synthetic(n, seed=draw(st.integers(0, 2**16)), now=NOW)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    q = draw(st.sampled_from([1.0, 10.0, 50.0]))  # value steps: coarse steps tie many nodes
    now_s = NOW.timestamp()

    def holes(a: np.ndarray, share: float) -> np.ndarray:
        a = a.copy()
        a[rng.random(len(a)) < share] = np.nan
        return a

    rep = holes(np.round(t.reputation / q) * q, 0.05).astype(np.float32)
    load = holes(np.round(t.cpu_load * 10 / q) * q / 10, 0.1).astype(np.float32)
    load[rng.random(n) < 0.02] = np.float32(1.5)  # out of range: clipped
    seen = holes(now_s - np.round((now_s - t.last_seen_epoch_s) / (q * 30)) * q * 30, 0.03)
    seen[rng.random(n) < 0.02] = now_s + 120.0  # seen "in the future": age 0
    tele = holes(now_s - np.round((now_s - t.telemetry_epoch_s) / (q * 30)) * q * 30, 0.05)
    return attrs.evolve(
        t,
        reputation=rep,
        cpu_load=load,
        last_seen_epoch_s=seen,
        telemetry_epoch_s=tele,
        image_vocab=IMAGES,
        image_bits=rng.integers(0, 8, size=(1, n), dtype=np.uint64),
    )


@st.composite
def cpu_jobs(draw: st.DrawFn) -> Job:
    """A CPU-only job with any weights (some 0), maybe preferred images, few constraints."""
    weights = draw(st.dictionaries(st.sampled_from(TERMS), st.sampled_from([0.0, 0.5, 1.0, 3.0])))
    if all(weights.get(name, 1.0) == 0 for name in TERMS):
        weights["reputation"] = 1.0
    return Job(
        name="cpu",
        cpu=CpuReq(min_cores=draw(st.sampled_from([None, 4, 16]))),
        software=SoftwareReq(
            images_preferred=tuple(draw(st.lists(st.sampled_from(IMAGES), unique=True)))
        ),
        placement=PlacementReq(
            min_reputation=draw(st.sampled_from([None, 20.0])),
            max_staleness=draw(st.sampled_from([None, timedelta(hours=1)])),
        ),
        preferences=Preferences(weights=weights),
    )


@contextmanager
def small_sample() -> Iterator[None]:
    """Prune tables of a few thousand rows (the rule is the same; the sizes are smaller)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_rank, "_PRUNE_MIN", 64)
        mp.setattr(_rank, "_SAMPLE", 32)
        yield


def _key(r: _rank.Ranking) -> list[tuple[object, ...]]:
    return [
        (n.index, n.uuid, n.score.hex(), {k: v.hex() for k, v in n.terms.items()}, n.tie_key)
        for n in r.top
    ]


@SETTINGS
@given(tables(), cpu_jobs(), st.integers(1, 16), st.integers(0, 3), st.integers(0, 900))
def test_pruned_ranking_is_bit_for_bit_the_full_one(
    t: NodeTable, job: Job, k: int, seed: int, later_s: int
) -> None:
    """Top, scores and terms (as float.hex), tie keys and the feasible rows are those of the
    ranking that scores every feasible row, with heavy ties, at ``now`` and later."""
    now = NOW + timedelta(seconds=later_s)
    with small_sample():
        cj = compile_job(job, now)
        feasible = rank(job, t, k=0, now=now).feasible_indices
        assert _rank._pruned(cj, t, feasible, k, None) is not None or len(feasible) < 64 * k
        pruned = rank(job, t, k=k, now=now, seed=seed)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_rank, "_pruned", lambda *a: None)
        full = rank(job, t, k=k, now=now, seed=seed)
    assert _key(pruned) == _key(full)
    assert np.array_equal(pruned.feasible_indices, full.feasible_indices)


@SETTINGS
@given(tables(), cpu_jobs(), st.integers(-600, 3_600))
def test_the_upper_bound_is_never_below_a_computed_score(
    t: NodeTable, job: Job, later_s: int
) -> None:
    """Every feasible row's bound is >= its computed combined score, at any ``now``."""
    cj = compile_job(job, NOW + timedelta(seconds=later_s))
    idx = np.arange(len(t), dtype=np.int64)
    ub = _rank._upper(cj, t, idx)
    assert ub is not None
    exact = combine(cj, score_cheap(cj, t, idx, None, 0), len(idx))
    assert (ub >= exact).all()


def test_the_idle_bound_covers_every_telemetry_weight() -> None:
    """``cpu_idle_upper`` is >= the computed idle at every f in [0, 1] and every load."""
    from nodeselect.engine.scorers._idle import idle_of  # noqa: PLC0415

    load = np.array([np.nan, -0.5, 0.0, 1e-9, 0.25, 0.5, 0.5000001, 0.75, 1.0, 1.5], np.float32)
    ub = cpu_idle_upper(load)
    for f in np.linspace(0.0, 1.0, 1001):
        got = idle_of(np.full(len(load), f), load.astype(np.float64))
        assert (ub >= got).all(), f


def test_a_table_like_the_benchmarks_is_pruned_to_a_few_rows() -> None:
    """At the real sizes, a CPU-only job scores exactly only a small share of its feasible rows,
    with the same top as the full scoring."""
    t = NodeTable.synthetic(60_000, seed=5, now=NOW)
    job = Job(name="cpu", cpu=CpuReq(min_cores=8), placement=PlacementReq(min_reputation=30))
    cj = compile_job(job, NOW)
    r = rank(job, t, k=10, now=NOW)
    got = _rank._pruned(cj, t, r.feasible_indices, 10, None)
    assert got is not None
    assert len(got[0]) * 5 < r.feasible
    pos = np.flatnonzero(np.isin(r.feasible_indices, [n.index for n in r.top]))
    assert np.isin(pos, got[0]).all()


class _Unbounded(ScoreTerm):
    name = "unbounded"

    def weight(self, cj: _rank.CompiledJob) -> float:
        return 1.0

    def values(
        self, cj: _rank.CompiledJob, t: NodeTable, idx: npt.NDArray[np.int64], inputs: TermInputs
    ) -> npt.NDArray[np.float64]:
        return np.full(len(idx), 0.5)


def test_a_weighted_term_without_a_bound_scores_every_row() -> None:
    """A registered term with no ``upper`` turns the pruning off (every row is scored)."""
    t = NodeTable.synthetic(30_000, seed=1, now=NOW)
    with registered(_Unbounded()):
        cj = compile_job(Job(name="cpu"), NOW)
        assert _rank._upper(cj, t, np.arange(10, dtype=np.int64)) is None
        assert _rank._pruned(cj, t, np.arange(len(t), dtype=np.int64), 10, None) is None


def test_a_built_table_holds_the_default_bound_before_its_first_rank() -> None:
    """The table builders build the default weights' CPU-only score bound (``on_build``), so
    a fresh table's first CPU-only rank does not; a capacity view shares it."""
    from nodeselect.engine.scorers import score_unit  # noqa: PLC0415
    from nodeselect.table import _derived  # noqa: PLC0415

    t = NodeTable.synthetic(6_000, seed=2, now=NOW)
    cj = compile_job(Job(name="cpu"), NOW)
    key = ("score-upper", cj.weights, tuple(score_unit(n) for n, _ in cj.weights))
    kept = _derived.find_rows(key, _rank._fixed_columns(t))
    assert kept is not None
    assert kept[0].dtype == np.float32
    assert len(kept[0]) == len(t)
    view = t.with_capacity(cpu_cores=t.cpu_cores // 2)
    assert _derived.find_rows(key, _rank._fixed_columns(view)) is kept
