"""Jobs without a file: requirement flags, `-` on stdin and `--set` build the same job as a
file would, through the same validator, and their errors name the flag."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from nodeselect.cli import main
from nodeselect.cli._common import EXIT_INPUT, EXIT_NO_FIT, EXIT_OK

ROOT = Path(__file__).resolve().parents[2]
LLM = ROOT / "examples" / "jobs" / "llm-finetune.toml"
QUEUE = ROOT / "examples" / "jobs" / "queue.toml"

JOB_TOML = """\
[gpu]
models = ["H100"]
count = 2
min_vram_free_gb = 40

[placement]
continents = ["EU"]
"""
FLAGS = ("--gpu", "H100:2", "--vram-free", "40", "--continent", "EU")


def _run(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    old = sys.stdin
    sys.stdin = io.StringIO(stdin or "")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
    finally:
        sys.stdin = old
    assert "Traceback" not in out.getvalue() + err.getvalue()
    return code, out.getvalue(), err.getvalue()


def _essence(doc: dict[str, Any]) -> tuple[object, ...]:
    """What the job decides: the counts, the rejections and the pushed-down filters."""
    return (doc["evaluated"], doc["feasible"], doc["rejected"], doc["pushed_down"], doc["local"])


@pytest.fixture(scope="module")
def from_file(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("flags") / "job.toml"
    path.write_text(JOB_TOML, encoding="utf-8")
    code, out, _ = _run("plan", str(path), "--demo", "--json", "--top", "3")
    assert code in (EXIT_OK, EXIT_NO_FIT)
    doc: dict[str, Any] = json.loads(out)
    return doc


def test_flags_build_the_same_job_as_the_file(from_file: dict[str, Any]) -> None:
    """`plan --gpu H100:2 --vram-free 40 --continent EU` plans like the equivalent file."""
    code, out, _ = _run("plan", *FLAGS, "--demo", "--json", "--top", "3")
    doc = json.loads(out)
    assert code in (EXIT_OK, EXIT_NO_FIT)
    assert _essence(doc) == _essence(from_file)
    assert doc["job"]["file"] == "<flags>"
    assert doc["job"]["name"] == "job"


@pytest.mark.parametrize(
    "text",
    [
        JOB_TOML,
        json.dumps(
            {
                "gpu": {"models": ["H100"], "count": 2, "min_vram_free_gb": 40},
                "placement": {"continents": ["EU"]},
            }
        ),
    ],
    ids=["toml", "json"],
)
def test_stdin_builds_the_same_job_as_the_file(text: str, from_file: dict[str, Any]) -> None:
    """`plan - < job.json` (or TOML) plans like the file."""
    code, out, _ = _run("plan", "-", "--demo", "--json", "--top", "3", stdin=text)
    assert code in (EXIT_OK, EXIT_NO_FIT)
    doc = json.loads(out)
    assert _essence(doc) == _essence(from_file)
    assert doc["job"]["file"] == "<stdin>"


def test_set_overrides_a_files_key() -> None:
    """--set gpu.count=1 --set placement.countries=["FR"] replaces the file's values."""
    code, out, _ = _run(
        "plan",
        str(LLM),
        "--demo",
        "--json",
        "--top",
        "1",
        "--set",
        "gpu.count=1",
        "--set",
        'placement.countries=["FR"]',
    )
    assert code in (EXIT_OK, EXIT_NO_FIT)
    doc = json.loads(out)
    pushed = {p["key"]: p["values"] for p in doc["pushed_down"]}
    assert pushed["placement.countries"] == ["FR"]
    assert all(r["region"]["country"] in (None, "FR") for r in doc["ranked"])


@pytest.mark.parametrize(
    ("file_text", "argv", "origin"),
    [
        (
            '[gpu]\ncount = 1\nmin_vram_free_gb = "abc"\n',
            ("--gpus", "1", "--vram-free", "abc"),
            "--vram-free",
        ),
        ("[gpu]\ncount = -1\n", ("--gpus", "-1"), "--gpus"),
        ('[gpu]\nmodels = ["H10"]\n', ("--gpu", "H10"), "--gpu"),
        ('[placement]\ncountries = ["Germany"]\n', ("--country", "Germany"), "--country"),
        ('[software]\narch = "sparc"\n', ("--arch", "sparc"), "--arch"),
        ("[gpu]\ncount = 1\nmax_load = 2\n", ("--gpus", "1", "--set", "gpu.max_load=2"), "--set"),
    ],
)
def test_a_flag_error_is_the_files_error_naming_the_flag(
    tmp_path: Path, file_text: str, argv: tuple[str, ...], origin: str
) -> None:
    """The same bad value in a file and in a flag gives the same message; the flag's names
    the flag where the file's names the file and line."""
    path = tmp_path / "bad.toml"
    path.write_text(file_text, encoding="utf-8")
    code_f, _, err_f = _run("plan", str(path), "--demo")
    code_a, _, err_a = _run("plan", *argv, "--demo")
    assert code_f == code_a == EXIT_INPUT
    assert err_a.startswith(f"nodeselect: error: {origin}: ")
    assert err_f.startswith(f"nodeselect: error: {path}:")
    assert err_a.split(": ", 3)[3] == err_f.split(": ", 3)[3]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (("plan", "--demo"), "no job: give a job file"),
        (
            ("plan", "--gpu", "H100:2", "--gpu", "A100:1", "--demo"),
            "--gpu: gpu.count: the counts differ",
        ),
        (("plan", "--gpus", "1", "--set", "gpu", "--demo"), "expected KEY=VALUE"),
        (("plan", "--gpus", "1", "--set", "name.first=a", "--demo"), "--set: name: expected"),
        (("plan", "--name", "x", "--set", "name.first=a", "--demo"), "name is not a table"),
        (("plan", "--gpus", "1", "--set", "gpu.cout=2", "--demo"), "did you mean 'count'"),
    ],
)
def test_bad_job_arguments_exit_2_with_one_line(argv: tuple[str, ...], needle: str) -> None:
    """Usage problems of the job arguments are one line on stderr and exit 2."""
    code, _, err = _run(*argv)
    assert code == EXIT_INPUT
    assert needle in err
    assert err.count("\n") == 1


def test_place_reads_jobs_on_stdin_and_applies_set_to_every_job() -> None:
    """`place - --set priority=7` places the stdin's [[job]] tables, each with priority 7."""
    code, out, _ = _run(
        "place", "-", "--demo", "--json", "--set", "priority=7", stdin=QUEUE.read_text()
    )
    assert code in (EXIT_OK, EXIT_NO_FIT)
    doc = json.loads(out)
    entries = doc["assignments"] + doc["unplaced"]
    assert len(entries) >= 3
    assert {e["priority"] for e in entries} == {7}
