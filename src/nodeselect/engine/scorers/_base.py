"""What a score-term unit owns, and the inputs the engine hands it.

A unit (:class:`ScoreTerm`) is one soft preference giving every feasible node a raw value in
[0, 1]. It owns:

* ``name``: the stable name (``RankedNode.terms``, explanations);
* :meth:`weight`: its weight for a compiled job (0: inactive); a built-in term reads the
  job's ``preferences.weights`` under its name (``cj.weights``);
* :meth:`values`: its raw value on some feasible rows (:class:`TermInputs`: the matching GPU
  counts, the GPU group, the fleet's most GPUs, the per-node precompute);
* ``per_gpu``: True when a GPU job's value reads the per-GPU rows (``inputs.gpus``); the engine
  scores such a term last-known and may bound it first (:meth:`bounds`);
* :meth:`precompute`: job-independent per-node columns at one ``now``, gathered into
  :class:`nodeselect.engine.NodeScores` once per batch (bit for bit what :meth:`values`
  computes on the fly);
* :meth:`node_only` / :meth:`node_column`: whether, for a job, the value depends on the node
  alone, and then that per-node column (``rank_many`` sums such leading terms once per batch);
* :meth:`bounds`: a lower and an upper bound of a ``per_gpu`` term without reading the GPUs,
  for pruning (``None``: every candidate is scored exactly);
* :meth:`upper`: for a CPU-only job, an upper bound of the value of every node whatever
  ``now`` (a per-node column or one number), so that ``rank`` scores exactly only the rows
  whose bound reaches the ``k``-th best score (``None``: every feasible row is scored);
* :meth:`cache_key`: the job fields the per-node value depends on (placement shares it between
  jobs with equal keys), or ``None`` when it is not worth sharing;
* ``batched``: ``rank_many`` has a specialised vectorized path for it; a job weighting a term
  without one takes the per-job path (the generic fallback).
"""

from __future__ import annotations

import abc
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, ClassVar

import attrs
import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from nodeselect.engine._constraints import CompiledJob, GpuSubset
    from nodeselect.engine._scorers import NodeScores
    from nodeselect.table import NodeTable

__all__ = ["F32", "F64", "I64", "ScoreTerm", "TermInputs", "decay", "f32_up"]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def f32_up(a: F64) -> F32:
    """``a`` as float32, each value rounded up (``float(out[i]) >= a[i]``): half the bytes of
    a bound column, still a bound. (A float32 rounded below its value steps one unit up in its
    bits: +1 when it is >= 0, -1 when negative; NaN stays NaN.)"""
    with np.errstate(over="ignore"):  # beyond float32: inf, above every value
        out = a.astype(np.float32)
    low = out < a
    bits = out.view(np.uint32)
    bits += low & (out >= 0)  # (ufunc ``where=`` is ~20x slower than this arithmetic)
    bits -= low & (out < 0)
    return out


@attrs.frozen(eq=False)
class TermInputs:
    """What the engine knows about the feasible rows a term is scored on.

    Attributes:
        matching: their matching GPU counts (``None`` for a CPU-only job).
        gpus: their GPU group, when a ``per_gpu`` term is scored (else ``None``).
        max_gpus: the fleet's most GPUs on one node (:class:`TableStats`).
        pre: the per-node precompute for the job's ``now``, when a batch has it.
    """

    matching: I64 | None
    gpus: GpuSubset | None
    max_gpus: int
    pre: NodeScores | None


def decay(age: F64, scale: float) -> F64:
    """``scale / (scale + max(age, 0))``, 0 for an unknown age."""
    a = np.maximum(age, 0.0)
    return np.where(np.isnan(a), 0.0, scale / (scale + a))


class ScoreTerm(abc.ABC):
    """One soft-preference score term (see the module docstring for what a unit owns).

    Subclasses set ``name`` and implement :meth:`values`; every other part has a default.
    """

    #: The stable name (also the ``preferences.weights`` key of a built-in term).
    name: ClassVar[str]
    #: A GPU job's value reads the per-GPU rows (``inputs.gpus``).
    per_gpu: ClassVar[bool] = False
    #: ``rank_many`` has a specialised path for it.
    batched: ClassVar[bool] = False

    def weight(self, cj: CompiledJob) -> float:
        """The job's weight of this term (0: not scored)."""
        for name, w in cj.weights:
            if name == self.name:
                return w
        return 0.0

    @abc.abstractmethod
    def values(self, cj: CompiledJob, t: NodeTable, idx: I64, inputs: TermInputs) -> F64:
        """The raw value in [0, 1] of each row of ``idx`` (only called when weighted)."""

    def precompute(self, t: NodeTable, now_s: float) -> Mapping[str, F64]:
        """Job-independent per-node columns at ``now_s`` (every row of ``t``), by name."""
        return {}

    def node_only(self, cj: CompiledJob) -> bool:
        """Whether the value depends on the node alone for this job (see :meth:`node_column`)."""
        return False

    def node_column(self, pre: NodeScores, n: int) -> F64:
        """Every node's value (of ``n``) when :meth:`node_only`."""
        raise NotImplementedError(self.name)

    def bounds(
        self, cj: CompiledJob, t: NodeTable, idx: I64, pre: NodeScores | None
    ) -> tuple[F64, F64] | None:
        """Per row, a lower and an upper bound of a ``per_gpu`` value (``None``: none)."""
        return None

    def upper(self, cj: CompiledJob, t: NodeTable) -> F32 | float | None:
        """For a CPU-only job, an upper bound of the computed value of every node of ``t`` at any
        ``now``: a column over every row, one number for every node, or ``None`` (no bound:
        every feasible row is scored). It may read only the table's columns that placement
        never writes (not the capacity ones) and nothing of a CPU-only job but that it is one:
        ``rank`` calls it once per table and weights and keeps the combined bound."""
        return None

    def cache_key(self, cj: CompiledJob) -> Hashable | None:
        """Jobs with equal keys have equal values per node (same table, ``now``, stats)."""
        return None

    def __repr__(self) -> str:
        return f"<score term {self.name}>"
