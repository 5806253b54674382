"""API keys are checked and never shown; the logger and the progress / node hooks
(issue 14, items 12 and the progress part)."""

from __future__ import annotations

import logging
from importlib.metadata import version

import httpx
import pytest

from nodeselect import Client, InputError, NodeQuery, RetryPolicy
from nodeselect.fetch import AsyncClient, FetchProgress
from nodeselect.sim import generate_fleet
from nodeselect.sim._query import parse_params

FAST = RetryPolicy(backoff_base=0.0, seed=0)
FLEET = generate_fleet(260, seed=5)
KEY = "sk-test-Secret-1234"


def handler(request: httpx.Request) -> httpx.Response:
    q = parse_params(dict(request.url.params))
    ids, total = FLEET.select(q)
    data = b",".join(FLEET.page_bytes(ids))
    tail = b'],"limit":%d,"page":%d,"total":%d}' % (q.limit, q.page, total)
    return httpx.Response(200, content=b'{"data":[' + data + tail)


def mock(h=handler, **kw) -> Client:
    kw.setdefault("retry", FAST)
    return Client("http://test", transport=httpx.MockTransport(h), **kw)


@pytest.mark.parametrize(
    ("key", "what"),
    [
        (KEY + "\n", "whitespace at its end"),
        (KEY + " ", "whitespace at its end"),
        ("sk-test Secret", "whitespace at position 8"),
        ("sk-test\x1bSecret", "a control character"),
        ("sk-test-\u00e9", "a non-ASCII character"),
        ("sk\u200b-test", "a control character"),
    ],
)
def test_a_malformed_key_is_refused_before_use_and_never_echoed(key: str, what: str) -> None:
    """A key with whitespace, control or non-ASCII characters is an InputError that says
    what and where, without the key."""
    with pytest.raises(InputError, match=what) as info:
        Client("https://api.example.com", api_key=key)
    assert key.strip() not in str(info.value)
    assert "Secret" not in str(info.value)


def test_a_malformed_key_from_the_environment_is_refused_too(monkeypatch) -> None:
    """$NODESELECT_API_KEY with a trailing newline is refused, not sent."""
    monkeypatch.setenv("NODESELECT_API_KEY", KEY + "\n")
    with pytest.raises(InputError, match="at its end"):
        Client("https://api.example.com")


@pytest.mark.parametrize("url", ["http://api.example.com", "http://10.0.0.8:8080"])
def test_a_key_over_plain_http_to_a_remote_host_is_refused(url: str) -> None:
    """http:// with a key to another machine is refused unless explicitly allowed."""
    with pytest.raises(InputError, match="cleartext") as info:
        Client(url, api_key=KEY)
    assert KEY not in str(info.value)
    Client(url, api_key=KEY, allow_insecure_http=True).close()
    Client(url).close()  # no key, nothing to leak
    AsyncClient(url, api_key=KEY, allow_insecure_http=True)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000", "https://x.io"]
)
def test_a_key_over_loopback_or_https_is_accepted(url: str) -> None:
    """Loopback (the simulator) and https need no opt-in."""
    Client(url, api_key=KEY).close()


def test_requests_carry_the_version_the_encodings_and_the_key() -> None:
    """User-Agent names the installed version; only gzip/deflate are accepted; Bearer key."""
    seen: list[httpx.Headers] = []

    def spy(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return handler(request)

    with Client("http://test", api_key=KEY, transport=httpx.MockTransport(spy), retry=FAST) as c:
        c.fetch(NodeQuery(limit=50))
    assert seen
    h = seen[0]
    assert h["user-agent"] == f"nodeselect/{version('nodeselect')}"
    assert h["accept-encoding"] == "gzip, deflate"
    assert h["authorization"] == f"Bearer {KEY}"


def test_retries_are_logged_without_the_key(caplog) -> None:
    """Each retry is one INFO record on the nodeselect logger (cause and wait); no record
    holds the key."""
    calls = {"n": 0}

    def flaky(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] % 4 == 1:
            return httpx.Response(503, json={"error": {"message": "busy"}})
        return handler(request)

    caplog.set_level(logging.DEBUG, logger="nodeselect")
    with Client("http://test", api_key=KEY, transport=httpx.MockTransport(flaky), retry=FAST) as c:
        r = c.fetch(NodeQuery(limit=50))
    retries = [rec for rec in caplog.records if "retrying" in rec.getMessage()]
    assert len(retries) == sum(r.stats.retries.values()) > 0
    assert all(rec.name.startswith("nodeselect") for rec in retries)
    assert "http_503" in retries[0].getMessage()
    assert not any(KEY in rec.getMessage() for rec in caplog.records)


def test_progress_fires_once_per_page_as_pages_arrive() -> None:
    """on_progress: one event per page, pages_done counting up by one, never above
    pages_known; the last one matches the result."""
    events: list[FetchProgress] = []
    with mock(concurrency=4) as c:
        r = c.fetch(NodeQuery(limit=20), on_progress=events.append)
    assert [e.pages_done for e in events] == list(range(1, len(events) + 1))
    assert all(e.pages_done <= e.pages_known for e in events)
    assert events[-1].pages_done == r.stats.pages
    assert events[-1].nodes == len(r.nodes)
    assert events[0].pages_known == 1  # the probe alone is known at first
    assert max(e.pages_known for e in events) > 1


@pytest.mark.parametrize(
    "query",
    [
        NodeQuery(limit=20),
        NodeQuery(statuses=["AVAILABLE", "OFFLINE"], limit=20),
        NodeQuery(compliance=["GDPR", "EEA"], limit=20),
    ],
)
def test_on_nodes_streams_every_result_node_once_before_the_end(query: NodeQuery) -> None:
    """on_nodes hands out each node of the result exactly once, page by page, the first ones
    long before the last page (for compliance tags, only once every tag returned it)."""
    batches: list[list[str]] = []
    pages_at_first: list[int] = []
    progress: list[int] = []

    def on_nodes(nodes) -> None:
        if not batches:
            pages_at_first.append(len(progress))
        batches.append([n.uuid for n in nodes])

    with mock(concurrency=4) as c:
        r = c.fetch(query, on_nodes=on_nodes, on_progress=lambda e: progress.append(e.pages_done))
    streamed = [u for b in batches for u in b]
    assert len(streamed) == len(set(streamed))
    assert set(streamed) == {n.uuid for n in r.nodes}
    assert len(batches) > 1
    assert pages_at_first[0] < len(progress)


def test_the_async_client_has_the_same_hooks() -> None:
    """AsyncClient.fetch streams the same nodes and reports the same page count."""
    import asyncio  # noqa: PLC0415

    async def handle(request: httpx.Request) -> httpx.Response:
        return handler(request)

    streamed: list[str] = []
    events: list[FetchProgress] = []

    async def main():
        t = httpx.MockTransport(handle)
        async with AsyncClient("http://test", transport=t, retry=FAST) as c:
            return await c.fetch(
                NodeQuery(limit=20),
                on_nodes=lambda ns: streamed.extend(n.uuid for n in ns),
                on_progress=events.append,
            )

    r = asyncio.run(main())
    assert sorted(streamed) == sorted(n.uuid for n in r.nodes)
    assert events[-1].pages_done == r.stats.pages
