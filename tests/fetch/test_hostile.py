"""Hostile servers over real loopback sockets: each fetch ends, within its bounds, with a typed
error or ``complete=False`` (issue 14, item 10)."""

from __future__ import annotations

import re
import signal
import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from hostile_server import HostileServer

from nodeselect import Client, NodeQuery, RetryPolicy
from nodeselect.errors import (
    DeadlineExceededError,
    ProtocolViolationError,
    ResponseTooLargeError,
    RetriesExhaustedError,
)
from nodeselect.fetch import AsyncClient, FetchResult

FAST = RetryPolicy(backoff_base=0.0, max_attempts=2, seed=0, deadline=20.0)
CAP = 256 * 1024


def ends(fn: Callable[[], Any], *, within: float = 60.0) -> Any:
    """Run ``fn`` in a thread; fail (instead of hanging the suite) if it has not ended by
    ``within`` seconds. Returns its result or re-raises its error."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(within)
    assert not t.is_alive(), f"the fetch did not end within {within} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


def fetch(srv: HostileServer, **kwargs: Any) -> FetchResult:
    opts: dict[str, Any] = {"retry": FAST, "max_body_bytes": CAP, "concurrency": 4, **kwargs}
    with Client(srv.url, **opts) as c:
        return c.fetch(NodeQuery(limit=50))


def test_an_honest_loopback_server_is_fetched_complete() -> None:
    """The server itself is sound: its honest mode gives a complete fetch."""
    with HostileServer("honest") as srv:
        r = ends(lambda: fetch(srv))
    assert r.stats.complete
    assert len(r.nodes) == 120


def test_a_body_that_never_ends_stops_at_the_cap_and_is_not_retried() -> None:
    """A body without end is read up to max_body_bytes once, then a typed error."""
    with HostileServer("huge") as srv:
        with pytest.raises(ResponseTooLargeError, match="max_body_bytes=262144"):
            ends(lambda: fetch(srv))
        assert srv.requests == 1


def test_a_declared_huge_length_is_refused_before_reading() -> None:
    """Content-Length above the cap is refused from the headers alone."""
    match = "Content-Length 2000000000"
    with HostileServer("huge_declared") as srv, pytest.raises(ResponseTooLargeError, match=match):
        ends(lambda: fetch(srv))


def test_a_gzip_bomb_inflates_no_further_than_the_cap() -> None:
    """64 MB of inflated gzip: peak traced memory stays near the cap, not the bomb."""
    with HostileServer("gzip_bomb", bomb_mb=64) as srv:
        tracemalloc.start()
        try:
            with pytest.raises(ResponseTooLargeError):
                ends(lambda: fetch(srv))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 32 * CAP, f"peak {peak} bytes for a cap of {CAP}"


def test_ten_thousand_items_on_a_fifty_item_page_is_a_protocol_error() -> None:
    """More nodes than `limit` on a page is refused at once (no repair scan)."""
    with HostileServer("many_items") as srv:
        with pytest.raises(ProtocolViolationError, match="limit=50") as info:
            ends(lambda: fetch(srv, max_body_bytes=8 << 20))
        assert info.value.limit == "limit"
        assert srv.requests == 1


def test_a_total_of_ten_to_the_twelve_is_capped_before_looping() -> None:
    """total=10**12: the first pass stops at max_pages; the fetch ends incomplete, fast."""
    with HostileServer("huge_total") as srv:
        r = ends(lambda: fetch(srv, max_pages=5))
        assert not r.stats.complete
        assert any("page cap" in i for i in r.stats.issues), r.stats.issues
        assert srv.requests <= 1 + 5


def test_a_server_that_ignores_paging_ends_within_the_budget() -> None:
    """Page 1 for every page: the repair is bounded by the request budget."""
    with HostileServer("ignore_paging", nodes=400) as srv:
        r = ends(lambda: fetch(srv))
        assert not r.stats.complete
        assert srv.requests <= 2_000 + 100


@pytest.mark.parametrize("mode", ["trickle", "trickle_headers"])
def test_a_trickling_server_is_cut_by_the_request_timeout(mode: str) -> None:
    """One byte per 50 ms never trips a read timeout; the wall-clock bound cuts it."""
    with HostileServer(mode) as srv, pytest.raises(RetriesExhaustedError) as info:
        ends(lambda: fetch(srv, timeout=5.0, request_timeout=0.25, concurrency=1))
    assert "request_timeout=0.25" in str(info.value)


def test_the_deadline_bounds_the_whole_fetch() -> None:
    """RetryPolicy.deadline stops a fetch whose every request hangs, mid-request."""
    policy = RetryPolicy(backoff_base=0.0, max_attempts=50, seed=0, deadline=0.5)
    match = r"deadline of 0\.5 s"
    with HostileServer("silent") as srv, pytest.raises(DeadlineExceededError, match=match):
        ends(lambda: fetch(srv, retry=policy, timeout=30.0, request_timeout=None))


def test_the_async_client_honours_the_request_timeout_and_deadline() -> None:
    """The asyncio client: asyncio.timeout bounds a trickle, the deadline a silent server."""
    import asyncio  # noqa: PLC0415

    async def run(srv: HostileServer, **kw: Any) -> FetchResult:
        async with AsyncClient(srv.url, **{"retry": FAST, **kw}) as c:
            return await c.fetch(NodeQuery(limit=50))

    with (
        HostileServer("trickle") as srv,
        pytest.raises(RetriesExhaustedError, match="request_timeout"),
    ):
        ends(lambda: asyncio.run(run(srv, request_timeout=0.25)))
    policy = RetryPolicy(backoff_base=0.0, max_attempts=50, seed=0, deadline=0.5)
    with HostileServer("silent") as srv, pytest.raises(DeadlineExceededError):
        ends(lambda: asyncio.run(run(srv, retry=policy, request_timeout=None)))


@pytest.mark.parametrize("mode", ["silent", "hang_after_probe"])
def test_ctrl_c_stops_a_stuck_fetch(mode: str) -> None:
    """SIGINT while requests hang (in this thread, or in workers) ends the fetch at once."""
    if threading.current_thread() is not threading.main_thread():  # pragma: no cover
        pytest.skip("signals reach the main thread only")
    with HostileServer(mode) as srv:
        c = Client(srv.url, retry=FAST, timeout=30.0, request_timeout=None, concurrency=4)
        main = threading.main_thread().ident
        assert main is not None

        seen: dict[str, Any] = {}  # what a failure reports

        def interrupt_once_held() -> None:
            seen["blocked in this thread (inherited)"] = signal.pthread_sigmask(
                signal.SIG_BLOCK, []
            )
            if srv.hung.wait(10.0):  # a request is held without an answer
                seen["SIGINT sent after s"] = round(time.monotonic() - t0, 3)
                signal.pthread_kill(main, signal.SIGINT)

        # Python's own handler, whatever this process inherited: a shell starts a background
        # job with SIGINT ignored (SIG_IGN), and this test then failed as if Ctrl-C were lost
        seen["SIGINT handler inherited"] = signal.signal(signal.SIGINT, signal.default_int_handler)
        timer = threading.Thread(target=interrupt_once_held, daemon=True)
        t0 = time.monotonic()
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                c.fetch(NodeQuery(limit=50))
            c.close()
            took = time.monotonic() - t0
        except Exception as exc:  # the fetch ended some other way: say what the test saw
            seen.update(
                requests=srv.requests, held=srv.hung.is_set(), threads=threading.active_count()
            )
            raise AssertionError(
                f"the fetch ended with {exc!r}, not KeyboardInterrupt: {seen}"
            ) from exc
        finally:
            timer.join(10.0)
            if seen["SIGINT handler inherited"] is not None:  # (None: not set from Python)
                signal.signal(signal.SIGINT, seen["SIGINT handler inherited"])
    # Not a speed claim: requests left running would hold close() until the 20 s deadline
    # (or the 30 s read timeout).
    assert took < 10.0


def test_json_nested_1000_deep_is_a_clean_error_for_that_page() -> None:
    """2 KB of brackets nested 1,000 deep: a typed error, not RecursionError."""
    with HostileServer("deep") as srv:
        with pytest.raises(ProtocolViolationError, match="nested too deep") as info:
            ends(lambda: fetch(srv))
        assert info.value.limit == "depth"
        assert srv.requests == 1


def test_invalid_utf8_in_one_name_rejects_that_node_only() -> None:
    """Bytes that are not UTF-8 in one node's name: that node is rejected at its path
    (data[i].name), every other node is kept."""
    with HostileServer("bad_utf8") as srv:
        r = ends(lambda: fetch(srv))
    bad = {x.uuid: x for x in r.rejected}
    assert set(bad) >= {"node-00001"}
    assert re.fullmatch(r"data\[\d+\]\.name", bad["node-00001"].error.path)
    assert "UTF-8" in bad["node-00001"].error.reason
    assert len(r.nodes) + len(bad) == 120


@pytest.mark.parametrize("mode", ["honest_gzip", "honest_deflate", "honest_raw_deflate"])
def test_compressed_pages_are_inflated_here_exactly(mode: str) -> None:
    """gzip, zlib-wrapped deflate and raw deflate bodies decode to the same complete fetch."""
    with HostileServer(mode) as srv:
        r = ends(lambda: fetch(srv))
    assert r.stats.complete
    assert sorted(n.uuid for n in r.nodes) == [f"node-{i:05d}" for i in range(120)]


def test_cancelling_an_async_fetch_stops_requests_in_flight() -> None:
    """Cancelling the task of a fetch whose requests hang ends it at once (CancelledError)."""
    import asyncio  # noqa: PLC0415

    async def main(srv: HostileServer) -> None:
        async with AsyncClient(srv.url, retry=FAST, request_timeout=None, concurrency=4) as c:
            task = asyncio.create_task(c.fetch(NodeQuery(limit=50)))
            assert await asyncio.to_thread(srv.hung.wait, 10.0)  # a request is held
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert srv.requests >= 2  # the first pass had started

    with HostileServer("hang_after_probe") as srv:
        ends(lambda: asyncio.run(main(srv)), within=20.0)


def test_a_corrupt_gzip_body_is_retried_then_reported() -> None:
    """Corrupt compressed data is an invalid body: retried, then RetriesExhaustedError."""
    with HostileServer("corrupt_gzip") as srv:
        with pytest.raises(RetriesExhaustedError, match="corrupt"):
            ends(lambda: fetch(srv))
        assert srv.requests == FAST.max_attempts


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("huge", ResponseTooLargeError),
        ("gzip_bomb", ResponseTooLargeError),
        ("huge_declared", ResponseTooLargeError),
        ("many_items", ProtocolViolationError),
        ("deep", ProtocolViolationError),
    ],
)
def test_the_async_client_has_the_same_bounds(mode: str, error: type[Exception]) -> None:
    """AsyncClient refuses the same bodies with the same typed errors, after one request."""
    import asyncio  # noqa: PLC0415

    async def run(srv: HostileServer) -> FetchResult:
        async with AsyncClient(srv.url, retry=FAST, max_body_bytes=CAP) as c:
            return await c.fetch(NodeQuery(limit=50))

    with HostileServer(mode, bomb_mb=16) as srv:
        with pytest.raises(error):
            ends(lambda: asyncio.run(run(srv)))
        assert srv.requests == 1
