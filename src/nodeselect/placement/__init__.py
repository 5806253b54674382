"""Placement: batches and gangs of jobs onto nodes without over-committing one, built on the
engine seam; plans, residual capacity, gang rules and validation.
"""

from __future__ import annotations

from nodeselect.placement._gang import (
    UNKNOWN,
    Candidate,
    GangChoice,
    select_nodes,
)
from nodeselect.placement._placer import (
    place,
)
from nodeselect.placement._plan import (
    PLAN_SCHEMA,
    JobAssignment,
    Plan,
    PlanTotals,
    Problem,
    Replica,
    Residual,
    Unplaced,
    UnplacedDetail,
    totals_from,
    validate_plan,
)

__all__ = [
    "PLAN_SCHEMA",
    "UNKNOWN",
    "Candidate",
    "GangChoice",
    "JobAssignment",
    "Plan",
    "PlanTotals",
    "Problem",
    "Replica",
    "Residual",
    "Unplaced",
    "UnplacedDetail",
    "place",
    "select_nodes",
    "totals_from",
    "validate_plan",
]
