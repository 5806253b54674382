"""Numbers out of range are rejections with a path, never an OverflowError in the table."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from nodeselect import NodeTable
from nodeselect.documents import MAX_CORES, MAX_CPUS, MAX_MAGNITUDE, ProvedFacts
from nodeselect.fetch import decode_body


def _node(i: int, **fields: Any) -> dict[str, Any]:
    base = {"uuid": f"u{i}", "created_at": "2024-01-01T00:00:00Z", "name": f"n{i}"}
    return {**base, **fields}


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"cpus": [{"num_cores": 2**31}]}, "cpus[0].num_cores"),
        ({"cpus": [{"num_cores": 2**64}]}, "cpus[0].num_cores"),
        ({"cpus": [{"num_cores": MAX_CORES + 1}]}, "cpus[0].num_cores"),
        ({"cpus": [{"num_cores": -1}]}, "cpus[0].num_cores"),
        ({"cpus": [{"num_cores": 1}] * (MAX_CPUS + 1)}, "cpus"),
        ({"reputation": 10**30}, "reputation"),
        ({"reputation": "1e300"}, "reputation"),
        ({"gpus": [{"name": "A100", "vram_gb_max": 1e300}]}, "gpus[0].vram_gb_max"),
        ({"rams": [{"memory_gb_available": -(2**63) - 5}]}, "rams[0].memory_gb_available"),
        ({"latest_hardware_event": {"timestamp_ms": 2**70}}, "latest_hardware_event.timestamp_ms"),
    ],
)
def test_a_number_out_of_range_rejects_that_node_at_its_path(fields: dict, path: str) -> None:
    """The node is rejected with data[i].<field>; the others are kept and build a table."""
    docs = [_node(0), _node(1, **fields), _node(2)]
    body = msgspec.json.encode({"data": docs, "limit": 50, "page": 1, "total": 3})
    page = decode_body(body, ProvedFacts())
    assert [n.uuid for n in page.nodes] == ["u0", "u2"]
    (rej,) = page.rejected
    assert rej.uuid == "u1"
    assert rej.error.path == f"data[1].{path}"
    NodeTable.from_nodes(page.nodes)


def test_the_largest_allowed_values_build_a_table() -> None:
    """At the bounds (MAX_CPUS entries of MAX_CORES cores, numbers of MAX_MAGNITUDE) the
    table builds without overflow or warning."""
    doc = _node(
        0,
        cpus=[{"num_cores": MAX_CORES}] * MAX_CPUS,
        reputation=MAX_MAGNITUDE,
        gpus=[{"name": "A100", "vram_gb_max": float(MAX_MAGNITUDE), "vram_gb_available": 1}],
        rams=[{"memory_gb_available": -MAX_MAGNITUDE, "memory_gb_max": MAX_MAGNITUDE}],
    )
    body = msgspec.json.encode({"data": [doc], "limit": 50, "page": 1, "total": 1})
    page = decode_body(body, ProvedFacts())
    assert not page.rejected
    table = NodeTable.from_nodes(page.nodes)
    assert len(table) == 1
