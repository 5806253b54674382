"""Start-up stays light: ``--help`` and usage errors import no numpy, httpx, rich or engine;
a command's modules load only when it runs, and Ctrl-C while they load is one line, exit 130.
(Times are in benchmarks/bench_cli_startup.py; no timed assertion here.)"""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from nodeselect.cli import main
from nodeselect.cli._common import EXIT_INTERRUPTED
from nodeselect.cli._parsers import DEFAULT_BASE_URL, DEFAULT_CONCURRENCY

HEAVY = ("numpy", "httpx", "rich", "msgspec", "nodeselect.engine", "nodeselect.fetch",
         "nodeselect.table", "nodeselect.placement")  # fmt: skip

PROBE = """
import sys
from nodeselect.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = {heavy!r}
print("HEAVY=" + ",".join(m for m in heavy if m in sys.modules))
"""


@pytest.mark.parametrize(
    "argv", [["--help"], ["plan", "--help"], ["nodes", "--format", "xml"], ["sim"]]
)
def test_help_and_usage_errors_import_nothing_heavy(argv: list[str]) -> None:
    """In a fresh interpreter, --help and a usage error leave numpy, httpx, rich and the
    layers below the CLI unimported."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr
    assert proc.stdout.splitlines()[-1] == "HEAVY="


def test_parser_defaults_match_the_fetch_layer() -> None:
    """The help text's defaults are the fetch layer's (mirrored to keep --help light)."""
    fetch = importlib.import_module("nodeselect.fetch")
    assert fetch.DEFAULT_BASE_URL == DEFAULT_BASE_URL
    assert fetch.DEFAULT_CONCURRENCY == DEFAULT_CONCURRENCY


def test_ctrl_c_while_a_command_loads_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A KeyboardInterrupt during the command's imports: exit 130, 'interrupted', no traceback."""
    real = importlib.import_module

    def interrupted(name: str, package: str | None = None) -> object:
        if name == "nodeselect.cli.gpus":
            raise KeyboardInterrupt
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", interrupted)
    assert main(["gpus", "--known"]) == EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert err == "nodeselect: error: interrupted\n"
