"""Overrides (``--set`` and the CLI's requirement flags) set keys of the job's dict before it is
validated: later ones win, the caller's data is never changed, and errors name the origin."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nodeselect.errors import JobSpecError
from nodeselect.jobs import (
    Override,
    apply_overrides,
    job_from_dict,
    load_jobs,
    parse_override,
    parse_value,
)

keys = st.lists(st.sampled_from(["gpu", "cpu", "a", "b-c", "x_1"]), min_size=1, max_size=3).map(
    ".".join
)
values = st.one_of(st.integers(), st.text(max_size=5), st.booleans())


@given(st.lists(st.tuples(keys, values), max_size=5))
def test_each_key_holds_the_last_value_set_and_the_input_is_untouched(
    sets: list[tuple[str, Any]],
) -> None:
    """After applying, each key set (and not shadowed by a later key inside or above it)
    holds its last value, and the caller's dict is unchanged."""
    data: dict[str, Any] = {"gpu": {"count": 1}, "name": "n"}
    before = copy.deepcopy(data)
    try:
        out, origins = apply_overrides(
            data, [Override(k, v, f"o{i}") for i, (k, v) in enumerate(sets)]
        )
    except JobSpecError:
        return  # a key ran through a value that is not a table
    assert data == before
    for i, (key, value) in enumerate(sets):
        later = [k for k, _ in sets[i + 1 :]]
        if any(k == key or k.startswith(key + ".") or key.startswith(k + ".") for k in later):
            continue
        node: Any = out
        for part in key.split("."):
            node = node[part]
        assert node == value
        assert origins[key] == f"o{i}"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2", 2),
        ("0.5", 0.5),
        ("true", True),
        ('["DE", "FR"]', ["DE", "FR"]),
        ('"1h"', "1h"),
        ("10m", "10m"),
        ("H100", "H100"),
        ("", ""),
    ],
)
def test_values_are_read_as_toml_else_kept_as_strings(text: str, value: object) -> None:
    """A TOML value is parsed; anything else is the string itself."""
    assert parse_value(text) == value


def test_parse_override_needs_key_equals_value() -> None:
    """`gpu.count=2` is parsed; a missing `=` or a malformed key is a JobSpecError."""
    assert parse_override("gpu.count=2") == Override("gpu.count", 2, "--set")
    for bad in ("gpu.count", "=2", "gpu..count=2", "gpu[0]=1"):
        with pytest.raises(JobSpecError, match="KEY=VALUE"):
            parse_override(bad)


def test_overrides_apply_to_every_job_of_a_file_and_name_their_origin(tmp_path: Any) -> None:
    """In a file of [[job]] tables each job gets the override; an error names the origin and
    the job's key."""
    path = tmp_path / "q.toml"
    path.write_text('[[job]]\nname = "a"\n[[job]]\nname = "b"\n', encoding="utf-8")
    jobs = load_jobs(path, overrides=[parse_override("priority=3")])
    assert [j.priority for j in jobs] == [3, 3]
    with pytest.raises(JobSpecError) as info:
        load_jobs(path, overrides=[Override("nodes", 0, "--nodes")])
    assert (info.value.source, info.value.key, info.value.line) == ("--nodes", "job[0].nodes", None)


def test_an_overridden_key_is_not_reported_at_the_files_line() -> None:
    """A key the file and an override both set is the override's: its error has no line."""
    with pytest.raises(JobSpecError) as info:
        job_from_dict({"gpu": {"count": 1}}, overrides=[Override("gpu.count", "x", "--gpus")])
    assert str(info.value).startswith("--gpus: gpu.count: expected an integer")


def test_a_section_override_reaches_every_alternative() -> None:
    """--gpus 2 sets gpu.count in the base and in each alternative that has a [gpu] of its
    own, so a command-line value wins over the whole file; other alternatives inherit it."""
    data = {
        "gpu": {"min_vram_free_gb": 10},
        "alternatives": [{"gpu": {"models": ["H100"], "count": 1}}, {"cpu": {"min_cores": 4}}],
    }
    job = job_from_dict(data, overrides=[Override("gpu.count", 2, "--gpus")])
    assert [c.gpu.count for c in job.choices()] == [2, 2]
    assert job.choices()[0].gpu.models == ("H100-80GB", "H100-94GB")
    assert data["alternatives"][0] == {"gpu": {"models": ["H100"], "count": 1}}  # untouched
    with pytest.raises(JobSpecError) as info:
        job_from_dict(data, overrides=[Override("gpu.min_vram_free_gb", "x", "--vram-free")])
    assert info.value.source == "--vram-free"
