"""Repeatable snapshot dry-runs (issue 12 item 3): a plan on a snapshot is evaluated as of its
``fetched_at`` unless ``--now`` says otherwise; a snapshot missing a fact the job needs says
which filters to save it with. The current time is injected (``cli._asof.clock``): no sleeps."""

from __future__ import annotations

import contextlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from nodeselect.cli import _asof, main
from nodeselect.fetch import load_snapshot

ROOT = Path(__file__).resolve().parents[2]
JOB = ROOT / "examples" / "jobs" / "llm-finetune.toml"  # AVAILABLE, EU, GDPR, staleness 10m


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The quickstart's snapshot (EU only) and one saved with the job's own filters."""
    d = tmp_path_factory.mktemp("snap")
    eu, full = d / "eu.jsonl", d / "full.jsonl"
    assert (
        _run(["nodes", "--demo", "--continent", "EU", "--format", "jsonl", "--out", str(eu)])[0]
        == 0
    )
    argv = ["nodes", "--demo", "--status", "AVAILABLE", "--continent", "EU", "--compliance", "GDPR"]
    assert _run([*argv, "--format", "jsonl", "--out", str(full)])[0] == 0
    return eu, full


def test_a_snapshot_plan_is_the_same_now_and_an_hour_later(
    snapshots: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """plan --snapshot F --json gives the same document whatever the clock says."""
    _, full = snapshots
    fetched = load_snapshot(full).fetched_at
    docs = []
    for later in (timedelta(0), timedelta(hours=1), timedelta(days=3)):
        monkeypatch.setattr(_asof, "clock", lambda later=later: fetched + later)
        code, out, _ = _run(["plan", str(JOB), "--snapshot", str(full), "--json"])
        assert code == 0
        docs.append(json.loads(out))
    assert docs[0] == docs[1] == docs[2]
    assert docs[0]["feasible"] > 0
    assert docs[0]["fleet"]["age_s"] == 0
    assert docs[0]["fleet"]["evaluated_at"] == fetched.astimezone(UTC).isoformat()
    assert docs[0]["pushed_down"] == []


def test_now_overrides_the_snapshot_time(
    snapshots: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--now now reads the (injected) clock: an hour on, max_staleness rejects what it did not."""
    _, full = snapshots
    fetched = load_snapshot(full).fetched_at
    monkeypatch.setattr(_asof, "clock", lambda: fetched + timedelta(hours=1))
    _, out, _ = _run(["plan", str(JOB), "--snapshot", str(full), "--json"])
    _, later, _ = _run(["plan", str(JOB), "--snapshot", str(full), "--json", "--now", "now"])
    assert json.loads(later)["fleet"]["age_s"] == 3600
    assert json.loads(later)["rejected"]["staleness"] > json.loads(out)["rejected"].get(
        "staleness", 0
    )
    stamp = (fetched + timedelta(hours=1)).astimezone(UTC).isoformat()
    _, same, _ = _run(["plan", str(JOB), "--snapshot", str(full), "--json", "--now", stamp])
    assert json.loads(same) == json.loads(later)


def test_a_bad_now_is_an_input_error(snapshots: tuple[Path, Path]) -> None:
    """--now without a timezone, or not a time, exits 2 saying what is accepted."""
    _, full = snapshots
    for bad in ("2026-11-30T10:00:00", "yesterday"):
        code, _, err = _run(["plan", str(JOB), "--snapshot", str(full), "--now", bad])
        assert code == 2
        assert "ISO 8601 time with a timezone" in err


def test_a_snapshot_without_the_jobs_filters_says_how_to_resave_it(
    snapshots: tuple[Path, Path],
) -> None:
    """The quickstart's EU snapshot proves no status: the report names the filters to add."""
    eu, _ = snapshots
    code, out, err = _run(["plan", str(JOB), "--snapshot", str(eu), "--json"])
    doc = json.loads(out)
    assert code == 1
    assert doc["feasible"] == 0
    unproved = " ".join(doc["fleet"]["unproved"])
    assert "filter[status] (placement.statuses)" in unproved
    assert "filter[compliance_tags]" in unproved
    assert (
        f"nodeselect nodes --status AVAILABLE --continent EU --compliance GDPR --out {eu}"
        in unproved
    )
    assert "re-save it" in err
    code, text, _ = _run(["plan", str(JOB), "--snapshot", str(eu)])
    assert "pushed down to the server: none" in text
    assert "re-save it with the job's filters" in text


def test_place_on_a_snapshot_is_evaluated_as_of_its_fetch(
    snapshots: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """place --snapshot uses fetched_at too: the plan's now is the snapshot's."""
    _, full = snapshots
    fetched = load_snapshot(full).fetched_at
    monkeypatch.setattr(_asof, "clock", lambda: datetime(2030, 1, 1, tzinfo=UTC))
    queue = ROOT / "examples" / "jobs" / "queue.toml"
    _, out, _ = _run(["place", str(queue), "--snapshot", str(full), "--json"])
    doc = json.loads(out)
    assert doc["now"] == fetched.astimezone(UTC).isoformat()
    assert doc["fleet"]["age_s"] == 0
