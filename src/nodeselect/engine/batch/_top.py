"""Each job's best nodes column by column (:class:`TopColumns`): what ``rank_many``'s rankings
hold in their ``top`` tuples and ``feasible`` counts, without an object per node.

A survey's tile ranks 1,000 jobs and ships their 10,000 best nodes as arrays; built as
:class:`RankedNode` objects first (one frozen attrs instance and one ``dict`` of terms per
node), then taken apart into arrays, they cost ~23 ms of a ~195 ms tile (1,000 jobs x 250k
nodes). :func:`nodeselect.engine.rank_many_columns` builds the arrays directly where jobs are
ranked together, and converts the rankings of the others (:func:`top_columns`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from nodeselect.engine._constraints import _offsets
from nodeselect.engine._rank import Ranking
from nodeselect.table import csr_take

__all__ = ["TopColumns", "TopRows", "assemble", "rows_of", "top_columns"]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
U64 = npt.NDArray[np.uint64]


@attrs.frozen(eq=False)
class TopColumns:
    """Each job's feasible count and best nodes (best first), as arrays: a job's rows are
    consecutive, jobs in the order ranked. A node's uuid and name are the table's, at its row.
    :meth:`equals` compares two, bit for bit (floats as their bits).

    Attributes:
        feasible: per job, its feasible nodes (``Ranking.feasible``).
        counts: per job, its rows (``len(Ranking.top)``).
        terms: per job, its rows' score term names in its weights' order (empty when it has
            no row).
        rows: per row, the node's row in the table (``RankedNode.index``).
        score: per row, ``RankedNode.score``.
        tie: per row, ``RankedNode.tie_key``.
        values: row after row, its terms' contributions (``len(terms[j])`` of them).
        gpu_counts: per row, ``len(RankedNode.gpu_indices)``.
        gpus: row after row, its ``gpu_indices``.
    """

    feasible: I64
    counts: I64
    terms: tuple[tuple[str, ...], ...]
    rows: I64
    score: F64
    tie: U64
    values: F64
    gpu_counts: I64
    gpus: I64

    def equals(self, other: TopColumns) -> bool:
        """Whether both hold the same jobs' results, every float bit for bit."""
        arrays = ("feasible", "counts", "rows", "tie", "gpu_counts", "gpus")
        floats = ("score", "values")
        return (
            self.terms == other.terms
            and all(np.array_equal(getattr(self, a), getattr(other, a)) for a in arrays)
            and all(_same_bits(getattr(self, a), getattr(other, a)) for a in floats)
        )


def _same_bits(a: F64, b: F64) -> bool:
    return a.shape == b.shape and np.array_equal(a.view(np.uint64), b.view(np.uint64))


@attrs.frozen(eq=False)
class TopRows:
    """Some jobs' best rows, a job's rows consecutive and best first: per row its job (an
    index into the batch) and :class:`TopColumns`' row fields, and per row the number of its
    ``values`` (its job's terms)."""

    job: I64
    rows: I64
    score: F64
    tie: U64
    n_values: I64
    values: F64
    gpu_counts: I64
    gpus: I64


def rows_of(jobs: Sequence[int], rankings: Sequence[Ranking]) -> TopRows:
    """The :class:`TopRows` of the rankings of the jobs ``jobs`` (from their objects)."""
    nodes = [(j, n) for j, r in zip(jobs, rankings, strict=True) for n in r.top]
    return TopRows(
        job=np.array([j for j, _ in nodes], dtype=np.int64),
        rows=np.array([n.index for _, n in nodes], dtype=np.int64),
        score=np.array([n.score for _, n in nodes], dtype=np.float64),
        tie=np.array([n.tie_key for _, n in nodes], dtype=np.uint64),
        n_values=np.array([len(n.terms) for _, n in nodes], dtype=np.int64),
        values=np.array([v for _, n in nodes for v in n.terms.values()], dtype=np.float64),
        gpu_counts=np.array([len(n.gpu_indices) for _, n in nodes], dtype=np.int64),
        gpus=np.array([g for _, n in nodes for g in n.gpu_indices], dtype=np.int64),
    )


def _terms_of(r: Ranking) -> tuple[str, ...]:
    names = tuple(r.top[0].terms) if r.top else ()
    if any(tuple(n.terms) != names for n in r.top):
        raise AssertionError("a job's ranked nodes differ in their score terms")  # pragma: no cover
    return names


def top_columns(rankings: Sequence[Ranking]) -> TopColumns:
    """The :class:`TopColumns` of ``rankings`` (their ``feasible`` and ``top``)."""
    return assemble(
        [rows_of(range(len(rankings)), rankings)],
        np.array([r.feasible for r in rankings], dtype=np.int64),
        [_terms_of(r) for r in rankings],
    )


def assemble(
    pieces: Sequence[TopRows], feasible: I64, terms: Sequence[tuple[str, ...]]
) -> TopColumns:
    """The :class:`TopColumns` of a batch from pieces holding each job's rows (a job's rows in
    one piece; ``terms``: per job its term names, kept only for a job with rows)."""
    job = np.concatenate([p.job for p in pieces]) if pieces else np.zeros(0, dtype=np.int64)
    order = np.argsort(job, kind="stable")  # a job's rows stay best first

    def cat(name: str, dtype: type) -> npt.NDArray[Any]:
        return (
            np.concatenate([getattr(p, name) for p in pieces])
            if pieces
            else np.zeros(0, dtype=dtype)
        )

    n_values, gpu_counts = cat("n_values", np.int64), cat("gpu_counts", np.int64)
    counts = np.bincount(job, minlength=len(feasible)).astype(np.int64)
    return TopColumns(
        feasible=feasible.astype(np.int64, copy=False),
        counts=counts,
        terms=tuple(t if c else () for t, c in zip(terms, counts.tolist(), strict=True)),
        rows=cat("rows", np.int64)[order],
        score=cat("score", np.float64)[order],
        tie=cat("tie", np.uint64)[order],
        values=cat("values", np.float64)[csr_take(_offsets(n_values), order)[2]],
        gpu_counts=gpu_counts[order],
        gpus=cat("gpus", np.int64)[csr_take(_offsets(gpu_counts), order)[2]],
    )
