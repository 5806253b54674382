"""``suspended``: the node is not suspended unless ``placement.allow_suspended`` (categorical)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING

from nodeselect.engine.constraints._base import ALL_ROWS, Check, Luts, NodeConstraint, Rows

if TYPE_CHECKING:
    from nodeselect.engine._constraints import CompiledJob
    from nodeselect.table import NodeTable

__all__ = ["Suspended"]


class Suspended(NodeConstraint):
    """The node is not suspended."""

    name = "suspended"
    columns = frozenset({"suspended"})
    categorical = True

    def active(self, cj: CompiledJob) -> bool:
        """Unless the job allows suspended nodes."""
        return not cj.job.placement.allow_suspended

    def check(
        self, cj: CompiledJob, t: NodeTable, rows: Rows = ALL_ROWS, luts: Luts | None = None
    ) -> Check:
        """Not suspended."""
        return Check(self.name, ~t.suspended[rows], "not suspended")

    def key(self, cj: CompiledJob) -> Hashable:
        """Whether suspended nodes are allowed."""
        return bool(cj.job.placement.allow_suspended)
