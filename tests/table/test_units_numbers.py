"""Tolerant numbers and unit inference: the rules of docs/units.md, one at a time.

* numeric strings are read as numbers and counted; unreadable ones reject the node only in
  fields the table reads; evidence-only fields never reject;
* sizes: the unit whose factor most ratios agree with, if enough agree; else undecided;
* loads: by the share of non-zero values above 1;
* per node, implausible telemetry falls back to the GB fields and is counted.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect.documents._convert import numeric_string, parse_node
from nodeselect.documents._facts import ProvedFacts
from nodeselect.engine._rank import rank
from nodeselect.errors import DocumentError
from nodeselect.fetch._decode import decode_body
from nodeselect.jobs._file import job_from_dict
from nodeselect.table._table import NodeTable
from nodeselect.table._units import (
    SIZE_FACTORS,
    Units,
    implausible_sizes,
    infer_load_unit,
    infer_size_unit,
)

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
FACTS = ProvedFacts(status="AVAILABLE")
GIB = 2**30


def _doc(
    i: int,
    *,
    ram_gb: float = 64,
    free_gb: float = 40,
    ram_unit: str = "bytes",
    vram_unit: str = "MiB",
    load: float = 0.2,
    load_unit: str = "fraction",
    **over: Any,
) -> dict[str, Any]:
    """One node document with consistent telemetry in the given units."""
    rf, vf = SIZE_FACTORS[ram_unit], SIZE_FACTORS[vram_unit]
    lf = 100.0 if load_unit == "percent" else 1.0
    doc: dict[str, Any] = {
        "uuid": f"n{i}",
        "rams": [{"memory_gb_available": 8, "memory_gb_max": ram_gb}],
        "ramTotal": ram_gb,
        "gpus": [{"name": "NVIDIA GeForce RTX 4090", "vram_gb_available": 3, "vram_gb_max": 24}],
        "latest_hardware_event": {
            "timestamp_ms": NOW_MS - 60_000,
            "metadata": {
                "cpu": {"average": load * lf},
                "ram": {"free": free_gb * rf, "total": ram_gb * rf},
                "gpu": {
                    "gpus": [
                        {
                            "load": load * lf,
                            "name": "RTX 4090",
                            "vram": {"free": 20 * vf, "total": 24 * vf},
                        }
                    ]
                },
            },
        },
    }
    doc.update(over)
    return doc


def _table(docs: list[dict[str, Any]]) -> tuple[NodeTable, Any]:
    body = msgspec.json.encode({"data": docs, "limit": 50, "page": 1, "total": len(docs)})
    page = decode_body(body, FACTS)
    return NodeTable.from_nodes(page.nodes, now=NOW), page


# --- tolerant numbers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("32", 32), ("0.45", 0.45), ("1e3", 1000.0), ("-0", 0), ("32.0", 32.0)],
)
def test_numeric_strings_hold_json_numbers(text: str, value: float) -> None:
    """The JSON number grammar inside quotes is a number."""
    assert numeric_string(text) == value


@pytest.mark.parametrize("text", ["", "abc", " 1e3 ", "+5", ".5", "1,5", "1_000", "inf", "nan"])
def test_other_strings_are_not_numbers(text: str) -> None:
    """Spaces, signs, separators and non-finite words are not read (one rule, documented)."""
    assert numeric_string(text) is None


def test_a_stringly_ramtotal_and_vram_are_read_and_counted() -> None:
    """``ramTotal: "32"`` and ``vram_gb_available: "3"`` no longer reject the node: read as
    numbers, and the table counts the node in ``units.numeric_strings``."""
    doc = _doc(0, ramTotal="64")
    doc["gpus"][0]["vram_gb_available"] = "3"
    doc["latest_hardware_event"]["metadata"]["ram"]["free"] = str(40 * GIB)
    t, page = _table([doc, _doc(1), _doc(2)])
    assert not page.rejected
    assert len(t) == 3
    assert t.units.numeric_strings == 1
    assert float(t.gpu_vram_free_gb[0]) == 3.0
    assert float(t.ram_free_gb[0]) == 40.0


def test_an_unreadable_number_the_table_reads_rejects_the_node_with_its_path() -> None:
    """``"abc"`` in ``gpus[].vram_gb_available`` rejects that node only, naming the field."""
    doc = _doc(1)
    doc["gpus"][0]["vram_gb_available"] = "abc"
    _, page = _table([_doc(0), doc])
    assert [n.uuid for n in page.nodes] == ["n0"]
    assert page.rejected[0].error.path == "data[1].gpus[0].vram_gb_available"


@pytest.mark.parametrize("bad", ["inf", "NaN", " 12 "])
def test_non_finite_or_padded_strings_reject_a_read_field(bad: str) -> None:
    """``"inf"`` would make a node fit every job: not read as a number."""
    doc = _doc(0)
    doc["gpus"][0]["vram_gb_available"] = bad
    _, page = _table([doc])
    assert not page.nodes
    assert len(page.rejected) == 1


@pytest.mark.parametrize("bad", ["abc", True, {"a": 1}, [1], " 32 "])
def test_evidence_only_fields_never_reject(bad: object) -> None:
    """``ramTotal`` and ``current_hardware.memory.ram_bytes_total`` are only unit evidence:
    anything there keeps the node (what is not a number is no evidence)."""
    doc = _doc(0, ramTotal=bad)
    doc["current_hardware"] = {"memory": {"ram_bytes_total": bad}}
    t, page = _table([doc])
    assert not page.rejected
    assert len(t) == 1


def test_booleans_where_a_read_number_belongs_reject_the_node() -> None:
    """A boolean is not a number in any reading (the full model says the same)."""
    doc = _doc(0, reputation=True)
    _, page = _table([doc])
    assert not page.nodes
    with pytest.raises(DocumentError):
        parse_node(doc)


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(
        st.integers(-(10**12), 10**12),
        st.floats(-1e12, 1e12, allow_nan=False).map(lambda x: round(x, 6)),
    )
)
def test_the_full_model_and_the_lean_decode_read_a_numeric_string_alike(x: float) -> None:
    """For any number written as a JSON string, both decoders accept it with the same value."""
    text = msgspec.json.encode(x).decode()
    doc = {"uuid": "u", "reputation": text, "rams": [{"memory_gb_available": text}]}
    node = parse_node(doc)
    page = decode_body(
        msgspec.json.encode({"data": [doc], "limit": 1, "page": 1, "total": 1}), FACTS
    )
    lean = page.nodes[0].lean
    assert lean.reputation == node.reputation == x
    assert lean.rams is not None
    assert lean.rams[0].memory_gb_available == node.rams[0].memory_gb_available == x


# --- inference rules -------------------------------------------------------------------------


@pytest.mark.parametrize("unit", ["bytes", "MiB", "GB"])
@pytest.mark.parametrize("vram_unit", ["bytes", "MiB", "GB"])
def test_sizes_are_inferred_from_known_totals(unit: str, vram_unit: str) -> None:
    """Three consistent nodes decide the RAM and VRAM units, and values convert to GB."""
    t, _ = _table([_doc(i, ram_unit=unit, vram_unit=vram_unit) for i in range(3)])
    assert t.units.ram.unit == unit
    assert t.units.vram.unit == vram_unit
    assert t.ram_free_gb.tolist() == [40.0] * 3
    assert t.gpu_tele_vram_free_gb.tolist() == [20.0] * 3


def test_decimal_gb_and_reserved_memory_still_agree() -> None:
    """Totals off by 7 % (decimal vs binary GB) or a few GB reserved are within tolerance."""
    docs = [_doc(i) for i in range(3)]
    docs[0]["latest_hardware_event"]["metadata"]["ram"]["total"] = 64e9
    docs[1]["latest_hardware_event"]["metadata"]["ram"]["total"] = 60 * GIB
    t, _ = _table(docs)
    assert t.units.ram.unit == "bytes"
    assert t.units.ram.fallbacks == 0


def test_without_evidence_the_ram_unit_is_undecided_and_gb_fields_are_used() -> None:
    """No known total on any node: RAM telemetry is not used (never assumed), and counted."""
    docs = [_doc(i) for i in range(3)]
    for d in docs:
        d.pop("ramTotal")
        d["rams"] = [{"memory_gb_available": 8}]
    t, _ = _table(docs)
    assert t.units.ram.unit is None
    assert t.units.ram.fallbacks == 3
    assert t.ram_free_gb.tolist() == [8.0] * 3
    assert t.units.summary() is not None


def test_conflicting_evidence_is_undecided() -> None:
    """Half the fleet in bytes, half in GB: no unit has 80 % -> undecided."""
    docs = [_doc(i, ram_unit="bytes" if i % 2 else "GB") for i in range(6)]
    t, _ = _table(docs)
    assert t.units.ram.unit is None
    assert "conflicting" in t.units.ram.how


def test_one_implausible_node_falls_back_and_is_counted() -> None:
    """A node whose telemetry total disagrees with its known total (the issue's 7e-07 GB free
    on a 1 TB node) uses its GB fields; the rest keep telemetry."""
    docs = [_doc(i) for i in range(5)]
    docs[4] = _doc(4, ram_gb=1024, free_gb=700)
    docs[4]["latest_hardware_event"]["metadata"]["ram"] = {"free": 700, "total": 1024}  # GB
    docs[3]["latest_hardware_event"]["metadata"]["ram"]["free"] = 80 * GIB  # free > total
    t, _ = _table(docs)
    assert t.units.ram.unit == "bytes"
    assert t.units.ram.fallbacks == 2
    assert t.ram_free_gb.tolist() == [40.0, 40.0, 40.0, 8.0, 8.0]
    job = job_from_dict({"name": "ram", "memory": {"min_free_gb": 30}})
    r = rank(job, t, k=10, now=NOW)
    assert r.explanation.telemetry_fallbacks == 2
    assert "telemetry values not used" in r.explanation.summary()


def test_percent_loads_are_read_as_percent() -> None:
    """GPU and CPU loads above 1 across the fleet are percent: 20 % -> 0.2."""
    t, _ = _table([_doc(i, load=0.2 + 0.1 * i, load_unit="percent") for i in range(4)])
    assert t.units.gpu_load.unit == "percent"
    assert t.units.cpu_load.unit == "percent"
    assert np.allclose(t.gpu_load, [0.2, 0.3, 0.4, 0.5])


def test_a_fraction_fleet_with_one_glitch_drops_only_the_glitch() -> None:
    """Fractions with one value of 57 (of 20): fraction, and the 57 becomes unknown."""
    docs = [_doc(i, load=0.05 * (i + 1) % 1) for i in range(20)]
    docs[7]["latest_hardware_event"]["metadata"]["gpu"]["gpus"][0]["load"] = 57
    t, _ = _table(docs)
    assert t.units.gpu_load.unit == "fraction"
    assert t.units.gpu_load.fallbacks == 1
    assert math.isnan(float(t.gpu_load[7]))


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(list(SIZE_FACTORS)),
    st.lists(st.floats(1.0, 4096.0), min_size=1, max_size=40),
    st.data(),
)
def test_consistent_sizes_decide_their_unit(unit: str, totals: list[float], data: Any) -> None:
    """Any fleet whose telemetry totals are its known totals in one unit (within -19 % .. +20 %)
    decides that unit with every node agreeing."""
    known = np.array(totals)
    jitter = np.array(
        data.draw(st.lists(st.floats(0.81, 1.2), min_size=len(totals), max_size=len(totals)))
    )
    tele = known * jitter * SIZE_FACTORS[unit]
    d = infer_size_unit("ram", tele, known, reporting=len(totals), source="known")
    assert d.unit == unit
    assert d.agreeing == d.evidence == len(totals)
    assert not implausible_sizes(
        tele * 0.5 / SIZE_FACTORS[unit], tele / SIZE_FACTORS[unit], known
    ).any()


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=50))
def test_fractions_decide_fraction_and_scaled_by_100_decide_percent(loads: list[float]) -> None:
    """Any fraction fleet reads as fraction; the same fleet x100 reads as percent when at least
    half of its non-zero values exceed 1 % (else it is ambiguous and not called percent)."""
    v = np.array(loads)
    assert infer_load_unit("gpu_load", v, source="x").unit == "fraction"
    p = infer_load_unit("gpu_load", v * 100.0, source="x")
    nz = v[v > 0]
    if len(nz) and np.count_nonzero(nz * 100 > 1.0 + 1e-6) >= 0.5 * len(nz):
        assert p.unit == "percent"
    else:
        assert p.unit != "percent"


def test_units_of_a_concat_add_counts_and_default_tables_say_assumed() -> None:
    """Concatenated tables keep a unit they agree on and add the counts; a synthetic table's
    units are the defaults, marked as assumed."""
    a, _ = _table([_doc(i) for i in range(3)])
    b, _ = _table([_doc(i + 3) for i in range(3)])
    u = NodeTable.concat([a, b]).units
    assert u.ram.unit == "bytes"
    assert u.ram.evidence == 6
    assert NodeTable.synthetic(5).units == Units()
    assert "assumed" in Units().ram.how


def test_the_text_header_line_appears_only_when_something_is_not_default() -> None:
    """One line naming non-default or undecided units and the fallbacks; nothing otherwise."""
    from nodeselect.cli._render import telemetry_units_line  # noqa: PLC0415

    t, _ = _table([_doc(i, ram_unit="GB", load_unit="percent") for i in range(3)])
    line = telemetry_units_line(t.units.to_dict())
    assert line is not None
    assert "ram in GB" in line
    assert "gpu load in percent" in line
    default, _ = _table([_doc(i) for i in range(3)])
    assert telemetry_units_line(default.units.to_dict()) is None


@pytest.mark.parametrize(
    ("total", "known"),
    [(3.9377075871029815e21, 2.1904225536270782e-287), (1e-300, 1e300), (1.7e308, 1e-10)],
)
def test_a_size_ratio_beyond_floats_agrees_with_no_unit_and_warns_nothing(total, known) -> None:
    """A telemetry total and a known size so far apart that their ratio overflows to inf or
    underflows to 0 (found by hypothesis in the slow suite: a 3.9e21 total against a
    2.2e-287 GB card) agree with no unit, and numpy's overflow warning does not surface
    (warnings are errors here); a sane pair beside it still decides."""
    from nodeselect.table import infer_size_unit  # noqa: PLC0415

    d = infer_size_unit(
        "vram", np.array([total]), np.array([known]), reporting=1, source="the known total"
    )
    assert d.unit is None
    assert d.agreeing == 0
    sizes = [8.0, 12.0, 16.0, 24.0, 40.0, 48.0, 80.0, 80.0, 94.0, 141.0, 192.0] * 2
    sane = infer_size_unit(
        "vram",
        np.array([total, *sizes]),
        np.array([known, *sizes]),
        reporting=len(sizes) + 1,
        source="the known total",
    )
    assert sane.unit == "GB"
    assert sane.agreeing == len(sizes)


def test_sizes_beyond_floats_are_implausible_without_a_warning() -> None:
    """A total whose ratio to the known size overflows (or whose free * (1 + eps) does) is
    implausible, and numpy's overflow warning does not surface (warnings are errors here)."""
    from nodeselect.table import implausible_sizes  # noqa: PLC0415

    free = np.array([1.7e308, 10.0, 1e-300])
    total = np.array([1.7e308, 16.0, 1e-300])
    known = np.array([1e-10, 16.0, 1e300])
    assert implausible_sizes(free, total, known).tolist() == [True, False, True]
