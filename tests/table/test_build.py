"""The fast table builder reproduces the straightforward per-node build, column for column."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta

import attrs
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_build_dialects import assert_identical

from nodeselect.documents._facts import ProvedFacts
from nodeselect.documents._lean import (
    LeanCpu,
    LeanDisk,
    LeanDriver,
    LeanGpu,
    LeanGpuMetrics,
    LeanHardwareEvent,
    LeanMetadata,
    LeanNode,
    LeanOS,
    LeanRam,
    LeanSoftware,
    LeanTelemetryGpu,
    LeanVram,
)
from nodeselect.table import _build
from nodeselect.table._table import NodeTable
from previous_build import previous_build_table
from reference_table import reference_from_nodes
from strategies_fleet import NOW, FleetNode, fleets

NOW_S = NOW.timestamp()

# every test here runs with the C reader and with the pure-Python one (tests/table/conftest.py)
pytestmark = pytest.mark.usefixtures("table_reader")


def _assert_same_table(got: NodeTable, want: NodeTable) -> None:
    """Every column equal in dtype, shape and value (NaN equal to NaN), every vocabulary equal.

    ``want`` is the reference told the units ``got`` decided (``units`` itself is compared by
    the unit tests: the reference does not infer)."""
    for f in attrs.fields(NodeTable):
        if f.name == "units":
            continue
        a, b = getattr(got, f.name), getattr(want, f.name)
        if isinstance(b, np.ndarray):
            assert isinstance(a, np.ndarray), f.name
            assert a.dtype == b.dtype, (f.name, a.dtype, b.dtype)
            assert a.shape == b.shape, (f.name, a.shape, b.shape)
            if a.dtype.kind == "f":
                assert np.array_equal(a, b, equal_nan=True), f.name
            else:
                assert np.array_equal(a, b), f.name
        else:
            assert a == b, f.name


def _check(nodes: Sequence[FleetNode]) -> NodeTable:
    """The fast build equals the reference told the units the fast build decided."""
    got = NodeTable.from_nodes(nodes, now=NOW)
    _assert_same_table(got, reference_from_nodes(nodes, NOW_S, got.units))
    return got


@pytest.mark.slow  # several seconds; CI runs it with -m slow
@settings(max_examples=40, deadline=None)
@given(fleets(max_size=25))
def test_fast_build_equals_reference_build(fleet: list[FleetNode]) -> None:
    """On generated fleets the fast builder yields exactly the reference builder's table."""
    _check(fleet)


@pytest.mark.slow  # several seconds; CI runs it with -m slow
@settings(max_examples=40, deadline=None)
@given(fleets(max_size=20), st.data())
def test_shared_facts_objects_build_like_separate_ones(
    fleet: list[FleetNode], data: st.DataObject
) -> None:
    """Nodes sharing one facts object (as a fetch's query results do) build as the reference."""
    shared = []
    for i, node in enumerate(fleet):
        j = data.draw(st.integers(0, i), label=f"facts of node {i} from node")
        shared.append(attrs.evolve(node, facts=shared[j].facts if j < i else node.facts))
    _check(shared)


_odd_numbers = st.one_of(
    st.none(),
    st.integers(-5, 10**12),
    st.floats(-1e30, 1e30),  # beyond float32's range the float32 cast warns (tests: an error)
    st.sampled_from([math.nan, math.inf, -math.inf]),
)
_cores = st.none() | st.integers(-1, 4096)  # cpu_cores is int32: no huge counts
_odd_text = st.one_of(
    st.none(), st.text(max_size=12), st.sampled_from(["", " ", "x86-64", "ARM64"])
)


@st.composite
def _odd_nodes(draw: st.DrawFn, uuid: str) -> FleetNode:
    """A node whose every number and string may be missing, empty, negative, huge or NaN."""
    n_gpu = draw(st.integers(0, 3))
    gpus = [
        LeanGpu(
            name=draw(_odd_text),
            vram_gb_available=draw(_odd_numbers),
            vram_gb_max=draw(_odd_numbers),
        )
        for _ in range(n_gpu)
    ]
    tele = [
        LeanTelemetryGpu(
            load=draw(_odd_numbers),
            name=draw(_odd_text),
            vram=draw(st.none() | st.builds(LeanVram, free=_odd_numbers, total=_odd_numbers)),
        )
        for _ in range(draw(st.sampled_from([0, n_gpu, n_gpu, n_gpu + 1])))
    ]
    created = draw(
        st.one_of(
            st.none(),
            st.just("2024-05-31T23:59:00Z"),
            st.just("2024-06-01T13:30:00+05:00"),
            st.just("not a time"),
        )
    )
    event = LeanHardwareEvent(
        timestamp_ms=draw(
            st.one_of(
                st.none(),
                st.just(int((NOW - timedelta(seconds=30)).timestamp() * 1000)),
                st.floats(0, 2e12),
            )
        ),
        created_at=created,
        metadata=draw(
            st.none()
            | st.builds(
                LeanMetadata,
                gpu=st.none() | st.just(LeanGpuMetrics(gpus=tele)),
            )
        ),
    )
    os_ = st.none() | st.builds(LeanOS, architecture=_odd_text, name=_odd_text)
    node = LeanNode(
        uuid=uuid,
        name=draw(_odd_text),
        reputation=draw(_odd_numbers),
        cpus=draw(st.none() | st.lists(st.builds(LeanCpu, num_cores=_cores), max_size=3)),
        gpus=gpus or None,
        hard_drives=draw(
            st.none()
            | st.lists(
                st.builds(
                    LeanDisk, available_capacity_gb=_odd_numbers, max_capacity_gb=_odd_numbers
                ),
                max_size=3,
            )
        ),
        rams=draw(
            st.none()
            | st.lists(
                st.builds(LeanRam, memory_gb_available=_odd_numbers, memory_gb_max=_odd_numbers),
                max_size=3,
            )
        ),
        latest_hardware_event=draw(st.sampled_from([None, event])),
        operating_system=draw(os_),
        current_software=draw(
            st.none()
            | st.builds(
                LeanSoftware,
                cached_image_tags=st.none() | st.lists(_odd_text.filter(bool), max_size=3),
                operating_system=os_,
            )
        ),
        operator_account_uuid=draw(_odd_text),
        last_seen_at=draw(st.one_of(st.none(), st.just("2024-06-01T11:00:00.5Z"), _odd_text)),
        suspended_at=draw(st.sampled_from([None, "", "2024-01-01T00:00:00Z"])),
        deleted_at=draw(st.sampled_from([None, "", "2024-01-01T00:00:00Z"])),
    )
    facts = ProvedFacts(
        status=draw(st.sampled_from([None, "", "AVAILABLE", "MADE_UP"])),
        compliance_tags=frozenset(draw(st.lists(st.sampled_from(["GDPR", "EEA", "X"])))),
        continent=draw(st.sampled_from([None, "", "EU", "ZZ"])),
        country=draw(st.sampled_from([None, "", "de", "US"])),
        subdivision=draw(st.sampled_from([None, "", "us-ca", "DE-BY"])),
    )
    return FleetNode(lean=node, facts=facts)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(0, 10**6), max_size=12, unique=True).flatmap(
        lambda ids: st.tuples(*(_odd_nodes(f"u-{i}") for i in ids))
    )
)
def test_fast_build_equals_reference_on_odd_values(fleet: tuple[FleetNode, ...]) -> None:
    """Missing, empty, negative, huge and NaN values are stored exactly as in the reference."""
    nodes = list(fleet)
    _check(nodes)


def test_empty_fleet_builds_an_empty_table() -> None:
    """No nodes give a table of length 0 equal to the reference's."""
    _check([])
    assert len(NodeTable.from_nodes([], now=NOW)) == 0


def test_many_images_spill_into_a_second_bitset_word() -> None:
    """More than 64 distinct image tags need two words per node, set exactly as the reference."""
    nodes = [
        FleetNode(
            lean=LeanNode(
                uuid=f"n{i}",
                current_software=LeanSoftware(
                    cached_image_tags=[f"img-{j}" for j in range(i, i + 40)]
                ),
            )
        )
        for i in range(0, 60, 20)
    ]
    got = NodeTable.from_nodes(nodes, now=NOW)
    assert got.image_bits.shape[0] == 2
    _assert_same_table(got, reference_from_nodes(nodes, NOW_S, got.units))


@pytest.mark.slow  # 3-4 s; the dialect fleets check the chunked build in the default run
@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 10**6), max_size=12, unique=True).flatmap(
        lambda ids: st.tuples(*(_odd_nodes(f"u-{i}") for i in ids))
    ),
    st.integers(1, 5),
)
def test_odd_values_in_small_chunks_equal_the_previous_builder(
    fleet: tuple[FleetNode, ...], chunk: int
) -> None:
    """Odd values read in chunks of 1-5 nodes give the previous per-node builder's table and
    unit decisions, bit for bit."""
    nodes = list(fleet)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_build, "CHUNK", chunk)
        got = NodeTable.from_nodes(nodes, now=NOW)
    assert_identical(got, previous_build_table(nodes, NOW_S))


_few_texts = st.sampled_from([None, "", "a", "b", "c", " a", "A"])
_few_arches = st.sampled_from([None, "", "x86_64", "amd64", "AMD64", "arm64", "riscv"])
_few_drivers = st.sampled_from([None, "", "535.104.05", "550", "x.1"])
_few_gpus = st.lists(st.sampled_from([None, "", "NVIDIA A100", "A100", "H100"]), max_size=2)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            _few_texts,
            _few_texts,
            st.sampled_from([None, "AVAILABLE", "X"]),
            _few_texts,
            _few_arches,
            _few_drivers,
            _few_gpus,
        ),
        max_size=24,
    ),
    st.integers(1, 9),
)
def test_repeated_values_across_chunks_equal_the_previous_builder(
    rows: list[
        tuple[
            str | None,
            str | None,
            str | None,
            str | None,
            str | None,
            str | None,
            list[str | None],
        ]
    ],
    chunk: int,
) -> None:
    """Node names, operators, facts, OS names, architectures, drivers and GPU names that repeat
    within and across chunks (``None``, ``""`` and near-duplicates interleaved) get the
    previous builder's codes and vocabularies, whichever chunk first holds a value."""
    nodes = [
        FleetNode(
            lean=LeanNode(
                uuid=f"n{i}",
                name=name,
                operator_account_uuid=operator,
                operating_system=LeanOS(name=os_name, architecture=arch),
                current_software=LeanSoftware(nvidia_driver=LeanDriver(version=driver)),
                gpus=[LeanGpu(name=g) for g in gpus] or None,
            ),
            facts=ProvedFacts(status=status),
        )
        for i, (name, operator, status, os_name, arch, driver, gpus) in enumerate(rows)
    ]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_build, "CHUNK", chunk)
        got = NodeTable.from_nodes(nodes, now=NOW)
    assert_identical(got, previous_build_table(nodes, NOW_S))


def test_compliance_tags_in_a_list_build_like_a_frozenset() -> None:
    """Facts whose compliance tags come as a list (unhashable) are coded as the same tags in
    a frozenset, as the previous builder coded them."""
    tags = [["GDPR", "EEA"], ["EEA"], ["EEA", "GDPR"], []]
    nodes = [
        FleetNode(
            lean=LeanNode(uuid=f"n{i}"),
            facts=ProvedFacts(compliance_tags=t),  # type: ignore[arg-type]
        )
        for i, t in enumerate(tags)
    ]
    got = NodeTable.from_nodes(nodes, now=NOW)
    assert_identical(got, previous_build_table(nodes, NOW_S))
    assert got.compliance_bits[0].tolist()[0] == got.compliance_bits[0].tolist()[2] != 0


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 60),
            st.sampled_from([math.nan, -0.0, 0.0, 24.0, 80.0]) | st.floats(0, 200, width=32),
        ),
        max_size=80,
    )
)
@example([(i % 61, 1.0 + i) for i in range(80)])  # 61 names x 80 totals: the sort
def test_gpu_models_are_resolved_per_name_and_total(gpus: list[tuple[int, float]]) -> None:
    """``_gpu_codes`` gives every GPU ``gpu_codes_for_nodes`` of its own (name, total) -- with
    few distinct pairs (a dense table of names x totals) and with many (the sort), NaN as
    None and -0.0 as 0.0."""
    fleet = _build._Fleet()
    names = [f"NVIDIA RTX {4000 + i}" for i in range(61)] + ["A100", "H100 80GB"]
    fleet.gpu_names.code(names)
    name_code = np.array([c for c, _ in gpus], dtype=np.int64)
    total = np.array([t for _, t in gpus], dtype=np.float64)
    got = _build._gpu_codes(fleet, name_code, total)
    want = [
        _build.gpu_codes_for_nodes([names[c]], [None if math.isnan(t) else t])[0] for c, t in gpus
    ]
    assert got.tolist() == want
