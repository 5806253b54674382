"""Processes started together: the machine's own 2-process ratio, the ceiling a benchmark's
threads or cluster workers are read against (``bench_scale.py``, ``bench_dask.py``)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any


def longest(procs: int, target: Callable[..., None], *args: Any) -> float:
    """Run ``target(*args, barrier, out)`` in ``procs`` spawned processes and return the
    longest of the seconds each put on ``out``. Each child prepares (builds its table, warms),
    then waits on ``barrier`` so that no child's preparation overlaps another's timed work."""
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(procs), ctx.Queue()
    ps = [ctx.Process(target=target, args=(*args, barrier, out)) for _ in range(procs)]
    for p in ps:
        p.start()
    got = [out.get() for _ in ps]
    for p in ps:
        p.join()
    return max(got)
