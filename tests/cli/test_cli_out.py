"""``--out``: atomic, private, regular files only; a symlink is refused unless ``--force``
(which replaces the link, never writes through it); special files and folders always."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from nodeselect.cli import main
from nodeselect.cli._common import EXIT_INPUT, EXIT_OK, EXIT_OUTPUT
from nodeselect.cli._output import OutTargetError
from nodeselect.fetch import load_snapshot
from nodeselect.sim import SimServer, generate_fleet


@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    """A small simulated API."""
    with SimServer(generate_fleet(20, seed=4)) as s:
        yield s


def _save(server: SimServer, target: Path, *extra: str) -> int:
    return main(["nodes", "--api", server.url, "-q", "-o", "json", "--out", str(target), *extra])


def test_a_symlink_is_refused_and_its_target_untouched(
    server: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A planted link: exit 2 naming --force; the file it points to keeps its bytes."""
    victim = tmp_path / "victim"
    victim.write_text("precious")
    link = tmp_path / "fleet.jsonl"
    link.symlink_to(victim)
    assert _save(server, link) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "symbolic link" in err
    assert "--force" in err
    assert victim.read_text() == "precious"
    assert link.is_symlink()


def test_force_replaces_the_link_itself_never_its_target(
    server: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--force: the link becomes a regular snapshot file; the old target is unchanged."""
    victim = tmp_path / "victim"
    victim.write_text("precious")
    link = tmp_path / "fleet.jsonl"
    link.symlink_to(victim)
    assert _save(server, link, "--force") == EXIT_OK
    capsys.readouterr()
    assert not link.is_symlink()
    assert victim.read_text() == "precious"
    assert len(load_snapshot(link).nodes) > 0


@pytest.mark.parametrize("force", [(), ("--force",)])
@pytest.mark.parametrize("kind", ["directory", "fifo", "device"])
def test_special_targets_are_refused(
    server: SimServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    force: tuple[str, ...],
) -> None:
    """A directory, a FIFO or a device: exit 2 before any fetch, saying what it is, with or
    without --force (which only lets a symlink be replaced)."""
    if kind == "directory":
        target = tmp_path / "d"
        target.mkdir()
    elif kind == "fifo":
        target = tmp_path / "p"
        os.mkfifo(target)
    else:
        target = Path(os.devnull)
    assert _save(server, target, *force) == EXIT_INPUT
    err = capsys.readouterr().err
    assert {"directory": "directory", "fifo": "FIFO", "device": "device"}[kind] in err
    assert len(err.strip().splitlines()) == 1
    if kind == "fifo":
        assert stat.S_ISFIFO(os.lstat(target).st_mode)


def test_snapshot_is_0600_even_replacing_a_readable_file(
    server: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The saved snapshot holds personal data: mode 0600, also over a 0644 file; no temp left."""
    target = tmp_path / "fleet.jsonl"
    target.write_text("old")
    target.chmod(0o644)
    assert _save(server, target) == EXIT_OK
    capsys.readouterr()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fleet.jsonl"]


def test_the_cli_writes_through_the_library_with_its_force(
    server: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--out is fetch.save_snapshot (unique temporary file, 0600, no link followed: the
    library's tests cover concurrent writers); --force becomes replace_symlink=True."""
    import nodeselect.cli.nodes as nodes_cli  # noqa: PLC0415

    seen: list[bool] = []

    def spy(path: object, result: object, *, replace_symlink: bool = False) -> None:
        seen.append(replace_symlink)

    monkeypatch.setattr(nodes_cli, "save_snapshot", spy)
    assert _save(server, tmp_path / "a") == EXIT_OK
    assert _save(server, tmp_path / "b", "--force") == EXIT_OK
    assert seen == [False, True]


def test_full_disk_on_out_is_exit_5(
    server: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """When the snapshot cannot be written, exit 5 with one line naming --out and the reason."""
    import nodeselect.cli.nodes as nodes_cli  # noqa: PLC0415

    def full(path: object, result: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(nodes_cli, "save_snapshot", full)
    assert _save(server, tmp_path / "f") == EXIT_OUTPUT
    err = capsys.readouterr().err.strip()
    assert err.startswith("nodeselect: error: --out")
    assert "No space left on device" in err
    assert not (tmp_path / "f").exists()


def test_out_target_error_is_an_input_error() -> None:
    """OutTargetError is a NodeSelectError (one hierarchy), mapped to exit 2."""
    from nodeselect.errors import InputError  # noqa: PLC0415

    assert issubclass(OutTargetError, InputError)
