"""`nodeselect schema NAME` prints the shipped schema; `nodes --format json` output obeys its
schema (plan and place outputs are checked for every CLI test by tests/cli/conftest.py)."""

from __future__ import annotations

import contextlib
import io
import json

import jsonschema
import pytest

from nodeselect.cli import main
from nodeselect.cli._common import EXIT_OK
from nodeselect.schemas import SCHEMA_NAMES, schema


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_prints_the_shipped_schema(name: str) -> None:
    """The command's output is the schema of nodeselect.schemas, as JSON."""
    code, out = _run("schema", name)
    assert code == EXIT_OK
    assert json.loads(out) == schema(name)


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_nodes_json_output_obeys_the_nodes_schema(fmt: str) -> None:
    """`nodes --format json` (an array) and each jsonl line validate against `schema nodes`."""
    code, out = _run("nodes", "--demo", "--country", "DE", "--format", fmt)
    assert code == EXIT_OK
    docs = [json.loads(out)] if fmt == "json" else [json.loads(x) for x in out.splitlines()]
    assert docs
    validator = jsonschema.Draft202012Validator(schema("nodes"))
    for doc in docs:
        validator.validate(doc)


def test_plan_outputs_of_every_kind_obey_the_plan_schema() -> None:
    """A gang with --explain and --show-private, alternatives, flags and a job nothing fits:
    each --json document validates (the conftest checks it as it is printed)."""
    import nodeselect.cli.plan  # noqa: PLC0415

    assert nodeselect.cli.plan.write_json.__name__ == "checked"  # the conftest is active
    validator = jsonschema.Draft202012Validator(schema("plan"))
    runs = [
        ("plan", "examples/jobs/fallbacks.toml", "--demo", "--json", "--top", "2"),
        ("plan", "examples/jobs/gang-training.toml", "--demo", "--json", "--show-private"),
        ("plan", "--gpu", "H100:64", "--country", "DE", "--demo", "--json"),
        ("plan", "--gpus", "1", "--compliance", "GDPR", "--continent", "AF", "--demo", "--json"),
    ]
    docs = [json.loads(_run(*argv)[1]) for argv in runs]
    for doc in docs:
        validator.validate(doc)
    assert docs[-1]["pushdown"] is not None
    assert docs[1]["gang"] is not None
    assert "alternatives" in docs[0]["job"]
    _, out = _run("plan", "examples/jobs/llm-finetune.toml", "--demo", "--json", "--top", "1")
    uuid = json.loads(out)["ranked"][0]["uuid"]
    _, out = _run("plan", "examples/jobs/llm-finetune.toml", "--demo", "--json", "--explain", uuid)
    assert json.loads(out)["explain"] is not None
    validator.validate(json.loads(out))
