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
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import attrs
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from nodeselect.cli._common import EXIT_API, EXIT_INCOMPLETE, EXIT_INPUT
from nodeselect.errors import (
    APIError,
    IncompleteFetchError,
    InputError,
    NodeSelectError,
    SnapshotError,
)
from nodeselect.fetch import (
    DEFAULT_BASE_URL,
    DEFAULT_CONCURRENCY,
    Client,
    FetchResult,
    NodeQuery,
    PushdownReport,
    explain_pushdown,
    load_snapshot,
)

__all__ = [
    "DEMO_SOURCE",
    "EXPLAIN_PUSHDOWN_BELOW",
    "add_source_arguments",
    "load_fleet",
    "load_fleet_explained",
    "source_exit_code",
]

#: How a fleet from ``--demo`` is labelled.
DEMO_SOURCE = "demo (simulated fleet, seed 7)"
#: A fetch that returns fewer nodes than this (one page) is followed by count probes that say
#: what each pushed-down filter removed (:func:`~nodeselect.fetch._pushdown.explain_pushdown`).
EXPLAIN_PUSHDOWN_BELOW = 50


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--api``, ``--snapshot``, ``--demo``, ``--concurrency``, ``--allow-incomplete``."""
    group = parser.add_argument_group("fleet source (one of)")
    ex = group.add_mutually_exclusive_group()
    ex.add_argument(
        "--api",
        metavar="URL",
        default=None,
        help=f"List Nodes API base URL (default {DEFAULT_BASE_URL}; key from $NODESELECT_API_KEY)",
    )
    ex.add_argument(
        "--snapshot", metavar="FILE", default=None, help="read the fleet from a saved snapshot"
    )
    ex.add_argument(
        "--demo",
        action="store_true",
        help="use the embedded simulated fleet (a local server; data is not real)",
    )
    group.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"page requests in flight (default {DEFAULT_CONCURRENCY})",
    )
    group.add_argument(
        "--allow-incomplete",
        action="store_true",
        help="accept a fetch that could not prove it got every matching node (else exit 4)",
    )


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    if not enabled:
        yield None
        return
    bar = Progress(
        TextColumn("fetching pages"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(file=sys.stderr),
        transient=True,
    )
    task = bar.add_task("fetch", total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield update


def load_fleet(args: argparse.Namespace, query: NodeQuery | None = None) -> FetchResult:
    """The fleet for ``args`` (as set by :func:`add_source_arguments`) and ``query``.

    A snapshot is returned whole: the query is not re-applied to it (a note says so on stderr
    when a query was given). Unless ``--allow-incomplete``, an incomplete fetch raises
    :class:`~nodeselect.IncompleteFetchError`.
    """
    return load_fleet_explained(args, query, explain=False)[0]


def _explained(client: Client, query: NodeQuery, result: FetchResult) -> PushdownReport | None:
    """What the pushed-down filters removed, when they left fewer than a page of nodes."""
    if len(result.nodes) >= EXPLAIN_PUSHDOWN_BELOW:
        return None
    try:
        return explain_pushdown(client.count, query)
    except APIError as exc:
        print(
            f"nodeselect: note: could not count what the server-side filters removed: {exc}",
            file=sys.stderr,
        )
        return None


def load_fleet_explained(
    args: argparse.Namespace, query: NodeQuery | None = None, *, explain: bool = True
) -> tuple[FetchResult, PushdownReport | None]:
    """:func:`load_fleet`, plus what each pushed-down filter removed when the fetch returned
    fewer than :data:`EXPLAIN_PUSHDOWN_BELOW` nodes (``None`` otherwise, for snapshots, and
    when ``explain`` is false): a few ``limit=1`` count probes on the same connection pool."""
    query = query or NodeQuery()
    strict = not getattr(args, "allow_incomplete", False)
    show = getattr(args, "progress", None)
    show_progress = sys.stderr.isatty() if show is None else bool(show)
    concurrency = getattr(args, "concurrency", DEFAULT_CONCURRENCY)
    if concurrency < 1:
        raise InputError(f"--concurrency: {concurrency} must be >= 1")
    if getattr(args, "snapshot", None):
        result = load_snapshot(args.snapshot)
        if query != NodeQuery(limit=query.limit) or query.pushed_down:
            print(
                "nodeselect: note: the snapshot is used whole; server-side filters apply only "
                "when fetching",
                file=sys.stderr,
            )
        return (result.raise_if_incomplete() if strict else result), None
    if getattr(args, "demo", False):
        from nodeselect.sim import demo_server  # noqa: PLC0415 - the simulator only on --demo

        server = demo_server()
        try:
            with (
                Client(server.url, concurrency=concurrency) as client,
                _progress(show_progress) as progress,
            ):
                result = client.fetch(query, progress=progress, strict=strict)
                report = _explained(client, query, result) if explain else None
        finally:
            server.stop()
        return _relabel(result, DEMO_SOURCE), report
    url = getattr(args, "api", None) or DEFAULT_BASE_URL
    with Client(url, concurrency=concurrency) as client, _progress(show_progress) as progress:
        result = client.fetch(query, progress=progress, strict=strict)
        return result, (_explained(client, query, result) if explain else None)


def _relabel(result: FetchResult, source: str) -> FetchResult:
    return attrs.evolve(result, source=source)


def source_exit_code(error: NodeSelectError) -> int:
    """The documented exit code for an error raised by :func:`load_fleet`."""
    if isinstance(error, IncompleteFetchError):
        return EXIT_INCOMPLETE
    if isinstance(error, APIError):
        return EXIT_API
    if isinstance(error, (SnapshotError, InputError)):
        return EXIT_INPUT
    return EXIT_INPUT
