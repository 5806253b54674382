"""The List Nodes clients, sync and async, on httpx.

Concurrency comes from several small connection pools rather than one big one: httpcore's pool
bookkeeping grows with its size (docs/reliability.md), so :class:`Client` runs ``concurrency``
worker threads, each with its own one-connection ``httpx.Client``, and :class:`AsyncClient`
round-robins ``concurrency`` one-connection ``httpx.AsyncClient`` s. Requests in flight never
exceed the connections there are, so httpx never raises ``PoolTimeout``.

The paging and consistency logic lives in :mod:`nodeselect.fetch._paging` and is shared.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import os
import queue
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Final, TypeVar

import httpx
import msgspec

from nodeselect.errors import (
    APIError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    DeadlineExceededError,
    InputError,
    InvalidResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RetriesExhaustedError,
    ServerError,
    TransportError,
)
from nodeselect.fetch._body import ACCEPT_ENCODING, BodyReader
from nodeselect.fetch._decode import DecodedPage, Validate, decode_body
from nodeselect.fetch._events import FetchProgress, NodesHook, ProgressHook
from nodeselect.fetch._paging import DEFAULT_MAX_PAGES, Pager, PageRequest, Progress
from nodeselect.fetch._query import NodeQuery, expand_query
from nodeselect.fetch._result import FetchedNode, FetchResult, NodeCount
from nodeselect.fetch._retry import RetryPolicy, parse_retry_after, retry_cause
from nodeselect.fetch._watch import Slot, Watchdog

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_REQUEST_TIMEOUT",
    "ENDPOINT",
    "AsyncClient",
    "Client",
    "fetch_nodes",
]


#: The public API.
DEFAULT_BASE_URL: Final = "https://api.dispersed.com"
#: The List Nodes path.
ENDPOINT: Final = "/v1/nodes"
#: Requests in flight by default (each on its own connection).
DEFAULT_CONCURRENCY: Final = 16
#: The environment variable read when no ``api_key`` is passed.
API_KEY_ENV: Final = "NODESELECT_API_KEY"
#: The largest response body read, after decompression (a page of 50 nodes is ~300 KB).
DEFAULT_MAX_BODY_BYTES: Final = 8 * 1024 * 1024
#: Seconds one request may take from its start to its last byte, however the server trickles.
DEFAULT_REQUEST_TIMEOUT: Final = 60.0
#: Of an error response, only this much is read (for its message).
_ERROR_BODY_BYTES: Final = 64 * 1024
#: How long an aborted fetch waits for its worker threads before it lets them go.
_ABORT_WAIT_S: Final = 1.0
#: Page requests in flight or waiting to be recorded, per connection of ``concurrency``.
_AHEAD: Final = 4

_log = logging.getLogger("nodeselect.fetch")
_T = TypeVar("_T")


@functools.cache
def _user_agent() -> str:
    """``nodeselect/<version>`` (the installed distribution's version)."""
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415 - once, lazily

    try:
        return f"nodeselect/{version('nodeselect')}"
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "nodeselect"


def _check_key(key: str) -> None:
    """Refuse a key that cannot go in a header as it is; never echo it."""
    for i, ch in enumerate(key):
        if ch.isspace() or not ch.isprintable() or not ch.isascii():
            what = (
                "whitespace"
                if ch.isspace()
                else "a control character"
                if not ch.isprintable()
                else "a non-ASCII character"
            )
            where = "at its end" if i == len(key) - 1 else f"at position {i + 1} of {len(key)}"
            raise InputError(
                f"api_key: the API key holds {what} {where} (the key itself is not shown); "
                "an API key is printable ASCII without spaces - a trailing newline from a "
                "file or `echo` is the usual cause"
            )


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.") or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_STATUS_ERRORS: Final[dict[int, type[APIStatusError]]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: BadRequestError,
    429: RateLimitError,
}


class _ServerMessage(msgspec.Struct):
    message: str | None = None


class _ErrorBody(msgspec.Struct):
    error: _ServerMessage | None = None
    message: str | None = None


_error_decoder = msgspec.json.Decoder(_ErrorBody)


def _server_message(body: bytes) -> str | None:
    try:
        err = _error_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        text = body[:200].decode("utf-8", "replace").strip()
        return text or None
    if err.error is not None and err.error.message:
        return err.error.message
    return err.message


class _RetryError(Exception):
    """An attempt failed in a way the policy may retry."""

    def __init__(self, error: APIError, cause: str | None, retry_after: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.cause = cause
        self.retry_after = retry_after


class _StoppedError(Exception):
    """Another request of the same fetch failed; this one gave up quietly."""


class _Control:
    """Counters and the stop flag of one fetch (shared by its workers)."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.requests = 0
        self.retries: dict[str, int] = {}
        self.nbytes = 0
        self.http_s = 0.0
        self.decode_s = 0.0
        self.t0 = time.monotonic()
        self.deadline = None if policy.deadline is None else self.t0 + policy.deadline
        self.retried = 0

    def request_deadline(self, url: str, request_timeout: float | None) -> float | None:
        """The wall-clock end of the next request: its own bound or the fetch's deadline,
        whichever is first; raise :class:`DeadlineExceededError` when the latter passed."""
        now = time.monotonic()
        if self.deadline is not None and now >= self.deadline:
            raise self.deadline_error(url)
        own = None if request_timeout is None else now + request_timeout
        if self.deadline is None:
            return own
        return self.deadline if own is None else min(own, self.deadline)

    def deadline_error(self, url: str) -> DeadlineExceededError:
        """The error of a fetch past its deadline."""
        return DeadlineExceededError(
            f"GET {url}: the fetch deadline of {self.policy.deadline} s passed after "
            f"{self.requests} requests (raise RetryPolicy.deadline, or narrow the query)",
            attempts=self.requests,
            last_error=None,
        )

    def past_deadline(self) -> bool:
        """Whether the fetch's deadline has passed."""
        return self.deadline is not None and time.monotonic() >= self.deadline

    def add(self, *, requests: int = 0, nbytes: int = 0, http: float = 0, dec: float = 0) -> None:
        with self.lock:
            self.requests += requests
            self.nbytes += nbytes
            self.http_s += http
            self.decode_s += dec

    def next_delay(self, url: str, attempt: int, failure: _RetryError) -> float:
        """The wait before attempt ``attempt + 1``, or raise the final error."""
        if failure.cause is None:
            raise failure.error
        if attempt >= self.policy.max_attempts:
            raise RetriesExhaustedError(
                f"GET {url}: all {attempt} attempts failed; the last with: {failure.error} "
                "(raise RetryPolicy.max_attempts to try harder)",
                attempts=attempt,
                last_error=failure.error,
            )
        delay = self.policy.delay(attempt, failure.retry_after)
        if self.deadline is not None and time.monotonic() + delay > self.deadline:
            raise DeadlineExceededError(
                f"GET {url}: the fetch deadline of {self.policy.deadline} s would pass before "
                f"attempt {attempt + 1}; the last failed with: {failure.error}",
                attempts=attempt,
                last_error=failure.error,
            )
        with self.lock:
            self.retries[failure.cause] = self.retries.get(failure.cause, 0) + 1
            self.retried += 1
        _log.info(
            "retrying %s after attempt %d/%d failed (%s); waiting %.2f s",
            url,
            attempt,
            self.policy.max_attempts,
            failure.cause,
            delay,
        )
        return delay


class _Base:
    """Configuration shared by the sync and async clients."""

    def __init__(  # noqa: PLR0917 - private; both subclasses pass everything through
        self,
        base_url: str,
        api_key: str | None,
        timeout: float,
        concurrency: int,
        max_connections: int | None,
        retry: RetryPolicy | None,
        max_pages: int,
        validate: Validate,
        *,
        request_timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        allow_insecure_http: bool = False,
        own_transport: bool = False,
    ) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise InputError(
                f"base_url: {str(url.copy_with(username=None, password=None))!r} is not an "
                "http(s) URL; expected e.g. 'https://api.dispersed.com'"
            )
        if concurrency < 1:
            raise InputError(f"concurrency: {concurrency} must be >= 1")
        if max_pages < 1:
            raise InputError(f"max_pages: {max_pages} must be >= 1")
        if validate not in ("lean", "full"):
            raise InputError(f"validate: {validate!r} is not 'lean' or 'full'")
        if not timeout > 0:
            raise InputError(f"timeout: {timeout} must be > 0 seconds")
        if request_timeout is not None and not request_timeout > 0:
            raise InputError(f"request_timeout: {request_timeout} must be > 0 seconds or None")
        if max_body_bytes < 1024:
            raise InputError(f"max_body_bytes: {max_body_bytes} must be >= 1024")
        self.base_url = str(url.copy_with(username=None, password=None)).rstrip("/")
        self._url = self.base_url + ENDPOINT
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        self._headers = {
            "Accept": "application/json",
            "Accept-Encoding": ACCEPT_ENCODING,
            "User-Agent": _user_agent(),
        }
        if key:
            _check_key(key)
            # (A caller's own transport decides itself where bytes go: tests, proxies.)
            insecure = url.scheme == "http" and not own_transport and not allow_insecure_http
            if insecure and not _is_loopback(url.host):
                raise InputError(
                    f"base_url: {self.base_url!r} is plain http to a host that is not this "
                    "machine: the API key would cross the network in cleartext; use https, "
                    "or pass allow_insecure_http=True if the network is trusted"
                )
            self._headers["Authorization"] = f"Bearer {key}"
        self.timeout = timeout
        self.request_timeout = request_timeout
        self.max_body_bytes = max_body_bytes
        self.concurrency = min(concurrency, max_connections or concurrency)
        self.retry = retry if retry is not None else RetryPolicy()
        self.max_pages = max_pages
        self.validate: Validate = validate
        self._ssl: ssl.SSLContext | None = None

    def __repr__(self) -> str:  # never the key
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, "
            f"concurrency={self.concurrency}, authenticated={'Authorization' in self._headers})"
        )

    def _reader(self, response: httpx.Response, deadline: float | None) -> BodyReader:
        """A capped reader for ``response``'s body (error bodies only for their message)."""
        ok = response.status_code == 200
        return BodyReader(
            response.headers.get("content-encoding"),
            response.headers.get("content-length"),
            cap=self.max_body_bytes if ok else _ERROR_BODY_BYTES,
            url=self._url,
            deadline=deadline,
            truncate=not ok,
        )

    def _already_read(self, response: httpx.Response, reader: BodyReader) -> bytes:
        """The body of a response whose transport read (and decoded) it already, under the
        same cap."""
        ok = response.status_code == 200
        plain = BodyReader(
            None,
            None,
            cap=self.max_body_bytes if ok else _ERROR_BODY_BYTES,
            url=self._url,
            truncate=not ok,
        )
        del reader  # its encoding was already undone by httpx
        plain.feed(response.content)
        return plain.finish()

    def _judge(
        self, response: httpx.Response, body: bytes, req: PageRequest, ctl: _Control
    ) -> DecodedPage:
        """Decode a 200 or raise _Retry carrying the typed error."""
        code = response.status_code
        if code == 200:
            t = time.perf_counter()
            try:
                page = decode_body(body, req.facts, validate=self.validate, max_items=req.limit)
            except APIError as exc:
                raise _RetryError(exc, retry_cause(exc), None) from None
            ctl.add(nbytes=len(body), dec=time.perf_counter() - t)
            return page
        cls = _STATUS_ERRORS.get(code) or (ServerError if code >= 500 else APIStatusError)
        url = str(response.request.url.copy_with(username=None, password=None))
        error = cls(code, _server_message(body), url)
        retry_after = None
        ms = response.headers.get("retry-after-ms")
        if ms is not None:
            parsed = parse_retry_after(ms)
            retry_after = None if parsed is None else parsed / 1000.0
        if retry_after is None:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
        raise _RetryError(error, retry_cause(error), retry_after)

    def _transport_error(self, exc: httpx.HTTPError) -> _RetryError:
        kind = type(exc).__name__
        cause = retry_cause(exc)
        error: APIError
        if cause == "truncated":  # the server answered, then cut its body: not unreachable
            error = InvalidResponseError(
                f"GET {self._url}: the server cut its response body short "
                f"({kind}: {exc or 'no detail'})"
            )
        else:
            error = TransportError(f"GET {self._url}: {kind}: {exc or 'no detail'}")
        return _RetryError(error, cause, None)

    def _timed_out(self, ctl: _Control) -> _RetryError:
        """A request stopped at its wall-clock bound (or the fetch's deadline)."""
        if ctl.past_deadline():
            raise ctl.deadline_error(self._url)
        error = TransportError(
            f"GET {self._url}: no complete answer within request_timeout="
            f"{self.request_timeout} s (the server is too slow, or trickles its answer)"
        )
        return _RetryError(error, "timeout", None)

    def _client_kwargs(self, transport: Any) -> dict[str, Any]:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        kwargs: dict[str, Any] = {
            "headers": self._headers,
            "timeout": httpx.Timeout(self.timeout),
            "limits": limits,
        }
        if transport is not None:
            kwargs["transport"] = transport
        else:
            # One SSL context for every pool: building one per httpx.Client costs ~20-50 ms
            # (loading the CA bundle). A plain-http base URL never uses it (redirects are not
            # followed), so it gets a context that trusts no CA: no load, and any TLS use of it
            # fails verification rather than passing unverified.
            if self._ssl is None:
                if self._url.startswith("http://"):
                    self._ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                else:
                    self._ssl = httpx.create_ssl_context()
            kwargs["verify"] = self._ssl
        return kwargs


class Client(_Base):
    """Fetch nodes from ``GET /v1/nodes`` with ``concurrency`` requests in flight (threads).

    Args:
        base_url: the API root (default the public API).
        api_key: sent as ``Authorization: Bearer``; default ``$NODESELECT_API_KEY``. Never
            shown in a repr, log or error. Refused (``InputError``) when it holds whitespace
            or control characters.
        timeout: seconds for connect/read/write/pool per operation of a request.
        request_timeout: seconds one request may take from start to last byte, however the
            server trickles (``None``: no bound but the fetch deadline).
        concurrency: requests in flight (default 16); each has its own connection. A fetch is
            bound by round trips to a distant API: at 50 ms of latency 16 in flight fetch
            4,500 nodes 11-12x faster than a sequential loop (docs/performance.md).
        max_connections: an upper bound on connections (caps ``concurrency``).
        retry: the :class:`RetryPolicy`; its ``deadline`` bounds the whole fetch.
        transport: an ``httpx.BaseTransport`` to use instead of the network (tests).
        max_pages: a hard cap on first-pass page requests per fetch.
        validate: ``"lean"`` (fast: only the fields nodeselect reads are validated) or
            ``"full"`` (every node also parsed by the full model; slower).
        max_body_bytes: the largest response body read, decompressed (default 8 MiB);
            a bigger one raises :class:`~nodeselect.errors.ResponseTooLargeError`.
        allow_insecure_http: send the API key over plain ``http://`` to a host that is not
            this machine (refused by default).

    Use as a context manager, or call :meth:`close`: no connection outlives it.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        request_timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_connections: int | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
        validate: Validate = "lean",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        allow_insecure_http: bool = False,
    ) -> None:
        super().__init__(
            base_url,
            api_key,
            timeout,
            concurrency,
            max_connections,
            retry,
            max_pages,
            validate,
            request_timeout=request_timeout,
            max_body_bytes=max_body_bytes,
            allow_insecure_http=allow_insecure_http,
            own_transport=transport is not None,
        )
        self._transport = transport
        self._pool: queue.SimpleQueue[tuple[httpx.Client, Slot]] = queue.SimpleQueue()
        self._all: list[httpx.Client] = []
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._watchdog = Watchdog()
        self._aborted = False
        self._closed = False

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection and stop the worker threads.

        After an interrupted fetch (Ctrl-C) it does not wait for requests still connecting:
        their sockets were shut down and their threads end on their own.
        """
        self._closed = True
        if self._executor is not None:
            self._executor.shutdown(wait=not self._aborted, cancel_futures=True)
            self._executor = None
        self._watchdog.close()
        with self._lock:
            clients, self._all = self._all, []
        for c in clients:
            c.close()

    @contextmanager
    def _client(self) -> Iterator[tuple[httpx.Client, Slot]]:
        try:
            c, slot = self._pool.get_nowait()
        except queue.Empty:
            c, slot = httpx.Client(**self._client_kwargs(self._transport)), Slot()
            with self._lock:
                self._all.append(c)
        try:
            yield c, slot
        finally:
            self._pool.put((c, slot))

    def _once(
        self, client: httpx.Client, slot: Slot, req: PageRequest, ctl: _Control
    ) -> DecodedPage:
        """One attempt, bounded by the watchdog (wall clock) and the body cap."""
        deadline = ctl.request_deadline(self._url, self.request_timeout)
        if deadline is not None:
            self._watchdog.watch(slot, deadline)
        t = time.perf_counter()
        try:
            with client.stream(
                "GET", self._url, params=req.params, extensions={"trace": slot.trace}
            ) as response:
                reader = self._reader(response, deadline)
                if response.is_stream_consumed:  # a transport that read the body (tests)
                    body = self._already_read(response, reader)
                else:
                    for chunk in response.iter_raw():
                        reader.feed(chunk)
                        if reader.full:
                            break
                    body = reader.finish()
        except (httpx.HTTPError, TimeoutError) as exc:
            if slot.expired or isinstance(exc, TimeoutError):
                raise self._timed_out(ctl) from None
            raise
        except APIError as exc:  # the body: corrupt compression (retried), past a limit (not)
            raise _RetryError(exc, retry_cause(exc), None) from None
        finally:
            if deadline is not None:
                self._watchdog.unwatch(slot)
        ctl.add(http=time.perf_counter() - t)
        return self._judge(response, body, req, ctl)

    def _get(self, req: PageRequest, ctl: _Control) -> DecodedPage:
        attempt = 0
        with self._client() as (client, slot):
            while True:
                if ctl.stop.is_set():
                    raise _StoppedError
                attempt += 1
                ctl.add(requests=1)
                try:
                    return self._once(client, slot, req, ctl)
                except httpx.HTTPError as exc:
                    failure = self._transport_error(exc)
                except _RetryError as exc:
                    failure = exc
                if ctl.stop.is_set():
                    raise _StoppedError
                delay = ctl.next_delay(self._url, attempt, failure)
                if delay > 0 and ctl.stop.wait(delay):
                    raise _StoppedError

    def _abort(self, ctl: _Control) -> None:
        """Stop every request of this fetch now (a failure elsewhere, or Ctrl-C)."""
        ctl.stop.set()
        self._watchdog.abort_all()

    def _run(self, reqs: list[PageRequest], record: _Record, ctl: _Control) -> None:
        if not reqs:
            return
        if self.concurrency == 1 or len(reqs) == 1:
            # In this thread: Ctrl-C interrupts a blocked read directly.
            for req in reqs:
                record(req, self._get(req, ctl))
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="nodeselect")
        executor = self._executor
        futures: dict[Future[DecodedPage], PageRequest] = {}
        pending: set[Future[DecodedPage]] = set()
        ahead = iter(reqs)

        def submit() -> None:
            r = next(ahead, None)
            if r is not None:
                fut = executor.submit(self._get, r, ctl)
                futures[fut] = r
                pending.add(fut)

        try:
            # (inside the try: Ctrl-C may land between two submits)
            for _ in range(_AHEAD * self.concurrency):
                submit()
            # Each page is recorded (checked, merged) as soon as it arrives, overlapping the
            # wait for the others; a failure surfaces from fut.result() at once. At most
            # _AHEAD pages per connection are asked for ahead of the recording, and a
            # recorded page is let go: with every page of a round asked for at once (a
            # first round asks for all of them), the threads decoded pages faster than one
            # thread recorded them, and the whole fleet's pages waited in memory, whatever
            # the recorder kept of them (measured: 100k nodes, 970 MB).
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    record(futures.pop(fut), fut.result())
                    submit()
        except BaseException as exc:
            self._abort(ctl)
            for fut in pending:
                fut.cancel()
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                # Do not wait on threads still connecting: Ctrl-C must stop now.
                self._aborted = True
                wait(pending, timeout=_ABORT_WAIT_S)
            else:
                wait(pending)
            raise

    def _guarded(self, ctl: _Control, work: Callable[[], _T]) -> _T:
        """Run ``work``; on any way out but success (Ctrl-C included, wherever it lands),
        stop every request of the fetch first."""
        try:
            return work()
        except _StoppedError:  # pragma: no cover - only workers raise it, after a failure
            raise APIError("the fetch was stopped") from None
        except BaseException as exc:
            self._abort(ctl)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                self._aborted = True
            raise

    def fetch(
        self,
        query: NodeQuery | None = None,
        *,
        progress: Progress | None = None,
        strict: bool = False,
        on_progress: ProgressHook | None = None,
        on_nodes: NodesHook | None = None,
    ) -> FetchResult:
        """Fetch every node matching ``query`` (default: every live node).

        Args:
            query: the filters; see :class:`NodeQuery`.
            progress: called as ``progress(pages_done, pages_total)`` (in this thread).
            strict: raise :class:`~nodeselect.IncompleteFetchError` instead of returning a
                result that is not complete.
            on_progress: called with a :class:`FetchProgress` after every page (in this
                thread): pages done / known, retries, repairs, nodes so far.
            on_nodes: called with the nodes each page proved to match, each node once, as
                pages arrive (in this thread): stream them out before the fetch is over. The
                returned result holds every one of them (and is the one to trust for
                ``complete``).

        Raises:
            APIStatusError: a non-retryable status (400, 401, 403, 404 ...), at once.
            RetriesExhaustedError: a page failed every attempt.
            DeadlineExceededError: ``retry.deadline`` passed (requests in flight are stopped).
            ProtocolViolationError: a response broke a safety limit (body size, items per page).
        """
        return self._fetch(
            query, progress=progress, strict=strict, on_progress=on_progress, on_nodes=on_nodes
        )

    def _fetch(
        self,
        query: NodeQuery | None,
        *,
        progress: Progress | None = None,
        strict: bool = False,
        on_progress: ProgressHook | None = None,
        on_nodes: NodesHook | None = None,
        store: Callable[[FetchedNode], FetchedNode] | None = None,
    ) -> FetchResult:
        """:meth:`fetch`, each matched node stored as ``store`` makes it (the result's nodes
        are what it returned; :func:`nodeselect.fetch.fetch_sharded` stores a stand-in and
        writes the document aside)."""
        if self._closed:
            raise InputError("this Client is closed; create a new one")
        plan = Pager(query or NodeQuery(), max_pages=self.max_pages, progress=progress, store=store)
        ctl = _Control(self.retry)
        record = _recorder(plan, ctl, on_progress, on_nodes)

        def rounds() -> None:
            while reqs := plan.next_requests():
                if ctl.past_deadline():
                    raise ctl.deadline_error(self._url)
                _log_round(plan, reqs)
                self._run(reqs, record, ctl)

        self._guarded(ctl, rounds)
        return _finish(plan, ctl, self.base_url, strict)

    def count(self, query: NodeQuery | None = None) -> NodeCount:
        """How many nodes match ``query``: one ``limit=1`` request per server query, run
        concurrently and retried like pages.

        The result is an ``int`` (a :class:`~nodeselect.NodeCount`): exact for unions (the
        branches of a query are disjoint, their totals add up), an *upper bound* when the query
        asks for several compliance tags (the server counts each tag alone; the smallest count
        bounds their intersection), which ``NodeCount.exact`` says.

        Raises:
            APIStatusError: a non-retryable status, at once.
            RetriesExhaustedError: a request failed every attempt.
        """
        if self._closed:
            raise InputError("this Client is closed; create a new one")
        reqs, totals = _count_requests(query or NodeQuery())
        ctl = _Control(self.retry)
        self._guarded(
            ctl, lambda: self._run(reqs, lambda r, p: totals.__setitem__(r.index, p.total), ctl)
        )
        return _count_result(query or NodeQuery(), totals)


def _recorder(
    plan: Pager, ctl: _Control, on_progress: ProgressHook | None, on_nodes: NodesHook | None
) -> _Record:
    """``plan.record`` followed by the caller's hooks (called in the caller's thread)."""
    if on_progress is None and on_nodes is None:
        return plan.record
    streamed = 0

    def record(req: PageRequest, page: DecodedPage) -> None:
        nonlocal streamed
        plan.record(req, page)
        fresh = plan.take_new()
        streamed += len(fresh)
        if on_nodes is not None and fresh:
            on_nodes(fresh)
        if on_progress is not None:
            on_progress(
                FetchProgress(
                    pages_done=plan.pages_done,
                    pages_known=max(plan.pages_total, plan.pages_done),
                    retries=ctl.retried,
                    repairs=plan.repair_requests,
                    nodes=streamed,
                )
            )

    return record


def _log_round(plan: Pager, reqs: list[PageRequest]) -> None:
    if plan.repair_requests:
        _log.info(
            "repair round: %d requests (%d repair requests so far): the first pass did not "
            "prove the result complete (drift, unstable order or large ties)",
            len(reqs),
            plan.repair_requests,
        )
    else:
        _log.debug("round of %d requests", len(reqs))


_Record = Callable[[PageRequest, DecodedPage], None]


def _count_requests(query: NodeQuery) -> tuple[list[PageRequest], dict[int, int]]:
    """One ``limit=1`` request per server query (documented forms only: the query's own)."""
    reqs = [
        PageRequest(i, 1, (*sq.params, ("limit", "1"), ("page", "1")), sq.facts, "count")
        for i, sq in enumerate(expand_query(query))
    ]
    return reqs, {}


def _count_result(query: NodeQuery, totals: dict[int, int]) -> NodeCount:
    """Sum the disjoint branches; a branch of several tags is bounded by its smallest count."""
    branches: dict[int, list[int]] = {}
    for i, sq in enumerate(expand_query(query)):
        branches.setdefault(sq.branch, []).append(totals[i])
    value, exact = 0, True
    for counts in branches.values():
        low = min(counts)
        value += low
        exact &= len(counts) == 1 or low == 0
    return NodeCount(value, exact=exact)


def _finish(plan: Pager, ctl: _Control, source: str, strict: bool) -> FetchResult:
    result = plan.finish(
        requests=ctl.requests,
        retries=ctl.retries,
        nbytes=ctl.nbytes,
        elapsed_s=time.monotonic() - ctl.t0,
        http_s=ctl.http_s,
        decode_s=ctl.decode_s,
        source=source,
    )
    st = result.stats
    if st.drift:
        _log.info("the fleet changed during the fetch (drift); the changed parts were re-read")
    for issue in st.issues:
        _log.warning("%s", issue)
    return result.raise_if_incomplete() if strict else result


class AsyncClient(_Base):
    """The asyncio twin of :class:`Client` (same arguments; ``await fetch(...)``).

    ``concurrency`` one-connection ``httpx.AsyncClient`` s are used round-robin. Use
    ``async with``, or ``await aclose()``. Cancelling a fetch cancels its requests and closes
    their connections. Every request runs under ``asyncio.timeout`` (``request_timeout``, or
    what is left of the fetch's deadline).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        request_timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_connections: int | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
        validate: Validate = "lean",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        allow_insecure_http: bool = False,
    ) -> None:
        super().__init__(
            base_url,
            api_key,
            timeout,
            concurrency,
            max_connections,
            retry,
            max_pages,
            validate,
            request_timeout=request_timeout,
            max_body_bytes=max_body_bytes,
            allow_insecure_http=allow_insecure_http,
            own_transport=transport is not None,
        )
        self._transport = transport
        self._free: list[httpx.AsyncClient] = []
        self._all: list[httpx.AsyncClient] = []
        self._sem: asyncio.Semaphore | None = None
        self._closed = False

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection."""
        self._closed = True
        clients, self._all, self._free = self._all, [], []
        for c in clients:
            await c.aclose()

    async def _get(self, req: PageRequest, ctl: _Control) -> DecodedPage:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.concurrency)
        async with self._sem:
            client = (
                self._free.pop()
                if self._free
                else httpx.AsyncClient(**self._client_kwargs(self._transport))
            )
            if client not in self._all:
                self._all.append(client)
            try:
                return await self._attempts(client, req, ctl)
            finally:
                self._free.append(client)

    async def _once(
        self, client: httpx.AsyncClient, req: PageRequest, ctl: _Control
    ) -> DecodedPage:
        deadline = ctl.request_deadline(self._url, self.request_timeout)
        t = time.perf_counter()
        try:
            async with (
                asyncio.timeout_at(None if deadline is None else _loop_time(deadline)),
                client.stream("GET", self._url, params=req.params) as response,
            ):
                reader = self._reader(response, deadline)
                if response.is_stream_consumed:  # a transport that read the body (tests)
                    body = self._already_read(response, reader)
                else:
                    async for chunk in response.aiter_raw():
                        reader.feed(chunk)
                        if reader.full:
                            break
                    body = reader.finish()
        except TimeoutError:
            raise self._timed_out(ctl) from None
        except APIError as exc:  # the body: corrupt compression (retried), past a limit (not)
            raise _RetryError(exc, retry_cause(exc), None) from None
        ctl.add(http=time.perf_counter() - t)
        return self._judge(response, body, req, ctl)

    async def _attempts(
        self, client: httpx.AsyncClient, req: PageRequest, ctl: _Control
    ) -> DecodedPage:
        attempt = 0
        while True:
            attempt += 1
            ctl.add(requests=1)
            try:
                return await self._once(client, req, ctl)
            except httpx.HTTPError as exc:
                failure = self._transport_error(exc)
            except _RetryError as exc:
                failure = exc
            delay = ctl.next_delay(self._url, attempt, failure)
            if delay > 0:
                await asyncio.sleep(delay)

    async def _run(self, reqs: list[PageRequest], record: _Record, ctl: _Control) -> None:
        if not reqs:
            return

        async def one(req: PageRequest) -> None:
            record(req, await self._get(req, ctl))

        try:
            async with asyncio.TaskGroup() as tg:
                for req in reqs:
                    tg.create_task(one(req))
        except BaseExceptionGroup as group:
            raise _first(group) from None

    async def fetch(
        self,
        query: NodeQuery | None = None,
        *,
        progress: Progress | None = None,
        strict: bool = False,
        on_progress: ProgressHook | None = None,
        on_nodes: NodesHook | None = None,
    ) -> FetchResult:
        """Fetch every node matching ``query``; see :meth:`Client.fetch`."""
        if self._closed:
            raise InputError("this AsyncClient is closed; create a new one")
        plan = Pager(query or NodeQuery(), max_pages=self.max_pages, progress=progress)
        ctl = _Control(self.retry)
        record = _recorder(plan, ctl, on_progress, on_nodes)
        while reqs := plan.next_requests():
            if ctl.past_deadline():
                raise ctl.deadline_error(self._url)
            _log_round(plan, reqs)
            await self._run(reqs, record, ctl)
        return _finish(plan, ctl, self.base_url, strict)

    async def count(self, query: NodeQuery | None = None) -> NodeCount:
        """How many nodes match ``query``; see :meth:`Client.count`."""
        if self._closed:
            raise InputError("this AsyncClient is closed; create a new one")
        reqs, totals = _count_requests(query or NodeQuery())
        await self._run(
            reqs, lambda r, p: totals.__setitem__(r.index, p.total), _Control(self.retry)
        )
        return _count_result(query or NodeQuery(), totals)


def _loop_time(deadline: float) -> float:
    """A ``time.monotonic()`` instant on the running loop's clock."""
    loop = asyncio.get_running_loop()
    return loop.time() + (deadline - time.monotonic())


def _first(group: BaseExceptionGroup[Any]) -> BaseException:
    """The first non-cancellation error of a task group (our own errors first)."""
    leaves: list[BaseException] = []

    def walk(g: BaseExceptionGroup[Any]) -> None:
        for e in g.exceptions:
            if isinstance(e, BaseExceptionGroup):
                walk(e)
            else:
                leaves.append(e)

    walk(group)
    for e in leaves:
        if not isinstance(e, asyncio.CancelledError):
            return e
    return leaves[0] if leaves else group


def fetch_nodes(
    query: NodeQuery | None = None,
    *,
    base_url: str = DEFAULT_BASE_URL,
    api_key: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    **kwargs: Any,
) -> FetchResult:
    """One fetch with a fresh :class:`Client`, closed afterwards."""
    with Client(base_url, api_key, **kwargs) as client:
        return client.fetch(query, progress=progress)
