"""The integer program of batch placement, as plain arrays (no solver imported here).

The same problem the greedy solves, stated exactly:

* ``x[j]`` (binary): job ``j`` is placed. Only jobs with at least ``nodes`` feasible nodes on the
  empty fleet get one.
* ``y[j, n]`` (binary): a replica of job ``j`` runs on node ``n``; one per node the survey found
  feasible on the empty fleet (capacity only shrinks, so no other node can ever fit).
  ``sum_n y[j, n] = nodes_j * x[j]``: gangs are all-or-nothing, and ``y`` being binary keeps
  the replicas on distinct nodes.
* ``distinct = "operator"``: at most one replica per operator account (nodes of an unknown
  operator are left out, as the greedy leaves them out).
* ``same = scope``: ``z[j, s]`` (binary) picks one scope value, ``sum_s z = x``, and
  ``sum_{n in s} y[j, n] <= nodes_j * z[j, s]`` (nodes of an unproved scope are left out).
* Cores, RAM and disk: per node, the replicas' demands sum to at most what the node has free
  (rows that can never bind are dropped).
* GPUs: per node, each job may use only the GPUs passing its per-GPU limits (its *eligible
  set*). Replicas with demands ``c_j`` on sets ``E_j`` fit iff Hall's condition holds: for every
  union ``U`` of eligible sets, ``sum_{j: E_j subset of U} c_j y[j, n] <= |U|``. The sets of one
  node are usually nested (VRAM thresholds on one GPU model), and then the unions are the sets
  themselves -- one *chain* row per distinct set. With up to ``HALL_SETS`` distinct sets every
  union gets a row; beyond that, integer flow variables per GPU *type* (GPUs the same sets
  contain) replace them. Either way no per-GPU variable is needed, and the model is exact.

Objective: priorities are lexicographic, encoded as weights -- a job of a priority tier weighs
one more than all jobs of lower tiers together, so no number of lower-priority jobs ever buys
out one higher-priority job; within a tier every job counts one.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import attrs
import numpy as np
import numpy.typing as npt

from nodeselect.jobs import Job
from nodeselect.placement._gang import UNKNOWN

__all__ = ["HALL_SETS", "JobData", "Model", "build_model", "tier_weights"]

#: Nodes with at most this many distinct eligible GPU sets get one Hall row per union of sets
#: (at most ``2**HALL_SETS - 1``); beyond it, GPU-type flow variables.
HALL_SETS = 5


@attrs.frozen(eq=False)
class JobData:
    """What the model needs to know about one job.

    Attributes:
        job: the job.
        rows: the nodes (table rows, ascending) it is feasible on in the empty fleet.
        passes: per GPU of the table, whether it passes the job's per-GPU limits (``None`` for
            a CPU-only job). Jobs with equal GPU limits may share one array.
        cores / ram / disk: what one replica reserves.
    """

    job: Job
    rows: npt.NDArray[np.int64]
    passes: npt.NDArray[np.bool_] | None
    cores: int
    ram: float
    disk: float


@attrs.frozen(eq=False)
class Model:
    """A maximization MIP in row-wise sparse form, plus the map back to placement.

    Attributes:
        cost / lower / upper / integer: per column.
        row_lower / row_upper: per row; ``start`` / ``index`` / ``value``: the CSR matrix.
        x_col: per job, its ``x`` column (-1 when the job can never be placed).
        pairs: per ``y`` column (in column order from ``y_start``), ``(job, row)``.
        y_start: the first ``y`` column.
        y_of: ``(job, row) -> y`` column.
        z_of: ``(job, scope code) -> z`` column.
        flow: per node with flow variables, ``(job, type) -> column`` and the GPU indices (in
            the node's ``gpus[]``) of each type.
        eligible: ``(job, row) -> eligible GPU indices`` on that node (jobs with GPUs only).
        weights: per job, its objective weight.
    """

    cost: npt.NDArray[np.float64]
    lower: npt.NDArray[np.float64]
    upper: npt.NDArray[np.float64]
    row_lower: npt.NDArray[np.float64]
    row_upper: npt.NDArray[np.float64]
    start: npt.NDArray[np.int64]
    index: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    x_col: list[int]
    pairs: list[tuple[int, int]]
    y_start: int
    y_of: dict[tuple[int, int], int]
    z_of: dict[tuple[int, int], int]
    flow: dict[int, tuple[dict[tuple[int, int], int], list[tuple[int, ...]]]]
    eligible: dict[tuple[int, int], tuple[int, ...]]
    weights: list[float]

    @property
    def num_col(self) -> int:
        """Columns."""
        return len(self.cost)

    @property
    def num_row(self) -> int:
        """Rows."""
        return len(self.row_lower)


def tier_weights(priorities: Sequence[int]) -> list[float]:
    """Per job, a weight such that one job of a higher priority outweighs every job of all
    lower priorities together (lexicographic by tier), and jobs of one tier count equally."""
    tiers = sorted(set(priorities))
    weight: dict[int, float] = {}
    below = 0.0  # the total weight of all jobs of lower tiers
    for p in tiers:
        weight[p] = below + 1.0
        below += weight[p] * sum(1 for q in priorities if q == p)
    return [weight[p] for p in priorities]


class _Builder:
    def __init__(self) -> None:
        self.cost: list[float] = []
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.row_lower: list[float] = []
        self.row_upper: list[float] = []
        self.start: list[int] = [0]
        self.index: list[int] = []
        self.value: list[float] = []

    def col(self, cost: float, upper: float) -> int:
        self.cost.append(cost)
        self.lower.append(0.0)
        self.upper.append(upper)
        return len(self.cost) - 1

    def row(self, cols: Sequence[int], vals: Sequence[float], lo: float, hi: float) -> None:
        self.index.extend(cols)
        self.value.extend(vals)
        self.start.append(len(self.index))
        self.row_lower.append(lo)
        self.row_upper.append(hi)


def _bits(passes: npt.NDArray[np.bool_], offsets: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Per node, the bitmask of its GPUs that pass (bit ``g`` = the node's GPU ``g``)."""
    n = len(offsets) - 1
    counts = np.diff(offsets)
    node = np.repeat(np.arange(n), counts)
    local = np.arange(len(passes)) - offsets[node]
    out = np.zeros(n, dtype=np.int64)
    on = np.flatnonzero(passes)
    np.add.at(out, node[on], np.left_shift(np.int64(1), local[on].astype(np.int64)))
    return out


def _members(mask: int) -> tuple[int, ...]:
    return tuple(g for g in range(mask.bit_length()) if mask >> g & 1)


def build_model(
    data: Sequence[JobData],
    *,
    gpu_offsets: npt.NDArray[np.int64],
    cores: npt.NDArray[np.int64],
    ram: npt.NDArray[np.float32],
    disk: npt.NDArray[np.float32],
    reserved: npt.NDArray[np.bool_] | None,
    operator_of: npt.NDArray[np.int64],
    scopes: dict[str, npt.NDArray[np.int64]],
) -> Model:
    """The model of placing ``data``'s jobs on a fleet with these capacities (see module doc).

    ``reserved``: GPUs already taken before placement (never eligible); ``scopes``: per
    ``same`` scope name, the per-node code (``UNKNOWN`` where not proved).
    """
    b = _Builder()
    weights = tier_weights([d.job.priority for d in data])
    x_col: list[int] = []
    for j, d in enumerate(data):
        x_col.append(b.col(weights[j], 1.0) if len(d.rows) >= d.job.nodes else -1)
    # y columns, with each job's usable rows (unknown operator / scope dropped by its gang rules)
    y_start = len(b.cost)
    pairs: list[tuple[int, int]] = []
    y_of: dict[tuple[int, int], int] = {}
    usable: list[npt.NDArray[np.int64]] = []
    for j, d in enumerate(data):
        rows = d.rows
        if x_col[j] < 0:
            usable.append(rows[:0])
            continue
        if d.job.nodes > 1 and d.job.gang.distinct == "operator":
            rows = rows[operator_of[rows] != UNKNOWN]
        if d.job.nodes > 1 and d.job.gang.same is not None:
            rows = rows[scopes[d.job.gang.same][rows] != UNKNOWN]
        usable.append(rows)
        for r in rows.tolist():
            y_of[j, r] = b.col(0.0, 1.0)
            pairs.append((j, r))
    z_of: dict[tuple[int, int], int] = {}
    for j, d in enumerate(data):
        if x_col[j] < 0:
            continue
        rows, k = usable[j], d.job.nodes
        ycols = [y_of[j, r] for r in rows.tolist()]
        b.row([*ycols, x_col[j]], [1.0] * len(ycols) + [-float(k)], 0.0, 0.0)
        if k > 1 and d.job.gang.distinct == "operator":
            ops = operator_of[rows]
            for op in np.unique(ops).tolist():
                group = rows[ops == op]
                if len(group) > 1:
                    b.row([y_of[j, r] for r in group.tolist()], [1.0] * len(group), 0.0, 1.0)
        if k > 1 and d.job.gang.same is not None:
            codes = scopes[d.job.gang.same][rows]
            zcols = []
            for s in np.unique(codes).tolist():
                group = rows[codes == s]
                zc = b.col(0.0, 1.0)
                z_of[j, s] = zc
                zcols.append(zc)
                gc = [y_of[j, r] for r in group.tolist()]
                b.row([*gc, zc], [1.0] * len(gc) + [-float(k)], -np.inf, 0.0)
            b.row([*zcols, x_col[j]], [1.0] * len(zcols) + [-1.0], 0.0, 0.0)
    # per node: who may land there
    by_node: dict[int, list[int]] = {}
    for j, rows in enumerate(usable):
        for r in rows.tolist():
            by_node.setdefault(r, []).append(j)
    # Eligible GPU bitmasks per (passes array, node), computed once per distinct array.
    bit_cache: dict[int, npt.NDArray[np.int64]] = {}
    free = None if reserved is None else ~reserved
    for d in data:
        if d.passes is not None and id(d.passes) not in bit_cache:
            p = d.passes if free is None else d.passes & free
            bit_cache[id(d.passes)] = _bits(p, gpu_offsets)
    eligible: dict[tuple[int, int], tuple[int, ...]] = {}
    flow: dict[int, tuple[dict[tuple[int, int], int], list[tuple[int, ...]]]] = {}
    for r in sorted(by_node):
        js = by_node[r]
        caps = (("cores", float(cores[r])), ("ram", float(ram[r])), ("disk", float(disk[r])))
        for attr, cap in caps:
            need = [(j, float(getattr(data[j], attr))) for j in js if getattr(data[j], attr) > 0]
            if sum(v for _, v in need) > cap:
                b.row([y_of[j, r] for j, _ in need], [v for _, v in need], -np.inf, cap)
        gjs = [j for j in js if data[j].job.gpu.count > 0 and data[j].passes is not None]
        if not gjs:
            continue
        sets: dict[int, list[int]] = {}
        for j in gjs:
            passes = data[j].passes
            assert passes is not None
            mask = int(bit_cache[id(passes)][r])
            sets.setdefault(mask, []).append(j)
            eligible[j, r] = _members(mask)
        if len(sets) <= HALL_SETS:
            masks = list(sets)
            unions = {
                _union_of(c)
                for n in range(1, len(masks) + 1)
                for c in itertools.combinations(masks, n)
            }
            for u in sorted(unions):
                inside = [j for m, members in sets.items() if m & ~u == 0 for j in members]
                cs = [float(data[j].job.gpu.count) for j in inside]
                if sum(cs) > bin(u).count("1"):
                    b.row([y_of[j, r] for j in inside], cs, -np.inf, float(bin(u).count("1")))
            continue
        # Flow: GPUs grouped by the sets containing them; w[j, type] integer.
        masks = list(sets)
        types: dict[tuple[bool, ...], list[int]] = {}
        for g in range(_union(sets).bit_length()):
            sig = tuple(bool(m >> g & 1) for m in masks)
            if any(sig):
                types.setdefault(sig, []).append(g)
        cols: dict[tuple[int, int], int] = {}
        tlist = list(types.values())
        per_type: list[list[int]] = [[] for _ in tlist]
        for mi, m in enumerate(masks):
            for j in sets[m]:
                c = data[j].job.gpu.count
                mine = []
                for ti, (sig, _) in enumerate(types.items()):
                    if sig[mi]:
                        col = b.col(0.0, float(min(c, len(tlist[ti]))))
                        cols[j, ti] = col
                        mine.append(col)
                        per_type[ti].append(col)
                b.row([*mine, y_of[j, r]], [1.0] * len(mine) + [-float(c)], 0.0, 0.0)
        for ti, members in enumerate(per_type):
            b.row(members, [1.0] * len(members), -np.inf, float(len(tlist[ti])))
        flow[r] = (cols, [tuple(t) for t in tlist])
    return Model(
        cost=np.array(b.cost),
        lower=np.array(b.lower),
        upper=np.array(b.upper),
        row_lower=np.array(b.row_lower),
        row_upper=np.array(b.row_upper),
        start=np.array(b.start, dtype=np.int64),
        index=np.array(b.index, dtype=np.int64),
        value=np.array(b.value),
        x_col=x_col,
        pairs=pairs,
        y_start=y_start,
        y_of=y_of,
        z_of=z_of,
        flow=flow,
        eligible=eligible,
        weights=weights,
    )


def _union(sets: dict[int, list[int]]) -> int:
    return _union_of(sets)


def _union_of(masks: Iterable[int]) -> int:
    out = 0
    for m in masks:
        out |= m
    return out
