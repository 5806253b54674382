"""Explanations and input errors on small hand-made fleets whose right answers are known."""

from __future__ import annotations

from datetime import timedelta

import pytest

from nodeselect.documents._facts import ProvedFacts
from nodeselect.documents._lean import (
    LeanGpu,
    LeanGpuMetrics,
    LeanHardwareEvent,
    LeanMetadata,
    LeanNode,
    LeanTelemetryGpu,
    LeanVram,
)
from nodeselect.engine._explain import explain_node
from nodeselect.engine._rank import rank
from nodeselect.errors import GPUNameError, InputError, JobSpecError
from nodeselect.jobs._model import CpuReq, GpuReq, Job, PlacementReq, Preferences
from nodeselect.table._table import NodeTable
from strategies_fleet import NOW, FleetNode, iso

AVAILABLE = ProvedFacts(status="AVAILABLE")
NOW_MS = int(NOW.timestamp() * 1000)


def h100_node(
    uuid: str, free_gb: list[float], *, loads: list[float] | None = None, age_s: float = 10
) -> FleetNode:
    gpus = [
        LeanGpu(name="NVIDIA H100 80GB HBM3", vram_gb_available=f, vram_gb_max=80) for f in free_gb
    ]
    tele = [
        LeanTelemetryGpu(
            load=(loads or [0.1] * len(free_gb))[j],
            name="NVIDIA H100 80GB HBM3",
            vram=LeanVram(free=int(f * 1024), total=80 * 1024),
        )
        for j, f in enumerate(free_gb)
    ]
    ev = LeanHardwareEvent(
        timestamp_ms=NOW_MS - int(age_s * 1000),
        metadata=LeanMetadata(gpu=LeanGpuMetrics(gpus=tele)),
    )
    lean = LeanNode(
        uuid=uuid,
        name=uuid,
        reputation=80,
        gpus=gpus,
        latest_hardware_event=ev,
        last_seen_at=iso(NOW - timedelta(seconds=30)),
    )
    return FleetNode(lean, AVAILABLE)


def plain_node(uuid: str, n_gpus: int = 0) -> FleetNode:
    gpus = [LeanGpu(name="Tesla T4", vram_gb_available=16, vram_gb_max=16)] * n_gpus
    return FleetNode(LeanNode(uuid=uuid, name=uuid, reputation=50, gpus=gpus or None), AVAILABLE)


def table(*nodes: FleetNode) -> NodeTable:
    return NodeTable.from_nodes(list(nodes), now=NOW)


def test_the_gpu_limit_that_cuts_the_count_is_blamed() -> None:
    """4 H100 of which 2 have 60 GB free fail a 4-GPU, 60 GB job on gpu-vram-free, not gpu-model."""
    t = table(h100_node("a", [70, 70, 10, 10]), plain_node("b", 4))
    job = Job(gpu=GpuReq(models=("H100",), count=4, min_vram_free_gb=60))
    r = rank(job, t, now=NOW)
    assert r.feasible == 0
    assert dict(r.explanation.rejected) == {
        "status": 0,
        "suspended": 0,
        "deleted": 0,
        "gpu-count": 0,
        "gpu-model": 1,
        "gpu-vram-free": 1,
    }
    assert r.explanation.summary() == "0/2 nodes fit: 1 gpu-model, 1 gpu-vram-free"
    ne = explain_node(job, t, "a", now=NOW)
    assert [f.constraint for f in ne.failures] == ["gpu-vram-free"]
    assert [g.fails for g in ne.gpus] == [(), (), ("gpu-vram-free",), ("gpu-vram-free",)]


def test_nearest_miss_gives_the_relaxed_threshold() -> None:
    """Nodes failing only free VRAM are admitted by lowering the limit to their count-th GPU."""
    t = table(h100_node("a", [70, 48, 30]), h100_node("b", [52, 50]), h100_node("c", [80, 80]))
    job = Job(gpu=GpuReq(models=("H100",), count=2, min_vram_free_gb=60))
    ex = rank(job, t, now=NOW).explanation
    (miss,) = [m for m in ex.nearest_misses if m.constraint == "gpu-vram-free"]
    assert (miss.only_this, miss.relaxed_threshold, miss.admits) == (2, 48.0, 2)
    assert "gpu-vram-free -> 48 admits 2 more nodes" in str(miss)


def test_every_failing_constraint_of_a_node_is_listed_with_values() -> None:
    """explain_node lists all failures (not only the first) with the value and the requirement."""
    bad = FleetNode(
        LeanNode(uuid="x", name="x", reputation=10, suspended_at="2024-01-01T00:00:00Z"),
        ProvedFacts(),
    )
    t = table(bad)
    job = Job(cpu=CpuReq(min_cores=8), placement=PlacementReq(min_reputation=60))
    ne = explain_node(job, t, "x", now=NOW)
    assert [(f.constraint, f.value) for f in ne.failures] == [
        ("status", "unknown"),
        ("suspended", "suspended"),
        ("reputation", "10"),
        ("cpu-cores", "0 cores"),
    ]
    assert "fails status" in str(ne)


def test_a_cpu_only_job_prefers_nodes_without_gpus() -> None:
    """With equal everything else, the GPU-less node ranks first for a CPU-only job."""
    t = table(plain_node("gpu8", 8), plain_node("none", 0), plain_node("gpu1", 1))
    r = rank(Job(preferences=Preferences(weights={"fit": 5.0})), t, now=NOW)
    assert [n.uuid for n in r.top] == ["none", "gpu1", "gpu8"]


def test_pack_fills_the_tightest_node_and_spread_the_emptiest() -> None:
    """Pack ranks the node the job fills exactly first; spread the one with most left over."""
    t = table(h100_node("two", [70, 70]), h100_node("eight", [70] * 8))
    job = Job(gpu=GpuReq(models=("H100",), count=2), preferences=Preferences(weights={"fit": 10.0}))
    assert rank(job, t, now=NOW).top[0].uuid == "two"
    spread = Job(gpu=job.gpu, preferences=Preferences(strategy="spread", weights={"fit": 10.0}))
    assert rank(spread, t, now=NOW).top[0].uuid == "eight"


def test_pack_uses_the_gpus_with_least_free_vram_first() -> None:
    """gpu_indices lists matching GPUs best fit first (pack: least free VRAM that still passes)."""
    t = table(h100_node("a", [80, 65, 10, 70]))
    job = Job(gpu=GpuReq(models=("H100",), count=2, min_vram_free_gb=60))
    assert rank(job, t, now=NOW).top[0].gpu_indices == (1, 3)


def test_stale_telemetry_gives_no_load_so_max_load_fails() -> None:
    """Telemetry older than the fresh window proves no load: a max_load job rejects the node."""
    t = table(h100_node("old", [70], age_s=3600), h100_node("new", [70]))
    job = Job(gpu=GpuReq(count=1, max_load=0.5))
    r = rank(job, t, now=NOW)
    assert [n.uuid for n in r.top] == ["new"]
    assert dict(r.explanation.rejected)["gpu-load"] == 1


@pytest.mark.parametrize(
    ("job", "error", "match"),
    [
        (Job(gpu=GpuReq(models=("H1000",), count=1)), GPUNameError, "H1000"),
        (Job(gpu=GpuReq(count=0, min_vram_free_gb=10)), JobSpecError, "impossible requirement"),
        (Job(gpu=GpuReq(count=-1)), JobSpecError, "gpu.count"),
        (Job(cpu=CpuReq(min_cores=-4)), JobSpecError, "cpu.min_cores"),
        (Job(gpu=GpuReq(count=1, max_load=1.5)), JobSpecError, "gpu.max_load"),
        (Job(placement=PlacementReq(statuses=("READY",))), JobSpecError, "accepted: AVAILABLE"),
        (Job(preferences=Preferences(weights={"speed": 1.0})), JobSpecError, "unknown key .speed."),
        (
            Job(
                preferences=Preferences(
                    weights=dict.fromkeys(("reputation", "freshness", "images", "fit", "idle"), 0.0)
                )
            ),
            JobSpecError,
            "every weight is 0",
        ),
    ],
)
def test_impossible_or_unknown_requirements_are_input_errors(
    job: Job, error: type[Exception], match: str
) -> None:
    """A bad job raises an InputError naming the key, never an empty result."""
    with pytest.raises(error, match=match) as info:
        rank(job, table(plain_node("a")), now=NOW)
    assert isinstance(info.value, InputError)


def test_explaining_an_unknown_node_is_an_input_error() -> None:
    """explain_node names a node that is not in the table."""
    with pytest.raises(InputError, match="nope"):
        explain_node(Job(), table(plain_node("a")), "nope", now=NOW)


def test_nearest_misses_survive_gpu_less_nodes_at_the_end_of_the_fleet() -> None:
    """A fleet whose last candidate nodes have no GPUs still gets its GPU nearest misses."""
    t = table(h100_node("a", [70, 70, 50, 50]), plain_node("y"), plain_node("z"))
    job = Job(gpu=GpuReq(models=("H100",), count=4, min_vram_free_gb=60))
    misses = {m.constraint: m for m in rank(job, t, now=NOW).explanation.nearest_misses}
    assert misses["gpu-vram-free"].only_this == 1
    assert misses["gpu-vram-free"].relaxed_threshold == pytest.approx(50)
