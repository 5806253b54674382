"""Derived columns of a node table: built once per table, vectorized, cached, read per job.

The table builders (``from_nodes``, ``synthetic``, ``concat``) build the job-independent ones
(:func:`build_derived`: model key, free-VRAM levels, most GPUs) as their last step, so a fresh
table's first rank finds them; any other table (``take``) builds each on its first use. The
uuid hashes (``rank_many`` only) and the categorical masks (per job) are built on first use.

The engine's fast path (:mod:`nodeselect.engine._rank`) tests these compact columns over every node
and runs the exact per-GPU constraints only for the nodes that pass them. Every derived test
is a *necessary* condition of the exact one (it may keep a node the exact test rejects, never
the reverse), so feasibility and scores are exactly those of the full evaluation.

* :func:`gpu_model_key` -- per node, one byte: ``0`` no GPU, ``1..L`` the single GPU model every
  GPU of the node has (an index into a table-local vocabulary of model codes), ``L + 1``
  (``mixed``) when the node's GPUs differ (or the table has more than 253 models).
* :func:`gpu_free_top` -- per node, the ``TOP_GPUS`` largest *upper bounds* of a GPU's effective
  free VRAM, descending, quantized to one byte by :func:`vram_level` (a monotone step
  function, so ``v >= x`` implies ``level(v) >= level(x)``). The bound is
  ``fmax(telemetry free, reported free)``: whatever telemetry freshness ``now`` gives, the
  effective value is one of the two (or NaN, which fails), so the block does not depend on
  ``now``. Slots past a node's GPUs are 0. With a capacity override the engine skips this
  test (the override column is mutable residual state and is never cached).
* :func:`categorical_mask` -- the conjunction of the node-level constraints whose inputs are
  categorical (status, suspended, deleted, region, compliance, operator, node, arch, images),
  per distinct combination of those job fields (a batch of jobs usually shares one); at most
  :data:`MAX_MASKS` per table are kept.
* :func:`max_gpu_count` -- the most GPUs on one node (``TableStats``).
* :func:`keep_rows` / :func:`find_rows` -- job-dependent row sets a layer above derives from
  columns never written in place (the prefilter's rows passing a job's GPU, categorical and
  static tests, with the static columns' values on them; the engine's per-node GPU-group
  counts per set of GPU limits), the latest :data:`MAX_ROWS` per table and dependencies.
* :func:`on_build` -- a layer above's builder the table builders call too (the engine's
  CPU-only score bound for the default weights, kept with :func:`keep_rows`).
* :func:`uuid_hash` -- every node's seed-free uuid hash (tie keys of a batch of jobs).
* :func:`repeated_uuids` -- the uuids held by more than one row (placement refuses them).

Cache keys are the identities of the source arrays (weakly referenced, so a table's entries go
when its columns go, and a ``with_capacity`` view shares the entries of its parent). Only
columns the library never writes in place are sources: the capacity columns placement mutates
(``cpu_cores``, ``ram_free_gb``, ``disk_free_gb``, ``gpu_reserved``, the VRAM override) are read
fresh by every job.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Any, Final, TypeVar

import numpy as np
import numpy.typing as npt

from nodeselect.table._table import NodeTable, uuid_hashes

__all__ = [
    "MAX_MASKS",
    "MAX_ROWS",
    "TOP_GPUS",
    "VRAM_EDGES_GB",
    "build_derived",
    "cached_nbytes",
    "categorical_deps",
    "categorical_mask",
    "find_rows",
    "gpu_free_top",
    "gpu_model_key",
    "keep_rows",
    "max_gpu_count",
    "on_build",
    "repeated_uuids",
    "share_derived",
    "uuid_hash",
    "vram_level",
]

T = TypeVar("T")
U8 = npt.NDArray[np.uint8]

#: GPUs per node kept in :func:`gpu_free_top` (a job needing more uses the last slot).
TOP_GPUS: Final = 4
#: Categorical masks kept per table (least recently used dropped first).
MAX_MASKS: Final = 4
#: Upper edges of the VRAM levels: level(v) = how many edges are <= v (0..255). Quarter-GB steps
#: to 32 GB, then 1 GB steps to 159 GB.
VRAM_EDGES_GB: Final = np.concatenate(
    [np.arange(1, 129, dtype=np.float64) * 0.25, np.arange(33, 160, dtype=np.float64)]
)
assert len(VRAM_EDGES_GB) == 255

#: Row sets kept per table by :func:`keep_rows` (least recently used dropped first).
MAX_ROWS: Final = 8
#: The cached values of which only the latest few per table are kept, by name.
_KEEP: Final = {"categorical": MAX_MASKS, "rows": MAX_ROWS}
_builders: list[Callable[[NodeTable], object]] = []
_lock = threading.RLock()  # re-entrant: a weakref callback may run inside it (gc)
_cache: dict[tuple[Hashable, ...], tuple[tuple[Any, ...], Any]] = {}
_mask_order: dict[tuple[Hashable, ...], None] = {}


class _NoneRef:
    """Stands for a ``None`` dependency (always "alive", always ``None``)."""

    def __call__(self) -> None:
        return None


_NONE_REF: Final = _NoneRef()


def _drop(key: tuple[Hashable, ...], _ref: object) -> None:
    with _lock:
        _cache.pop(key, None)
        _mask_order.pop(key, None)


def _cached(
    name: str, deps: tuple[npt.NDArray[Any] | None, ...], extra: Hashable, build: Callable[[], T]
) -> T:
    """The value of ``build()`` cached on the identity of ``deps`` (and ``extra``)."""
    key: tuple[Hashable, ...] = (name, extra, *(id(d) for d in deps))
    hit = _cache.get(key)
    if hit is not None and all(r() is d for r, d in zip(hit[0], deps, strict=True)):
        if key in _mask_order:
            with _lock:
                _mask_order.pop(key, None)
                _mask_order[key] = None
        value: T = hit[1]
        return value
    value = build()
    drop = functools.partial(_drop, key)
    refs = tuple(_NONE_REF if d is None else weakref.ref(d, drop) for d in deps)
    with _lock:
        _cache[key] = (refs, value)
        keep = _KEEP.get(name)
        if keep is not None:  # the latest ``keep`` of this name on these columns
            _mask_order[key] = None
            same = [k for k in _mask_order if k[0] == name and k[2:] == key[2:]]
            for old in same[: max(0, len(same) - keep)]:
                _cache.pop(old, None)
                _mask_order.pop(old, None)
    return value


def build_derived(t: NodeTable) -> NodeTable:
    """Build ``t``'s job-independent derived columns now (model key, free-VRAM levels, most
    GPUs, the columns registered with :func:`on_build`) and return ``t``: the table builders
    call it, so a fresh table's first rank finds them cached. Views sharing the columns
    (``with_capacity``) share them; other tables (``take``) build each on first use."""
    gpu_model_key(t)
    gpu_free_top(t)
    max_gpu_count(t)
    for build in tuple(_builders):
        build(t)
    return t


def on_build(build: Callable[[NodeTable], object]) -> None:
    """Have :func:`build_derived` call ``build(t)`` on every table it builds (a layer above's
    derived values, e.g. :func:`keep_rows`; registering the same function twice calls it
    once)."""
    if build not in _builders:
        _builders.append(build)


def _peek(name: str, deps: tuple[npt.NDArray[Any] | None, ...]) -> Any:
    """The cached value of ``name`` on ``deps`` (no ``extra``), or ``None``."""
    hit = _cache.get((name, None, *(id(d) for d in deps)))
    if hit is not None and all(r() is d for r, d in zip(hit[0], deps, strict=True)):
        return hit[1]
    return None


def share_derived(parent: NodeTable, view: NodeTable, start: int, stop: int) -> NodeTable:
    """Seed ``view`` (the rows ``start:stop`` of ``parent``, see ``NodeTable.row_range``) with
    slices of the derived columns already cached for ``parent``; returns ``view``."""
    key = _peek("model-key", (parent.gpu_offsets, parent.gpu_model_code))
    if key is not None:
        mine, vocab, _ = key
        part = mine[start:stop]
        has_mixed = bool(len(part)) and bool((part == len(vocab) + 1).any())
        _cached(
            "model-key",
            (view.gpu_offsets, view.gpu_model_code),
            None,
            lambda: (part, vocab, has_mixed),
        )
    top = _peek(
        "free-top", (parent.gpu_offsets, parent.gpu_vram_free_gb, parent.gpu_tele_vram_free_gb)
    )
    if top is not None:
        _cached(
            "free-top",
            (view.gpu_offsets, view.gpu_vram_free_gb, view.gpu_tele_vram_free_gb),
            None,
            lambda: top[:, start:stop],
        )
    hashes = _peek("uuid-hash", (parent.uuid,))
    if hashes is not None:
        _cached("uuid-hash", (view.uuid,), None, lambda: hashes[start:stop])
    return view


def cached_nbytes(t: NodeTable) -> int:
    """Bytes of the derived columns, masks and kept rows currently cached for ``t``'s columns."""
    mine = {id(a) for a in (t.gpu_offsets, t.status_code, t.uuid, t.reputation, t.cpu_load)}
    mine.add(id(t.gpu_count))
    total = 0
    for key, (_refs, value) in list(_cache.items()):
        if any(isinstance(k, int) and k in mine for k in key[2:]):
            for v in value if isinstance(value, (tuple, list)) else (value,):
                if isinstance(v, np.ndarray):
                    total += v.nbytes
                elif isinstance(v, dict):  # values kept with rows: id -> (column, values)
                    total += sum(x[-1].nbytes for x in v.values() if isinstance(x, tuple))
    return total


def vram_level(v: npt.ArrayLike) -> U8:
    """The one-byte VRAM level of each value (GB): how many :data:`VRAM_EDGES_GB` are <= it.

    Monotone non-decreasing; NaN -> 0. Computed arithmetically, not by search: the edges are
    ``k / 4`` (k = 1..128) then ``33..159``, all exact in binary, so ``floor(4 v)`` and
    ``floor(v)`` count them exactly (for float32 input in float32, else in float64).
    """
    a = np.atleast_1d(np.asarray(v))
    if a.dtype != np.float32:
        a = a.astype(np.float64)
    a = np.minimum(np.maximum(a, 0.0), 200.0)  # NaN stays NaN
    quarter = np.minimum(np.floor(a * 4.0), 128.0)  # edges 0.25 .. 32: floor(4 v), at most 128
    whole = np.minimum(np.floor(a) + 96.0, 255.0)  # v >= 33: 128 + (floor(v) - 32)
    lvl = np.where(a < 33.0, quarter, whole)
    lvl[np.isnan(lvl)] = 0.0
    out: U8 = lvl.astype(np.uint8)
    return out


def gpu_model_key(t: NodeTable) -> tuple[U8, npt.NDArray[np.uint16], bool]:
    """Per node its model key (see the module docstring), the local vocabulary of model codes
    (entry ``j - 1`` is the global code of key ``j``; key ``len(vocab) + 1`` is *mixed*), and
    whether any node is mixed."""
    return _cached("model-key", (t.gpu_offsets, t.gpu_model_code), None, lambda: _model_key(t))


def _model_key(t: NodeTable) -> tuple[U8, npt.NDArray[np.uint16], bool]:
    n, codes, offs = len(t), t.gpu_model_code, t.gpu_offsets
    key = np.zeros(n, dtype=np.uint8)
    if not len(codes):
        return key, np.zeros(0, np.uint16), False
    present = np.zeros(65536, dtype=np.bool_)
    present[codes] = True
    vocab = np.flatnonzero(present)  # = unique codes, ascending
    if len(vocab) > 253:
        vocab = vocab[:253]
    mixed = len(vocab) + 1
    lut = np.full(65536, mixed, dtype=np.uint8)
    lut[vocab] = np.arange(1, len(vocab) + 1, dtype=np.uint8)
    starts, ends = offs[:-1], offs[1:]
    has = ends > starts
    # a node is mixed when two consecutive GPUs of it differ: count the changes inside its span
    change = np.zeros(len(codes), dtype=np.int32)
    np.not_equal(codes[1:], codes[:-1], out=change[1:], casting="unsafe")
    np.cumsum(change, out=change)
    inside = change[np.maximum(ends - 1, 0)] - change[np.minimum(starts, len(codes) - 1)]
    k = lut[codes[np.minimum(starts, len(codes) - 1)]]
    k[inside > 0] = mixed
    np.copyto(key, k, where=has)
    return key, vocab.astype(np.uint16), bool((key == mixed).any())


def gpu_free_top(t: NodeTable) -> U8:
    """``(TOP_GPUS, n)`` VRAM levels of each node's largest free-VRAM upper bounds, descending."""
    return _cached(
        "free-top",
        (t.gpu_offsets, t.gpu_vram_free_gb, t.gpu_tele_vram_free_gb),
        None,
        lambda: _free_top(t),
    )


#: Nodes with more GPUs than this have theirs sorted by ``np.sort`` (else a sorting network).
_NETWORK_MAX: Final = 16


def _sorted_desc(cols: list[U8]) -> list[U8]:
    """The columns of a ``(m, c)`` block sorted per row, descending (odd-even transposition
    network: ``c`` rounds of elementwise max/min, exact for any values)."""
    c = len(cols)
    for r in range(c):
        for j in range(r % 2, c - 1, 2):
            hi = np.maximum(cols[j], cols[j + 1])
            np.minimum(cols[j], cols[j + 1], out=cols[j + 1])
            cols[j] = hi
    return cols


def _free_top(t: NodeTable) -> U8:
    n, offs = len(t), t.gpu_offsets
    out = np.zeros((TOP_GPUS, n), dtype=np.uint8)
    if len(t.gpu_model_code) == 0:
        return out
    lvl = vram_level(np.fmax(t.gpu_tele_vram_free_gb, t.gpu_vram_free_gb))
    starts = offs[:-1]
    lens = offs[1:] - starts
    counts = np.bincount(lens)
    # nodes grouped by GPU count: each group is an (m, c) block of levels, sorted per row
    by_len = None
    if np.count_nonzero(counts) > 8:  # many sizes: one (radix) sort instead of a scan per size
        by_len = np.argsort(
            lens.astype(np.uint16 if len(counts) <= 65536 else np.int64), kind="stable"
        )
    at = 0
    for c in range(len(counts)):
        m = int(counts[c])
        if not m:
            continue
        nodes = np.flatnonzero(lens == c) if by_len is None else by_len[at : at + m]
        at += m
        if c == 0:
            continue
        first = starts[nodes]
        keep = min(c, TOP_GPUS)
        if c > _NETWORK_MAX:
            block = lvl[first[:, None] + np.arange(c)]
            top = np.sort(block, axis=1)[:, ::-1][:, :keep]
            out[:keep, nodes] = top.T
            continue
        cols = _sorted_desc([lvl[first + j] for j in range(c)])
        for j in range(keep):
            out[j, nodes] = cols[j]
    return out


def categorical_deps(t: NodeTable) -> tuple[npt.NDArray[Any], ...]:
    """The columns the categorical masks read (their cache dependencies)."""
    return (
        t.status_code,
        t.suspended,
        t.deleted,
        t.continent_code,
        t.country_code,
        t.subdivision_code,
        t.compliance_bits,
        t.operator_code,
        t.name_code,
        t.uuid,
        t.arch_code,
        t.image_bits,
    )


def categorical_mask(
    t: NodeTable, key: Hashable, build: Callable[[], npt.NDArray[np.bool_]]
) -> Any:
    """The cached categorical mask of ``key`` on ``t`` (``build`` computes it on a miss)."""
    return _cached("categorical", categorical_deps(t), key, build)


def find_rows(key: Hashable, deps: tuple[npt.NDArray[Any] | None, ...]) -> Any:
    """The value :func:`keep_rows` kept under ``key`` for the columns ``deps``, or ``None``."""
    full: tuple[Hashable, ...] = ("rows", key, *(id(d) for d in deps))
    hit = _cache.get(full)
    if hit is None or not all(r() is d for r, d in zip(hit[0], deps, strict=True)):
        return None
    with _lock:
        if full in _mask_order:
            _mask_order.pop(full, None)
            _mask_order[full] = None
    return hit[1]


def keep_rows(key: Hashable, deps: tuple[npt.NDArray[Any] | None, ...], value: Any) -> None:
    """Keep ``value`` (a job-dependent row set, or per-row values, a layer above derived from
    the columns ``deps`` of a table, never written in place) under ``key``: the latest
    :data:`MAX_ROWS` per table are kept, dropped with the columns."""
    _cached("rows", deps, key, lambda: value)


def max_gpu_count(t: NodeTable) -> int:
    """The most GPUs on one node of ``t`` (0 for an empty table)."""
    return _cached(
        "max-gpus",
        (t.gpu_offsets,),
        None,
        lambda: int(np.diff(t.gpu_offsets).max()) if len(t) else 0,
    )


def uuid_hash(t: NodeTable) -> npt.NDArray[np.uint64]:
    """Every node's seed-free uuid hash (:func:`nodeselect.table._table.uuid_hashes`)."""
    return _cached("uuid-hash", (t.uuid,), None, lambda: uuid_hashes(t.uuid))


def repeated_uuids(t: NodeTable) -> tuple[str, ...]:
    """The uuids that more than one row of ``t`` holds, sorted (empty for a valid fleet).

    ``from_nodes`` refuses or merges repeated uuids, but ``take`` with a repeated row and
    ``concat`` of overlapping shards can make them; placement would then reserve one machine
    twice. Found through the cached uuid hashes (one sort of 64-bit words); rows whose hashes
    collide are compared byte for byte, so a hash collision is never reported. Cached per
    uuid column.
    """

    def build() -> tuple[str, ...]:
        h = uuid_hash(t)
        if len(h) < 2:
            return ()
        order = np.argsort(h, kind="stable")
        hs = h[order]
        same = hs[1:] == hs[:-1]
        if not same.any():
            return ()
        rows = np.unique(np.concatenate([order[1:][same], order[:-1][same]]))
        u, counts = np.unique(t.uuid[rows], return_counts=True)
        return tuple(sorted(x.decode("utf-8", "replace") for x in u[counts > 1]))

    return _cached("uuid-repeats", (t.uuid,), None, build)
