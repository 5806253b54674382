"""``region``: the node's continent, country and subdivision are among the accepted ones
(categorical)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING

import numpy as np

from nodeselect.engine.constraints._base import ALL_ROWS, Check, Luts, NodeConstraint, Rows

if TYPE_CHECKING:
    from nodeselect.engine._constraints import CompiledJob
    from nodeselect.table import NodeTable

from nodeselect.engine.constraints._base import lut_take, vocab_lut

__all__ = ["Region"]


class Region(NodeConstraint):
    """Continent, country and subdivision each in the job's list (when it gives one)."""

    name = "region"
    columns = frozenset({"continent_code", "country_code", "subdivision_code"})
    categorical = True

    def active(self, cj: CompiledJob) -> bool:
        """When the job lists continents, countries or subdivisions."""
        p = cj.job.placement
        return bool(p.continents or p.countries or p.subdivisions)

    def check(
        self, cj: CompiledJob, t: NodeTable, rows: Rows = ALL_ROWS, luts: Luts | None = None
    ) -> Check:
        """Each listed level by a vocabulary look-up (codes upper-cased)."""
        p = cj.job.placement
        ok = np.ones(len(t.uuid[rows]), dtype=np.bool_)
        words = []
        for vals, codes, vocab, what in (
            (p.continents, t.continent_code[rows], t.continent_vocab, "continent"),
            (p.countries, t.country_code[rows], t.country_vocab, "country"),
            (p.subdivisions, t.subdivision_code[rows], t.subdivision_vocab, "subdivision"),
        ):
            if vals:
                ok &= lut_take(vocab_lut(luts, what, vocab, {v.upper() for v in vals}), codes)
                words.append(f"{what} in {', '.join(vals)}")
        return Check(self.name, ok, "; ".join(words))

    def key(self, cj: CompiledJob) -> Hashable:
        """The three lists."""
        p = cj.job.placement
        return (tuple(p.continents), tuple(p.countries), tuple(p.subdivisions))
