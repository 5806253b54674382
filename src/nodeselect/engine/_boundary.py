"""Argument checks at the engine's public boundary: wrong types fail first, with a TypeError
that says what was expected and what to do, never deep inside a private module.

``rank``, ``rank_many``, ``explain_node`` (and placement's ``place``) call these before any work.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from os import PathLike

from nodeselect.jobs import Job
from nodeselect.table import NodeTable, check_now_arg

__all__ = ["check_job_arg", "check_jobs_arg", "check_k_arg", "check_table_arg", "checked_now"]


def _job_hint(value: object) -> str:
    if isinstance(value, str | PathLike):
        return "load a file with nodeselect.load_job(path) (several: nodeselect.load_jobs)"
    if isinstance(value, dict):
        return "build one from a dict with nodeselect.jobs.job_from_dict(data)"
    return "build one with nodeselect.Job(...) or load a file with nodeselect.load_job(path)"


def _shown(value: object) -> str:
    text = repr(value)
    return type(value).__name__ + (f" {text}" if len(text) <= 60 else "")


def check_job_arg(job: object, where: str) -> Job:
    """``job`` if it is a :class:`~nodeselect.jobs.Job`; else TypeError with what to do."""
    if not isinstance(job, Job):
        raise TypeError(f"{where}: expected a Job, got {_shown(job)}; {_job_hint(job)}")
    return job


def check_jobs_arg(jobs: object, where: str) -> Sequence[Job]:
    """``jobs`` if it is a sequence of Jobs; else TypeError naming the first bad item."""
    if isinstance(jobs, Job):
        raise TypeError(f"{where}: expected a sequence of Jobs, got one Job; pass [job]")
    if not isinstance(jobs, Sequence) or isinstance(jobs, str | bytes):
        raise TypeError(
            f"{where}: expected a sequence of Jobs, got {_shown(jobs)}; "
            "load a file of [[job]] tables with nodeselect.load_jobs(path)"
        )
    for i, job in enumerate(jobs):
        check_job_arg(job, f"{where}: jobs[{i}]")
    return jobs


def check_table_arg(table: object, where: str) -> NodeTable:
    """``table`` if it is a :class:`~nodeselect.NodeTable`; else TypeError with what to do."""
    if isinstance(table, NodeTable):
        return table
    if hasattr(table, "nodes"):
        hint = "build the table once with NodeTable.from_fetch(result) and pass it"
    elif isinstance(table, Sequence) and len(table) and hasattr(table[0], "lean"):
        hint = "build the table once with NodeTable.from_nodes(nodes) and pass it"
    else:
        hint = "build one with NodeTable.from_fetch(client.fetch(NodeQuery.from_job(job)))"
    raise TypeError(f"{where}: expected a NodeTable, got {type(table).__name__}; {hint}")


def check_k_arg(k: object, where: str) -> int:
    """``k`` if it is an int (not a bool); else TypeError. (A negative k is an InputError.)"""
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"{where}: k must be an int (nodes to return), got {_shown(k)}")
    return k


def checked_now(now: object, where: str) -> datetime | None:
    """``now`` unchanged if it is ``None`` or an aware datetime; else TypeError."""
    if now is None:
        return None
    return check_now_arg(now, where)
