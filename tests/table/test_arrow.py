"""Data out (issue 12 item 9): NodeTable.to_arrow (numeric columns shared, not copied),
to_pandas / to_polars through it, Ranking.to_records; a clear error when pyarrow is missing."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from nodeselect.engine._rank import rank
from nodeselect.jobs import GpuReq, Job
from nodeselect.table import MissingDependencyError
from nodeselect.table._table import NodeTable
from reference_placement import NOW, TinyGpu, TinyNode

NODES = [
    TinyNode(
        "00000000-0000-0000-0000-0000000000e1",
        (TinyGpu("T4", 16), TinyGpu("T4", 9)),
        8,
        32,
        100,
        "op-1",
        "DE",
    ),
    TinyNode("00000000-0000-0000-0000-0000000000e2", (), 4, 16, 50, "op-2", "US"),
    TinyNode(
        "00000000-0000-0000-0000-0000000000e3",
        (TinyGpu("A100-80GB", 70),),
        32,
        256,
        900,
        "op-1",
        "FR",
    ),
]


@pytest.fixture(scope="module")
def table() -> NodeTable:
    return NodeTable.from_nodes([n.node() for n in NODES], now=NOW)


def test_to_arrow_has_one_row_per_node_with_the_table_values(table: NodeTable) -> None:
    """Each row holds its node's values: uuid, region, cores, RAM, per-GPU lists."""
    rows = table.to_arrow().to_pylist()
    assert [r["uuid"] for r in rows] == [n.uuid for n in NODES]
    assert [r["country"] for r in rows] == ["DE", "US", "FR"]
    assert [r["status"] for r in rows] == ["AVAILABLE"] * 3
    assert [r["cpu_cores"] for r in rows] == [8, 4, 32]
    assert [r["gpu_model"] for r in rows] == [["T4", "T4"], [], ["A100-80GB"]]
    assert [r["gpu_vram_free_gb"] for r in rows] == [[16.0, 9.0], [], [70.0]]
    assert [r["gpu_count"] for r in rows] == [2, 0, 1]
    assert rows[0]["name"] == table.name_of(0)
    assert rows[1]["subdivision"] is None  # never proved: null, not ""


def test_numeric_columns_are_shared_not_copied(table: NodeTable) -> None:
    """The Arrow buffers of numeric columns are the table's own NumPy memory."""
    t = table.to_arrow()
    for name in ("ram_free_gb", "cpu_cores", "last_seen_epoch_s", "reputation"):
        data = t.column(name).chunk(0).buffers()[1]
        assert data.address == getattr(table, name).ctypes.data, name
    gpu = t.column("gpu_vram_free_gb").chunk(0)
    assert gpu.values.buffers()[1].address == table.gpu_vram_free_gb.ctypes.data


def test_synthetic_tables_round_trip_every_numeric_column() -> None:
    """On a synthetic fleet, every numeric column equals the table's, NaN for NaN."""
    t = NodeTable.synthetic(500, seed=3, now=NOW)
    a = t.to_arrow()
    assert a.num_rows == 500
    for name in ("ram_free_gb", "disk_free_gb", "cpu_load", "telemetry_epoch_s"):
        np.testing.assert_array_equal(a.column(name).to_numpy(), getattr(t, name))
    assert a.column("compliance").to_pylist() == [
        [
            v
            for j, v in enumerate(t.compliance_vocab)
            if int(t.compliance_bits[j >> 6][i]) >> (j & 63) & 1
        ]
        for i in range(500)
    ]


def test_pandas_and_polars_come_through_arrow(table: NodeTable) -> None:
    """to_pandas / to_polars give frames of the same rows (when those libraries are there)."""
    pd = pytest.importorskip("pandas")
    df = table.to_pandas()
    assert isinstance(df, pd.DataFrame)
    assert list(df["uuid"]) == [n.uuid for n in NODES]
    pl = pytest.importorskip("polars")
    assert isinstance(table.to_polars(), pl.DataFrame)


def test_without_pyarrow_the_error_names_the_extra(
    table: NodeTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With pyarrow not importable, to_arrow raises an ImportError naming nodeselect[arrow]."""
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'nodeselect\[arrow\]'"):
        table.to_arrow()
    with pytest.raises(ImportError):
        table.to_arrow()


def test_ranking_records_are_plain_dicts_whose_terms_sum_to_the_score(table: NodeTable) -> None:
    """Ranking.to_records: rank, uuid, score, GPUs and term contributions adding up to it."""
    r = rank(Job(gpu=GpuReq(count=1)), table, now=NOW)
    records = r.to_records()
    assert [x["uuid"] for x in records] == [n.uuid for n in r.top]
    assert [x["rank"] for x in records] == list(range(1, len(r.top) + 1))
    for x in records:
        terms = sum(v for k, v in x.items() if k.startswith("term_"))
        assert math.isclose(terms, x["score"], rel_tol=1e-9, abs_tol=1e-12)
        assert isinstance(x["gpu_indices"], list)
