"""``rank_many``: many jobs ranked together, sharing the work they have in common; equal bit
for bit to a loop over ``rank``.
"""

from __future__ import annotations

from nodeselect.engine.batch._columns import (
    BatchColumns,
)
from nodeselect.engine.batch._group import (
    CHUNK_PAIRS,
    JobGroup,
)
from nodeselect.engine.batch._pairs import (
    PairScores,
)
from nodeselect.engine.batch._rank_many import (
    GROUP_COST,
    MIN_GROUP,
    MIN_JOBS,
    rank_many,
    rank_many_columns,
)
from nodeselect.engine.batch._top import TopColumns, top_columns

__all__ = [
    "CHUNK_PAIRS",
    "GROUP_COST",
    "MIN_GROUP",
    "MIN_JOBS",
    "BatchColumns",
    "JobGroup",
    "PairScores",
    "TopColumns",
    "rank_many",
    "rank_many_columns",
    "top_columns",
]
