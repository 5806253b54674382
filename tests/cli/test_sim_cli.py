"""`nodeselect sim serve` as a real process: prints its URL, serves, exits 0 on SIGTERM/Ctrl-C."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

import httpx
import pytest

from nodeselect.cli import sim as _sim

KEY = "sk-cli-secret-42"
# `nodeselect sim ...` through this module's own register(), so that these tests do not depend
# on the other subcommands' modules (the real entry point wires register() the same way).
RUN_SIM = (
    "import argparse, sys\n"
    "from nodeselect.cli import sim as _sim\n"
    "p = argparse.ArgumentParser(prog='nodeselect')\n"
    "_sim.register(p.add_subparsers())\n"
    "a = p.parse_args(sys.argv[1:])\n"
    "sys.exit(a.handler(a))\n"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nodeselect")
    _sim.register(parser.add_subparsers())
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


def _start(*extra: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN_SIM, "sim", "serve", "--nodes", "300",
         "--seed", "3", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("nodeselect sim: serving 300 simulated nodes at http://127.0.0.1:"), line
    return proc, line.rsplit(" ", 1)[1].strip()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_its_url_serves_and_exits_0_on_a_signal(sig) -> None:
    """The printed URL answers List Nodes; SIGTERM or Ctrl-C stops it with exit code 0."""
    proc, url = _start("--rate-503", "0")
    try:
        body = httpx.get(url, params={"limit": 3}).json()
        assert len(body["data"]) == 3
        assert body["total"] > 0
    finally:
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err


def test_serve_with_an_api_key_never_prints_it() -> None:
    """--api-key-env requires the key; neither stdout nor stderr ever shows it."""
    proc, url = _start("--api-key-env", "SIM_TEST_KEY", env={"SIM_TEST_KEY": KEY})
    try:
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert KEY not in out
    assert KEY not in err


def test_missing_key_variable_is_an_input_error(capsys) -> None:
    """An unset --api-key-env variable exits 2 naming the variable."""
    os.environ.pop("SIM_TEST_UNSET_VAR", None)
    assert main(["sim", "serve", "--api-key-env", "SIM_TEST_UNSET_VAR"]) == 2
    assert "SIM_TEST_UNSET_VAR" in capsys.readouterr().err


def test_fault_flags_reach_the_fault_config() -> None:
    """Every fault flag parses into the namespace the handler reads."""
    args = build_parser().parse_args(
        ["sim", "serve", "--rate-500", "0.1", "--rate-503", "0.2", "--rate-429", "0.05",
         "--retry-after", "3", "--rate-drop", "0.01", "--rate-truncate", "0.02",
         "--latency-ms", "5", "--inserts-per-request", "0.5", "--deletes-per-request", "0.25",
         "--unstable-order", "--created-at-ties", "0.1", "--fault-seed", "9"]
    )  # fmt: skip
    assert (args.rate_500, args.rate_503, args.rate_429) == (0.1, 0.2, 0.05)
    assert (args.retry_after, args.rate_drop, args.rate_truncate) == ("3", 0.01, 0.02)
    assert (args.latency_ms, args.inserts_per_request, args.deletes_per_request) == (5, 0.5, 0.25)
    assert args.unstable_order
    assert (args.created_at_ties, args.fault_seed) == (0.1, 9)


def test_a_rate_outside_0_1_is_a_usage_error() -> None:
    """--rate-500 2 is rejected by the parser."""
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["sim", "serve", "--rate-500", "2"])
    assert info.value.code == 2
