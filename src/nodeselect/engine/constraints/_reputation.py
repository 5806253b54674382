"""``reputation``: the node's reputation is at least ``placement.min_reputation``."""

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
    f32_at_least,
)

if TYPE_CHECKING:
    from nodeselect.engine._constraints import CompiledJob
    from nodeselect.table import NodeTable


__all__ = ["Reputation"]


class Reputation(NodeConstraint):
    """``reputation >= min_reputation`` (float32, threshold rounded outward)."""

    name = "reputation"
    columns = frozenset({"reputation"})

    def active(self, cj: CompiledJob) -> bool:
        """When the job sets a minimum reputation."""
        return cj.job.placement.min_reputation is not None

    def check(
        self, cj: CompiledJob, t: NodeTable, rows: Rows = ALL_ROWS, luts: Luts | None = None
    ) -> Check:
        """The comparison, with the reputations for nearest misses."""
        assert cj.job.placement.min_reputation is not None
        thr = float(cj.job.placement.min_reputation)
        return Check(
            self.name,
            t.reputation[rows] >= f32_at_least(thr),
            f">= {thr:g}",
            "min",
            thr,
            lambda: t.reputation[rows].astype(np.float64),
        )

    def key(self, cj: CompiledJob) -> Hashable:
        """The minimum."""
        return cj.job.placement.min_reputation

    def fast_test(self, cj: CompiledJob, t: NodeTable) -> FastTest | None:
        """``reputation >= t32``."""
        assert cj.job.placement.min_reputation is not None
        return ("ge", t.reputation, f32_at_least(float(cj.job.placement.min_reputation)))
