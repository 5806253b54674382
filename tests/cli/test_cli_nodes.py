"""`nodeselect nodes`: flags become queries; formats, snapshots, exit codes, hidden data."""

from __future__ import annotations

import json

import pytest

from nodeselect.cli import main
from nodeselect.cli._common import EXIT_API, EXIT_INPUT, EXIT_NO_FIT, EXIT_OK
from nodeselect.sim import FaultConfig, SimServer, generate_fleet

FLEET = generate_fleet(150, seed=12)


@pytest.fixture(scope="module")
def server():
    with SimServer(FLEET) as s:
        yield s


def test_jsonl_lines_carry_documents_and_proved_facts(server, capsys) -> None:
    """--format jsonl prints one {document, nodeselect} per matching node with its proved facts."""
    code = main(["nodes", "--api", server.url, "--status", "AVAILABLE", "--format", "jsonl"])
    out = capsys.readouterr().out.splitlines()
    assert code == EXIT_OK
    rows = [json.loads(line) for line in out]
    expected = {
        d["uuid"] for d in FLEET.documents() if FLEET.hidden(d["uuid"]).status == "AVAILABLE"
    }
    got = {r["document"]["uuid"] for r in rows}
    assert got <= expected
    assert len(got) >= len(expected) - 10  # a few documents are deliberately malformed
    assert {r["nodeselect"]["status"] for r in rows} == {"AVAILABLE"}


def test_personal_data_is_hidden_unless_asked(server, capsys) -> None:
    """E-mails are hidden in json output by default and shown with --show-private."""
    main(["nodes", "--api", server.url, "--format", "json"])
    hidden = capsys.readouterr().out
    main(["nodes", "--api", server.url, "--format", "json", "--show-private"])
    shown = capsys.readouterr().out
    emails = {
        d["operator_account"]["email"]
        for d in FLEET.documents()
        if isinstance(d.get("operator_account"), dict) and d["operator_account"].get("email")
    }
    assert any(e in shown for e in emails)
    assert not any(e in hidden for e in emails)


def test_out_saves_a_snapshot_that_snapshot_reads(server, tmp_path, capsys) -> None:
    """--out FILE saves a snapshot; --snapshot FILE lists the same nodes."""
    path = tmp_path / "s.jsonl"
    assert main(["nodes", "--api", server.url, "--format", "jsonl", "--out", str(path)]) == 0
    first = capsys.readouterr().out
    assert main(["nodes", "--snapshot", str(path), "--format", "jsonl"]) == 0
    assert capsys.readouterr().out == first


def test_table_output_and_no_match_exit_code(server, capsys) -> None:
    """A table lists the nodes; a filter matching nothing exits 1."""
    assert main(["nodes", "--api", server.url, "--continent", "EU"]) == EXIT_OK
    assert "uuid" in capsys.readouterr().out
    assert main(["nodes", "--api", server.url, "--uuid", "no-such-node"]) == EXIT_NO_FIT


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--status", "SLEEPING"], "statuses: 'SLEEPING'"),
        (["--created-between", "2024-02-01,2024-01-01"], "inverted"),
        (["--seen-between", "yesterday"], "START,END"),
    ],
)
def test_bad_filters_are_one_line_errors(server, capsys, argv, needle) -> None:
    """Invalid flags exit 2 with a one-line message and no traceback."""
    code = main(["nodes", "--api", server.url, *argv])
    err = capsys.readouterr().err
    assert code == EXIT_INPUT
    assert needle in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_api_errors_exit_3(capsys) -> None:
    """A server that always fails exits 3 with one line."""
    with SimServer(FLEET, faults=FaultConfig(rate_500=1.0)) as s:
        code = main(["nodes", "--api", s.url, "--concurrency", "1"])
    err = capsys.readouterr().err
    assert code == EXIT_API
    assert err.startswith("nodeselect: error:")


def test_missing_snapshot_exits_2(tmp_path, capsys) -> None:
    """A missing snapshot file exits 2 naming the file."""
    assert main(["nodes", "--snapshot", str(tmp_path / "x.jsonl")]) == EXIT_INPUT
    assert "x.jsonl" in capsys.readouterr().err
