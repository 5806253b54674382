"""``reputation`` = clip(reputation, 0, 100) / 100; unknown -> 0."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from nodeselect.engine.scorers._base import F32, F64, I64, ScoreTerm, TermInputs, f32_up

if TYPE_CHECKING:
    from nodeselect.engine._constraints import CompiledJob
    from nodeselect.engine._scorers import NodeScores
    from nodeselect.table import NodeTable


def reputation(t: NodeTable, idx: I64) -> F64:
    """The term of rows ``idx``."""
    r = t.reputation[idx].astype(np.float64)
    return np.where(np.isnan(r), 0.0, np.clip(r, 0.0, 100.0) / 100.0)


def _all_reputations(t: NodeTable) -> F64:
    """:func:`reputation` of every row, its operations in place."""
    r = t.reputation.astype(np.float64)
    unknown = np.isnan(r)
    np.clip(r, 0.0, 100.0, out=r)
    r /= 100.0
    r[unknown] = 0.0
    return r


def reputation_upper(t: NodeTable) -> F32:
    """Every node's value (it does not depend on ``now``) as float32 rounded up."""
    return f32_up(_all_reputations(t))


class Reputation(ScoreTerm):
    name = "reputation"
    batched = True

    def values(self, cj: CompiledJob, t: NodeTable, idx: I64, inputs: TermInputs) -> F64:
        if inputs.pre is not None:
            return inputs.pre.cols["reputation"][idx]
        return reputation(t, idx)

    def precompute(self, t: NodeTable, now_s: float) -> Mapping[str, F64]:
        return {"reputation": reputation(t, np.arange(len(t), dtype=np.int64))}

    def node_only(self, cj: CompiledJob) -> bool:
        return True

    def node_column(self, pre: NodeScores, n: int) -> F64:
        return pre.cols["reputation"]

    def upper(self, cj: CompiledJob, t: NodeTable) -> F32 | float | None:
        """The value itself: :func:`reputation_upper`."""
        return reputation_upper(t)

    def cache_key(self, cj: CompiledJob) -> Hashable | None:
        return ()
