"""``ram-free``: the node has at least ``memory.min_free_gb`` GB of free RAM (placement re-checks
it on the residual capacity)."""

from __future__ import annotations

from nodeselect.engine.constraints._base import FreeGbConstraint

__all__ = ["RamFree"]


class RamFree(FreeGbConstraint):
    """``ram_free_gb >= memory.min_free_gb`` (float32, threshold rounded outward)."""

    name = "ram-free"
    columns = frozenset({"ram_free_gb"})
    column = "ram_free_gb"
    section = "memory"
