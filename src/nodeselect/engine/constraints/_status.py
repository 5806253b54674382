"""``status``: the node's status is one of ``placement.statuses`` (categorical)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING

from nodeselect.engine.constraints._base import ALL_ROWS, Check, Luts, NodeConstraint, Rows

if TYPE_CHECKING:
    from nodeselect.engine._constraints import CompiledJob
    from nodeselect.table import NodeTable

from nodeselect.engine.constraints._base import lut_take, vocab_lut

__all__ = ["Status"]


class Status(NodeConstraint):
    """The node's status is one of the accepted statuses."""

    name = "status"
    columns = frozenset({"status_code"})
    categorical = True

    def active(self, cj: CompiledJob) -> bool:
        """When the job lists statuses."""
        return bool(cj.job.placement.statuses)

    def check(
        self, cj: CompiledJob, t: NodeTable, rows: Rows = ALL_ROWS, luts: Luts | None = None
    ) -> Check:
        """Status in the accepted set (a vocabulary look-up)."""
        st = cj.job.placement.statuses
        ok = lut_take(vocab_lut(luts, "status", t.status_vocab, set(st)), t.status_code[rows])
        return Check(self.name, ok, "one of " + ", ".join(st))

    def key(self, cj: CompiledJob) -> Hashable:
        """The accepted statuses."""
        return tuple(cj.job.placement.statuses)
