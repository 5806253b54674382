"""`nodeselect place --optimal [--time-limit S]`: the quality line, clean JSON, flag errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nodeselect.cli import main

QUEUE = Path(__file__).resolve().parents[2] / "examples" / "jobs" / "queue.toml"


def test_optimal_json_is_clean_and_carries_the_solver_report(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Nothing but the JSON reaches stdout (HiGHS prints a banner at file-descriptor level
    unless silenced), and quality.solver says the plan is proved optimal."""
    pytest.importorskip("highspy")
    code = main(["place", str(QUEUE), "--demo", "--json", "--optimal", "--time-limit", "30"])
    doc = json.loads(capfd.readouterr().out)
    assert doc["quality"]["objective"] == "optimal"
    assert doc["quality"]["solver"]["status"] == "optimal"
    assert doc["quality"]["solver"]["gap"] == 0
    assert code == (1 if doc["unplaced"] else 0)


def test_the_text_output_ends_with_a_quality_line(capfd: pytest.CaptureFixture[str]) -> None:
    """The text output says how good the plan is after the totals."""
    main(["place", str(QUEUE), "--demo"])
    assert capfd.readouterr().out.strip().splitlines()[-1].startswith("quality: ")


def test_time_limit_without_optimal_is_a_usage_error(capfd: pytest.CaptureFixture[str]) -> None:
    """--time-limit alone exits 2 and says to add --optimal."""
    assert main(["place", str(QUEUE), "--demo", "--time-limit", "5"]) == 2
    assert "--optimal" in capfd.readouterr().err
