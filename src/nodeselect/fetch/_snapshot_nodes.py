"""A snapshot's nodes read in chunks and found again by their place in its files.

:func:`~nodeselect.fetch.load_snapshot` returns every node of a snapshot as objects: its
document, its parsed view and its facts, about 10 KB a node (a 10M-node fleet would need
~100 GB). :class:`SnapshotNodes` holds only where each node's line starts (8 bytes a node):
:meth:`SnapshotNodes.chunks` reads the files once, a chunk at a time (what a node table
needs to be built: ``NodeTable.from_snapshot``), and ``nodes[i]`` reads node ``i`` again
from its file (what placement needs for the few nodes it reserves: their addresses).
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import os
from array import array
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Final, TypeVar, overload

import attrs

from nodeselect._collector import collector_paused
from nodeselect.errors import SnapshotError
from nodeselect.fetch._result import FetchedNode, FetchResult, LeanFetchedNode
from nodeselect.fetch._snapshot import (
    _header_fields,
    _parsed_header,
    lean_node_of_line,
    node_of_line,
    picked_shards,
    read_manifest,
)

__all__ = ["DEFAULT_SNAPSHOT_CHUNK", "SnapshotNodes"]

_N = TypeVar("_N")

#: Bytes read at a time when reading a file's lines (the default 8 KiB took 4 µs a line of
#: ~5 KB, 1 MiB 1 µs).
_READ_BUFFER: Final = 1 << 20
#: Nodes per chunk of :meth:`SnapshotNodes.chunks` and :meth:`~SnapshotNodes.lean_chunks`:
#: a chunk's objects (~1.3 MB lean, ~2 MB with the documents) are still in the CPU's cache
#: when they are read. 100k nodes: chunks of 64-256 lean nodes built the table in
#: 1.25-1.33 s, of 1,024 in 1.77 s; listing every node as JSON lines took 5.8-6.5 s and
#: 55 MB in chunks of 128, 6.8-7.3 s and 82-86 MB in chunks of 1,024.
DEFAULT_SNAPSHOT_CHUNK: Final = 128


@attrs.frozen
class _File:
    path: Path
    nodes: int  # what the manifest says (-1: a single snapshot file, not counted ahead)


class SnapshotNodes(Sequence[FetchedNode]):
    """The nodes of a snapshot file or sharded snapshot directory, not held in memory.

    Made from the header (or the manifest) alone; ``shard`` picks one shard of a sharded
    snapshot (0-based; a single file is shard 0), as :func:`~nodeselect.fetch.load_snapshot`
    does. :meth:`chunks` reads every node once, in the snapshot's order, checking each line
    as ``load_snapshot`` does; ``nodes[i]`` (and ``len``) then read node ``i`` again from its
    file by the offset recorded (an index asked before any whole pass first scans the files
    for line starts, without decoding). The files must not change in between (a changed line
    is reported, not trusted).

    Attributes:
        header: the snapshot's header or manifest as a ``FetchResult`` without its nodes
            (``fetched_at``, ``source``, ``query``, ``stats``).
        path: the file or directory given.

    Raises:
        SnapshotError: the header or manifest is missing or not valid, or ``shard`` is out
            of range.
    """

    def __init__(self, path: str | os.PathLike[str], *, shard: int | None = None) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            manifest = read_manifest(self.path)
            picked, where = picked_shards(manifest, shard)
            self._files = tuple(_File(s.path, s.nodes) for s in picked)
            self.header = FetchResult(
                nodes=(),
                rejected=(),
                stats=manifest.stats,
                query=manifest.query,
                fetched_at=manifest.fetched_at,
                source=f"snapshot {manifest.directory}{where}",
            )
        else:
            if shard not in (None, 0):
                raise SnapshotError(
                    f"{self.path}: shard={shard} asked of a single-file snapshot; it is one "
                    "shard, 0"
                )
            first = _first_line(self.path)
            query, fetched_at, stats = _header_fields(_parsed_header(first, self.path), self.path)
            self._files = (_File(self.path, -1),)
            self.header = FetchResult(
                nodes=(),
                rejected=(),
                stats=stats,
                query=query,
                fetched_at=fetched_at,
                source=f"snapshot {self.path}",
            )
        #: per file, each node line's byte offset (filled by a whole pass of chunks() or
        #: lean_chunks())
        self._offsets: list[array[int]] | None = None
        self._starts: list[int] = []  # per file, the index of its first node

    def __repr__(self) -> str:
        return f"SnapshotNodes({str(self.path)!r}, files={len(self._files)})"

    def chunks(self, size: int = DEFAULT_SNAPSHOT_CHUNK) -> Iterator[list[FetchedNode]]:
        """Every node in the snapshot's order, in lists of ``size`` (the last may be
        shorter; a list may hold the end of one shard and the start of the next). A whole
        pass records where each node is, for ``nodes[i]``.

        Raises:
            SnapshotError: a file cannot be read, is not a snapshot file, a line is not a
                node line (``file:line``), or a shard holds another number of nodes than
                the manifest says.
            ValueError: ``size < 1``.
        """
        return self._chunks(size, node_of_line, "chunks")

    def lean_chunks(self, size: int = DEFAULT_SNAPSHOT_CHUNK) -> Iterator[list[LeanFetchedNode]]:
        """:meth:`chunks` without the documents: each node's lean view and facts, what a
        node table reads (``NodeTable.from_snapshot``). About twice as fast: each line is
        decoded once, and a chunk of the default ``size`` is still in the CPU's cache when
        it is read. Same order, checks, errors and recorded places as :meth:`chunks`."""
        return self._chunks(size, lean_node_of_line, "lean_chunks")

    def _chunks(
        self, size: int, read: Callable[[bytes, Path, int], _N], name: str
    ) -> Iterator[list[_N]]:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"SnapshotNodes.{name}: size must be an int >= 1, got {size!r}")
        return self._read_chunks(size, read)

    def _read_chunks(self, size: int, read: Callable[[bytes, Path, int], _N]) -> Iterator[list[_N]]:
        offsets: list[array[int]] = []
        chunk: list[_N] = []
        for file in self._files:
            seen = array("q")
            lines = _node_lines(file.path)
            more = True
            while more:
                # each chunk decoded with the cyclic collector paused (decoding makes no
                # cycles; its young collections cost ~9% of listing a snapshot), not while
                # the caller holds the chunk
                with collector_paused():
                    more = _fill(chunk, size, lines, read=read, path=file.path, seen=seen)
                if len(chunk) == size:
                    yield chunk
                    chunk = []
            _check_count(file, len(seen))
            offsets.append(seen)
        if chunk:
            yield chunk
        self._found(offsets)

    def _found(self, offsets: list[array[int]]) -> None:
        self._offsets = offsets
        self._starts = list(itertools.accumulate((len(o) for o in offsets), initial=0))

    def _scanned(self) -> list[array[int]]:
        if self._offsets is None:
            offsets = []
            for file in self._files:
                seen = array("q", (at for _, at, _ in _node_lines(file.path)))
                _check_count(file, len(seen))
                offsets.append(seen)
            self._found(offsets)
        assert self._offsets is not None
        return self._offsets

    def __len__(self) -> int:
        self._scanned()
        return self._starts[-1]

    @overload
    def __getitem__(self, index: int) -> FetchedNode: ...

    @overload
    def __getitem__(self, index: slice) -> list[FetchedNode]: ...

    def __getitem__(self, index: int | slice) -> FetchedNode | list[FetchedNode]:
        if isinstance(index, slice):
            return self._read_many(range(*index.indices(len(self))))
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"SnapshotNodes indices are ints, not {type(index).__name__}")
        n = len(self)
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError(f"node {index} of a snapshot of {n} nodes")
        return self._read_many((i,))[0]

    def _read_many(self, indices: Sequence[int]) -> list[FetchedNode]:
        """Nodes ``indices`` (each in range), each file opened once for its run of them."""
        offsets = self._scanned()
        out: list[FetchedNode] = []
        for f, run in itertools.groupby(
            indices, key=lambda i: bisect.bisect_right(self._starts, i) - 1
        ):
            path, base = self._files[f].path, self._starts[f]
            with _opened(path) as fh:
                for i in run:
                    at = offsets[f][i - base]
                    fh.seek(at)
                    out.append(self._node_at(path, at, fh.readline()))
        return out

    def location(self, index: int) -> str:
        """Where node ``index`` is: ``file:line`` (the line counted by reading the file)."""
        n = len(self)
        if not 0 <= index < n:
            raise IndexError(f"node {index} of a snapshot of {n} nodes")
        f = bisect.bisect_right(self._starts, index) - 1
        path, at = self._files[f].path, self._scanned()[f][index - self._starts[f]]
        lineno = 1
        with _opened(path) as fh:
            while at > 0:  # (a block at a time: the node may be gigabytes into the file)
                block = fh.read(min(at, _READ_BUFFER))
                if not block:
                    break
                lineno += block.count(b"\n")
                at -= len(block)
        return f"{path}:{lineno}"

    @staticmethod
    def _node_at(path: Path, at: int, line: bytes) -> FetchedNode:
        try:
            return node_of_line(line, path, 0)
        except SnapshotError:
            raise SnapshotError(
                f"{path}: the node line at byte {at} is no longer a node line; the file "
                "changed after it was read"
            ) from None


def _fill(
    chunk: list[_N],
    size: int,
    lines: Iterator[tuple[int, int, bytes]],
    *,
    read: Callable[[bytes, Path, int], _N],
    path: Path,
    seen: array[int],
) -> bool:
    """Read ``lines`` into ``chunk`` (recording each offset in ``seen``) until it holds
    ``size`` nodes (True: the file may hold more) or the lines run out (False)."""
    for lineno, at, line in lines:
        chunk.append(read(line, path, lineno))
        seen.append(at)
        if len(chunk) == size:
            return True
    return False


def _first_line(path: Path) -> bytes | None:
    with _opened(path) as fh:
        first = fh.readline()
    return first.rstrip(b"\r\n") if first else None


@contextlib.contextmanager
def _opened(path: Path, buffering: int = -1) -> Iterator[BinaryIO]:
    """``path`` opened for binary reading; SnapshotError (naming it) when it cannot be."""
    try:
        fh = path.open("rb", buffering=buffering)
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read the snapshot: {exc.strerror}") from None
    with fh:
        yield fh


def _node_lines(path: Path) -> Iterator[tuple[int, int, bytes]]:
    """Each node line of a snapshot file after its (checked) header: line number, byte
    offset, the line (with its end: JSON whitespace, not copied off a 5 KB line)."""
    with _opened(path, _READ_BUFFER) as fh:
        first = fh.readline()
        _parsed_header(first.rstrip(b"\r\n") if first else None, path)
        at = len(first)
        try:
            for lineno, raw in enumerate(fh, start=2):
                if not raw.isspace():
                    yield lineno, at, raw
                at += len(raw)
        except OSError as exc:
            raise SnapshotError(f"{path}: cannot read the snapshot: {exc.strerror}") from None


def _check_count(file: _File, found: int) -> None:
    if file.nodes >= 0 and found != file.nodes:
        raise SnapshotError(
            f"{file.path}: holds {found} nodes where the manifest says {file.nodes}; the "
            "shard was changed or cut short"
        )
