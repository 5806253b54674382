"""The optional C reader of the table build (``nodeselect.table._cbuild``): built whenever a C
compiler is there, and equal to the pure-Python reader bit for bit, also on values it leaves
to Python (it then hands the chunk back) and on values both readers refuse."""

from __future__ import annotations

import gc
import math
import shlex
import shutil
import sys
import sysconfig
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_build_dialects import assert_identical

from nodeselect.documents._facts import ProvedFacts
from nodeselect.documents._lean import (
    MAX_MAGNITUDE,
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
    LeanRamMetrics,
    LeanSoftware,
    LeanTelemetryGpu,
    LeanVram,
)
from nodeselect.table import _build
from nodeselect.table._table import NodeTable
from strategies_fleet import NOW, FleetNode

NOW_S = NOW.timestamp()


def _compiler() -> str | None:
    cc = shlex.split(sysconfig.get_config_var("CC") or "")
    return shutil.which(cc[0]) if cc else None


@pytest.mark.skipif(_compiler() is None, reason="no C compiler: the pure-Python build is used")
def test_the_extension_is_built_where_a_compiler_is() -> None:
    """With a C compiler the install compiles the reader: a silently broken build fails here
    (``NODESELECT_PURE_PYTHON=1`` only switches it off in ``_build``)."""
    from nodeselect.table import _cbuild  # noqa: PLC0415 - the import is what is tested

    assert callable(_cbuild.read_chunk)
    assert _cbuild.VERSION == _build.CBUILD_VERSION, "a stale build: re-run pip install -e ."


C_READER = _build._cbuild
needs_c = pytest.mark.skipif(C_READER is None, reason="the C reader is not built")

# Numbers as the table reads them, and the unusual ones the C reader leaves to Python (bool,
# numeric strings, ints beyond a double) or both readers refuse.
_numbers = st.one_of(
    st.none(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([MAX_MAGNITUDE, -MAX_MAGNITUDE, 2**53 + 1, 2**63, -0.0, 0.0, 0]),
    st.floats(allow_nan=True, allow_infinity=True, width=64).filter(lambda x: abs(x) < 1e30),
    st.sampled_from([math.nan, -math.nan, math.inf]),
)
_unusual = st.sampled_from([True, "5", 10**400, b"x", 1.5e300])
_text = st.one_of(
    st.none(), st.text(max_size=8), st.sampled_from(["", " ", "Ünïcødé GPU", "NVIDIA A100", "A100"])
)


def _maybe_unusual(odd: bool) -> st.SearchStrategy[Any]:
    return st.one_of(_numbers, _unusual) if odd else _numbers


def _seq(elements: st.SearchStrategy[Any], max_size: int = 3) -> st.SearchStrategy[Any]:
    """Lists, empty lists, ``None``, and now and then a tuple."""
    return st.none() | st.lists(elements, max_size=max_size) | st.lists(
        elements, max_size=max_size
    ).map(tuple)


@st.composite
def _nodes(draw: st.DrawFn, uuid: str, odd: bool) -> FleetNode:
    num = _maybe_unusual(odd)
    n_gpu = draw(st.integers(0, 3))
    gpus = [LeanGpu(draw(_text), draw(num), draw(num)) for _ in range(n_gpu)]
    tele = [
        LeanTelemetryGpu(
            draw(num), draw(_text), draw(st.none() | st.builds(LeanVram, free=num, total=num))
        )
        for _ in range(draw(st.sampled_from([0, n_gpu, n_gpu, n_gpu + 1])))
    ]
    os_ = st.none() | st.builds(LeanOS, architecture=_text, name=_text)
    cores = st.none() | st.integers(0, 2**20) | (st.just(True) if odd else st.nothing())
    lean = LeanNode(
        uuid=uuid,
        name=draw(_text),
        reputation=draw(num),
        cpus=draw(_seq(st.builds(LeanCpu, num_cores=cores))),
        gpus=gpus or draw(st.sampled_from([None, []])),
        hard_drives=draw(_seq(st.builds(LeanDisk, num, num))),
        rams=draw(_seq(st.builds(LeanRam, num, num))),
        latest_hardware_event=draw(
            st.none()
            | st.builds(
                LeanHardwareEvent,
                timestamp_ms=num,
                created_at=st.sampled_from([None, "2024-05-31T23:59:00Z", "x"]),
                metadata=st.none()
                | st.builds(
                    LeanMetadata,
                    gpu=st.none() | st.just(LeanGpuMetrics(gpus=tele)),
                    ram=st.none() | st.builds(LeanRamMetrics, free=num, total=num),
                ),
            )
        ),
        operating_system=draw(os_),
        current_software=draw(
            st.none()
            | st.builds(
                LeanSoftware,
                cached_image_tags=_seq(_text.filter(bool), 4),
                nvidia_driver=st.none() | st.builds(LeanDriver, version=_text),
                operating_system=os_,
            )
        ),
        operator_account_uuid=draw(_text),
        last_seen_at=draw(_text),
        suspended_at=draw(st.sampled_from([None, "", "2024-01-01T00:00:00Z"])),
        deleted_at=draw(st.sampled_from([None, "", "x"])),
    )
    facts = ProvedFacts(
        status=draw(st.sampled_from([None, "", "AVAILABLE"])),
        compliance_tags=frozenset(draw(st.lists(st.sampled_from(["GDPR", "EEA"])))),
        country=draw(st.sampled_from([None, "de", "ÜX"])),
    )
    return FleetNode(lean=lean, facts=facts)


def _fleets(odd: bool) -> st.SearchStrategy[list[FleetNode]]:
    return st.lists(st.integers(0, 10**6), max_size=10, unique=True).flatmap(
        lambda ids: st.tuples(*(_nodes(f"ü-{i}", odd) for i in ids)).map(list)
    )


def _build_with(reader: Any, nodes: list[FleetNode], chunk: int) -> NodeTable | type[Exception]:
    """The table, or the type of the error the build raised."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_build, "_cbuild", reader)
        mp.setattr(_build, "CHUNK", chunk)
        try:
            return NodeTable.from_nodes(nodes, now=NOW)
        except Exception as e:  # compared with the other reader's
            return type(e)


def _same_both_ways(nodes: list[FleetNode], chunk: int) -> None:
    got = _build_with(C_READER, nodes, chunk)
    want = _build_with(None, nodes, chunk)
    if isinstance(want, NodeTable):
        assert isinstance(got, NodeTable), got
        assert_identical(got, want)
        assert got.units == want.units
    else:
        assert got is want


@needs_c
@settings(max_examples=12, deadline=None)
@given(_fleets(odd=False), st.integers(1, 4))
def test_c_reader_equals_python_on_odd_values(fleet: list[FleetNode], chunk: int) -> None:
    """None everywhere, empty lists and tuples, ints up to 2**70 and at MAX_MAGNITUDE, NaN,
    -0.0 and non-ASCII names: the C reader's table is the Python reader's, bit for bit (or
    both refuse the fleet with the same error)."""
    _same_both_ways(fleet, chunk)


@needs_c
@settings(max_examples=10, deadline=None)
@given(_fleets(odd=True), st.integers(1, 4))
def test_unusual_values_fall_back_to_python(fleet: list[FleetNode], chunk: int) -> None:
    """Bools, numeric strings, ints beyond a double: the chunk is handed back to Python,
    which builds the same table as without the extension or raises the same error."""
    _same_both_ways(fleet, chunk)


@needs_c
@pytest.mark.slow  # ~13 s: many more examples of both
@settings(max_examples=150, deadline=None)
@given(st.booleans().flatmap(_fleets), st.integers(1, 12))
def test_c_reader_equals_python_on_many_odd_fleets(fleet: list[FleetNode], chunk: int) -> None:
    """As the two tests above, with many more examples."""
    _same_both_ways(fleet, chunk)


@needs_c
def test_a_fallback_chunk_mid_fleet_builds_the_same_table() -> None:
    """One node with a bool reputation sends its chunk to Python, the others stay in C; the
    image bits the C reader assigned before are kept (the Python reader assigns the same)."""
    nodes = [
        FleetNode(
            lean=LeanNode(
                uuid=f"n{i}",
                reputation=True if i == 5 else 0.5,
                current_software=LeanSoftware(cached_image_tags=[f"img-{i % 3}", f"i{i}"]),
            )
        )
        for i in range(9)
    ]
    _same_both_ways(nodes, 4)
    assert NodeTable.from_nodes(nodes, now=NOW).reputation[5] == 1.0


@needs_c
def test_the_reader_refuses_buffers_of_the_wrong_size() -> None:
    """A block or flags buffer not sized for the chunk is an error, never a write past it."""
    assert C_READER is not None
    nodes = [FleetNode(lean=LeanNode(uuid="a"))]
    with pytest.raises(ValueError, match="wrong size"):
        C_READER.read_chunk(nodes, np.empty((1, 11)), np.empty((2, 1), np.bool_), {}, None)
    with pytest.raises(ValueError, match="wrong size"):
        C_READER.read_chunk(nodes, np.empty((1, 12)), np.empty((2, 2), np.bool_), {}, None)
    with pytest.raises(BufferError):
        C_READER.read_chunk(nodes, np.empty((1, 12))[:, ::1].T.copy().T[:, :], b"xx", {}, None)


@needs_c
def test_reading_leaves_no_reference_behind() -> None:
    """Every reference the reader takes is released: the nodes' objects have the reference
    counts they had before three builds."""
    name, tag, gname = "nödé", "img", "NVIDIA A100"
    gpu = LeanGpu(name=gname, vram_gb_max=80)
    tele = LeanTelemetryGpu(load=0.5, name="A100", vram=LeanVram(free=1, total=2))
    lean = LeanNode(
        uuid="u",
        name=name,
        gpus=[gpu, gpu],
        rams=[LeanRam(1, 2), LeanRam(3, None)],
        hard_drives=[LeanDisk(1, 2), LeanDisk(3, 4)],
        current_software=LeanSoftware(cached_image_tags=[tag]),
        latest_hardware_event=LeanHardwareEvent(
            metadata=LeanMetadata(gpu=LeanGpuMetrics(gpus=[tele, tele]))
        ),
    )
    facts = ProvedFacts(status="AVAILABLE")
    nodes = [FleetNode(lean=lean, facts=facts), FleetNode(lean=LeanNode(uuid="v", reputation=True))]
    watched = (name, tag, gname, gpu, tele, lean, facts, lean.gpus, lean.rams, lean.uuid)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_build, "_cbuild", C_READER)
        NodeTable.from_nodes(nodes, now=NOW)  # caches (vocabularies, GPU models) settle
        gc.collect()  # cycles left by earlier tests would otherwise go at a random point
        before = [sys.getrefcount(o) for o in watched]
        for _ in range(3):
            NodeTable.from_nodes(nodes, now=NOW)
            NodeTable.from_nodes(nodes[:1], now=NOW)
        gc.collect()
        assert [sys.getrefcount(o) for o in watched] == before


class _Stop(BaseException):
    """Not an Exception: as KeyboardInterrupt, it must not be taken for an unusual value."""


@needs_c
def test_an_interrupt_in_a_callback_is_not_redone_by_python() -> None:
    """A BaseException raised while the C reader calls back (here: matching GPU names) goes
    through at once; only ``Exception`` makes the Python loop redo the chunk."""
    calls: list[tuple[object, object]] = []

    def interrupted(a: object, b: object) -> bool:
        calls.append((a, b))
        raise _Stop

    node = FleetNode(
        lean=LeanNode(
            uuid="a",
            gpus=[LeanGpu(name="NVIDIA A100")],
            latest_hardware_event=LeanHardwareEvent(
                metadata=LeanMetadata(gpu=LeanGpuMetrics(gpus=[LeanTelemetryGpu(name="A100")]))
            ),
        )
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_build, "_cbuild", C_READER)
        mp.setattr(_build, "gpu_names_agree", interrupted)
        with pytest.raises(_Stop):
            NodeTable.from_nodes([node], now=NOW)
    assert len(calls) == 1
