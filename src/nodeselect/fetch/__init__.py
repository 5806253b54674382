"""Fetching ``GET /v1/nodes``: queries planned into documented server requests, the sans-I/O
paging and proof of completeness, page decoding, retries, the sync and async clients, fetch
results, snapshots, and count probes that explain server-side rejections.
"""

from __future__ import annotations

from nodeselect.fetch._client import (
    API_KEY_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_REQUEST_TIMEOUT,
    ENDPOINT,
    AsyncClient,
    Client,
    fetch_nodes,
)
from nodeselect.fetch._decode import (
    DecodedPage,
    Validate,
    decode_body,
)
from nodeselect.fetch._events import FetchProgress, NodesHook, ProgressHook
from nodeselect.fetch._paging import (
    DEFAULT_MAX_PAGES,
    DEFAULT_REPAIR_BUDGET,
    Pager,
    PageRequest,
    Progress,
)
from nodeselect.fetch._pushdown import (
    PUSHDOWN_FILTERS,
    Counter,
    PushdownMiss,
    PushdownReport,
    explain_pushdown,
)
from nodeselect.fetch._query import (
    MAX_SERVER_QUERIES,
    OPEN_END,
    OPEN_START,
    NodeQuery,
    ServerQuery,
    TimeBound,
    TimeRange,
    expand_query,
    format_bound,
    parse_time_range,
    range_param,
)
from nodeselect.fetch._result import (
    FetchedNode,
    FetchResult,
    FetchStats,
    LeanFetchedNode,
    NodeCount,
    Rejected,
    RejectedDocument,
)
from nodeselect.fetch._retry import (
    RETRYABLE_STATUSES,
    RetryPolicy,
    parse_retry_after,
    retry_cause,
)
from nodeselect.fetch._sharded import fetch_sharded
from nodeselect.fetch._snapshot import (
    MANIFEST_NAME,
    SNAPSHOT_VERSION,
    ShardInfo,
    SnapshotManifest,
    load_snapshot,
    node_line,
    read_manifest,
    save_sharded_nodes,
    save_sharded_snapshot,
    save_snapshot,
    save_snapshot_nodes,
    snapshot_fetched_at,
)
from nodeselect.fetch._snapshot_nodes import SnapshotNodes

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_PAGES",
    "DEFAULT_REPAIR_BUDGET",
    "DEFAULT_REQUEST_TIMEOUT",
    "ENDPOINT",
    "MANIFEST_NAME",
    "MAX_SERVER_QUERIES",
    "OPEN_END",
    "OPEN_START",
    "PUSHDOWN_FILTERS",
    "RETRYABLE_STATUSES",
    "SNAPSHOT_VERSION",
    "AsyncClient",
    "Client",
    "Counter",
    "DecodedPage",
    "FetchProgress",
    "FetchResult",
    "FetchStats",
    "FetchedNode",
    "LeanFetchedNode",
    "NodeCount",
    "NodeQuery",
    "NodesHook",
    "PageRequest",
    "Pager",
    "Progress",
    "ProgressHook",
    "PushdownMiss",
    "PushdownReport",
    "Rejected",
    "RejectedDocument",
    "RetryPolicy",
    "ServerQuery",
    "ShardInfo",
    "SnapshotManifest",
    "SnapshotNodes",
    "TimeBound",
    "TimeRange",
    "Validate",
    "decode_body",
    "expand_query",
    "explain_pushdown",
    "fetch_nodes",
    "fetch_sharded",
    "format_bound",
    "load_snapshot",
    "node_line",
    "parse_retry_after",
    "parse_time_range",
    "range_param",
    "read_manifest",
    "retry_cause",
    "save_sharded_nodes",
    "save_sharded_snapshot",
    "save_snapshot",
    "save_snapshot_nodes",
    "snapshot_fetched_at",
]
