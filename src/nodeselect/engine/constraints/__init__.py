"""Node-level hard constraints: one unit per constraint, one module each, one registry.

A unit (:class:`NodeConstraint`) owns its name, when it is active, its mask (:class:`Check`),
its part of the cache keys and its fast test for the prefilter (or the generic fallback). The
registry (:data:`NODE_CONSTRAINTS`) lists them once, in the stable order explanations use;
everything that evaluates node-level constraints iterates :func:`node_constraints`.

Adding a constraint: write one module here with a :class:`NodeConstraint` subclass, and add one
line to :data:`NODE_CONSTRAINTS` (docs/scoring.md, "Adding a constraint").
"""

from __future__ import annotations

from nodeselect.engine.constraints._base import (
    ALL_ROWS,
    Check,
    Direction,
    FastTest,
    Luts,
    NodeConstraint,
    Rows,
    f32_at_least,
    f32_at_most,
    has_all,
    lut_take,
    nan_if_zero,
    vocab_lut,
)
from nodeselect.engine.constraints._registry import (
    GPU_CONSTRAINTS,
    NODE_CONSTRAINTS,
    categorical_units,
    constraint_names,
    node_constraints,
    node_key,
    register,
    registered,
    unregister,
)

__all__ = [
    "ALL_ROWS",
    "GPU_CONSTRAINTS",
    "NODE_CONSTRAINTS",
    "Check",
    "Direction",
    "FastTest",
    "Luts",
    "NodeConstraint",
    "Rows",
    "categorical_units",
    "constraint_names",
    "f32_at_least",
    "f32_at_most",
    "has_all",
    "lut_take",
    "nan_if_zero",
    "node_constraints",
    "node_key",
    "register",
    "registered",
    "unregister",
    "vocab_lut",
]
