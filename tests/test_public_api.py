"""The public surface: one sorted list, every name importable, one exception root."""

from __future__ import annotations

import nodeselect


def test_all_is_sorted_and_unique() -> None:
    """__all__ lists each public name once, sorted, so additions are reviewed in one place."""
    assert list(nodeselect.__all__) == sorted(set(nodeselect.__all__))


def test_every_public_name_is_importable() -> None:
    """Every name in __all__ resolves on the package."""
    for name in nodeselect.__all__:
        assert hasattr(nodeselect, name), name


def test_every_exception_derives_from_the_root() -> None:
    """Every exception class we export is a NodeSelectError."""
    for name in nodeselect.__all__:
        obj = getattr(nodeselect, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, nodeselect.NodeSelectError), name
