"""Where a command's fleet comes from: ``--api URL``, ``--snapshot FILE`` or ``--demo``.

Shared by ``nodes``, ``plan``, ``place`` and ``gpus``::

    add_source_arguments(parser)
    ...
    result = load_fleet(args, query)   # raises NodeSelectError subclasses; see source_exit_code

The API key comes from ``$NODESELECT_API_KEY`` only (a key on the command line would show up in
the process list and shell history). A progress bar is drawn on stderr when it is a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import attrs
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from nodeselect.cli._common import EXIT_API, EXIT_INCOMPLETE, EXIT_INPUT, QUIET, note, plural
from nodeselect.cli._parsers import (
    DEFAULT_DEADLINE,
    DEFAULT_TIMEOUT,
    MAX_SECONDS,
    add_source_arguments,
)
from nodeselect.errors import (
    APIError,
    APIStatusError,
    AuthenticationError,
    DeadlineExceededError,
    IncompleteFetchError,
    InputError,
    InvalidResponseError,
    NodeSelectError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolViolationError,
    ResponseTooLargeError,
    SnapshotError,
    TransportError,
)
from nodeselect.fetch import (
    API_KEY_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_CONCURRENCY,
    Client,
    FetchProgress,
    FetchResult,
    NodeQuery,
    NodesHook,
    ProgressHook,
    PushdownReport,
    RetryPolicy,
    SnapshotManifest,
    SnapshotNodes,
    explain_pushdown,
    fetch_sharded,
    load_snapshot,
)

__all__ = [
    "DEMO_SOURCE",
    "EXPLAIN_PUSHDOWN_BELOW",
    "NO_SOURCE",
    "add_source_arguments",
    "api_error_message",
    "api_url",
    "fetch_into_shards",
    "fleet_error",
    "load_fleet",
    "load_fleet_explained",
    "load_fleets",
    "open_snapshot",
    "progress_text",
    "require_source",
    "source_exit_code",
]

#: How a fleet from ``--demo`` is labelled.
DEMO_SOURCE = "demo (simulated fleet, seed 7)"
#: A fetch that returns fewer nodes than this (one page) is followed by count probes that say
#: what each pushed-down filter removed (:func:`~nodeselect.fetch._pushdown.explain_pushdown`).
EXPLAIN_PUSHDOWN_BELOW = 50
#: The most page requests ``--concurrency`` may ask for at once.
MAX_CONCURRENCY: Final = 256


#: What every command says when no fleet source was chosen (exit 2).
NO_SOURCE: Final = (
    "no fleet chosen: add --demo (the embedded simulated fleet, no key needed), "
    "--snapshot FILE (a fleet saved with `nodeselect nodes --out FILE`), or --api URL with "
    "your key in the NODESELECT_API_KEY environment variable"
)

_ENDPOINT_SUFFIXES: Final = ("/v1/nodes", "/v1")
_MAX_URL: Final = 2048


def api_url(text: str) -> str:
    """The API root ``--api`` names: ``http(s)://host[:port][/prefix]``, trailing ``/v1/nodes``
    (what ``nodeselect sim serve`` prints) and ``/`` removed.

    Raises:
        InputError: not an http(s) URL with a host and a valid port, or it holds a user name
            or password (never echoed: the key belongs in ``NODESELECT_API_KEY``).
    """
    if len(text) > _MAX_URL:
        raise InputError(f"--api: the URL is {len(text)} characters long; at most {_MAX_URL}")
    try:
        parts = urlsplit(text.strip())
        port = parts.port
        host = parts.hostname
    except ValueError:
        raise InputError(
            "--api: not a valid URL (bad port or brackets); give e.g. https://api.dispersed.com "
            "or http://127.0.0.1:8000"
        ) from None
    if parts.username is not None or parts.password is not None:
        raise InputError(
            "--api: the URL holds a user name or password (not shown); give the API key in "
            "the NODESELECT_API_KEY environment variable and the URL without it"
        )
    if parts.scheme not in ("http", "https"):
        raise InputError(
            f"--api {text}: give an http:// or https:// URL, e.g. https://api.dispersed.com"
        )
    if not host or any(c.isspace() or ord(c) < 0x20 for c in host):
        raise InputError(f"--api {text}: the URL has no valid host; e.g. https://api.dispersed.com")
    if parts.query or parts.fragment:
        raise InputError(
            f"--api {text}: give the API root without ?query or #fragment; nodeselect adds "
            "the filters itself"
        )
    path = parts.path.rstrip("/")
    for suffix in _ENDPOINT_SUFFIXES:
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    netloc = parts.netloc if port is None else f"{parts.netloc.rsplit(':', 1)[0]}:{port}"
    return urlunsplit((parts.scheme, netloc, path.rstrip("/"), "", ""))


def require_source(args: argparse.Namespace) -> None:
    """Refuse (exit 2, :data:`NO_SOURCE`) when no ``--api/--snapshot/--demo`` and no key.

    With ``NODESELECT_API_KEY`` set, the default API is meant. The same rule on every command.
    """
    if getattr(args, "api", None) is not None:
        args.api = api_url(args.api)
        return
    if getattr(args, "snapshot", None) or getattr(args, "demo", False):
        return
    if not os.environ.get(API_KEY_ENV):
        raise InputError(NO_SOURCE)


def progress_text(p: FetchProgress) -> str:
    """What the progress bar says after a page: ``"12/40 pages, 1 retry, 2 repairs"``."""
    parts = [f"{p.pages_done}/{p.pages_known} pages"]
    if p.retries:
        parts.append(plural(p.retries, "retry", "retries"))
    if p.repairs:
        parts.append(plural(p.repairs, "repair"))
    return ", ".join(parts)


class _RetryWatch(logging.Handler):
    """Hears the fetch logger's "retrying" records (from any thread) for the progress bar: a
    request that times out is retried before any page arrives, and the bar says so at once."""

    def __init__(self, on_retry: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self._on_retry = on_retry

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("retrying "):
            args = record.args if isinstance(record.args, tuple) else ()
            with contextlib.suppress(Exception):  # never let the bar break a fetch
                self._on_retry(str(args[3]) if len(args) > 3 else "")


@contextmanager
def fetch_progress(
    enabled: bool, *, console: Console | None = None
) -> Iterator[ProgressHook | None]:
    """A live progress bar on stderr (or ``console``): pages done / pages known (which grows
    as the fetch learns the totals), retries and repairs, redrawn as each page arrives; a
    retry is shown as it is decided (``retrying (timeout)``), before any page has arrived.
    Yields the ``on_progress`` hook, or ``None`` when not ``enabled`` (piped, ``-q``)."""
    if not enabled:
        yield None
        return
    bar = Progress(
        TextColumn("fetching"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        console=console or Console(file=sys.stderr),
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    task = bar.add_task("fetch", total=None, status="starting")
    last = FetchProgress(0, 0, 0, 0, 0)
    heard = 0

    def update(p: FetchProgress) -> None:
        nonlocal last
        last = p
        bar.update(task, completed=p.pages_done, total=p.pages_known, status=progress_text(p))

    def retrying(cause: str) -> None:
        nonlocal heard
        heard += 1
        shown = attrs.evolve(last, retries=max(last.retries, heard))
        why = f" ({cause})" if cause else ""
        bar.update(task, status=f"{progress_text(shown)}, retrying{why}")

    logger = logging.getLogger("nodeselect")
    watch = _RetryWatch(retrying)
    level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)  # our other handlers keep their own levels
    logger.addHandler(watch)
    try:
        with bar:
            yield update
    finally:
        logger.removeHandler(watch)
        logger.setLevel(level)


def _show_progress(args: argparse.Namespace) -> bool:
    """A bar only on a terminal (stderr), never with -q; ``args.progress`` overrides."""
    show = getattr(args, "progress", None)
    enabled = sys.stderr.isatty() if show is None else bool(show)
    return enabled and not QUIET[0]


def _client(args: argparse.Namespace, url: str, concurrency: int) -> Client:
    """A Client with the CLI's bounds: ``--timeout`` per request (connect, each read, and the
    whole request however the server trickles) and ``--deadline`` for the whole fetch.

    Raises:
        InputError: a bad bound, an API key with whitespace or control characters, or a key
            sent over plain http:// to another host without ``--allow-insecure-http``.
    """
    timeout = getattr(args, "timeout", DEFAULT_TIMEOUT)
    deadline = getattr(args, "deadline", DEFAULT_DEADLINE)
    if not (timeout > 0 and timeout <= MAX_SECONDS):
        raise InputError(f"--timeout {timeout}: give seconds, > 0 and at most {MAX_SECONDS:g}")
    if not (deadline > 0 and deadline <= MAX_SECONDS):
        raise InputError(f"--deadline {deadline}: give seconds, > 0 and at most {MAX_SECONDS:g}")
    try:
        return Client(
            url,
            concurrency=concurrency,
            timeout=timeout,
            request_timeout=timeout,
            retry=RetryPolicy(deadline=deadline),
            allow_insecure_http=bool(getattr(args, "allow_insecure_http", False)),
        )
    except InputError as exc:
        raise InputError(_client_message(str(exc))) from None


def _client_message(message: str) -> str:
    """The library's refusal in the CLI's words (its flags, not its keyword arguments)."""
    if "allow_insecure_http" in message:
        what = message.partition(";")[0].removeprefix("base_url: ")
        return f"--api {what}; use https://, or add --allow-insecure-http if the network is trusted"
    return message.replace("api_key: the API key", f"{API_KEY_ENV}: the API key", 1)


def load_fleet(
    args: argparse.Namespace,
    query: NodeQuery | None = None,
    *,
    on_nodes: NodesHook | None = None,
    progress: bool = True,
) -> FetchResult:
    """The fleet for ``args`` (as set by :func:`add_source_arguments`) and ``query``.

    A snapshot is returned whole: the query is not re-applied to it (a note says so on stderr
    when a query was given). Unless ``--allow-incomplete``, an incomplete fetch raises
    :class:`~nodeselect.IncompleteFetchError`. ``on_nodes`` gets the nodes of each page as it
    arrives (fetches only; not called for a snapshot); ``progress=False`` draws no bar.
    """
    return load_fleet_explained(args, query, explain=False, on_nodes=on_nodes, progress=progress)[0]


def _filters(query: NodeQuery) -> bool:
    """Whether ``query`` asks the server to filter (a snapshot is used whole: a note says so)."""
    return query != NodeQuery(limit=query.limit) or bool(query.pushed_down)


def load_fleets(args: argparse.Namespace, queries: Sequence[NodeQuery]) -> list[FetchResult]:
    """:func:`load_fleet` of each query (a batch's :func:`~nodeselect.fleet_queries`); a
    snapshot once, whatever the queries (it is used whole: read again per query, a large one
    cost its reading and its memory once per distinct job query, and said so each time)."""
    if getattr(args, "snapshot", None) and queries:
        pushed = [q for q in queries if _filters(q)]
        return [load_fleet(args, pushed[0] if pushed else queries[0])]
    return [load_fleet(args, q) for q in queries]


def open_snapshot(args: argparse.Namespace, queries: Sequence[NodeQuery]) -> SnapshotNodes:
    """The ``--snapshot`` of ``args``, its header read, its nodes not yet: build the table
    with ``NodeTable.from_snapshot`` (a chunk of nodes at a time, never the fleet's documents
    at once) and pass the same object as ``place(nodes=...)``. As :func:`load_fleets` does,
    a note says the snapshot is used whole when a query filters, and an incomplete snapshot
    raises IncompleteFetchError unless ``--allow-incomplete``."""
    strict, _ = _fetch_settings(args)
    nodes = SnapshotNodes(args.snapshot)
    if any(_filters(q) for q in queries):
        _used_whole()
    if strict:
        nodes.header.raise_if_incomplete()
    return nodes


def _used_whole() -> None:
    note(
        "note: the snapshot is used whole; server-side filters apply only when "
        "fetching (the job's constraints are still checked locally)"
    )


def _explained(client: Client, query: NodeQuery, result: FetchResult) -> PushdownReport | None:
    """What the pushed-down filters removed, when they left fewer than a page of nodes."""
    if len(result.nodes) >= EXPLAIN_PUSHDOWN_BELOW:
        return None
    try:
        return explain_pushdown(client.count, query)
    except APIError as exc:
        note(f"note: could not count what the server-side filters removed: {exc}")
        return None


def load_fleet_explained(
    args: argparse.Namespace,
    query: NodeQuery | None = None,
    *,
    explain: bool = True,
    on_nodes: NodesHook | None = None,
    progress: bool = True,
) -> tuple[FetchResult, PushdownReport | None]:
    """:func:`load_fleet`, plus what each pushed-down filter removed when the fetch returned
    fewer than :data:`EXPLAIN_PUSHDOWN_BELOW` nodes (``None`` otherwise, for snapshots, and
    when ``explain`` is false): a few ``limit=1`` count probes on the same connection pool."""
    query = query or NodeQuery()
    strict, concurrency = _fetch_settings(args)
    show_progress = _show_progress(args) and progress
    if getattr(args, "snapshot", None):
        result = load_snapshot(args.snapshot)
        if _filters(query):
            _used_whole()
        return (result.raise_if_incomplete() if strict else result), None
    with _fetching(args, concurrency, show_progress) as (client, hook, label):
        result = client.fetch(query, on_progress=hook, on_nodes=on_nodes, strict=strict)
        report = _explained(client, query, result) if explain else None
    return (result if label is None else _relabel(result, label)), report


def _fetch_settings(args: argparse.Namespace) -> tuple[bool, int]:
    """Whether an incomplete fetch is refused (not ``--allow-incomplete``), and the checked
    ``--concurrency``; InputError for a bad one or no fleet source."""
    concurrency = getattr(args, "concurrency", DEFAULT_CONCURRENCY)
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise InputError(f"--concurrency {concurrency}: give 1 to {MAX_CONCURRENCY}")
    require_source(args)
    return not getattr(args, "allow_incomplete", False), concurrency


@contextlib.contextmanager
def _fetching(
    args: argparse.Namespace, concurrency: int, show_progress: bool
) -> Iterator[tuple[Client, ProgressHook | None, str | None]]:
    """The client of ``--demo`` (the simulated fleet served here, stopped after) or
    ``--api``, the progress bar's hook, and the label of the source (``None``: its URL)."""
    if getattr(args, "demo", False):
        from nodeselect.sim import demo_server  # noqa: PLC0415 - the simulator only on --demo

        server = demo_server()
        try:
            with (
                _client(args, server.url, concurrency) as client,
                fetch_progress(show_progress) as hook,
            ):
                yield client, hook, DEMO_SOURCE
        finally:
            server.stop()
        return
    url = getattr(args, "api", None) or DEFAULT_BASE_URL
    with _client(args, url, concurrency) as client, fetch_progress(show_progress) as hook:
        yield client, hook, None


def fetch_into_shards(
    args: argparse.Namespace,
    query: NodeQuery,
    directory: str,
    shards: int,
    *,
    on_nodes: NodesHook | None = None,
    progress: bool = True,
) -> tuple[SnapshotManifest, FetchResult]:
    """The fleet of ``--api`` or ``--demo`` fetched straight into a sharded snapshot
    (:func:`~nodeselect.fetch.fetch_sharded`: the fleet is never held whole), as
    :func:`load_fleet` fetches it (the same client, bounds, progress bar and strictness);
    the manifest, and the result without its nodes."""
    strict, concurrency = _fetch_settings(args)
    with _fetching(args, concurrency, _show_progress(args) and progress) as (client, hook, label):
        return fetch_sharded(
            client,
            directory,
            shards,
            query,
            strict=strict,
            on_progress=hook,
            on_nodes=on_nodes,
            source=label,
        )


def _relabel(result: FetchResult, source: str) -> FetchResult:
    return attrs.evolve(result, source=source)


def _strip_query(url: str) -> str:
    return url.split("?", 1)[0]


def _reason(exc: BaseException) -> str:
    """The library's description of a failure without its ``GET URL:`` prefix and its advice
    (which names keyword arguments, not flags)."""
    text = str(exc)
    if text.startswith("GET ") and ": " in text:
        text = text.split(": ", 1)[1]
    text = text.split("; ", 1)[0].split(" (", 1)[0]
    return (
        text.replace("max_body_bytes=", "the limit of ")
        .replace("request_timeout=", "--timeout ")
        .replace("limit=", "limit ")
    )


def api_error_message(exc: APIError, url: str, deadline: float | None = None) -> str:
    """One line for an API failure: what happened, which URL, and what to try."""
    last = getattr(exc, "last_error", None)
    if isinstance(exc, DeadlineExceededError):
        within = "" if deadline is None else f" of {deadline:g} s"
        after = f" ({_reason(last)})" if last is not None else ""
        return (
            f"the fetch from {url} did not finish within its deadline{within}{after}: the "
            "server is slow or not answering; raise --deadline, narrow the filters, or try --demo"
        )
    violation = exc if isinstance(exc, ProtocolViolationError) else last
    if isinstance(violation, ResponseTooLargeError):
        return (
            f"the API at {url} sent a response too large for a page of nodes "
            f"({_reason(violation)}); reading stopped there: check that --api names the List "
            "Nodes API, or retry later"
        )
    if isinstance(violation, ProtocolViolationError):
        return (
            f"the API at {url} does not follow the List Nodes protocol ({_reason(violation)}): "
            "check that --api names the List Nodes API (e.g. https://api.dispersed.com), or "
            "retry later"
        )
    if isinstance(exc, AuthenticationError):
        return (
            f"the API at {_strip_query(exc.url)} rejected the request as unauthenticated "
            "(HTTP 401): set NODESELECT_API_KEY to a valid API key, or try --demo"
        )
    if isinstance(exc, PermissionDeniedError):
        return (
            f"the API at {_strip_query(exc.url)} refused the API key (HTTP 403): the key in "
            "NODESELECT_API_KEY is not allowed to list nodes; check it, or try --demo"
        )
    if isinstance(exc, NotFoundError):
        return (
            f"{_strip_query(exc.url)} is not a List Nodes endpoint (HTTP 404): give --api "
            "the API root, e.g. https://api.dispersed.com"
        )
    if isinstance(exc, APIStatusError):
        return f"{_strip_query(exc.url)} answered HTTP {exc.status_code}: {exc}; retry later"
    attempts = getattr(exc, "attempts", None)
    tries = "" if not attempts else f" after {attempts} attempts"
    cause = last or exc
    if isinstance(cause, TransportError | InvalidResponseError):
        reason = str(cause).rsplit(": ", 1)[-1].replace("request_timeout=", "--timeout ")
        if "complete message body" in reason or "without sending a response" in reason:
            # a body cut short: the fetch layer reports it as an invalid response
            return (
                f"the API at {url} cut its answers short{tries} ({reason}): the server or a "
                "proxy is failing; retry later, or try --demo for the simulated fleet"
            )
    if isinstance(cause, TransportError):
        reason = str(cause).rsplit(": ", 1)[-1].replace("request_timeout=", "--timeout ")
        return (
            f"cannot reach the API at {url}{tries} ({reason}): check the URL and your "
            "network, or try --demo for the simulated fleet"
        )
    if last is not None:
        return f"the API at {url} failed{tries}: {last}; retry later, or try --demo"
    return f"the API at {url} failed: {exc}"


def fleet_error(error: NodeSelectError, args: argparse.Namespace) -> tuple[str, int]:
    """The one line and exit code for an error from :func:`load_fleet`, the same on every
    command: API failures say which URL and what to try, never the library's retry advice."""
    code = source_exit_code(error)
    if isinstance(error, IncompleteFetchError):
        return f"{error} (add --allow-incomplete to use it anyway)", code
    if isinstance(error, APIError):
        url = getattr(args, "api", None) or DEFAULT_BASE_URL
        return api_error_message(error, url, getattr(args, "deadline", None)), code
    return str(error), code


def source_exit_code(error: NodeSelectError) -> int:
    """The documented exit code for an error raised by :func:`load_fleet`."""
    if isinstance(error, IncompleteFetchError):
        return EXIT_INCOMPLETE
    if isinstance(error, APIError):
        return EXIT_API
    if isinstance(error, (SnapshotError, InputError)):
        return EXIT_INPUT
    return EXIT_INPUT
