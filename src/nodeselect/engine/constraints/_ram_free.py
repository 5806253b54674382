"""``ram-free``: the node has at least ``memory.min_free_gb`` GB of free RAM (placement re-checks
it on the residual capacity)."""

from __future__ import annotations

import functools
from collections.abc import Hashable
from typing import TYPE_CHECKING

import numpy as np

from nodeselect.engine.constraints._base import (
    ALL_ROWS,
    Check,
    FastTest,
    Luts,
    NodeConstraint,
    Rows,
    f32_at_least,
)

if TYPE_CHECKING:
    from nodeselect.engine._constraints import CompiledJob
    from nodeselect.table import NodeTable


__all__ = ["RamFree"]


class RamFree(NodeConstraint):
    """``ram_free_gb >= min_free_gb`` (float32, threshold rounded outward)."""

    name = "ram-free"
    columns = frozenset({"ram_free_gb"})

    def active(self, cj: CompiledJob) -> bool:
        """When the job sets a minimum."""
        return cj.job.memory.min_free_gb is not None

    def check(
        self, cj: CompiledJob, t: NodeTable, rows: Rows = ALL_ROWS, luts: Luts | None = None
    ) -> Check:
        """The comparison, with the free GB for nearest misses."""
        assert cj.job.memory.min_free_gb is not None
        thr = float(cj.job.memory.min_free_gb)
        col = t.ram_free_gb[rows]
        return Check(
            self.name,
            col >= f32_at_least(thr),
            f">= {thr:g} GB",
            "min",
            thr,
            functools.partial(np.asarray, col, dtype=np.float64),
            "GB",
        )

    def key(self, cj: CompiledJob) -> Hashable:
        """The minimum."""
        return cj.job.memory.min_free_gb

    def fast_test(self, cj: CompiledJob, t: NodeTable) -> FastTest | None:
        """``ram_free_gb >= t32``."""
        assert cj.job.memory.min_free_gb is not None
        return ("ge", t.ram_free_gb, f32_at_least(float(cj.job.memory.min_free_gb)))
