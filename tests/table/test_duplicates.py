"""Duplicate uuids (issue 12): a table holds each node once, so no plan can double-book one."""

from __future__ import annotations

import msgspec
import pytest

from nodeselect import InputError
from nodeselect.placement._placer import place
from nodeselect.table import _build
from nodeselect.table._table import NodeTable, unique_nodes
from reference_placement import NOW, FleetNode, TinyGpu, TinyNode, check_plan, tiny_job

A = TinyNode(
    "00000000-0000-0000-0000-0000000000a1", (TinyGpu("T4", 16),) * 8, 32, 128, 900, "op-1", "DE"
)
B = TinyNode(
    "00000000-0000-0000-0000-0000000000b2", (TinyGpu("T4", 16),) * 2, 16, 64, 500, "op-2", "DE"
)


def _seen(node: FleetNode, when: str | None, name: str) -> FleetNode:
    lean = msgspec.structs.replace(node.lean, last_seen_at=when, name=name)
    return FleetNode(lean=lean, facts=node.facts)


def test_a_repeated_uuid_is_refused_with_its_name() -> None:
    """from_nodes on two copies of one node raises an InputError naming the uuid and the fix."""
    nodes = [A.node(), B.node(), A.node()]
    with pytest.raises(InputError, match=r"00000000-0000-0000-0000-0000000000a1 \(x2\)") as exc:
        NodeTable.from_nodes(nodes, now=NOW)
    assert "duplicates='newest'" in str(exc.value)
    assert "b2" not in str(exc.value)


def test_newest_keeps_the_latest_last_seen_at_in_first_position() -> None:
    """duplicates='newest' keeps the copy seen last, where the uuid first appeared."""
    old = _seen(A.node(), "2026-11-01T11:00:00Z", "old")
    new = _seen(A.node(), "2026-11-01T11:59:00Z", "new")
    none = _seen(A.node(), None, "unknown")
    nodes = [none, B.node(), new, old]
    kept = unique_nodes(nodes, "newest")
    assert [n.lean.name for n in kept] == ["new", B.node().lean.name]
    table = NodeTable.from_nodes(nodes, now=NOW, duplicates="newest")
    assert len(table) == 2
    assert table.name_of(0) == "new"
    assert unique_nodes(nodes[1:3]) == nodes[1:3]


@pytest.mark.parametrize("reader", ["c", "python"])
def test_a_repeat_in_a_later_chunk_is_found_while_reading(
    reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The uuids are checked as the chunks are read: a copy CHUNK + 5 nodes after the first is
    refused by name, and 'newest' builds the table of unique_nodes' list (each reader)."""
    if reader == "c" and _build._cbuild is None:
        pytest.skip("the C reader is not built")
    if reader == "python":
        monkeypatch.setattr(_build, "_cbuild", None)
    other = [
        FleetNode(
            lean=msgspec.structs.replace(B.node().lean, uuid=f"00000000-0000-0000-0000-{i:012d}"),
            facts=B.node().facts,
        )
        for i in range(_build.CHUNK + 4)
    ]
    old = _seen(A.node(), "2026-11-01T11:00:00Z", "old")
    new = _seen(A.node(), "2026-11-01T11:59:00Z", "new")
    nodes = [old, *other, new]
    with pytest.raises(InputError, match=r"0000000000a1 \(x2\)"):
        NodeTable.from_nodes(nodes, now=NOW)
    table = NodeTable.from_nodes(nodes, now=NOW, duplicates="newest")
    want = NodeTable.from_nodes(unique_nodes(nodes, "newest"), now=NOW)
    assert len(table) == len(nodes) - 1
    assert table.name_of(0) == "new"
    assert table.uuid.tolist() == want.uuid.tolist()
    assert table.name_code.tolist() == want.name_code.tolist()


def test_an_unknown_duplicates_mode_is_an_input_error() -> None:
    """Only 'error' and 'newest' are accepted."""
    with pytest.raises(InputError, match="'error' or 'newest'"):
        NodeTable.from_nodes([A.node()], now=NOW, duplicates="last")  # type: ignore[arg-type]


def test_no_plan_double_books_a_node_given_twice() -> None:
    """Placing on duplicated nodes either fails up front or books each GPU once."""
    jobs = tuple(tiny_job(f"j{i}", gpus=4) for i in range(4))
    nodes = [A.node(), A.node(), B.node()]
    with pytest.raises(InputError):
        NodeTable.from_nodes(nodes, now=NOW)
    kept = list(unique_nodes(nodes, "newest"))
    plan = place(jobs, NodeTable.from_nodes(kept, now=NOW), nodes=kept, now=NOW)
    assert plan.totals.gpus_used == 8
    assert len(plan.unplaced) == 2
    assert check_plan((A, B), jobs, plan) == []
