"""``fit``: GPU job, m = GPUs matching every per-GPU limit, c = count: pack = c / m;
spread = (m - c) / (G - c) with G = the fleet's most GPUs on one node (0 when G <= c).
CPU-only job: 1 / (1 + GPUs on node)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nodeselect.engine.scorers._base import F32, F64, I64, ScoreTerm, TermInputs, f32_up

if TYPE_CHECKING:
    from nodeselect.engine._constraints import CompiledJob
    from nodeselect.table import NodeTable


def gpu_fit(m: F64, c: float | F64, *, pack: bool, max_gpus: int) -> F64:
    """The ``fit`` term of a GPU job from the matching GPU counts ``m`` and the job's ``count``
    ``c`` (a number, or one per row)."""
    if pack:
        return np.where(m > 0, c / np.maximum(m, 1.0), 0.0)
    room = float(max_gpus) - c  # spread: 0 when no node can have more GPUs than the job needs
    out: F64 = np.where(room > 0, (m - c) / np.where(room > 0, room, 1.0), 0.0)
    return out


def fit_cpu_upper(t: NodeTable) -> F32:
    """Every node's CPU-only value ``1 / (1 + GPUs)`` as float32 rounded up."""
    g = t.gpu_count
    if g.dtype == np.uint8:  # one value per count: a look-up table of the same formula
        lut = f32_up(1.0 / (1.0 + np.arange(256, dtype=np.float64)))
        out: F32 = lut[g]
        return out
    return f32_up(1.0 / (1.0 + g.astype(np.float64)))


class Fit(ScoreTerm):
    name = "fit"
    batched = True

    def values(self, cj: CompiledJob, t: NodeTable, idx: I64, inputs: TermInputs) -> F64:
        if inputs.matching is None:
            return 1.0 / (1.0 + t.gpu_count[idx].astype(np.float64))
        pack = cj.job.preferences.strategy == "pack"
        m = inputs.matching.astype(np.float64)
        return gpu_fit(m, float(cj.count), pack=pack, max_gpus=inputs.max_gpus)

    def upper(self, cj: CompiledJob, t: NodeTable) -> F32 | float | None:
        """A CPU-only job's value itself: :func:`fit_cpu_upper`; none for a GPU job."""
        return None if cj.count else fit_cpu_upper(t)
