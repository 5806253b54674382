"""The node table: columns built from documents, units, CSR GPUs, take/concat, capacity views."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect.documents._facts import ProvedFacts
from nodeselect.documents._lean import (
    LeanDisk,
    LeanGpu,
    LeanGpuMetrics,
    LeanHardwareEvent,
    LeanMetadata,
    LeanNode,
    LeanRam,
    LeanRamMetrics,
    LeanTelemetryGpu,
    LeanVram,
)
from nodeselect.errors import InputError
from nodeselect.table._table import GIB, NodeTable, arch_name, driver_number
from strategies_fleet import NOW, FleetNode, fleets

NOW_MS = int(NOW.timestamp() * 1000)


def _node(**kw: object) -> FleetNode:
    return FleetNode(lean=LeanNode(uuid=str(kw.pop("uuid", "u-1")), **kw), facts=ProvedFacts())  # type: ignore[arg-type]


def _decoded(t: NodeTable) -> list[tuple[object, ...]]:
    """Every node as comparable plain values (codes resolved through their vocabularies)."""
    rows = []
    for i in range(len(t)):
        a, b = int(t.gpu_offsets[i]), int(t.gpu_offsets[i + 1])
        imgs = {
            v for j, v in enumerate(t.image_vocab) if int(t.image_bits[j >> 6, i]) >> (j & 63) & 1
        }
        tags = {
            v
            for j, v in enumerate(t.compliance_vocab)
            if int(t.compliance_bits[j >> 6, i]) >> (j & 63) & 1
        }
        rows.append(
            (
                t.uuid_of(i),
                t.name_of(i),
                t.operator_vocab[t.operator_code[i]],
                repr(float(t.reputation[i])),
                int(t.cpu_cores[i]),
                repr(float(t.ram_free_gb[i])),
                repr(float(t.disk_free_gb[i])),
                repr(float(t.last_seen_epoch_s[i])),
                t.status_vocab[t.status_code[i]],
                t.country_vocab[t.country_code[i]],
                t.arch_vocab[t.arch_code[i]],
                frozenset(imgs),
                frozenset(tags),
                int(t.driver_version[i]),
                tuple(int(c) for c in t.gpu_model_code[a:b]),
                tuple(repr(float(v)) for v in t.gpu_vram_free_gb[a:b]),
                tuple(repr(float(v)) for v in t.gpu_load[a:b]),
            )
        )
    return rows


def test_units_and_sources_of_one_node() -> None:
    """Fresh telemetry RAM (bytes, by its ratio to ``ramTotal``) becomes GB, the largest drive
    counts, GPUs match by index (VRAM in MiB by its ratio to ``vram_gb_max``)."""
    lean = {
        "uuid": "n1",
        "ramTotal": 128,
        "rams": [LeanRam(memory_gb_available=10, memory_gb_max=16), LeanRam(memory_gb_available=6)],
        "hard_drives": [LeanDisk(available_capacity_gb=100), LeanDisk(available_capacity_gb=700)],
        "gpus": [LeanGpu(name="NVIDIA GeForce RTX 4090", vram_gb_available=20, vram_gb_max=24)] * 2,
        "latest_hardware_event": LeanHardwareEvent(
            timestamp_ms=NOW_MS - 60_000,
            metadata=LeanMetadata(
                ram=LeanRamMetrics(free=64 * 2**30, total=128 * 2**30),
                gpu=LeanGpuMetrics(
                    gpus=[
                        LeanTelemetryGpu(
                            load=0.25, name="RTX 4090", vram=LeanVram(free=10240, total=24564)
                        ),
                        LeanTelemetryGpu(
                            load=0.5, name="RTX 4090", vram=LeanVram(free=2048, total=24564)
                        ),
                    ]
                ),
            ),
        ),
    }
    t = NodeTable.from_nodes([_node(**lean)], now=NOW)
    assert float(t.ram_free_gb[0]) == 64.0
    assert float(t.disk_free_gb[0]) == 700.0
    assert list(t.gpu_tele_vram_free_gb) == [10.0, 2.0]
    assert list(t.gpu_vram_free_gb) == [20.0, 20.0]
    assert list(t.gpu_load) == [0.25, 0.5]
    assert t.gpu_offsets.tolist() == [0, 2]
    assert int(t.gpu_model_code[0]) > 0
    assert float(t.telemetry_epoch_s[0]) == (NOW_MS - 60_000) / 1000


def test_stale_telemetry_falls_back_to_reported_ram_and_unmatched_gpus_have_no_load() -> None:
    """Stale telemetry leaves RAM to rams[]; a GPU count mismatch leaves load unknown."""
    lean = {
        "uuid": "n1",
        "rams": [LeanRam(memory_gb_available=10), LeanRam(memory_gb_available=6)],
        "gpus": [LeanGpu(name="Tesla T4", vram_gb_max=16)] * 2,
        "latest_hardware_event": LeanHardwareEvent(
            timestamp_ms=NOW_MS - 3_600_000,
            metadata=LeanMetadata(
                ram=LeanRamMetrics(free=64 * GIB),
                gpu=LeanGpuMetrics(gpus=[LeanTelemetryGpu(load=0.1, name="Tesla T4")]),
            ),
        ),
    }
    t = NodeTable.from_nodes([_node(**lean)], now=NOW)
    assert float(t.ram_free_gb[0]) == 16.0
    assert np.isnan(t.gpu_load).all()


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("535.104.05", 535_104_005),
        ("550", 550_000_000),
        ("470.1", 470_001_000),
        (None, 0),
        ("n/a", 0),
        ("", 0),
    ],
)
def test_driver_versions_compare_as_numbers(text: str | None, number: int) -> None:
    """Driver strings map to major*1e6+minor*1e3+patch, unknown to 0."""
    assert driver_number(text) == number


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("amd64", "x86_64"),
        ("X86-64", "x86_64"),
        ("aarch64", "aarch64"),
        ("ARM64", "aarch64"),
        (None, ""),
        ("riscv64", "riscv64"),
    ],
)
def test_arch_aliases_are_normalized(raw: str | None, norm: str) -> None:
    """Architecture spellings collapse to one name per architecture."""
    assert arch_name(raw) == norm


@settings(max_examples=10, deadline=None)
@given(fleets(max_size=12), st.data())
def test_take_then_concat_restores_the_table(fleet: list[FleetNode], data: st.DataObject) -> None:
    """Splitting a table with take() and joining the parts with concat() gives back every value."""
    t = NodeTable.from_nodes(fleet, now=NOW)
    cut = data.draw(st.integers(0, len(fleet)))
    parts = [t.take(np.arange(cut)), t.take(np.arange(cut, len(fleet)))]
    assert _decoded(NodeTable.concat(parts)) == _decoded(t)


@settings(max_examples=20, deadline=None)
@given(fleets(min_size=1, max_size=12), st.data())
def test_concat_of_separately_built_tables_equals_one_build(
    fleet: list[FleetNode], data: st.DataObject
) -> None:
    """Tables built from two halves (different vocabularies) with the whole fleet's telemetry
    units concat to the whole's table (a half alone may hold too little evidence to decide a
    unit the whole decides: that is what ``units=`` is for)."""
    cut = data.draw(st.integers(0, len(fleet)))
    whole = NodeTable.from_nodes(fleet, now=NOW)
    a = NodeTable.from_nodes(fleet[:cut], now=NOW, units=whole.units)
    b = NodeTable.from_nodes(fleet[cut:], now=NOW, units=whole.units)
    assert _decoded(NodeTable.concat([a, b])) == _decoded(whole)
    assert [t.units.ram.unit for t in (a, b)] == [whole.units.ram.unit] * 2


@settings(max_examples=20, deadline=None)
@given(fleets(min_size=1, max_size=12))
def test_uuid_and_index_round_trip(fleet: list[FleetNode]) -> None:
    """index_of(uuid_of(i)) == i for every row, and a name finds a node with that name."""
    t = NodeTable.from_nodes(fleet, now=NOW)
    for i in range(len(t)):
        assert t.index_of(t.uuid_of(i)) == i
        name = t.name_of(i)
        if name is not None:
            assert t.name_of(t.index_of(name)) == name


def test_unknown_node_is_an_input_error() -> None:
    """Looking up a node that is not there names it and says what is accepted."""
    t = NodeTable.from_nodes([_node(uuid="a")], now=NOW)
    with pytest.raises(InputError, match="'zz' is not in the table"):
        t.index_of("zz")


def test_with_capacity_shares_columns_and_checks_shapes() -> None:
    """A capacity view replaces only the given columns and rejects arrays of the wrong length."""
    t = NodeTable.synthetic(50, seed=3, now=NOW)
    v = t.with_capacity(ram_free_gb=np.zeros(50, np.float32))
    assert v.reputation is t.reputation
    assert float(v.ram_free_gb.max()) == 0.0
    with pytest.raises(InputError, match="ram_free_gb must have shape"):
        t.with_capacity(ram_free_gb=np.zeros(3, np.float32))


def test_synthetic_table_is_under_200_bytes_per_node() -> None:
    """The synthetic fleet's columns hold fewer than 200 bytes per node."""
    t = NodeTable.synthetic(20_000, seed=1, now=NOW)
    assert t.nbytes / len(t) < 200
    assert len(t.gpu_offsets) == len(t) + 1
    assert int(t.gpu_offsets[-1]) == len(t.gpu_model_code) == int(t.gpu_count.sum())


def test_missing_values_are_nan_or_unknown_codes() -> None:
    """A bare document gives NaN numbers, 0 cores/driver and unknown codes, not guesses."""
    t = NodeTable.from_nodes([_node(uuid="bare")], now=NOW)
    assert math.isnan(t.reputation[0])
    assert math.isnan(t.ram_free_gb[0])
    assert math.isnan(t.disk_free_gb[0])
    assert math.isnan(t.last_seen_epoch_s[0])
    assert math.isnan(t.telemetry_epoch_s[0])
    assert t.cpu_cores[0] == 0
    assert t.driver_version[0] == 0
    assert t.status_code[0] == 0
    assert t.arch_code[0] == 0
    assert t.name_of(0) is None
