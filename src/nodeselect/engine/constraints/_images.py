"""``images``: the node has every image of ``software.images_required`` cached (categorical)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING

from nodeselect.engine.constraints._base import ALL_ROWS, Check, Luts, NodeConstraint, Rows

if TYPE_CHECKING:
    from nodeselect.engine._constraints import CompiledJob
    from nodeselect.table import NodeTable

from nodeselect.engine.constraints._base import has_all

__all__ = ["Images"]


class Images(NodeConstraint):
    """Every required image is cached."""

    name = "images"
    columns = frozenset({"image_bits"})
    categorical = True

    def active(self, cj: CompiledJob) -> bool:
        """When the job requires images."""
        return bool(cj.job.software.images_required)

    def check(
        self, cj: CompiledJob, t: NodeTable, rows: Rows = ALL_ROWS, luts: Luts | None = None
    ) -> Check:
        """All wanted bits set."""
        want = tuple(cj.job.software.images_required)
        ok = has_all(t.image_bits[:, rows], t.image_vocab, want)
        return Check(self.name, ok, "cached " + ", ".join(want))

    def key(self, cj: CompiledJob) -> Hashable:
        """The required images."""
        return tuple(cj.job.software.images_required)
