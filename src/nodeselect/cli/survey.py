"""`nodeselect survey`: every job's top nodes over a sharded fleet, on Dask (docs/scale-out.md).

Reads the jobs of JOBS.toml, builds each shard of ``--snapshot DIR`` (a sharded snapshot from
``nodeselect nodes --out DIR --shards N``, or one snapshot file) on the Dask workers, and
writes each job's top ``--top`` nodes to ``--out`` as they come: JSON lines, or Parquet for a
``.parquet`` path (needs pyarrow). ``--dask`` picks where: ``sync`` (this process, Dask's
synchronous scheduler), ``local:N`` (N worker processes on this machine) or a scheduler address
(``tcp://host:8786``). The answer is the single-machine ``rank_many`` on the whole fleet, bit
for bit. Needs the optional extra: ``pip install 'nodeselect[dask]'``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from nodeselect.cli._common import (
    EXIT_API,
    EXIT_INPUT,
    EXIT_NO_FIT,
    EXIT_OK,
    fail,
)
from nodeselect.cli._render import is_terminal
from nodeselect.errors import NodeSelectError
from nodeselect.jobs import load_jobs

__all__: list[str] = []


@contextlib.contextmanager
def _where(spec: str) -> Iterator[Any]:
    from nodeselect.dask import connect  # noqa: PLC0415 - the optional extra, only when used

    if spec == "sync":
        yield None
        return
    with connect(spec) as client:
        yield client


def _run(args: argparse.Namespace) -> int:
    try:
        import nodeselect.dask as nd  # noqa: PLC0415 - the optional extra, only when used
    except ImportError:
        return fail(
            "survey needs Dask: pip install 'nodeselect[dask]' (dask and distributed)", EXIT_INPUT
        )
    if args.top < 0 or args.batch < 1:
        return fail(
            f"--top {args.top}, --batch {args.batch}: give --top >= 0 and --batch >= 1", EXIT_INPUT
        )
    if args.shards is not None and args.synthetic is None:
        return fail("--shards goes with --synthetic; a snapshot's shards are its own", EXIT_INPUT)
    if args.out.suffix == ".parquet":
        try:
            import pyarrow.parquet  # noqa: F401, PLC0415
        except ImportError:
            return fail(f"{args.out}: Parquet needs pyarrow (pip install pyarrow)", EXIT_INPUT)
    try:
        jobs = load_jobs(args.jobs)
        if not jobs:
            return fail(f"{args.jobs}: no [[job]] tables found", EXIT_INPUT)
        if args.synthetic is not None:
            count = args.shards or max(1, -(-args.synthetic // 250_000))
            shards: tuple[nd.ShardSource, ...] = nd.synthetic_shards(
                args.synthetic, count, seed=args.seed
            )
        else:
            shards = nd.snapshot_shards(args.snapshot)
        start = time.perf_counter()
        with _where(args.dask) as client, nd.Survey(shards, client=client) as survey:
            total = survey.tiles(len(jobs), args.batch)
            err = Console(file=sys.stderr, highlight=False)
            bar = Progress(
                TextColumn("ranking tiles"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
                disable=not is_terminal(sys.stderr),
            )
            task = bar.add_task("tiles", total=total)
            with bar:
                results = survey.run(
                    jobs, k=args.top, seed=args.seed, batch_size=args.batch,
                    on_tile=lambda: bar.advance(task),
                )  # fmt: skip
                written, fits = _write(nd, results, args.out)
    except NodeSelectError as exc:
        return fail(str(exc), EXIT_INPUT)
    except Exception as exc:
        return fail(f"the Dask computation failed: {type(exc).__name__}: {exc}", EXIT_API)
    seconds = time.perf_counter() - start
    print(
        f"nodeselect: surveyed {_count(written, 'job')} x {_count(survey.nodes, 'node')} in "
        f"{_count(len(shards), 'shard')} ({_count(total, 'tile')}) in {seconds:.1f} s; "
        f"{_count(fits, 'job')} {'has' if fits == 1 else 'have'} a fitting node; "
        f"wrote {args.out}",
        file=sys.stderr,
    )
    return EXIT_OK if fits == written else EXIT_NO_FIT


def _count(n: int, word: str) -> str:
    """``"1 job"``, ``"4,000 jobs"``."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _write(nd: Any, results: Iterator[Any], out: Path) -> tuple[int, int]:
    fits = 0

    def counted() -> Iterator[Any]:
        nonlocal fits
        for r in results:
            fits += bool(r.top)
            yield r

    written: int = nd.write_results(counted(), out)
    return written, fits
