"""Node queries: a typed, validated, immutable filter, planned into the fewest server queries.

The List Nodes API takes each filter at most once, with one value. A :class:`NodeQuery` holds
*sets* of values, and :func:`expand_query` expands them:

* union dimensions (statuses, continents, countries, subdivisions, names, uuids, operators)
  become the cartesian product of single-valued server queries; a node matches if any returns it;
* compliance tags are an intersection: every branch of the product is asked once per tag, and a
  node matches only if *every* tag's query of its branch returned it (the fetcher intersects by
  uuid).

Every :class:`ServerQuery` knows the :class:`~nodeselect.documents.ProvedFacts` its results
prove: a node returned by ``filter[status]=AVAILABLE`` is proved AVAILABLE. ``DELETED`` in
``statuses`` switches ``include_deleted`` on (the server returns deleted nodes only then).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any, Final

import attrs

from nodeselect.documents import COMPLIANCE_TAGS, CONTINENTS, STATUSES, ProvedFacts
from nodeselect.errors import QueryError

if TYPE_CHECKING:
    from nodeselect.jobs import Job

__all__ = [
    "MAX_SERVER_QUERIES",
    "OPEN_END",
    "OPEN_START",
    "NodeQuery",
    "ServerQuery",
    "TimeBound",
    "TimeRange",
    "expand_query",
    "format_bound",
    "parse_time_range",
    "range_param",
]

#: The most server queries one :class:`NodeQuery` may expand into.
MAX_SERVER_QUERIES: Final = 64
#: The largest ``limit`` the API accepts.
MAX_LIMIT: Final = 50

#: What an open start of a range goes out as: the reference documents only ``START,END`` with
#: both ends (its example ``2023-01-01,2024-01-01``), so an open side becomes a far date.
OPEN_START: Final = "1970-01-01"
#: What an open end of a range goes out as (see :data:`OPEN_START`).
OPEN_END: Final = "9999-12-31"

TimeBound = date | datetime | None
TimeRange = tuple[TimeBound, TimeBound]

_COUNTRY: Final = re.compile(r"[A-Za-z]{2}")
_SUBDIVISION: Final = re.compile(r"[A-Za-z]{2}-[A-Za-z0-9]{1,3}")


def _strings(value: Iterable[str] | str | None) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset((value,))
    return frozenset(value)


def _enum_check(name: str, allowed: tuple[str, ...]) -> Any:
    def check(_inst: object, _attr: attrs.Attribute[Any], values: frozenset[str]) -> None:
        for v in sorted(values, key=str):
            if not isinstance(v, str) or v not in allowed:
                raise QueryError(
                    f"{name}: {v!r} is not a valid value; accepted: {', '.join(allowed)}"
                )

    return check


def _pattern_check(name: str, pattern: re.Pattern[str], example: str) -> Any:
    def check(_inst: object, _attr: attrs.Attribute[Any], values: frozenset[str]) -> None:
        for v in sorted(values, key=str):
            if not isinstance(v, str) or pattern.fullmatch(v) is None:
                raise QueryError(f"{name}: {v!r} is not an ISO code; expected e.g. {example!r}")

    return check


def _nonempty_check(name: str) -> Any:
    def check(_inst: object, _attr: attrs.Attribute[Any], values: frozenset[str]) -> None:
        for v in sorted(values, key=str):
            if not isinstance(v, str) or not v:
                raise QueryError(f"{name}: {v!r} is not accepted; expected a non-empty string")

    return check


def _upper(values: Iterable[str] | str | None) -> frozenset[str]:
    return frozenset(v.upper() if isinstance(v, str) else v for v in _strings(values))


def _as_instant(bound: date | datetime, name: str) -> datetime:
    if isinstance(bound, datetime):
        if bound.tzinfo is None or bound.utcoffset() is None:
            raise QueryError(
                f"{name}: the datetime {bound.isoformat()} has no time zone; "
                "pass an aware datetime (e.g. tzinfo=UTC) or a date"
            )
        return bound.astimezone(UTC)
    if isinstance(bound, date):
        return datetime.combine(bound, time(0), tzinfo=UTC)
    raise QueryError(f"{name}: expected a date, an aware datetime or None, got {bound!r}")


def _range_check(_inst: object, attr: attrs.Attribute[Any], value: TimeRange | None) -> None:
    if value is None:
        return
    if not isinstance(value, tuple) or len(value) != 2:
        raise QueryError(f"{attr.name}: expected a (start, end) pair, got {value!r}")
    start, end = value
    s = None if start is None else _as_instant(start, f"{attr.name} start")
    e = None if end is None else _as_instant(end, f"{attr.name} end")
    if s is not None and e is not None and s > e:
        raise QueryError(
            f"{attr.name}: the range is inverted (start {format_bound(start)} is after end "
            f"{format_bound(end)}); give start <= end"
        )


def _limit_check(_inst: object, _attr: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise QueryError(f"limit: {value!r} is outside 1..{MAX_LIMIT}; the API pages at most 50")


def format_bound(bound: TimeBound) -> str:
    """A range bound in the form the reference shows: ``2024-01-01`` or ``2024-01-01T00:00:00Z``
    (UTC, ``Z``; a fraction only when needed: ``.229Z`` or ``.229123Z``); ``""`` for ``None``."""
    if bound is None:
        return ""
    if isinstance(bound, datetime):
        dt = bound.astimezone(UTC)
        base = (
            f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}"
            f"T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
        )
        us = dt.microsecond
        if us == 0:
            return base + "Z"
        if us % 1000 == 0:
            return f"{base}.{us // 1000:03d}Z"
        return f"{base}.{us:06d}Z"
    return bound.isoformat()


def range_param(start: TimeBound, end: TimeBound) -> str:
    """``START,END`` for a ``filter[...]`` range, both ends always present (an open side is
    :data:`OPEN_START` / :data:`OPEN_END`)."""
    s = format_bound(start) if start is not None else OPEN_START
    e = format_bound(end) if end is not None else OPEN_END
    return f"{s},{e}"


def _parse_bound(text: str, name: str) -> TimeBound:
    text = text.strip()
    if not text:
        return None
    try:
        if "T" in text or "t" in text or " " in text:
            dt = datetime.fromisoformat(text.replace("z", "Z"))
            if dt.tzinfo is None:
                raise QueryError(
                    f"{name}: {text!r} has no time zone; add 'Z' or an offset like '+02:00'"
                )
            return dt
        return date.fromisoformat(text)
    except ValueError:
        raise QueryError(
            f"{name}: {text!r} is not an ISO date or datetime; expected e.g. "
            "'2024-01-01' or '2024-01-01T12:00:00Z'"
        ) from None


def parse_time_range(text: str, name: str = "range") -> TimeRange:
    """Parse ``"START,END"`` (either side may be empty) into a validated pair of bounds."""
    if text.count(",") != 1:
        raise QueryError(
            f"{name}: {text!r} is not 'START,END'; e.g. '2024-01-01,2024-06-30' or ',2024-06-30'"
        )
    a, b = text.split(",")
    pair = (_parse_bound(a, name), _parse_bound(b, name))
    s = None if pair[0] is None else _as_instant(pair[0], name)
    e = None if pair[1] is None else _as_instant(pair[1], name)
    if s is not None and e is not None and s > e:
        raise QueryError(f"{name}: the range {text!r} is inverted; give START <= END")
    return pair


@attrs.frozen
class NodeQuery:
    """Which nodes to fetch. Every field is optional; an empty query fetches every live node.

    Attributes:
        statuses: node statuses, any of (``STATUSES``). ``DELETED`` implies include_deleted.
        continents: continent codes, any of (``AF AN AS EU NA OC SA``).
        countries: ISO 3166-1 alpha-2 codes, any of (case-insensitive, stored upper-case).
        subdivisions: ISO 3166-2 codes such as ``US-CA``, any of.
        compliance: compliance tags (``GDPR``, ``EEA``), *all* of.
        names / uuids / operators: exact node names / node uuids / operator account uuids, any of.
        created_between / seen_between: inclusive ``(start, end)`` of dates or aware datetimes
            (either side ``None`` = open) on ``created_at`` / ``last_seen_at``.
        include_deleted: also return deleted nodes.
        limit: page size, 1..50 (default 50: the fewest requests).
        pushed_down: which job requirements this query enforces server-side (from_job).

    Raises:
        QueryError: on any invalid value (the message names the field and what is accepted).
    """

    statuses: frozenset[str] = attrs.field(
        default=frozenset(), converter=_upper, validator=_enum_check("statuses", STATUSES)
    )
    continents: frozenset[str] = attrs.field(
        default=frozenset(), converter=_upper, validator=_enum_check("continents", CONTINENTS)
    )
    countries: frozenset[str] = attrs.field(
        default=frozenset(), converter=_upper, validator=_pattern_check("countries", _COUNTRY, "US")
    )
    subdivisions: frozenset[str] = attrs.field(
        default=frozenset(),
        converter=_upper,
        validator=_pattern_check("subdivisions", _SUBDIVISION, "US-CA"),
    )
    compliance: frozenset[str] = attrs.field(
        default=frozenset(),
        converter=_upper,
        validator=_enum_check("compliance", COMPLIANCE_TAGS),
    )
    names: frozenset[str] = attrs.field(
        default=frozenset(), converter=_strings, validator=_nonempty_check("names")
    )
    uuids: frozenset[str] = attrs.field(
        default=frozenset(), converter=_strings, validator=_nonempty_check("uuids")
    )
    operators: frozenset[str] = attrs.field(
        default=frozenset(), converter=_strings, validator=_nonempty_check("operators")
    )
    created_between: TimeRange | None = attrs.field(default=None, validator=_range_check)
    seen_between: TimeRange | None = attrs.field(default=None, validator=_range_check)
    include_deleted: bool = False
    limit: int = attrs.field(default=MAX_LIMIT, validator=_limit_check)
    pushed_down: tuple[str, ...] = ()

    def __attrs_post_init__(self) -> None:
        if "DELETED" in self.statuses and not self.include_deleted:
            # The server returns deleted nodes only with include_deleted=true.
            object.__setattr__(self, "include_deleted", True)
        expand_query(self)  # raises QueryError if the expansion is too large

    @classmethod
    def from_job(cls, job: Job, *, limit: int = MAX_LIMIT) -> NodeQuery:
        """The server-side part of a job's placement needs (statuses, geography, compliance,
        deleted nodes); the rest is checked client-side by the engine."""
        p = job.placement
        pushed: list[str] = []
        if p.statuses:
            pushed.append("placement.statuses")
        if p.continents:
            pushed.append("placement.continents")
        if p.countries:
            pushed.append("placement.countries")
        if p.subdivisions:
            pushed.append("placement.subdivisions")
        if p.compliance:
            pushed.append("placement.compliance")
        if p.allow_deleted:
            pushed.append("placement.allow_deleted")
        return cls(
            statuses=p.statuses,
            continents=p.continents,
            countries=p.countries,
            subdivisions=p.subdivisions,
            compliance=p.compliance,
            include_deleted=p.allow_deleted or "DELETED" in p.statuses,
            limit=limit,
            pushed_down=tuple(pushed),
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description (sorted lists, ranges as ``"START,END"``), for snapshots."""
        out: dict[str, Any] = {}
        for name in (
            "statuses",
            "continents",
            "countries",
            "subdivisions",
            "compliance",
            "names",
            "uuids",
            "operators",
        ):
            values = getattr(self, name)
            if values:
                out[name] = sorted(values)
        for name in ("created_between", "seen_between"):
            rng = getattr(self, name)
            if rng is not None:
                out[name] = f"{format_bound(rng[0])},{format_bound(rng[1])}"
        if self.include_deleted:
            out["include_deleted"] = True
        out["limit"] = self.limit
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NodeQuery:
        """Rebuild a query from :meth:`to_json` output (raises QueryError on bad values)."""
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in ("created_between", "seen_between"):
                kwargs[key] = parse_time_range(str(value), key)
            elif key in attrs.fields_dict(cls) and key != "pushed_down":
                kwargs[key] = value
            else:
                raise QueryError(f"query: unknown key {key!r}")
        return cls(**kwargs)


@attrs.frozen
class ServerQuery:
    """One single-valued List Nodes query (without ``page``/``limit``/``sort``).

    Attributes:
        params: the ``filter[...]`` parameters, sorted.
        facts: what a node returned by this query is proved to be.
        branch: the union branch; queries of one branch differ only in their compliance tag and
            a node belongs to the branch only if every one of them returned it.
    """

    params: tuple[tuple[str, str], ...]
    facts: ProvedFacts
    branch: int

    def describe(self) -> str:
        """``filter[status]=AVAILABLE&...`` for messages (no secrets live in params)."""
        return "&".join(f"{k}={v}" for k, v in self.params) or "(no filter)"


def _options(values: frozenset[str]) -> list[str | None]:
    out: list[str | None] = [*sorted(values)] if values else [None]
    return out


def expand_query(query: NodeQuery) -> list[ServerQuery]:
    """Expand ``query`` into server queries (see the module doc for the semantics).

    Raises:
        QueryError: when the expansion exceeds ``MAX_SERVER_QUERIES``.
    """
    dims = (
        _options(query.statuses),
        _options(query.continents),
        _options(query.countries),
        _options(query.subdivisions),
        _options(query.names),
        _options(query.uuids),
        _options(query.operators),
    )
    tags: list[str | None] = _options(query.compliance)
    count = len(tags)
    for d in dims:
        count *= len(d)
    if count > MAX_SERVER_QUERIES:
        sizes = " x ".join(str(len(d)) for d in (*dims, tags) if len(d) > 1)
        raise QueryError(
            f"the query expands into {count} server queries ({sizes}); at most "
            f"{MAX_SERVER_QUERIES} are allowed: give fewer values per filter"
        )
    common: list[tuple[str, str]] = []
    if query.created_between is not None:
        s, e = query.created_between
        common.append(("filter[created_at]", range_param(s, e)))
    if query.seen_between is not None:
        s, e = query.seen_between
        common.append(("filter[last_seen_at]", range_param(s, e)))
    if query.include_deleted:
        common.append(("filter[include_deleted]", "true"))
    out: list[ServerQuery] = []
    for branch, combo in enumerate(itertools.product(*dims)):
        status, continent, country, subdivision, name, uuid, operator = combo
        base = list(common)
        for key, value in (
            ("filter[status]", status),
            ("filter[continent_code]", continent),
            ("filter[country_iso_code]", country),
            ("filter[subdivision_iso_code]", subdivision),
            ("filter[name]", name),
            ("filter[uuid]", uuid),
            ("filter[operator_account_uuid]", operator),
        ):
            if value is not None:
                base.append((key, value))
        for tag in tags:
            params = [*base, ("filter[compliance_tags]", tag)] if tag else base
            facts = ProvedFacts(
                status=status,
                compliance_tags=frozenset((tag,)) if tag else frozenset(),
                continent=continent,
                country=country,
                subdivision=subdivision,
            )
            out.append(ServerQuery(tuple(sorted(params)), facts, branch))
    return out
