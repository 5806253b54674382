"""The errors a new user hits: each one line on stderr, saying what/where/what to try, with its
documented exit code, and never a traceback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from nodeselect.cli import main
from nodeselect.cli._common import EXIT_API, EXIT_INPUT, EXIT_NO_FIT
from nodeselect.sim import SimServer, generate_fleet

GOOD_JOB = """\
name = "ok"

[gpu]
count = 1
"""


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("nodeselect: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def job(tmp_path: Path) -> Path:
    path = tmp_path / "job.toml"
    path.write_text(GOOD_JOB)
    return path


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NODESELECT_API_KEY", raising=False)


@pytest.fixture(scope="module")
def auth_server() -> Iterator[SimServer]:
    """A small simulated API that requires the key 'right-key'."""
    with SimServer(generate_fleet(40, 3), api_key="right-key") as server:
        yield server


def test_missing_job_file_names_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A job file that does not exist: exit 2, the message names the file."""
    missing = tmp_path / "nope.toml"
    code, _, err = _run(capsys, "plan", str(missing), "--demo")
    assert code == EXIT_INPUT
    line = _one_error_line(err)
    assert str(missing) in line
    assert "cannot read" in line


def test_malformed_toml_names_file_and_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Broken TOML: exit 2, the message is file:line and says it is not valid TOML."""
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\n[gpu]\ncount = = 2\n')
    code, _, err = _run(capsys, "plan", str(path), "--demo")
    assert code == EXIT_INPUT
    assert f"{path}:3:" in _one_error_line(err)
    assert "not valid TOML" in err


def test_unknown_key_names_file_line_key_and_suggests(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A misspelt key: exit 2, file:line: the dotted key, and a did-you-mean."""
    path = tmp_path / "typo.toml"
    path.write_text('name = "x"\n[gpu]\ncuont = 2\n')
    code, _, err = _run(capsys, "plan", str(path), "--demo")
    assert code == EXIT_INPUT
    line = _one_error_line(err)
    assert f"{path}:3: gpu.cuont" in line
    assert "did you mean 'count'" in line


def test_unknown_gpu_model_suggests_known_names(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """An unknown GPU model: exit 2, names the key, and suggests real models."""
    path = tmp_path / "gpu.toml"
    path.write_text('[gpu]\ncount = 1\nmodels = ["H10"]\n')
    code, _, err = _run(capsys, "plan", str(path), "--demo")
    assert code == EXIT_INPUT
    line = _one_error_line(err)
    assert "gpu.models[0]" in line
    assert "'H10'" in line
    assert "did you mean" in line
    assert "H100" in line


def test_no_fleet_source_and_no_key_says_how_to_choose(
    capsys: pytest.CaptureFixture[str], job: Path, no_key: None
) -> None:
    """No --api/--snapshot/--demo and no key: exit 2, naming every way to choose a fleet."""
    code, out, err = _run(capsys, "plan", str(job))
    assert code == EXIT_INPUT
    line = _one_error_line(err)
    for option in ("--demo", "--snapshot FILE", "--api URL", "NODESELECT_API_KEY"):
        assert option in line
    assert out == ""


def test_unreachable_api_is_one_line_with_the_url(
    capsys: pytest.CaptureFixture[str], job: Path, no_key: None
) -> None:
    """A closed loopback port: exit 3, one line naming the URL and suggesting what to try."""
    with socket.socket() as s:  # a port that was free a moment ago, now closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    code, _, err = _run(capsys, "plan", str(job), "--api", url)
    assert code == EXIT_API
    line = _one_error_line(err)
    assert f"cannot reach the API at {url}" in line
    assert "--demo" in line
    assert len(err.strip().splitlines()) == 1


def test_missing_key_is_said_plainly_as_401(
    capsys: pytest.CaptureFixture[str], job: Path, no_key: None, auth_server: SimServer
) -> None:
    """An API that wants a key and got none: exit 3, says 401 and to set NODESELECT_API_KEY."""
    code, _, err = _run(capsys, "plan", str(job), "--api", auth_server.url)
    assert code == EXIT_API
    line = _one_error_line(err)
    assert "HTTP 401" in line
    assert "NODESELECT_API_KEY" in line
    assert auth_server.url in line


def test_wrong_key_is_said_plainly_and_never_echoed(
    capsys: pytest.CaptureFixture[str],
    job: Path,
    monkeypatch: pytest.MonkeyPatch,
    auth_server: SimServer,
) -> None:
    """A wrong key: exit 3, says 401/403 plainly, and the key itself never appears."""
    monkeypatch.setenv("NODESELECT_API_KEY", "wrong-key-s3cr3t")
    code, out, err = _run(capsys, "plan", str(job), "--api", auth_server.url)
    assert code == EXIT_API
    line = _one_error_line(err)
    assert "HTTP 403" in line or "HTTP 401" in line
    assert "key" in line
    assert "wrong-key-s3cr3t" not in out + err


def test_nothing_matching_exits_1_with_the_explanation(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A job no node can meet: exit 1, no traceback, and the rejection summary is printed."""
    path = tmp_path / "huge.toml"
    path.write_text('name = "huge"\n[gpu]\ncount = 1\nmin_vram_free_gb = 100000\n')
    code, out, _ = _run(capsys, "plan", str(path), "--demo")
    assert code == EXIT_NO_FIT
    assert "no node fits" in out
    assert "rejections" in out
    assert "vram" in out.lower()


def test_bad_top_is_rejected_before_any_fetch(
    capsys: pytest.CaptureFixture[str], job: Path
) -> None:
    """--top 0: exit 2 with the flag named."""
    code, _, err = _run(capsys, "plan", str(job), "--demo", "--top", "0")
    assert code == EXIT_INPUT
    assert "--top" in _one_error_line(err)


def test_snapshot_that_does_not_exist(capsys: pytest.CaptureFixture[str], job: Path) -> None:
    """A missing snapshot file: exit 2, one line naming the file."""
    code, _, err = _run(capsys, "plan", str(job), "--snapshot", "/nonexistent/fleet.json")
    assert code == EXIT_INPUT
    assert "/nonexistent/fleet.json" in _one_error_line(err)
