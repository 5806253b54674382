"""``ram-free``: the node has at least ``memory.min_free_gb`` GB of free RAM (placement re-checks
it on the residual capacity)."""

from __future__ import annotations

from nodeselect.engine.constraints._base import MinimumConstraint

__all__ = ["RamFree"]


class RamFree(MinimumConstraint):
    """``ram_free_gb >= memory.min_free_gb`` (float32, threshold rounded outward)."""

    name = "ram-free"
    columns = frozenset({"ram_free_gb"})
    column = "ram_free_gb"
    section = "memory"
    field = "min_free_gb"
    unit = "GB"
