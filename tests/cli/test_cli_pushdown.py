"""`plan` when the server-side filters leave no node: counts per filter, advice, exit 1."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from nodeselect.cli import main
from nodeselect.cli._common import EXIT_NO_FIT, EXIT_OK

AF_GDPR = """\
name = "af-gdpr"
[gpu]
count = 0
[placement]
statuses = ["AVAILABLE"]
continents = ["AF"]
compliance = ["GDPR"]
"""

EU_AVAILABLE = """\
name = "eu"
[gpu]
count = 0
[placement]
statuses = ["AVAILABLE"]
continents = ["EU"]
"""


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    assert "Traceback" not in out.getvalue() + err.getvalue()
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def af_gdpr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("jobs") / "af-gdpr.toml"
    path.write_text(AF_GDPR)
    return path


@pytest.fixture(scope="module")
def af_json(af_gdpr: Path) -> tuple[int, dict[str, Any]]:
    code, out, _ = _run("plan", str(af_gdpr), "--demo", "--json")
    return code, json.loads(out)


def test_an_emptied_fleet_exits_1_with_server_side_rejections(
    af_json: tuple[int, dict[str, Any]],
) -> None:
    """AF + GDPR: nothing is fetched, yet `rejected` names the filters that removed nodes,
    `pushdown` carries the counts, and the nearest misses say what to relax."""
    code, report = af_json
    assert code == EXIT_NO_FIT
    assert report["evaluated"] == 0
    push = report["pushdown"]
    assert push["matched"] == 0
    assert push["considered"] > 0
    assert report["rejected"]
    assert set(report["rejected"]) <= {
        "placement.statuses",
        "placement.continents",
        "placement.compliance",
    }
    assert report["rejected"]["placement.compliance"] > 0
    advice = [m["advice"] for m in report["nearest_misses"]]
    assert any("AVAILABLE nodes in AF, none tagged GDPR: dropping" in a for a in advice)
    for miss in report["nearest_misses"]:
        assert miss["server_side"] is True
        assert miss["only_this"] == report["rejected"][miss["constraint"]]


def test_the_text_report_says_which_filter_emptied_the_fleet(af_gdpr: Path) -> None:
    """The text output names the counts, not only "no node fits"."""
    code, out, _ = _run("plan", str(af_gdpr), "--demo")
    assert code == EXIT_NO_FIT
    assert "none tagged GDPR" in out
    assert re.search(r"the server's filters matched 0 of the \d+ nodes", out)
    assert "placement.compliance" in out


def test_a_fleet_with_matches_gets_no_server_side_counts(tmp_path: Path) -> None:
    """When the fetch returns at least a page of nodes, no count probes are made."""
    path = tmp_path / "eu.toml"
    path.write_text(EU_AVAILABLE)
    code, out, _ = _run("plan", str(path), "--demo", "--json")
    assert code == EXIT_OK
    report = json.loads(out)
    assert report["pushdown"] is None
    assert not any(m.get("server_side") for m in report["nearest_misses"])
