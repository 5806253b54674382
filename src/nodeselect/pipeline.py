"""Helpers that cross layers: fetch what a batch of jobs needs, merge the results, place them.

Everything here is composed from the public seams of :mod:`nodeselect.fetch`,
:mod:`nodeselect.table` and :mod:`nodeselect.placement`; nothing below imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs

from nodeselect.errors import InputError
from nodeselect.fetch import NodeQuery
from nodeselect.jobs import Job
from nodeselect.placement import Plan, place
from nodeselect.table import NodeTable

__all__ = ["fleet_queries", "merge_fetched", "place_from"]


def fleet_queries(jobs: Sequence[Job]) -> list[NodeQuery]:
    """The distinct server-side queries of ``jobs`` (``NodeQuery.from_job``), first seen first.

    Fetching each and merging the results (:func:`merge_fetched`) proves every fact any job
    needs (status, geography, compliance) on every node that has it.
    """
    out: list[NodeQuery] = []
    for job in jobs:
        q = attrs.evolve(NodeQuery.from_job(job), pushed_down=())
        if q not in out:
            out.append(q)
    return out or [NodeQuery()]


def merge_fetched(results: Sequence[Any]) -> list[Any]:
    """The nodes of several fetch results, once each (first seen first), facts merged."""
    merged: dict[str, Any] = {}
    for result in results:
        for node in result.nodes:
            seen = merged.get(node.uuid)
            merged[node.uuid] = (
                node if seen is None else attrs.evolve(seen, facts=seen.facts.merge(node.facts))
            )
    return list(merged.values())


def place_from(
    source: Any,
    jobs: Sequence[Job],
    *,
    query: NodeQuery | None = None,
    now: datetime | None = None,
    seed: int = 0,
) -> Plan:
    """Place ``jobs`` on a fleet given as a client, a FetchResult, fetched nodes or a table.

    With a :class:`~nodeselect.Client` (anything with ``.fetch``), the fleet is fetched with
    ``query``, or by default with every distinct query the jobs push down
    (:func:`fleet_queries`, results merged) so each job's proved facts are there. Node
    addresses are filled in from the documents (not for a bare ``NodeTable``).
    """
    if isinstance(source, NodeTable):
        return place(jobs, source, now=now, seed=seed)
    if hasattr(source, "fetch"):
        queries = [query] if query is not None else fleet_queries(tuple(jobs))
        fetched: Any = merge_fetched([source.fetch(q, strict=True) for q in queries])
    else:
        fetched = getattr(source, "nodes", source)
    if not isinstance(fetched, Sequence):
        raise InputError(
            "place_from: expected a Client, a FetchResult, a sequence of fetched nodes or a "
            f"NodeTable, got {type(source).__name__}"
        )
    table = NodeTable.from_nodes(fetched, now=now)
    return place(jobs, table, nodes=fetched, now=now, seed=seed)
