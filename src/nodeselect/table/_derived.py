"""Derived columns of a node table: built once per table on first use, cached, read per job.

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
* :func:`uuid_hash` -- every node's seed-free uuid hash (tie keys of a batch of jobs).

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
    "TOP_GPUS",
    "VRAM_EDGES_GB",
    "cached_nbytes",
    "categorical_mask",
    "gpu_free_top",
    "gpu_model_key",
    "max_gpu_count",
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
        if name == "categorical":
            _mask_order[key] = None
            same = [k for k in _mask_order if k[2:] == key[2:]]
            for old in same[: max(0, len(same) - MAX_MASKS)]:
                _cache.pop(old, None)
                _mask_order.pop(old, None)
    return value


def cached_nbytes(t: NodeTable) -> int:
    """Bytes of the derived columns and masks currently cached for ``t``'s columns."""
    mine = {id(a) for a in (t.gpu_offsets, t.status_code, t.uuid)}
    total = 0
    for key, (_refs, value) in list(_cache.items()):
        if any(isinstance(k, int) and k in mine for k in key[2:]):
            for v in value if isinstance(value, tuple) else (value,):
                if isinstance(v, np.ndarray):
                    total += v.nbytes
    return total


def vram_level(v: npt.ArrayLike) -> U8:
    """The one-byte VRAM level of each value (GB): how many :data:`VRAM_EDGES_GB` are <= it.

    Monotone non-decreasing; NaN -> 0.
    """
    a = np.atleast_1d(np.asarray(v, dtype=np.float64))
    out = np.searchsorted(VRAM_EDGES_GB, a, side="right")
    out[np.isnan(a)] = 0
    return out.astype(np.uint8)


def gpu_model_key(t: NodeTable) -> tuple[U8, npt.NDArray[np.uint16], bool]:
    """Per node its model key (see the module docstring), the local vocabulary of model codes
    (entry ``j - 1`` is the global code of key ``j``; key ``len(vocab) + 1`` is *mixed*), and
    whether any node is mixed."""
    return _cached("model-key", (t.gpu_offsets, t.gpu_model_code), None, lambda: _model_key(t))


def _model_key(t: NodeTable) -> tuple[U8, npt.NDArray[np.uint16], bool]:
    n, codes, offs = len(t), t.gpu_model_code, t.gpu_offsets
    lens = np.diff(offs)
    vocab = np.flatnonzero(np.bincount(codes)) if len(codes) else np.zeros(0, np.int64)  # = unique
    overflow = len(vocab) > 253
    if overflow:
        vocab = vocab[:253]
    mixed = len(vocab) + 1
    key = np.zeros(n, dtype=np.uint8)
    has = lens > 0
    if not has.any():
        return key, vocab.astype(np.uint16), False
    first = codes[offs[:-1][has]]
    # a node is homogeneous when none of its GPUs differs from its first one
    differ = codes != np.repeat(first, lens[has])
    cs = np.zeros(len(codes) + 1, dtype=np.int64)
    np.cumsum(differ, out=cs[1:])
    ndiff = cs[offs[1:]] - cs[offs[:-1]]
    pos = np.searchsorted(vocab, first)
    known = (pos < len(vocab)) & (vocab[np.minimum(pos, len(vocab) - 1)] == first)
    k = np.where(known, pos + 1, mixed).astype(np.uint8)
    k[ndiff[has] > 0] = mixed
    key[has] = k
    return key, vocab.astype(np.uint16), bool((k == mixed).any())


def gpu_free_top(t: NodeTable) -> U8:
    """``(TOP_GPUS, n)`` VRAM levels of each node's largest free-VRAM upper bounds, descending."""
    return _cached(
        "free-top",
        (t.gpu_offsets, t.gpu_vram_free_gb, t.gpu_tele_vram_free_gb),
        None,
        lambda: _free_top(t),
    )


def _free_top(t: NodeTable) -> U8:
    n, offs = len(t), t.gpu_offsets
    lens = np.diff(offs).astype(np.int64)
    out = np.zeros((TOP_GPUS, n), dtype=np.uint8)
    g = len(t.gpu_model_code)
    if g == 0:
        return out
    bound = np.fmax(t.gpu_tele_vram_free_gb, t.gpu_vram_free_gb)
    lvl = vram_level(bound).astype(np.int64)
    gnode = np.repeat(np.arange(n, dtype=np.int64), lens)
    order = np.argsort(gnode * 256 + (255 - lvl), kind="stable")
    pos = np.arange(g, dtype=np.int64) - np.repeat(offs[:-1].astype(np.int64), lens)
    keep = pos < TOP_GPUS
    out[pos[keep], gnode[keep]] = lvl[order][keep]
    return out


def categorical_mask(
    t: NodeTable, key: Hashable, build: Callable[[], npt.NDArray[np.bool_]]
) -> Any:
    """The cached categorical mask of ``key`` on ``t`` (``build`` computes it on a miss)."""
    deps = (
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
    return _cached("categorical", deps, key, build)


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
