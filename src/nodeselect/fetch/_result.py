"""What a fetch hands back: the nodes, the nodes that did not parse, and honest statistics."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import msgspec

from nodeselect.documents import LeanNode, Node, ProvedFacts, parse_node
from nodeselect.errors import DocumentError, IncompleteFetchError

if TYPE_CHECKING:
    from nodeselect.fetch._query import NodeQuery

__all__ = [
    "FetchResult",
    "FetchStats",
    "FetchedNode",
    "LeanFetchedNode",
    "NodeCount",
    "Rejected",
    "RejectedDocument",
]


class NodeCount(int):
    """A number of matching nodes (an ``int``), and whether it is exact.

    ``exact`` is false when the query asks for several compliance tags: the API counts one tag
    at a time, so the count is the smallest of those, an upper bound of their intersection.
    """

    exact: bool

    def __new__(cls, value: int, *, exact: bool = True) -> NodeCount:
        """A count of ``value`` nodes; ``exact=False`` for an upper bound."""
        self = super().__new__(cls, value)
        self.exact = exact
        return self

    def __repr__(self) -> str:
        return f"NodeCount({int(self)}, exact={self.exact})"


@attrs.frozen(slots=True, repr=False)
class FetchedNode:
    """One node as fetched: its lean typed view, its document as received, its proved facts.

    Attributes:
        uuid: the node's uuid.
        lean: the fields the node table, engine and placement read (validated on decode).
        raw: the node's JSON document exactly as the server sent it.
        facts: what the server-side filters that returned it proved (status, tags, geography).

    The lean fast path validates only the lean fields; :meth:`document` parses and validates
    every field of the full model.
    """

    uuid: str
    lean: LeanNode
    raw: bytes
    facts: ProvedFacts

    def __repr__(self) -> str:  # the document holds personal data: never echo it
        return f"FetchedNode(uuid={self.uuid!r}, facts={self.facts!r})"

    def document(self) -> Node:
        """The full, validated node model (``nodeselect.documents.parse_node``).

        Raises:
            DocumentError: when a field outside the lean view is invalid.
        """
        return parse_node(json.loads(self.raw))

    def to_json(self) -> dict[str, Any]:
        """The snapshot / ``--format jsonl`` line: ``{"document": ..., "nodeselect": facts}``."""
        return {"document": json.loads(self.raw), "nodeselect": self.facts.to_json()}


class LeanFetchedNode(msgspec.Struct, frozen=True, gc=False):
    """A node as a node table reads it: its lean view and proved facts, without its document
    (a :class:`FetchedNode` without ``raw``; what :meth:`SnapshotNodes.lean_chunks` gives).

    Attributes:
        lean: the fields the node table, engine and placement read (validated on decode).
        facts: what the server-side filters that returned it proved.
    """

    lean: LeanNode = msgspec.field(name="document")
    facts: ProvedFacts = msgspec.field(name="nodeselect")

    @property
    def uuid(self) -> str:
        """The node's uuid."""
        return self.lean.uuid

    def __repr__(self) -> str:  # the lean view holds personal data: never echo it
        return f"LeanFetchedNode(uuid={self.uuid!r}, facts={self.facts!r})"


class Rejected(Protocol):
    """A node that failed to parse (``nodeselect.documents.RejectedNode`` has this shape)."""

    @property
    def index(self) -> int: ...
    @property
    def uuid(self) -> str | None: ...
    @property
    def error(self) -> DocumentError: ...


@attrs.frozen
class RejectedDocument:
    """A node document that failed to parse.

    Attributes:
        index: its position in its page's ``data``.
        uuid: its uuid, when that much could be read.
        error: the fault with its JSON path, e.g. ``data[3].gpus[0].vram_gb_max``.
    """

    index: int
    uuid: str | None
    error: DocumentError


@attrs.frozen
class FetchStats:
    """How a fetch went.

    Attributes:
        server_queries: single-valued List Nodes queries the NodeQuery expanded into.
        pages: page responses decoded successfully (including repair pages).
        pages_expected: pages the first pass needed according to the first ``total`` seen.
        requests: HTTP requests sent, retries included.
        retries: retries by cause (``"http_503"``, ``"dropped"``, ``"truncated"``, ...).
        bytes: response body bytes received (successful pages).
        elapsed_s: wall-clock seconds of the whole fetch.
        http_s / decode_s: seconds spent in HTTP and in decoding, summed over workers.
        totals_seen: the smallest and largest ``total`` any first-pass page reported.
        repair_requests: requests of the keyset repair scan (0 when none was needed).
        complete: every node that matched for the whole fetch was returned (proved).
        consistent: the first pass saw one unchanging, stably ordered result (no repair).
        drift: the matching set changed during the fetch (``total`` changed or pages shifted).
        order_unstable: pages overlapped while ``total`` held still: the server's order among
            equal ``created_at`` values is not stable.
        issues: one sentence per problem found, for humans.
    """

    server_queries: int = 0
    pages: int = 0
    pages_expected: int = 0
    requests: int = 0
    retries: dict[str, int] = attrs.Factory(dict)
    bytes: int = 0
    elapsed_s: float = 0.0
    http_s: float = 0.0
    decode_s: float = 0.0
    totals_seen: tuple[int, int] = (0, 0)
    repair_requests: int = 0
    complete: bool = True
    consistent: bool = True
    drift: bool = False
    order_unstable: bool = False
    issues: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        out = attrs.asdict(self)
        out["totals_seen"] = list(self.totals_seen)
        out["issues"] = list(self.issues)
        return out


@attrs.frozen(repr=False)
class FetchResult:
    """Every matching node exactly once, or a clear statement that it is not.

    Attributes:
        nodes: the fetched nodes, deduplicated by uuid (feed them to ``NodeTable.from_nodes``).
        rejected: nodes that failed to parse, each with the JSON path of its fault.
        stats: counts, timings and the completeness verdict.
        query: the query that was fetched.
        fetched_at: when the fetch started (UTC).
        source: where the nodes came from (a URL, a snapshot path, or the simulated demo).
    """

    nodes: tuple[FetchedNode, ...]
    rejected: tuple[Rejected, ...]
    stats: FetchStats
    query: NodeQuery
    fetched_at: datetime
    source: str

    def __repr__(self) -> str:
        return (
            f"FetchResult(nodes={len(self.nodes)}, rejected={len(self.rejected)}, "
            f"complete={self.complete}, consistent={self.consistent}, source={self.source!r})"
        )

    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def complete(self) -> bool:
        """Every node that matched for the whole fetch is in :attr:`nodes` (proved)."""
        return self.stats.complete

    @property
    def consistent(self) -> bool:
        """The first pass needed no repair: no drift, stable order."""
        return self.stats.consistent

    @property
    def ok(self) -> bool:
        """Complete and consistent: the fetch can be trusted without reading :attr:`stats`."""
        return self.stats.complete and self.stats.consistent

    def raise_if_incomplete(self) -> FetchResult:
        """Return ``self``, or raise :class:`IncompleteFetchError` naming the issues."""
        if not self.stats.complete:
            raise IncompleteFetchError(
                "the fetch could not prove it got every matching node: "
                + "; ".join(self.stats.issues or ("unknown reason",))
            )
        return self
