"""``node``: the node is not in ``placement.exclude_nodes`` and, when given, is in
``placement.only_nodes`` (by uuid or name; categorical)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING

import numpy as np

from nodeselect.engine.constraints._base import ALL_ROWS, Check, Luts, NodeConstraint, Rows

if TYPE_CHECKING:
    from nodeselect.engine._constraints import CompiledJob
    from nodeselect.table import NodeTable

import numpy.typing as npt

__all__ = ["NodeList"]


def _node_match(t: NodeTable, rows: Rows, keys: tuple[str, ...]) -> npt.NDArray[np.bool_]:
    hit = np.zeros(len(t.uuid[rows]), dtype=np.bool_)
    names = set(keys)
    name_lut = np.isin(t.name_vocab, [k.encode() for k in names if k])
    hit |= name_lut[t.name_code[rows]]
    for k in keys:
        hit |= t.uuid[rows] == k.encode()
    return hit


class NodeList(NodeConstraint):
    """Not an excluded node; one of the only nodes, when listed."""

    name = "node"
    columns = frozenset({"uuid", "name_code"})
    categorical = True

    def active(self, cj: CompiledJob) -> bool:
        """When the job excludes nodes or lists the only ones."""
        p = cj.job.placement
        return bool(p.exclude_nodes or p.only_nodes)

    def check(
        self, cj: CompiledJob, t: NodeTable, rows: Rows = ALL_ROWS, luts: Luts | None = None
    ) -> Check:
        """By uuid or name."""
        p = cj.job.placement
        ok = np.ones(len(t.uuid[rows]), dtype=np.bool_)
        if p.exclude_nodes:
            ok &= ~_node_match(t, rows, p.exclude_nodes)
        if p.only_nodes:
            ok &= _node_match(t, rows, p.only_nodes)
        return Check(self.name, ok, "not excluded / in only_nodes")

    def key(self, cj: CompiledJob) -> Hashable:
        """The two lists."""
        p = cj.job.placement
        return (tuple(p.exclude_nodes), tuple(p.only_nodes))
