"""The registry: every node-level constraint unit, once, in the stable order explanations use.

Adding a constraint is one module in this package and one line in :data:`NODE_CONSTRAINTS`.
The per-job path (:func:`nodeselect.engine.node_checks`), the prefilter, ``rank_many``,
explanations, nearest misses and placement all iterate :func:`node_constraints`; a unit without
a specialised fast path is applied through its ``check`` (the generic fallback).

:func:`register` / :func:`registered` add units at run time (after the built-in ones, before the
GPU group), for plug-ins and tests.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final

from nodeselect.engine.constraints._arch import Arch
from nodeselect.engine.constraints._base import NodeConstraint
from nodeselect.engine.constraints._compliance import Compliance
from nodeselect.engine.constraints._cpu_cores import CpuCores
from nodeselect.engine.constraints._deleted import Deleted
from nodeselect.engine.constraints._disk_free import DiskFree
from nodeselect.engine.constraints._driver import Driver
from nodeselect.engine.constraints._images import Images
from nodeselect.engine.constraints._node import NodeList
from nodeselect.engine.constraints._operator import Operator
from nodeselect.engine.constraints._ram_free import RamFree
from nodeselect.engine.constraints._region import Region
from nodeselect.engine.constraints._reputation import Reputation
from nodeselect.engine.constraints._staleness import Staleness
from nodeselect.engine.constraints._status import Status
from nodeselect.engine.constraints._suspended import Suspended

if TYPE_CHECKING:
    from nodeselect.engine._constraints import CompiledJob

__all__ = [
    "GPU_CONSTRAINTS",
    "NODE_CONSTRAINTS",
    "categorical_units",
    "constraint_names",
    "node_constraints",
    "node_key",
    "register",
    "registered",
    "unregister",
]

#: The node-level constraints, in stable order (the one list to extend).
NODE_CONSTRAINTS: Final[tuple[NodeConstraint, ...]] = (
    Status(),
    Suspended(),
    Deleted(),
    Region(),
    Compliance(),
    Operator(),
    NodeList(),
    Reputation(),
    Staleness(),
    Arch(),
    Driver(),
    Images(),
    CpuCores(),
    RamFree(),
    DiskFree(),
)
#: The GPU group (evaluated together in :mod:`nodeselect.engine._constraints`), in attribution
#: order; their names follow the node-level ones.
GPU_CONSTRAINTS: Final = ("gpu-count", "gpu-model", "gpu-vram-total", "gpu-vram-free", "gpu-load")

_units: tuple[NodeConstraint, ...] = NODE_CONSTRAINTS
_derived: dict[str, object] = {}


def node_constraints() -> tuple[NodeConstraint, ...]:
    """Every registered node-level unit (built-in ones first), in stable order."""
    return _units


def constraint_names() -> tuple[str, ...]:
    """Every constraint name in stable order: the registered units', then the GPU group's."""
    hit = _derived.get("names")
    if hit is None:
        hit = _derived["names"] = tuple(u.name for u in _units) + GPU_CONSTRAINTS
    assert isinstance(hit, tuple)
    return hit


def categorical_units() -> tuple[NodeConstraint, ...]:
    """The registered units folded into the prefilter's cached categorical mask."""
    hit = _derived.get("categorical")
    if hit is None:
        hit = _derived["categorical"] = tuple(u for u in _units if u.categorical)
    assert isinstance(hit, tuple)
    return hit


def node_key(cj: CompiledJob) -> tuple[Hashable, ...]:
    """The job fields every node-level mask of ``cj`` depends on (the active units' keys): two
    jobs with equal keys pass exactly the same nodes of any table."""
    return tuple((u, u.key(cj)) for u in _units if u.active(cj))


def _set(units: tuple[NodeConstraint, ...]) -> None:
    global _units  # noqa: PLW0603 -- the registry is module state by design
    names = [u.name for u in units] + list(GPU_CONSTRAINTS)
    if len(set(names)) != len(names):
        raise ValueError(f"constraint names must be unique: {names}")
    _units = units
    _derived.clear()


def register(unit: NodeConstraint) -> None:
    """Add ``unit`` after the registered node-level units (its name must be new)."""
    _set((*_units, unit))


def unregister(name: str) -> None:
    """Remove the run-time unit called ``name`` (built-in units cannot be removed)."""
    if any(u.name == name for u in NODE_CONSTRAINTS):
        raise ValueError(f"{name!r} is a built-in constraint")
    _set(tuple(u for u in _units if u.name != name))


@contextmanager
def registered(*units: NodeConstraint) -> Iterator[None]:
    """Register ``units`` for the duration of a ``with`` block, then restore the registry."""
    before = _units
    _set((*before, *units))
    try:
        yield
    finally:
        _set(before)
