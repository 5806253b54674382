"""nodeselect: decide where a compute job should run on a decentralized GPU network.

Fetch candidate nodes from ``GET /v1/nodes``, hold them as numpy columns, rank them for a job
with hard constraints (masks) and weighted soft preferences (scores), explain every rejection,
and place batches of jobs without double-booking a node.

This namespace holds what a pipeline needs (fetch, job, table, rank, place, errors). The layers
behind it are public packages of their own (docs/architecture.md):

* :mod:`nodeselect.documents`: the wire format (full node model, lean structs, timestamps);
* :mod:`nodeselect.jobs`: the job model and loaders;
* :mod:`nodeselect.fetch`: queries, paging, clients, results, snapshots;
* :mod:`nodeselect.table`: the node table;
* :mod:`nodeselect.engine`: compiled jobs, feasibility, scores, ranking, explanations;
* :mod:`nodeselect.placement`: plans for batches and gangs;
* :mod:`nodeselect.pipeline`: helpers that cross layers;
* :mod:`nodeselect.gpus` (the GPU registry), :mod:`nodeselect.errors`, :mod:`nodeselect.sim`.

Names that lived here before the layers existed (the document model, the GPU registry's
functions, requirement sections, ...) still resolve, with a ``DeprecationWarning`` naming
their new home; they go in the next release.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:  # the names, for type checkers; at run time they load on first use
    __version__: str
    from nodeselect.engine import (
        Explanation,
        NearestMiss,
        NodeExplanation,
        RankedNode,
        Ranking,
        TableStats,
        explain_node,
        merge_top,
        rank,
        rank_many,
        table_stats,
    )
    from nodeselect.errors import (
        APIError,
        APIStatusError,
        AuthenticationError,
        BadRequestError,
        DeadlineExceededError,
        DocumentError,
        GPUNameError,
        IncompleteFetchError,
        InputError,
        InvalidResponseError,
        JobGPUNameError,
        JobSpecError,
        NodeSelectError,
        NotFoundError,
        PermissionDeniedError,
        ProtocolViolationError,
        QueryError,
        RateLimitError,
        ResponseTooLargeError,
        RetriesExhaustedError,
        ServerError,
        SnapshotError,
        TransportError,
    )
    from nodeselect.fetch import (
        AsyncClient,
        Client,
        FetchedNode,
        FetchResult,
        FetchStats,
        NodeCount,
        NodeQuery,
        RetryPolicy,
        fetch_nodes,
        load_snapshot,
        save_snapshot,
    )
    from nodeselect.jobs import Job, job_from_dict, job_to_dict, load_job, load_jobs
    from nodeselect.pipeline import fleet_queries, merge_fetched, place_from
    from nodeselect.placement import JobAssignment, Plan, Replica, Unplaced, place
    from nodeselect.table import NodeTable

# The library's logger ("nodeselect", children such as "nodeselect.fetch") says nothing unless
# the application configures logging: retries, back-off waits, drift and repairs (never keys or
# personal data). See docs/reliability.md.
logging.getLogger("nodeselect").addHandler(logging.NullHandler())

__all__ = [
    "APIError",
    "APIStatusError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "DeadlineExceededError",
    "DocumentError",
    "Explanation",
    "FetchResult",
    "FetchStats",
    "FetchedNode",
    "GPUNameError",
    "IncompleteFetchError",
    "InputError",
    "InvalidResponseError",
    "Job",
    "JobAssignment",
    "JobGPUNameError",
    "JobSpecError",
    "NearestMiss",
    "NodeCount",
    "NodeExplanation",
    "NodeQuery",
    "NodeSelectError",
    "NodeTable",
    "NotFoundError",
    "PermissionDeniedError",
    "Plan",
    "ProtocolViolationError",
    "QueryError",
    "RankedNode",
    "Ranking",
    "RateLimitError",
    "Replica",
    "ResponseTooLargeError",
    "RetriesExhaustedError",
    "RetryPolicy",
    "ServerError",
    "SnapshotError",
    "TableStats",
    "TransportError",
    "Unplaced",
    "explain_node",
    "fetch_nodes",
    "fleet_queries",
    "job_from_dict",
    "job_to_dict",
    "load_job",
    "load_jobs",
    "load_snapshot",
    "merge_fetched",
    "merge_top",
    "place",
    "place_from",
    "rank",
    "rank_many",
    "save_snapshot",
    "table_stats",
]

#: Each facade name -> the layer package that defines it (imported on first use).
_FACADE: Final[dict[str, str]] = {
    **dict.fromkeys(
        (
            "Explanation",
            "NearestMiss",
            "NodeExplanation",
            "RankedNode",
            "Ranking",
            "TableStats",
            "explain_node",
            "merge_top",
            "rank",
            "rank_many",
            "table_stats",
        ),
        "nodeselect.engine",
    ),
    **dict.fromkeys(
        (
            "APIError",
            "APIStatusError",
            "AuthenticationError",
            "BadRequestError",
            "DeadlineExceededError",
            "DocumentError",
            "GPUNameError",
            "IncompleteFetchError",
            "InputError",
            "InvalidResponseError",
            "JobGPUNameError",
            "JobSpecError",
            "NodeSelectError",
            "NotFoundError",
            "PermissionDeniedError",
            "ProtocolViolationError",
            "QueryError",
            "RateLimitError",
            "ResponseTooLargeError",
            "RetriesExhaustedError",
            "ServerError",
            "SnapshotError",
            "TransportError",
        ),
        "nodeselect.errors",
    ),
    **dict.fromkeys(
        (
            "AsyncClient",
            "Client",
            "FetchedNode",
            "FetchResult",
            "FetchStats",
            "NodeCount",
            "NodeQuery",
            "RetryPolicy",
            "fetch_nodes",
            "load_snapshot",
            "save_snapshot",
        ),
        "nodeselect.fetch",
    ),
    **dict.fromkeys(
        (
            "Job",
            "job_from_dict",
            "job_to_dict",
            "load_job",
            "load_jobs",
        ),
        "nodeselect.jobs",
    ),
    **dict.fromkeys(
        (
            "fleet_queries",
            "merge_fetched",
            "place_from",
        ),
        "nodeselect.pipeline",
    ),
    **dict.fromkeys(
        (
            "JobAssignment",
            "Plan",
            "Replica",
            "Unplaced",
            "place",
        ),
        "nodeselect.placement",
    ),
    **dict.fromkeys(("NodeTable",), "nodeselect.table"),
}


def _load_facade() -> None:
    """Import every layer behind the facade and bind its names here, once.

    ``import nodeselect`` (and so ``import nodeselect.cli``) stays cheap: numpy, httpx and the
    engine load when a facade name is first used. Reprs, tracebacks and docs then show the
    public path (``nodeselect.Ranking``), as httpx does.
    """
    found = globals()
    for name, home in _FACADE.items():
        obj = getattr(importlib.import_module(home), name)
        if isinstance(obj, type) and obj.__module__.startswith("nodeselect."):
            obj.__module__ = "nodeselect"
        found[name] = obj


#: Names this namespace held before the layers existed -> the public package that holds them.
_MOVED: Final[dict[str, str]] = {
    **dict.fromkeys(
        (
            "ConsumerProfile", "CpuMetrics", "CurrentHardware", "CurrentSoftware", "DockerInfo",
            "DriveMetrics", "GpuDeviceMetrics", "GpuMetrics", "HardwareCpu", "HardwareEvent",
            "HardwareGpu", "HardwareMemory", "HardwareMetadata", "HardwareStorage", "Node",
            "NodeCpu", "NodeGpu", "NodeHardDrive", "NodeRam", "NvidiaDriver", "OperatingSystem",
            "OperatorAccount", "OperatorProfile", "PageResult", "ProvedFacts", "RamMetrics",
            "RejectedNode", "StorageMetrics", "Suspension", "UserProfile", "VramMetrics",
            "ZernetClient", "format_timestamp", "node_to_json", "page_to_json", "parse_node",
            "parse_page", "parse_timestamp",
        ),
        "nodeselect.documents",
    ),
    **dict.fromkeys(
        (
            "CpuReq", "DiskReq", "GangReq", "GpuReq", "MemoryReq", "PlacementReq",
            "Preferences", "SoftwareReq",
        ),
        "nodeselect.jobs",
    ),
    **dict.fromkeys(
        (
            "GpuModel", "canonical_node_gpu", "gpu_code", "gpu_codes_for_nodes", "gpu_model",
            "resolve_job_models",
        ),
        "nodeselect.gpus",
    ),
    **dict.fromkeys(("ServerQuery", "parse_retry_after"), "nodeselect.fetch"),
    **dict.fromkeys(("PlanTotals", "Problem"), "nodeselect.placement"),
}  # fmt: skip
#: Names that moved and were renamed: old name -> (package, new name).
_RENAMED: Final[dict[str, tuple[str, str]]] = {
    # "plan" now names only placement's Plan and the `plan` command.
    "plan_requests": ("nodeselect.fetch", "expand_query"),
}


def __getattr__(name: str) -> Any:
    """A facade name (loading the layers on first use), or a name that moved to a layer
    package, with a ``DeprecationWarning``."""
    if name in _FACADE:
        _load_facade()
        return globals()[name]
    if name == "__version__":  # package metadata, read only when asked (start-up stays fast)
        from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

        try:
            found = version("nodeselect")
        except PackageNotFoundError:  # running from a source tree, not installed
            found = "0+unknown"
        globals()["__version__"] = found
        return found
    home, new = _RENAMED.get(name, (_MOVED.get(name), name))
    if home is None:
        raise AttributeError(f"module 'nodeselect' has no attribute {name!r}")
    warnings.warn(
        f"nodeselect.{name} has moved to {home}.{new}; the old name is removed in the next release",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(home), new)


def __dir__() -> list[str]:
    return sorted(set(__all__) | set(globals()))
