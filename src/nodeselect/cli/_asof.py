"""The evaluation time of a command, and what a snapshot did not prove.

A plan on a snapshot is a dry-run of the moment it was saved: by default it is evaluated as of
the snapshot's ``fetched_at`` (so the same file gives the same plan tomorrow), and ``--now``
overrides it (``--now now`` = the current time, or an ISO 8601 time with a timezone). A live
fetch (``--api``, ``--demo``) is evaluated at the current time.

The current time is read through :data:`clock` only, so tests can inject one.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import attrs

from nodeselect.errors import InputError
from nodeselect.fetch import FetchResult, NodeQuery

__all__ = [
    "clock",
    "evaluation_time",
    "fleet_time_info",
    "requested_time",
    "snapshot_gaps",
]


def _system_clock() -> datetime:
    return datetime.now(UTC)


#: Where commands read the current time (replace it in tests; never sleep).
clock: Callable[[], datetime] = _system_clock

#: Job key -> (NodeQuery field, ``nodes`` flag, API filter) of each fact only a filter proves.
_PROOFS: Final = {
    "placement.statuses": ("statuses", "--status", "filter[status]"),
    "placement.continents": ("continents", "--continent", "filter[continent_code]"),
    "placement.countries": ("countries", "--country", "filter[country_iso_code]"),
    "placement.subdivisions": ("subdivisions", "--subdivision", "filter[subdivision_iso_code]"),
    "placement.compliance": ("compliance", "--compliance", "filter[compliance_tags]"),
}


def evaluation_time(args: argparse.Namespace, result: FetchResult) -> datetime:
    """The time to evaluate ``result`` at (see the module docstring); InputError on a bad
    ``--now``."""
    given = requested_time(args)
    if given is not None:
        return given
    if getattr(args, "snapshot", None):
        return result.fetched_at.astimezone(UTC)
    return clock()


def requested_time(args: argparse.Namespace) -> datetime | None:
    """``--now`` as a time in UTC (``now``: :data:`clock`'s), or ``None`` when not given;
    InputError when it is neither ``now`` nor an ISO 8601 time with a timezone."""
    given = getattr(args, "now", None)
    if given is None:
        return None
    if given.strip().lower() == "now":
        return clock()
    try:
        when = datetime.fromisoformat(given.strip())
    except ValueError:
        when = None
    if when is None or when.tzinfo is None or when.utcoffset() is None:
        raise InputError(
            f"--now: {given!r} is not an ISO 8601 time with a timezone; give e.g. "
            "2026-11-30T10:00:00Z or 2026-11-30T11:00:00+01:00, or 'now'"
        )
    return when.astimezone(UTC)


def fleet_time_info(result: FetchResult, now: datetime) -> dict[str, Any]:
    """``evaluated_at`` (ISO 8601 UTC) and ``age_s`` (evaluated_at - fetched_at, seconds)."""
    return {
        "evaluated_at": now.astimezone(UTC).isoformat(),
        "age_s": round((now - result.fetched_at).total_seconds(), 1),
    }


def _nodes_command(query: NodeQuery, path: str) -> str:
    parts = ["nodeselect", "nodes"]
    for _key, (field, flag, _api) in _PROOFS.items():
        for value in sorted(getattr(query, field)):
            parts += [flag, value]
    if query.include_deleted:
        parts.append("--include-deleted")
    return " ".join(shlex.quote(p) for p in [*parts, "--out", path])


def snapshot_gaps(job_query: NodeQuery, saved: NodeQuery, path: str) -> list[str]:
    """What a job needs proved that the snapshot's query did not filter on, as advice lines.

    A node's status, geography and compliance are only known when the fetch filtered on them
    (docs/concepts.md); a snapshot saved without that filter leaves them unknown and the job
    rejects every node on them. Empty when the snapshot proved everything the job needs.
    """
    missing = []
    narrower = []
    for key in job_query.pushed_down:
        if key not in _PROOFS:
            continue
        field, _flag, api = _PROOFS[key]
        have = getattr(saved, field)
        if not have:
            missing.append(f"{api} ({key})")
        elif key != "placement.compliance" and not getattr(job_query, field) <= have:
            narrower.append(f"{api} ({key}: saved {', '.join(sorted(have))})")
    if not (missing or narrower):
        return []
    wanted = _merged(saved, job_query)
    lines = []
    if missing:
        lines.append(
            f"the snapshot was saved without {', '.join(missing)}: those facts are unknown for "
            "every node in it, and the job rejects a node whose fact is unknown"
        )
    if narrower:
        lines.append(
            f"the snapshot was saved with narrower filters than the job's: {'; '.join(narrower)}"
        )
    lines.append(f"re-save it with the job's filters: {_nodes_command(wanted, path)}")
    return lines


def _merged(saved: NodeQuery, job_query: NodeQuery) -> NodeQuery:
    """The snapshot's query with the job's proof filters added (values unioned)."""
    changes: dict[str, Any] = {}
    for _key, (field, _flag, _api) in _PROOFS.items():
        ours = getattr(job_query, field)
        if ours:
            changes[field] = getattr(saved, field) | ours
    if job_query.include_deleted:
        changes["include_deleted"] = True
    return attrs.evolve(saved, **changes)
