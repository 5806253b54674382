"""Properties of the engine, checked on generated fleets and jobs (and against the reference)."""

from __future__ import annotations

import math
import random
from datetime import timedelta

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect.documents._lean import LeanSoftware
from nodeselect.engine._explain import explain_node
from nodeselect.engine._rank import merge_top, rank, table_stats
from nodeselect.jobs._model import Job
from nodeselect.table._table import NodeTable
from reference_engine import reference_rank
from strategies_fleet import IMAGES, NOW, FleetNode, fleets, iso, jobs

SETTINGS = settings(max_examples=30, deadline=None)


def _full(job: Job, fleet: list[FleetNode], seed: int = 0):
    """The engine's ranking of every node. The references below are told the telemetry units
    the table decided (the engine is checked here; inference against the truth is checked in
    test_units_dialects)."""
    t = NodeTable.from_nodes(fleet, now=NOW)
    return t, rank(job, t, k=len(t), now=NOW, seed=seed)


@SETTINGS
@given(fleets(), jobs(), st.integers(0, 3))
def test_engine_matches_reference_feasible_set_scores_and_order(fleet, job, seed) -> None:
    """The vectorized engine returns the reference's feasible set, scores (1e-9), order and GPUs."""
    t, r = _full(job, fleet, seed)
    ref = reference_rank(job, fleet, NOW, seed, units=t.units)
    assert [n.uuid for n in r.top] == ref.order
    for n in r.top:
        assert math.isclose(n.score, ref.score[n.uuid], rel_tol=0, abs_tol=1e-9)
        assert math.isclose(sum(n.terms.values()), n.score, abs_tol=1e-9)
        assert n.gpu_indices == ref.gpu_choice[n.uuid]
    assert r.feasible == len(ref.order)


@SETTINGS
@given(fleets(), jobs())
def test_explanation_counts_agree_with_masks_and_node_reasons(fleet, job) -> None:
    """Rejection counts, per-node failures and only-this counts agree with the reference."""
    t, r = _full(job, fleet)
    ref = reference_rank(job, fleet, NOW, units=t.units)
    ex = r.explanation
    assert ex.evaluated == len(fleet)
    assert np.array_equal(np.flatnonzero(ex.evaluation.feasible), r.feasible_indices)
    assert ex.feasible == sum(1 for f in ref.failures.values() if not f)
    counts = dict(ex.rejected)
    for name, c in counts.items():
        assert c == sum(1 for f in ref.failures.values() if name in f), name
    assert {n for f in ref.failures.values() for n in f} <= set(counts)
    for i in range(len(t)):
        ne = explain_node(job, t, i, now=NOW)
        assert [f.constraint for f in ne.failures] == ref.failures[t.uuid_of(i)]
        assert ne.feasible == (not ref.failures[t.uuid_of(i)])
    node_level = {m.constraint: m for m in ex.nearest_misses if not m.constraint.startswith("gpu-")}
    for name in counts:
        if name.startswith("gpu-"):
            continue
        only = sum(1 for f in ref.failures.values() if f == [name])
        assert (node_level[name].only_this if name in node_level else 0) == only
    assert ex.summary().startswith(f"{ex.feasible}/{ex.evaluated} nodes fit")


@SETTINGS
@given(fleets(), jobs(), st.data())
def test_adding_or_tightening_a_constraint_never_admits_a_node(fleet, job, data) -> None:
    """A stricter job's feasible set is a subset of the original's."""
    tighten = data.draw(
        st.sampled_from(
            ["reputation", "cores", "ram", "vram", "load", "count", "compliance", "image", "stale"]
        )
    )
    p, g = job.placement, job.gpu
    if tighten == "reputation":
        stricter = attrs.evolve(
            job, placement=attrs.evolve(p, min_reputation=min((p.min_reputation or 0) + 10, 100))
        )
    elif tighten == "cores":
        stricter = attrs.evolve(
            job, cpu=attrs.evolve(job.cpu, min_cores=(job.cpu.min_cores or 0) + 8)
        )
    elif tighten == "ram":
        stricter = attrs.evolve(
            job, memory=attrs.evolve(job.memory, min_free_gb=(job.memory.min_free_gb or 0) + 5.5)
        )
    elif tighten == "vram" and g.count:
        stricter = attrs.evolve(
            job, gpu=attrs.evolve(g, min_vram_free_gb=(g.min_vram_free_gb or 0) + 7)
        )
    elif tighten == "load" and g.count:
        stricter = attrs.evolve(
            job, gpu=attrs.evolve(g, max_load=(g.max_load if g.max_load is not None else 1) / 2)
        )
    elif tighten == "count" and g.count:
        stricter = attrs.evolve(job, gpu=attrs.evolve(g, count=g.count + 1))
    elif tighten == "compliance":
        stricter = attrs.evolve(job, placement=attrs.evolve(p, compliance=("GDPR", "EEA")))
    elif tighten == "image":
        stricter = attrs.evolve(
            job, software=attrs.evolve(job.software, images_required=(IMAGES[0],))
        )
    else:
        s = p.max_staleness or timedelta(hours=3)
        stricter = attrs.evolve(job, placement=attrs.evolve(p, max_staleness=s / 2))
    _, a = _full(job, fleet)
    _, b = _full(stricter, fleet)
    assert set(b.feasible_indices.tolist()) <= set(a.feasible_indices.tolist())


@pytest.mark.slow  # several seconds; CI runs it with -m slow
@SETTINGS
@given(fleets(min_size=1), jobs(), st.data())
def test_improving_a_node_in_a_preferred_attribute_never_lowers_its_score(fleet, job, data) -> None:
    """More reputation, a fresher last_seen, a preferred image or less load never lowers a score."""
    i = data.draw(st.integers(0, len(fleet) - 1))
    node = fleet[i].lean
    how = data.draw(st.sampled_from(["reputation", "seen", "image", "load"]))
    if how == "reputation":
        new = type(node)(**{**_fields(node), "reputation": min(100, (node.reputation or 0) + 7)})
    elif how == "seen":
        new = type(node)(**{**_fields(node), "last_seen_at": iso(NOW)})
    elif how == "image":
        sw = node.current_software or LeanSoftware()
        tags = list(dict.fromkeys([*(sw.cached_image_tags or []), *job.software.images_preferred]))
        new = type(node)(
            **{**_fields(node), "current_software": _evolve(sw, cached_image_tags=tags)}
        )
    else:
        new = _lower_load(node)
    before = explain_node(job, NodeTable.from_nodes(fleet, now=NOW), i, now=NOW).score
    fleet2 = [*fleet[:i], FleetNode(new, fleet[i].facts), *fleet[i + 1 :]]
    after = explain_node(job, NodeTable.from_nodes(fleet2, now=NOW), i, now=NOW).score
    assert after >= before - 1e-12


def _fields(s):
    return {f: getattr(s, f) for f in s.__struct_fields__}


def _evolve(s, **kw):
    return type(s)(**{**_fields(s), **kw})


def _lower_load(node):
    ev = node.latest_hardware_event
    if ev is None or ev.metadata is None:
        return node
    md = ev.metadata
    cpu = md.cpu
    if cpu is not None and cpu.average is not None:
        cpu = _evolve(cpu, average=cpu.average / 2)
    gpu = md.gpu
    if gpu is not None and gpu.gpus:
        gpu = _evolve(
            gpu, gpus=[_evolve(g, load=None if g.load is None else g.load / 2) for g in gpu.gpus]
        )
    return _evolve(node, latest_hardware_event=_evolve(ev, metadata=_evolve(md, cpu=cpu, gpu=gpu)))


@SETTINGS
@given(fleets(), jobs(), st.randoms(use_true_random=False))
def test_ranking_is_invariant_to_input_order(fleet, job, rnd: random.Random) -> None:
    """Shuffling the fleet does not change the ranked uuids or their scores."""
    _, a = _full(job, fleet)
    shuffled = fleet[:]
    rnd.shuffle(shuffled)
    _, b = _full(job, shuffled)
    assert [(n.uuid, n.score) for n in a.top] == [(n.uuid, n.score) for n in b.top]


@SETTINGS
@given(fleets(), jobs())
def test_every_score_is_in_the_unit_interval(fleet, job) -> None:
    """Every score and every term contribution is within [0, 1]."""
    _, r = _full(job, fleet)
    for n in r.top:
        assert 0.0 <= n.score <= 1.0
        assert all(0.0 <= v <= 1.0 for v in n.terms.values())


@SETTINGS
@given(fleets(), jobs())
def test_every_returned_node_satisfies_every_hard_constraint(fleet, job) -> None:
    """Nodes in the ranking and in feasible_indices fail no constraint (per the reference)."""
    t, r = _full(job, fleet)
    ref = reference_rank(job, fleet, NOW, units=t.units)
    for i in r.feasible_indices.tolist():
        assert ref.failures[t.uuid_of(i)] == []
    assert all(not explain_node(job, t, n.index, now=NOW).failures for n in r.top)


@SETTINGS
@given(fleets(), jobs(), st.integers(0, 2**32))
def test_same_inputs_and_seed_give_the_same_ranking(fleet, job, seed) -> None:
    """Ranking twice with the same inputs and seed gives identical results."""
    t = NodeTable.from_nodes(fleet, now=NOW)
    a = rank(job, t, k=5, now=NOW, seed=seed)
    b = rank(job, t, k=5, now=NOW, seed=seed)
    assert a.top == b.top


@pytest.mark.slow  # several seconds; CI runs it with -m slow
@SETTINGS
@given(fleets(min_size=1), jobs(), st.data())
def test_sharded_ranking_with_merged_stats_equals_the_whole(fleet, job, data) -> None:
    """Ranking shards with merged TableStats, then merging their tops, equals ranking the whole."""
    t = NodeTable.from_nodes(fleet, now=NOW)
    cut = data.draw(st.integers(0, len(fleet)))
    k = data.draw(st.integers(1, 8))
    shards = [t.take(np.arange(cut)), t.take(np.arange(cut, len(t)))]
    stats = table_stats(shards[0]).merge(table_stats(shards[1]))
    assert stats == table_stats(t)
    merged = merge_top([rank(job, s, k=k, now=NOW, stats=stats) for s in shards], k)
    whole = rank(job, t, k=k, now=NOW).top
    assert [(n.uuid, n.score) for n in merged] == [(n.uuid, n.score) for n in whole]


@SETTINGS
@given(fleets(), jobs(), st.data())
def test_reserving_gpus_never_admits_a_node(fleet, job, data) -> None:
    """A residual-capacity view with GPUs reserved admits no node the full table rejected."""
    t = NodeTable.from_nodes(fleet, now=NOW)
    g = len(t.gpu_model_code)
    reserved = np.array(data.draw(st.lists(st.booleans(), min_size=g, max_size=g)), dtype=np.bool_)
    a = rank(job, t, k=1, now=NOW)
    b = rank(job, t.with_capacity(gpu_reserved=reserved), k=1, now=NOW, stats=table_stats(t))
    assert set(b.feasible_indices.tolist()) <= set(a.feasible_indices.tolist())
