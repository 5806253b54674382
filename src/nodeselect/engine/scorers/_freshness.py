"""``freshness`` = F / (F + age), age = max(0, now - last_seen_at), F = 600 s; unknown -> 0."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Final

from nodeselect.engine.scorers._base import F32, F64, I64, ScoreTerm, TermInputs, decay

if TYPE_CHECKING:
    from nodeselect.engine._constraints import CompiledJob
    from nodeselect.engine._scorers import NodeScores
    from nodeselect.table import NodeTable

FRESHNESS_SCALE_S: Final = 600.0


class Freshness(ScoreTerm):
    name = "freshness"
    batched = True

    def values(self, cj: CompiledJob, t: NodeTable, idx: I64, inputs: TermInputs) -> F64:
        if inputs.pre is not None:
            return inputs.pre.cols["freshness"][idx]
        return decay(cj.now_s - t.last_seen_epoch_s[idx], FRESHNESS_SCALE_S)

    def precompute(self, t: NodeTable, now_s: float) -> Mapping[str, F64]:
        return {"freshness": decay(now_s - t.last_seen_epoch_s, FRESHNESS_SCALE_S)}

    def node_only(self, cj: CompiledJob) -> bool:
        return True

    def node_column(self, pre: NodeScores, n: int) -> F64:
        return pre.cols["freshness"]

    def upper(self, cj: CompiledJob, t: NodeTable) -> F32 | float | None:
        """1: ``F / (F + age)`` with ``age >= 0`` rounds to at most 1."""
        return 1.0

    def cache_key(self, cj: CompiledJob) -> Hashable | None:
        return cj.now_s
