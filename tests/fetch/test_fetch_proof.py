"""The fetcher proves completeness or says why not: exact bounds at any precision, tie groups
split until proved, misbehaving servers reported truly; only documented request forms."""

from __future__ import annotations

import asyncio
from datetime import datetime

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from documented_forms import violations
from mini_server import MiniServer, make_nodes
from nodeselect import AsyncClient, Client, NodeQuery, RetryPolicy
from nodeselect.fetch._paging import _stamp, _stamp_general

FAST = RetryPolicy(backoff_base=0.0, seed=0)


def fetch(server: MiniServer, query: NodeQuery | None = None, **kw):
    with Client("http://mini", transport=httpx.MockTransport(server), retry=FAST, **kw) as c:
        return c.fetch(query or NodeQuery())


def assert_documented(server: MiniServer) -> None:
    bad = [(str(u), violations(u)) for u in server.requests if violations(u)]
    assert not bad


@pytest.mark.parametrize("precision", ["s", "ms", "us"])
def test_microsecond_server_keeps_the_newest_node_on_the_fast_path(precision) -> None:
    """A server storing µs and writing coarser still returns its newest node; no repair."""
    nodes = make_nodes(400, seed=1)
    newest = max(nodes, key=lambda n: n["created"])
    server = MiniServer(nodes, precision=precision)
    r = fetch(server)
    assert {n.uuid for n in r.nodes} == {n["uuid"] for n in nodes}
    assert newest["uuid"] in {n.uuid for n in r.nodes}
    assert r.ok, r.stats.issues
    assert r.stats.repair_requests == 0
    assert_documented(server)


def test_server_ignoring_sort_is_incomplete_with_a_true_reason() -> None:
    """A server that ignores sort cannot have its bound proved: complete=False, says why."""
    server = MiniServer(make_nodes(120, seed=2), ignore_sort=True)
    r = fetch(server)
    assert not r.complete
    assert any("did not sort" in i for i in r.stats.issues), r.stats.issues
    assert not any("unstable" in i for i in r.stats.issues)
    assert_documented(server)


def test_server_repeating_uuids_is_incomplete_and_not_called_unstable_order() -> None:
    """total 120 with 50 distinct uuids: complete=False, the reason is repeats, not order."""
    server = MiniServer(make_nodes(50, seed=3), repeat_to=120)
    r = fetch(server)
    assert not r.complete
    assert len({n.uuid for n in r.nodes}) == 50
    assert any("repeat" in i for i in r.stats.issues), r.stats.issues
    assert not r.stats.order_unstable
    assert not any("unstable" in i for i in r.stats.issues)


@pytest.mark.parametrize("precision", ["s", "us"])
def test_tie_group_larger_than_a_page_with_unstable_order_is_proved(precision) -> None:
    """600 nodes share one instant, the server shuffles them per request: all come back once,
    proved by splitting the instant (status, last_seen windows) or re-reading."""
    nodes = make_nodes(300, seed=4, tie_groups=(600, 120), precision=precision)
    server = MiniServer(nodes, precision=precision, unstable=True, seed=4)
    r = fetch(server)
    uuids = [n.uuid for n in r.nodes]
    assert len(uuids) == len(set(uuids))
    assert set(uuids) == {n["uuid"] for n in nodes}
    assert r.complete, r.stats.issues
    assert r.stats.order_unstable
    assert not r.consistent
    assert_documented(server)


def test_a_tiny_repair_budget_is_reported_not_hidden() -> None:
    """When the request budget runs out, complete=False says so."""
    from nodeselect.fetch._paging import Pager  # noqa: PLC0415

    nodes = make_nodes(100, seed=5, tie_groups=(300,), precision="s")
    server = MiniServer(nodes, precision="s", unstable=True, seed=5)
    plan = Pager(NodeQuery(), repair_budget=3)
    with Client("http://mini", transport=httpx.MockTransport(server), retry=FAST) as c:
        from nodeselect.fetch._client import _Control  # noqa: PLC0415

        ctl = _Control(FAST)
        while reqs := plan.next_requests():
            c._run(reqs, plan.record, ctl)
    r = plan.finish(requests=0, retries={}, nbytes=0, elapsed_s=0, http_s=0, decode_s=0,
                    source="x")  # fmt: skip
    assert not r.complete
    assert any("budget" in i for i in r.stats.issues), r.stats.issues


def test_open_user_range_goes_out_with_both_ends() -> None:
    """created_between=(None, x) is sent as a documented START,END range."""
    from datetime import UTC, datetime  # noqa: PLC0415

    nodes = make_nodes(80, seed=6)
    server = MiniServer(nodes)
    end = datetime(2023, 11, 20, tzinfo=UTC)
    r = fetch(server, NodeQuery(created_between=(None, end)))
    assert_documented(server)
    want = {n["uuid"] for n in nodes if n["created"] <= int(end.timestamp()) * 10**6}
    assert {n.uuid for n in r.nodes} == want
    assert r.complete


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(0, 160),
    ties=st.lists(st.integers(2, 140), max_size=3),
    precision=st.sampled_from(["s", "ms", "us"]),
    unstable=st.booleans(),
    limit=st.sampled_from([7, 50]),
    seed=st.integers(0, 2**16),
)
def test_any_fleet_any_tie_order_each_node_once_or_incomplete(  # noqa: PLR0917
    n, ties, precision, unstable, limit, seed
) -> None:
    """For any fleet and any order among ties, every node once; complete only when all are."""
    nodes = make_nodes(n, seed, tie_groups=tuple(ties), precision=precision)
    server = MiniServer(nodes, precision=precision, unstable=unstable, seed=seed)
    r = fetch(server, NodeQuery(limit=limit))
    uuids = [x.uuid for x in r.nodes]
    assert len(uuids) == len(set(uuids))
    assert set(uuids) <= {x["uuid"] for x in nodes}
    if r.complete:
        assert set(uuids) == {x["uuid"] for x in nodes}
    else:
        assert r.stats.issues
    assert_documented(server)


def test_async_client_proves_the_same() -> None:
    """AsyncClient runs the same plan: same nodes, same verdict, on a tie-group server."""
    nodes = make_nodes(150, seed=7, tie_groups=(200,), precision="s")

    async def go():
        server = MiniServer(nodes, precision="s", unstable=True, seed=7)

        async def handler(request):
            return server(request)

        async with AsyncClient("http://mini", transport=httpx.MockTransport(handler),
                               retry=FAST) as c:  # fmt: skip
            return await c.fetch()

    a = asyncio.run(go())
    s = fetch(MiniServer(nodes, precision="s", unstable=True, seed=7))
    assert {n.uuid for n in a.nodes} == {n.uuid for n in s.nodes} == {n["uuid"] for n in nodes}
    assert a.complete
    assert s.complete


@settings(max_examples=400, deadline=None)
@given(
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1)),
    st.sampled_from(["", ".5", ".25", ".229", ".2291", ".22912", ".229123", ".2291234567"]),
    st.sampled_from(["Z", "z", "+00:00", "-05:30", "+14:00", "+0000", ""]),
    st.sampled_from(["T", "t", " "]),
    st.booleans(),
)
def test_the_fast_timestamp_path_equals_the_general_parser(
    when: datetime, frac: str, zone: str, sep: str, seconds: bool
) -> None:
    """_stamp's fromisoformat fast path gives exactly what the regular-expression parser gives
    (µs and written precision), and defers to it on every other form."""
    clock = when.strftime("%H:%M:%S") + frac if seconds else when.strftime("%H:%M")
    text = f"{when:%Y-%m-%d}{sep}{clock}{zone}"
    assert _stamp(text) == _stamp_general(text)
