"""`nodeselect gpus --available` (issue 12 item 10): per GPU model, how many nodes could take
1, 2, 4, 8 of its GPUs now, per continent."""

from __future__ import annotations

import contextlib
import io
import json

import attrs

from nodeselect.cli import main
from nodeselect.cli.gpus import available_now
from nodeselect.documents._facts import ProvedFacts
from nodeselect.table._table import NodeTable
from reference_placement import NOW, FleetNode, TinyGpu, TinyNode


def _node(
    uuid: str, gpus: tuple[TinyGpu, ...], country: str, status: str = "AVAILABLE"
) -> FleetNode:
    n = TinyNode(f"00000000-0000-0000-0000-0000000000{uuid}", gpus, 8, 32, 100, "o", country).node()
    return attrs.evolve(n, facts=attrs.evolve(n.facts, status=status))


def test_counts_follow_free_gpus_status_and_continent() -> None:
    """Each node counts under its continent for every N up to its GPUs of the model; an
    OFFLINE node counts nowhere; a node with no proved continent is 'unknown'."""
    t4, a100 = TinyGpu("T4", 16), TinyGpu("A100-80GB", 70)
    nodes = [
        _node("f1", (t4,) * 8, "DE"),
        _node("f2", (t4,) * 2, "US"),
        _node("f3", (a100, t4), "FR"),
        _node("f4", (t4,) * 8, "DE", status="OFFLINE"),
    ]
    nodes.append(attrs.evolve(_node("f5", (t4,) * 4, "DE"), facts=ProvedFacts(status="AVAILABLE")))
    got = available_now(NodeTable.from_nodes(nodes, now=NOW), now=NOW)
    assert got == [
        {
            "model": "T4",
            "total": [4, 3, 2, 1],
            "continents": {"EU": [2, 1, 1, 1], "NA": [1, 1, 0, 0], "unknown": [1, 1, 1, 0]},
        },
        {"model": "A100-80GB", "total": [1, 0, 0, 0], "continents": {"EU": [1, 0, 0, 0]}},
    ]


def test_gpus_available_json_on_the_demo_fleet() -> None:
    """The JSON lists models whose totals are the continents' sums and never grow with N."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["gpus", "--demo", "--available", "--json"])
    assert code == 0
    doc = json.loads(out.getvalue())
    assert doc["schema"] == "nodeselect.gpus-available/1"
    assert doc["counts"] == [1, 2, 4, 8]
    assert doc["models"]
    for m in doc["models"]:
        sums = [sum(c[i] for c in m["continents"].values()) for i in range(4)]
        assert sums == m["total"]
        assert m["total"] == sorted(m["total"], reverse=True)
        assert m["total"][0] > 0
