"""Plain-Python references of the table's derived columns (``nodeselect.table._derived``),
written straight from their definitions: no vectorization, no sorting tricks."""

from __future__ import annotations

import math
from collections.abc import Sequence

#: The level edges, from their definition: quarter-GB steps to 32 GB, then 1 GB steps to 159.
EDGES = [k / 4 for k in range(1, 129)] + [float(g) for g in range(33, 160)]


def level(v: float) -> int:
    """How many edges are <= ``v`` (NaN -> 0)."""
    if math.isnan(v):
        return 0
    return sum(1 for e in EDGES if e <= v)


def free_top(
    offsets: Sequence[int], free: Sequence[float], tele: Sequence[float], top: int
) -> list[list[int]]:
    """Per node, the levels of its ``top`` largest ``max(free, tele)`` (NaN ignored), descending,
    padded with 0."""
    out = []
    for i in range(len(offsets) - 1):
        levels = []
        for g in range(offsets[i], offsets[i + 1]):
            known = [x for x in (free[g], tele[g]) if not math.isnan(x)]
            levels.append(level(max(known)) if known else 0)
        out.append((sorted(levels, reverse=True) + [0] * top)[:top])
    return out


def model_keys(offsets: Sequence[int], codes: Sequence[int]) -> tuple[list[int], list[int]]:
    """Per node its model key (0 none, 1.. its single model's position in the vocabulary of
    the first 253 distinct codes ascending, vocabulary size + 1 mixed or unknown), and the
    vocabulary."""
    vocab = sorted(set(codes))[:253]
    mixed = len(vocab) + 1
    keys = []
    for i in range(len(offsets) - 1):
        mine = set(codes[offsets[i] : offsets[i + 1]])
        if not mine:
            keys.append(0)
        elif len(mine) == 1 and next(iter(mine)) in vocab:
            keys.append(vocab.index(next(iter(mine))) + 1)
        else:
            keys.append(mixed)
    return keys, vocab
