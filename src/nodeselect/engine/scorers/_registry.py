"""The registry: every score-term unit, once, in the stable order scores are summed in.

Adding a score term is one module in this package and one line in :data:`SCORE_TERM_UNITS`.
The per-job path (:func:`nodeselect.engine.score_terms`, :func:`nodeselect.engine.combine`,
``rank``'s pruning), ``rank_many``, explanations and placement iterate :func:`score_units`.

:func:`register` / :func:`registered` add units at run time (after the built-in ones), for
plug-ins and tests; a compiled job gets their weights from :func:`with_terms`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final

import attrs

from nodeselect.engine.scorers._base import ScoreTerm
from nodeselect.engine.scorers._fit import Fit
from nodeselect.engine.scorers._freshness import Freshness
from nodeselect.engine.scorers._idle import Idle
from nodeselect.engine.scorers._images import Images
from nodeselect.engine.scorers._reputation import Reputation

if TYPE_CHECKING:
    from nodeselect.engine._constraints import CompiledJob

__all__ = [
    "SCORE_TERM_UNITS",
    "register",
    "registered",
    "score_unit",
    "score_units",
    "unregister",
    "with_terms",
]

#: The score terms, in stable order (the one list to extend; ``jobs.SCORE_TERMS`` order).
SCORE_TERM_UNITS: Final[tuple[ScoreTerm, ...]] = (
    Reputation(),
    Freshness(),
    Images(),
    Fit(),
    Idle(),
)

_units: tuple[ScoreTerm, ...] = SCORE_TERM_UNITS
_by_name: dict[str, ScoreTerm] = {u.name: u for u in _units}


def score_units() -> tuple[ScoreTerm, ...]:
    """Every registered unit (built-in ones first), in stable order."""
    return _units


def score_unit(name: str) -> ScoreTerm:
    """The registered unit called ``name``."""
    return _by_name[name]


def with_terms(cj: CompiledJob) -> CompiledJob:
    """``cj`` with the weights of every registered term, in registry order (``cj`` itself when
    only the built-in terms are registered: ``compile_job`` already holds their weights)."""
    if _units is SCORE_TERM_UNITS:
        return cj
    wt = tuple((u.name, w) for u in _units if (w := u.weight(cj)) > 0)
    total = 0.0
    for _, w in wt:
        total += w
    return attrs.evolve(cj, weights=wt, weight_total=total)


def _set(units: tuple[ScoreTerm, ...]) -> None:
    global _units, _by_name  # noqa: PLW0603 -- the registry is module state by design
    names = [u.name for u in units]
    if len(set(names)) != len(names):
        raise ValueError(f"score term names must be unique: {names}")
    _units = units
    _by_name = {u.name: u for u in units}


def register(unit: ScoreTerm) -> None:
    """Add ``unit`` after the registered units (its name must be new)."""
    _set((*_units, unit))


def unregister(name: str) -> None:
    """Remove the run-time unit called ``name`` (built-in units cannot be removed)."""
    if any(u.name == name for u in SCORE_TERM_UNITS):
        raise ValueError(f"{name!r} is a built-in score term")
    _set(tuple(u for u in _units if u.name != name))


@contextmanager
def registered(*units: ScoreTerm) -> Iterator[None]:
    """Register ``units`` for the duration of a ``with`` block, then restore the registry."""
    before = _units
    _set((*before, *units))
    try:
        yield
    finally:
        _set(before)
