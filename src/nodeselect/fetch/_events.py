"""What a fetch tells its caller while it runs: progress, and nodes as pages arrive."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs

from nodeselect.fetch._result import FetchedNode

__all__ = ["FetchProgress", "NodesHook", "ProgressHook"]


@attrs.frozen
class FetchProgress:
    """The state of a fetch after one more page arrived (``on_progress`` gets one per page).

    Attributes:
        pages_done: page requests answered so far (counts included).
        pages_known: page requests issued so far; it grows as the plan learns the totals
            (the probe first, then the first pass, then any repair rounds).
        retries: requests retried so far (every cause).
        repairs: repair requests issued so far (0 on the fast path).
        nodes: distinct nodes streamed so far (``on_nodes``).
    """

    pages_done: int
    pages_known: int
    retries: int
    repairs: int
    nodes: int


#: Called in the caller's thread once per page answered.
ProgressHook = Callable[[FetchProgress], None]
#: Called in the caller's thread with the nodes a page proved to match, each node once per
#: fetch, as pages arrive (before the fetch is over).
NodesHook = Callable[[Sequence[FetchedNode]], None]
