"""One validator: a file, a dict and a Job built in Python obey the same rules with the same
messages (``check_job``, called by the loaders and by the engine's ``compile_job``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nodeselect.engine import compile_job
from nodeselect.errors import JobSpecError
from nodeselect.jobs import (
    CpuReq,
    GangReq,
    GpuReq,
    Job,
    PlacementReq,
    Preferences,
    SoftwareReq,
    check_job,
    job_from_dict,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)

#: (the job as a dict, the same job built in Python, the key both must name)
SAME_RULE: list[tuple[dict[str, Any], Job, str]] = [
    ({"cpu": {"min_cores": 2.5}}, Job(cpu=CpuReq(min_cores=2.5)), "cpu.min_cores"),  # type: ignore[arg-type]
    (
        {"gpu": {"count": 1, "min_vram_free_gb": float("nan")}},
        Job(gpu=GpuReq(count=1, min_vram_free_gb=float("nan"))),
        "gpu.min_vram_free_gb",
    ),
    (
        {"placement": {"min_reputation": 101}},
        Job(placement=PlacementReq(min_reputation=101)),
        "placement.min_reputation",
    ),
    (
        {"placement": {"countries": ["Germany"]}},
        Job(placement=PlacementReq(countries=("Germany",))),
        "placement.countries[0]",
    ),
    ({"software": {"arch": "sparc"}}, Job(software=SoftwareReq(arch="sparc")), "software.arch"),
    (
        {"software": {"min_driver": "0"}},
        Job(software=SoftwareReq(min_driver="0")),
        "software.min_driver",
    ),
    ({"gang": {"same": "planet"}}, Job(gang=GangReq(same="planet")), "gang.same"),  # type: ignore[arg-type]
    (
        {
            "preferences": {
                "weights": dict.fromkeys(("reputation", "freshness", "images", "fit", "idle"), 0)
            }
        },
        Job(
            preferences=Preferences(
                weights=dict.fromkeys(("reputation", "freshness", "images", "fit", "idle"), 0.0)
            )
        ),
        "preferences.weights",
    ),
    (
        {"placement": {"max_staleness": 0}},
        Job(placement=PlacementReq(max_staleness=timedelta(0))),
        "placement.max_staleness",
    ),
    (
        {"placement": {"only_nodes": ["a"], "exclude_nodes": ["a"]}},
        Job(placement=PlacementReq(only_nodes=("a",), exclude_nodes=("a",))),
        "placement.exclude_nodes",
    ),
    (
        {"gpu": {"count": 0, "max_load": 0.5}},
        Job(gpu=GpuReq(count=0, max_load=0.5)),
        "gpu.max_load",
    ),
]


@pytest.mark.parametrize(("data", "job", "key"), SAME_RULE)
def test_a_dict_and_a_python_job_break_the_same_rule_with_the_same_message(
    data: dict[str, Any], job: Job, key: str
) -> None:
    with pytest.raises(JobSpecError) as from_dict:
        job_from_dict(data)
    with pytest.raises(JobSpecError) as from_python:
        compile_job(job, NOW)
    assert from_dict.value.key == from_python.value.key == key
    assert (
        from_dict.value.args[0].split(": ", 2)[-1] == from_python.value.args[0].split(": ", 2)[-1]
    )


def test_compile_job_holds_the_canonical_job() -> None:
    """Spellings a file would normalise are normalised for a Python job too."""
    job = Job(
        gpu=GpuReq(models=("h100",), count=1),
        software=SoftwareReq(arch="ARM64", images_preferred=("a", "a")),
        placement=PlacementReq(statuses=("available",), countries=("de",)),
    )
    cj = compile_job(job, NOW)
    assert cj.job == check_job(job)
    assert cj.job.software.arch == "aarch64" == cj.arch
    assert cj.job.placement.statuses == ("AVAILABLE",)
    assert cj.job.placement.countries == ("DE",)
    assert cj.job.software.images_preferred == ("a",)
    assert cj.job.gpu.models
    assert all(m.startswith("H100") for m in cj.job.gpu.models)
    assert check_job(cj.job) == cj.job  # idempotent


def test_a_value_that_is_not_a_job_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"expected a nodeselect\.Job, got str"):
        check_job("job.toml")  # type: ignore[arg-type]


def test_a_survey_batch_of_jobs_stays_checked_while_its_tiles_rank() -> None:
    """check_job remembers a 4,000-job batch (the survey's default) whose canonical forms are
    new objects: a second check of each job returns the very object of the first (a worker
    ranks the batch once per shard it holds, and checks it only once)."""
    batch = [Job(name=f"j{i}", gpu=GpuReq(models=("h100",), count=1 + i % 4)) for i in range(4000)]
    first = [check_job(job) for job in batch]
    assert all(c is not j for c, j in zip(first, batch, strict=True))  # new canonical objects
    assert all(check_job(j) is c for j, c in zip(batch, first, strict=True))
