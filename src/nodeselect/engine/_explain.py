"""Explanations: why nodes were rejected, which single relaxation would admit the most, and why
one node in particular fails or scores as it does.

* ``rejected``: per active constraint (stable :data:`CONSTRAINT_NAMES` order), how many nodes fail
  it. Node-level constraints count independently (a node failing three counts three times); a
  node failing the GPU group is counted once, on the GPU constraint blamed by cumulative counts
  (see :mod:`nodeselect.engine._constraints`).
* ``nearest_misses``: per constraint, ``only_this`` = nodes that removing that constraint alone
  would admit (they pass everything else); for a numeric threshold, ``relaxed_threshold`` = the
  loosest value still needed to admit all of them whose value is known, and ``admits`` = how
  many that is. For ``gpu-count`` the relaxed value is the smallest number of matching GPUs
  among them. Categorical constraints have no threshold (``admits = only_this``).

* ``units`` / ``telemetry_fallbacks`` / ``numeric_strings``: what the table inferred about the
  fleet's telemetry units (docs/units.md), how many telemetry values were present but not used
  (implausible, or in an undecided unit), and how many nodes sent numbers as strings.

Counts are computed on first access, so ranking stays cheap when nobody reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final

import attrs
import numpy as np
import numpy.typing as npt

from nodeselect.engine._boundary import check_job_arg, check_table_arg, checked_now
from nodeselect.engine._constraints import (
    Check,
    CompiledJob,
    GpuEval,
    compile_job,
    gpu_attribution,
    gpu_eval,
    node_checks,
    segment_counts,
)
from nodeselect.engine._scorers import score_terms
from nodeselect.engine._shard import TableStats, table_stats
from nodeselect.engine.constraints import constraint_names
from nodeselect.engine.scorers import with_terms
from nodeselect.errors import InputError
from nodeselect.gpus import GPU_MODELS
from nodeselect.jobs import Job
from nodeselect.table import NodeTable, Units

__all__ = [
    "Evaluation",
    "Explanation",
    "Failure",
    "GpuDetail",
    "NearestMiss",
    "NodeExplanation",
    "explain_node",
]

B = npt.NDArray[np.bool_]


#: The constraints on facts only a server-side filter proves (docs/concepts.md).
FACT_CONSTRAINTS: Final = ("status", "region", "compliance")

#: What to do when such a fact was never proved (the fetch did not filter on it).
FETCH_ADVICE: Final = (
    "fetch with client.fetch(NodeQuery.from_job(job)) (a batch: nodeselect.fleet_queries) so "
    "the server proves it, rather than dropping the constraint"
)


@attrs.frozen
class NearestMiss:
    """Nodes one relaxation would admit (see the module docstring).

    ``unproved``: of the ``only_this`` nodes, how many fail because the fact (status, region,
    compliance) was never proved by a server-side filter: relaxing the job is the wrong fix
    for those; fetching with the job's filters is.
    """

    constraint: str
    only_this: int
    relaxed_threshold: float | None
    admits: int
    unproved: int = 0

    def __str__(self) -> str:
        if self.unproved:
            return (
                f"{self.constraint}: {self.unproved} of the {self.only_this} nodes failing only "
                f"it are unknown, not wrong (no server-side filter proved it): {FETCH_ADVICE}"
            )

        def nodes(n: int) -> str:
            return f"{n} more node" + ("" if n == 1 else "s")

        if self.relaxed_threshold is None:
            return f"{self.constraint}: dropping it admits {nodes(self.admits)}"
        return (
            f"{self.constraint} -> {self.relaxed_threshold:g} admits {nodes(self.admits)}"
            f" ({self.only_this} fail only {self.constraint})"
        )


@attrs.frozen(eq=False)
class Evaluation:
    """Every mask of one job on one table (what explanations are computed from)."""

    cj: CompiledJob
    table: NodeTable
    checks: tuple[Check, ...]
    gpu: GpuEval | None
    feasible: B


class Explanation:
    """Why nodes fit or not: counts, per-constraint rejections and nearest misses (lazy)."""

    __slots__ = ("_ev", "_make", "_misses", "_rejected", "evaluated", "feasible", "units")

    def __init__(
        self,
        ev: Evaluation | Callable[[], Evaluation],
        *,
        evaluated: int = -1,
        feasible: int = -1,
        units: Units | None = None,
    ) -> None:
        """From an evaluation, or from a function computing it on first use (with the counts
        and the table's ``units``)."""
        if isinstance(ev, Evaluation):
            self._ev: Evaluation | None = ev
            self._make: Callable[[], Evaluation] | None = None
            self.evaluated = len(ev.table)
            self.feasible = int(np.count_nonzero(ev.feasible))
            self.units: Units = ev.table.units if units is None else units
        else:
            self._ev, self._make = None, ev
            self.evaluated, self.feasible = evaluated, feasible
            self.units = Units() if units is None else units
        self._rejected: tuple[tuple[str, int], ...] | None = None
        self._misses: tuple[NearestMiss, ...] | None = None

    @property
    def evaluation(self) -> Evaluation:
        """Every mask (computed on first use)."""
        if self._ev is None:
            assert self._make is not None
            self._ev = self._make()
        return self._ev

    def fail_masks(self) -> dict[str, B]:
        """Per active constraint, the nodes it rejects (GPU ones by attribution)."""
        ev = self.evaluation
        out = {c.name: ~c.passes for c in ev.checks}
        if ev.gpu is not None:
            out.update(gpu_attribution(ev.gpu, ev.table))
        return {name: out[name] for name in constraint_names() if name in out}

    @property
    def rejected(self) -> tuple[tuple[str, int], ...]:
        """``(constraint, nodes it rejects)`` for each active constraint, in stable order."""
        if self._rejected is None:
            self._rejected = tuple(
                (name, int(np.count_nonzero(m))) for name, m in self.fail_masks().items()
            )
        return self._rejected

    @property
    def nearest_misses(self) -> tuple[NearestMiss, ...]:
        """For each constraint that alone keeps nodes out, how many and the relaxed threshold."""
        if self._misses is None:
            self._misses = _nearest_misses(self.evaluation)
        return self._misses

    @property
    def telemetry_fallbacks(self) -> int:
        """Telemetry values present but not used (implausible, or their unit undecided)."""
        return self.units.telemetry_fallbacks

    @property
    def numeric_strings(self) -> int:
        """Nodes whose numbers arrived as JSON strings (read as numbers)."""
        return self.units.numeric_strings

    @property
    def unproved(self) -> tuple[tuple[str, int], ...]:
        """``(constraint, nodes it rejects only because the fact is unknown)`` for the fact
        constraints (status, region, compliance) with any: the fetch did not filter on them."""
        ev = self.evaluation
        return tuple((c.name, n) for c in ev.checks if (n := _count(_unproved_mask(ev, c))))

    def advice(self) -> str | None:
        """What to do when nothing fits because facts were never proved, else ``None``:
        e.g. ``"status unknown on 3000 of 3000 nodes: fetch with ..."``."""
        if self.feasible:
            return None
        unknown = self.unproved
        if not unknown:
            return None
        what = ", ".join(f"{name} unknown on {n} of {self.evaluated} nodes" for name, n in unknown)
        return f"{what} (no server-side filter proved it): {FETCH_ADVICE}"

    def summary(self) -> str:
        """``"0/12000 nodes fit: 7100 gpu-model, 3100 gpu-vram-free"`` (then
        ``"; 12 telemetry values fell back to the GB fields"`` when any did, and
        :meth:`advice` when nothing fits because facts were never proved)."""
        head = f"{self.feasible}/{self.evaluated} nodes fit"
        parts = [f"{c} {name}" for name, c in self.rejected if c]
        text = f"{head}: {', '.join(parts)}" if parts else head
        if self.telemetry_fallbacks:
            text += f"; {self.telemetry_fallbacks} telemetry values not used (docs/units.md)"
        advice = self.advice()
        if advice:
            text += f"; {advice}"
        return text

    def __repr__(self) -> str:
        return f"Explanation({self.summary()!r})"


def _count(mask: B | None) -> int:
    return 0 if mask is None else int(np.count_nonzero(mask))


def _unproved_mask(ev: Evaluation, c: Check) -> B | None:
    """Nodes ``c`` rejects whose fact was never proved (``None`` for other constraints).

    Status and geography are unknown when their code is 0; a compliance tag is only ever
    proved present, so every compliance rejection is of an unproved tag.
    """
    if c.name not in FACT_CONSTRAINTS:
        return None
    t, p = ev.table, ev.cj.job.placement
    if c.name == "status":
        unknown = t.status_code == 0
    elif c.name == "region":
        col = t.subdivision_code if p.subdivisions else t.country_code if p.countries else None
        unknown = (t.continent_code if col is None else col) == 0
    else:
        return ~c.passes
    out: B = ~c.passes & unknown
    return out


def _nearest_misses(ev: Evaluation) -> tuple[NearestMiss, ...]:
    t = ev.table
    n = len(t)
    fails = np.zeros(n, dtype=np.int16)
    for c in ev.checks:
        fails += ~c.passes
    gpu_fail = ~ev.gpu.ok if ev.gpu is not None else np.zeros(n, dtype=np.bool_)
    fails += gpu_fail
    out: list[NearestMiss] = []
    for c in ev.checks:
        only = ~c.passes & (fails == 1)
        k = int(np.count_nonzero(only))
        if k == 0:
            continue
        if c.values is None or c.direction is None:
            unknown = _unproved_mask(ev, c)
            out.append(
                NearestMiss(c.name, k, None, k, _count(None if unknown is None else only & unknown))
            )
            continue
        vals = c.values()[only]
        vals = vals[~np.isnan(vals)]
        thr = None
        if len(vals):
            thr = float(vals.min() if c.direction == "min" else vals.max())
        # With no known value to relax to, the advice is "drop it": that admits all k.
        out.append(NearestMiss(c.name, k, thr, k if thr is None else len(vals)))
    if ev.gpu is not None:
        base = gpu_fail & (fails == 1)
        out.extend(_gpu_misses(ev, ev.gpu, base))
    order = {name: i for i, name in enumerate(constraint_names())}
    return tuple(sorted(out, key=lambda m: order[m.constraint]))


def _kth_per_node(
    *,
    rows: npt.NDArray[np.int64],
    node_of: npt.NDArray[np.int64],
    ok: B,
    vals: npt.NDArray[np.float64],
    k: int,
    largest: bool,
    n_nodes: int,
) -> npt.NDArray[np.float64]:
    """Per node (``node_of`` position, ``n_nodes`` of them): the k-th largest (smallest) value
    among ``ok`` GPUs; NaN where a node has fewer than ``k`` (nodes without GPUs included)."""
    sel = ok & ~np.isnan(vals)
    nodes, v = node_of[sel], vals[sel]
    order = np.lexsort((-v if largest else v, nodes))
    nodes, v = nodes[order], v[order]
    counts = np.bincount(nodes, minlength=n_nodes)
    starts = np.cumsum(counts) - counts
    out = np.full(n_nodes, np.nan)
    has = counts >= k
    out[has] = v[starts[has] + k - 1]
    return out


def _gpu_misses(ev: Evaluation, ge: GpuEval, base: B) -> list[NearestMiss]:
    t = ev.table
    idx = np.flatnonzero(base)
    c = ge.count
    out: list[NearestMiss] = []
    m = ge.matching[idx]
    can = (m >= 1) & (m < c)
    if can.any():
        out.append(NearestMiss("gpu-count", int(can.sum()), float(m[can].min()), int(can.sum())))
    if len(idx) == 0:
        return out
    rows = t.gpu_rows(idx)
    lens = (t.gpu_offsets[idx + 1] - t.gpu_offsets[idx]).astype(np.int64)
    node_of = np.repeat(np.arange(len(idx), dtype=np.int64), lens)
    for name in ge.active:
        others = ge.available[rows].copy()
        for other in ge.active:
            if other != name:
                others &= ge.limit_passes[other][rows]
        admitted = segment_counts(others, _offsets(lens)) >= c
        k = int(admitted.sum())
        if k == 0:
            continue
        if name == "gpu-model":
            out.append(NearestMiss(name, k, None, k))
            continue
        if name == "gpu-vram-free":
            vals, largest = ge.vram_free_gb[rows].astype(np.float64), True
        elif name == "gpu-vram-total":
            vals, largest = t.gpu_vram_total_gb[rows].astype(np.float64), True
        else:
            vals, largest = ge.load[rows].astype(np.float64), False
        kth = _kth_per_node(
            rows=rows,
            node_of=node_of,
            ok=others,
            vals=vals,
            k=c,
            largest=largest,
            n_nodes=len(idx),
        )[admitted]
        kth = kth[~np.isnan(kth)]
        thr = None
        if len(kth):
            thr = float(kth.min() if largest else kth.max())
        out.append(NearestMiss(name, k, thr, k if thr is None else len(kth)))
    return out


def _offsets(lens: npt.NDArray[np.int64]) -> npt.NDArray[np.int32]:
    off = np.zeros(len(lens) + 1, dtype=np.int32)
    np.cumsum(lens, out=off[1:])
    return off


@attrs.frozen
class Failure:
    """One constraint a node fails: the node's value and what the job requires."""

    constraint: str
    value: str
    required: str


@attrs.frozen
class GpuDetail:
    """One GPU of a node and the per-GPU limits it fails (``reserved`` if taken)."""

    index: int
    model: str
    vram_free_gb: float
    vram_total_gb: float
    load: float
    fails: tuple[str, ...]


@attrs.frozen
class NodeExplanation:
    """Every constraint one node fails (not only the first) and its score broken into terms.

    ``score``/``terms`` are computed even for an infeasible node (what it *would* score).
    """

    index: int
    uuid: str
    name: str | None
    feasible: bool
    failures: tuple[Failure, ...]
    score: float
    terms: Mapping[str, float]
    gpus: tuple[GpuDetail, ...]

    def __str__(self) -> str:
        who = self.name or self.uuid
        if self.feasible:
            return f"{who}: fits, score {self.score:.4f}"
        fails = "; ".join(f"{f.constraint} ({f.value}, need {f.required})" for f in self.failures)
        return f"{who}: fails {fails}"


def _fmt(v: Any, unit: str = "") -> str:
    if isinstance(v, float) and np.isnan(v):
        return "unknown"
    return f"{v:g}{(' ' + unit) if unit else ''}" if isinstance(v, float) else str(v)


def _node_value(t: NodeTable, c: Check) -> str:
    if c.values is not None:
        return _fmt(float(c.values()[0]), c.unit)
    if c.name == "status":
        return t.status_vocab[t.status_code[0]] or "unknown"
    if c.name == "region":
        parts = (
            t.continent_vocab[t.continent_code[0]],
            t.country_vocab[t.country_code[0]],
            t.subdivision_vocab[t.subdivision_code[0]],
        )
        return "/".join(p or "unknown" for p in parts)
    if c.name == "arch":
        return t.arch_vocab[t.arch_code[0]] or "unknown"
    if c.name in ("suspended", "deleted"):
        return c.name
    if c.name == "compliance":
        tags = [
            v
            for j, v in enumerate(t.compliance_vocab)
            if int(t.compliance_bits[j >> 6, 0]) >> (j & 63) & 1
        ]
        return "proved " + (", ".join(tags) or "nothing")
    if c.name == "images":
        n = sum(int(t.image_bits[j >> 6, 0]) >> (j & 63) & 1 for j in range(len(t.image_vocab)))
        return f"{n} images cached"
    return "excluded" if c.name in ("operator", "node") else "fails"


def explain_node(
    job: Job,
    table: NodeTable,
    node: str | int,
    *,
    now: datetime | None = None,
    stats: TableStats | None = None,
) -> NodeExplanation:
    """Every constraint ``node`` (row, uuid or name) fails, with values, and its score terms.

    Raises TypeError for arguments of the wrong type, InputError for an unknown node.
    """
    check_job_arg(job, "explain_node")
    check_table_arg(table, "explain_node")
    checked_now(now, "explain_node")
    if isinstance(node, bool) or not isinstance(node, int | np.integer | str):
        raise TypeError(
            f"explain_node: node must be a row number, a uuid or a name, got {type(node).__name__}"
        )
    if isinstance(node, int | np.integer):
        i = int(node)
        if not 0 <= i < len(table):
            raise InputError(f"row {i} is out of range; the table has rows 0..{len(table) - 1}")
    else:
        i = table.index_of(node)
    cj = with_terms(compile_job(job, now))
    st = stats if stats is not None else table_stats(table)
    one = table.take([i])
    checks = node_checks(cj, one)
    ge = gpu_eval(cj, one)
    failures = [Failure(c.name, _node_value(one, c), c.required) for c in checks if not c.passes[0]]
    details: list[GpuDetail] = []
    if ge is not None:
        for name, bad in gpu_attribution(ge, one).items():
            if bad[0]:
                failures.append(
                    Failure(
                        name,
                        f"{int(ge.matching[0])} of {len(ge.passes)} GPUs pass",
                        _gpu_req(cj, name),
                    )
                )
        for g in range(len(ge.passes)):
            fails = tuple(n for n in ge.active if not ge.limit_passes[n][g])
            if not ge.available[g]:
                fails = ("reserved", *fails)
            code = int(one.gpu_model_code[g])
            details.append(
                GpuDetail(
                    index=g,
                    model=GPU_MODELS[code - 1].canonical if code else "unknown",
                    vram_free_gb=float(ge.vram_free_gb[g]),
                    vram_total_gb=float(one.gpu_vram_total_gb[g]),
                    load=float(ge.load[g]),
                    fails=fails,
                )
            )
    order = {name: k for k, name in enumerate(constraint_names())}
    failures.sort(key=lambda f: order[f.constraint])
    raw = score_terms(cj, one, np.zeros(1, dtype=np.int64), ge, st.max_gpu_count)
    terms = {name: w * float(raw[name][0]) / cj.weight_total for name, w in cj.weights}
    score = 0.0
    for name, w in cj.weights:
        score += w * float(raw[name][0])
    return NodeExplanation(
        index=i,
        uuid=table.uuid_of(i),
        name=table.name_of(i),
        feasible=not failures,
        failures=tuple(failures),
        score=score / cj.weight_total,
        terms=terms,
        gpus=tuple(details),
    )


def _gpu_req(cj: CompiledJob, name: str) -> str:
    c = cj.count
    g = cj.job.gpu
    what = {
        "gpu-count": f"{c} GPUs",
        "gpu-model": f"{c} GPUs of {', '.join(g.models)}",
        "gpu-vram-total": f"{c} GPUs with >= {g.min_vram_total_gb} GB total VRAM",
        "gpu-vram-free": f"{c} GPUs with >= {g.min_vram_free_gb} GB free VRAM",
        "gpu-load": f"{c} GPUs with load <= {g.max_load}",
    }
    return what[name]
