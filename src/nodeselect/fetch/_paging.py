"""Paging without I/O: the plan the sync and async clients share (they only run its requests).

A fetch is a few *rounds*; every round is a batch of independent requests the client runs
concurrently, and :meth:`Pager.next_requests` decides the next batch from the answers.
Every request uses only the forms the reference documents: ranges with both ends, timestamps
like ``2023-11-07T05:31:56Z`` (a fraction only when needed), one value per filter.

For each server query:

1. **Probe** (one round): ``sort=-created_at``, page 1. It gives the total ``T0`` and the
   newest node ``N``, and shows whether the server sorts at all (the page must be newest first).
2. **Bound**: ``[L, U]`` with ``U`` = ``N``'s ``created_at`` *rounded up* by one unit of the
   precision it was written with (``…:02Z`` -> ``…:03Z``, ``….229Z`` -> ``….230Z``): whatever
   precision the server stores, ``N`` is inside. ``L`` is the query's own start, else
   :data:`~nodeselect.fetch._query.OPEN_START` (``1970-01-01``: the reference documents no open
   range end). A user's own range end is kept when it is narrower.
3. **First pass** (one round): pages ``1..ceil(T0/limit)`` of ``[L, U]`` sorted by
   ``created_at``, plus three counts (the whole query, before ``L``, after ``U``). It is a proof
   when every page reports the same total ``B``, the pages hold ``B`` distinct uuids, and the
   counts balance (``whole = before + B + after``: no node outside every range).
4. **Repair** (only when the pass is not a proof): the range is split into *parts*, each proved
   on its own by one consistent answer: a part whose ``total`` fits one page is proved by that
   page alone (one response is one snapshot). Parts too big are split again: by time at the
   ``created_at`` values seen (windows ``[a, b-1µs]``, ``[b, …]``, contiguous), and a single
   instant shared by more nodes than a page holds (bulk registration) is read through its
   static superset with ``include_deleted`` until a union of equal-total rounds proves it,
   keeping only nodes a live read or a ``filter[uuid]`` lookup returned (``_tie_start``).
   A part that cannot be split is re-read until the union of its pages reaches its count. A
   request budget bounds it all.
5. **Verdict**: ``complete`` only when the whole range is covered by proved parts, the probe
   nodes were returned (or are proved gone), nothing lies outside every range, and every node
   returned satisfies its request's checkable filters (uuid, name, operator, the ranges).

Nodes found through a split carry the facts of their *server query* only: a status split
proves a status, but the node table must not depend on the path a node took, so nothing is
added.

Results of the server queries are intersected by uuid within a branch (compliance tags, all
of) and unioned across branches; facts proved for one node by several queries are merged.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

import attrs

from nodeselect.documents import ProvedFacts
from nodeselect.fetch._decode import DecodedPage
from nodeselect.fetch._query import (
    OPEN_END,
    OPEN_START,
    NodeQuery,
    ServerQuery,
    expand_query,
    format_bound,
)
from nodeselect.fetch._result import FetchedNode, FetchResult, FetchStats, Rejected

__all__ = ["DEFAULT_MAX_PAGES", "DEFAULT_REPAIR_BUDGET", "PageRequest", "Pager", "Progress"]

#: The most page requests (first pass, all server queries) one fetch may make by default.
DEFAULT_MAX_PAGES = 10_000
#: Repair requests one fetch may make at least (the budget is this or 3x the first pass).
DEFAULT_REPAIR_BUDGET = 2_000

Progress = Callable[[int, int], None]
Params = tuple[tuple[str, str], ...]

_DAY_US: Final = 86_400 * 1_000_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_TS: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?([Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)
_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_MAX_REREADS: Final = 8
_MAX_TIE_READS: Final = 24
_DELETED_TOO: Final = (("filter[include_deleted]", "true"),)
_MAX_DEPTH: Final = 80
_FILL: Final = 0.8  # aim split parts at 80 % of a page


_ONE_US: Final = timedelta(microseconds=1)


def _stamp(text: str | None) -> tuple[int, int] | None:
    """``(µs since the epoch, floored; one unit of the written precision in µs)`` or None.

    The reference's own form (``2023-11-07T05:31:56[.f]Z`` or ``+hh:mm``) takes a C-speed path
    (``datetime.fromisoformat``), several times faster than the general parser below, which
    it equals on every input it accepts (tests/fetch/test_fetch_proof.py); anything else goes there.
    """
    if not isinstance(text, str):
        return None
    t = text.strip()
    if len(t) >= 20 and t[10] == "T" and t[13] == ":" and t[16] == ":":
        end = 19
        if t[19] == ".":
            end = 20
            while end < len(t) and t[end].isdigit():
                end += 1
        zone = t[end:]
        digits = end - 20
        if (zone == "Z" or (len(zone) == 6 and zone[0] in "+-" and zone[3] == ":")) and (
            end == 19 or digits > 0
        ):
            try:
                dt = datetime.fromisoformat(t)
            except ValueError:
                return _stamp_general(t)
            us = (dt - _EPOCH) // _ONE_US
            return us, (1_000_000 if end == 19 else 10 ** (6 - digits) if digits < 6 else 1)
    return _stamp_general(t)


def _stamp_general(text: str) -> tuple[int, int] | None:
    """:func:`_stamp` for every form the fetcher accepts (lower-case ``t``/``z``, a space,
    no seconds, any fraction length), by regular expression."""
    m = _TS.fullmatch(text.strip())
    if m is None:
        return None
    y, mo, d, h, mi = (int(g) for g in m.group(1, 2, 3, 4, 5))
    sec = int(m.group(6) or 0)
    frac = m.group(7) or ""
    zone = m.group(8).upper()
    try:
        dt = datetime(y, mo, d, h, mi, sec, tzinfo=UTC)
    except ValueError:
        return None
    us = (dt - _EPOCH) // timedelta(microseconds=1) + int((frac + "000000")[:6] or 0)
    if zone != "Z":
        sign = -1 if zone[0] == "+" else 1
        us += sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * 1_000_000
    if m.group(6) is None:
        return us, 60_000_000
    return us, 10 ** (6 - len(frac)) if len(frac) < 6 else 1


def _bound_us(text: str) -> tuple[int, bool] | None:
    """A range end as µs, and whether it is a plain date (a server may read it as a day)."""
    text = text.strip()
    if _DATE.fullmatch(text):
        try:
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            return None
        return (day - _EPOCH) // timedelta(microseconds=1), True
    st = _stamp(text)
    return None if st is None else (st[0], False)


def _fmt(us: int) -> str:
    """µs since the epoch in the reference's form, with the shortest exact fraction."""
    return format_bound(_EPOCH + timedelta(microseconds=us))


def _range_of(params: Params, key: str) -> tuple[str, str] | None:
    for k, v in params:
        if k == key:
            a, _, b = v.partition(",")
            return a, b
    return None


_Bound = tuple[int, bool] | None


class _Checks:
    """The filters of one request that a returned node can be checked against, parsed once
    per response (not once per node)."""

    __slots__ = ("created", "exact", "seen")

    def __init__(self, params: Params) -> None:
        values = dict(params)
        self.exact = [
            (attr, values[key])
            for key, attr in (
                ("filter[uuid]", "uuid"),
                ("filter[name]", "name"),
                ("filter[operator_account_uuid]", "operator_account_uuid"),
            )
            if key in values
        ]
        self.created = self._bounds(_range_of(params, "filter[created_at]"))
        self.seen = self._bounds(_range_of(params, "filter[last_seen_at]"))

    @staticmethod
    def _bounds(rng: tuple[str, str] | None) -> tuple[_Bound, _Bound] | None:
        return None if rng is None else (_bound_us(rng[0]), _bound_us(rng[1]))

    def violation(
        self, lean: object, created: tuple[int, int] | None, seen: tuple[int, int] | None
    ) -> str | None:
        """The name of a checkable filter the node fails (with its value), or None."""
        for attr, want in self.exact:
            have = getattr(lean, attr, None)
            if have is not None and have != want:
                return f"{attr} {have!r}"
        for bounds, value, name in (
            (self.created, created, "created_at"),
            (self.seen, seen, "last_seen_at"),
        ):
            if bounds is None:
                continue
            if value is None:
                return f"{name} (missing)"
            a, b = bounds
            us, unit = value
            if a is not None and us + unit <= a[0]:
                return f"{name} {_fmt(us)}"
            if b is not None and us - unit > b[0] + (_DAY_US if b[1] else 0):
                return f"{name} {_fmt(us)}"
        return None


@attrs.frozen
class PageRequest:
    """One GET to make.

    Attributes:
        index: the server query it belongs to.
        page: the page number (1-based).
        params: every query parameter, in order.
        facts: what the returned nodes are proved to be.
        kind: ``"probe_new"``, ``"part"``, ``"gap"``, ``"lookup"``, or for a tie group read
            through its static superset ``"tie_p"``, ``"tie_live"``, ``"tie_lookup"``.
        part: the part of the range it reads (``-1`` for probes, counts and lookups).
        tag: what a count is for (``"whole"``, ``"before"``, ``"after"``, ``"bound"``) or the
            uuid a lookup looks for.
    """

    index: int
    page: int
    params: Params
    facts: ProvedFacts
    kind: str
    part: int = -1
    tag: str = ""

    @property
    def limit(self) -> int | None:
        """The ``limit`` it asks for: a page holding more nodes breaks the protocol."""
        for k, v in self.params:
            if k == "limit":
                return int(v) if v.isdigit() else None
        return None


class _Part:
    """A piece of one server query's bounded range, proved on its own."""

    def __init__(  # noqa: PLR0917 - private, built in two places
        self,
        pid: int,
        lo: int | None,
        hi: int | None,
        lo_text: str,
        hi_text: str,
        extra: Params,
        parent: int,
        depth: int,
    ) -> None:
        self.pid = pid
        self.lo, self.hi, self.lo_text, self.hi_text = lo, hi, lo_text, hi_text
        self.extra = extra
        self.parent = parent
        self.depth = depth
        self.state = "count"  # count | pages | reread | split | wait | proved | failed | dropped
        self.expected_pages = 1
        self.read: dict[int, tuple[int, list[str], int]] = {}  # page -> (total, uuids, anon)
        self.union: set[str] = set()
        self.reads = 0
        self.total: int | None = None
        self.seen_created: list[int] = []
        self.children: list[int] = []
        self.reason = ""
        # A tie group read through its static superset (``include_deleted``): per round, the
        # totals and uuids of its pages; the live-read and lookup bookkeeping.
        self.tie_rounds: list[tuple[set[int], set[str], int]] = []
        self.tie_pages = 0
        self.tie_live_pages = 0
        self.tie_live_total: int | None = None
        self.tie_candidates: list[int] = []
        self.tie_lookups: dict[str, int] = {}

    def describe(self) -> str:
        where = f"created_at={self.lo_text},{self.hi_text}"
        return "&".join([where, *(f"{k}={v}" for k, v in self.extra)])


class _Query:
    """What one server query has seen so far."""

    def __init__(self, sq: ServerQuery, limit: int) -> None:
        self.sq = sq
        self.limit = limit
        self.total0: int | None = None
        self.probes: dict[str, DecodedPage] = {}
        self.nodes: dict[str, FetchedNode] = {}
        self.rejected: dict[str, Rejected] = {}
        self.anonymous_rejected: list[Rejected] = []
        self.parts: list[_Part] = []
        self.lo: int | None = None
        self.hi: int | None = None
        self.lo_text = ""
        self.hi_text = ""
        self.user_range: tuple[str, str] | None = _range_of(sq.params, "filter[created_at]")
        self.issues: list[str] = []
        self.unproved = False  # something makes a proof impossible
        self.broken = False  # the server's answers cannot be trusted: stop asking
        self.pages_needed = 0
        self.capped = False
        self.first_totals: list[int] = []
        self.first_pages: dict[int, list[tuple[str, int | None]]] = {}
        self.gaps: dict[str, int] = {}
        self.gap_rounds = 0
        self.gap_ok: bool | None = None
        self.lookups: dict[str, int] = {}
        self.bounded_seen: set[str] = set()
        self.residuals: list[tuple[int, int]] = []
        self.drift = False
        self.unstable = False
        self.repeats = False

    def where(self) -> str:
        return self.sq.describe()

    def flag(self, text: str, *, broken: bool = False) -> None:
        self.unproved = True
        self.broken |= broken
        if text not in self.issues:
            self.issues.append(text)


class Pager:
    """The sans-I/O state of one fetch.

    Use: ``while reqs := plan.next_requests(): run every request, plan.record(req, page)``,
    then :meth:`finish`. Every batch's requests are independent and may run concurrently;
    :meth:`next_requests` must be called only after every request of the last batch was
    recorded.
    """

    def __init__(
        self,
        query: NodeQuery,
        *,
        max_pages: int = DEFAULT_MAX_PAGES,
        progress: Progress | None = None,
        repair_budget: int | None = None,
        store: Callable[[FetchedNode], FetchedNode] | None = None,
    ) -> None:
        self.query = query
        # what is stored of each node matched (a lighter stand-in, for a fetch that writes
        # the documents elsewhere as they arrive: nodeselect.fetch.fetch_sharded); streamed
        # nodes (take_new) are the nodes as received
        self._store = store
        self.server_queries = expand_query(query)
        self.max_pages = max_pages
        self.limit = query.limit
        self._qs = [_Query(sq, query.limit) for sq in self.server_queries]
        self._progress = progress
        self.pages_done = 0
        self.pages_total = 0
        self.fetched_at = datetime.now(UTC)
        self._stage = "start"
        self._repair_budget = repair_budget
        self.repair_requests = 0
        self.first_pass_requests = 0
        self.budget_spent = False
        # Streaming: nodes proved to match, each once, handed out by take_new().
        self._fresh: list[FetchedNode] = []
        self._emitted: set[str] = set()
        self._seen_by: dict[str, set[int]] = {}
        members: dict[int, set[int]] = {}
        for i, q in enumerate(self._qs):
            members.setdefault(q.sq.branch, set()).add(i)
        self._members = {b: frozenset(v) for b, v in members.items()}

    # -- streaming ------------------------------------------------------------------------

    def take_new(self) -> list[FetchedNode]:
        """The nodes that matched for the first time since the last call: each node of the
        fetch once, as soon as its server queries returned it (every query of its branch, for
        several compliance tags). The final result holds every one of them."""
        out, self._fresh = self._fresh, []
        return out

    def _found(self, i: int, node: FetchedNode) -> None:
        if node.uuid in self._emitted:
            return
        members = self._members[self._qs[i].sq.branch]
        if len(members) > 1:
            seen = self._seen_by.setdefault(node.uuid, set())
            seen.add(i)
            if not members <= seen:
                return
        self._emitted.add(node.uuid)
        self._fresh.append(node)

    def _room(self, part: _Part, pages: int, total: int) -> bool:
        """Whether ``pages`` more requests fit the repair budget; else the part fails (a
        server claiming a total of 10**12 must not make a list of 2*10**10 requests)."""
        room = self._budget() - self.repair_requests
        if pages <= room:
            return True
        part.state = "failed"
        part.reason = (
            f"its total of {total} needs {pages} page requests, more than the {max(room, 0)} "
            "left in the repair budget"
        )
        self.budget_spent = True
        return False

    # -- progress -------------------------------------------------------------------------

    def _tick(self) -> None:
        self.pages_done += 1
        if self._progress is not None:
            self._progress(self.pages_done, max(self.pages_total, self.pages_done))

    # -- request building -----------------------------------------------------------------

    def _params(
        self, q: _Query, created: tuple[str, str] | None, extra: Params, tail: Params
    ) -> Params:
        drop = {k for k, _ in extra}
        if created is not None:
            drop.add("filter[created_at]")
        base = [(k, v) for k, v in q.sq.params if k not in drop]
        if created is not None:
            base.append(("filter[created_at]", f"{created[0]},{created[1]}"))
        base.extend(extra)
        return (*sorted(base), *tail)

    def _tail(self, page: int, limit: int | None = None, sort: str | None = "created_at") -> Params:
        lim = self.limit if limit is None else limit
        head: Params = (("sort", sort),) if sort is not None else ()
        return (*head, ("limit", str(lim)), ("page", str(page)))

    def _part_request(self, i: int, part: _Part, page: int) -> PageRequest:
        created = None if part.lo is None else (part.lo_text, part.hi_text)
        params = self._params(self._qs[i], created, part.extra, self._tail(page))
        return PageRequest(i, page, params, self._qs[i].sq.facts, "part", part.pid)

    def _count_request(self, i: int, created: tuple[str, str] | None, tag: str) -> PageRequest:
        params = self._params(self._qs[i], created, (), self._tail(1, 1, None))
        return PageRequest(i, 1, params, self._qs[i].sq.facts, "gap", -1, tag)

    # -- the rounds -----------------------------------------------------------------------

    def next_requests(self) -> list[PageRequest]:
        """The next batch of independent requests; empty when the fetch is over."""
        if self._stage == "start":
            self._stage = "probe"
            out = []
            for i, q in enumerate(self._qs):
                params = self._params(q, None, (), self._tail(1, sort="-created_at"))
                out.append(PageRequest(i, 1, params, q.sq.facts, "probe_new"))
            return self._issue(out)
        if self._stage == "probe":
            self._stage = "repair"
            out = self._first_pass()
            self.first_pass_requests = len(out)
            return self._issue(out)
        out = []
        for i, q in enumerate(self._qs):
            # A query past the page cap cannot be proved whatever is re-read: no repair.
            if not q.broken and not q.capped:
                out.extend(self._advance(i, q))
        budget = self._budget()
        if out and self.repair_requests + len(out) > budget:
            self.budget_spent = True
            out = []
        if out:
            self.repair_requests += len(out)
            return self._issue(out)
        if self._stage == "repair":
            self._stage = "lookup"
            out = self._lookups()
            return self._issue(out)
        return []

    def _issue(self, reqs: list[PageRequest]) -> list[PageRequest]:
        self.pages_total += len(reqs)
        return reqs

    def _budget(self) -> int:
        if self._repair_budget is not None:
            return self._repair_budget
        return max(DEFAULT_REPAIR_BUDGET, 3 * self.first_pass_requests)

    def _first_pass(self) -> list[PageRequest]:
        out: list[PageRequest] = []
        budget = self.max_pages
        for i, q in enumerate(self._qs):
            new = q.probes.get("probe_new")
            if new is None:  # pragma: no cover - the client records every answer
                continue
            q.total0 = new.total
            self._check_probe(q, new)
            if q.total0 == 0:
                continue
            root = self._root(q, new)
            needed = math.ceil(q.total0 / self.limit)
            q.pages_needed = needed
            take = min(needed, max(budget, 0))
            if take < needed:
                q.capped = True
                q.flag(
                    f"{q.where()}: {needed} pages needed but the page cap is {self.max_pages}; "
                    "raise max_pages or narrow the query"
                )
            budget -= take
            root.state = "pages"
            root.expected_pages = take
            out.extend(self._part_request(i, root, p) for p in range(1, take + 1))
            if root.lo is not None and not q.capped:
                out.extend(self._gap_requests(i, q))
        return out

    def _gap_requests(self, i: int, q: _Query) -> list[PageRequest]:
        """Counts that must balance with the bound's total: the whole query, before, after."""
        assert q.lo is not None
        assert q.hi is not None
        start, end = q.user_range if q.user_range is not None else (OPEN_START, OPEN_END)
        out = [self._count_request(i, None, "whole")]
        s = _bound_us(start)
        e = _bound_us(end)
        if q.lo_text != start and (s is None or s[0] < q.lo):
            out.append(self._count_request(i, (start, _fmt(q.lo - 1)), "before"))
        if q.hi_text != end and (e is None or e[0] > q.hi):
            out.append(self._count_request(i, (_fmt(q.hi + 1), end), "after"))
        if q.gap_rounds > 0:
            out.append(self._count_request(i, (q.lo_text, q.hi_text), "bound"))
        q.gap_rounds += 1
        q.gaps = {}
        return out

    def _check_probe(self, q: _Query, new: DecodedPage) -> None:
        """The probe page must be sorted newest first, as asked."""
        a = [st[0] for n in new.nodes if (st := _stamp(n.lean.created_at)) is not None]
        if any(x < y for x, y in itertools.pairwise(a)):
            q.flag(
                f"{q.where()}: the server did not sort by created_at as asked (the probe page "
                "with sort=-created_at is not newest first): the newest node, and so the bound, "
                "cannot be proved"
            )

    def _root(self, q: _Query, new: DecodedPage) -> _Part:
        """The bound ``[L, U]``: the query's own start (or :data:`OPEN_START`), and the newest
        node's ``created_at`` rounded up by one unit of its written precision (or the query's
        own end when that is narrower)."""
        newest = _stamp(new.nodes[0].lean.created_at) if new.nodes else None
        if newest is None:
            q.flag(
                f"{q.where()}: the probe's newest node has no readable created_at, so no "
                "created_at range can be proved to hold every node; fetched unbounded"
            )
            root = _Part(0, None, None, "", "", (), -1, 0)
            q.parts.append(root)
            return root
        start, end = q.user_range if q.user_range is not None else (OPEN_START, OPEN_END)
        s, e = _bound_us(start), _bound_us(end)
        lo, lo_text = (s[0] if s is not None else 0), start
        hi = newest[0] + newest[1]
        hi_text = _fmt(hi)
        if e is not None and e[0] <= hi:
            hi, hi_text = e[0] + (_DAY_US - 1 if e[1] else 0), end
        hi = max(hi, lo)
        q.lo, q.hi, q.lo_text, q.hi_text = lo, hi, lo_text, hi_text
        root = _Part(0, lo, hi, lo_text, hi_text, (), -1, 0)
        q.parts.append(root)
        return root

    # -- recording ------------------------------------------------------------------------

    def record(self, req: PageRequest, page: DecodedPage) -> None:
        """Take the answer to ``req``."""
        q = self._qs[req.index]
        self._tick()
        if req.kind == "probe_new":
            q.probes[req.kind] = page
            self._keep(q, page, None, req)
            return
        if req.kind == "gap":
            q.gaps[req.tag] = page.total
            return
        if req.kind == "lookup":
            q.lookups[req.tag] = page.total
            self._keep(q, page, None, req)
            return
        part = q.parts[req.part]
        if req.kind in ("tie_p", "tie_live", "tie_lookup"):
            self._record_tie(q, part, req, page)
            return
        items = self._keep(q, page, part, req)
        part.read[req.page] = (
            page.total,
            page.uuids,
            len(page.rejected) - sum(1 for r in page.rejected if r.uuid is not None),
        )
        part.union.update(page.uuids)
        q.bounded_seen.update(page.uuids)
        if part.pid == 0 and part.reads == 0:
            q.first_totals.append(page.total)
            q.first_pages[req.page] = items

    def _keep(
        self,
        q: _Query,
        page: DecodedPage,
        part: _Part | None,
        req: PageRequest,
        *,
        keep: bool = True,
    ) -> list[tuple[str, int | None]]:
        """Check every node against the request, keep the good ones (unless ``keep`` is
        false: a read that may return deleted nodes); (uuid, created µs)."""
        if len(set(page.uuids)) != len(page.uuids):
            dup = next(u for u in page.uuids if page.uuids.count(u) > 1)
            q.repeats = True
            q.flag(
                f"{q.where()}: the server returned uuid {dup} more than once in one response "
                "(it repeats nodes): the total cannot be trusted",
                broken=True,
            )
        checks = _Checks(req.params)
        out: list[tuple[str, int | None]] = []
        for node in page.nodes:
            lean = node.lean
            st = _stamp(lean.created_at)
            ls = None if checks.seen is None else _stamp(lean.last_seen_at)
            bad = checks.violation(lean, st, ls)
            if bad is not None:
                q.flag(
                    f"{q.where()}: the server returned node {node.uuid} whose {bad} does not "
                    "match the request: its answers cannot be trusted",
                    broken=True,
                )
                continue
            out.append((node.uuid, None if st is None else st[0]))
            if not keep:
                continue
            if part is not None and st is not None:
                part.seen_created.append(st[0])
            prev = q.nodes.get(node.uuid)
            store = self._store
            if prev is None:
                q.nodes[node.uuid] = node if store is None else store(node)
                self._found(req.index, node)
            else:
                latest = FetchedNode(node.uuid, node.lean, node.raw, prev.facts.merge(node.facts))
                q.nodes[node.uuid] = latest if store is None else store(latest)
        for rej in page.rejected if keep else ():
            if rej.uuid is None:
                if part is not None and part.pid == 0 and part.reads == 0:
                    q.anonymous_rejected.append(rej)
            else:
                q.rejected[rej.uuid] = rej
        return out

    # -- judging parts --------------------------------------------------------------------

    def _advance(self, i: int, q: _Query) -> list[PageRequest]:
        out: list[PageRequest] = []
        if q.gap_ok is None and q.gaps and q.parts:
            self._judge_gaps(q)
            if q.gap_ok is False:
                out.extend(self._gap_requests(i, q))
                q.gap_ok = None
        for part in list(q.parts):
            out.extend(self._step(i, q, part))
        return out

    def _judge_gaps(self, q: _Query) -> None:
        """Nothing may match the query outside every created_at range (e.g. a node without
        created_at, or older than the bound's start). Under drift the counts of one round can
        disagree by chance, so only a residual seen the same in three rounds is reported."""
        root = q.parts[0]
        bound = q.gaps.get("bound")
        if bound is None:
            totals = {t for t, _, _ in root.read.values()}
            bound = totals.pop() if len(totals) == 1 else -1
        whole = q.gaps.get("whole", 0)
        before, after = q.gaps.get("before", 0), q.gaps.get("after", 0)
        residual = whole - before - bound - after
        if bound >= 0 and residual == 0 and before == 0:
            q.gap_ok = True
            return
        q.gap_ok = False
        q.residuals.append((residual, before))
        if q.gap_rounds < 3:
            return
        q.gap_ok = True  # judged: stop re-counting
        if len(set(q.residuals)) != 1 or bound < 0:
            return  # the counts moved between rounds: drift, not a fixed hole
        if before:
            q.flag(
                f"{q.where()}: {before} nodes are older than the bound's start {q.lo_text} "
                "(a created_at before 1970, or before the query's own start): not fetched"
            )
        if residual > 0:
            q.flag(
                f"{q.where()}: {whole} nodes match but the created_at ranges hold "
                f"{whole - residual}; {residual} match no range (no created_at?) and were "
                "not fetched"
            )

    def _step(self, i: int, q: _Query, part: _Part) -> list[PageRequest]:
        if part.state in ("tie", "tie_lookup"):
            return self._tie_step(i, q, part)
        if part.state in ("proved", "failed", "dropped", "split"):
            return []
        if not part.read:
            return []
        total = max(t for t, _, _ in part.read.values())
        part.total = total
        if part.state == "count":
            if total <= self.limit:
                if self._consistent(part, total):
                    part.state = "proved"
                    return []
                return self._reread(i, q, part, total)
            pages = math.ceil(total / self.limit)
            if not self._room(part, pages - 1, total):
                return []
            part.state = "pages"
            part.expected_pages = pages
            return [self._part_request(i, part, p) for p in range(2, part.expected_pages + 1)]
        if part.state in ("pages", "reread"):
            if self._consistent(part, total):
                part.state = "proved"
                return []
            if part.pid == 0 and part.reads == 0:
                self._diagnose_first_pass(q, part)
            if part.state == "reread":
                return self._reread(i, q, part, total)
            return self._split(i, q, part, total)
        return []  # pragma: no cover

    def _consistent(self, part: _Part, total: int) -> bool:
        """Is the part proved? One read: every page present with the same total and the read
        holds that many distinct uuids. A re-read: the latest read agrees on the total, and the
        union of every read holds exactly that many."""
        pages = math.ceil(total / self.limit) if total else 1
        if any(t != total for t, _, _ in part.read.values()):
            return False
        uuids: set[str] = set()
        anon = 0
        for p in range(1, pages + 1):
            got = part.read.get(p)
            if got is None:
                return False
            uuids.update(got[1])
            anon += got[2]
        if part.state == "reread":
            return len(part.union) + anon == total
        return len(uuids) + anon == total

    def _reread(self, i: int, q: _Query, part: _Part, total: int) -> list[PageRequest]:
        if part.reads >= _MAX_REREADS and (
            part.reads >= 3 * _MAX_REREADS or total - len(part.union) > part.reads
        ):
            part.state = "failed"
            part.reason = f"{_MAX_REREADS} reads did not reach its count of {total}"
            return []
        pages = max(1, math.ceil(total / self.limit))
        if not self._room(part, pages, total):
            return []
        part.reads += 1
        part.state = "reread"
        part.read = {}
        return [self._part_request(i, part, p) for p in range(1, pages + 1)]

    def _diagnose_first_pass(self, q: _Query, part: _Part) -> None:
        """Say truly why the first pass is not a proof (drift, unstable ties, repeats)."""
        totals = set(q.first_totals)
        if len(totals) > 1 or (q.total0 is not None and totals != {q.total0}):
            q.drift = True
            q.issues.append(
                f"{q.where()}: the matching set changed during the fetch (totals {q.total0} -> "
                f"{sorted(totals)}); the range was re-read in parts"
            )
            return
        where: dict[str, list[int]] = {}
        for p, items in q.first_pages.items():
            for u, _ in items:
                where.setdefault(u, []).append(p)
        stamps = {u: c for items in q.first_pages.values() for u, c in items}
        repeated = [u for u, ps in where.items() if len(ps) > 1]
        if not repeated:
            return
        explained = True
        for u in repeated:
            c = stamps.get(u)
            pages = sorted(where[u])
            lo_page, hi_page = pages[0], pages[-1]
            last = q.first_pages[lo_page][-1][1] if q.first_pages[lo_page] else None
            first = q.first_pages[hi_page][0][1] if q.first_pages[hi_page] else None
            if c is None or last != c or first != c:
                explained = False
        if explained:
            q.unstable = True
            q.issues.append(
                f"{q.where()}: pages overlapped among equal created_at values while the total "
                "held still: the server's order among them is unstable; re-read in parts"
            )
        else:
            q.repeats = True
            q.flag(
                f"{q.where()}: every page reported total {totals.pop()}, but "
                f"{len(repeated)} uuids came back on more than one page without sharing "
                f"created_at with a page boundary, {len(where)} distinct in all: the server "
                "repeats nodes (not an order problem among equal created_at values)"
            )

    def _split(self, i: int, q: _Query, part: _Part, total: int) -> list[PageRequest]:
        if part.depth >= _MAX_DEPTH:
            part.state = "failed"
            part.reason = "split too deep"
            return []
        if part.lo is not None and part.hi is not None and part.lo < part.hi:
            return self._time_split(i, q, part, total)
        if part.lo is None:
            return self._reread(i, q, part, total)
        return self._tie_start(i, q, part, total)

    def _child(  # noqa: PLR0917 - private
        self, q: _Query, part: _Part, lo: int, hi: int, lo_t: str, hi_t: str, extra: Params
    ) -> _Part:
        child = _Part(len(q.parts), lo, hi, lo_t, hi_t, extra, part.pid, part.depth + 1)
        q.parts.append(child)
        part.children.append(child.pid)
        return child

    def _time_split(self, i: int, q: _Query, part: _Part, total: int) -> list[PageRequest]:
        assert part.lo is not None
        assert part.hi is not None
        lo, hi = part.lo, part.hi
        inside = sorted(v for v in part.seen_created if lo <= v <= hi)
        # Cuts come only from the values seen: more windows than that cannot be made (and a
        # claimed total of 10**12 must not loop 10**12 / 40 times).
        k = min(max(2, math.ceil(total / (self.limit * _FILL))), len(inside) + 2)
        cuts: list[int] = []
        for j in range(1, k):
            if inside:
                c = inside[min(len(inside) - 1, j * len(inside) // k)]
                if lo < c <= hi and (not cuts or c > cuts[-1]):
                    cuts.append(c)
        if not cuts:
            cuts = [lo + 1] if lo in inside else [(lo + hi + 1) // 2]
        edges = [lo, *cuts]
        out = []
        part.state = "split"
        for j, a in enumerate(edges):
            b = edges[j + 1] - 1 if j + 1 < len(edges) else hi
            a_t = part.lo_text if j == 0 else _fmt(a)
            b_t = part.hi_text if j + 1 == len(edges) else _fmt(b)
            child = self._child(q, part, a, b, a_t, b_t, part.extra)
            out.append(self._part_request(i, child, 1))
        return out

    def _tie_params(self, q: _Query, part: _Part, extra: Params, tail: Params) -> Params:
        return self._params(q, (part.lo_text, part.hi_text), (*part.extra, *extra), tail)

    def _tie_start(self, i: int, q: _Query, part: _Part, total: int) -> list[PageRequest]:
        """Read an instant whose order among its nodes is not stable, with proof.

        Paging a set whose order changes between requests proves nothing, and deletes during
        the fetch make its counts move. So the instant is read through its *static superset*
        ``P`` (the same filters plus ``filter[include_deleted]=true``: a delete changes a
        node's status, not its membership; no insert lands in a past instant): P's pages are
        re-read, round after round, until the union of the rounds whose every page reported
        the same total holds that many uuids — equal totals at both ends of an interval prove
        (under drift that only adds or only removes) that P did not change in between, so the
        union *is* P. P's nodes are never kept (some are deleted); a node of P is kept when a
        live read of the instant (its pages without ``include_deleted``, read alongside)
        returned it, or else when a ``filter[uuid]`` lookup with the query's own filters
        finds it. Every node present throughout is in P, so it is in the result."""
        part.state = "tie"
        part.tie_rounds = []
        part.tie_live_total = total
        return self._tie_round(i, q, part, total + max(1, total // 10))

    def _tie_round(self, i: int, q: _Query, part: _Part, p_total: int) -> list[PageRequest]:
        pages = max(1, math.ceil(p_total / self.limit))
        live = part.tie_live_total if part.tie_live_total is not None else p_total
        if not self._room(part, pages + max(1, math.ceil(live / self.limit)), max(p_total, live)):
            return []
        part.reads += 1
        part.tie_rounds.append((set(), set(), 0))
        out = [
            PageRequest(i, p, self._tie_params(q, part, _DELETED_TOO, self._tail(p)),
                        q.sq.facts, "tie_p", part.pid)
            for p in range(1, pages + 1)
        ]  # fmt: skip
        part.tie_pages = pages
        part.tie_live_pages = max(1, math.ceil(live / self.limit))
        out.extend(
            PageRequest(i, p, self._tie_params(q, part, (), self._tail(p)), q.sq.facts,
                        "tie_live", part.pid)
            for p in range(1, part.tie_live_pages + 1)
        )  # fmt: skip
        return out

    def _record_tie(self, q: _Query, part: _Part, req: PageRequest, page: DecodedPage) -> None:
        if req.kind == "tie_p":
            self._keep(q, page, None, req, keep=False)
            totals, uuids, anon = part.tie_rounds[-1]
            totals.add(page.total)
            uuids.update(page.uuids)
            anon += len(page.rejected) - sum(1 for r in page.rejected if r.uuid is not None)
            part.tie_rounds[-1] = (totals, uuids, anon)
            return
        self._keep(q, page, None, req)
        q.bounded_seen.update(page.uuids)
        if req.kind == "tie_live":
            part.tie_live_total = page.total
        else:
            part.tie_lookups[req.tag] = page.total
            if page.total > 1 or (page.total == 1 and req.tag not in page.uuids):
                q.flag(
                    f"{q.where()}: a filter[uuid]={req.tag} lookup answered total "
                    f"{page.total} without that node alone: its answers cannot be trusted",
                    broken=True,
                )

    def _tie_step(self, i: int, q: _Query, part: _Part) -> list[PageRequest]:
        if part.state == "tie_lookup":
            part.state = "proved"
            return []
        rounds = part.tie_rounds
        last_totals = rounds[-1][0]
        if len(last_totals) != 1:
            p_total = max(last_totals, default=0)
            union: set[str] | None = None
        else:
            p_total = next(iter(last_totals))
            union, anon = set(), 0
            for totals, uuids, a in reversed(rounds):
                if totals != last_totals:
                    break
                union |= uuids
                anon = max(anon, a)
            if anon:
                union = None  # a node without a readable uuid cannot be counted
        if union is not None and len(union) == p_total:
            missing = sorted(u for u in union if u not in q.nodes and u not in q.rejected)
            part.tie_candidates.append(len(missing))
            gained = (
                part.tie_candidates[-2] - len(missing) if len(part.tie_candidates) > 1 else
                p_total
            )  # fmt: skip
            if (missing and gained > part.tie_live_pages and part.reads < _MAX_TIE_READS
                    and len(missing) > part.tie_live_pages):  # fmt: skip
                return self._tie_round(i, q, part, p_total)  # live reads still pay off
            if not missing:
                part.state = "proved"
                return []
            part.state = "tie_lookup"
            return [
                PageRequest(i, 1, self._tie_params(q, part, (("filter[uuid]", u),),
                            self._tail(1, 1, None)), q.sq.facts, "tie_lookup", part.pid, u)
                for u in missing
            ]  # fmt: skip
        if part.reads >= _MAX_TIE_READS:
            part.state = "failed"
            part.reason = (
                f"{part.reads} reads of the instant with include_deleted did not reach its "
                f"count of {p_total} with every total equal"
            )
            return []
        return self._tie_round(i, q, part, p_total)

    def _proved(self, q: _Query, part: _Part) -> bool:
        if part.state == "proved":
            return True
        if part.state == "split":
            return all(self._proved(q, q.parts[c]) for c in part.children)
        return False

    def _unproved_parts(self, q: _Query, part: _Part) -> list[_Part]:
        if part.state == "proved":
            return []
        if part.state == "split":
            return [p for c in part.children for p in self._unproved_parts(q, q.parts[c])]
        return [part]

    # -- the end --------------------------------------------------------------------------

    def _lookups(self) -> list[PageRequest]:
        """Probe nodes missing from the result: do they still exist?"""
        out = []
        for i, q in enumerate(self._qs):
            if q.broken or not q.parts or q.capped:
                continue
            for kind in ("probe_new",):
                page = q.probes.get(kind)
                if page is None or not page.nodes:
                    continue
                uuid = page.nodes[0].uuid
                if uuid in q.bounded_seen or uuid in q.lookups:
                    continue
                q.lookups[uuid] = -1
                extra = (("filter[uuid]", uuid),)
                params = self._params(q, None, extra, self._tail(1, 1, None))
                out.append(PageRequest(i, 1, params, q.sq.facts, "lookup", -1, uuid))
        return out

    def finish(
        self,
        *,
        requests: int,
        retries: dict[str, int],
        nbytes: int,
        elapsed_s: float,
        http_s: float,
        decode_s: float,
        source: str,
    ) -> FetchResult:
        """Combine the server queries (intersect within a branch, union across) and judge."""
        issues: list[str] = []
        complete, consistent, drift, unstable = True, True, False, False
        totals: list[int] = []
        for q in self._qs:
            totals.extend(q.first_totals)
            if q.total0 is not None:
                totals.append(q.total0)
            where = q.where()
            drift |= q.drift
            unstable |= q.unstable
            if q.parts:
                root = q.parts[0]
                if not (root.state == "proved" and root.reads == 0):
                    consistent = False
                if not self._proved(q, root):
                    complete = False
                    open_parts = self._unproved_parts(q, root)
                    why = (
                        f"the repair budget of {self._budget()} requests was spent"
                        if self.budget_spent
                        else "the server's answers could not be trusted"
                        if q.broken
                        else "; ".join(sorted({p.reason for p in open_parts if p.reason}))
                        or "not proved"
                    )
                    sample = ", ".join(p.describe() for p in open_parts[:3])
                    q.issues.append(
                        f"{where}: {len(open_parts)} part(s) of the range were not proved "
                        f"complete ({why}), e.g. {sample}"
                    )
                for uuid, found in q.lookups.items():
                    if found > 0:
                        complete = False
                        q.issues.append(
                            f"{where}: the probe's node {uuid} still exists but the bounded "
                            "pages did not return it"
                        )
            if q.unproved:
                complete = False
            if q.issues:
                consistent = False
            issues.extend(q.issues)
        nodes, rejected = self._combine()
        stats = FetchStats(
            server_queries=len(self._qs),
            pages=self.pages_done,
            pages_expected=sum(q.pages_needed for q in self._qs),
            requests=requests,
            retries=dict(sorted(retries.items())),
            bytes=nbytes,
            elapsed_s=elapsed_s,
            http_s=http_s,
            decode_s=decode_s,
            totals_seen=(min(totals), max(totals)) if totals else (0, 0),
            repair_requests=self.repair_requests,
            complete=complete,
            consistent=consistent,
            drift=drift,
            order_unstable=unstable,
            issues=tuple(issues),
        )
        return FetchResult(
            nodes=tuple(nodes),
            rejected=tuple(rejected),
            stats=stats,
            query=self.query,
            fetched_at=self.fetched_at,
            source=source,
        )

    def _combine(self) -> tuple[list[FetchedNode], list[Rejected]]:
        if len(self._qs) == 1:
            q = self._qs[0]
            bad = [r for u, r in q.rejected.items() if u not in q.nodes]
            return list(q.nodes.values()), [*bad, *q.anonymous_rejected]
        branches: dict[int, list[_Query]] = {}
        for q in self._qs:
            branches.setdefault(q.sq.branch, []).append(q)
        out: dict[str, FetchedNode] = {}
        rejected: dict[str, Rejected] = {}
        anonymous: list[Rejected] = []
        for states in branches.values():
            first, rest = states[0], states[1:]
            for uuid, node in first.nodes.items():
                facts = node.facts
                if all(uuid in other.nodes for other in rest):
                    for other in rest:
                        facts = facts.merge(other.nodes[uuid].facts)
                    prev = out.get(uuid)
                    if prev is not None:
                        facts = prev.facts.merge(facts)
                    out[uuid] = FetchedNode(uuid, node.lean, node.raw, facts)
            for uuid, rej in first.rejected.items():
                if all(uuid in other.rejected or uuid in other.nodes for other in rest):
                    rejected.setdefault(uuid, rej)
            for st in states:
                anonymous.extend(st.anonymous_rejected)
        return list(out.values()), [r for u, r in rejected.items() if u not in out] + anonymous
