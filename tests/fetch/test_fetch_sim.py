"""Integration over real loopback HTTP against the simulator: exactness, faults, drift, leaks."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from nodeselect import (
    AsyncClient,
    Client,
    NodeQuery,
    PermissionDeniedError,
    RetriesExhaustedError,
    RetryPolicy,
)
from nodeselect.sim import FaultConfig, SimServer, generate_fleet

FAST = RetryPolicy(backoff_base=0.0, max_attempts=8, seed=0)


def live(fleet) -> set[str]:
    return {d["uuid"] for d in fleet.documents() if fleet.hidden(d["uuid"]).status != "DELETED"}


def fetched(result) -> list[str]:
    return [n.uuid for n in result.nodes] + [x.uuid for x in result.rejected]


@pytest.mark.parametrize("n_nodes", [0, 1, 49, 50, 51, 260])
@pytest.mark.parametrize("limit", [1, 7, 50])
def test_exact_uuid_set_for_small_fleets_and_limits(n_nodes, limit) -> None:
    """The fetched uuids equal the server's live set, without duplicates, for every size/limit."""
    fleet = generate_fleet(n_nodes, seed=n_nodes)
    with SimServer(fleet) as server, Client(server.url, retry=FAST, concurrency=4) as client:
        result = client.fetch(NodeQuery(limit=limit))
    uuids = fetched(result)
    assert len(uuids) == len(set(uuids))
    assert set(uuids) == live(fleet)
    assert result.ok


@pytest.mark.parametrize("limit", [7, 50])
def test_exact_for_2500_nodes(limit) -> None:
    """2,500 nodes come back exactly once at limits 7 and 50."""
    fleet = generate_fleet(2500, seed=11)
    with SimServer(fleet) as server, Client(server.url, retry=FAST) as client:
        result = client.fetch(NodeQuery(limit=limit))
    uuids = fetched(result)
    assert len(uuids) == len(set(uuids))
    assert set(uuids) == live(fleet)


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("NODESELECT_SLOW_TESTS"),
    reason="~2 min on 2 cores (the simulator shares the GIL); set NODESELECT_SLOW_TESTS=1",
)
def test_exact_for_100k_nodes() -> None:
    """100,000 nodes come back exactly once at limit 50."""
    fleet = generate_fleet(100_000, seed=5)
    with SimServer(fleet) as server, Client(server.url, retry=FAST) as client:
        result = client.fetch()
    uuids = fetched(result)
    assert len(uuids) == len(set(uuids))
    assert set(uuids) == live(fleet)


@pytest.mark.parametrize("seed", [1, 2])
def test_faults_lose_nothing_and_cost_at_most_1_4x(seed) -> None:
    """10% 5xx, 5% 429, 3% drops, 3% truncations: exact result, <= 1.4x requests, 0 open conns."""
    fleet = generate_fleet(3000, seed=seed)
    faults = FaultConfig(
        rate_500=0.05, rate_503=0.05, rate_429=0.05, rate_drop=0.03, rate_truncate=0.03, seed=seed
    )
    with SimServer(fleet, faults=faults) as server:
        with Client(server.url, retry=FAST) as client:
            result = client.fetch()
        assert server.wait_idle(5.0)
        assert server.stats.open_connections == 0
    uuids = fetched(result)
    assert len(uuids) == len(set(uuids))
    assert set(uuids) == live(fleet)
    needed = result.stats.pages
    assert result.stats.requests <= 1.4 * needed
    assert sum(server.stats.faults.values()) == sum(result.stats.retries.values())
    assert result.ok


def test_drift_keeps_every_survivor_once_and_reports_it() -> None:
    """With inserts and deletes during paging, every node present throughout comes back once."""
    fleet = generate_fleet(2500, seed=4)
    before = live(fleet)
    faults = FaultConfig(inserts_per_request=0.5, deletes_per_request=0.5, seed=9)
    with SimServer(fleet, faults=faults) as server, Client(server.url, retry=FAST) as client:
        result = client.fetch(NodeQuery(limit=20))
    after = live(fleet)
    uuids = fetched(result)
    assert len(uuids) == len(set(uuids))
    assert before & after <= set(uuids) <= before | after
    assert result.stats.drift
    assert not result.consistent
    assert result.complete
    assert any("changed during the fetch" in issue for issue in result.stats.issues)


def test_unstable_order_is_detected_not_reported_as_success() -> None:
    """Shuffled ties make pages overlap; the fetcher says so (consistent=False) and repairs."""
    fleet = generate_fleet(1500, seed=6, created_at_ties=0.6)
    faults = FaultConfig(unstable_order=True, seed=2)
    with SimServer(fleet, faults=faults) as server, Client(server.url, retry=FAST) as client:
        result = client.fetch(NodeQuery(limit=7))
    uuids = fetched(result)
    assert result.stats.order_unstable
    assert not result.ok
    assert len(uuids) == len(set(uuids))
    if result.complete:
        assert set(uuids) == live(fleet)


def test_failure_leaves_no_connection_open() -> None:
    """When a fetch fails (always 503), no connection stays open after the client closes."""
    fleet = generate_fleet(300, seed=1)
    with SimServer(fleet, faults=FaultConfig(rate_503=1.0)) as server:
        policy = RetryPolicy(max_attempts=3, backoff_base=0)
        with Client(server.url, retry=policy) as client, pytest.raises(RetriesExhaustedError):
            client.fetch()
        assert server.stats.requests == 3
        assert server.wait_idle(5.0)


def test_async_cancellation_leaves_no_connection_open() -> None:
    """Cancelling an async fetch mid-way and closing the client closes every connection."""
    fleet = generate_fleet(1000, seed=1)
    started = threading.Event()

    async def go(url: str) -> None:
        client = AsyncClient(url, retry=FAST)
        task = asyncio.create_task(
            client.fetch(NodeQuery(limit=5), progress=lambda d, t: started.set())
        )
        while not started.is_set():
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await client.aclose()

    with SimServer(fleet, faults=FaultConfig(latency_ms=2)) as server:
        asyncio.run(go(server.url))
        assert server.wait_idle(5.0)
        assert server.stats.open_connections == 0


def test_sync_interrupt_from_progress_leaves_no_connection_open() -> None:
    """An exception mid-fetch (from the progress callback) stops workers and leaks nothing."""
    fleet = generate_fleet(1500, seed=1)

    class StopError(Exception):
        pass

    def progress(done: int, total: int) -> None:
        if done == 5:
            raise StopError

    with SimServer(fleet) as server:
        with Client(server.url, retry=FAST) as client, pytest.raises(StopError):
            client.fetch(NodeQuery(limit=5), progress=progress)
        assert server.wait_idle(5.0)


def test_auth_against_the_simulator() -> None:
    """A wrong key is a 403 after exactly one request; the right one fetches."""
    fleet = generate_fleet(60, seed=1)
    with SimServer(fleet, api_key="right") as server:
        with (
            Client(server.url, api_key="wrong") as client,
            pytest.raises(PermissionDeniedError) as info,
        ):
            client.fetch()
        assert info.value.status_code == 403
        assert "wrong" not in str(info.value)
        assert server.stats.requests == 1
        with Client(server.url, api_key="right") as client:
            assert len(fetched(client.fetch())) == len(live(fleet))
