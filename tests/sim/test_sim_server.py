"""The simulated server over real loopback HTTP: status codes, bodies, faults, connections."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from nodeselect.documents._lean import decode_page
from nodeselect.sim import FaultConfig, Fleet, SimServer, demo_server, generate_fleet

NOW = datetime(2026, 1, 1, tzinfo=UTC)
KEY = "sk-test-0123456789"


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return generate_fleet(400, seed=21, created_at_ties=0.5, now=NOW)


@pytest.fixture(scope="module")
def server(fleet: Fleet) -> Iterator[SimServer]:
    with SimServer(fleet) as s:
        yield s


def _error(resp: httpx.Response) -> dict[str, object]:
    body = resp.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"status", "message", "param"}
    assert body["error"]["status"] == resp.status_code
    return body["error"]  # type: ignore[no-any-return]


def test_a_page_has_the_documented_envelope(server, fleet) -> None:
    """GET /v1/nodes answers data/limit/page/total, and the page equals Fleet.query's."""
    resp = httpx.get(server.endpoint, params={"limit": 7, "page": 2, "sort": "created_at"})
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert (body["limit"], body["page"]) == (7, 2)
    data, total = fleet.query({"limit": "7", "page": "2", "sort": "created_at"})
    assert body["data"] == data
    assert body["total"] == total
    assert len(decode_page(resp.content).data) == 7


def test_bad_parameters_answer_400_with_the_error_body(server) -> None:
    """An invalid value is a 400 naming the parameter and what is accepted."""
    err = _error(httpx.get(server.endpoint, params={"filter[status]": "GONE"}))
    assert err["status"] == 400
    assert err["param"] == "filter[status]"
    assert "AVAILABLE" in str(err["message"])


def test_unknown_and_repeated_parameters_answer_400(server) -> None:
    """Unknown parameters and a parameter given twice are 400s naming it."""
    assert _error(httpx.get(server.endpoint + "?colour=red"))["param"] == "colour"
    assert _error(httpx.get(server.endpoint + "?page=1&page=2"))["param"] == "page"


def test_unknown_path_is_404_and_other_methods_are_405(server) -> None:
    """Paths other than /v1/nodes are 404; POST/DELETE/HEAD are 405 with Allow: GET."""
    assert _error(httpx.get(server.url + "/v1/node"))["status"] == 404
    for method in ("POST", "DELETE", "PUT"):
        resp = httpx.request(method, server.endpoint)
        assert resp.status_code == 405
        assert resp.headers["allow"] == "GET"
        _error(resp)
    assert httpx.head(server.endpoint).status_code == 405


def test_auth_missing_is_401_and_wrong_is_403_and_never_echoed(fleet) -> None:
    """With an api_key: no header 401, wrong key 403, right key 200; bodies never hold a key."""
    with SimServer(fleet, api_key=KEY) as s:
        missing = httpx.get(s.endpoint)
        wrong = httpx.get(s.endpoint, headers={"Authorization": "Bearer nope-123"})
        right = httpx.get(s.endpoint, headers={"Authorization": f"Bearer {KEY}"})
        assert KEY not in repr(s)
    assert _error(missing)["status"] == 401
    assert _error(wrong)["status"] == 403
    assert right.status_code == 200
    for resp in (missing, wrong):
        assert KEY not in resp.text
        assert "nope-123" not in resp.text


@pytest.mark.parametrize(
    ("kind", "status"), [("rate_500", 500), ("rate_503", 503), ("rate_429", 429)]
)
def test_status_faults_answer_their_status_with_retry_after(fleet, kind, status) -> None:
    """A certain 5xx/429 fault answers that status; 429/503 carry Retry-After."""
    with SimServer(fleet, faults=FaultConfig(**{kind: 1.0}, retry_after="2")) as s:
        resp = httpx.get(s.endpoint)
        stats = s.stats
    assert resp.status_code == status
    _error(resp)
    assert resp.headers.get("retry-after") == (None if status == 500 else "2")
    assert stats.faults[f"http_{status}"] == 1
    assert stats.page_requests_ok == 0


def test_retry_after_none_sends_no_header(fleet) -> None:
    """retry_after=None leaves the header out."""
    with SimServer(fleet, faults=FaultConfig(rate_503=1.0, retry_after=None)) as s:
        assert "retry-after" not in httpx.get(s.endpoint).headers


def test_dropped_connection_gets_no_response(fleet) -> None:
    """rate_drop closes the connection without writing anything."""
    with SimServer(fleet, faults=FaultConfig(rate_drop=1.0)) as s:
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(s.endpoint)
        assert s.stats.faults["drop"] == 1
        assert s.wait_idle()


def test_truncated_body_is_cut_short_under_a_full_content_length(fleet) -> None:
    """rate_truncate sends 200 with the full Content-Length, part of the body, then closes."""
    with SimServer(fleet, faults=FaultConfig(rate_truncate=1.0)) as s, httpx.Client() as c:
        with c.stream("GET", s.endpoint) as resp:
            assert resp.status_code == 200
            length = int(resp.headers["content-length"])
            chunks: list[bytes] = []
            with pytest.raises(httpx.RemoteProtocolError):
                chunks.extend(resp.iter_raw())
            got = b"".join(chunks)
        assert 0 < len(got) < length
        assert s.stats.faults["truncate"] == 1


def test_latency_delays_every_answer(fleet) -> None:
    """latency_ms holds the answer back: a client timeout far below it fires."""
    with (
        SimServer(fleet, faults=FaultConfig(latency_ms=400)) as s,
        pytest.raises(httpx.ReadTimeout),
    ):
        httpx.get(s.endpoint, timeout=httpx.Timeout(5.0, read=0.05))


def _fault_sequence(fleet: Fleet, seed: int) -> list[int]:
    faults = FaultConfig(rate_500=0.2, rate_503=0.2, rate_429=0.1, seed=seed)
    with SimServer(fleet, faults=faults) as s, httpx.Client() as c:
        return [c.get(s.endpoint, params={"limit": 1}).status_code for _ in range(40)]


def test_faults_are_deterministic_for_a_seed(fleet) -> None:
    """The same fault seed gives the same status sequence to a sequential client."""
    first = _fault_sequence(fleet, seed=4)
    assert first == _fault_sequence(fleet, seed=4)
    assert set(first) >= {200, 500, 503}
    assert first != _fault_sequence(fleet, seed=5)


def test_mutations_happen_after_answered_pages_and_are_logged() -> None:
    """inserts/deletes per request change the fleet after each 200 page and are logged."""
    f = generate_fleet(200, seed=2, now=NOW)
    live0 = sum(1 for u in f.uuids() if f.hidden(u).status != "DELETED")
    faults = FaultConfig(inserts_per_request=1.0, deletes_per_request=0.5, seed=1)
    with SimServer(f, faults=faults) as s:
        with httpx.Client() as c:
            totals = [c.get(s.endpoint, params={"limit": 1}).json()["total"] for _ in range(10)]
        assert s.wait_idle()  # the last mutation is applied before the connection closes
        mutations = list(s.stats.mutations)
    inserts = [m for m in mutations if m[1] == "insert"]
    deletes = [m for m in mutations if m[1] == "delete"]
    assert [m[0] for m in inserts] == list(range(1, 11))
    assert len(f) == 210
    assert 0 < len(deletes) < 10
    for i, total in enumerate(totals):
        assert total == live0 + i - sum(1 for m in deletes if m[0] <= i)
    for _, _, uuid in deletes:
        assert f.hidden(uuid).status == "DELETED"


def test_unstable_order_shuffles_ties_only() -> None:
    """With unstable_order, equal created_at nodes come back in varying order, keys stay sorted."""
    f = generate_fleet(120, seed=8, created_at_ties=1.0, now=NOW)
    with SimServer(f, faults=FaultConfig(unstable_order=True, seed=3)) as s, httpx.Client() as c:
        pages = [c.get(s.endpoint, params={"sort": "-created_at"}).json()["data"] for _ in range(6)]
    keys = [[d["created_at"] for d in p] for p in pages]
    assert all(k == sorted(k, reverse=True) for k in keys)
    assert all(k == keys[0] for k in keys)
    orders = {tuple(d["uuid"] for d in p) for p in pages}
    assert len(orders) > 1


def test_stable_order_without_the_fault(server) -> None:
    """Without unstable_order the same request returns the same order every time."""
    with httpx.Client() as c:
        pages = {
            tuple(
                d["uuid"]
                for d in c.get(server.endpoint, params={"sort": "created_at"}).json()["data"]
            )
            for _ in range(3)
        }
    assert len(pages) == 1


def test_connections_are_counted_and_return_to_zero(fleet) -> None:
    """Keep-alive reuses one connection; open connections return to 0 once clients close."""
    with SimServer(fleet) as s:
        clients = [httpx.Client() for _ in range(3)]
        for c in clients:
            for _ in range(3):
                assert c.get(s.endpoint, params={"limit": 1}).status_code == 200
        assert s.stats.open_connections == 3
        assert s.stats.max_open_connections == 3
        assert s.stats.connections_total == 3
        for c in clients:
            c.close()
        assert s.wait_idle()
        assert s.stats.open_connections == 0
        assert s.stats.requests == 9


def test_stop_closes_idle_keep_alive_connections(fleet) -> None:
    """stop() ends idle keep-alive connections and counts them closed."""
    s = SimServer(fleet)
    s.start()
    c = httpx.Client()
    c.get(s.endpoint)
    assert s.stats.open_connections == 1
    s.stop()
    assert s.stats.open_connections == 0
    c.close()


def test_demo_server_is_started_on_a_free_port() -> None:
    """demo_server() returns a running server with 3000 nodes."""
    s = demo_server(n_nodes=300, seed=7)
    try:
        assert s.url.startswith("http://127.0.0.1:")
        assert len(json.loads(httpx.get(s.endpoint).content)["data"]) == 50
    finally:
        s.stop()
