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
from nodeselect.placement._optimal import (
    OptionalDependencyError,
)
from nodeselect.placement._placer import (
    SurveyedJob,
    place,
)
from nodeselect.placement._plan import (
    PLAN_SCHEMA,
    JobAssignment,
    Plan,
    PlanQuality,
    PlanTotals,
    Problem,
    Replica,
    Residual,
    SolverReport,
    Unplaced,
    UnplacedCause,
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
    "OptionalDependencyError",
    "Plan",
    "PlanQuality",
    "PlanTotals",
    "Problem",
    "Replica",
    "Residual",
    "SolverReport",
    "SurveyedJob",
    "Unplaced",
    "UnplacedCause",
    "UnplacedDetail",
    "place",
    "select_nodes",
    "totals_from",
    "validate_plan",
]
