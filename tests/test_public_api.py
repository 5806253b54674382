"""The public surface: one sorted list, every name importable, one exception root."""

from __future__ import annotations

import pytest

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


def test_the_facade_is_the_curated_pipeline_surface() -> None:
    """The facade holds the pipeline's names and not the document model or internal encodings."""
    names = set(nodeselect.__all__)
    assert {"Client", "NodeQuery", "Job", "load_job", "NodeTable", "rank", "rank_many"} <= names
    assert {"place", "Plan", "explain_node", "NodeSelectError"} <= names
    assert not names & {"Node", "gpu_code", "GpuReq", "parse_node", "ServerQuery"}
    assert len(names) <= 60


def test_reprs_show_public_paths() -> None:
    """Classes on the facade say nodeselect.X, not the private module that defines them."""
    assert repr(nodeselect.Ranking) == "<class 'nodeselect.Ranking'>"
    for name in nodeselect.__all__:
        obj = getattr(nodeselect, name)
        if isinstance(obj, type):
            assert obj.__module__ == "nodeselect", name


def test_moved_names_still_resolve_with_a_deprecation_warning() -> None:
    """Names that moved to a layer package resolve for one release and say where they went."""
    import nodeselect.documents  # noqa: PLC0415
    import nodeselect.fetch  # noqa: PLC0415
    import nodeselect.gpus  # noqa: PLC0415

    moved = r"nodeselect\.Node has moved to nodeselect\.documents"
    with pytest.warns(DeprecationWarning, match=moved):
        assert nodeselect.Node is nodeselect.documents.Node
    with pytest.warns(DeprecationWarning, match="nodeselect.gpus.gpu_code"):
        assert nodeselect.gpu_code is nodeselect.gpus.gpu_code
    with pytest.warns(DeprecationWarning, match="nodeselect.fetch.expand_query"):
        assert nodeselect.plan_requests is nodeselect.fetch.expand_query
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        _ = nodeselect.nonexistent


def test_every_layer_package_lists_importable_public_names() -> None:
    """Each layer package's __all__ lists each name once and every name resolves."""
    import importlib  # noqa: PLC0415

    for pkg in ("documents", "jobs", "fetch", "table", "engine", "placement", "pipeline"):
        mod = importlib.import_module(f"nodeselect.{pkg}")
        assert len(mod.__all__) == len(set(mod.__all__)), pkg
        for name in mod.__all__:
            assert hasattr(mod, name), (pkg, name)


def test_the_fetch_bound_errors_are_on_the_facade() -> None:
    """A caller catches the new fetch errors from ``nodeselect`` like the others: the same
    classes as nodeselect.errors, in their place in the hierarchy."""
    from nodeselect import errors  # noqa: PLC0415

    for name in ("DeadlineExceededError", "ProtocolViolationError", "ResponseTooLargeError"):
        assert name in nodeselect.__all__
        assert getattr(nodeselect, name) is getattr(errors, name)
    assert issubclass(nodeselect.DeadlineExceededError, nodeselect.RetriesExhaustedError)
    assert issubclass(nodeselect.ResponseTooLargeError, nodeselect.ProtocolViolationError)
    assert issubclass(nodeselect.ProtocolViolationError, nodeselect.InvalidResponseError)
