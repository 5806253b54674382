"""A fetch written straight into a sharded snapshot, the fleet never held whole.

:meth:`Client.fetch` returns every node it fetched, each with its document as received and
its parsed view: about 10 KB a node (100k simulated nodes peaked at 1.0 GB), so a 10M-node
fleet needed ~100 GB on the machine that saved it in shards. :func:`fetch_sharded` runs the
same fetch (the same requests, the same proofs that nothing was lost or duplicated) with a
store that writes each document to a temporary spill file beside the shards as it arrives,
keeping a stand-in in its place: the node's uuid, its proved facts and where its document
is (~230 bytes measured). When the fetch is over, the documents are read back from the
spill in the order they arrived, each node's latest, and written as shards with their final
facts.
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

import attrs

from nodeselect.documents import LeanNode
from nodeselect.errors import SnapshotError
from nodeselect.fetch._client import Client
from nodeselect.fetch._events import NodesHook, ProgressHook
from nodeselect.fetch._query import NodeQuery
from nodeselect.fetch._result import FetchedNode, FetchResult
from nodeselect.fetch._snapshot import SnapshotManifest, shard_directory, write_shards

__all__ = ["fetch_sharded"]

#: The stand-in's parsed view: nothing (the stand-ins only travel to the shard writer).
_NO_LEAN: Final = LeanNode(uuid="")
#: The stand-in's ``raw``: where the document is in the spill (offset, length).
_REF: Final = struct.Struct("<QI")


class _Spill:
    """The documents of a fetch as they arrive, in a private temporary file in ``root``."""

    def __init__(self, root: Path) -> None:
        try:
            fd, name = tempfile.mkstemp(dir=root, prefix=".fetch-", suffix=".spill")  # 0600
        except OSError as exc:
            raise _unwritable(root, exc) from None
        self.path = Path(name)
        self._file = os.fdopen(fd, "w+b")
        self._end = 0

    def store(self, node: FetchedNode) -> FetchedNode:
        """Write ``node``'s document; its stand-in (uuid, facts, where the document is)."""
        raw = node.raw
        try:
            self._file.write(raw)
        except OSError as exc:  # (a full disk: the fetch stops, nothing is written)
            raise _unwritable(self.path, exc) from None
        ref = _REF.pack(self._end, len(raw))
        self._end += len(raw)
        return FetchedNode(node.uuid, _NO_LEAN, ref, node.facts)

    def read(self, stand_ins: Sequence[FetchedNode]) -> Iterator[FetchedNode]:
        """The nodes of ``stand_ins`` (in the spill's order) with their documents read back."""
        f = self._file
        try:
            f.flush()
        except OSError as exc:
            raise _unwritable(self.path, exc) from None
        at = -1
        for node in stand_ins:
            offset, size = _REF.unpack(node.raw)
            if offset != at:
                f.seek(offset)
            raw = f.read(size)
            if len(raw) != size:
                raise SnapshotError(f"{self.path}: the fetch's documents were cut short")
            at = offset + size
            yield FetchedNode(node.uuid, _NO_LEAN, raw, node.facts)

    def close(self) -> None:
        """Remove the spill (also when closing it fails: a full disk)."""
        try:
            self._file.close()
        except OSError:
            pass  # (its contents are thrown away)
        finally:
            self.path.unlink(missing_ok=True)


def _unwritable(path: Path, exc: OSError) -> SnapshotError:
    return SnapshotError(f"{path}: cannot write the fetch's documents: {exc.strerror}")


def _offset(node: FetchedNode) -> int:
    offset: int = _REF.unpack(node.raw)[0]
    return offset


def _ignore(nodes: Sequence[FetchedNode]) -> None:
    """An ``on_nodes`` that keeps nothing (each page's new nodes are handed out and let go)."""


def fetch_sharded(
    client: Client,
    directory: str | os.PathLike[str],
    shards: int,
    query: NodeQuery | None = None,
    *,
    strict: bool = False,
    on_progress: ProgressHook | None = None,
    on_nodes: NodesHook | None = None,
    source: str | None = None,
) -> tuple[SnapshotManifest, FetchResult]:
    """Fetch ``query`` as ``client.fetch`` does and save it as a sharded snapshot in
    ``directory`` (as :func:`save_sharded_snapshot` saves a fetch's result), without holding
    the fleet: each document goes to a temporary file beside the shards as it arrives (about
    230 bytes a node stay in memory, against ~10 KB for a fetch's result), and the shards are
    written from it once the fetch is over. ``source`` labels the snapshot (default: the
    fetch's URL).

    The shards hold the nodes in the order they first arrived (each node's latest document,
    with every fact proved), their sizes differing by at most one. Nothing is written when
    the fetch fails, or with ``strict`` when it is not complete.

    Returns:
        The manifest, and the fetch's result without its nodes (they are in the shards):
        its statistics, completeness and rejected documents.

    Raises:
        SnapshotError: ``shards`` is not in 1..99,999, or a file cannot be written.
        IncompleteFetchError: with ``strict``, a fetch that could not prove it is complete.
        APIError: as :meth:`Client.fetch`.
    """
    root = shard_directory(directory, shards)
    spill = _Spill(root)
    try:
        result = client._fetch(  # (the same fetch, with a store of our own)
            query,
            strict=strict,
            on_progress=on_progress,
            on_nodes=on_nodes or _ignore,
            store=spill.store,
        )
        if source is not None:
            result = attrs.evolve(result, source=source)
        stand_ins = sorted(result.nodes, key=_offset)
        manifest = write_shards(root, result, spill.read(stand_ins), len(stand_ins), shards)
    finally:
        spill.close()
    return manifest, attrs.evolve(result, nodes=())
