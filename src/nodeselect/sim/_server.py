"""A faithful local ``GET /v1/nodes`` over real HTTP/1.1 (keep-alive) on loopback.

One ``ThreadingHTTPServer`` in a daemon thread, one thread per connection. Each response is
written with a single ``sendall`` (status line, headers and body together) on a socket with
Nagle disabled, so small pages are not held back by delayed ACKs.
"""

from __future__ import annotations

import contextlib
import gzip
import hmac
import logging
import socket
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final
from urllib.parse import urlsplit

from nodeselect.sim._dialect import Dialect
from nodeselect.sim._faults import FaultConfig, FaultPlan, ServerStats
from nodeselect.sim._fleet import Fleet, generate_fleet
from nodeselect.sim._query import SimQueryError, error_body, parse_params, parse_query_string

__all__ = ["SimServer", "demo_server"]

log = logging.getLogger("nodeselect.sim")

ENDPOINT: Final = "/v1/nodes"
_REASONS: Final = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


_error_body = error_body


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer

    def do_GET(self) -> None:
        self.server.sim._handle_get(self)

    def _not_allowed(self) -> None:
        self.server.sim._count_request()
        self.close_connection = True
        body = _error_body(405, f"method {self.command} is not allowed; use GET", None)
        self.send_raw(405, body, {"Allow": "GET", "Connection": "close"},
                      head_only=self.command == "HEAD")  # fmt: skip

    def do_POST(self) -> None:
        self._not_allowed()

    def do_PUT(self) -> None:
        self._not_allowed()

    def do_DELETE(self) -> None:
        self._not_allowed()

    def do_PATCH(self) -> None:
        self._not_allowed()

    def do_HEAD(self) -> None:
        self._not_allowed()

    def do_OPTIONS(self) -> None:
        self._not_allowed()

    def send_raw(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        *,
        cut: int | None = None,
        head_only: bool = False,
    ) -> None:
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
            "Server: nodeselect-sim",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
        ]
        lines.extend(f"{k}: {v}" for k, v in (headers or {}).items())
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        payload = b"" if head_only else body if cut is None else body[:cut]
        try:
            self.wfile.write(head + payload)
        except OSError:
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not logged line by line (the Authorization header never is)."""


def _encoded(
    body: bytes, dialect: Dialect, accept: str | None
) -> tuple[bytes, dict[str, str] | None]:
    """A page's body and headers under the dialect's ``content_encoding``, when the request's
    ``Accept-Encoding`` names it (a token match; q-values are not weighed)."""
    enc = dialect.content_encoding
    token = "deflate" if enc == "raw-deflate" else enc
    offered = {t.split(";")[0].strip().lower() for t in (accept or "").split(",")}
    if enc == "identity" or token not in offered:
        return body, None
    if enc == "gzip":
        return gzip.compress(body, mtime=0), {"Content-Encoding": "gzip"}
    z = zlib.compressobj(wbits=zlib.MAX_WBITS if enc == "deflate" else -zlib.MAX_WBITS)
    return z.compress(body) + z.flush(), {"Content-Encoding": "deflate"}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    # socketserver's default listen backlog is 5: a client opening 16+ connections at once had
    # the surplus SYNs dropped and retried after a second, which looked like server latency.
    request_queue_size = 1024
    sim: SimServer

    def process_request(self, request: Any, client_address: Any) -> None:
        self.sim._connection_opened(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        try:
            super().shutdown_request(request)
        finally:
            self.sim._connection_closed(request)


class SimServer:
    """Serve a :class:`~nodeselect.sim.Fleet` as ``GET /v1/nodes`` on loopback.

    A context manager (``with SimServer(fleet) as server: httpx.get(server.url + "/v1/nodes")``).
    Faults follow ``faults``; when ``api_key`` is set, ``Authorization: Bearer <key>`` is required
    (missing: 401, wrong: 403). The key is never logged nor echoed. Documents and stored times
    follow ``fleet.dialect``; ranges are parsed strictly (both ends, else 422) when
    ``fleet.dialect.strict_ranges``, unless ``strict_ranges`` overrides it.

    Attributes:
        fleet: the fleet served (mutated by insert/delete faults).
        strict_ranges: only ``START,END`` with both ends is accepted (an open side is a 422).
        faults: the fault configuration.
        stats: live counters (see :class:`~nodeselect.sim.ServerStats`).
        url: ``http://HOST:PORT`` once started; the endpoint is ``url + "/v1/nodes"``.
    """

    def __init__(
        self,
        fleet: Fleet,
        *,
        faults: FaultConfig = FaultConfig(),  # noqa: B008 - frozen, immutable default
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        strict_ranges: bool | None = None,
    ) -> None:
        self.fleet = fleet
        self.strict_ranges = fleet.dialect.strict_ranges if strict_ranges is None else strict_ranges
        self.faults = faults
        self.stats = ServerStats()
        self._api_key = api_key
        self._host = host
        self._port = port
        self._plan = FaultPlan(faults)
        self._cond = threading.Condition()
        self._sockets: set[Any] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def __repr__(self) -> str:
        auth = "on" if self._api_key is not None else "off"
        return f"SimServer(url={self.url!r}, nodes={len(self.fleet)}, auth={auth})"

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Bind, then serve in a daemon thread; sets :attr:`url`."""
        if self._httpd is not None:
            return
        httpd = _HTTPServer((self._host, self._port), _Handler)
        httpd.sim = self
        self._httpd = httpd
        port = int(httpd.server_address[1])
        self.url = f"http://{self._host}:{port}"
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"nodeselect-sim:{port}", daemon=True,
        )  # fmt: skip
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, close every open connection, and wait for them to be counted closed."""
        httpd = self._httpd
        if httpd is None:
            return
        httpd.shutdown()
        with self._cond:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self.wait_idle(timeout=5.0)
        self._httpd = None

    def __enter__(self) -> SimServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """The full List Nodes URL: ``url + "/v1/nodes"``."""
        return self.url + ENDPOINT

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no connection is open (the server notices a client's close
        asynchronously); ``True`` if that happened within ``timeout`` seconds."""
        with self._cond:
            return self._cond.wait_for(lambda: self.stats.open_connections == 0, timeout)

    # -- connection accounting ----------------------------------------------------------------

    def _connection_opened(self, sock: Any) -> None:
        with self._cond:
            self._sockets.add(sock)
            s = self.stats
            s.open_connections += 1
            s.connections_total += 1
            s.max_open_connections = max(s.max_open_connections, s.open_connections)

    def _connection_closed(self, sock: Any) -> None:
        with self._cond:
            if sock in self._sockets:
                self._sockets.discard(sock)
                self.stats.open_connections -= 1
                self._cond.notify_all()

    def _count_request(self) -> int:
        with self._cond:
            self.stats.requests += 1
            return self.stats.requests

    def _count_fault(self, kind: str) -> None:
        with self._cond:
            self.stats.faults[kind] = self.stats.faults.get(kind, 0) + 1

    # -- one request --------------------------------------------------------------------------

    def _handle_get(self, h: _Handler) -> None:
        self._count_request()
        if self.faults.latency_ms > 0:
            time.sleep(self.faults.latency_ms / 1000.0)
        parts = urlsplit(h.path)
        if parts.path.rstrip("/") != ENDPOINT:
            h.send_raw(404, _error_body(404, f"no such path {parts.path!r}; the endpoint is "
                                             f"{ENDPOINT}", None))  # fmt: skip
            return
        fault = self._plan.draw_fault()
        retry = {} if self.faults.retry_after is None else {"Retry-After": self.faults.retry_after}
        if fault == "drop":
            self._count_fault(fault)
            h.close_connection = True
            return
        if fault in ("http_500", "http_503", "http_429"):
            self._count_fault(fault)
            status = int(fault[-3:])
            messages = {
                500: "simulated internal error",
                503: "simulated overload; retry later",
                429: "simulated rate limit; slow down",
            }
            h.send_raw(status, _error_body(status, messages[status], None),
                       retry if status != 500 else None)  # fmt: skip
            return
        denied = self._check_auth(h.headers.get("Authorization"))
        if denied is not None:
            h.send_raw(denied[0], _error_body(denied[0], denied[1], None))
            return
        try:
            query = parse_params(parse_query_string(parts.query), strict_ranges=self.strict_ranges)
        except SimQueryError as exc:
            h.send_raw(exc.status, _error_body(exc.status, exc.message, exc.param))
            return
        shuffle = self._plan.fork() if self.faults.unstable_order else None
        ids, total = self.fleet.select(query, shuffle)
        docs = self.fleet.page_bytes(ids)
        body = b"".join(
            (
                b'{"data":[',
                b",".join(docs),
                b'],"limit":%d,"page":%d,"total":%d}' % (query.limit, query.page, total),
            )
        )
        if fault == "truncate":
            self._count_fault(fault)
            h.close_connection = True
            h.send_raw(200, body, cut=max(1, len(body) // 2))
            return
        h.send_raw(200, *_encoded(body, self.fleet.dialect, h.headers.get("Accept-Encoding")))
        with self._cond:
            self.stats.page_requests_ok += 1
            request_no = self.stats.page_requests_ok
        self._mutate(request_no)

    def _check_auth(self, header: str | None) -> tuple[int, str] | None:
        if self._api_key is None:
            return None
        if header is None or not header.startswith("Bearer ") or not header[7:].strip():
            return 401, "missing API key; send the header 'Authorization: Bearer <key>'"
        if not hmac.compare_digest(header[7:].strip().encode(), self._api_key.encode()):
            return 403, "the API key is not valid for listing nodes"
        return None

    def _mutate(self, request_no: int) -> None:
        f = self.faults
        if f.inserts_per_request <= 0 and f.deletes_per_request <= 0:
            return
        inserts = self._plan.draw_count(f.inserts_per_request)
        deletes = self._plan.draw_count(f.deletes_per_request)
        if not inserts and not deletes:
            return
        rng = self._plan.fork()
        done: list[tuple[int, str, str]] = []
        for _ in range(inserts):
            done.append((request_no, "insert", self.fleet.insert_random(rng)))
        for _ in range(deletes):
            uuid = self.fleet.delete_random(rng)
            if uuid is not None:
                done.append((request_no, "delete", uuid))
        with self._cond:
            self.stats.mutations.extend(done)
        for entry in done:
            log.info("sim mutation after page %d: %s %s", *entry)


def demo_server(
    n_nodes: int = 3000,
    seed: int = 7,
    dialect: Dialect = Dialect(),  # noqa: B008 - frozen, immutable default
) -> SimServer:
    """A started server over a fresh fleet on a free loopback port (for ``--demo``)."""
    server = SimServer(generate_fleet(n_nodes, seed, dialect=dialect))
    server.start()
    return server
