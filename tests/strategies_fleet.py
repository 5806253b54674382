"""Hypothesis strategies for fleets (LeanNode + ProvedFacts) and Jobs, shared by engine tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from hypothesis import strategies as st

from nodeselect.documents._facts import ProvedFacts
from nodeselect.documents._lean import (
    LeanCpu,
    LeanDisk,
    LeanDriver,
    LeanGpu,
    LeanGpuMetrics,
    LeanHardware,
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
from nodeselect.documents._lean import LeanCpuMetrics as _LeanCpuMetrics
from nodeselect.jobs._model import (
    CpuReq,
    DiskReq,
    GpuReq,
    Job,
    MemoryReq,
    PlacementReq,
    Preferences,
    SoftwareReq,
)

__all__ = ["IMAGES", "NOW", "FleetNode", "fleets", "iso", "jobs", "lean_nodes"]

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
IMAGES = ("pytorch/pytorch:latest", "nvcr.io/nvidia/pytorch:24.08-py3", "ubuntu:22.04", "vllm:0.5")
GPU_SPELLINGS = (
    ("NVIDIA GeForce RTX 4090", 24),
    ("NVIDIA A100-SXM4-80GB", 80),
    ("NVIDIA A100-PCIE", 40),
    ("NVIDIA H100 80GB HBM3", 80),
    ("NVIDIA L4", 24),
    ("NVIDIA L40S", 48),
    ("Tesla T4", 16),
    ("Mystery Accelerator 9000", 12),
)
OPERATORS = ("op-a", "op-b", "op-c")
NAMES = ("alpha", "beta", "gamma", "delta")


@attrs.frozen
class FleetNode:
    """A fetched node as the table reads it."""

    lean: LeanNode
    facts: ProvedFacts = attrs.Factory(ProvedFacts)


def iso(dt: datetime) -> str:
    """An API-style timestamp."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{dt.microsecond:06d}Z" if dt.microsecond else "Z")


small_floats = st.floats(0, 100, allow_nan=False, allow_infinity=False)
ages_s = st.one_of(st.integers(-30, 7200), st.floats(0, 7200, allow_nan=False))


@st.composite
def lean_nodes(draw: st.DrawFn, uuid: str) -> FleetNode:
    """One node document with the fields scoring reads, nulled and omitted as real fleets do."""
    n_gpu = draw(st.sampled_from([0, 0, 1, 1, 2, 3, 4]))
    gpus = []
    tele = []
    for _ in range(n_gpu):
        name, vram = draw(st.sampled_from(GPU_SPELLINGS))
        vmax = draw(st.sampled_from([vram, vram, None]))
        avail = draw(st.one_of(st.none(), st.floats(0, vram, allow_nan=False)))
        gpus.append(
            LeanGpu(
                name=draw(st.sampled_from([name, name, None])),
                vram_gb_available=avail,
                vram_gb_max=vmax,
            )
        )
        tele.append(
            LeanTelemetryGpu(
                load=draw(st.one_of(st.none(), st.floats(0, 1, allow_nan=False))),
                name=draw(st.sampled_from([name, None, "Other GPU"]))
                if draw(st.booleans())
                else name,
                vram=draw(
                    st.one_of(
                        st.none(),
                        st.builds(
                            LeanVram,
                            free=st.one_of(st.none(), st.integers(0, vram * 1024)),
                            total=st.just(vram * 1024),
                        ),
                    )
                ),
            )
        )
    if draw(st.integers(0, 9)) == 0 and tele:
        tele = tele[:-1]  # counts disagree: telemetry is not matched
    event = None
    if draw(st.integers(0, 4)) > 0:
        t_age = draw(ages_s)
        use_ms = draw(st.booleans())
        ts = NOW - timedelta(seconds=t_age)
        event = LeanHardwareEvent(
            timestamp_ms=int(ts.timestamp() * 1000) if use_ms else None,
            created_at=iso(ts.replace(microsecond=0)),
            metadata=LeanMetadata(
                cpu=_LeanCpuMetrics(average=draw(st.one_of(st.none(), st.floats(0, 1)))),
                gpu=LeanGpuMetrics(gpus=tele) if n_gpu and draw(st.integers(0, 5)) else None,
                ram=draw(
                    st.one_of(
                        st.none(),
                        st.builds(
                            LeanRamMetrics,
                            free=st.integers(0, 256 * 2**30),
                            total=st.just(256 * 2**30),
                        ),
                    )
                ),
            ),
        )
    seen = draw(st.one_of(st.none(), ages_s.map(lambda a: iso(NOW - timedelta(seconds=a)))))
    arch = draw(st.sampled_from(["x86_64", "amd64", "aarch64", None]))
    software = LeanSoftware(
        cached_image_tags=draw(
            st.one_of(st.none(), st.lists(st.sampled_from(IMAGES), unique=True))
        ),
        nvidia_driver=LeanDriver(
            version=draw(st.sampled_from(["535.104.05", "470.1", "550", None, "n/a"]))
        ),
        operating_system=LeanOS(architecture=arch, name="Ubuntu"),
    )
    node = LeanNode(
        uuid=uuid,
        name=draw(st.sampled_from((*NAMES, None))),
        reputation=draw(st.one_of(st.none(), small_floats, st.integers(0, 100))),
        last_seen_at=seen,
        cpus=draw(
            st.one_of(
                st.none(),
                st.lists(
                    st.builds(LeanCpu, num_cores=st.one_of(st.none(), st.integers(0, 64))),
                    max_size=2,
                ),
            )
        ),
        gpus=gpus or draw(st.sampled_from([None, []])),
        hard_drives=draw(
            st.lists(
                st.builds(
                    LeanDisk,
                    available_capacity_gb=st.one_of(st.none(), st.floats(0, 2000, allow_nan=False)),
                    max_capacity_gb=st.just(2000),
                ),
                max_size=2,
            )
        ),
        rams=draw(
            st.lists(
                st.builds(
                    LeanRam,
                    memory_gb_available=st.one_of(st.none(), st.floats(0, 128, allow_nan=False)),
                    memory_gb_max=st.just(128),
                ),
                max_size=2,
            )
        ),
        latest_hardware_event=event,
        current_hardware=LeanHardware(operating_system=LeanOS(architecture=arch))
        if draw(st.booleans())
        else None,
        current_software=software if draw(st.integers(0, 5)) else None,
        operator_account_uuid=draw(st.sampled_from((*OPERATORS, None))),
        suspended_at=draw(st.sampled_from([None] * 7 + ["2024-01-01T00:00:00Z"])),
        deleted_at=draw(st.sampled_from([None] * 9 + ["2024-01-01T00:00:00Z"])),
    )
    facts = ProvedFacts(
        status=draw(st.sampled_from(["AVAILABLE", "AVAILABLE", "OFFLINE", None])),
        compliance_tags=frozenset(draw(st.lists(st.sampled_from(["GDPR", "EEA"]), unique=True))),
        continent=draw(st.sampled_from(["EU", "NA", None])),
        country=draw(st.sampled_from(["DE", "US", "fr", None])),
        subdivision=draw(st.sampled_from(["DE-BY", "US-CA", None])),
    )
    return FleetNode(lean=node, facts=facts)


@st.composite
def fleets(draw: st.DrawFn, min_size: int = 0, max_size: int = 16) -> list[FleetNode]:
    """A fleet of distinct-uuid nodes."""
    ids = draw(st.lists(st.uuids(), min_size=min_size, max_size=max_size, unique=True))
    return [draw(lean_nodes(str(u))) for u in ids]


def opt(strategy: st.SearchStrategy[Any], default: Any = None) -> st.SearchStrategy[Any]:
    """``default`` (constraint off) 70 % of the time, else a value from ``strategy``."""
    return st.integers(0, 9).flatmap(lambda r: st.just(default) if r < 7 else strategy)


@st.composite
def jobs(draw: st.DrawFn) -> Job:
    """A valid job exercising every constraint and preference."""
    count = draw(st.sampled_from([0, 0, 1, 1, 1, 2, 3]))
    gpu = GpuReq()
    if count:
        gpu = GpuReq(
            models=draw(
                opt(st.sampled_from([("H100",), ("A100-80GB", "RTX-4090"), ("L4",), ("A100",)]), ())
            ),
            count=count,
            min_vram_free_gb=draw(opt(st.floats(0, 80, allow_nan=False))),
            min_vram_total_gb=draw(opt(st.sampled_from([16.0, 24.0, 40.0, 80.0]))),
            max_load=draw(opt(st.floats(0, 1, allow_nan=False))),
        )
    weights = draw(
        st.dictionaries(
            st.sampled_from(["reputation", "freshness", "images", "fit", "idle"]),
            st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0]),
        )
    )
    if weights and all(v == 0 for v in weights.values()) and len(weights) == 5:
        weights["fit"] = 1.0
    excluded = draw(opt(st.sampled_from(NAMES).map(lambda n: (n,)), ()))
    only = draw(opt(st.just(("alpha", "beta", "gamma")), ()))
    return Job(
        name="j",
        gpu=gpu,
        cpu=CpuReq(min_cores=draw(opt(st.integers(0, 64)))),
        memory=MemoryReq(min_free_gb=draw(opt(st.floats(0, 200, allow_nan=False)))),
        disk=DiskReq(min_free_gb=draw(opt(st.floats(0, 2000, allow_nan=False)))),
        software=SoftwareReq(
            images_required=draw(opt(st.sampled_from(IMAGES).map(lambda i: (i,)), ())),
            images_preferred=tuple(
                draw(st.lists(st.sampled_from(IMAGES), unique=True, max_size=3))
            ),
            min_driver=draw(opt(st.sampled_from(["535", "470.1", "550.0.1"]))),
            arch=draw(opt(st.sampled_from(["x86_64", "arm64", "amd64"]))),
        ),
        placement=PlacementReq(
            statuses=draw(opt(st.sampled_from([("AVAILABLE",), ("AVAILABLE", "OFFLINE")]), ())),
            continents=draw(opt(st.sampled_from([("EU",), ("EU", "NA")]), ())),
            countries=draw(opt(st.sampled_from([("DE",), ("FR", "US")]), ())),
            subdivisions=draw(opt(st.just(("US-CA",)), ())),
            compliance=draw(opt(st.sampled_from([("GDPR",), ("GDPR", "EEA")]), ())),
            min_reputation=draw(opt(small_floats)),
            max_staleness=draw(opt(st.integers(1, 7200).map(lambda s: timedelta(seconds=s)))),
            exclude_operators=draw(opt(st.sampled_from(OPERATORS).map(lambda o: (o,)), ())),
            # a node in both lists is a JobSpecError (check_job), so they never overlap
            exclude_nodes=tuple(n for n in excluded if n not in only),
            only_nodes=only,
            allow_suspended=draw(st.booleans()),
            allow_deleted=draw(st.booleans()),
        ),
        preferences=Preferences(
            strategy=draw(st.sampled_from(["pack", "spread"])), weights=weights
        ),
    )


@st.composite
def sim_dialects(draw: st.DrawFn, *, bulk: bool = True) -> Any:
    """Any simulator :class:`~nodeselect.sim.Dialect`: every field drawn independently (the
    named ``DIALECTS`` are single points of this space). ``bulk=False`` leaves bursts out."""
    from nodeselect.sim import BulkRegistration, Dialect  # noqa: PLC0415

    return Dialect(
        time_precision=draw(st.sampled_from(["s", "ms", "us"])),
        written_precision=draw(st.sampled_from([None, "s", "ms", "us"])),
        time_suffix=draw(st.sampled_from(["Z", "+00:00"])),
        strict_ranges=draw(st.booleans()),
        ram_unit=draw(st.sampled_from(["bytes", "MiB", "GB"])),
        vram_unit=draw(st.sampled_from(["bytes", "MiB", "GB"])),
        load_unit=draw(st.sampled_from(["fraction", "percent"])),
        numeric_strings=draw(st.sampled_from([0.0, 0.1, 0.5, 1.0])),
        bulk=draw(
            st.one_of(
                st.none(),
                st.builds(BulkRegistration, nodes=st.integers(0, 200), seconds=st.integers(0, 3)),
            )
        )
        if bulk
        else None,
    )
