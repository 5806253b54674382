"""A GPU group's layout (``JobGroup``): what the batch path reads from it is what its cells say.

``rank_many`` equal to ``rank`` bit for bit is pinned in ``test_batch.py``; these pin the
layout's own shortcuts, against plain per-node loops: the least / most ``idle`` cell of a node
over its GPUs (the layout reads every slot, relying on a node's cells past its GPUs repeating
its last one), and the transposed copy of the free-VRAM rows.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect.engine._constraints import compile_job
from nodeselect.engine.batch._columns import BatchColumns
from nodeselect.engine.batch._group import JobGroup
from nodeselect.engine.scorers import with_terms
from nodeselect.jobs._model import GpuReq, Job
from nodeselect.table._derived import max_gpu_count
from nodeselect.table._table import NodeTable
from strategies_fleet import NOW, FleetNode, fleets

MODELS: list[tuple[str, ...]] = [(), ("RTX-4090",), ("A100-80GB", "H100-80GB"), ("T4",)]


def _group(t: NodeTable, models: tuple[str, ...], count: int) -> JobGroup:
    cj = with_terms(compile_job(Job(gpu=GpuReq(models=models, count=count)), NOW))
    batch = BatchColumns(t, cj.now_s, 0, max_gpu_count(t), 10)
    return JobGroup(batch, [cj])


def _check(g: JobGroup) -> None:
    if not len(g.cand):
        return
    slots = g.top_rows.shape[1]
    by_node = g.idle.reshape(slots, len(g.cand)).T  # cell (m - 1) * c + i: first m GPUs of i
    for i, n in enumerate(g.lens.tolist()):
        cells = by_node[i, :n]
        want_lo = float(cells.min()) if n else np.inf
        want_hi = float(cells.max()) if n else -np.inf
        assert float(g.idle_lo[i]).hex() == want_lo.hex()
        assert float(g.idle_hi[i]).hex() == want_hi.hex()
        # past its GPUs, a node's cells repeat its last one
        assert all(c.hex() == cells[-1].hex() for c in by_node[i, n:])
    assert np.array_equal(g.top_free, g.top_rows.T)
    assert g.top_free.flags.c_contiguous
    assert g.top_rows.flags.c_contiguous


@settings(max_examples=12, deadline=None)
@given(fleets(), st.sampled_from(MODELS), st.integers(1, 3))
def test_a_nodes_least_and_most_idle_cell_are_over_its_gpus(
    fleet: list[FleetNode], models: tuple[str, ...], count: int
) -> None:
    """On document fleets, each candidate's idle bounds are the least / most of its GPUs' cells."""
    _check(_group(NodeTable.from_nodes(fleet, now=NOW), models, count))


@settings(max_examples=4, deadline=None)
@given(st.integers(0, 2**16), st.sampled_from(MODELS))
def test_idle_bounds_on_synthetic_fleets_with_many_gpus(seed: int, models: tuple[str, ...]) -> None:
    """On synthetic fleets (loads, up to 8+ GPUs a node), the same holds over blocks of rows."""
    _check(_group(NodeTable.synthetic(800, seed=seed, now=NOW), models, 1))
