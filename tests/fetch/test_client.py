"""The clients over httpx.MockTransport: statuses, retries, keys, facts, union and intersection."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodeselect import (
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    Client,
    IncompleteFetchError,
    InputError,
    NodeQuery,
    NotFoundError,
    PermissionDeniedError,
    RetriesExhaustedError,
    RetryPolicy,
    ServerError,
)
from nodeselect.sim import generate_fleet
from nodeselect.sim._query import parse_params

FAST = RetryPolicy(backoff_base=0.0, seed=0)
FLEET = generate_fleet(230, seed=3)
LIVE = {d["uuid"] for d in FLEET.documents() if FLEET.hidden(d["uuid"]).status != "DELETED"}


def page_response(request: httpx.Request) -> httpx.Response:
    """Answer like the simulator would (same selection code), without a socket."""
    params = dict(request.url.params)
    q = parse_params(params)
    ids, total = FLEET.select(q)
    body = (
        b'{"data":['
        + b",".join(FLEET.page_bytes(ids))
        + b'],"limit":%d,"page":%d,"total":%d}'
        % (
            q.limit,
            q.page,
            total,
        )
    )
    return httpx.Response(200, content=body)


def client(handler: Callable[[httpx.Request], httpx.Response], **kw) -> Client:
    kw.setdefault("retry", FAST)
    return Client("http://test", transport=httpx.MockTransport(handler), **kw)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"error": {"status": status, "message": message, "param": None}}
    return httpx.Response(status, json=body, headers=headers)


def test_fetch_returns_every_live_node_once() -> None:
    """A clean fetch returns exactly the live fleet, once each, and says it is complete."""
    with client(page_response, concurrency=4) as c:
        r = c.fetch(NodeQuery(limit=7))
    uuids = [n.uuid for n in r.nodes] + [x.uuid for x in r.rejected]
    assert len(uuids) == len(set(uuids))
    assert set(uuids) == LIVE
    assert r.ok
    assert r.stats.pages_expected == -(-len(LIVE) // 7)
    # + the probe + two counts (the whole query, and after the bound) in the pages' round
    assert r.stats.requests == r.stats.pages_expected + 3
    assert r.stats.repair_requests == 0


@pytest.mark.parametrize(
    ("status", "exc"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (422, BadRequestError),
        (418, Exception),
    ],
)
def test_non_retryable_status_makes_exactly_one_request(status, exc) -> None:
    """Other 4xx raise a typed error with the status and server message after one request."""
    calls = []

    def handler(request):
        calls.append(request)
        return error(status, f"bad thing {status}")

    with client(handler) as c, pytest.raises(exc) as info:
        c.fetch()
    assert len(calls) == 1
    assert info.value.status_code == status
    assert info.value.server_message == f"bad thing {status}"


@pytest.mark.parametrize("attempts", [1, 3, 5])
def test_always_503_makes_exactly_max_attempts(attempts) -> None:
    """A server that always answers 503 gets exactly max_attempts requests, then a clear error."""
    calls = []

    def handler(request):
        calls.append(request)
        return error(503, "overloaded", {"Retry-After": "0"})

    policy = RetryPolicy(max_attempts=attempts, backoff_base=0.0)
    with client(handler, retry=policy) as c, pytest.raises(RetriesExhaustedError) as info:
        c.fetch()
    assert len(calls) == attempts
    assert info.value.attempts == attempts
    assert isinstance(info.value.last_error, ServerError)
    assert "overloaded" in str(info.value)


def test_deadline_stops_retries() -> None:
    """A Retry-After beyond the fetch deadline ends the fetch instead of sleeping."""
    calls = []

    def handler(request):
        calls.append(request)
        return error(429, "slow down", {"Retry-After": "30"})

    policy = RetryPolicy(max_attempts=10, deadline=1.0)
    with client(handler, retry=policy) as c, pytest.raises(RetriesExhaustedError, match="deadline"):
        c.fetch()
    assert len(calls) == 1


def test_api_key_is_sent_as_bearer_and_never_shown(monkeypatch) -> None:
    """The key goes in the Authorization header only: not in repr, not in error messages."""
    secret = "sk-very-secret-123"
    seen = []

    def handler(request):
        seen.append(request.headers.get("authorization"))
        return error(403, "no")

    monkeypatch.setenv("NODESELECT_API_KEY", secret)
    c = client(handler)
    assert secret not in repr(c)
    with c, pytest.raises(PermissionDeniedError) as info:
        c.fetch()
    assert seen == [f"Bearer {secret}"]
    assert secret not in str(info.value)
    assert secret not in repr(info.value)


def test_explicit_key_beats_the_environment(monkeypatch) -> None:
    """api_key= wins over NODESELECT_API_KEY."""
    monkeypatch.setenv("NODESELECT_API_KEY", "env")
    seen = []

    def handler(request):
        seen.append(request.headers.get("authorization"))
        return page_response(request)

    with client(handler, api_key="arg") as c:
        c.fetch(NodeQuery(uuids=[sorted(LIVE)[0]]))
    assert set(seen) == {"Bearer arg"}


def test_bad_base_url_and_options_are_input_errors() -> None:
    """A non-http base URL or a zero concurrency raises InputError before any request."""
    with pytest.raises(InputError, match="http"):
        Client("ftp://x")
    with pytest.raises(InputError, match="concurrency"):
        Client("http://x", concurrency=0)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    schedule=st.lists(
        st.sampled_from(["ok", "ok", "ok", "500", "503", "429", "408", "drop", "cut", "garbage"]),
        min_size=1,
        max_size=60,
    ),
    concurrency=st.sampled_from([1, 3, 8]),
)
def test_fault_schedules_lose_and_duplicate_nothing(schedule, concurrency) -> None:
    """Under any schedule of retryable faults the result is exactly the fleet, once each."""
    it = iter(schedule)
    injected = []

    def handler(request):
        kind = next(it, "ok")
        if kind != "ok":
            injected.append(kind)
        if kind == "drop":
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        if kind == "cut":
            body = page_response(request).content  # small count answers are < 100 bytes
            return httpx.Response(200, content=body[: len(body) // 2])
        if kind == "garbage":
            return httpx.Response(200, content=b'{"data": 5}')
        if kind != "ok":
            return error(int(kind), "fault", {"Retry-After": "0"})
        return page_response(request)

    policy = RetryPolicy(max_attempts=len(schedule) + 2, backoff_base=0.0)
    with client(handler, retry=policy, concurrency=concurrency) as c:
        r = c.fetch(NodeQuery(limit=50))
    uuids = [n.uuid for n in r.nodes] + [x.uuid for x in r.rejected]
    assert len(uuids) == len(set(uuids))
    assert set(uuids) == LIVE
    faults = len(injected)
    assert r.stats.requests == r.stats.pages + faults
    assert sum(r.stats.retries.values()) == faults


def test_union_and_intersection_prove_facts() -> None:
    """Status unions and compliance intersections match the hidden facts, which nodes carry."""
    q = NodeQuery(statuses=["AVAILABLE", "OFFLINE"], compliance=["GDPR", "EEA"])
    with client(page_response) as c:
        r = c.fetch(q)
    expected = {
        u
        for u in LIVE
        if FLEET.hidden(u).status in q.statuses and q.compliance <= FLEET.hidden(u).compliance_tags
    }
    got = {n.uuid for n in r.nodes} | {x.uuid for x in r.rejected}
    assert got == expected
    assert expected
    for n in r.nodes:
        assert n.facts.status == FLEET.hidden(n.uuid).status
        assert n.facts.compliance_tags == {"GDPR", "EEA"}


def test_progress_reports_every_page_in_order() -> None:
    """The progress callback sees pages_done rise by one up to pages_total."""
    seen: list[tuple[int, int]] = []
    with client(page_response, concurrency=4) as c:
        r = c.fetch(NodeQuery(limit=20), progress=lambda d, t: seen.append((d, t)))
    assert [d for d, _ in seen] == list(range(1, r.stats.pages + 1))
    assert seen[-1][0] == seen[-1][1]


def test_page_cap_reports_incomplete_and_strict_raises() -> None:
    """Hitting max_pages gives complete=False with a reason, and strict=True raises."""
    with client(page_response, max_pages=2) as c:
        r = c.fetch(NodeQuery(limit=10))
        assert not r.complete
        assert "page cap" in r.stats.issues[0]
        with pytest.raises(IncompleteFetchError, match="page cap"):
            c.fetch(NodeQuery(limit=10), strict=True)


def test_full_validation_rejects_what_lean_accepts() -> None:
    """validate='full' parses every node with the full model; lean keeps the fast path."""
    docs = list(FLEET.documents()[:3])
    docs[1] = {**docs[1], "reputation": 50, "created_at": "not a date"}

    def handler(request):
        limit = int(request.url.params.get("limit", 50))
        body = {"data": docs[:limit], "limit": limit, "page": 1, "total": 3}
        return httpx.Response(200, content=json.dumps(body).encode())

    with client(handler) as c:
        lean = c.fetch()
    with client(handler, validate="full") as c:
        full = c.fetch()
    assert docs[1]["uuid"] in {n.uuid for n in lean.nodes}
    assert docs[1]["uuid"] in {x.uuid for x in full.rejected}
    (rej,) = [x for x in full.rejected if x.uuid == docs[1]["uuid"]]
    assert rej.error.path.startswith("data[1]")


def test_async_client_matches_sync_client() -> None:
    """AsyncClient returns the same nodes and facts as Client for the same query."""
    q = NodeQuery(continents=["EU", "NA"], limit=9)

    async def handler(request):
        return page_response(request)

    async def go():
        async with AsyncClient(
            "http://test", transport=httpx.MockTransport(handler), retry=FAST
        ) as c:
            return await c.fetch(q)

    a = asyncio.run(go())
    with client(page_response) as c:
        s = c.fetch(q)
    assert {(n.uuid, n.facts) for n in a.nodes} == {(n.uuid, n.facts) for n in s.nodes}


def test_async_always_503_makes_exactly_max_attempts() -> None:
    """The async client also stops after exactly max_attempts."""
    calls = []

    async def handler(request):
        calls.append(1)
        return error(503, "down")

    async def go():
        async with AsyncClient(
            "http://test",
            transport=httpx.MockTransport(handler),
            retry=RetryPolicy(max_attempts=4, backoff_base=0.0),
        ) as c:
            await c.fetch()

    with pytest.raises(RetriesExhaustedError):
        asyncio.run(go())
    assert len(calls) == 4


def test_a_body_cut_short_is_an_invalid_response_not_a_transport_error() -> None:
    """A truncated body says the server cut it (InvalidResponseError), not "cannot reach"."""
    from nodeselect import InvalidResponseError  # noqa: PLC0415

    def cut(request: httpx.Request) -> httpx.Response:
        message = "peer closed connection without sending complete message body"
        raise httpx.RemoteProtocolError(message)

    policy = RetryPolicy(max_attempts=2, backoff_base=0.0)
    with client(cut, retry=policy) as c, pytest.raises(RetriesExhaustedError) as info:
        c.fetch()
    assert isinstance(info.value.last_error, InvalidResponseError)
    assert "cut its response body short" in str(info.value)


def test_user_agent_names_the_installed_version() -> None:
    """Every request says nodeselect/<the installed version> in its User-Agent."""
    from importlib.metadata import version  # noqa: PLC0415

    seen = []

    def handler(request):
        seen.append(request.headers.get("user-agent"))
        return page_response(request)

    with client(handler) as c:
        c.fetch()
    assert seen
    assert set(seen) == {f"nodeselect/{version('nodeselect')}"}
