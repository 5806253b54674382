"""Fixtures of the table tests: the table builder's two readers (the optional C extension and
the pure-Python loop), so the build's property tests check both."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nodeselect.table import _build

#: The C reader as imported (``None`` when the extension was not built).
C_READER = _build._cbuild


@pytest.fixture(scope="module", params=["c", "python"])
def table_reader(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the module's tests once with each reader (the C one skipped when not built)."""
    if request.param == "c" and C_READER is None:
        pytest.skip("the C reader (nodeselect.table._cbuild) is not built")
    saved = _build._cbuild
    _build._cbuild = C_READER if request.param == "c" else None
    try:
        yield request.param
    finally:
        _build._cbuild = saved
