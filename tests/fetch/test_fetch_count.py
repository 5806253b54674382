"""Client.count / AsyncClient.count: one limit=1 request per server query, documented forms."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from documented_forms import violations
from nodeselect import AsyncClient, Client, NodeCount, NodeQuery, RetryPolicy
from nodeselect.sim import generate_fleet
from nodeselect.sim._query import parse_params

FAST = RetryPolicy(backoff_base=0.0, seed=0)
FLEET = generate_fleet(400, seed=8)


def truth(pred) -> int:
    return sum(
        1
        for d in FLEET.documents()
        if FLEET.hidden(d["uuid"]).status != "DELETED" and pred(FLEET.hidden(d["uuid"]))
    )


class Server:
    def __init__(self, fail_every: int = 0) -> None:
        self.urls: list[httpx.URL] = []
        self.fail_every = fail_every

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(request.url)
        if self.fail_every and len(self.urls) % self.fail_every == 0:
            return httpx.Response(503, headers={"Retry-After": "0"})
        q = parse_params(dict(request.url.params), strict_ranges=True)
        ids, total = FLEET.select(q)
        body = b'{"data":[%s],"limit":%d,"page":%d,"total":%d}' % (
            b",".join(FLEET.page_bytes(ids)), q.limit, q.page, total)  # fmt: skip
        return httpx.Response(200, content=body)


@pytest.mark.parametrize("fail_every", [0, 2])
def test_count_sums_disjoint_branches_exactly(fail_every) -> None:
    """Statuses x continents are disjoint branches: their totals add up to the exact count,
    with one limit=1 request per branch (retried like pages)."""
    q = NodeQuery(statuses=["AVAILABLE", "OFFLINE"], continents=["EU", "NA", "AS"])
    server = Server(fail_every)
    with Client("http://t", transport=httpx.MockTransport(server), retry=FAST) as c:
        n = c.count(q)
    assert isinstance(n, NodeCount)
    assert isinstance(n, int)
    assert n.exact
    assert n == truth(lambda h: h.status in q.statuses and h.continent in q.continents)
    ok = [u for u in server.urls if not violations(u)]
    assert len(ok) == len(server.urls)
    assert all(u.params["limit"] == "1" for u in server.urls)
    assert len({str(u) for u in server.urls}) == 6  # one request per branch (and its retries)


def test_count_of_several_tags_is_an_upper_bound_and_says_so() -> None:
    """GDPR and EEA are counted one at a time: the smaller count bounds the intersection."""
    q = NodeQuery(compliance=["GDPR", "EEA"])
    with Client("http://t", transport=httpx.MockTransport(Server()), retry=FAST) as c:
        n = c.count(q)
    assert not n.exact
    both = truth(lambda h: {"GDPR", "EEA"} <= h.compliance_tags)
    assert n >= both
    assert n == min(truth(lambda h: "GDPR" in h.compliance_tags),
                    truth(lambda h: "EEA" in h.compliance_tags))  # fmt: skip


def test_count_of_an_empty_result_is_exact_zero_and_async_agrees() -> None:
    """A count of 0 is exact even for an intersection; AsyncClient.count gives the same."""
    q = NodeQuery(continents=["AN"], compliance=["GDPR", "EEA"])
    server = Server()

    async def handler(request):
        return server(request)

    async def go():
        async with AsyncClient("http://t", transport=httpx.MockTransport(handler),
                               retry=FAST) as c:  # fmt: skip
            return await c.count(q), await c.count(NodeQuery(statuses=["AVAILABLE"]))

    a, b = asyncio.run(go())
    with Client("http://t", transport=httpx.MockTransport(server), retry=FAST) as c:
        s = c.count(NodeQuery(statuses=["AVAILABLE"]))
    assert a == 0
    assert a.exact
    assert b == s == truth(lambda h: h.status == "AVAILABLE")
