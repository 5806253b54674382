"""``images`` = preferred images cached / preferred images (1 when the job prefers none)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nodeselect.engine.scorers._base import F32, F64, I64, ScoreTerm, TermInputs

if TYPE_CHECKING:
    from nodeselect.engine._constraints import CompiledJob
    from nodeselect.engine._scorers import NodeScores
    from nodeselect.table import NodeTable


def images(cj: CompiledJob, t: NodeTable, idx: I64) -> F64:
    """The term of rows ``idx``."""
    if not cj.preferred:
        return np.ones(len(idx))
    index = {v: j for j, v in enumerate(t.image_vocab)}
    hits = np.zeros(len(idx), dtype=np.float64)
    for img in cj.preferred:
        j = index.get(img)
        if j is not None:
            hits += ((t.image_bits[j >> 6, idx] >> np.uint64(j & 63)) & np.uint64(1)).astype(
                np.float64
            )
    return hits / float(len(cj.preferred))


class Images(ScoreTerm):
    name = "images"
    batched = True

    def values(self, cj: CompiledJob, t: NodeTable, idx: I64, inputs: TermInputs) -> F64:
        return images(cj, t, idx)

    def node_only(self, cj: CompiledJob) -> bool:
        return not cj.preferred

    def node_column(self, pre: NodeScores, n: int) -> F64:
        return np.ones(n)  # no preferred images: every node scores 1

    def upper(self, cj: CompiledJob, t: NodeTable) -> F32 | float | None:
        """1: a share of the preferred images (hits <= their number)."""
        return 1.0
