"""nodeselect: decide where a compute job should run on a decentralized GPU network.

Fetch candidate nodes from ``GET /v1/nodes``, hold them as numpy columns, rank them for a job
with hard constraints (masks) and weighted soft preferences (scores), explain every rejection,
and place batches of jobs without double-booking a node.
"""

from __future__ import annotations

from nodeselect._exceptions import (
    APIError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    DocumentError,
    GPUNameError,
    IncompleteFetchError,
    InputError,
    InvalidResponseError,
    JobSpecError,
    NodeSelectError,
    NotFoundError,
    PermissionDeniedError,
    QueryError,
    RateLimitError,
    RetriesExhaustedError,
    ServerError,
    SnapshotError,
    TransportError,
)
from nodeselect._facts import ProvedFacts
from nodeselect._job import (
    CpuReq,
    DiskReq,
    GangReq,
    GpuReq,
    Job,
    MemoryReq,
    PlacementReq,
    Preferences,
    SoftwareReq,
)

__all__ = [
    "APIError",
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "CpuReq",
    "DiskReq",
    "DocumentError",
    "GPUNameError",
    "GangReq",
    "GpuReq",
    "IncompleteFetchError",
    "InputError",
    "InvalidResponseError",
    "Job",
    "JobSpecError",
    "MemoryReq",
    "NodeSelectError",
    "NotFoundError",
    "PermissionDeniedError",
    "PlacementReq",
    "Preferences",
    "ProvedFacts",
    "QueryError",
    "RateLimitError",
    "RetriesExhaustedError",
    "ServerError",
    "SnapshotError",
    "SoftwareReq",
    "TransportError",
]
