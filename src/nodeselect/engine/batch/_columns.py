"""What every job of a :func:`nodeselect.rank_many` batch shares: the table, ``now``, the seed
and per-node columns (score inputs, tie keys, effective free VRAM, partial sums of scores)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import numpy as np
import numpy.typing as npt

from nodeselect.engine._constraints import CompiledJob, effective_gpu_columns
from nodeselect.engine._rank import Ranking, rank_compiled
from nodeselect.engine._scorers import NodeScores
from nodeselect.engine._shard import tie_keys
from nodeselect.engine.scorers import score_unit, score_units
from nodeselect.table import NodeTable, uuid_hash

__all__ = ["BatchColumns"]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


class BatchColumns:
    """What every job of a batch shares: the table, ``now``, the seed and per-node columns."""

    def __init__(self, t: NodeTable, now_s: float, seed: int, max_gpus: int, k: int) -> None:
        self.t, self.now_s, self.max_gpus, self.k, self.seed = t, now_s, max_gpus, k, seed
        self._free: F32 | None = None
        self._partials: dict[tuple[tuple[str, float], ...], F64] = {}
        self._unit_cols: dict[str, Mapping[str, F64]] = {}  # built by :meth:`warm_tasks`

    @functools.cached_property
    def pre(self) -> NodeScores:
        """Every node's score inputs at ``now`` (built on first use, with what
        :meth:`warm_tasks` built)."""
        return NodeScores.of(self.t, self.now_s, built=self._unit_cols)

    def warm_tasks(self, *, gpu: bool) -> list[Callable[[], object]]:
        """Independent tasks that build the shared columns before any job reads them, for a
        thread pool to run at once: each score term's per-node inputs (:attr:`pre` assembles
        them), the tie keys, and (``gpu``) the effective free VRAM."""

        def unit_cols(name: str) -> None:
            self._unit_cols[name] = score_unit(name).precompute(self.t, self.now_s)

        tasks: list[Callable[[], object]] = [
            functools.partial(unit_cols, u.name) for u in score_units()
        ]
        tasks.append(lambda: self.keys)
        if gpu:
            tasks.append(self.free)
        return tasks

    @functools.cached_property
    def keys(self) -> npt.NDArray[np.uint64]:
        """Every node's tie key for the seed (built on first use)."""
        return tie_keys(uuid_hash(self.t), self.seed)

    def free(self) -> F32:
        """Every GPU's effective free VRAM at ``now`` (as the constraints read it)."""
        if self._free is None:
            self._free = effective_gpu_columns(self.t, self.now_s)[0]
        return self._free

    def node_terms(self, cjs: list[CompiledJob]) -> frozenset[str]:
        """The terms whose raw value depends on the node alone for every job of ``cjs``."""
        return frozenset(u.name for u in score_units() if all(u.node_only(cj) for cj in cjs))

    def partial(self, terms: tuple[tuple[str, float], ...]) -> F64:
        """Per node, :func:`nodeselect.engine._scorers.combine`'s running sum over the leading
        ``terms`` (name, weight), each a :meth:`node_terms` term (cached per ``terms``)."""
        hit = self._partials.get(terms)
        if hit is None:
            score = np.zeros(len(self.t))
            n = len(self.t)
            for name, w in terms:
                score = score + w * score_unit(name).node_column(self.pre, n)
            hit = self._partials[terms] = score
        return hit

    def rank_one(self, cj: CompiledJob) -> Ranking:
        """The per-job path, with the batch's per-node columns."""
        return rank_compiled(
            cj,
            self.t,
            k=self.k,
            seed=self.seed,
            max_gpus=self.max_gpus,
            pre=self.pre,
            keys=self.keys,
        )
