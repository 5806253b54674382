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
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_build_dialects import assert_identical

from nodeselect.documents import format_timestamp, parse_timestamp
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
from nodeselect.errors import DocumentError
from nodeselect.table import _build, _kernels
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
    assert _cbuild.VERSION == _kernels.CBUILD_VERSION, "a stale build: re-run pip install -e ."


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
    return (
        st.none()
        | st.lists(elements, max_size=max_size)
        | st.lists(elements, max_size=max_size).map(tuple)
    )


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


class _SlottedNode:
    """A node of the caller's own class: slots, one of them never set (a NULL slot)."""

    __slots__ = ("facts", "lean", "unset")

    def __init__(self, lean: Any, facts: Any) -> None:
        self.lean = lean
        self.facts = facts


class _DictNode:
    """A node whose attributes live in an instance ``__dict__`` (no slots to walk)."""

    def __init__(self, lean: Any, facts: Any) -> None:
        self.lean = lean
        self.facts = facts


@needs_c
@settings(max_examples=6, deadline=None)
@given(_fleets(odd=False).filter(bool), st.integers(12, 32))
def test_the_read_ahead_walks_any_node_objects(fleet: list[FleetNode], chunk: int) -> None:
    """The C reader prefetches the objects of the nodes up to 6 ahead, walking their object
    slots three levels deep. Fleets long enough for every level, of the library's nodes,
    slotted nodes with an unset slot, ``__dict__`` nodes, and a node with a list of hundreds
    of CPUs: the same table as the Python reader's."""
    many = LeanCpu(num_cores=2)
    nodes: list[Any] = []
    for i in range(24):  # the drawn nodes again and again, each with a uuid of its own
        n = fleet[i % len(fleet)]
        n = FleetNode(lean=msgspec.structs.replace(n.lean, uuid=f"r-{i}"), facts=n.facts)
        if i == 3:
            n = FleetNode(lean=msgspec.structs.replace(n.lean, cpus=[many] * 300), facts=n.facts)
        nodes.append((n, _SlottedNode(n.lean, n.facts), _DictNode(n.lean, n.facts))[i % 3])
    _same_both_ways(nodes, chunk)


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


def _read(nodes: list[Any], block: Any, flags: Any, ints: Any = None, times: Any = None) -> Any:
    """``read_chunk`` with empty vocabularies and the given buffers (right-sized by default)."""
    assert C_READER is not None
    n = len(nodes)
    ints = np.empty((7, n), np.int64) if ints is None else ints
    times = np.empty((2, n)) if times is None else times
    luts: tuple[dict[Any, int], ...] = ({}, {}, {}, {})
    return C_READER.read_chunk(
        nodes, block, flags, {}, None, luts, {"": 0, None: 0}, {}, 1, {}, {}, set(), ints, times
    )


@needs_c
def test_the_reader_refuses_buffers_of_the_wrong_size() -> None:
    """A buffer not sized for the chunk is an error, never a write past it."""
    nodes = [FleetNode(lean=LeanNode(uuid="a"))]
    block, flags = np.empty((1, 12)), np.empty((2, 1), np.bool_)
    with pytest.raises(ValueError, match="wrong size"):
        _read(nodes, np.empty((1, 11)), flags)
    with pytest.raises(ValueError, match="wrong size"):
        _read(nodes, block, np.empty((2, 2), np.bool_))
    with pytest.raises(ValueError, match="wrong size"):
        _read(nodes, block, flags, times=np.empty((2, 2)))
    with pytest.raises(ValueError, match="int32/int64"):
        _read(nodes, block, flags, ints=np.empty((6, 1), np.int64))
    with pytest.raises(ValueError, match="wrong size"):
        _read(nodes, block, flags, ints=np.empty((7, 1), np.int32))
    with pytest.raises(BufferError):
        _read(nodes, block, b"xx")
    _read(nodes, block, flags)  # right-sized: reads


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


def _epoch_truth(s: str | None) -> float:
    """What the table holds for a timestamp: parse_timestamp(s).timestamp(), NaN if none."""
    try:
        return math.nan if s is None else parse_timestamp(s).timestamp()
    except DocumentError:
        return math.nan


_timestampish = st.one_of(
    st.none(),
    st.datetimes(timezones=st.just(UTC)).map(format_timestamp),
    st.builds(
        lambda dt, frac, off: dt.strftime("%Y-%m-%dT%H:%M:%S") + frac + off,
        st.datetimes(min_value=datetime(2, 1, 1)),
        st.sampled_from(["", ".", ".5", ".123456", ".1234567891", ".1234567890123456789012"]),
        st.sampled_from(["Z", "z", "+05:30", "", " Z"]),
    ),
    st.sampled_from(
        [
            "2024-02-29T12:00:00Z",  # leap day
            "2023-02-29T12:00:00Z",  # no such day
            "2100-02-29T00:00:00Z",  # no leap day in 2100
            "2000-02-29T00:00:00Z",
            "0001-01-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-05-31T24:00:00Z",
            "2024-05-31T23:60:00Z",
            "2024-05-31T23:59:60Z",
            "2255-06-05T23:47:34.740992Z",  # the last instant below 2**53 microseconds
            "2255-06-05T23:47:34.740993Z",
            "1684-07-28T00:12:25.259008Z",
            "1684-07-28T00:12:25.259007Z",
            "9999-12-31T23:59:59.999999Z",
            "2024-05-31 23:59:59Z",
            "2024-05-31T23:59:59.Z",
            "2024-05-31T23:59:5Z",
            "\uff12\uff10\uff12\uff14-05-31T23:59:59Z",  # full-width digits
            "2024-05-31T23:59:59Z\x00",
            "2024-05-31T23:59:59\x00Z",
            "",
        ]
    ),
)


@needs_c
@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_timestampish, _timestampish), max_size=12), st.integers(1, 5))
def test_c_parsed_timestamps_equal_the_scalar_parser(
    stamps: list[tuple[str | None, str | None]], chunk: int
) -> None:
    """The timestamps the C reader parses itself (last_seen_at, and created_at where the
    event has no timestamp_ms) hold what ``parse_timestamp(s).timestamp()`` gives, NaN where it
    refuses: leap days, the ends of the exactly representable range, long fractions, odd
    separators, NULs and non-ASCII digits; and the Python reader builds the same table."""
    nodes = [
        FleetNode(
            lean=LeanNode(
                uuid=f"t{i}",
                last_seen_at=seen,
                latest_hardware_event=LeanHardwareEvent(created_at=created),
            )
        )
        for i, (seen, created) in enumerate(stamps)
    ]
    table = _build_with(C_READER, nodes, chunk)
    assert isinstance(table, NodeTable), table
    for got, want in (
        (table.last_seen_epoch_s, [_epoch_truth(s) for s, _ in stamps]),
        (table.telemetry_epoch_s, [_epoch_truth(c) for _, c in stamps]),
    ):
        assert [float(v).hex() for v in got] == [float(v).hex() for v in want]
    _same_both_ways(nodes, chunk)
