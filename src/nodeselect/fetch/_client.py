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
import os
import queue
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import Any, Final

import httpx
import msgspec

from nodeselect.errors import (
    APIError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RetriesExhaustedError,
    ServerError,
    TransportError,
)
from nodeselect.fetch._decode import DecodedPage, Validate, decode_body
from nodeselect.fetch._paging import DEFAULT_MAX_PAGES, Pager, PageRequest, Progress
from nodeselect.fetch._query import NodeQuery, expand_query
from nodeselect.fetch._result import FetchResult, NodeCount
from nodeselect.fetch._retry import RetryPolicy, parse_retry_after, retry_cause

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_CONCURRENCY",
    "ENDPOINT",
    "AsyncClient",
    "Client",
    "fetch_nodes",
]


def _user_agent() -> str:
    try:
        return f"nodeselect/{version('nodeselect')}"
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "nodeselect"


#: The ``User-Agent`` of every request: ``nodeselect/<version>``.
USER_AGENT: Final = _user_agent()

#: The public API.
DEFAULT_BASE_URL: Final = "https://api.dispersed.com"
#: The List Nodes path.
ENDPOINT: Final = "/v1/nodes"
#: Requests in flight by default (each on its own connection).
DEFAULT_CONCURRENCY: Final = 16
#: The environment variable read when no ``api_key`` is passed.
API_KEY_ENV: Final = "NODESELECT_API_KEY"

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
            raise RetriesExhaustedError(
                f"GET {url}: the fetch deadline of {self.policy.deadline} s passed after "
                f"{attempt} attempts; the last failed with: {failure.error}",
                attempts=attempt,
                last_error=failure.error,
            )
        with self.lock:
            self.retries[failure.cause] = self.retries.get(failure.cause, 0) + 1
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
        self.base_url = str(url.copy_with(username=None, password=None)).rstrip("/")
        self._url = self.base_url + ENDPOINT
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        self._headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        self.timeout = timeout
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

    def _judge(self, response: httpx.Response, req: PageRequest, ctl: _Control) -> DecodedPage:
        """Decode a 200 or raise _Retry carrying the typed error."""
        code = response.status_code
        body = response.content
        if code == 200:
            t = time.perf_counter()
            try:
                page = decode_body(body, req.facts, validate=self.validate)
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
        error = TransportError(f"GET {self._url}: {kind}: {exc or 'no detail'}")
        return _RetryError(error, retry_cause(exc), None)

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
            shown in a repr, log or error.
        timeout: seconds for connect/read/write/pool per request.
        concurrency: requests in flight (default 16); each has its own connection. A fetch is
            bound by round trips to a distant API: at 50 ms of latency 16 in flight fetch
            4,500 nodes 11-12x faster than a sequential loop (docs/performance.md).
        max_connections: an upper bound on connections (caps ``concurrency``).
        retry: the :class:`RetryPolicy`.
        transport: an ``httpx.BaseTransport`` to use instead of the network (tests).
        max_pages: a hard cap on first-pass page requests per fetch.
        validate: ``"lean"`` (fast: only the fields nodeselect reads are validated) or
            ``"full"`` (every node also parsed by the full model; slower).

    Use as a context manager, or call :meth:`close`: no connection outlives it.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_connections: int | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
        validate: Validate = "lean",
    ) -> None:
        super().__init__(
            base_url, api_key, timeout, concurrency, max_connections, retry, max_pages, validate
        )
        self._transport = transport
        self._pool: queue.SimpleQueue[httpx.Client] = queue.SimpleQueue()
        self._all: list[httpx.Client] = []
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
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
        """Close every connection and stop the worker threads."""
        self._closed = True
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        with self._lock:
            clients, self._all = self._all, []
        for c in clients:
            c.close()

    @contextmanager
    def _client(self) -> Iterator[httpx.Client]:
        try:
            c = self._pool.get_nowait()
        except queue.Empty:
            c = httpx.Client(**self._client_kwargs(self._transport))
            with self._lock:
                self._all.append(c)
        try:
            yield c
        finally:
            self._pool.put(c)

    def _get(self, req: PageRequest, ctl: _Control) -> DecodedPage:
        attempt = 0
        with self._client() as client:
            while True:
                if ctl.stop.is_set():
                    raise _StoppedError
                attempt += 1
                t = time.perf_counter()
                ctl.add(requests=1)
                try:
                    response = client.get(self._url, params=req.params)
                    ctl.add(http=time.perf_counter() - t)
                    return self._judge(response, req, ctl)
                except httpx.HTTPError as exc:
                    failure = self._transport_error(exc)
                except _RetryError as exc:
                    failure = exc
                delay = ctl.next_delay(self._url, attempt, failure)
                if delay > 0 and ctl.stop.wait(delay):
                    raise _StoppedError

    def _run(self, reqs: list[PageRequest], record: _Record, ctl: _Control) -> None:
        if not reqs:
            return
        if self.concurrency == 1 or len(reqs) == 1:
            for req in reqs:
                record(req, self._get(req, ctl))
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="nodeselect")
        futures: dict[Future[DecodedPage], PageRequest] = {
            self._executor.submit(self._get, r, ctl): r for r in reqs
        }
        pending = set(futures)
        try:
            # Each page is recorded (checked, merged) as soon as it arrives, overlapping the
            # wait for the others; a failure surfaces from fut.result() at once.
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    record(futures[fut], fut.result())
        except BaseException:
            ctl.stop.set()
            for fut in pending:
                fut.cancel()
            wait(pending)
            raise

    def fetch(
        self,
        query: NodeQuery | None = None,
        *,
        progress: Progress | None = None,
        strict: bool = False,
    ) -> FetchResult:
        """Fetch every node matching ``query`` (default: every live node).

        Args:
            query: the filters; see :class:`NodeQuery`.
            progress: called as ``progress(pages_done, pages_total)`` (in this thread).
            strict: raise :class:`~nodeselect.IncompleteFetchError` instead of returning a
                result that is not complete.

        Raises:
            APIStatusError: a non-retryable status (400, 401, 403, 404 ...), at once.
            RetriesExhaustedError: a page failed every attempt, or the deadline passed.
        """
        if self._closed:
            raise InputError("this Client is closed; create a new one")
        plan = Pager(query or NodeQuery(), max_pages=self.max_pages, progress=progress)
        ctl = _Control(self.retry)
        try:
            while reqs := plan.next_requests():
                self._run(reqs, plan.record, ctl)
        except _StoppedError:  # pragma: no cover - only workers raise it, and only after a failure
            raise APIError("the fetch was stopped") from None
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
        try:
            self._run(reqs, lambda r, p: totals.__setitem__(r.index, p.total), ctl)
        except _StoppedError:  # pragma: no cover
            raise APIError("the count was stopped") from None
        return _count_result(query or NodeQuery(), totals)


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
    return result.raise_if_incomplete() if strict else result


class AsyncClient(_Base):
    """The asyncio twin of :class:`Client` (same arguments; ``await fetch(...)``).

    ``concurrency`` one-connection ``httpx.AsyncClient`` s are used round-robin. Use
    ``async with``, or ``await aclose()``. Cancelling a fetch cancels its requests and closes
    their connections.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_connections: int | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
        validate: Validate = "lean",
    ) -> None:
        super().__init__(
            base_url, api_key, timeout, concurrency, max_connections, retry, max_pages, validate
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

    async def _attempts(
        self, client: httpx.AsyncClient, req: PageRequest, ctl: _Control
    ) -> DecodedPage:
        attempt = 0
        while True:
            attempt += 1
            t = time.perf_counter()
            ctl.add(requests=1)
            try:
                response = await client.get(self._url, params=req.params)
                ctl.add(http=time.perf_counter() - t)
                return self._judge(response, req, ctl)
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
    ) -> FetchResult:
        """Fetch every node matching ``query``; see :meth:`Client.fetch`."""
        if self._closed:
            raise InputError("this AsyncClient is closed; create a new one")
        plan = Pager(query or NodeQuery(), max_pages=self.max_pages, progress=progress)
        ctl = _Control(self.retry)
        while reqs := plan.next_requests():
            await self._run(reqs, plan.record, ctl)
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
