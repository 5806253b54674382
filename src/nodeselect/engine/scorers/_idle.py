"""``idle`` = f * (1 - L) + (1 - f) * 0.5: L = mean load of the matching GPUs with known
telemetry load (CPU-only: cpu.average), clipped to [0, 1]; f = T / (T + telemetry age),
T = 300 s; unknown L -> 0.5. The one built-in term reading per-GPU rows: bounded from the
telemetry age first (:meth:`Idle.bounds`) so that only candidates for the top are read."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from nodeselect.engine.scorers._base import F32, F64, I64, ScoreTerm, TermInputs, decay, f32_up

if TYPE_CHECKING:
    from nodeselect.engine._constraints import CompiledJob
    from nodeselect.engine._scorers import NodeScores
    from nodeselect.table import NodeTable

TELEMETRY_SCALE_S: Final = 300.0


def gpu_load_mean(
    load: npt.NDArray[np.float32], passes: npt.NDArray[np.bool_], lens: I64, starts: I64
) -> F64:
    """Per node, the mean load (clipped to [0, 1]) of its passing GPUs whose load is known, NaN
    when there are none; ``load`` and ``passes`` are per GPU, node by node (``lens`` each,
    from ``starts``)."""
    raw = load.astype(np.float64)
    known = passes & ~np.isnan(raw)
    vals = np.where(known, np.clip(raw, 0.0, 1.0), 0.0)
    nz = lens > 0
    if len(lens) and nz.all():  # every GPU job's feasible node has GPUs
        sums = np.add.reduceat(vals, starts)
        cnt = np.add.reduceat(known.astype(np.float64), starts)
    else:
        sums = np.zeros(len(lens))
        cnt = np.zeros(len(lens))
        if nz.any():
            sums[nz] = np.add.reduceat(vals, starts[nz])
            cnt[nz] = np.add.reduceat(known.astype(np.float64), starts[nz])
    out: F64 = np.where(cnt > 0, sums / np.maximum(cnt, 1.0), np.nan)  # no 0/0: max(cnt, 1)
    return out


def idle_of(f: F64, load: F64) -> F64:
    """``idle`` from the telemetry weight and the (unclipped, maybe unknown) load."""
    load = np.minimum(np.maximum(load, 0.0), 1.0)  # clip (NaN stays NaN), without its overhead
    s = f * (1.0 - load) + (1.0 - f) * 0.5
    return np.where(np.isnan(load), 0.5, s)


def idle_range(f: F64) -> tuple[F64, F64]:
    """Float bounds of ``idle_of(f, L)`` over every load (``L = 1`` / ``L = 0``: rounded
    products and sums are monotone), widened to include 0.5."""
    half = (1.0 - f) * 0.5
    lo = np.minimum(f * 0.0 + half, 0.5)
    hi = np.maximum(f * 1.0 + half, 0.5)
    return lo, hi


#: Added to :func:`cpu_idle_upper`'s real bound: covers the rounding of ``idle_of``'s four
#: operations on values in [0, 1] (each within half an ulp of 1, about 1.1e-16).
_SLACK = 1e-12


def cpu_idle_upper(load: npt.NDArray[np.float32]) -> F64:
    """Per node, an upper bound of the computed CPU-only ``idle`` at any telemetry weight ``f``:
    ``f * (1 - L) + (1 - f) * 0.5`` is linear in ``f`` in [0, 1], so at most
    ``max(1 - L, 0.5)`` in real numbers (0.5 for an unknown load), plus :data:`_SLACK` for
    the float rounding."""
    out: F64 = load.astype(np.float64)
    unknown = np.isnan(out)
    np.clip(out, 0.0, 1.0, out=out)
    np.subtract(1.0, out, out=out)
    np.maximum(out, 0.5, out=out)
    out[unknown] = 0.5
    out += _SLACK
    return out


def idle_cpu_upper(t: NodeTable) -> F32:
    """Every node's :func:`cpu_idle_upper` as float32 rounded up."""
    return f32_up(cpu_idle_upper(t.cpu_load))


def _decay(cj: CompiledJob, t: NodeTable, idx: I64, pre: NodeScores | None) -> F64:
    if pre is not None:
        return pre.cols["decay"][idx]
    return decay(cj.now_s - t.telemetry_epoch_s[idx], TELEMETRY_SCALE_S)


class Idle(ScoreTerm):
    name = "idle"
    per_gpu = True
    batched = True

    def values(self, cj: CompiledJob, t: NodeTable, idx: I64, inputs: TermInputs) -> F64:
        gpus, pre = inputs.gpus, inputs.pre
        if gpus is None:
            if pre is not None:
                return pre.cols["cpu_idle"][idx]
            load = t.cpu_load[idx].astype(np.float64)
        else:
            load = gpu_load_mean(t.gpu_load[gpus.rows], gpus.passes, gpus.lens, gpus.offsets[:-1])
        return idle_of(_decay(cj, t, idx, pre), load)

    def precompute(self, t: NodeTable, now_s: float) -> Mapping[str, F64]:
        f = decay(now_s - t.telemetry_epoch_s, TELEMETRY_SCALE_S)
        lo, hi = idle_range(f)
        return {
            "decay": f,
            "idle_lo": lo,
            "idle_hi": hi,
            "cpu_idle": idle_of(f, t.cpu_load.astype(np.float64)),
        }

    def bounds(
        self, cj: CompiledJob, t: NodeTable, idx: I64, pre: NodeScores | None
    ) -> tuple[F64, F64] | None:
        if pre is not None:
            return pre.cols["idle_lo"][idx], pre.cols["idle_hi"][idx]
        return idle_range(_decay(cj, t, idx, None))

    def upper(self, cj: CompiledJob, t: NodeTable) -> F32 | float | None:
        """A CPU-only job's :func:`idle_cpu_upper`; none for a GPU job."""
        return None if cj.count else idle_cpu_upper(t)

    def cache_key(self, cj: CompiledJob) -> Hashable | None:
        if cj.count == 0:
            return ("cpu", cj.now_s)
        return (cj.model_codes, cj.min_vram_free_gb, cj.min_vram_total_gb, cj.max_load, cj.now_s)
