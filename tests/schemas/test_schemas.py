"""The shipped JSON Schemas: valid, versioned, in step with the loader, and true of real job
files and outputs (every `plan --json` and `place --json` document the CLI tests print is also
validated, by tests/cli/conftest.py)."""

from __future__ import annotations

import json
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings

import nodeselect
from nodeselect.errors import InputError
from nodeselect.jobs import job_to_dict
from nodeselect.placement import PLAN_SCHEMA
from nodeselect.schemas import SCHEMA_NAMES, schema
from strategies_fleet import jobs

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "jobs").glob("*.toml"))


def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema(name))


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_each_schema_is_valid_and_versioned(name: str) -> None:
    """Each schema is a valid draft 2020-12 schema whose $id ends in its version."""
    doc = schema(name)
    jsonschema.Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"].startswith("urn:nodeselect:")
    assert doc["$id"].rsplit(":", 1)[1].isdigit()


def test_output_schema_versions_match_the_documents_schema_values() -> None:
    """The $id version of plan and place is the one their documents carry in `schema`."""
    from nodeselect.cli.plan import REPORT_SCHEMA  # noqa: PLC0415

    for name, value in (("plan", REPORT_SCHEMA), ("place", PLAN_SCHEMA)):
        doc = schema(name)
        assert doc["properties"]["schema"] == {"const": value}
        kind, ver = value.removeprefix("nodeselect.").split("/")
        assert doc["$id"] == f"urn:nodeselect:{kind}:{ver}"


def test_an_unknown_schema_name_is_an_input_error() -> None:
    """schema('x') names the accepted schemas."""
    with pytest.raises(InputError, match="accepted: job, plan, place, nodes"):
        schema("x")


def test_the_job_schema_knows_exactly_the_loaders_keys() -> None:
    """Top-level keys and each section's keys are the loader's (docs/jobs.md)."""
    from nodeselect.jobs._file import _SECTIONS, _TOP  # noqa: PLC0415

    job = schema("job")["$defs"]["job"]
    assert set(job["properties"]) == set(_TOP)
    defs = schema("job")["$defs"]
    for section, keys in _SECTIONS.items():
        ref = job["properties"][section].get("$ref")
        props = defs[ref.rsplit("/", 1)[1]] if ref else job["properties"][section]
        assert set(props["properties"]) == set(keys), section
        assert props["additionalProperties"] is False


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_job_file_is_valid(path: Path) -> None:
    """The shipped job files (TOML parsed to data) satisfy the job schema."""
    _validator("job").validate(tomllib.loads(path.read_text()))


@given(jobs())
@settings(max_examples=60, deadline=None)
def test_every_job_as_a_dict_is_valid(job: nodeselect.Job) -> None:
    """job_to_dict of any valid job satisfies the job schema."""
    _validator("job").validate(json.loads(json.dumps(job_to_dict(job))))


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"gpu": {"cout": 1}}, "$.gpu"),
        ({"nodes": 0}, "$.nodes"),
        ({"alternatives": [{"placement": {}}]}, "$.alternatives[0]"),
        ({"preferences": {"strategy": "random"}}, "$.preferences.strategy"),
    ],
)
def test_the_job_schema_refuses_what_the_loader_refuses(data: dict[str, Any], path: str) -> None:
    """Unknown keys, out-of-range numbers and wrong enums fail the schema too."""
    errors = list(_validator("job").iter_errors(data))
    assert errors
    assert any(path in (e.json_path, *(c.json_path for c in e.context)) for e in errors)


def test_version_is_the_package_metadata_and_the_license_is_mit() -> None:
    """nodeselect.__version__ comes from the metadata; LICENSE is the MIT text pyproject says."""
    assert nodeselect.__version__ == version("nodeselect")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_the_user_agent_carries_the_version() -> None:
    """Requests say which nodeselect sent them."""
    from nodeselect.fetch._client import _user_agent  # noqa: PLC0415

    assert f"nodeselect/{nodeselect.__version__}" == _user_agent()
