"""Choosing the nodes of one job from its ranked candidates: replica count and gang rules.

Pure functions over plain arrays, so they are testable without a table or an engine. The
candidates come best first in the engine's total order (score desc, then its seeded tie key);
every choice here keeps that order as the last tie-break, so the result is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np
import numpy.typing as npt

from nodeselect.jobs import GangReq

__all__ = ["UNKNOWN", "Candidate", "GangChoice", "select_nodes"]

#: Code meaning "not known" in the operator and scope code arrays.
UNKNOWN = -1


@attrs.frozen
class Candidate:
    """A node that admits one replica, against the capacity left at the job's turn.

    Attributes:
        index: the node's row in the full table.
        score: the engine's score in [0, 1].
        gpu_indices: the GPUs (positions in the node's ``gpus[]``) a replica would take.
    """

    index: int
    score: float
    gpu_indices: tuple[int, ...]


@attrs.frozen
class GangChoice:
    """The outcome of :func:`select_nodes`.

    Attributes:
        chosen: the chosen candidates, best first (empty when no valid set exists).
        reason: why nothing was chosen (empty when something was).
    """

    chosen: tuple[Candidate, ...]
    reason: str = ""


def _pick(
    cands: Sequence[Candidate],
    k: int,
    rule: GangReq,
    operator_of: npt.NDArray[np.int64],
) -> tuple[Candidate, ...] | None:
    """Up to the best ``k`` candidates obeying the distinct/operators rules, or None."""
    if rule.distinct == "operator":
        seen: set[int] = set()
        out: list[Candidate] = []
        for c in cands:
            op = int(operator_of[c.index])
            if op == UNKNOWN or op in seen:  # an unknown operator cannot be proved distinct
                continue
            seen.add(op)
            out.append(c)
            if len(out) == k:
                return tuple(out)
        return None
    if len(cands) < k:
        return None
    if rule.operators == "pack" and k > 1:
        groups: dict[int, list[Candidate]] = {}
        singles: list[list[Candidate]] = []
        for c in cands:
            op = int(operator_of[c.index])
            if op == UNKNOWN:  # an unknown operator counts as an operator of its own
                singles.append([c])
            else:
                groups.setdefault(op, []).append(c)
        ordered = list(groups.values()) + singles
        # Fewest operators: biggest groups first (greedy by size is optimal for the count);
        # then the group with the better best node; the sort is stable on first appearance.
        ordered.sort(key=lambda g: (-len(g), -g[0].score))
        out = []
        for g in ordered:
            out.extend(g[: k - len(out)])
            if len(out) == k:
                break
        position = {c.index: i for i, c in enumerate(cands)}
        return tuple(sorted(out, key=lambda c: position[c.index]))
    return tuple(cands[:k])


def select_nodes(
    cands: Sequence[Candidate],
    k: int,
    rule: GangReq,
    *,
    operator_of: npt.NDArray[np.int64],
    scope_of: npt.NDArray[np.int64] | None,
    scope_name: Sequence[str] = (),
) -> GangChoice:
    """Choose ``k`` candidates (one per replica) obeying ``rule``, or explain why not.

    ``operator_of`` / ``scope_of`` map a table row to a small int code (``-1`` = unknown);
    ``scope_of`` is ``None`` when the rule has no ``same`` scope. With a scope, every scope
    value is tried and the one whose chosen nodes have the highest total score wins (ties: the
    scope whose best node ranks first). Nodes of an unknown scope never join a scoped gang.
    """
    if k <= 0:
        return GangChoice(chosen=())
    if scope_of is None or rule.same is None:
        got = _pick(cands, k, rule, operator_of)
        if got is not None:
            return GangChoice(chosen=got)
        return GangChoice(chosen=(), reason=_shortfall(cands, k, rule, operator_of))
    groups: dict[int, list[Candidate]] = {}
    for c in cands:
        code = int(scope_of[c.index])
        if code != UNKNOWN:
            groups.setdefault(code, []).append(c)
    best: tuple[Candidate, ...] | None = None
    best_total = -1.0
    biggest = 0
    for members in groups.values():  # insertion order: by each scope's best node
        biggest = max(biggest, _capacity(members, rule, operator_of))
        got = _pick(members, k, rule, operator_of)
        if got is None:
            continue
        total = sum(c.score for c in got)
        if total > best_total:
            best, best_total = got, total
    if best is not None:
        return GangChoice(chosen=best)
    if not groups:
        return GangChoice(
            chosen=(),
            reason=(
                f"gang of {k} needs one {rule.same}: none of the {len(cands)} nodes that fit a "
                f"replica has a proved {rule.same} (list placement.{_plural(rule.same)} so the "
                "fetch proves it)"
            ),
        )
    unit = "operators" if rule.distinct == "operator" else "nodes"
    return GangChoice(
        chosen=(),
        reason=(
            f"gang of {k} needs one {rule.same}: {len(cands)} nodes fit a replica, but the best "
            f"{rule.same} offers only {biggest} usable {unit}"
        ),
    )


def _plural(scope: str) -> str:
    return {"continent": "continents", "country": "countries", "subdivision": "subdivisions"}[scope]


def _capacity(cands: Sequence[Candidate], rule: GangReq, operator_of: npt.NDArray[np.int64]) -> int:
    """How many replicas the candidates could hold under the distinct rule."""
    if rule.distinct == "operator":
        return len({int(operator_of[c.index]) for c in cands} - {UNKNOWN})
    return len(cands)


def _shortfall(
    cands: Sequence[Candidate], k: int, rule: GangReq, operator_of: npt.NDArray[np.int64]
) -> str:
    """Why fewer than ``k`` replicas fit without a scope rule."""
    if rule.distinct == "operator":
        ops = _capacity(cands, rule, operator_of)
        return (
            f"gang of {k} needs {k} distinct operators: {len(cands)} nodes fit a replica, "
            f"run by {ops} known operators"
        )
    return f"gang of {k} needs {k} nodes: only {len(cands)} fit a replica"
