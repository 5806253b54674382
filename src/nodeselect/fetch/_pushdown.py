"""Why the server returned few or no nodes: what each pushed-down filter removed.

A job's statuses, geography and compliance tags can only be evaluated by the API (the node
document does not carry them), so :meth:`NodeQuery.from_job` pushes them down and the engine
never sees the nodes they exclude. When that leaves few or no nodes, the engine alone can only
say "0 nodes evaluated". :func:`explain_pushdown` asks the server instead, with cheap count
probes (``limit=1``, read ``total``):

* ``matched``: nodes that pass every pushed-down filter;
* ``considered``: nodes that pass none of them in particular (every pushed-down filter dropped,
  ``include_deleted`` kept as the job asked);
* per filter ``F``: ``without`` = nodes passing every pushed-down filter except ``F``; then
  ``rejected[F] = without - matched`` are the nodes that ``F`` *alone* removes — the server-side
  twin of a nearest miss ("37 AVAILABLE nodes in AF, none tagged GDPR").

Counts of a query whose expansion needs an intersection (two compliance tags) are upper
bounds; :class:`PushdownReport.exact` says whether every count was exact. The probes cost one
request per server query of each dropped-filter query, a handful for a typical job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import attrs

from nodeselect.fetch._query import NodeQuery

__all__ = ["PUSHDOWN_FILTERS", "Counter", "PushdownMiss", "PushdownReport", "explain_pushdown"]

#: Job keys that a query can push down, with the :class:`NodeQuery` field each one sets.
PUSHDOWN_FILTERS: Final = (
    ("placement.statuses", "statuses"),
    ("placement.continents", "continents"),
    ("placement.countries", "countries"),
    ("placement.subdivisions", "subdivisions"),
    ("placement.compliance", "compliance"),
)


#: Counts the nodes matching a query on the server (``Client.count``); a plain ``int`` is
#: taken as exact, a :class:`~nodeselect.NodeCount` says whether it is.
Counter = Callable[[NodeQuery], int]


def _phrase(query: NodeQuery, skip: str | None) -> str:
    """``"AVAILABLE nodes in AF"``: the values of every pushed-down filter except ``skip``."""
    head = "nodes"
    if query.statuses and skip != "statuses":
        head = f"{'/'.join(sorted(query.statuses))} nodes"
    where: list[str] = []
    for field in ("continents", "countries", "subdivisions"):
        values = getattr(query, field)
        if values and skip != field:
            where.append("/".join(sorted(values)))
    tail = f" in {' and '.join(where)}" if where else ""
    tags = ""
    if query.compliance and skip != "compliance":
        tags = f" tagged {' and '.join(sorted(query.compliance))}"
    return f"{head}{tail}{tags}"


def _failing(query: NodeQuery, field: str) -> str:
    values = "/".join(sorted(getattr(query, field)))
    return {
        "statuses": f"none {values}",
        "continents": f"none in {values}",
        "countries": f"none in {values}",
        "subdivisions": f"none in {values}",
        "compliance": f"none tagged {values}",
    }[field]


@attrs.frozen
class PushdownMiss:
    """Nodes that one pushed-down filter alone keeps out.

    Attributes:
        key: the job key (``placement.compliance``).
        without: nodes matching every other pushed-down filter.
        removed: ``without - matched``: nodes this filter alone removes.
        advice: one sentence, e.g. ``"37 AVAILABLE nodes in AF, none tagged GDPR"``.
    """

    key: str
    without: int
    removed: int
    advice: str

    def __str__(self) -> str:
        return self.advice


@attrs.frozen
class PushdownReport:
    """What the server-side filters of one query removed (see the module docstring).

    Attributes:
        considered: nodes matching the query with every pushed-down filter dropped.
        matched: nodes matching the whole query.
        misses: one entry per pushed-down filter, most removed first.
        exact: every count was exact (no intersection of compliance tags was counted).
    """

    considered: int
    matched: int
    misses: tuple[PushdownMiss, ...]
    exact: bool

    @property
    def rejected(self) -> dict[str, int]:
        """Job key -> nodes that filter alone removes (zero counts left out)."""
        return {m.key: m.removed for m in self.misses if m.removed}

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (``plan --json``'s ``pushdown``)."""
        return {
            "considered": self.considered,
            "matched": self.matched,
            "exact": self.exact,
            "rejected": self.rejected,
            "misses": [
                {"key": m.key, "without": m.without, "removed": m.removed, "advice": m.advice}
                for m in self.misses
            ],
        }


def explain_pushdown(count: Counter, query: NodeQuery) -> PushdownReport | None:
    """Count what each pushed-down filter of ``query`` removed; ``None`` if it pushes none.

    ``count`` is usually a client's ``count`` method. Raises whatever it raises (an
    :class:`~nodeselect.APIError` when the server cannot be asked).
    """
    active = [(key, field) for key, field in PUSHDOWN_FILTERS if getattr(query, field)]
    if not active:
        return None
    exact = True

    def ask(q: NodeQuery) -> int:
        nonlocal exact
        c = count(q)
        exact &= getattr(c, "exact", True)
        return int(c)

    def dropping(*fields: str) -> NodeQuery:
        cleared: dict[str, Any] = dict.fromkeys(fields, frozenset())
        return attrs.evolve(query, **cleared)

    matched = ask(query)
    considered = ask(dropping(*(field for _, field in active)))
    misses: list[PushdownMiss] = []
    for key, field in active:
        without = ask(dropping(field))
        removed = max(without - matched, 0)
        if without == 0:
            advice = f"no {_phrase(query, field)} at all: {key} is not what empties the fleet"
        elif removed == 0:
            advice = f"{key} removes none of the {without} {_phrase(query, field)}"
        else:
            advice = f"{without} {_phrase(query, field)}, {_failing(query, field)}"
            if matched:
                advice = f"{without} {_phrase(query, field)}, {removed} of them not matching {key}"
        misses.append(PushdownMiss(key, without, removed, advice))
    misses.sort(key=lambda m: -m.removed)
    return PushdownReport(considered, matched, tuple(misses), exact)
