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
import stat
import tempfile
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


def _check_target(target: Path, *, replace_symlink: bool) -> None:
    """Refuse to write over anything but a regular file (or nothing)."""
    try:
        st = target.lstat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise SnapshotError(f"{target}: cannot write the snapshot: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        if replace_symlink:
            return
        raise SnapshotError(
            f"{target}: is a symbolic link; a snapshot replaces only a regular file (give the "
            "link's target, or pass replace_symlink=True to replace the link itself)"
        )
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise SnapshotError(f"{target}: is {kind}; a snapshot is written to a new or regular file")


def save_snapshot(
    path: str | os.PathLike[str], result: FetchResult, *, replace_symlink: bool = False
) -> None:
    """Write ``result`` to ``path`` atomically.

    The snapshot is written to a new, uniquely named temporary file in the target's folder
    (created exclusively, mode 0600: a snapshot holds personal data; it never follows a
    planted link), flushed to disk, then renamed over the target. Two writers never share a
    temporary file; the last rename wins. A target that exists must be a regular file: a
    directory, device or FIFO is refused, and so is a symbolic link unless
    ``replace_symlink`` (which replaces the link itself, never the file it points to).

    Raises:
        SnapshotError: the target is refused, or the file cannot be written.
    """
    target = Path(path)
    _check_target(target, replace_symlink=replace_symlink)
    header = {
        "nodeselect_snapshot": SNAPSHOT_VERSION,
        "fetched_at": _iso(result.fetched_at),
        "source": result.source,
        "query": result.query.to_json(),
        "complete": result.stats.complete,
        "stats": result.stats.to_json(),
    }
    tmp: Path | None = None
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        tmp = Path(name)
        with os.fdopen(fd, "wb") as f:
            f.write(json.dumps(header, separators=(",", ":")).encode() + b"\n")
            for node in result.nodes:
                f.write(node_line(node) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(target)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise SnapshotError(f"{target}: cannot write the snapshot: {exc.strerror}") from None


def _stats(data: Any, where: str) -> FetchStats:
    """The header's stats, every field type-checked (msgspec, with the field's path)."""
    if not isinstance(data, dict):
        raise SnapshotError(f"{where}: 'stats' must be an object, got {type(data).__name__}")
    fields = attrs.fields_dict(FetchStats)
    known = {k: v for k, v in data.items() if k in fields}
    try:
        return msgspec.convert(known, FetchStats)
    except msgspec.ValidationError as exc:
        path = str(exc).rpartition("`$")[2].rstrip("`")
        raise SnapshotError(
            f"{where}: stats{path} is not valid: {str(exc).partition(' - at')[0]}"
        ) from None


def _fetched_at(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise SnapshotError(
            f"{where}: 'fetched_at' must be an ISO 8601 string such as "
            f"'2026-01-31T12:00:00Z', got {type(value).__name__}"
        )
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise SnapshotError(
            f"{where}: 'fetched_at' {value[:40]!r} is not an ISO 8601 time such as "
            "'2026-01-31T12:00:00Z'"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


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
    except RecursionError:
        raise SnapshotError(f"{source}:1: the header is JSON nested too deep") from None
    if not isinstance(header, dict) or header.get("nodeselect_snapshot") != SNAPSHOT_VERSION:
        raise SnapshotError(
            f"{source}:1: not a nodeselect snapshot header; expected "
            f'{{"nodeselect_snapshot": {SNAPSHOT_VERSION}, ...}}'
        )
    raw_query = header.get("query")
    raw_query = {} if raw_query is None else raw_query
    if not isinstance(raw_query, dict):
        raise SnapshotError(
            f"{source}:1: 'query' must be an object (a NodeQuery as JSON), "
            f"got {type(raw_query).__name__}"
        )
    try:
        query = NodeQuery.from_json(raw_query)
    except (NodeSelectError, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise SnapshotError(f"{source}:1: the header's query is not valid: {exc}") from None
    if "fetched_at" not in header:
        raise SnapshotError(f"{source}:1: the header has no 'fetched_at'")
    fetched_at = _fetched_at(header["fetched_at"], f"{source}:1")
    stats = _stats(header.get("stats", {}), f"{source}:1")
    nodes: list[FetchedNode] = []
    seen: set[str] = set()
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            entry = _line_decoder.decode(line)
            lean = _decode_saved(bytes(entry.document))
        except RecursionError:
            raise SnapshotError(f"{source}:{lineno}: a node line nested too deep") from None
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
