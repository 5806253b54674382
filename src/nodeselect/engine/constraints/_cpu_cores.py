"""``cpu-cores``: the node has at least ``cpu.min_cores`` cores (placement re-checks it on the
residual capacity)."""

from __future__ import annotations

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
)

if TYPE_CHECKING:
    from nodeselect.engine._constraints import CompiledJob
    from nodeselect.table import NodeTable


__all__ = ["CpuCores"]


class CpuCores(NodeConstraint):
    """``cpu_cores >= min_cores``."""

    name = "cpu-cores"
    columns = frozenset({"cpu_cores"})

    def active(self, cj: CompiledJob) -> bool:
        """When the job sets a minimum of cores."""
        return cj.job.cpu.min_cores is not None

    def check(
        self, cj: CompiledJob, t: NodeTable, rows: Rows = ALL_ROWS, luts: Luts | None = None
    ) -> Check:
        """The comparison, with the cores for nearest misses."""
        assert cj.job.cpu.min_cores is not None
        c = int(cj.job.cpu.min_cores)
        return Check(
            self.name,
            t.cpu_cores[rows] >= c,
            f">= {c}",
            "min",
            float(c),
            lambda: t.cpu_cores[rows].astype(np.float64),
            "cores",
        )

    def key(self, cj: CompiledJob) -> Hashable:
        """The minimum."""
        c = cj.job.cpu.min_cores
        return None if c is None else int(c)

    def fast_test(self, cj: CompiledJob, t: NodeTable) -> FastTest | None:
        """``cpu_cores >= min``."""
        assert cj.job.cpu.min_cores is not None
        return ("ge", t.cpu_cores, int(cj.job.cpu.min_cores))
