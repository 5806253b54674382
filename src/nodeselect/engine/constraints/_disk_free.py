"""``disk-free``: the node has at least ``disk.min_free_gb`` GB of free disk (placement re-checks
it on the residual capacity)."""

from __future__ import annotations

from nodeselect.engine.constraints._base import MinimumConstraint

__all__ = ["DiskFree"]


class DiskFree(MinimumConstraint):
    """``disk_free_gb >= disk.min_free_gb`` (float32, threshold rounded outward)."""

    name = "disk-free"
    columns = frozenset({"disk_free_gb"})
    column = "disk_free_gb"
    section = "disk"
    field = "min_free_gb"
    unit = "GB"
