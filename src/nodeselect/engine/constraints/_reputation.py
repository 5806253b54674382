"""``reputation``: the node's reputation is at least ``placement.min_reputation``."""

from __future__ import annotations

from nodeselect.engine.constraints._base import MinimumConstraint

__all__ = ["Reputation"]


class Reputation(MinimumConstraint):
    """``reputation >= placement.min_reputation`` (float32, threshold rounded outward)."""

    name = "reputation"
    columns = frozenset({"reputation"})
    column = "reputation"
    section = "placement"
    field = "min_reputation"
    unit = ""
    static = True  # reputation is never written in place
