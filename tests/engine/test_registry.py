"""The constraint registry: every unit has every part, and a unit added as one class and one
registration is enforced by ``rank``, ``rank_many``, explanations, nearest misses and ``place``
(through the generic fallback: the toy units have no fast test)."""

from __future__ import annotations

import re
from collections.abc import Hashable
from datetime import datetime

import numpy as np
import numpy.typing as npt
import pytest

from nodeselect.engine import (
    CONSTRAINT_NAMES,
    GPU_CONSTRAINTS,
    CompiledJob,
    compile_job,
    explain_node,
    node_checks,
    rank,
    rank_many,
    table_stats,
)
from nodeselect.engine.constraints import (
    ALL_ROWS,
    NODE_CONSTRAINTS,
    Check,
    Luts,
    NodeConstraint,
    Rows,
    constraint_names,
    node_constraints,
    registered,
)
from nodeselect.jobs import CpuReq, GpuReq, Job, PlacementReq
from nodeselect.placement import place
from nodeselect.table import NodeTable

NOW = datetime.fromisoformat("2026-03-01T12:00:00+00:00")
KEBAB = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


class ToyMaxCores(NodeConstraint):
    """A toy numeric constraint: at most ``limit`` CPU cores (reads a capacity column)."""

    name = "toy-max-cores"
    columns = frozenset({"cpu_cores"})

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def active(self, cj: CompiledJob) -> bool:
        return True

    def check(
        self, cj: CompiledJob, t: NodeTable, rows: Rows = ALL_ROWS, luts: Luts | None = None
    ) -> Check:
        cores = t.cpu_cores[rows]
        return Check(
            self.name,
            cores <= self.limit,
            f"<= {self.limit}",
            "max",
            float(self.limit),
            lambda: cores.astype(np.float64),
            "cores",
        )

    def key(self, cj: CompiledJob) -> Hashable:
        return self.limit


class ToyUuidPrefix(NodeConstraint):
    """A toy categorical constraint: the uuid does not start with one of ``banned``."""

    name = "toy-uuid-prefix"
    columns = frozenset({"uuid"})
    categorical = True

    def __init__(self, banned: bytes) -> None:
        self.banned = banned

    def active(self, cj: CompiledJob) -> bool:
        return True

    def check(
        self, cj: CompiledJob, t: NodeTable, rows: Rows = ALL_ROWS, luts: Luts | None = None
    ) -> Check:
        first = t.uuid[rows].view(np.uint8).reshape(-1, 36)[:, 0]
        ok = ~np.isin(first, np.frombuffer(self.banned, dtype=np.uint8))
        return Check(self.name, ok, f"uuid not starting with {self.banned.decode()}")

    def key(self, cj: CompiledJob) -> Hashable:
        return self.banned


def _passes(unit: NodeConstraint, t: NodeTable) -> npt.NDArray[np.bool_]:
    cj = compile_job(Job(), NOW)
    return unit.check(cj, t, ALL_ROWS, {}).passes


def _jobs() -> list[Job]:
    """Jobs sharing a group (so ``rank_many`` takes its batched path) and a CPU-only one."""
    out = [Job(name=f"g{i}", gpu=GpuReq(count=1 + i % 2)) for i in range(5)]
    out += [Job(name=f"c{i}", cpu=CpuReq(min_cores=4 * i or None)) for i in range(5)]
    return out


@pytest.fixture(scope="module")
def table() -> NodeTable:
    return NodeTable.synthetic(4000, seed=7, now=NOW)


def test_every_registered_unit_has_every_part() -> None:
    names = [u.name for u in NODE_CONSTRAINTS]
    assert len(set(names)) == len(names)
    assert CONSTRAINT_NAMES == (*names, *GPU_CONSTRAINTS) == constraint_names()
    assert node_constraints() == NODE_CONSTRAINTS
    cj = compile_job(Job(), NOW)
    for u in NODE_CONSTRAINTS:
        assert KEBAB.match(u.name), u.name
        assert u.name in CONSTRAINT_NAMES
        assert isinstance(u.columns, frozenset), u.name
        assert u.columns, u.name
        assert isinstance(u.categorical, bool)
        for part in (u.active, u.check, u.key, u.fast_test):
            assert callable(part), (u.name, part)
        hash(u.key(cj))


def test_fast_tests_state_exactly_the_checks(table: NodeTable) -> None:
    """Each unit's fast test (when it has one) passes exactly the nodes its check passes."""
    job = Job(
        cpu=CpuReq(min_cores=8),
        placement=PlacementReq(min_reputation=0.5),
    )
    cj = compile_job(job, NOW)
    for u in NODE_CONSTRAINTS:
        if not u.active(cj) or u.categorical:
            continue
        ft = u.fast_test(cj, table)
        assert ft is not None, u.name
        kind, col, arg = ft
        assert kind == "ge"
        np.testing.assert_array_equal(col >= arg, u.check(cj, table, ALL_ROWS, {}).passes)


@pytest.mark.parametrize("toy", [ToyMaxCores(32), ToyUuidPrefix(b"0123")], ids=lambda u: u.name)
def test_a_registered_toy_constraint_is_enforced_everywhere(
    table: NodeTable, toy: NodeConstraint
) -> None:
    ok = _passes(toy, table)
    assert 0 < np.count_nonzero(ok) < len(table)
    jobs = _jobs()
    stats = table_stats(table)
    before = [rank(j, table, k=20, now=NOW, stats=stats) for j in jobs]
    with registered(toy):
        assert constraint_names()[-len(GPU_CONSTRAINTS) - 1] == toy.name
        # rank: the feasible set shrinks to exactly the old one that passes the toy
        after = [rank(j, table, k=20, now=NOW, stats=stats) for j in jobs]
        for b, a in zip(before, after, strict=True):
            want = b.feasible_indices[ok[b.feasible_indices]]
            np.testing.assert_array_equal(a.feasible_indices, want)
            assert all(ok[n.index] for n in a.top)
            # explanations: the toy is counted, in its place (after node-level, before GPU)
            rejected = dict(a.explanation.rejected)
            assert rejected[toy.name] == int(np.count_nonzero(~ok))
            names = [n for n, _ in a.explanation.rejected]
            gpu_at = [names.index(g) for g in GPU_CONSTRAINTS if g in names]
            assert all(names.index(toy.name) < i for i in gpu_at)
            # the per-job evaluation says the same as the fast path
            ev = a.explanation.evaluation
            np.testing.assert_array_equal(np.flatnonzero(ev.feasible), a.feasible_indices)
            assert any(c.name == toy.name for c in node_checks(compile_job(a.job, NOW), table))
        # rank_many (batched groups and the per-job path) agrees with rank
        many = rank_many(jobs, table, k=20, now=NOW, stats=stats)
        for m, a in zip(many, after, strict=True):
            np.testing.assert_array_equal(m.feasible_indices, a.feasible_indices)
            assert m.top == a.top
        # nearest misses: nodes kept out by the toy alone
        cpu_job = jobs[5]  # no other constraint but the defaults
        miss = {m.constraint: m for m in after[5].explanation.nearest_misses}
        assert toy.name in miss
        base = before[5].feasible_indices
        only = base[~ok[base]]
        assert miss[toy.name].only_this == len(only)
        if isinstance(toy, ToyMaxCores):
            assert miss[toy.name].relaxed_threshold == float(table.cpu_cores[only].max())
        # explain_node: a rejected node names the toy
        row = int(only[0])
        expl = explain_node(cpu_job, table, row, now=NOW)
        assert toy.name in [f.constraint for f in expl.failures]
        # place: every replica is on a node the toy passes
        plan = place(jobs, table, now=NOW)
        placed = [r.node_index for a in plan.assignments for r in a.replicas]
        assert placed
        assert all(ok[i] for i in placed)
    # restored afterwards
    assert node_constraints() == NODE_CONSTRAINTS
    assert constraint_names() == CONSTRAINT_NAMES
    again = rank(jobs[5], table, k=20, now=NOW, stats=stats)
    np.testing.assert_array_equal(again.feasible_indices, before[5].feasible_indices)


def test_placement_rechecks_a_toy_reading_capacity(table: NodeTable) -> None:
    """A unit reading a column residual capacity changes is re-checked on the residual view:
    a toy needing at least 40 free cores admits a node for fewer jobs once cores are taken."""

    class ToyMinCores(ToyMaxCores):
        name = "toy-min-cores"

        def check(
            self, cj: CompiledJob, t: NodeTable, rows: Rows = ALL_ROWS, luts: Luts | None = None
        ) -> Check:
            cores = t.cpu_cores[rows]
            return Check(
                self.name, cores >= self.limit, f">= {self.limit}", "min", float(self.limit)
            )

    jobs = [Job(name=f"j{i}", cpu=CpuReq(min_cores=30)) for i in range(40)]
    with registered(ToyMinCores(40)):
        plan = place(jobs, table, now=NOW)
    by_node: dict[int, int] = {}
    for a in plan.assignments:
        for r in a.replicas:
            by_node[r.node_index] = by_node.get(r.node_index, 0) + 1
    assert by_node
    for i, n in by_node.items():
        # each job takes 30 cores; the toy must still see >= 40 before each placement
        assert int(table.cpu_cores[i]) - 30 * (n - 1) >= 40
