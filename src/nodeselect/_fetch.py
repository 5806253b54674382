"""Paging and consistency, without I/O: the logic the sync and async clients share.

For each server query:

1. **Probe**: ``sort=-created_at&limit=1`` learns the total ``T0`` and the newest
   ``created_at`` ``C``. Every later request is bounded with ``filter[created_at]=…,C``, so
   nodes inserted during the fetch (they are newer) cannot shift pages: the bounded set can
   only shrink, and a shrink shows as a smaller ``total``.
2. **Pages**: pages ``1..ceil(T0/limit)`` with ``sort=created_at``, fetched concurrently by the
   client. The pass is *consistent* when every page reports ``total == T0``, every page holds
   the expected number of nodes, and the uuids are ``T0`` distinct ones.
3. **Repair** (only when the pass was not consistent): a sequential keyset scan - each request
   asks for ``created_at >= cursor`` (page 1), the cursor being the last ``created_at`` seen -
   which no deletion or insertion can make skip a node that exists throughout. If a group of
   equal ``created_at`` values fills a whole page, the scan pages within it; when the server's
   order among equal values was seen to be unstable, that cannot be proved, and the fetch is
   reported incomplete.

Results of the server queries are intersected by uuid within a branch (compliance tags, all
of) and unioned across branches; facts proved for one node by several queries are merged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime

import attrs

from nodeselect._decode import DecodedPage
from nodeselect._facts import ProvedFacts
from nodeselect._query import NodeQuery, ServerQuery, plan_requests
from nodeselect._result import FetchedNode, FetchResult, FetchStats, Rejected

__all__ = ["DEFAULT_MAX_PAGES", "FetchPlan", "KeysetScan", "PageRequest", "Progress"]

#: The most page requests (first pass, all server queries) one fetch may make by default.
DEFAULT_MAX_PAGES = 10_000

Progress = Callable[[int, int], None]
Params = tuple[tuple[str, str], ...]


@attrs.frozen
class PageRequest:
    """One GET to make.

    Attributes:
        index: the server query it belongs to.
        page: the page number (1-based).
        params: every query parameter, in order.
        facts: what the returned nodes are proved to be.
        kind: ``"probe"``, ``"page"`` or ``"repair"``.
    """

    index: int
    page: int
    params: Params
    facts: ProvedFacts
    kind: str


def _parse_ts(text: str) -> datetime | None:
    try:
        dt = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _created_range(sq: ServerQuery) -> tuple[str, str]:
    for key, value in sq.params:
        if key == "filter[created_at]":
            start, _, end = value.partition(",")
            return start, end
    return "", ""


def _params(sq: ServerQuery, created: tuple[str, str] | None, extra: Params) -> Params:
    base = [(k, v) for k, v in sq.params if not (created is not None and k == "filter[created_at]")]
    if created is not None:
        base.append(("filter[created_at]", f"{created[0]},{created[1]}"))
    return (*sorted(base), *extra)


class _State:
    """What one server query has seen so far."""

    def __init__(self, sq: ServerQuery) -> None:
        self.sq = sq
        self.total0: int | None = None
        self.newest: str | None = None
        self.totals: list[int] = []
        self.page_uuids: dict[int, list[str]] = {}
        self.nodes: dict[str, FetchedNode] = {}
        self.rejected: dict[str, Rejected] = {}
        self.anonymous_rejected: list[Rejected] = []
        self.duplicates = 0
        self.pages_needed = 0
        self.capped = False
        self.repair: KeysetScan | None = None

    def add(self, page: DecodedPage) -> None:
        for node in page.nodes:
            if node.uuid in self.nodes:
                self.duplicates += 1
            self.nodes[node.uuid] = node
        for rej in page.rejected:
            if rej.uuid is None:
                self.anonymous_rejected.append(rej)
            else:
                self.rejected[rej.uuid] = rej


class KeysetScan:
    """The repair scan of one server query: ``created_at >= cursor``, one page at a time."""

    def __init__(self, state: _State, limit: int) -> None:
        self._state = state
        self._limit = limit
        self._start, end = _created_range(state.sq)
        self._end = state.newest if state.newest is not None else end
        self._cursor: str | None = None
        self._page = 1
        self.done = False
        self.tie_paging = False
        self.requests = 0

    def next_request(self) -> PageRequest | None:
        """The next request, or ``None`` when the scan is over."""
        if self.done:
            return None
        start = self._start
        if self._cursor is not None:
            c, s = _parse_ts(self._cursor), _parse_ts(self._start) if self._start else None
            start = self._cursor if s is None or (c is not None and c >= s) else self._start
        sq = self._state.sq
        extra = (("sort", "created_at"), ("limit", str(self._limit)), ("page", str(self._page)))
        params = _params(sq, (start, self._end or ""), extra)
        return PageRequest(sq.branch, self._page, params, sq.facts, "repair")

    def record(self, page: DecodedPage) -> None:
        """Take the answer to :meth:`next_request`."""
        self.requests += 1
        self._state.add(page)
        stamps = [n.lean.created_at for n in page.nodes if n.lean.created_at is not None]
        if len(page.uuids) < self._limit or not stamps:
            self.done = len(page.uuids) < self._limit
            if not self.done:  # a full page without readable timestamps: page on
                self._page += 1
                self.tie_paging = True
            return
        last = stamps[-1]
        if last == self._cursor and stamps[0] == self._cursor:
            self._page += 1  # a group of equal created_at values fills the page
            self.tie_paging = True
        else:
            self._cursor = last
            self._page = 1


class FetchPlan:
    """The sans-I/O state of one fetch. The client asks for requests, runs them, records pages.

    Order of use: :meth:`probe_requests`, :meth:`page_requests`, then for each of
    :meth:`repair_scans` run its requests one by one, then :meth:`finish`.
    """

    def __init__(
        self, query: NodeQuery, *, max_pages: int = DEFAULT_MAX_PAGES, progress: Progress | None
    ) -> None:
        self.query = query
        self.server_queries = plan_requests(query)
        self.max_pages = max_pages
        self._states = [_State(sq) for sq in self.server_queries]
        self._progress = progress
        self.pages_done = 0
        self.pages_total = len(self._states)
        self.fetched_at = datetime.now(UTC)
        self._scans: list[KeysetScan] = []

    def _tick(self) -> None:
        self.pages_done += 1
        if self._progress is not None:
            self._progress(self.pages_done, max(self.pages_total, self.pages_done))

    def probe_requests(self) -> list[PageRequest]:
        """One request per server query: the total and the newest ``created_at``."""
        out = []
        for i, st in enumerate(self._states):
            extra = (("sort", "-created_at"), ("limit", "1"), ("page", "1"))
            out.append(PageRequest(i, 1, _params(st.sq, None, extra), st.sq.facts, "probe"))
        return out

    def record(self, req: PageRequest, page: DecodedPage) -> None:
        """Take the answer to ``req`` (probe or page)."""
        st = self._states[req.index]
        self._tick()
        if req.kind == "probe":
            st.total0 = page.total
            st.newest = page.nodes[0].lean.created_at if page.nodes else None
            return
        st.totals.append(page.total)
        st.page_uuids[req.page] = page.uuids
        st.add(page)

    def page_requests(self) -> list[PageRequest]:
        """Every page of the first pass, bounded by the newest ``created_at`` of the probe."""
        out: list[PageRequest] = []
        budget = self.max_pages
        limit = self.query.limit
        for i, st in enumerate(self._states):
            total = st.total0 or 0
            if total == 0:
                continue
            needed = math.ceil(total / limit)
            st.pages_needed = needed
            take = min(needed, max(budget, 0))
            if take < needed:
                st.capped = True
            budget -= take
            start, end = _created_range(st.sq)
            bound = (start, st.newest) if st.newest is not None else None
            if bound is None and (start or end):
                bound = (start, end)
            for p in range(1, take + 1):
                extra = (("sort", "created_at"), ("limit", str(limit)), ("page", str(p)))
                out.append(PageRequest(i, p, _params(st.sq, bound, extra), st.sq.facts, "page"))
        self.pages_total += len(out)
        return out

    def _verdict(self, st: _State) -> tuple[bool, bool, bool]:
        """(consistent, drift, order_unstable) of one query's first pass."""
        total = st.total0 or 0
        if total == 0:
            return True, False, False
        limit = self.query.limit
        drift = any(t != total for t in st.totals)
        ok = not drift and st.duplicates == 0
        seen: set[str] = set()
        for p in range(1, st.pages_needed + 1):
            uuids = st.page_uuids.get(p, [])
            if len(uuids) != min(limit, total - (p - 1) * limit):
                ok = False
            seen.update(uuids)
        if len(seen) + len(st.anonymous_rejected) != total:
            ok = False
        unstable = not ok and not drift and st.duplicates > 0
        return ok, not ok and not unstable, unstable

    def repair_scans(self) -> list[KeysetScan]:
        """Keyset scans for the server queries whose first pass was not consistent."""
        for st in self._states:
            if st.capped or (st.total0 or 0) == 0:
                continue
            if not self._verdict(st)[0]:
                st.repair = KeysetScan(st, self.query.limit)
                self._scans.append(st.repair)
        return list(self._scans)

    def note_repair_page(self) -> None:
        """Count a repair page for progress."""
        self.pages_total += 1
        self._tick()

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
        for st in self._states:
            ok, d, u = self._verdict(st)
            totals.extend(st.totals)
            if st.total0 is not None:
                totals.append(st.total0)
            where = st.sq.describe()
            if st.capped:
                complete = False
                issues.append(
                    f"{where}: {st.pages_needed} pages needed but the page cap is "
                    f"{self.max_pages}; raise max_pages or narrow the query"
                )
            if not ok and not st.capped:
                consistent = False
                drift |= d
                unstable |= u
                if d:
                    issues.append(
                        f"{where}: the matching set changed during the fetch (totals "
                        f"{st.total0} -> {sorted(set(st.totals))}); repaired by a keyset scan"
                    )
                if u:
                    issues.append(
                        f"{where}: pages overlapped while the total held still: the server's "
                        "order among equal created_at values is unstable; repaired by a "
                        "keyset scan"
                    )
                scan = st.repair
                if scan is None or not scan.done:
                    complete = False
                    issues.append(f"{where}: the repair scan did not finish")
                elif u and scan.tie_paging:
                    complete = False
                    issues.append(
                        f"{where}: more than {self.query.limit} nodes share one created_at and "
                        "the order among them is unstable: some may be missing"
                    )
        nodes, rejected = self._combine()
        repair_requests = sum(s.requests for s in self._scans)
        stats = FetchStats(
            server_queries=len(self._states),
            pages=self.pages_done,
            pages_expected=sum(st.pages_needed for st in self._states),
            requests=requests,
            retries=dict(sorted(retries.items())),
            bytes=nbytes,
            elapsed_s=elapsed_s,
            http_s=http_s,
            decode_s=decode_s,
            totals_seen=(min(totals), max(totals)) if totals else (0, 0),
            repair_requests=repair_requests,
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
        if len(self._states) == 1:
            st = self._states[0]
            return list(st.nodes.values()), [*st.rejected.values(), *st.anonymous_rejected]
        branches: dict[int, list[_State]] = {}
        for st in self._states:
            branches.setdefault(st.sq.branch, []).append(st)
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
        return list(out.values()), [*rejected.values(), *anonymous]
