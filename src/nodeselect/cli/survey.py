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
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from nodeselect.cli import _asof
from nodeselect.cli._common import (
    EXIT_API,
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    EXIT_NO_FIT,
    EXIT_OK,
    EXIT_OUTPUT,
    fail,
    note,
)
from nodeselect.cli._dask import cluster, dask_logs, failure, interrupts, tile_bar
from nodeselect.cli._output import OutTargetError, check_out_target
from nodeselect.errors import NodeSelectError
from nodeselect.fetch import snapshot_fetched_at
from nodeselect.jobs import load_jobs

__all__: list[str] = []


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
    if args.synthetic is not None and (
        args.synthetic < 0 or (args.shards is not None and args.shards < 1)
    ):
        also = "" if args.shards is None else f", --shards {args.shards}"
        return fail(
            f"--synthetic {args.synthetic}{also}: give --synthetic >= 0 nodes and --shards >= 1",
            EXIT_INPUT,
        )
    if (
        args.synthetic is not None
        and args.shards is not None
        and args.shards > max(args.synthetic, 1)
    ):
        return fail(  # (1,000 nodes in 5,000 shards: 90 s surveying empty shards)
            f"--shards {args.shards} for --synthetic {args.synthetic} nodes: give at most one "
            "shard per node (more would be empty and only add work)",
            EXIT_INPUT,
        )
    try:  # (before a cluster starts: a folder that is not there, a device, a directory)
        check_out_target(str(args.out), force=True)  # (a link: written through)
    except OutTargetError as exc:
        return fail(str(exc), EXIT_INPUT)
    if args.out.suffix == ".parquet":
        try:
            import pyarrow.parquet  # noqa: F401, PLC0415
        except ImportError:
            return fail(f"{args.out}: Parquet needs pyarrow (pip install pyarrow)", EXIT_INPUT)
    done = [0, 0]  # jobs written, jobs with a fitting node
    jobs: tuple[Any, ...] = ()
    skip = int(getattr(args, "skip", 0) or 0)
    again = ""  # what the rest's command must repeat (a --now that is not the default)
    try:
        now, when = _evaluation_time(args)
        if getattr(args, "now", None) is not None and args.snapshot is not None:
            again = f" --now {_iso(now)}"
        jobs = load_jobs(args.jobs)
        if not jobs:
            return fail(f"{args.jobs}: no [[job]] tables found", EXIT_INPUT)
        if not 0 <= skip < len(jobs):
            return fail(
                f"--skip {skip}: {args.jobs} has {_count(len(jobs), 'job')}; give 0 <= --skip "
                f"< {len(jobs):,}",
                EXIT_INPUT,
            )
        if skip and args.out.exists():  # (most likely the stopped survey's own results)
            return fail(
                f"--out {args.out} exists: with --skip, write the rest to a new file (the "
                "first jobs' results may be in that one)",
                EXIT_INPUT,
            )
        if args.synthetic is not None:
            count = max(1, -(-args.synthetic // 250_000)) if args.shards is None else args.shards
            shards: tuple[nd.ShardSource, ...] = nd.synthetic_shards(
                args.synthetic, count, seed=args.seed
            )
        else:
            shards = nd.snapshot_shards(args.snapshot)
            if len(shards) == 1 and args.dask != "sync":
                note(
                    f"note: {args.snapshot} is one shard, so one worker ranks every tile; for "
                    f"the cluster to share them, save it in shards: nodeselect nodes --snapshot "
                    f"{args.snapshot} --out DIR --shards N"
                )
        start = time.perf_counter()
        with (
            dask_logs(int(getattr(args, "verbose", 0) or 0)),
            interrupts() as interrupted,
            cluster(args.dask) as client,
            nd.Survey(shards, client=client, now=now) as survey,
        ):
            total = survey.tiles(len(jobs) - skip, args.batch)
            with tile_bar(total, interrupted) as tick:
                results = survey.run(
                    jobs[skip:], k=args.top, seed=args.seed, batch_size=args.batch,
                    on_tile=tick,
                )  # fmt: skip
                if skip:  # (each job keeps its index in JOBS.toml)
                    results = (attrs.evolve(r, index=r.index + skip) for r in results)
                _write(nd, results, args.out, done, interrupted)
    except KeyboardInterrupt:
        return fail(
            _stopped(done, skip, len(jobs), args.out, again) + "interrupted", EXIT_INTERRUPTED
        )
    except nd.ResultsWriteError as exc:  # (not "written to": the file is what failed)
        end = skip + done[0]
        return fail(
            f"{exc} (the survey stopped after {_count(end, 'job')} of {len(jobs):,}; the file "
            "may hold fewer, the last cut short: survey again to a place with room)",
            EXIT_OUTPUT,
        )
    except NodeSelectError as exc:
        return fail(_stopped(done, skip, len(jobs), args.out, again) + str(exc), EXIT_INPUT)
    except Exception as exc:
        return fail(
            f"{_stopped(done, skip, len(jobs), args.out, again)}the Dask computation failed: "
            f"{failure(exc)}",
            EXIT_API,
        )
    written, fits = done
    seconds = time.perf_counter() - start
    skipped = f" (the first {skip:,} left out)" if skip else ""
    note(  # (a note: -q leaves it out, as every command's)
        f"surveyed {_count(written, 'job')}{skipped} x {_count(survey.nodes, 'node')} in "
        f"{_count(len(shards), 'shard')} ({_count(total, 'tile')}) in {seconds:.1f} s; "
        f"{_count(fits, 'job')} {'has' if fits == 1 else 'have'} a fitting node; "
        f"evaluated as of {_iso(now)} ({when}); wrote {args.out}"
    )
    return EXIT_OK if fits == written else EXIT_NO_FIT


def _count(n: int, word: str) -> str:
    """``"1 job"``, ``"4,000 jobs"``."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _evaluation_time(args: argparse.Namespace) -> tuple[datetime, str]:
    """The survey's evaluation time, and where it comes from: ``--now``; else a snapshot's
    ``fetched_at`` (as ``plan`` and ``place`` take it: the same snapshot gives the same
    survey tomorrow, and the rest of a stopped one ranks as the whole run would have); else
    the current time (a simulated fleet is generated relative to it).

    Raises:
        InputError: a bad ``--now``.
        SnapshotError: the snapshot's manifest or header cannot be read.
    """
    given = _asof.requested_time(args)
    if given is not None:
        return given, "--now"
    if args.snapshot is not None:
        return snapshot_fetched_at(args.snapshot).astimezone(UTC), "the snapshot's fetched_at"
    return _asof.clock(), "the current time"


def _iso(t: datetime) -> str:
    """``2026-11-30T10:00:00Z`` (microseconds when there are any)."""
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _stopped(done: list[int], skip: int, jobs: int, out: Path, again: str = "") -> str:
    """What a survey that stopped had written, and how to survey the rest (nothing when it
    wrote nothing: the same command again); ``again``: options the rest must repeat."""
    if not done[0]:
        return ""
    end = skip + done[0]
    which = "" if not skip else f"job {skip:,} " if done[0] == 1 else f"jobs {skip:,}-{end - 1:,} "
    return (
        f"the survey stopped after {_count(end, 'job')} of {jobs:,}, {which}written to {out} "
        f"(to survey the rest: --skip {end}{again} and another --out): "
    )


def _write(
    nd: Any, results: Iterator[Any], out: Path, done: list[int], check: Callable[[], None]
) -> None:
    """Write ``results`` to ``out``, counting in ``done`` the jobs written and those with a
    fitting node as they go (a survey that fails midway has written every job before);
    ``check`` before each result (:func:`_interrupts`)."""

    def counted() -> Iterator[Any]:
        for r in results:
            check()
            yield r
            done[0] += 1  # (the writer asks for the next one once this one is written)
            done[1] += r.feasible > 0  # (with --top 0 no node is listed, yet some fit)

    nd.write_results(counted(), out)
