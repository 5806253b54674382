"""What the commands that run on Dask share (``survey``, ``place --dask``): the cluster a
``--dask WHERE`` names, Dask's loggers kept off the terminal, a Ctrl-C that a finalizer
swallowed raised again, and a progress bar over the tiles."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, Final

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from nodeselect.cli._common import QUIET, note
from nodeselect.cli._render import is_terminal

__all__ = ["PROGRESS_EVERY_S", "cluster", "dask_logs", "failure", "interrupts", "tile_bar"]

_log: Final = logging.getLogger("nodeselect.cli")


class _DaskLines(logging.Handler):
    """Dask's own log records (``-vv``) as one line each, without their tracebacks."""

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage().strip()
        if text:
            note(f"dask: {record.levelname.lower()}: {text.splitlines()[0]}")


@contextlib.contextmanager
def dask_logs(verbose: int) -> Iterator[None]:
    """Dask's loggers kept off the terminal while a command runs on Dask (``-vv``: one line
    per record, no traceback): a client that loses its scheduler logs a traceback at ERROR
    before the command's own error, which says what failed."""
    names = {"distributed", "tornado", "asyncio"}  # (asyncio: "Task exception was never
    # retrieved" and its traceback, for Dask's own tasks cut short by a Ctrl-C)
    names.update(  # Dask configures some of its loggers apart (distributed.client)
        name
        for name, lg in logging.root.manager.loggerDict.items()
        if name.startswith(("distributed.", "tornado.")) and getattr(lg, "handlers", None)
    )
    loggers = [logging.getLogger(name) for name in sorted(names)]
    saved = [(lg.handlers[:], lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.handlers = [_DaskLines()] if verbose >= 2 else [logging.NullHandler()]
        lg.propagate = False
    try:
        yield
    finally:
        for lg, (handlers, propagate) in zip(loggers, saved, strict=True):
            lg.handlers, lg.propagate = handlers, propagate


@contextlib.contextmanager
def interrupts() -> Iterator[Callable[[], None]]:
    """A check that raises ``KeyboardInterrupt`` again if one was swallowed, called at each
    tile and each result. A Ctrl-C raises where the main thread is, and there it can be
    inside a finalizer (a Dask future's ``__del__``), whose exceptions Python reports as
    "Exception ignored in ..." and drops: a survey then ran to its end (seen under load in
    the slow suite). Such a KeyboardInterrupt is noted here, not printed."""
    swallowed = [False]
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            swallowed[0] = True
        else:
            previous(unraisable)

    def check() -> None:
        if swallowed[0]:
            raise KeyboardInterrupt

    sys.unraisablehook = hook
    try:
        yield check
    finally:
        sys.unraisablehook = previous


@contextlib.contextmanager
def cluster(spec: str) -> Iterator[Any]:
    """``--dask WHERE``'s client: ``None`` for ``sync`` (Dask's synchronous scheduler here),
    else :func:`nodeselect.dask.connect`'s (closed, and a local cluster stopped, after)."""
    from nodeselect.dask import connect  # noqa: PLC0415 - the optional extra, only when used

    if spec == "sync":
        yield None
        return
    with connect(spec) as client:
        yield client


def failure(exc: BaseException) -> str:
    """A failed Dask computation in one line: its type and its message's first line (Dask's
    messages run to several lines and tracebacks)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}{': ' + first if first else ''}"


#: Without a terminal, a progress line (``-v``) at most this often, in seconds.
PROGRESS_EVERY_S: Final = 30.0


def _elapsed(seconds: float) -> str:
    """``"0:42"``, ``"12:05"``, ``"1:02:09"``."""
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


@contextlib.contextmanager
def tile_bar(
    total: int,
    check: Callable[[], None],
    *,
    clock: Callable[[], float] = time.monotonic,
    every: float = PROGRESS_EVERY_S,
) -> Iterator[Callable[[], None]]:
    """A progress bar over ``total`` tiles on stderr, and the callback a tile's end calls:
    ``check`` (:func:`interrupts`), then one step. On a terminal, a bar that leaves no line
    (none with ``-q``); elsewhere (a batch job's log), with ``-v``, a line at most every
    ``every`` seconds (``clock``'s): a survey can run for an hour, and its log said nothing
    until the end."""
    if QUIET[0] or not is_terminal(sys.stderr):  # (-q: no bar, and no line)
        start = last = clock()
        done = 0

        def logged() -> None:
            nonlocal last, done
            check()
            done += 1
            now = clock()
            if now - last >= every and done < total:
                last = now
                _log.info(
                    "ranked %s of %s tiles (%d %%) in %s",
                    f"{done:,}",
                    f"{total:,}",
                    100 * done // max(total, 1),
                    _elapsed(now - start),
                )

        yield logged
        return
    bar = Progress(
        TextColumn("ranking tiles"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(file=sys.stderr, highlight=False),
        transient=True,
    )
    task = bar.add_task("tiles", total=total)

    def tick() -> None:
        check()
        bar.advance(task)

    with bar:
        yield tick
