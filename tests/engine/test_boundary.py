"""Wrong argument types fail at the public boundary (issue 12 item 5), with a TypeError that
says what was expected and what to do, before any private module sees them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from nodeselect.engine._explain import explain_node
from nodeselect.engine._rank import rank
from nodeselect.engine.batch._rank_many import rank_many
from nodeselect.jobs import GpuReq, Job
from nodeselect.placement._placer import place
from nodeselect.table._table import NodeTable
from reference_placement import NOW, TinyGpu, TinyNode

NODE = TinyNode("00000000-0000-0000-0000-0000000000c1", (TinyGpu("T4", 16),), 8, 32, 100, "o", "DE")
JOB = Job(name="j", gpu=GpuReq(count=1))


class FakeFetchResult:
    """What a FetchResult looks like to the boundary: something with .nodes."""

    def __init__(self) -> None:
        self.nodes = [NODE.node()]


@pytest.fixture(scope="module")
def table() -> NodeTable:
    return NodeTable.from_nodes([NODE.node()], now=NOW)


@pytest.mark.parametrize(
    ("bad", "hint"),
    [
        ("job.toml", r"expected a Job, got str 'job\.toml'; load a file with nodeselect\.load_job"),
        (Path("job.toml"), r"load a file with nodeselect\.load_job\(path\)"),
        ({"gpu": {"count": 1}}, r"job_from_dict"),
        (None, r"expected a Job, got NoneType"),
    ],
)
def test_a_non_job_is_a_type_error_saying_how_to_get_one(
    table: NodeTable, bad: object, hint: str
) -> None:
    """rank, rank_many, explain_node and place refuse a non-Job with the way to load one."""
    with pytest.raises(TypeError, match=hint):
        rank(bad, table, now=NOW)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"rank_many: jobs\[1\]: expected a Job"):
        rank_many([JOB, bad], table, now=NOW)  # type: ignore[list-item]
    with pytest.raises(TypeError, match=hint):
        explain_node(bad, table, 0, now=NOW)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"place: jobs\[0\]: expected a Job"):
        place([bad], table, now=NOW)  # type: ignore[list-item]


def test_a_fetch_result_instead_of_a_table_names_from_fetch(table: NodeTable) -> None:
    """Passing a FetchResult (or its nodes) where a table goes says how to build the table."""
    for fn in (
        lambda t: rank(JOB, t, now=NOW),
        lambda t: rank_many([JOB], t, now=NOW),
        lambda t: explain_node(JOB, t, 0, now=NOW),
        lambda t: place([JOB], t, now=NOW),
    ):
        with pytest.raises(TypeError, match=r"expected a NodeTable.*NodeTable\.from_fetch"):
            fn(FakeFetchResult())
        with pytest.raises(TypeError, match=r"NodeTable\.from_nodes\(nodes\)"):
            fn([NODE.node()])
    fetched = FakeFetchResult()
    assert len(NodeTable.from_fetch(fetched, now=NOW)) == 1


@pytest.mark.parametrize(
    ("now", "got"),
    [(1.7e9, "float"), (datetime(2026, 1, 1), "naive datetime"), ("2026-01-01", "str")],
)
def test_now_must_be_an_aware_datetime(table: NodeTable, now: object, got: str) -> None:
    """A float (time.time()), a naive datetime or a string as now is a TypeError."""
    with pytest.raises(TypeError, match=rf"now must be a timezone-aware datetime, got .*{got}"):
        rank(JOB, table, now=now)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="timezone-aware"):
        rank_many([JOB], table, now=now)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="timezone-aware"):
        NodeTable.from_nodes([NODE.node()], now=now)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="timezone-aware"):
        place([JOB], table, now=now)  # type: ignore[arg-type]


def test_from_nodes_of_a_fetch_result_says_to_use_its_nodes() -> None:
    """from_nodes(fetch_result) points at .nodes / from_fetch; raw dicts at the decoder."""
    with pytest.raises(TypeError, match=r"pass its \.nodes, or use NodeTable\.from_fetch"):
        NodeTable.from_nodes(FakeFetchResult())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got a sequence of dict"):
        NodeTable.from_nodes([{"uuid": "x"}])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="expected a FetchResult"):
        NodeTable.from_fetch([NODE.node()])


def test_k_must_be_an_int(table: NodeTable) -> None:
    """k=2.5 or k='3' is a TypeError; right types still rank."""
    with pytest.raises(TypeError, match="k must be an int"):
        rank(JOB, table, k=2.5, now=NOW)  # type: ignore[arg-type]
    assert rank(JOB, table, k=1, now=NOW).feasible == 1
