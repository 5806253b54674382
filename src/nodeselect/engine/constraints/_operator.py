"""``operator``: the node's operator is not in ``placement.exclude_operators`` (categorical)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING

from nodeselect.engine.constraints._base import ALL_ROWS, Check, Luts, NodeConstraint, Rows

if TYPE_CHECKING:
    from nodeselect.engine._constraints import CompiledJob
    from nodeselect.table import NodeTable

from nodeselect.engine.constraints._base import lut_take, vocab_lut

__all__ = ["Operator"]


class Operator(NodeConstraint):
    """The operator is not excluded."""

    name = "operator"
    columns = frozenset({"operator_code"})
    categorical = True

    def active(self, cj: CompiledJob) -> bool:
        """When the job excludes operators."""
        return bool(cj.job.placement.exclude_operators)

    def check(
        self, cj: CompiledJob, t: NodeTable, rows: Rows = ALL_ROWS, luts: Luts | None = None
    ) -> Check:
        """Operator code not in the excluded set (the empty operator is never excluded)."""
        bad = vocab_lut(
            luts, "operator", t.operator_vocab, set(cj.job.placement.exclude_operators) - {""}
        )
        return Check(self.name, ~lut_take(bad, t.operator_code[rows]), "operator not excluded")

    def key(self, cj: CompiledJob) -> Hashable:
        """The excluded operators."""
        return tuple(cj.job.placement.exclude_operators)
