"""Telemetry units, inferred per fleet and checked per node, never assumed.

The API reference gives no unit for any value in ``latest_hardware_event.metadata`` (every
example is ``123``). Servers differ: RAM telemetry in bytes, MiB or GB, VRAM telemetry in
bytes, MiB or GB, loads as fractions 0..1 or percent 0..100. The node table decides each unit
once per fleet from evidence in the same documents (docs/units.md):

* **Sizes** (``ram``: ``metadata.ram.free/total``; ``vram``: ``metadata.gpu.gpus[].vram``):
  per node (per GPU), the ratio of the telemetry *total* to the same node's total whose unit is
  known (RAM: the sum of ``rams[].memory_gb_max`` when every stick has one, else
  ``current_hardware.memory.ram_bytes_total`` / 2**30, else ``ramTotal``; VRAM:
  ``gpus[].vram_gb_max``, else ``current_hardware.gpus[].vram_bytes_total`` / 2**30 by index).
  Each candidate unit (bytes = 2**30 per GB, MiB = 1024, GB = 1) counts the ratios within a factor
  :data:`SIZE_TOLERANCE` of it. The candidate with most such ratios is decided when they are at
  least :data:`AGREE_SHARE` of the evidence and at least ``min(MIN_EVIDENCE, nodes reporting
  telemetry)``; otherwise the unit is *undecided* (thin or conflicting evidence) and every node
  uses the document's GB fields.
* **Loads** (``gpu_load``: ``metadata.gpu.gpus[].load``; ``cpu_load``: ``metadata.cpu.average``)
  have no same-node field with a known unit, so they are decided by their range across the
  fleet: among the non-zero values, the share above 1. At most :data:`FRACTION_MAX_ABOVE_ONE`
  -> fraction; at least :data:`PERCENT_MIN_ABOVE_ONE` -> percent; in between -> undecided
  (the load is unknown). All zero (or none) -> fraction (every reading gives the same value).

Per node, a value that is implausible in the decided unit falls back (sizes to the document's
GB fields, loads to unknown) and is counted: sizes with a negative free or total, free above
total, or a total off the node's known total by more than :data:`SIZE_TOLERANCE`; loads
outside the unit's range.
"""

from __future__ import annotations

import functools
import math
import operator
from typing import Any, Final, Literal

import attrs
import numpy as np
import numpy.typing as npt

__all__ = [
    "AGREE_SHARE",
    "DEFAULT_UNITS",
    "FRACTION_MAX_ABOVE_ONE",
    "LOAD_FACTORS",
    "MIN_EVIDENCE",
    "PERCENT_MIN_ABOVE_ONE",
    "SIZE_FACTORS",
    "SIZE_TOLERANCE",
    "SOURCES",
    "UnitDecision",
    "UnitTally",
    "Units",
    "decide_unit",
    "implausible_loads",
    "implausible_sizes",
    "infer_load_unit",
    "infer_size_unit",
]

F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]
Quantity = Literal["ram", "vram", "gpu_load", "cpu_load"]

#: Telemetry units per nodeselect GB (2**30 bytes).
SIZE_FACTORS: Final[dict[str, float]] = {"bytes": float(2**30), "MiB": 1024.0, "GB": 1.0}
#: Telemetry load units per fraction.
LOAD_FACTORS: Final[dict[str, float]] = {"fraction": 1.0, "percent": 100.0}
#: What nodeselect assumed before units were inferred (and what docs/units.md calls default).
DEFAULT_UNITS: Final[dict[str, str]] = {
    "ram": "bytes",
    "vram": "MiB",
    "gpu_load": "fraction",
    "cpu_load": "fraction",
}
#: A telemetry total agrees with a known total when their ratio is within this factor of the
#: unit's factor (covers decimal vs binary GB, 7.4 %, and memory the OS reserves).
SIZE_TOLERANCE: Final = 1.25
#: Share of the evidence that must agree with the decided unit.
AGREE_SHARE: Final = 0.8
#: Agreeing nodes needed (fewer only when fewer nodes report the telemetry at all).
MIN_EVIDENCE: Final = 3
#: Loads: share of non-zero values above 1 up to which the fleet reads as fractions.
FRACTION_MAX_ABOVE_ONE: Final = 0.1
#: Loads: share of non-zero values above 1 from which the fleet reads as percent.
PERCENT_MIN_ABOVE_ONE: Final = 0.5
_EPS: Final = 1e-6
_LOG_TOL: Final = math.log(SIZE_TOLERANCE)


@attrs.frozen
class UnitTally:
    """The counts a unit decision is taken from: a fleet's are the sum of its parts', so a
    fleet split in shards gets, from its shards' tallies, the decision it would take whole.

    Attributes:
        values: sizes: ratios looked at (a telemetry total and a known total both present);
            loads: finite values.
        agree: sizes: per candidate unit (:data:`SIZE_FACTORS` order), the ratios within
            :data:`SIZE_TOLERANCE` of it; loads: values plausible as fractions, as percent.
        reporting: sizes: values of telemetry present at all.
        nonzero / above_one: loads: values above 0, above 1.
    """

    values: int = 0
    agree: tuple[int, ...] = ()
    reporting: int = 0
    nonzero: int = 0
    above_one: int = 0

    def __add__(self, other: UnitTally) -> UnitTally:
        if not (self.agree and other.agree):  # (an empty tally: the other's candidates)
            agree = self.agree or other.agree
        else:
            agree = tuple(a + b for a, b in zip(self.agree, other.agree, strict=True))
        return UnitTally(
            self.values + other.values,
            agree,
            self.reporting + other.reporting,
            self.nonzero + other.nonzero,
            self.above_one + other.above_one,
        )


@attrs.frozen
class UnitDecision:
    """The unit decided for one telemetry quantity of a fleet.

    Attributes:
        quantity: ``"ram"``, ``"vram"``, ``"gpu_load"`` or ``"cpu_load"``.
        unit: ``"bytes"``/``"MiB"``/``"GB"`` (sizes) or ``"fraction"``/``"percent"`` (loads);
            ``None`` when undecided (the telemetry is not used).
        how: one line saying how it was decided (or why not).
        evidence: how many values (nodes or GPUs) the decision looked at.
        agreeing: how many of them agree with ``unit``.
        fallbacks: values present but not used (implausible, or the unit undecided).
        tally: the counts it was inferred from, which merge over shards (:func:`decide_unit`);
            ``None`` when assumed or given.
    """

    quantity: str
    unit: str | None
    how: str
    evidence: int = 0
    agreeing: int = 0
    fallbacks: int = 0
    #: the counts it was inferred from (``None``: assumed or given); not compared
    tally: UnitTally | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def factor(self) -> float:
        """Telemetry units per nodeselect unit (GB or fraction); NaN when undecided."""
        if self.unit is None:
            return math.nan
        return (SIZE_FACTORS | LOAD_FACTORS)[self.unit]

    @property
    def is_default(self) -> bool:
        """Whether the decision is the documented default unit."""
        return self.unit == DEFAULT_UNITS.get(self.quantity)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``unit`` (or null), ``default``, ``how``, ``evidence``, ``agreeing``,
        ``fallbacks``."""
        return {
            "unit": self.unit,
            "default": DEFAULT_UNITS.get(self.quantity),
            "how": self.how,
            "evidence": self.evidence,
            "agreeing": self.agreeing,
            "fallbacks": self.fallbacks,
        }


def _assumed(quantity: str) -> UnitDecision:
    return UnitDecision(
        quantity, DEFAULT_UNITS[quantity], "assumed (table not built from documents)"
    )


@attrs.frozen
class Units:
    """What a node table decided about its fleet's telemetry (``NodeTable.units``).

    Attributes:
        ram / vram / gpu_load / cpu_load: one :class:`UnitDecision` each.
        numeric_strings: nodes whose numbers arrived (partly) as JSON strings, read as numbers.
    """

    ram: UnitDecision = attrs.field(factory=lambda: _assumed("ram"))
    vram: UnitDecision = attrs.field(factory=lambda: _assumed("vram"))
    gpu_load: UnitDecision = attrs.field(factory=lambda: _assumed("gpu_load"))
    cpu_load: UnitDecision = attrs.field(factory=lambda: _assumed("cpu_load"))
    numeric_strings: int = 0

    def decisions(self) -> tuple[UnitDecision, ...]:
        """The four decisions in a fixed order."""
        return (self.ram, self.vram, self.gpu_load, self.cpu_load)

    @property
    def telemetry_fallbacks(self) -> int:
        """Telemetry values present but not used, over all quantities."""
        return sum(d.fallbacks for d in self.decisions())

    @property
    def is_default(self) -> bool:
        """Every unit decided and the documented default."""
        return all(d.is_default for d in self.decisions())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``fleet.units`` of ``plan --json``)."""
        out: dict[str, Any] = {d.quantity: d.to_dict() for d in self.decisions()}
        out["numeric_strings"] = self.numeric_strings
        out["telemetry_fallbacks"] = self.telemetry_fallbacks
        return out

    def summary(self) -> str | None:
        """One line when any unit is not the documented default or undecided, else ``None``."""
        if self.is_default:
            return None
        parts = []
        for d in self.decisions():
            label = d.quantity.replace("_", " ")
            if d.unit is None:
                if d.how != "no telemetry":  # nothing reported: nothing to say
                    parts.append(f"{label} undecided ({d.how}; not used)")
            elif not d.is_default:
                parts.append(f"{label} in {d.unit}")
        if self.telemetry_fallbacks:
            parts.append(f"{self.telemetry_fallbacks} implausible values fell back")
        return "telemetry units: " + ", ".join(parts) if parts else None

    @staticmethod
    def merged(parts: list[Units]) -> Units:
        """The units of concatenated tables: kept when all agree, else the first's, with the
        counts added (tables built separately may have decided differently)."""
        if len(parts) == 1:
            return parts[0]
        fields: dict[str, Any] = {}
        for name in ("ram", "vram", "gpu_load", "cpu_load"):
            ds = [getattr(p, name) for p in parts]
            same = all(d.unit == ds[0].unit for d in ds)
            tallies = [d.tally for d in ds]
            fields[name] = attrs.evolve(
                ds[0],
                how=ds[0].how if same else "tables decided differently; each kept its own",
                evidence=sum(d.evidence for d in ds),
                agreeing=sum(d.agreeing for d in ds),
                fallbacks=sum(d.fallbacks for d in ds),
                tally=None if None in tallies else functools.reduce(operator.add, tallies),
            )
        return Units(**fields, numeric_strings=sum(p.numeric_strings for p in parts))


#: What each quantity's telemetry is compared with, as decisions name it.
SOURCES: Final[dict[str, str]] = {
    "ram": "the node's known RAM total",
    "vram": "the GPU's known VRAM total",
    "cpu_load": "metadata.cpu.average",
    "gpu_load": "metadata.gpu.gpus[].load",
}


def infer_size_unit(
    quantity: str, tele_total: F64, known_gb: F64, *, reporting: int, source: str
) -> UnitDecision:
    """Decide a size unit from the ratios ``tele_total / known_gb`` (module docstring).

    ``reporting`` is how many nodes (GPUs) report the telemetry at all; ``source`` names the
    known fields for the ``how`` line.
    """
    ok = np.isfinite(tele_total) & np.isfinite(known_gb) & (tele_total > 0) & (known_gb > 0)
    n = int(np.count_nonzero(ok))
    if n == 0:
        return _decide_size(quantity, UnitTally(0, (0,) * len(SIZE_FACTORS), reporting), source)
    # absurd pairs (3.9e21 / 2.2e-287) overflow to inf or underflow to 0: their logs are
    # +-inf, which agree with no unit (numpy's warnings about them are noise)
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        logr = np.log(tele_total[ok] / known_gb[ok])
        median = float(np.exp(np.median(logr)))
    agree = tuple(
        int(np.count_nonzero(np.abs(logr - math.log(factor)) <= _LOG_TOL))
        for factor in SIZE_FACTORS.values()
    )
    return _decide_size(quantity, UnitTally(n, agree, reporting), source, median)


def _decide_size(
    quantity: str, tally: UnitTally, source: str, median: float | None = None
) -> UnitDecision:
    n = tally.values
    if n == 0:
        why = (
            "no telemetry"
            if tally.reporting == 0
            else f"no node has both the telemetry and {source}"
        )
        return UnitDecision(quantity, None, why, 0, 0, tally=tally)
    best, best_count = "", -1
    for unit, c in zip(SIZE_FACTORS, tally.agree, strict=True):
        if c > best_count:
            best, best_count = unit, c
    need = max(AGREE_SHARE * n, min(MIN_EVIDENCE, tally.reporting))
    ratio = "" if median is None else f" (median ratio {median:.4g})"
    what = f"telemetry total / {source} on {n}: {best_count} agree with {best}{ratio}"
    if best_count < need:
        why = "thin" if best_count >= AGREE_SHARE * n else "conflicting"
        return UnitDecision(quantity, None, f"{why} evidence: {what}", n, best_count, tally=tally)
    return UnitDecision(quantity, best, what, n, best_count, tally=tally)


def infer_load_unit(quantity: str, values: F64, *, source: str) -> UnitDecision:
    """Decide a load unit from the range of ``values`` across the fleet (module docstring)."""
    v = values[np.isfinite(values)]
    plausible = v >= 0
    tally = UnitTally(
        len(v),
        (
            int(np.count_nonzero(plausible & (v <= 1.0 + _EPS))),
            int(np.count_nonzero(plausible & (v <= 100.0 + _EPS))),
        ),
        nonzero=int(np.count_nonzero(v > 0)),
        above_one=int(np.count_nonzero(v > 1.0 + _EPS)),
    )
    return _decide_load(quantity, tally, source)


def _decide_load(quantity: str, tally: UnitTally, source: str) -> UnitDecision:
    n, nz, above = tally.values, tally.nonzero, tally.above_one
    if nz == 0:
        why = f"no non-zero {source} values" if n else f"no {source} values"
        return UnitDecision(quantity, "fraction", f"{why}: every reading agrees", n, n, tally=tally)
    share = above / nz
    what = f"{above} of {nz} non-zero {source} values above 1"
    if share <= FRACTION_MAX_ABOVE_ONE:
        return UnitDecision(quantity, "fraction", what, n, tally.agree[0], tally=tally)
    if share >= PERCENT_MIN_ABOVE_ONE:
        return UnitDecision(quantity, "percent", what, n, tally.agree[1], tally=tally)
    return UnitDecision(quantity, None, f"conflicting evidence: {what}", n, 0, tally=tally)


def decide_unit(quantity: str, tally: UnitTally) -> UnitDecision:
    """The decision ``tally`` gives for ``quantity`` (``"ram"``, ``"vram"``, ``"cpu_load"``,
    ``"gpu_load"``): the fleet's own decision when ``tally`` is the sum of its shards'
    (:attr:`UnitDecision.tally`); its ``how`` line lacks only the median ratio."""
    if quantity in ("ram", "vram"):
        return _decide_size(quantity, tally, SOURCES[quantity])
    return _decide_load(quantity, tally, SOURCES[quantity])


def implausible_sizes(free: F64, total: F64, known_gb: F64) -> B:
    """Per node (GPU), sizes already in GB that cannot be right: a negative free or total,
    free above total, or a total off the known total by more than :data:`SIZE_TOLERANCE`.
    NaN values are not implausible (they are unknown). A ratio beyond floats (overflowing to
    inf, or underflowing to 0) is implausible, without numpy's warning."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore", under="ignore"):
        bad = (free < 0) | (total < 0) | (free > total * (1.0 + _EPS))
        ratio = total / known_gb
        bad |= (known_gb > 0) & ((ratio > SIZE_TOLERANCE) | (ratio < 1.0 / SIZE_TOLERANCE))
    out: B = bad
    return out


def implausible_loads(load: F64) -> B:
    """Loads already converted to fractions that cannot be right (outside [0, 1])."""
    with np.errstate(invalid="ignore"):
        out: B = (load < 0) | (load > 1.0 + _EPS)
    return out
