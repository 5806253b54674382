"""Start-up stays light: ``--help`` and usage errors import no numpy, httpx, rich or engine;
a command's modules load only when it runs, and Ctrl-C while they load is one line, exit 130.
(Times are in benchmarks/bench_cli_startup.py; no timed assertion here.)"""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from nodeselect.cli import main
from nodeselect.cli._common import EXIT_INTERRUPTED, EXIT_OUTPUT
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


@pytest.fixture(scope="module")
def big_snapshot(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 150-node snapshot (about 750 KB of JSON lines: more than a pipe buffer)."""
    from nodeselect.sim import SimServer, generate_fleet  # noqa: PLC0415

    path = tmp_path_factory.mktemp("pipe") / "fleet.jsonl"
    with SimServer(generate_fleet(150, seed=12)) as server:
        assert main(["nodes", "--api", server.url, "-q", "-o", "json", "--out", str(path)]) == 0
    return str(path)


def _cli(*argv: str, stdout: int | object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", "import sys; from nodeselect.cli import main; "
         "sys.exit(main(sys.argv[1:]))", *argv],
        stdout=stdout, stderr=subprocess.PIPE, timeout=120, check=False,
    )  # fmt: skip


def test_a_reader_that_leaves_early_is_quiet(
    big_snapshot: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`nodeselect nodes ... | head -c 100`: exit 0 and nothing on stderr, as head expects."""
    capsys.readouterr()
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from nodeselect.cli import main; "
         "sys.exit(main(sys.argv[1:]))", "nodes", "--snapshot", big_snapshot, "-o", "jsonl"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    assert len(proc.stdout.read(100)) == 100
    proc.stdout.close()  # the reader leaves
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert err == b""


def test_a_full_disk_is_one_line_and_exit_5(big_snapshot: str) -> None:
    """Writing to /dev/full: exit 5, one line naming the reason, no traceback."""
    with open("/dev/full", "wb") as full:
        proc = _cli("nodes", "--snapshot", big_snapshot, "-o", "json", stdout=full)
    assert proc.returncode == EXIT_OUTPUT
    lines = proc.stderr.decode().splitlines()
    assert lines == [
        "nodeselect: error: cannot write the output (I/O error): No space left on device"
    ]
