"""fetch_sharded: a fetch written straight into a sharded snapshot, the fleet never held whole;
and the fetcher's bounded look-ahead that makes that possible."""

from __future__ import annotations

import threading

import httpx
import pytest

from documented_forms import CheckingTransport
from nodeselect import Client, IncompleteFetchError, NodeQuery, RetryPolicy, load_snapshot
from nodeselect.fetch import (
    FetchedNode,
    fetch_sharded,
    read_manifest,
    save_sharded_snapshot,
)
from nodeselect.fetch import _client as client_module
from nodeselect.sim import FaultConfig, SimServer, generate_fleet
from nodeselect.sim._dialect import DIALECTS
from nodeselect.sim._query import parse_params

FAST = RetryPolicy(backoff_base=0.0, max_attempts=10, seed=0)
#: Two branches of two compliance tags each: nodes seen by several server queries, whose
#: proved facts are merged.
UNION = NodeQuery(statuses=["AVAILABLE", "OFFLINE"], compliance=["GDPR", "EEA"], limit=20)


def _key(nodes: tuple[FetchedNode, ...]) -> list[tuple[str, bytes, object]]:
    return sorted((n.uuid, n.raw, n.facts) for n in nodes)


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_a_sharded_fetch_saves_what_fetch_and_save_save(tmp_path, name) -> None:
    """In every simulator dialect, with faults, a query of several server queries (facts
    merged) and pages of 20: the shards hold the nodes, documents and facts that fetching the
    fleet and saving it in shards gives; sizes differ by at most one; complete; only
    documented request forms; no spill file left; the result returned has no nodes."""
    fleet = generate_fleet(400, seed=8, dialect=DIALECTS[name])
    faults = FaultConfig(rate_500=0.05, rate_429=0.05, rate_drop=0.03, seed=2)
    with SimServer(fleet, faults=faults) as server:
        transport = CheckingTransport(httpx.HTTPTransport())
        with Client(server.url, retry=FAST, transport=transport, concurrency=4) as c:
            whole = c.fetch(UNION)
            save_sharded_snapshot(tmp_path / "whole", whole, 3)
            manifest, result = fetch_sharded(c, tmp_path / "streamed", 3, UNION)
    assert not transport.bad, transport.bad[:3]
    assert result.nodes == ()
    assert result.complete
    assert manifest.complete
    got = load_snapshot(tmp_path / "streamed")
    assert _key(got.nodes) == _key(load_snapshot(tmp_path / "whole").nodes)
    assert len(got.nodes) == manifest.nodes > 0
    assert max(s.nodes for s in manifest.shards) - min(s.nodes for s in manifest.shards) <= 1
    assert read_manifest(tmp_path / "streamed").query == UNION
    assert sorted(p.name for p in (tmp_path / "streamed").iterdir()) == [
        "manifest.json",
        "shard-00000.jsonl",
        "shard-00001.jsonl",
        "shard-00002.jsonl",
    ]


def test_the_pager_stores_what_the_store_makes_and_streams_nodes_as_received(tmp_path) -> None:
    """Client._fetch(store=...) keeps what the store returns (the result's nodes), while the
    nodes handed to on_nodes are the nodes as received, each once; every node of the result
    went through the store."""
    fleet = generate_fleet(150, seed=4)
    stored: list[str] = []
    streamed: list[FetchedNode] = []

    def store(node: FetchedNode) -> FetchedNode:
        stored.append(node.uuid)
        return FetchedNode(node.uuid, node.lean, b"stand-in", node.facts)

    with SimServer(fleet) as server, Client(server.url, retry=FAST) as c:
        want = c.fetch(UNION)
        got = c._fetch(UNION, store=store, on_nodes=streamed.extend)
    assert {n.raw for n in got.nodes} == {b"stand-in"}
    assert sorted(n.uuid for n in streamed) == sorted(n.uuid for n in want.nodes)
    assert all(n.raw.startswith(b"{") for n in streamed)
    assert sorted(n.uuid for n in got.nodes) == sorted(n.uuid for n in want.nodes)
    # (a node one query of a branch stored but another did not return is left out)
    assert set(stored) >= {n.uuid for n in want.nodes}


def test_nothing_is_written_when_the_fetch_is_not_proved_complete(tmp_path) -> None:
    """strict and a fetch that could not prove it is complete (a page cap): the error, no
    shard, no manifest, no spill file left."""
    fleet = generate_fleet(300, seed=5)
    with (
        SimServer(fleet) as server,
        Client(server.url, retry=FAST, max_pages=2) as c,
        pytest.raises(IncompleteFetchError, match="page cap"),
    ):
        fetch_sharded(c, tmp_path / "out", 2, NodeQuery(limit=10), strict=True)
    assert list((tmp_path / "out").iterdir()) == []


def test_a_bad_number_of_shards_is_refused_before_any_request(tmp_path) -> None:
    """shards outside 1..99,999 is a SnapshotError, and nothing is asked of the server."""
    from nodeselect import SnapshotError  # noqa: PLC0415

    asked = []
    with (
        Client("http://test", transport=httpx.MockTransport(asked.append)) as c,
        pytest.raises(SnapshotError, match="shards=0"),
    ):
        fetch_sharded(c, tmp_path / "out", 0)
    assert asked == []


def test_pages_are_asked_for_at_most_a_few_per_connection_ahead_of_recording() -> None:
    """With every page of a round known at once, the fetcher asks for at most _AHEAD pages per
    connection beyond those recorded (the threads decoded pages faster than one thread
    recorded them, and every page of the fleet waited in memory)."""
    fleet = generate_fleet(2000, seed=6)
    lock = threading.Lock()
    asked = [0]
    gaps: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            asked[0] += 1
        q = parse_params(dict(request.url.params))
        ids, total = fleet.select(q)
        body = b'{"data":[' + b",".join(fleet.page_bytes(ids)) + b"]"
        tail = b',"limit":%d,"page":%d,"total":%d}' % (q.limit, q.page, total)
        return httpx.Response(200, content=body + tail)

    def progress(done: int, total: int) -> None:
        with lock:
            gaps.append(asked[0] - done)

    concurrency = 3
    with Client("http://test", transport=httpx.MockTransport(handler), retry=FAST,
                concurrency=concurrency) as c:  # fmt: skip
        result = c.fetch(NodeQuery(limit=10), progress=progress)
    assert result.complete
    assert result.stats.pages > 4 * client_module._AHEAD * concurrency
    assert max(gaps) <= client_module._AHEAD * concurrency + 1  # (+1: a probe in flight)


def test_a_spill_that_cannot_be_written_stops_the_fetch_and_writes_nothing(
    tmp_path, monkeypatch
) -> None:
    """A full disk while the documents are spilled: a SnapshotError naming the spill, the
    fetch stopped, no shard or manifest, and the spill removed."""
    import os  # noqa: PLC0415

    from nodeselect import SnapshotError  # noqa: PLC0415
    from nodeselect.fetch import _sharded  # noqa: PLC0415

    real = os.fdopen

    class Full:
        def __init__(self, f):
            self._f = f
            self.written = 0

        def write(self, data: bytes) -> int:
            if self.written > 20_000:
                raise OSError(28, "No space left on device")
            self.written += len(data)
            return self._f.write(data)

        def __getattr__(self, name):
            return getattr(self._f, name)

    monkeypatch.setattr(_sharded.os, "fdopen", lambda fd, mode: Full(real(fd, mode)))
    fleet = generate_fleet(300, seed=5)
    with (
        SimServer(fleet) as server,
        Client(server.url, retry=FAST) as c,
        pytest.raises(SnapshotError, match=r"\.spill: cannot write the fetch's documents"),
    ):
        fetch_sharded(c, tmp_path / "out", 2)
    assert list((tmp_path / "out").iterdir()) == []
