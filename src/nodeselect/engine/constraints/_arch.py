"""``arch``: the node's CPU architecture is ``software.arch`` (canonical spelling; categorical)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING

from nodeselect.engine.constraints._base import ALL_ROWS, Check, Luts, NodeConstraint, Rows

if TYPE_CHECKING:
    from nodeselect.engine._constraints import CompiledJob
    from nodeselect.table import NodeTable

from nodeselect.engine.constraints._base import lut_take, vocab_lut

__all__ = ["Arch"]


class Arch(NodeConstraint):
    """The architecture matches."""

    name = "arch"
    columns = frozenset({"arch_code"})
    categorical = True

    def active(self, cj: CompiledJob) -> bool:
        """When the job names an architecture."""
        return cj.arch is not None

    def check(
        self, cj: CompiledJob, t: NodeTable, rows: Rows = ALL_ROWS, luts: Luts | None = None
    ) -> Check:
        """A vocabulary look-up."""
        assert cj.arch is not None
        ok = lut_take(vocab_lut(luts, "arch", t.arch_vocab, {cj.arch}), t.arch_code[rows])
        return Check(self.name, ok, cj.arch)

    def key(self, cj: CompiledJob) -> Hashable:
        """The canonical architecture."""
        return cj.arch
