"""``deleted``: the node is not deleted unless ``placement.allow_deleted`` (categorical)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING

from nodeselect.engine.constraints._base import ALL_ROWS, Check, Luts, NodeConstraint, Rows

if TYPE_CHECKING:
    from nodeselect.engine._constraints import CompiledJob
    from nodeselect.table import NodeTable

__all__ = ["Deleted"]


class Deleted(NodeConstraint):
    """The node is not deleted."""

    name = "deleted"
    columns = frozenset({"deleted"})
    categorical = True

    def active(self, cj: CompiledJob) -> bool:
        """Unless the job allows deleted nodes."""
        return not cj.job.placement.allow_deleted

    def check(
        self, cj: CompiledJob, t: NodeTable, rows: Rows = ALL_ROWS, luts: Luts | None = None
    ) -> Check:
        """Not deleted."""
        return Check(self.name, ~t.deleted[rows], "not deleted")

    def key(self, cj: CompiledJob) -> Hashable:
        """Whether deleted nodes are allowed."""
        return bool(cj.job.placement.allow_deleted)
