"""The node table: the fleet as numpy columns, built once, read by the engine without Python loops.

Every column has one entry per node (or per GPU for the ``gpu_*`` columns, in CSR layout with
``gpu_offsets``). Units are in the names. Unknown numbers are NaN (floats) or 0 (codes, driver).

* Telemetry units are inferred per fleet, never assumed (:mod:`nodeselect.table._units`,
  docs/units.md); what was decided is :attr:`NodeTable.units`. Telemetry in an undecided unit,
  or implausible in the decided one, is not used (NaN in the telemetry columns; RAM falls back
  to the GB fields) and is counted in ``units``.
* RAM: ``ram_free_gb`` is telemetry ``metadata.ram.free`` (in GB by the inferred unit) when the
  telemetry is fresh at build time (age <= :data:`TELEMETRY_FRESH_S`) and plausible, else the sum
  of ``rams[].memory_gb_available``. ``ram_total_gb`` likewise (``ram.total`` / ``memory_gb_max``).
* Disk: the largest single drive's ``available_capacity_gb`` (and largest ``max_capacity_gb``).
* GPUs: ``gpu_vram_free_gb`` is the reported ``gpus[].vram_gb_available``;
  ``gpu_tele_vram_free_gb`` / ``gpu_load`` come from telemetry ``metadata.gpu.gpus[]`` (GB and
  fraction by the inferred units), matched by index only when both lists have the same length
  and the names agree.
  Which free-VRAM value a constraint uses is decided at rank time (see docs/scoring.md).
* Floats are stored as float32 (times as float64): values are rounded to float32 at ingest.

Placement re-ranks against residual capacity with :meth:`NodeTable.with_capacity`, a cheap view
that replaces a few capacity columns and shares every other array.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

import attrs
import numpy as np
import numpy.typing as npt

from nodeselect.documents import (
    COMPLIANCE_TAGS,
    CONTINENTS,
    STATUSES,
    LeanNode,
    ProvedFacts,
    canonical_arch,
    parse_timestamps_to_epoch_s,
)
from nodeselect.errors import InputError, SnapshotError
from nodeselect.gpus import GPU_MODELS, canonical_node_gpu, gpu_code
from nodeselect.table._kernels import repeat
from nodeselect.table._units import Units

if TYPE_CHECKING:
    from nodeselect.fetch import SnapshotNodes

__all__ = [
    "GIB",
    "TELEMETRY_FRESH_S",
    "Duplicates",
    "NodeTable",
    "TableNode",
    "arch_name",
    "check_nodes_arg",
    "check_now_arg",
    "csr_take",
    "driver_number",
    "gpu_names_agree",
    "unique_nodes",
    "uuid_hashes",
]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]
I32 = npt.NDArray[np.int32]

#: bytes per nodeselect GB (= 1024 MiB).
GIB: Final = float(2**30)
#: Telemetry younger than this (seconds) is "fresh": its RAM/VRAM/load values are used as facts.
TELEMETRY_FRESH_S: Final = 900.0

_NON_ALNUM: Final = re.compile(r"[^a-z0-9]+")
_HASH_P: Final = 0x100000001B3
_MASK64: Final = (1 << 64) - 1


class TableNode(Protocol):
    """What the table reads from a fetched node: its lean document and its proved facts."""

    @property
    def lean(self) -> LeanNode: ...

    @property
    def facts(self) -> ProvedFacts: ...


def arch_name(raw: str | None) -> str:
    """Normalize an architecture spelling (``amd64`` -> ``x86_64``, ``arm64`` -> ``aarch64``):
    :func:`nodeselect.documents.canonical_arch`."""
    return canonical_arch(raw)


def driver_number(version: str | None) -> int:
    """``"535.104.05"`` -> 535104005 (major*1e6 + minor*1e3 + patch); 0 when unknown/unparsable."""
    if not version:
        return 0
    parts = version.strip().split(".")
    nums: list[int] = []
    for p in parts[:3]:
        if not p.isdigit():
            return 0
        nums.append(min(int(p), 999) if nums else min(int(p), 2000))
    while len(nums) < 3:
        nums.append(0)
    return nums[0] * 1_000_000 + nums[1] * 1_000 + nums[2]


@functools.lru_cache(maxsize=4096)
def gpu_names_agree(a: str | None, b: str | None) -> bool:
    """Whether a telemetry GPU name and a ``gpus[]`` name denote the same GPU (None agrees)."""
    if not a or not b:
        return True
    if _NON_ALNUM.sub("", a.lower()) == _NON_ALNUM.sub("", b.lower()):
        return True
    ca, cb = canonical_node_gpu(a), canonical_node_gpu(b)
    return ca is not None and ca == cb


@functools.lru_cache(maxsize=64)
def _pow_table(width: int) -> npt.NDArray[np.uint64]:
    """P**i mod 2**64 for i < width (read-only: one array per width, kept; a rank hashes the
    uuids of its top rows twice, and building it was a Python loop per call)."""
    out = np.empty(width, dtype=np.uint64)
    acc = 1
    for i in range(width):
        out[i] = acc
        acc = (acc * _HASH_P) & _MASK64
    out.flags.writeable = False
    return out


def csr_take(
    offsets: npt.NDArray[np.integer[Any]], nodes: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """For the nodes ``nodes`` of a CSR layout (``offsets``): their lengths, the offsets of
    their entries laid out node after node, and the positions of those entries in the layout."""
    starts = offsets[nodes].astype(np.int64)
    lens = offsets[nodes + 1].astype(np.int64) - starts
    out = np.zeros(len(nodes) + 1, dtype=np.int64)
    np.cumsum(lens, out=out[1:])
    at = np.arange(int(out[-1]), dtype=np.int64) + repeat(starts - out[:-1], lens)
    return lens, out, at


def uuid_hashes(uuids: npt.NDArray[np.bytes_]) -> npt.NDArray[np.uint64]:
    """Seed-free 64-bit hash of each uuid's UTF-8 bytes: sum of byte_i * P**i mod 2**64."""
    width = uuids.dtype.itemsize
    if len(uuids) == 0 or width == 0:
        return np.zeros(len(uuids), dtype=np.uint64)
    mat = np.ascontiguousarray(uuids).view(np.uint8).reshape(len(uuids), width)
    powers = _pow_table(width)
    out = np.empty(len(uuids), dtype=np.uint64)
    step = max(1, (1 << 17) // width)  # rows per block: its uint64 products stay in L2
    for a in range(0, len(uuids), step):
        block = mat[a : a + step].astype(np.uint64)
        block *= powers
        block.sum(axis=1, dtype=np.uint64, out=out[a : a + step])
    return out


def _remap_bits(bits: Any, local: tuple[str, ...], index: dict[str, int], words: int) -> Any:
    out = np.zeros((words, bits.shape[1]), dtype=np.uint64)
    for j, v in enumerate(local):
        g = index[v]
        has = (bits[j >> 6] >> np.uint64(j & 63)) & np.uint64(1)
        out[g >> 6] |= has << np.uint64(g & 63)
    return out


Duplicates = Literal["error", "newest"]


def check_nodes_arg(nodes: object, where: str) -> None:
    """TypeError unless ``nodes`` is a sequence of fetched nodes (checks the first one)."""
    if hasattr(nodes, "nodes") and not isinstance(nodes, Sequence):
        raise TypeError(
            f"{where}: expected a sequence of fetched nodes, got a {type(nodes).__name__}; "
            "pass its .nodes, or use NodeTable.from_fetch(result)"
        )
    if not isinstance(nodes, Sequence) or isinstance(nodes, str | bytes):
        raise TypeError(
            f"{where}: expected a sequence of fetched nodes (FetchResult.nodes, or the nodes "
            f"of a loaded snapshot), got {type(nodes).__name__}"
        )
    if len(nodes) and not hasattr(nodes[0], "lean"):
        raise TypeError(
            f"{where}: expected fetched nodes (each with .lean and .facts, as in "
            f"FetchResult.nodes), got a sequence of {type(nodes[0]).__name__}; decode raw "
            "documents with nodeselect.fetch (Client.fetch or load_snapshot)"
        )


def check_now_arg(now: object, where: str) -> datetime:
    """``now`` if it is an aware datetime, the current time if ``None``; else TypeError."""
    if now is None:
        return datetime.now(UTC)
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        got = (
            "a naive datetime (no timezone)"
            if isinstance(now, datetime)
            else f"{type(now).__name__} {now!r}"
        )
        raise TypeError(
            f"{where}: now must be a timezone-aware datetime, got {got}; e.g. "
            "datetime.now(timezone.utc) or datetime.fromtimestamp(t, timezone.utc)"
        )
    return now


def check_duplicates_arg(duplicates: object) -> None:
    """Raise InputError unless ``duplicates`` is ``"error"`` or ``"newest"``."""
    if duplicates not in ("error", "newest"):
        raise InputError(f"duplicates={duplicates!r}: give 'error' or 'newest'")


def unique_nodes(
    nodes: Sequence[TableNode], duplicates: Duplicates = "error"
) -> Sequence[TableNode]:
    """``nodes`` with each uuid once (the same sequence when no uuid repeats).

    ``duplicates="error"`` raises InputError naming the repeated uuids; ``"newest"`` keeps,
    per uuid, the node whose ``last_seen_at`` is newest (a missing or unreadable timestamp is
    oldest; among equals the first), at the place of the uuid's first occurrence.
    """
    check_duplicates_arg(duplicates)
    uuids = [node.lean.uuid for node in nodes]
    if len(set(uuids)) == len(uuids):
        return nodes
    first: dict[str, int] = {}
    repeated: dict[str, list[int]] = {}
    for i, u in enumerate(uuids):
        j = first.setdefault(u, i)
        if j != i:
            repeated.setdefault(u, [j]).append(i)
    if duplicates == "error":
        names = sorted(repeated)
        shown = ", ".join(f"{u} (x{len(repeated[u])})" for u in names[:5])
        more = f" and {len(names) - 5} more" if len(names) > 5 else ""
        raise InputError(
            f"{len(names)} node uuid(s) appear more than once: {shown}{more}; a table holds each "
            "node once (placement would promise its GPUs twice). Merge fetch results with "
            "nodeselect.merge_fetched, or pass duplicates='newest' to keep the newest "
            "last_seen_at of each"
        )
    keep: dict[int, int] = {}
    for rows in repeated.values():
        seen = parse_timestamps_to_epoch_s([nodes[i].lean.last_seen_at for i in rows])
        best = rows[0]
        best_t = -np.inf
        for i, t in zip(rows, seen.tolist(), strict=True):
            if t > best_t:  # NaN (missing) never wins
                best, best_t = i, t
        keep[rows[0]] = best
    return [nodes[keep.get(i, i)] for i, u in enumerate(uuids) if first[u] == i]


@attrs.frozen(eq=False)
class NodeTable:
    """The fleet as columns (see the module docstring for units and sources).

    Per node: ``uuid`` (bytes), ``name_code``/``name_vocab``, ``operator_code``/``operator_vocab``,
    ``reputation``, ``cpu_cores``, ``cpu_load``, ``ram_free_gb``, ``ram_total_gb``,
    ``disk_free_gb``, ``disk_total_gb``, ``last_seen_epoch_s``, ``telemetry_epoch_s``,
    ``suspended``, ``deleted``, ``os_code``, ``arch_code``, ``driver_version``, ``image_bits``
    (words x n), ``compliance_bits`` (words x n), ``status_code``, ``continent_code``,
    ``country_code``, ``subdivision_code``, ``gpu_count``; per GPU: ``gpu_offsets`` (n+1),
    ``gpu_model_code``, ``gpu_vram_free_gb``, ``gpu_vram_total_gb``, ``gpu_tele_vram_free_gb``,
    ``gpu_load``. Capacity overrides (placement): ``gpu_reserved`` and
    ``gpu_vram_free_override_gb`` (per GPU) or ``None``. ``units``: the telemetry units the
    build inferred (:class:`~nodeselect.table._units.Units`; the documented defaults, marked
    "assumed", for tables not built from documents).
    """

    uuid: npt.NDArray[np.bytes_]
    name_code: I32
    name_vocab: npt.NDArray[np.bytes_]  # UTF-8, entry 0 = b"" (no name)
    operator_code: I32
    operator_vocab: tuple[str, ...]
    reputation: F32
    cpu_cores: I32
    cpu_load: F32
    ram_free_gb: F32
    ram_total_gb: F32
    disk_free_gb: F32
    disk_total_gb: F32
    last_seen_epoch_s: F64
    telemetry_epoch_s: F64
    suspended: B
    deleted: B
    os_code: npt.NDArray[np.uint8]
    os_vocab: tuple[str, ...]
    arch_code: npt.NDArray[np.uint8]
    arch_vocab: tuple[str, ...]
    driver_version: I32
    image_bits: npt.NDArray[np.uint64]
    image_vocab: tuple[str, ...]
    compliance_bits: npt.NDArray[np.uint64]
    compliance_vocab: tuple[str, ...]
    status_code: npt.NDArray[np.uint8]
    status_vocab: tuple[str, ...]
    continent_code: npt.NDArray[np.uint8]
    continent_vocab: tuple[str, ...]
    country_code: npt.NDArray[np.uint16]
    country_vocab: tuple[str, ...]
    subdivision_code: npt.NDArray[np.uint16]
    subdivision_vocab: tuple[str, ...]
    gpu_count: npt.NDArray[np.uint8]
    gpu_offsets: I32
    gpu_model_code: npt.NDArray[np.uint16]
    gpu_vram_free_gb: F32
    gpu_vram_total_gb: F32
    gpu_tele_vram_free_gb: F32
    gpu_load: F32
    gpu_reserved: B | None = None
    gpu_vram_free_override_gb: F32 | None = None
    units: Units = attrs.field(factory=Units)
    _index: dict[str, int] = attrs.field(factory=dict, repr=False)

    # ---------------------------------------------------------------- basics
    def __len__(self) -> int:
        return len(self.uuid)

    def __repr__(self) -> str:
        return f"NodeTable({len(self)} nodes, {len(self.gpu_model_code)} GPUs)"

    def uuid_of(self, i: int) -> str:
        """The uuid of node ``i``."""
        return bytes(self.uuid[i]).decode()

    def name_of(self, i: int) -> str | None:
        """The name of node ``i`` (``None`` if it has none)."""
        code = int(self.name_code[i])
        return bytes(self.name_vocab[code]).decode() if code > 0 else None

    def index_of(self, uuid_or_name: str) -> int:
        """The row of a node given its uuid (preferred) or its name; raises InputError."""
        if not self._index:
            idx: dict[str, int] = {}
            for i in range(len(self) - 1, -1, -1):
                name = self.name_of(i)
                if name is not None:
                    idx["n:" + name] = i
            for i, u in enumerate(self.uuid.tolist()):
                idx.setdefault("u:" + u.decode(), i)
            self._index.update(idx)
        hit = self._index.get("u:" + uuid_or_name, self._index.get("n:" + uuid_or_name))
        if hit is None:
            raise InputError(
                f"node {uuid_or_name!r} is not in the table of {len(self)} nodes; "
                "give a node uuid or name from the table, or a row number"
            )
        return hit

    @property
    def nbytes(self) -> int:
        """Bytes held by the columns and vocabularies (raw documents are not kept)."""
        total = 0
        for f in attrs.fields(NodeTable):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                total += v.nbytes
            elif isinstance(v, tuple):
                total += sum(len(s) + 49 for s in v) + 8 * len(v)
        return total

    # ---------------------------------------------------------------- build
    @classmethod
    def from_nodes(
        cls,
        nodes: Sequence[TableNode],
        *,
        now: datetime | None = None,
        units: Units | None = None,
        duplicates: Duplicates = "error",
    ) -> NodeTable:
        """Build the table from fetched nodes in one pass (units and sources: module docstring).

        Telemetry units are inferred from ``nodes`` unless ``units`` gives them: tables meant to
        be concatenated or ranked as shards of one fleet should share the whole fleet's
        decision (``NodeTable.from_nodes(part, units=whole.units)``), since a part alone may hold
        too little evidence to decide what the whole decides.

        A uuid may appear once: two rows of one node would let placement promise its GPUs
        twice. ``duplicates="error"`` (default) raises InputError naming the repeated uuids;
        ``duplicates="newest"`` keeps, per uuid, the document with the newest ``last_seen_at``
        (see :func:`unique_nodes`, which gives the same list to pass to ``place(nodes=...)``).

        A :class:`~nodeselect.fetch.SnapshotNodes` is read a chunk at a time
        (:meth:`from_snapshot`; a repeated uuid is then a ``SnapshotError`` naming both lines).

        Raises TypeError when ``nodes`` is not a sequence of fetched nodes (a ``FetchResult``:
        use :meth:`from_fetch` or its ``.nodes``), or ``now`` not a timezone-aware datetime.
        """
        from nodeselect.fetch import SnapshotNodes  # noqa: PLC0415 - (fetch is imported already)
        from nodeselect.table._build import (  # noqa: PLC0415 - _build imports this module
            RepeatedUuids,
            build_table,
        )

        when = check_now_arg(now, "NodeTable.from_nodes")
        check_duplicates_arg(duplicates)
        if isinstance(nodes, SnapshotNodes) and duplicates == "error":
            return cls.from_snapshot(nodes, now=when, units=units)  # a chunk at a time
        check_nodes_arg(nodes, "NodeTable.from_nodes")
        try:  # uuids are checked while the nodes are read; a repeat is rare
            return build_table(nodes, when.timestamp(), units, unique=True)
        except RepeatedUuids:
            return build_table(unique_nodes(nodes, duplicates), when.timestamp(), units)

    @classmethod
    def from_fetch(
        cls,
        result: Any,
        *,
        now: datetime | None = None,
        units: Units | None = None,
        duplicates: Duplicates = "error",
    ) -> NodeTable:
        """The table of a ``FetchResult`` (anything with ``.nodes``): ``from_nodes(.nodes)``."""
        nodes = getattr(result, "nodes", None)
        if nodes is None:
            raise TypeError(
                "NodeTable.from_fetch: expected a FetchResult (something with .nodes), got "
                f"{type(result).__name__}; for a list of fetched nodes use NodeTable.from_nodes"
            )
        return cls.from_nodes(nodes, now=now, units=units, duplicates=duplicates)

    @classmethod
    def from_snapshot(
        cls,
        source: str | os.PathLike[str] | SnapshotNodes,
        *,
        now: datetime | None = None,
        units: Units | None = None,
    ) -> NodeTable:
        """The table of a snapshot file or sharded snapshot directory, built a chunk of nodes
        at a time: the same table as ``from_fetch(load_snapshot(path), ...)`` (telemetry units
        decided on the whole fleet), while at most one chunk's documents are in memory
        (``load_snapshot`` holds ~10 KB a node; the table ~0.2 KB).

        ``source`` may be a :class:`~nodeselect.fetch.SnapshotNodes`: after the build it finds
        each node again in the files, to pass as ``place(nodes=...)`` (addresses of the
        nodes placed on). ``now``: by default the snapshot's ``fetched_at``, so a snapshot
        gives the same table whenever it is read (``from_fetch`` defaults to the current time).

        Raises:
            SnapshotError: a file is missing or not valid (``file:line``), a shard holds
                another count than the manifest says, or a node appears twice (both places
                named).
            TypeError: ``now`` is not a timezone-aware datetime.
        """
        from nodeselect.fetch import SnapshotNodes  # noqa: PLC0415 - fetch only when asked
        from nodeselect.table._build import build_table_chunks  # noqa: PLC0415

        nodes = source if isinstance(source, SnapshotNodes) else SnapshotNodes(source)
        where = "NodeTable.from_snapshot"
        when = nodes.header.fetched_at if now is None else check_now_arg(now, where)
        table = build_table_chunks(nodes.lean_chunks(), when.timestamp(), units)
        if len(table) > 1:
            order = np.argsort(table.uuid, kind="stable")
            keys = table.uuid[order]
            twice = np.flatnonzero(keys[1:] == keys[:-1])
            if len(twice):
                a, b = (int(order[twice[0] + d]) for d in (0, 1))
                uuid = keys[twice[0]].decode()
                raise SnapshotError(
                    f"{nodes.location(b)}: node {uuid} appears twice (also at "
                    f"{nodes.location(a)}); a snapshot holds each node once"
                )
        return table

    # ---------------------------------------------------------------- data out
    def to_arrow(self) -> Any:
        """The table as a ``pyarrow.Table``, one row per node (needs ``nodeselect[arrow]``).

        Numeric columns are shared with the table, not copied; categories are dictionary
        columns (unknown = null); per-GPU values are list columns. Columns and units:
        docs/api.md. Raises MissingDependencyError (an ImportError) naming the extra when
        pyarrow is not installed.
        """
        from nodeselect.table._arrow import to_arrow  # noqa: PLC0415 - pyarrow only when called

        return to_arrow(self)

    def to_pandas(self) -> Any:
        """The table as a ``pandas.DataFrame`` through :meth:`to_arrow` (needs
        ``nodeselect[pandas]``)."""
        from nodeselect.table._arrow import import_optional  # noqa: PLC0415

        import_optional("pandas", "pandas", "NodeTable.to_pandas")
        return self.to_arrow().to_pandas()

    def to_polars(self) -> Any:
        """The table as a ``polars.DataFrame`` through :meth:`to_arrow` (needs
        ``nodeselect[polars]``)."""
        from nodeselect.table._arrow import import_optional  # noqa: PLC0415

        pl = import_optional("polars", "polars", "NodeTable.to_polars")
        return pl.from_arrow(self.to_arrow())

    # ---------------------------------------------------------------- views
    def gpu_node_index(self) -> npt.NDArray[np.int64]:
        """For each GPU, the row of its node."""
        counts = np.diff(self.gpu_offsets)
        out: npt.NDArray[np.int64] = np.repeat(np.arange(len(self), dtype=np.int64), counts)
        return out

    def gpu_rows(self, indices: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """The GPU positions of the given nodes, node by node, in node order."""
        return csr_take(self.gpu_offsets, np.asarray(indices, dtype=np.int64))[2]

    def take(self, indices: npt.ArrayLike) -> NodeTable:
        """A new table of the given rows (in that order); vocabularies are kept."""
        idx = np.asarray(indices, dtype=np.int64)
        rows = self.gpu_rows(idx)
        lens = (self.gpu_offsets[idx + 1] - self.gpu_offsets[idx]).astype(np.int64)
        offsets = np.zeros(len(idx) + 1, dtype=np.int32)
        np.cumsum(lens, out=offsets[1:])
        changes: dict[str, Any] = {"gpu_offsets": offsets, "_index": {}}
        for f in attrs.fields(NodeTable):
            v = getattr(self, f.name)
            if (
                not isinstance(v, np.ndarray)
                or f.name == "gpu_offsets"
                or f.name.endswith("_vocab")
            ):
                continue
            if f.name.startswith("gpu_") and f.name != "gpu_count":
                changes[f.name] = v[rows]
            elif v.ndim == 2:
                changes[f.name] = v[:, idx]
            else:
                changes[f.name] = v[idx]
        return attrs.evolve(self, **{k.lstrip("_"): c for k, c in changes.items()})

    def row_range(self, start: int, stop: int) -> NodeTable:
        """The rows ``start:stop`` as a view: every column is a slice of this table's (no copy)
        but ``gpu_offsets`` (rebased); vocabularies and units are shared. The engine's derived
        columns already built for this table are shared too (sliced), so ranking a range
        builds nothing per node again."""
        n = len(self)
        start, stop = max(0, min(start, n)), max(0, min(stop, n))
        stop = max(start, stop)
        g0, g1 = int(self.gpu_offsets[start]), int(self.gpu_offsets[stop])
        changes: dict[str, Any] = {
            "gpu_offsets": (self.gpu_offsets[start : stop + 1] - np.int32(g0)).astype(np.int32),
            "_index": {},
        }
        for f in attrs.fields(NodeTable):
            v = getattr(self, f.name)
            if (
                not isinstance(v, np.ndarray)
                or f.name == "gpu_offsets"
                or f.name.endswith("_vocab")
            ):
                continue
            if f.name.startswith("gpu_") and f.name != "gpu_count":
                changes[f.name] = v[g0:g1]
            elif v.ndim == 2:
                changes[f.name] = v[:, start:stop]
            else:
                changes[f.name] = v[start:stop]
        view = attrs.evolve(self, **{k.lstrip("_"): c for k, c in changes.items()})
        from nodeselect.table._derived import share_derived  # noqa: PLC0415 - imports this module

        return share_derived(self, view, start, stop)

    def with_capacity(
        self,
        *,
        gpu_reserved: B | None = None,
        gpu_vram_free_gb: F32 | None = None,
        cpu_cores: I32 | None = None,
        ram_free_gb: F32 | None = None,
        disk_free_gb: F32 | None = None,
    ) -> NodeTable:
        """A view with residual capacity: every other column is shared, not copied.

        ``gpu_reserved`` (per GPU, True = taken) removes GPUs from every job's count;
        ``gpu_vram_free_gb`` (per GPU) replaces the free VRAM the constraints and scores use
        (telemetry or reported); per-node ``cpu_cores``/``ram_free_gb``/``disk_free_gb`` replace
        those columns. Arrays must have the table's lengths.
        """
        g, n = len(self.gpu_model_code), len(self)
        changes: dict[str, Any] = {}
        for key, arr, size, dtype in (
            ("gpu_reserved", gpu_reserved, g, np.bool_),
            ("gpu_vram_free_override_gb", gpu_vram_free_gb, g, np.float32),
            ("cpu_cores", cpu_cores, n, np.int32),
            ("ram_free_gb", ram_free_gb, n, np.float32),
            ("disk_free_gb", disk_free_gb, n, np.float32),
        ):
            if arr is None:
                continue
            a = np.asarray(arr, dtype=dtype)
            if a.shape != (size,):
                raise InputError(f"with_capacity: {key} must have shape ({size},), got {a.shape}")
            changes[key] = a
        return attrs.evolve(self, **changes)

    @classmethod
    def concat(cls, tables: Sequence[NodeTable]) -> NodeTable:
        """All rows of ``tables`` in order; vocabularies are merged and codes remapped."""
        if not tables:
            raise InputError("NodeTable.concat needs at least one table")
        if len(tables) == 1:
            return tables[0]
        out: dict[str, Any] = {}
        for f in attrs.fields(NodeTable):
            name = f.name
            if name.endswith("_vocab") or name == "_index":
                continue
            if name == "units":
                out[name] = Units.merged([t.units for t in tables])
                continue
            vals = [getattr(t, name) for t in tables]
            if name.endswith("_code") and name != "gpu_model_code":
                vname = name[: -len("_code")] + "_vocab"
                merged: dict[str, int] = {}
                for t in tables:
                    for v in getattr(t, vname):
                        merged.setdefault(v, len(merged))
                parts = []
                for t, arr in zip(tables, vals, strict=True):
                    lut = np.array([merged[v] for v in getattr(t, vname)], dtype=np.int64)
                    parts.append(lut[arr].astype(arr.dtype) if len(lut) else arr)
                out[name] = np.concatenate(parts)
                out[vname] = (
                    np.array(list(merged), dtype=np.bytes_)
                    if vname == "name_vocab"
                    else tuple(merged)
                )
            elif name.endswith("_bits"):
                vname = name[: -len("_bits")] + "_vocab"
                index: dict[str, int] = {}
                for t in tables:
                    for v in getattr(t, vname):
                        index.setdefault(v, len(index))
                words = max(1, (len(index) + 63) // 64)
                out[name] = np.concatenate(
                    [
                        _remap_bits(a, getattr(t, vname), index, words)
                        for t, a in zip(tables, vals, strict=True)
                    ],
                    axis=1,
                )
                out[vname] = tuple(index)
            elif name == "gpu_offsets":
                counts = np.concatenate([np.diff(v) for v in vals])
                offs = np.zeros(len(counts) + 1, dtype=np.int32)
                np.cumsum(counts, out=offs[1:])
                out[name] = offs
            elif name in ("gpu_reserved", "gpu_vram_free_override_gb"):
                if all(v is None for v in vals):
                    out[name] = None
                else:
                    filler = [
                        v
                        if v is not None
                        else (
                            np.zeros(len(t.gpu_model_code), np.bool_)
                            if name == "gpu_reserved"
                            else np.where(np.isnan(t.gpu_vram_free_gb), np.nan, t.gpu_vram_free_gb)
                        )
                        for t, v in zip(tables, vals, strict=True)
                    ]
                    out[name] = np.concatenate(filler)
            elif name == "uuid":
                width = max(v.dtype.itemsize for v in vals)
                out[name] = np.concatenate([v.astype(f"S{width}") for v in vals])
            else:
                out[name] = np.concatenate(vals)
        from nodeselect.table._derived import build_derived  # noqa: PLC0415 - imports this module

        return build_derived(cls(**out))

    # ---------------------------------------------------------------- synthetic
    @classmethod
    def synthetic(cls, n: int, seed: int = 0, *, now: datetime | None = None) -> NodeTable:
        """A realistic random fleet of ``n`` nodes generated directly as columns (benchmarks)."""
        rng = np.random.default_rng(seed)
        now_s = (now or datetime.now(UTC)).timestamp()
        hexd = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
        raw = rng.integers(0, 16, size=(n, 32), dtype=np.uint8)
        chars = np.empty((n, 36), dtype=np.uint8)
        cols = [c for c in range(36) if c not in (8, 13, 18, 23)]
        chars[:, cols] = hexd[raw]
        chars[:, [8, 13, 18, 23]] = ord("-")
        uuid = chars.reshape(-1).view("S36")
        gcount = rng.choice(np.array([0, 1, 2, 4, 8]), size=n, p=[0.25, 0.45, 0.12, 0.10, 0.08])
        offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(gcount, out=offsets[1:])
        models = ["RTX-4090", "RTX-3090", "A100-80GB", "H100-80GB", "L40S", "T4", "A10", "RTX-3080"]
        mcodes = np.array([0] + [gpu_code(m) for m in models], dtype=np.uint16)
        mvram = np.array([24.0] + [float(GPU_MODELS[c - 1].vram_gb or 10) for c in mcodes[1:]])
        node_model = rng.choice(
            len(mcodes), size=n, p=[0.04, 0.3, 0.18, 0.1, 0.08, 0.08, 0.1, 0.07, 0.05]
        )
        gnode = np.repeat(np.arange(n), gcount)
        gm = node_model[gnode]
        g = len(gnode)
        total = mvram[gm]
        free = total * rng.uniform(0.2, 1.0, g)
        tfree = np.where(rng.random(g) < 0.8, free * rng.uniform(0.9, 1.0, g), np.nan)
        load = np.where(np.isnan(tfree), np.nan, rng.beta(0.6, 1.4, g))
        tele_age = rng.exponential(600.0, n)
        ops = max(1, n // 20)
        st = rng.choice(
            len(STATUSES) + 1, size=n, p=[0.05, 0.55, 0.1, 0.03, 0.12, 0.02, 0.08, 0.01, 0.02, 0.02]
        )
        table = cls(
            uuid=uuid,
            name_code=np.zeros(n, dtype=np.int32),
            name_vocab=np.array([b""], dtype=np.bytes_),
            operator_code=rng.integers(1, ops + 1, size=n, dtype=np.int32),
            operator_vocab=("", *(f"op-{i:08d}" for i in range(ops))),
            reputation=np.clip(rng.normal(65, 18, n), 0, 100).astype(np.float32),
            cpu_cores=rng.choice(np.array([4, 8, 16, 32, 64, 128], dtype=np.int32), size=n),
            cpu_load=rng.beta(0.8, 1.6, n).astype(np.float32),
            ram_free_gb=rng.uniform(4, 512, n).astype(np.float32),
            ram_total_gb=np.full(n, 512, dtype=np.float32),
            disk_free_gb=rng.uniform(10, 4000, n).astype(np.float32),
            disk_total_gb=np.full(n, 4000, dtype=np.float32),
            last_seen_epoch_s=now_s - rng.exponential(900.0, n),
            telemetry_epoch_s=now_s - tele_age,
            suspended=rng.random(n) < 0.02,
            deleted=rng.random(n) < 0.01,
            os_code=rng.choice(np.array([0, 1, 2], dtype=np.uint8), size=n, p=[0.05, 0.85, 0.1]),
            os_vocab=("", "ubuntu", "windows"),
            arch_code=rng.choice(np.array([0, 1, 2], dtype=np.uint8), size=n, p=[0.03, 0.9, 0.07]),
            arch_vocab=("", "x86_64", "aarch64"),
            driver_version=rng.choice(
                np.array([0, 470_000_000, 525_000_000, 535_104_005, 550_054_014], dtype=np.int32),
                size=n,
            ),
            image_bits=rng.integers(0, 256, size=(1, n), dtype=np.uint64),
            image_vocab=tuple(f"image-{i}:latest" for i in range(8)),
            compliance_bits=rng.integers(0, 4, size=(1, n), dtype=np.uint64),
            compliance_vocab=COMPLIANCE_TAGS,
            status_code=st.astype(np.uint8),
            status_vocab=("", *STATUSES),
            continent_code=rng.integers(0, len(CONTINENTS) + 1, size=n, dtype=np.uint8),
            continent_vocab=("", *CONTINENTS),
            country_code=rng.integers(0, 5, size=n, dtype=np.uint16),
            country_vocab=("", "US", "DE", "FR", "JP"),
            subdivision_code=np.zeros(n, dtype=np.uint16),
            subdivision_vocab=("",),
            gpu_count=gcount.astype(np.uint8),
            gpu_offsets=offsets,
            gpu_model_code=mcodes[gm],
            gpu_vram_free_gb=free.astype(np.float32),
            gpu_vram_total_gb=total.astype(np.float32),
            gpu_tele_vram_free_gb=tfree.astype(np.float32),
            gpu_load=load.astype(np.float32),
        )
        from nodeselect.table._derived import build_derived  # noqa: PLC0415 - imports this module

        return build_derived(table)
