"""Sharding: mergeable table statistics, the seeded tie key, and the exact merge of top-k lists.

A fleet split into several tables ranks exactly like one table when every shard is ranked with
the *merged* :class:`TableStats` and the same seed, and the shards' top lists are merged with
:func:`merge_top`: one total order (score descending, then the seeded tie key of the uuid, then
the uuid) makes the merged top k the same nodes, scores and order as ranking the whole fleet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final

import attrs
import numpy as np
import numpy.typing as npt

from nodeselect.table import NodeTable, max_gpu_count

if TYPE_CHECKING:
    from nodeselect.engine._rank import Ranking

__all__ = ["RankedNode", "TableStats", "merge_top", "table_stats", "tie_key", "tie_keys"]

_M64: Final = (1 << 64) - 1
_HASH_P: Final = 0x100000001B3


def _splitmix_int(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def tie_key(uuid: str, seed: int) -> int:
    """The seeded tie key of one uuid (plain Python; equals :func:`tie_keys`)."""
    h, p = 0, 1
    for b in uuid.encode():
        h = (h + b * p) & _M64
        p = (p * _HASH_P) & _M64
    return _splitmix_int(h ^ _splitmix_int(seed & _M64))


def tie_keys(hashes: npt.NDArray[np.uint64], seed: int) -> npt.NDArray[np.uint64]:
    """Seeded tie keys from seed-free uuid hashes (:func:`nodeselect.table._table.uuid_hashes`)."""
    z = hashes ^ np.uint64(_splitmix_int(seed & _M64))
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    out: npt.NDArray[np.uint64] = z ^ (z >> np.uint64(31))
    return out


@attrs.frozen
class TableStats:
    """Global reductions scoring normalizes with; merge shards' stats with :meth:`merge`.

    Attributes:
        nodes: rows.
        gpus: GPUs.
        max_gpu_count: the most GPUs on one node (normalizes the ``spread`` fit).
    """

    nodes: int
    gpus: int
    max_gpu_count: int

    def merge(self, other: TableStats) -> TableStats:
        """The stats of the union of both tables."""
        return TableStats(
            nodes=self.nodes + other.nodes,
            gpus=self.gpus + other.gpus,
            max_gpu_count=max(self.max_gpu_count, other.max_gpu_count),
        )


def table_stats(table: NodeTable) -> TableStats:
    """The :class:`TableStats` of one table."""
    return TableStats(
        nodes=len(table),
        gpus=len(table.gpu_model_code),
        max_gpu_count=max_gpu_count(table),
    )


@attrs.frozen
class RankedNode:
    """One ranked node.

    Attributes:
        index: its row in the ranked table.
        uuid / name: the node.
        score: the combined score in [0, 1].
        terms: per score term, its contribution ``w * s / sum(w)`` (they add up to ``score``).
        gpu_indices: the node's GPUs (0-based, in its ``gpus[]``) the job would use: those that
            pass every per-GPU limit, best fit first (pack: least free VRAM; spread: most).
        tie_key: the seeded key that breaks equal scores.
    """

    index: int
    uuid: str
    name: str | None
    score: float
    terms: Mapping[str, float]
    gpu_indices: tuple[int, ...]
    tie_key: int


def _order(r: RankedNode) -> tuple[float, int, str]:
    return (-r.score, r.tie_key, r.uuid)


def merge_top(rankings: Sequence[Ranking], k: int) -> tuple[RankedNode, ...]:
    """The exact top ``k`` over shards ranked with the same seed and merged stats.

    ``index`` of each node still refers to its own shard's table.
    """
    allr = [r for ranking in rankings for r in ranking.top]
    return tuple(sorted(allr, key=_order)[:k])
