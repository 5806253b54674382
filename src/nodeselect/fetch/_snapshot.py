"""Snapshots: a fetched fleet saved as JSON Lines, loaded back for a repeatable dry-run.

Format (one JSON object per line, UTF-8)::

    {"nodeselect_snapshot": 1, "fetched_at": "...Z", "source": "...", "query": {...},
     "complete": true, "stats": {...}}
    {"document": <the node's JSON exactly as received>, "nodeselect": <ProvedFacts.to_json()>}
    ...

The node lines have the same shape as ``nodeselect nodes --format jsonl``. Documents are
written byte for byte as the server sent them (personal data included: a snapshot is a
private file the user asked for).

A **sharded snapshot** is a directory: ``manifest.json`` (what was fetched, when, with which
filters, the fetch's facts, and one entry per shard) and ``shard-00000.jsonl`` ... each a
snapshot file of the format above (its header also says ``"shard": {"index": i, "count": n}``),
so one shard is readable alone, by this loader or an older one. The fleet is split in fetched
order into shards whose sizes differ by at most one node. The shards are written to
temporary files and take their names only once all are written (a write that stops midway
leaves the directory as it was); the manifest is written last: a directory without one is
not a snapshot::

    {"nodeselect_snapshot_manifest": 1, "fetched_at": "...Z", "source": "...", "query": {...},
     "complete": true, "stats": {...}, "nodes": 1000,
     "shards": [{"file": "shard-00000.jsonl", "nodes": 500}, ...]}
"""

from __future__ import annotations

import itertools
import json
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import attrs
import msgspec

from nodeselect.documents import LeanNode, ProvedFacts, decode_node, decode_node_lax
from nodeselect.errors import NodeSelectError, SnapshotError
from nodeselect.fetch._query import NodeQuery
from nodeselect.fetch._result import FetchedNode, FetchResult, FetchStats, LeanFetchedNode

__all__ = [
    "MANIFEST_NAME",
    "MANIFEST_VERSION",
    "SNAPSHOT_VERSION",
    "ShardInfo",
    "SnapshotManifest",
    "load_snapshot",
    "node_line",
    "node_of_line",
    "picked_shards",
    "read_manifest",
    "save_sharded_nodes",
    "save_sharded_snapshot",
    "save_snapshot",
    "save_snapshot_nodes",
    "shard_directory",
    "snapshot_fetched_at",
    "write_shards",
]

#: The format version written in the header.
SNAPSHOT_VERSION: Final = 1
#: The file naming a sharded snapshot's shards, inside its directory.
MANIFEST_NAME: Final = "manifest.json"
#: The format version of the manifest.
MANIFEST_VERSION: Final = 1
#: The most shards one snapshot may have (shard files are numbered with 5 digits).
MAX_SHARDS: Final = 99_999


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


def _header(result: FetchResult) -> dict[str, Any]:
    return {
        "nodeselect_snapshot": SNAPSHOT_VERSION,
        "fetched_at": _iso(result.fetched_at),
        "source": result.source,
        "query": result.query.to_json(),
        "complete": result.stats.complete,
        "stats": result.stats.to_json(),
    }


def _write(
    target: Path,
    header: dict[str, Any],
    nodes: Iterable[FetchedNode],
    *,
    replace_symlink: bool = False,
    commit: bool = True,
) -> Path:
    """Write one snapshot file atomically and privately (see :func:`save_snapshot`);
    ``commit=False``: leave it in its temporary file, whose path is returned."""
    head = json.dumps(header, separators=(",", ":")).encode() + b"\n"
    return _write_private(
        target,
        itertools.chain((head,), (node_line(node) + b"\n" for node in nodes)),
        what="the snapshot",
        replace_symlink=replace_symlink,
        commit=commit,
    )


def _write_private(
    target: Path,
    chunks: Iterable[bytes],
    *,
    what: str,
    replace_symlink: bool = False,
    commit: bool = True,
) -> Path:
    """Write ``chunks`` to ``target`` through a unique 0600 temporary file, then rename
    (``commit=False``: not yet; the temporary file's path is returned, for the caller to
    rename or remove).

    Every file of a snapshot (single file, shard, manifest) is written this way, so two
    writers never share a temporary name and a reader never sees half a file.
    """
    _check_target(target, replace_symlink=replace_symlink)
    tmp: Path | None = None
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        tmp = Path(name)
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        if commit:
            tmp.replace(target)
    except BaseException as exc:  # (the chunks' own errors too: no half-written file left)
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise SnapshotError(f"{target}: cannot write {what}: {exc.strerror}") from None
        raise
    return target if commit else tmp


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
    _write(Path(path), _header(result), result.nodes, replace_symlink=replace_symlink)


def save_snapshot_nodes(
    path: str | os.PathLike[str],
    header: FetchResult,
    nodes: Iterable[FetchedNode],
    *,
    replace_symlink: bool = False,
) -> int:
    """:func:`save_snapshot` of the nodes an iterable gives, in order, written as they come
    (a snapshot re-saved a chunk at a time, never held whole); ``header`` gives the
    snapshot's ``fetched_at``, ``source``, ``query`` and ``stats`` (its own ``nodes`` are not
    read). Returns how many nodes were written. ``path`` may be the file ``nodes`` are read
    from: the new file replaces it once every node is written.

    Raises:
        SnapshotError: as :func:`save_snapshot`.
    """
    count = 0

    def counted() -> Iterator[FetchedNode]:
        nonlocal count
        for node in nodes:
            count += 1
            yield node

    _write(Path(path), _header(header), counted(), replace_symlink=replace_symlink)
    return count


@attrs.frozen
class ShardInfo:
    """One shard of a sharded snapshot.

    Attributes:
        path: the shard's file.
        nodes: how many nodes it holds.
    """

    path: Path
    nodes: int


@attrs.frozen
class SnapshotManifest:
    """What a sharded snapshot's ``manifest.json`` says (:func:`read_manifest`).

    Attributes:
        directory: the snapshot's directory.
        fetched_at: when the fleet was fetched.
        source: where it was fetched from.
        query: the server-side filters of the fetch.
        stats: the fetch's facts (pages, totals seen, completeness, issues).
        shards: the shards, in order.
    """

    directory: Path
    fetched_at: datetime
    source: str
    query: NodeQuery
    stats: FetchStats
    shards: tuple[ShardInfo, ...]

    @property
    def nodes(self) -> int:
        """Nodes over every shard."""
        return sum(s.nodes for s in self.shards)

    @property
    def complete(self) -> bool:
        """Whether the fetch proved it got every matching node."""
        return self.stats.complete


def _shard_name(i: int) -> str:
    return f"shard-{i:05d}.jsonl"


def save_sharded_snapshot(
    directory: str | os.PathLike[str], result: FetchResult, shards: int
) -> SnapshotManifest:
    """Write ``result`` as ``shards`` shard files and a manifest into ``directory``.

    The directory is created if needed. Shards are written first, each to a temporary file,
    and renamed once every one is written (a write that fails or is interrupted midway leaves
    the directory, and an earlier snapshot in it, as they were); then the manifest; shard files
    of an earlier, larger snapshot in the same directory are removed.
    Shards hold consecutive runs of ``result.nodes`` whose sizes differ by at most one (a
    shard may be empty when there are fewer nodes than shards).

    Raises:
        SnapshotError: ``shards`` is not in 1..99,999, or a file cannot be written.
    """
    root = shard_directory(directory, shards)
    return write_shards(root, result, iter(result.nodes), len(result.nodes), shards)


def save_sharded_nodes(
    directory: str | os.PathLike[str],
    header: FetchResult,
    nodes: Iterable[FetchedNode],
    count: int,
    shards: int,
) -> SnapshotManifest:
    """:func:`save_sharded_snapshot` of ``count`` nodes taken from an iterable, in order (a
    snapshot re-saved a chunk at a time, never held whole); ``header`` gives the snapshot's
    ``fetched_at``, ``source``, ``query`` and ``stats`` (its own ``nodes`` are not read).

    Raises:
        SnapshotError: as :func:`save_sharded_snapshot`, or ``nodes`` holds fewer or more
            than ``count`` nodes (no manifest is written then).
    """
    root = shard_directory(directory, shards)
    return write_shards(root, header, iter(nodes), count, shards)


def shard_directory(directory: str | os.PathLike[str], shards: int) -> Path:
    """``directory`` checked and created for a sharded snapshot of ``shards`` shards.

    Raises:
        SnapshotError: ``shards`` is not in 1..99,999, ``directory`` is a file, or it
            cannot be created.
    """
    if not 1 <= shards <= MAX_SHARDS:
        raise SnapshotError(f"shards={shards}: give a number of shards from 1 to {MAX_SHARDS:,}")
    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise SnapshotError(
            f"{root}: not a directory; a sharded snapshot is written into a directory"
        )
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SnapshotError(f"{root}: cannot create the directory: {exc.strerror}") from None
    return root


def write_shards(
    root: Path, result: FetchResult, nodes: Iterator[FetchedNode], n: int, shards: int
) -> SnapshotManifest:
    """The ``n`` nodes of ``nodes`` (``result``'s fleet, its header from ``result``: its own
    ``nodes`` are not read) written into ``root`` as :func:`save_sharded_snapshot` writes
    them, taking them from the iterator in order, shard after shard."""
    header = _header(result)
    _check_target(root / MANIFEST_NAME, replace_symlink=False)  # (before any work)
    infos: list[ShardInfo] = []
    written: list[Path] = []  # each shard's temporary file, renamed once all are written
    try:
        for i in range(shards):
            size = (i + 1) * n // shards - i * n // shards
            path = root / _shard_name(i)
            shard_header = header | {"shard": {"index": i, "count": shards}}
            written.append(_write(path, shard_header, _take(nodes, size), commit=False))
            infos.append(ShardInfo(path, size))
        if next(nodes, None) is not None:
            raise SnapshotError("more nodes than counted while writing the shards")
    except BaseException:  # (a full disk, a Ctrl-C, a miscount: the directory as it was)
        for tmp in written:
            tmp.unlink(missing_ok=True)
        raise
    # every shard written: the old manifest (if any) goes first, so that no manifest ever
    # names a mix of old and new shards; then the shards take their names, then the manifest
    (root / MANIFEST_NAME).unlink(missing_ok=True)
    for tmp, info in zip(written, infos, strict=True):
        tmp.replace(info.path)
    manifest = {
        "nodeselect_snapshot_manifest": MANIFEST_VERSION,
        "fetched_at": header["fetched_at"],
        "source": result.source,
        "query": header["query"],
        "complete": result.stats.complete,
        "stats": header["stats"],
        "nodes": n,
        "shards": [{"file": s.path.name, "nodes": s.nodes} for s in infos],
    }
    _write_private(
        root / MANIFEST_NAME,
        ((json.dumps(manifest, indent=1) + "\n").encode(),),
        what="the manifest",
    )
    keep = {s.path.name for s in infos}
    for stale in root.glob("shard-*.jsonl"):
        if stale.name not in keep:
            stale.unlink(missing_ok=True)
    return SnapshotManifest(
        directory=root,
        fetched_at=result.fetched_at,
        source=result.source,
        query=result.query,
        stats=result.stats,
        shards=tuple(infos),
    )


def _take(nodes: Iterator[FetchedNode], size: int) -> Iterator[FetchedNode]:
    """The next ``size`` nodes; SnapshotError when there are fewer (a miscount)."""
    for _ in range(size):
        node = next(nodes, None)
        if node is None:
            raise SnapshotError("fewer nodes than counted while writing the shards")
        yield node


def read_manifest(directory: str | os.PathLike[str]) -> SnapshotManifest:
    """Read the manifest of a sharded snapshot written by :func:`save_sharded_snapshot`.

    Raises:
        SnapshotError: there is no readable manifest, or it is not valid (the message names
            the file and what was expected).
    """
    root = Path(directory)
    path = root / MANIFEST_NAME
    try:
        data = json.loads(path.read_bytes())
    except OSError as exc:
        raise SnapshotError(
            f"{path}: cannot read the manifest of a sharded snapshot: {exc.strerror}"
        ) from None
    except ValueError as exc:
        raise SnapshotError(f"{path}: the manifest is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("nodeselect_snapshot_manifest") != MANIFEST_VERSION:
        raise SnapshotError(
            f"{path}: not a nodeselect snapshot manifest; expected "
            f'{{"nodeselect_snapshot_manifest": {MANIFEST_VERSION}, ...}}'
        )
    try:
        query = NodeQuery.from_json(data.get("query") or {})
        fetched_at = datetime.fromisoformat(str(data["fetched_at"]))
        entries = data["shards"]
        if not isinstance(entries, list):
            raise TypeError("'shards' must be a list")
        shards = []
        for e in entries:
            name, count = e["file"], e["nodes"]
            if not isinstance(name, str) or Path(name).name != name or not name:
                raise ValueError(f"shard file {name!r} must be a plain file name")
            if not isinstance(count, int) or count < 0:
                raise ValueError(f"shard {name}: 'nodes' must be a count >= 0, not {count!r}")
            shards.append(ShardInfo(root / name, count))
    except (NodeSelectError, KeyError, ValueError, TypeError) as exc:
        raise SnapshotError(
            f"{path}: the manifest is not valid: {exc}; expected 'fetched_at', 'query' and "
            '\'shards\': [{"file": ..., "nodes": ...}, ...]'
        ) from None
    if not shards:
        raise SnapshotError(f"{path}: the manifest lists no shards; expected at least one")
    return SnapshotManifest(
        directory=root,
        fetched_at=fetched_at,
        source=str(data.get("source", "")),
        query=query,
        stats=_stats(data.get("stats", {}), str(path)),
        shards=tuple(shards),
    )


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


def load_snapshot(path: str | os.PathLike[str], *, shard: int | None = None) -> FetchResult:
    """Read a snapshot written by :func:`save_snapshot` or :func:`save_sharded_snapshot`.

    ``path`` is a snapshot file, or the directory of a sharded snapshot: then every shard is
    read (in order, as one fleet: fetched order is kept) unless ``shard`` picks one (0-based).
    A single file counts as one shard (``shard`` 0).

    Raises:
        SnapshotError: the file is missing or unreadable, a line is not valid (the message
            names ``file:line`` and what was expected), a shard holds another number of nodes
            than the manifest says, a node appears in two shards, or ``shard`` is out of range.
    """
    source = Path(path)
    if source.is_dir():
        return _load_sharded(read_manifest(source), shard)
    if shard not in (None, 0):
        raise SnapshotError(
            f"{source}: shard={shard} asked of a single-file snapshot; it is one shard, 0"
        )
    return _load_file(source)


def picked_shards(
    manifest: SnapshotManifest, shard: int | None
) -> tuple[tuple[ShardInfo, ...], str]:
    """The shards ``shard`` picks (every one for ``None``) and the words naming them in a
    source (``" shard i of n"``, or ``""``); SnapshotError when it is out of range."""
    count = len(manifest.shards)
    if shard is not None and not 0 <= shard < count:
        raise SnapshotError(
            f"{manifest.directory}: shard={shard} is out of range; this snapshot has shards "
            f"0..{count - 1}"
        )
    if shard is None:
        return manifest.shards, ""
    return (manifest.shards[shard],), f" shard {shard} of {count}"


def _load_sharded(manifest: SnapshotManifest, shard: int | None) -> FetchResult:
    picked, where = picked_shards(manifest, shard)
    nodes: list[FetchedNode] = []
    seen: dict[str, Path] = {}
    for info in picked:
        part = _load_file(info.path)
        if len(part.nodes) != info.nodes:
            raise SnapshotError(
                f"{info.path}: holds {len(part.nodes)} nodes where the manifest says "
                f"{info.nodes}; the shard was changed or cut short"
            )
        for node in part.nodes:
            if node.uuid in seen:
                raise SnapshotError(
                    f"{info.path}: node {node.uuid} is also in {seen[node.uuid].name}; "
                    "shards of one snapshot hold distinct nodes"
                )
            seen[node.uuid] = info.path
        nodes.extend(part.nodes)
    return FetchResult(
        nodes=tuple(nodes),
        rejected=(),
        stats=manifest.stats,
        query=manifest.query,
        fetched_at=manifest.fetched_at,
        source=f"snapshot {manifest.directory}{where}",
    )


def _decode_node(raw: bytes) -> LeanNode:
    """As the fetch decoded it: strictly, else with numeric strings read as numbers."""
    try:
        return decode_node(raw)
    except msgspec.ValidationError:
        return decode_node_lax(raw)


def _parsed_header(first: bytes | None, source: Path) -> dict[str, Any]:
    """A snapshot file's first line (``first``, ``None`` for an empty file) as its header."""
    if first is None:
        raise SnapshotError(f"{source}:1: empty file; expected a nodeselect snapshot header")
    try:
        header = json.loads(first)
    except ValueError as exc:
        raise SnapshotError(f"{source}:1: the header is not JSON: {exc}") from None
    except RecursionError:
        raise SnapshotError(f"{source}:1: the header is JSON nested too deep") from None
    if not isinstance(header, dict) or header.get("nodeselect_snapshot") != SNAPSHOT_VERSION:
        raise SnapshotError(
            f"{source}:1: not a nodeselect snapshot header; expected "
            f'{{"nodeselect_snapshot": {SNAPSHOT_VERSION}, ...}}'
        )
    return header


def _header_time(header: dict[str, Any], source: Path) -> datetime:
    if "fetched_at" not in header:
        raise SnapshotError(f"{source}:1: the header has no 'fetched_at'")
    return _fetched_at(header["fetched_at"], f"{source}:1")


def snapshot_fetched_at(path: str | os.PathLike[str]) -> datetime:
    """When the fleet in a snapshot was fetched: a sharded snapshot's manifest's
    ``fetched_at``, or a snapshot file's header's (its first line alone is read).

    Raises:
        SnapshotError: the file or manifest cannot be read, or is not a snapshot's.
    """
    source = Path(path)
    if source.is_dir():
        return read_manifest(source).fetched_at
    try:
        with source.open("rb") as f:
            first = f.readline()
    except OSError as exc:
        raise SnapshotError(f"{source}: cannot read the snapshot: {exc.strerror}") from None
    return _header_time(_parsed_header(first.rstrip(b"\r\n") if first else None, source), source)


def _header_fields(header: dict[str, Any], source: Path) -> tuple[NodeQuery, datetime, FetchStats]:
    """A snapshot file's header's query, fetch time and stats, each checked."""
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
    return query, _header_time(header, source), _stats(header.get("stats", {}), f"{source}:1")


def node_of_line(line: bytes, source: Path, lineno: int) -> FetchedNode:
    """The node of one snapshot line (``{"document": ..., "nodeselect": ...}``), decoded as
    the fetch decoded it; SnapshotError naming ``source:lineno`` when it is not one."""
    try:
        entry = _line_decoder.decode(line)
        lean = _decode_node(bytes(entry.document))
    except RecursionError:
        raise SnapshotError(f"{source}:{lineno}: a node line nested too deep") from None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise SnapshotError(
            f"{source}:{lineno}: not a node line ({exc}); expected "
            '{"document": {...}, "nodeselect": {...}}'
        ) from None
    f = entry.nodeselect
    facts = ProvedFacts(
        status=f.status,
        compliance_tags=frozenset(f.compliance_tags),
        continent=f.continent,
        country=f.country,
        subdivision=f.subdivision,
    )
    return FetchedNode(lean.uuid, lean, bytes(entry.document), facts)


_lean_line_decoder = msgspec.json.Decoder(LeanFetchedNode)


def lean_node_of_line(line: bytes, source: Path, lineno: int) -> LeanFetchedNode:
    """The lean view and facts of one snapshot line, decoded in one pass (a third of
    :func:`node_of_line`'s time: the document is neither split out nor copied); a line the
    strict decode refuses takes :func:`node_of_line`'s way (numeric strings, errors)."""
    try:
        return _lean_line_decoder.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        node = node_of_line(line, source, lineno)
    return LeanFetchedNode(lean=node.lean, facts=node.facts)


def _load_file(source: Path) -> FetchResult:
    try:
        lines = source.read_bytes().splitlines()
    except OSError as exc:
        raise SnapshotError(f"{source}: cannot read the snapshot: {exc.strerror}") from None
    header = _parsed_header(lines[0] if lines else None, source)
    query, fetched_at, stats = _header_fields(header, source)
    nodes: list[FetchedNode] = []
    seen: set[str] = set()
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        node = node_of_line(line, source, lineno)
        if node.uuid in seen:
            raise SnapshotError(f"{source}:{lineno}: node {node.uuid} appears twice")
        seen.add(node.uuid)
        nodes.append(node)
    return FetchResult(
        nodes=tuple(nodes),
        rejected=(),
        stats=stats,
        query=query,
        fetched_at=fetched_at,
        source=f"snapshot {source}",
    )
