"""``lut_take`` (equalities for few accepted or refused codes) is ``lut[codes]``."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect.engine.constraints import lut_take


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.booleans(), min_size=1, max_size=300),
    st.sampled_from([np.uint8, np.uint16, np.int64]),
    st.lists(st.integers(0, 299), max_size=50),
)
def test_lut_take_is_the_gather(lut, dtype, picks) -> None:
    """Any look-up (all False, all True, few of either, many of both), any code dtype."""
    table = np.array(lut, dtype=np.bool_)
    top = min(len(table) - 1, int(np.iinfo(dtype).max))
    codes = np.array([p % (top + 1) for p in picks], dtype=dtype)
    got = lut_take(table, codes)
    assert got.dtype == np.bool_
    assert got.tolist() == [bool(table[c]) for c in codes.tolist()]
