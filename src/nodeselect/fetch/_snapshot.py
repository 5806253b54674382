"""Snapshots: a fetched fleet saved as JSON Lines, loaded back for a repeatable dry-run.

Format (one JSON object per line, UTF-8)::

    {"nodeselect_snapshot": 1, "fetched_at": "...Z", "source": "...", "query": {...},
     "complete": true, "stats": {...}}
    {"document": <the node's JSON exactly as received>, "nodeselect": <ProvedFacts.to_json()>}
    ...

The node lines have the same shape as ``nodeselect nodes --format jsonl``. Documents are
written byte for byte as the server sent them (personal data included: a snapshot is a
private file the user asked for).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import attrs
import msgspec

from nodeselect.documents import LeanNode, ProvedFacts, decode_node, decode_node_lax
from nodeselect.errors import NodeSelectError, SnapshotError
from nodeselect.fetch._query import NodeQuery
from nodeselect.fetch._result import FetchedNode, FetchResult, FetchStats

__all__ = ["SNAPSHOT_VERSION", "load_snapshot", "node_line", "save_snapshot"]

#: The format version written in the header.
SNAPSHOT_VERSION: Final = 1


class _Facts(msgspec.Struct):
    status: str | None = None
    compliance_tags: list[str] = []
    continent: str | None = None
    country: str | None = None
    subdivision: str | None = None


class _Line(msgspec.Struct):
    document: msgspec.Raw
    nodeselect: _Facts


_line_decoder = msgspec.json.Decoder(_Line)


def node_line(node: FetchedNode) -> bytes:
    """``{"document": ..., "nodeselect": ...}`` for one node, without a newline."""
    facts = json.dumps(node.facts.to_json(), separators=(",", ":")).encode()
    return b'{"document":' + node.raw + b',"nodeselect":' + facts + b"}"


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def save_snapshot(path: str | os.PathLike[str], result: FetchResult) -> None:
    """Write ``result`` to ``path`` (atomically: a temporary file, then a rename).

    Raises:
        SnapshotError: the file cannot be written.
    """
    target = Path(path)
    header = {
        "nodeselect_snapshot": SNAPSHOT_VERSION,
        "fetched_at": _iso(result.fetched_at),
        "source": result.source,
        "query": result.query.to_json(),
        "complete": result.stats.complete,
        "stats": result.stats.to_json(),
    }
    tmp = target.with_name(target.name + ".tmp")
    try:
        with tmp.open("wb") as f:
            f.write(json.dumps(header, separators=(",", ":")).encode() + b"\n")
            for node in result.nodes:
                f.write(node_line(node) + b"\n")
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SnapshotError(f"{target}: cannot write the snapshot: {exc.strerror}") from None


def _stats(data: Any, where: str) -> FetchStats:
    if not isinstance(data, dict):
        raise SnapshotError(f"{where}: 'stats' must be an object")
    fields = attrs.fields_dict(FetchStats)
    known = {k: v for k, v in data.items() if k in fields}
    for key in ("totals_seen", "issues"):
        if key in known:
            known[key] = tuple(known[key])
    try:
        return FetchStats(**known)
    except TypeError as exc:
        raise SnapshotError(f"{where}: 'stats' is not valid: {exc}") from None


def _decode_saved(raw: bytes) -> LeanNode:
    """A saved document as the fetcher decoded it: strictly, else with numeric strings read
    as numbers (the fetch accepted such documents, so their snapshot must load too)."""
    try:
        return decode_node(raw)
    except msgspec.ValidationError:
        return decode_node_lax(raw)


def load_snapshot(path: str | os.PathLike[str]) -> FetchResult:
    """Read a snapshot written by :func:`save_snapshot`.

    Raises:
        SnapshotError: the file is missing or unreadable, or a line is not valid (the message
            names ``file:line`` and what was expected).
    """
    source = Path(path)
    try:
        lines = source.read_bytes().splitlines()
    except OSError as exc:
        raise SnapshotError(f"{source}: cannot read the snapshot: {exc.strerror}") from None
    if not lines:
        raise SnapshotError(f"{source}:1: empty file; expected a nodeselect snapshot header")
    try:
        header = json.loads(lines[0])
    except ValueError as exc:
        raise SnapshotError(f"{source}:1: the header is not JSON: {exc}") from None
    if not isinstance(header, dict) or header.get("nodeselect_snapshot") != SNAPSHOT_VERSION:
        raise SnapshotError(
            f"{source}:1: not a nodeselect snapshot header; expected "
            f'{{"nodeselect_snapshot": {SNAPSHOT_VERSION}, ...}}'
        )
    try:
        query = NodeQuery.from_json(header.get("query") or {})
        fetched_at = datetime.fromisoformat(str(header["fetched_at"]))
    except (NodeSelectError, KeyError, ValueError) as exc:
        raise SnapshotError(f"{source}:1: the header is not valid: {exc}") from None
    stats = _stats(header.get("stats", {}), f"{source}:1")
    nodes: list[FetchedNode] = []
    seen: set[str] = set()
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            entry = _line_decoder.decode(line)
            lean = _decode_saved(bytes(entry.document))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise SnapshotError(
                f"{source}:{lineno}: not a node line ({exc}); expected "
                '{"document": {...}, "nodeselect": {...}}'
            ) from None
        if lean.uuid in seen:
            raise SnapshotError(f"{source}:{lineno}: node {lean.uuid} appears twice")
        seen.add(lean.uuid)
        f = entry.nodeselect
        facts = ProvedFacts(
            status=f.status,
            compliance_tags=frozenset(f.compliance_tags),
            continent=f.continent,
            country=f.country,
            subdivision=f.subdivision,
        )
        nodes.append(FetchedNode(lean.uuid, lean, bytes(entry.document), facts))
    return FetchResult(
        nodes=tuple(nodes),
        rejected=(),
        stats=stats,
        query=query,
        fetched_at=fetched_at,
        source=f"snapshot {source}",
    )
