"""``compliance``: the node proved every listed compliance tag (categorical)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING

from nodeselect.engine.constraints._base import ALL_ROWS, Check, Luts, NodeConstraint, Rows

if TYPE_CHECKING:
    from nodeselect.engine._constraints import CompiledJob
    from nodeselect.table import NodeTable

from nodeselect.engine.constraints._base import has_all

__all__ = ["Compliance"]


class Compliance(NodeConstraint):
    """Every tag of ``placement.compliance`` is proved."""

    name = "compliance"
    columns = frozenset({"compliance_bits"})
    categorical = True

    def active(self, cj: CompiledJob) -> bool:
        """When the job lists compliance tags."""
        return bool(cj.job.placement.compliance)

    def check(
        self, cj: CompiledJob, t: NodeTable, rows: Rows = ALL_ROWS, luts: Luts | None = None
    ) -> Check:
        """All wanted bits set."""
        want = tuple(cj.job.placement.compliance)
        ok = has_all(t.compliance_bits[:, rows], t.compliance_vocab, want)
        return Check(self.name, ok, "proved " + ", ".join(want))

    def key(self, cj: CompiledJob) -> Hashable:
        """The tags."""
        return tuple(cj.job.placement.compliance)
