"""CI runs every shipped example against the demo fleet: each job file through `plan --demo`,
each script end to end as a user would run it."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nodeselect.cli import main
from nodeselect.cli._common import EXIT_NO_FIT, EXIT_OK

ROOT = Path(__file__).resolve().parent.parent
JOB_FILES = sorted((ROOT / "examples" / "jobs").glob("*.toml"))
SCRIPTS = sorted((ROOT / "examples").glob("*.py"))


def _single_job(path: Path) -> bool:
    """Whether a job file holds one job (`plan` takes one; queues go to `place`)."""
    import tomllib  # noqa: PLC0415

    data = tomllib.loads(path.read_text())
    return "job" not in data or len(data["job"]) == 1


def test_the_shipped_examples_exist() -> None:
    """The four job files and three scripts the docs promise are there."""
    names = {p.name for p in JOB_FILES}
    assert {
        "llm-finetune.toml",
        "batch-inference.toml",
        "cpu-only.toml",
        "gang-training.toml",
    } <= names
    assert {"scheduler_loop.py", "dry_run_report.py", "torchrun_hosts.py"} <= {
        p.name for p in SCRIPTS
    }


@pytest.mark.parametrize("path", [p for p in JOB_FILES if _single_job(p)], ids=lambda p: p.name)
def test_every_example_job_plans_on_the_demo_fleet(path: Path) -> None:
    """`nodeselect plan JOB --demo --json` succeeds and ranks at least one node for each example."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["plan", str(path), "--demo", "--json", "--top", "3"])
    assert code == EXIT_OK, err.getvalue()
    doc = json.loads(out.getvalue())
    assert doc["fleet"]["simulated"] is True
    assert doc["feasible"] >= 1
    assert 1 <= len(doc["ranked"]) <= 3


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_every_example_script_runs_on_the_demo_fleet(path: Path) -> None:
    """Each example script exits 0 (or 1 = 'something did not fit', explained) with output."""
    proc = subprocess.run(
        [sys.executable, str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in (EXIT_OK, EXIT_NO_FIT), proc.stderr
    assert proc.stdout.strip()
    if path.name == "dry_run_report.py":
        assert "SIMULATED demo fleet" in proc.stdout
        placed = re.search(r"placed (\d+)/(\d+) jobs", proc.stdout)
        assert placed, proc.stdout
        assert (proc.returncode == EXIT_OK) == (placed.group(1) == placed.group(2))


def _run_script(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / script)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def test_scheduler_loop_places_the_queue_and_rechecks_it() -> None:
    """scheduler_loop.py places queue.toml on the demo fleet and re-validates before commit."""
    done = _run_script("scheduler_loop.py")
    assert done.returncode == 0, done.stderr
    assert "placed   prod-inference" in done.stdout
    assert "commit" in done.stdout


def test_torchrun_hosts_prints_one_command_per_node() -> None:
    """torchrun_hosts.py prints a torchrun command with a distinct --node-rank for every node."""
    done = _run_script("torchrun_hosts.py")
    assert done.returncode == 0, done.stderr
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("torchrun ")]
    assert len(lines) == 4
    assert [f"--node-rank={k}" in ln for k, ln in enumerate(lines)] == [True] * 4
    assert all("--nnodes=4" in ln for ln in lines)
    pinned = [ln for ln in done.stdout.splitlines() if ln.startswith("export CUDA_VISIBLE")]
    assert len(pinned) == 4


def test_torchrun_two_jobs_pins_each_job_to_disjoint_gpus_of_one_node() -> None:
    """torchrun_two_jobs.py launches two jobs on one node with disjoint CUDA_VISIBLE_DEVICES."""
    done = _run_script("torchrun_two_jobs.py")
    assert done.returncode == 0, done.stderr
    found = re.findall(r"^env CUDA_VISIBLE_DEVICES=(\S+) torchrun (.*)$", done.stdout, re.M)
    assert len(found) == 2
    (a, args_a), (b, args_b) = found
    assert set(a.split(",")).isdisjoint(b.split(","))
    assert len(a.split(",")) == len(b.split(",")) == 2
    addr = re.compile(r"--master-addr=(\S+)")
    assert addr.findall(args_a) == addr.findall(args_b)  # one node
    assert "--master-port=29500" in args_a
    assert "--master-port=29501" in args_b
