"""``staleness``: the node was last seen at most ``placement.max_staleness`` before ``now``."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING

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


__all__ = ["Staleness"]


class Staleness(NodeConstraint):
    """``now - last_seen <= max_staleness`` (seconds, float64)."""

    name = "staleness"
    columns = frozenset({"last_seen_epoch_s"})

    def active(self, cj: CompiledJob) -> bool:
        """When the job sets a maximum staleness."""
        return cj.job.placement.max_staleness is not None

    def check(
        self, cj: CompiledJob, t: NodeTable, rows: Rows = ALL_ROWS, luts: Luts | None = None
    ) -> Check:
        """The comparison, with the ages for nearest misses."""
        assert cj.job.placement.max_staleness is not None
        max_s = cj.job.placement.max_staleness.total_seconds()
        age = cj.now_s - t.last_seen_epoch_s[rows]
        return Check(
            self.name, age <= max_s, f"last seen <= {max_s:g} s ago", "max", max_s, lambda: age, "s"
        )

    def key(self, cj: CompiledJob) -> Hashable:
        """The maximum age and the evaluation time."""
        st = cj.job.placement.max_staleness
        return None if st is None else (st.total_seconds(), cj.now_s)

    def fast_test(self, cj: CompiledJob, t: NodeTable) -> FastTest | None:
        """``(now - last_seen) <= max_s``."""
        assert cj.job.placement.max_staleness is not None
        return (
            "age",
            t.last_seen_epoch_s,
            (cj.now_s, cj.job.placement.max_staleness.total_seconds()),
        )
