"""Ordered fallbacks in job files: [[alternatives]] merge their keys over the base job, are
checked by the one validator under ``alternatives[i].`` keys, and survive a dict round trip."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect.engine import compile_job
from nodeselect.errors import InputError, JobGPUNameError, JobSpecError
from nodeselect.jobs import (
    Alternative,
    CpuReq,
    DiskReq,
    GpuReq,
    Job,
    MemoryReq,
    check_job,
    job_from_dict,
    job_to_dict,
    load_job,
    load_jobs,
)
from strategies_fleet import jobs

THREE = """\
name = "train"

[gpu]
min_vram_free_gb = 20

[[alternatives]]
gpu = { models = ["H100"], count = 1 }

[[alternatives]]
gpu.models = ["A100-80GB"]
gpu.count = 2
cpu.min_cores = 16

[[alternatives]]
[alternatives.gpu]
models = ["RTX 4090"]
count = 4
"""


def _write(tmp_path: Path, text: str, name: str = "job.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_each_alternative_is_the_base_job_with_its_keys_merged_over(tmp_path: Path) -> None:
    """Keys an alternative leaves out are the base job's; the ones it sets replace them."""
    job = load_job(_write(tmp_path, THREE))
    choices = job.choices()
    assert [c.gpu.count for c in choices] == [1, 2, 4]
    assert [c.gpu.models for c in choices] == [
        ("H100-80GB", "H100-94GB"),
        ("A100-80GB",),
        ("RTX-4090",),
    ]
    assert all(c.gpu.min_vram_free_gb == 20 for c in choices)
    assert [c.cpu.min_cores for c in choices] == [None, 16, None]
    assert all(c.alternatives == () and c.name == "train" for c in choices)


def test_a_job_without_alternatives_is_its_only_choice() -> None:
    """choices() of a plain job is the job itself."""
    job = Job(gpu=GpuReq(count=1))
    assert job.choices() == (job,)
    assert job.choices()[0] is job


def test_an_error_in_an_alternative_names_its_key_and_line(tmp_path: Path) -> None:
    """A bad value in the 3rd alternative is reported as alternatives[2]... at its line."""
    path = _write(tmp_path, THREE.replace("count = 4", 'count = "four"'))
    with pytest.raises(JobSpecError) as info:
        load_job(path)
    assert info.value.key == "alternatives[2].gpu.count"
    assert info.value.line == 17
    assert "expected an integer >= 0" in str(info.value)


def test_an_unknown_model_in_an_alternative_is_a_gpu_name_error(tmp_path: Path) -> None:
    """GPU names in alternatives are resolved like the base job's."""
    path = _write(tmp_path, THREE.replace('"A100-80GB"', '"A100-81GB"'))
    with pytest.raises(JobGPUNameError) as info:
        load_job(path)
    assert info.value.key == "alternatives[1].gpu.models[0]"
    assert info.value.line == 10


def test_alternatives_in_a_file_of_jobs_are_keyed_per_job(tmp_path: Path) -> None:
    """[[job.alternatives]] belong to their [[job]]; errors name job[i].alternatives[k]."""
    text = """\
[[job]]
name = "a"

[[job]]
name = "b"
[[job.alternatives]]
gpu.count = 1
[[job.alternatives]]
gpu.count = -1
"""
    with pytest.raises(JobSpecError) as info:
        load_jobs(_write(tmp_path, text))
    assert info.value.key == "job[1].alternatives[1].gpu.count"
    assert info.value.line == 9
    good = load_jobs(_write(tmp_path, text.replace("-1", "2"), "ok.toml"))
    assert good[0].alternatives == ()
    assert [c.gpu.count for c in good[1].choices()] == [1, 2]


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"alternatives": {"gpu": {"count": 1}}}, "alternatives"),
        ({"alternatives": [{"placement": {"countries": ["DE"]}}]}, "alternatives[0].placement"),
        ({"alternatives": [{"gpu": {"count": 1, "vram": 3}}]}, "alternatives[0].gpu.vram"),
        (
            {"alternatives": [{}, {"gpu": {"models": ["H100"], "count": 0}}]},
            "alternatives[1].gpu.models",
        ),
        ({"alternatives": [{"memory": {"min_free_gb": -1}}]}, "alternatives[0].memory.min_free_gb"),
    ],
)
def test_dict_alternatives_are_validated_with_dotted_keys(
    data: dict[str, object], key: str
) -> None:
    """Shape and value problems in alternatives name the alternative's key."""
    with pytest.raises(JobSpecError) as info:
        job_from_dict(data)
    assert info.value.key == key


def test_python_alternatives_obey_the_same_rules_as_the_file() -> None:
    """check_job (and so compile_job's callers) refuse a bad Python alternative with the
    file's message and key."""
    py = Job(alternatives=(Alternative(), Alternative(cpu=CpuReq(min_cores=2.5))))  # type: ignore[arg-type]
    with pytest.raises(JobSpecError) as a:
        check_job(py)
    with pytest.raises(JobSpecError) as b:
        job_from_dict({"alternatives": [{}, {"cpu": {"min_cores": 2.5}}]})
    assert a.value.key == b.value.key == "alternatives[1].cpu.min_cores"
    assert str(a.value).split(": ", 1)[1] == str(b.value).split(": ", 1)[1]
    with pytest.raises(JobSpecError, match="alternatives\\[0\\]"):
        check_job(Job(alternatives=("gpu",)))  # type: ignore[arg-type]


def test_compile_job_refuses_a_job_with_alternatives() -> None:
    """A compiled job is one plain job: the error says to pass one of job.choices()."""
    job = job_from_dict({"alternatives": [{"gpu": {"count": 1}}]})
    with pytest.raises(InputError, match="choices"):
        compile_job(job)
    compile_job(job.choices()[0])


def test_a_job_with_alternatives_round_trips_through_a_dict(tmp_path: Path) -> None:
    """job_from_dict(job_to_dict(job)) == job, alternatives included."""
    job = load_job(_write(tmp_path, THREE))
    again = job_from_dict(job_to_dict(job), source="<again>")
    assert again == job
    assert again.choices() == job.choices()


@given(jobs(), st.lists(jobs(), min_size=1, max_size=3))
@settings(max_examples=40, deadline=None)
def test_alternatives_from_any_jobs_round_trip(base: Job, others: list[Job]) -> None:
    """A job whose base leaves gpu/cpu/memory/disk at their defaults (nothing to inherit) and
    whose alternatives are other valid jobs' sections survives job_to_dict/job_from_dict, and
    its choices are those jobs' sections on the base."""
    job = attrs.evolve(
        base,
        gpu=GpuReq(),
        cpu=CpuReq(),
        memory=MemoryReq(),
        disk=DiskReq(),
        alternatives=tuple(
            Alternative(gpu=o.gpu, cpu=o.cpu, memory=o.memory, disk=o.disk) for o in others
        ),
    )
    checked = check_job(job)
    assert job_from_dict(job_to_dict(checked)) == checked
    for choice, other in zip(checked.choices(), others, strict=True):
        assert choice.gpu == check_job(other).gpu
        assert (choice.name, choice.placement) == (checked.name, checked.placement)
