"""`nodeselect sim serve --dialect ...` and the individual dialect overrides."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest
from test_sim_cli import RUN_SIM, build_parser, main

from nodeselect.cli import sim as _sim
from nodeselect.sim import DIALECTS, BulkRegistration, Dialect


def _dialect_of(*argv: str) -> object:
    return _sim._dialect(build_parser().parse_args(["sim", "serve", *argv]))


def test_no_dialect_option_is_the_default_dialect() -> None:
    """Without options the fleet is served in Dialect()."""
    assert _dialect_of() == Dialect()


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_every_named_dialect_is_selectable(name: str) -> None:
    """--dialect NAME gives DIALECTS[NAME]."""
    assert _dialect_of("--dialect", name) == DIALECTS[name]


def test_overrides_apply_on_top_of_the_named_dialect() -> None:
    """Every individual option reaches its Dialect field."""
    got = _dialect_of(
        "--dialect", "ram-gb-load-percent", "--time-precision", "us", "--written-precision",
        "ms", "--time-suffix", "+00:00", "--strict-ranges", "--vram-unit", "bytes",
        "--numeric-strings", "0.2", "--bulk-nodes", "500", "--bulk-seconds", "2",
    )  # fmt: skip
    assert got == Dialect(
        time_precision="us",
        written_precision="ms",
        time_suffix="+00:00",
        strict_ranges=True,
        ram_unit="GB",
        vram_unit="bytes",
        load_unit="percent",
        numeric_strings=0.2,
        bulk=BulkRegistration(nodes=500, seconds=2),
    )
    assert _dialect_of("--dialect", "bulk", "--bulk-seconds", "9") == Dialect(
        bulk=BulkRegistration(nodes=600, seconds=9)
    )
    assert _dialect_of("--load-unit", "percent", "--ram-unit", "MiB") == Dialect(
        load_unit="percent", ram_unit="MiB"
    )


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--dialect", "klingon"], "--dialect klingon"),
        (["--time-precision", "ns"], "--time-precision ns"),
        (["--written-precision", "min"], "--written-precision min"),
        (["--time-suffix", "UTC"], "--time-suffix UTC"),
        (["--ram-unit", "kB"], "--ram-unit kB"),
        (["--vram-unit", "GiB"], "--vram-unit GiB"),
        (["--load-unit", "permille"], "--load-unit permille"),
        (["--numeric-strings", "1.5"], "--numeric-strings 1.5"),
        (["--numeric-strings", "lots"], "--numeric-strings lots"),
        (["--bulk-nodes", "-3"], "--bulk-nodes -3"),
        (["--bulk-nodes", "many"], "--bulk-nodes many"),
        (["--bulk-seconds", "3"], "--bulk-seconds needs --bulk-nodes"),
    ],
)
def test_bad_dialect_options_are_one_line_errors_with_exit_2(argv, needle, capsys) -> None:
    """Each bad value exits 2 with one 'nodeselect: error:' line naming the option, no
    traceback, before anything is served."""
    assert main(["sim", "serve", "--nodes", "10", *argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("nodeselect: error: ")
    assert needle in lines[0]
    assert captured.out == ""


def test_serve_in_a_dialect_prints_it_and_serves_it() -> None:
    """The start-up line names the dialect (URL still the last word); the server refuses an
    open range with 422 and writes telemetry RAM in GB and µs timestamps."""
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN_SIM, "sim", "serve", "--nodes", "300", "--seed", "3",
         "--dialect", "strict-ranges-us", "--ram-unit", "GB"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    url = line.rsplit(" ", 1)[1].strip()
    try:
        assert line.startswith(
            "nodeselect sim: serving 300 simulated nodes [dialect strict-ranges-us: "
            "time_precision=us,strict_ranges=True,ram_unit=GB] at http://127.0.0.1:"
        ), line
        open_range = httpx.get(url, params={"filter[created_at]": ",2030-01-01"})
        assert open_range.status_code == 422
        assert "START,END" in open_range.json()["error"]["message"]
        body = httpx.get(url, params={"filter[created_at]": "2000-01-01,2030-01-01"}).json()
        assert body["total"] > 0
        doc = body["data"][0]
        assert len(doc["created_at"]) == len("2024-01-01T00:00:00.000000Z")
        events = [d["latest_hardware_event"] for d in body["data"] if d["latest_hardware_event"]]
        rams = [e["metadata"]["ram"] for e in events if "ram" in e["metadata"]]
        assert rams
        assert all(r["total"] < 5000 for r in rams)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
