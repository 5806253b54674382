"""The engine's fast feasibility pass: every hard constraint, with as little work per node as
possible, and exactly the feasible set of the full evaluation
(:func:`nodeselect.engine._rank.evaluate`).

Per block of :data:`CHUNK_ROWS` nodes (its masks stay in cache, buffers are reused):

1. the cached categorical mask of the job's categorical units (status, suspended, deleted,
   region, compliance, operator, node, arch, images), keyed by their ``key`` parts
   (:func:`nodeselect.table._derived.categorical_mask`, built once per distinct combination);
2. the GPU prefilters, necessary conditions of the GPU group read from one-byte derived
   columns: ``gpu_count >= count``, the node's model key among the accepted models (or mixed),
   and the ``count``-th largest free-VRAM level ``>=`` the threshold's level;
3. the other node-level units' fast tests (today reputation, staleness, driver, cores, RAM,
   disk: each unit's :meth:`~nodeselect.engine.constraints.NodeConstraint.fast_test`, exactly
   its ``check``) -- on the whole block, or, when fewer than 1/8 of its nodes are left, on the
   survivors' values only, the tests that kept the fewest rows in the blocks before first
   (an AND in any order is the same set; fewer rows are gathered);
4. any registered unit without a fast test: its ``check`` on the survivors (the generic
   fallback, so a new unit is enforced without a fast path).

The exact GPU group (:func:`nodeselect.engine._constraints.gpu_subset`, or its per-node counts
kept per table, :func:`nodeselect.engine._constraints.gpu_matching`) then runs for the survivors
only. Every prefilter is implied by the exact constraints, so no feasible node is dropped.

Rows kept per job key (:func:`node_pass`): those passing the GPU, categorical and static tests,
and those passing the GPU and categorical tests alone, with the static columns' values on them
(gathered once, so a job with a new static threshold compares contiguous values).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from nodeselect.engine._constraints import (
    CompiledJob,
    GpuSubset,
    f32_at_least,
    gpu_subset,
)
from nodeselect.engine.constraints import (
    ALL_ROWS,
    NODE_CONSTRAINTS,
    FastTest,
    NodeConstraint,
    categorical_units,
    node_constraints,
)
from nodeselect.table import (
    TOP_GPUS,
    NodeTable,
    categorical_deps,
    categorical_mask,
    find_rows,
    gpu_free_top,
    gpu_model_key,
    keep_rows,
    vram_level,
)

__all__ = [
    "CATEGORICAL",
    "CHUNK_ROWS",
    "feasible_rows",
    "generic_pass",
    "models_known",
    "node_pass",
    "node_tests",
    "rows_pass",
]

B = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]

#: Rows per block (bool masks of a block stay in L2).
CHUNK_ROWS: Final = 1 << 17
#: The built-in node-level constraints folded into the cached categorical mask (run-time units
#: too when ``categorical``: :func:`nodeselect.engine.constraints.categorical_units`).
CATEGORICAL: Final = frozenset(u.name for u in NODE_CONSTRAINTS if u.categorical)
#: Below this share of survivors a block switches from whole-block masks to gathered values.
_SPARSE: Final = 8

# A test: (kind, column, argument). Kinds: "ge" col >= arg; "age" (arg[0] - col) <= arg[1];
# "any" col equals one of arg (a tuple); "lut" arg[col].
_Test = FastTest


def _categorical_key(cj: CompiledJob) -> tuple[Hashable, ...] | None:
    """The job fields the categorical mask depends on (each categorical unit's
    :meth:`~nodeselect.engine.constraints.NodeConstraint.key`), or ``None`` when none is active."""
    units = categorical_units()
    for u in units:
        if u.active(cj):
            return (units, *[v.key(cj) for v in units])
    return None


def _categorical(cj: CompiledJob, t: NodeTable) -> B | None:
    key = _categorical_key(cj)
    if key is None:
        return None

    def build() -> B:
        mask = np.ones(len(t), dtype=np.bool_)
        luts: dict[str, B] = {}
        for u in categorical_units():
            if u.active(cj):
                mask &= u.check(cj, t, ALL_ROWS, luts).passes
        return mask

    out: B = categorical_mask(t, key, build)
    return out


def _gpu_tests(
    cj: CompiledJob, t: NodeTable, levels: dict[float, int] | None = None
) -> list[_Test]:
    """The GPU prefilters of ``cj`` (``levels``: :func:`vram_level` of free-VRAM thresholds,
    rounded to float32 as they are compared, when a batch computed them at once)."""
    if cj.count == 0:
        return []
    tests: list[_Test] = []
    if cj.model_codes is not None:
        key, vocab, has_mixed = gpu_model_key(t)
        accepted = [j + 1 for j, c in enumerate(vocab.tolist()) if c in cj.model_codes]
        if has_mixed:
            accepted.append(len(vocab) + 1)
        if len(accepted) <= 3:
            tests.append(("any", key, tuple(accepted) or (0,)))  # key 0 (no GPU) never passes
        else:
            lut = np.zeros(256, dtype=np.bool_)
            lut[accepted] = True
            tests.append(("lut", key, lut))
    level = 0
    if cj.min_vram_free_gb is not None and t.gpu_vram_free_override_gb is None:
        x = float(f32_at_least(cj.min_vram_free_gb))
        hit = None if levels is None else levels.get(x)
        level = int(vram_level(x)[0]) if hit is None else hit
        if level > 0:
            top = gpu_free_top(t)[min(cj.count, TOP_GPUS) - 1]
            tests.insert(0, ("ge", top, np.uint8(level)))
    if level == 0 or cj.count > TOP_GPUS:
        # (else implied: slot count-1 of a node with fewer GPUs is level 0)
        tests.insert(0, ("ge", t.gpu_count, min(cj.count, 255)))
    return tests


def _active_units(cj: CompiledJob, t: NodeTable) -> Iterator[tuple[NodeConstraint, _Test | None]]:
    """The active non-categorical units of ``cj``, in registry order, each with its fast test
    (``None`` for a unit without one: the generic fallback applies its ``check``)."""
    for u in node_constraints():
        if not u.categorical and u.active(cj):
            yield u, u.fast_test(cj, t)


def node_tests(cj: CompiledJob, t: NodeTable) -> tuple[list[_Test], list[NodeConstraint]]:
    """The active non-categorical units of ``cj``, in registry order: the fast tests of those
    that have one, and the units without (the generic fallback applies their ``check``)."""
    tests: list[_Test] = []
    generic: list[NodeConstraint] = []
    for u, ft in _active_units(cj, t):
        if ft is None:
            generic.append(u)
        else:
            tests.append(ft)
    return tests, generic


def generic_pass(cj: CompiledJob, t: NodeTable, rows: I64, units: list[NodeConstraint]) -> B | None:
    """Per row of ``rows``, whether it passes every unit of ``units`` by its ``check`` (the
    generic fallback for units without a fast test; ``None`` when there are none)."""
    if not units:
        return None
    luts: dict[str, B] = {}
    ok = np.ones(len(rows), dtype=np.bool_)
    for u in units:
        ok &= u.check(cj, t, rows, luts).passes
    return ok


def rows_pass(
    cj: CompiledJob, t: NodeTable, rows: I64, *, reading: frozenset[str] | None = None
) -> B:
    """Per row of ``rows``, whether it passes every active node-level unit of ``cj`` (only the
    units reading one of the columns ``reading``, when given): the fast test on the rows'
    values, or the unit's ``check`` (placement re-checks the capacity constraints this way)."""
    ok = np.ones(len(rows), dtype=np.bool_)
    generic: list[NodeConstraint] = []
    for u in node_constraints():
        if (reading is not None and not u.columns & reading) or not u.active(cj):
            continue
        ft = None if u.categorical else u.fast_test(cj, t)
        if ft is None:
            generic.append(u)
        else:
            kind, col, arg = ft
            ok &= _gathered(kind, col[rows], arg)
    more = generic_pass(cj, t, rows, generic)
    if more is not None:
        ok &= more
    return ok


def _block(kind: str, col: Any, arg: Any, out: B, scratch: npt.NDArray[np.float64]) -> B:
    """The test on a whole block (``col`` is the block's slice), written into ``out``."""
    if kind == "ge":
        np.greater_equal(col, arg, out=out)
    elif kind == "age":
        np.subtract(arg[0], col, out=scratch)
        np.less_equal(scratch, arg[1], out=out)
    elif kind == "any":
        np.equal(col, arg[0], out=out)
        for v in arg[1:]:
            out |= col == v
    else:
        np.take(arg, col, out=out)
    return out


def _gathered(kind: str, vals: Any, arg: Any) -> B:
    """The test on gathered values."""
    if kind == "ge":
        out: B = vals >= arg
    elif kind == "age":
        out = (arg[0] - vals) <= arg[1]
    elif kind == "any":
        out = vals == arg[0]
        for v in arg[1:]:
            out |= vals == v
    else:
        out = np.take(arg, vals)
    return out


_Kept = tuple[Hashable, tuple[Any, ...]]


def _static_tests(
    cj: CompiledJob, t: NodeTable
) -> tuple[list[_Test], list[_Test], list[NodeConstraint], _Kept, _Kept]:
    """The active non-categorical units' fast tests split into the static ones (``static``
    units: their masks depend on the job and columns never written in place) and the others,
    the units without a fast test, and the key and columns (:func:`nodeselect.table.keep_rows`)
    of the rows passing the GPU, categorical and static tests, and of those passing the GPU and
    categorical tests alone."""
    static: list[_Test] = []
    other: list[_Test] = []
    generic: list[NodeConstraint] = []
    keys: list[Hashable] = []
    cols: list[Any] = []
    for u, ft in _active_units(cj, t):
        if ft is None:
            generic.append(u)
        elif u.static:
            static.append(ft)
            keys.append((u, u.key(cj)))
            cols.extend(getattr(t, c) for c in sorted(u.columns))
        else:
            other.append(ft)
    override = t.gpu_vram_free_override_gb is not None
    gpu = None
    if cj.count:
        vram = None if override else cj.min_vram_free_gb
        gpu = (cj.count, cj.model_codes, vram)
    base_key = (_categorical_key(cj), gpu, override)
    base_deps = (
        *categorical_deps(t),
        t.gpu_offsets,
        t.gpu_model_code,
        t.gpu_vram_free_gb,
        t.gpu_tele_vram_free_gb,
        t.gpu_count,
    )
    # "static" keeps the two keys apart for a job without static tests (an empty ``keys``),
    # whose kept rows are a 1-tuple where the GPU-and-categorical entry is a 2-tuple
    full = ((*base_key, "static", *keys), (*base_deps, *cols))
    return static, other, generic, full, (base_key, base_deps)


def _gathered_in_order(rows: I64, tests: list[_Test], order: list[int] | None = None) -> I64:
    """The rows of ``rows`` passing every test, tested on their gathered values."""
    for j in range(len(tests)) if order is None else order:
        if not len(rows):
            break
        kind, col, arg = tests[j]
        rows = rows[_gathered(kind, col.take(rows), arg)]
    return rows


def _static_rows(base: tuple[I64 | None, dict[int, Any]], static: list[_Test]) -> I64:
    """The kept rows passing the GPU and categorical tests (``base[0]``) that pass the static
    tests too. Static columns are never written in place, so each one's values on those rows
    are gathered once and kept with them (``base[1]``: column id -> (column, values)); a job
    with a new static threshold then compares contiguous values instead of gathering."""
    rows, vals = base
    assert rows is not None
    ok: B | None = None
    for kind, col, arg in static:
        hit = vals.get(id(col))
        if hit is None or hit[0] is not col:  # (a column's id is reused only once it is gone)
            hit = vals[id(col)] = (col, col.take(rows))
        passes = _gathered(kind, hit[1], arg)
        if ok is None:
            ok = passes
        else:
            ok &= passes
    return rows if ok is None else rows[ok]


def models_known(cj: CompiledJob, t: NodeTable) -> bool:
    """Whether every GPU of the rows :func:`node_pass` returns for ``cj`` is of a model the job
    accepts: its model-key test passes only single-model nodes of accepted models when the
    table has no mixed node."""
    return cj.count > 0 and cj.model_codes is not None and not gpu_model_key(t)[2]


def node_pass(cj: CompiledJob, t: NodeTable) -> I64:
    """Rows passing every node-level constraint and the GPU prefilters (ascending).

    The rows passing the GPU, categorical and static tests are kept per job key when they are
    under 1/8 of the table (:func:`nodeselect.table.keep_rows`), and so are those passing the
    GPU and categorical tests alone: a job with the same key then tests only the others
    (capacity, ``now``) on the first; a job differing only in static thresholds starts from
    the second."""
    static, other, generic, (key, deps), (base_key, base_deps) = _static_tests(cj, t)
    kept = find_rows(key, deps)
    base = None if kept is not None or not static else find_rows(base_key, base_deps)
    if kept is not None and kept[0] is not None:
        idx = _gathered_in_order(kept[0], other)
    elif base is not None and base[0] is not None:
        rows = _static_rows(base, static)
        keep_rows(key, deps, (rows,))
        idx = _gathered_in_order(rows, other)
    else:
        collect = kept is None
        idx, passing, before = _scan(cj, t, static, other, collect=collect)
        if collect:
            keep_rows(key, deps, (passing,))
            if static and base is None:
                keep_rows(base_key, base_deps, (before, {}))
    more = generic_pass(cj, t, idx, generic)
    return idx if more is None else idx[more]


def _scan(
    cj: CompiledJob, t: NodeTable, static: list[_Test], other: list[_Test], *, collect: bool
) -> tuple[I64, I64 | None, I64 | None]:
    """:func:`node_pass`'s blocks: the rows passing every fast test, and (``collect``) the rows
    passing the GPU, categorical and static ones, and those passing the GPU and categorical
    ones, each when under 1/8 of the table (else ``None``)."""
    n = len(t)
    cat = _categorical(cj, t)
    first = _gpu_tests(cj, t)
    rest = static + other
    size = min(n, CHUNK_ROWS)
    buf = np.empty(size, dtype=np.bool_)
    tmp = np.empty(size, dtype=np.bool_)
    scratch = np.empty(size if any(k == "age" for k, _, _ in rest) else 0, dtype=np.float64)
    parts: list[I64] = []
    passing: list[I64] | None = [] if collect else None
    before: list[I64] | None = [] if collect and static else None
    total = total_before = 0
    # gathered tests run most selective first (static before the others, to collect their
    # rows): their pass rates, counted as blocks go by
    orders = [list(range(len(static))), list(range(len(static), len(rest)))]
    tried, kept = [1] * len(rest), [1] * len(rest)
    for start in range(0, n, CHUNK_ROWS):
        stop = min(n, start + CHUNK_ROWS)
        m = stop - start
        blk, tb, sc = buf[:m], tmp[:m], scratch[:m]
        if first:
            kind, col, arg = first[0]
            _block(kind, col[start:stop], arg, blk, sc)
            if cat is not None:
                blk &= cat[start:stop]
        elif cat is not None:
            np.copyto(blk, cat[start:stop])
        else:
            blk.fill(True)
        for kind, col, arg in first[1:]:
            blk &= _block(kind, col[start:stop], arg, tb, sc)
        if rest and np.count_nonzero(blk) * _SPARSE < m:
            local = np.flatnonzero(blk)
            if before is not None:
                before.append(local + start)
                total_before += len(local)
            for order in orders:
                for j in order:
                    if not len(local):
                        break
                    kind, col, arg = rest[j]
                    tried[j] += len(local)
                    local = local[_gathered(kind, col[start:stop].take(local), arg)]
                    kept[j] += len(local)
                order.sort(key=lambda j: kept[j] / tried[j])
                if passing is not None and order is orders[0]:
                    passing.append(local + start)
                    total += len(local)
        else:
            if rest:  # at least 1/8 of the block passed the GPU and categorical tests: the
                before = passing = None  # rows will not be few, so do not collect them
            if before is not None:
                mine = np.flatnonzero(blk)
                before.append(mine + start)
                total_before += len(mine)
            for kind, col, arg in static:
                blk &= _block(kind, col[start:stop], arg, tb, sc)
            if passing is not None:
                mine = np.flatnonzero(blk)
                passing.append(mine + start)
                total += len(mine)
            for kind, col, arg in other:
                blk &= _block(kind, col[start:stop], arg, tb, sc)
            local = np.flatnonzero(blk)
        parts.append(local + start if start else local)
        if passing is not None and total * _SPARSE >= n:
            passing = None  # too many to be worth keeping
        if before is not None and total_before * _SPARSE >= n:
            before = None
    idx: I64 = np.zeros(0, dtype=np.int64)
    if parts:
        idx = np.concatenate(parts) if len(parts) > 1 else parts[0]
        idx = idx.astype(np.int64, copy=False)
    return idx, _joined(passing), _joined(before)


def _joined(parts: list[I64] | None) -> I64 | None:
    """The blocks' rows in one array (``None`` stays ``None``)."""
    if parts is None:
        return None
    rows: I64 = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return rows.astype(np.int64, copy=False)


def feasible_rows(cj: CompiledJob, t: NodeTable) -> tuple[I64, GpuSubset | None, GpuSubset | None]:
    """The feasible rows (ascending), the GPU group of exactly those rows, and the GPU group of
    every row that passed :func:`node_pass` (``None``, ``None`` for a CPU-only job)."""
    idx = node_pass(cj, t)
    sub = gpu_subset(cj, t, idx, models_known=models_known(cj, t))
    if sub is None:
        return idx, None, None
    feasible = sub.select(sub.matching >= cj.count)
    return feasible.idx, feasible, sub
