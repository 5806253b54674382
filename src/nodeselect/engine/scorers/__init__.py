"""Score terms: one unit per soft preference, one module each, one registry.

A unit (:class:`ScoreTerm`) owns its name, its weight for a job, its per-row value, its
per-node precompute, its bounds for pruning, its cache key and whether ``rank_many`` has a
specialised path for it. The registry (:data:`SCORE_TERM_UNITS`) lists them once, in the order
scores are summed in; everything that scores iterates :func:`score_units`.

Adding a score term: write one module here with a :class:`ScoreTerm` subclass, and add one
line to :data:`SCORE_TERM_UNITS` (docs/scoring.md, "Adding a score term").
"""

from __future__ import annotations

from nodeselect.engine.scorers._base import F64, I64, ScoreTerm, TermInputs, decay, f32_up
from nodeselect.engine.scorers._fit import gpu_fit
from nodeselect.engine.scorers._freshness import FRESHNESS_SCALE_S
from nodeselect.engine.scorers._idle import (
    TELEMETRY_SCALE_S,
    gpu_load_mean,
    idle_of,
    idle_range,
)
from nodeselect.engine.scorers._images import images
from nodeselect.engine.scorers._registry import (
    SCORE_TERM_UNITS,
    register,
    registered,
    score_unit,
    score_units,
    unregister,
    with_terms,
)
from nodeselect.engine.scorers._reputation import reputation

__all__ = [
    "F64",
    "FRESHNESS_SCALE_S",
    "I64",
    "SCORE_TERM_UNITS",
    "TELEMETRY_SCALE_S",
    "ScoreTerm",
    "TermInputs",
    "decay",
    "f32_up",
    "gpu_fit",
    "gpu_load_mean",
    "idle_of",
    "idle_range",
    "images",
    "register",
    "registered",
    "reputation",
    "score_unit",
    "score_units",
    "unregister",
    "with_terms",
]
