"""``driver``: the node's GPU driver version is at least ``software.min_driver``."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING

from nodeselect.engine.constraints._base import (
    ALL_ROWS,
    Check,
    FastTest,
    Luts,
    NodeConstraint,
    Rows,
    nan_if_zero,
)

if TYPE_CHECKING:
    from nodeselect.engine._constraints import CompiledJob
    from nodeselect.table import NodeTable


__all__ = ["Driver"]


class Driver(NodeConstraint):
    """``driver_version >= min_driver`` (versions as comparable integers; 0 = unknown)."""

    name = "driver"
    columns = frozenset({"driver_version"})
    static = True  # driver versions are never written in place

    def active(self, cj: CompiledJob) -> bool:
        """When the job sets a minimum driver."""
        return cj.min_driver is not None

    def check(
        self, cj: CompiledJob, t: NodeTable, rows: Rows = ALL_ROWS, luts: Luts | None = None
    ) -> Check:
        """The comparison, with the versions (unknown as NaN) for nearest misses."""
        assert cj.min_driver is not None
        return Check(
            self.name,
            t.driver_version[rows] >= cj.min_driver,
            f">= {cj.job.software.min_driver}",
            "min",
            float(cj.min_driver),
            lambda: nan_if_zero(t.driver_version[rows]),
        )

    def key(self, cj: CompiledJob) -> Hashable:
        """The minimum version number."""
        return cj.min_driver

    def fast_test(self, cj: CompiledJob, t: NodeTable) -> FastTest | None:
        """``driver_version >= min``."""
        return ("ge", t.driver_version, cj.min_driver)
