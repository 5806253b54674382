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


@pytest.mark.parametrize("filters", [[], ["--status", "AVAILABLE"], ["--include-deleted"]])
def test_a_snapshot_resaved_in_shards_is_read_a_chunk_at_a_time(
    server, tmp_path, capsys, monkeypatch, filters
) -> None:
    """--snapshot FILE --out DIR --shards N writes the shards that filtering the snapshot
    loaded whole and saving it in shards gives (node lines and manifest counts), streams the
    same nodes with --format jsonl as without --out, and never loads the snapshot whole."""
    from nodeselect import load_snapshot  # noqa: PLC0415
    from nodeselect.cli import _source  # noqa: PLC0415
    from nodeselect.cli._main import build_parser  # noqa: PLC0415
    from nodeselect.cli.nodes import filter_snapshot, query_from_args  # noqa: PLC0415
    from nodeselect.fetch import read_manifest, save_sharded_snapshot  # noqa: PLC0415

    src = tmp_path / "s.jsonl"
    argv = ["nodes", "--api", server.url, "--status", "AVAILABLE", "--status", "OFFLINE"]
    assert main([*argv, "--include-deleted", "--out", str(src), "-q"]) == EXIT_OK
    capsys.readouterr()
    assert main(["nodes", "--snapshot", str(src), *filters, "--format", "jsonl"]) == EXIT_OK
    listed = capsys.readouterr().out
    query = query_from_args(build_parser().parse_args(["nodes", *filters]))
    want = filter_snapshot(load_snapshot(src), query)
    save_sharded_snapshot(tmp_path / "want", want, 3)
    monkeypatch.setattr(_source, "load_snapshot", lambda *a, **k: pytest.fail("loaded whole"))
    got = tmp_path / "got"
    args = ["nodes", "--snapshot", str(src), *filters, "--out", str(got), "--shards", "3"]
    assert main([*args, "--format", "jsonl"]) == EXIT_OK
    assert capsys.readouterr().out == listed
    for i, shard in enumerate(read_manifest(got).shards):
        assert shard.nodes == read_manifest(tmp_path / "want").shards[i].nodes
        lines = shard.path.read_bytes().splitlines()[1:]
        assert lines == (tmp_path / "want" / shard.path.name).read_bytes().splitlines()[1:]
    assert read_manifest(got).nodes == len(want.nodes) > 0


def test_a_filter_a_snapshot_cannot_apply_leaves_no_shards(server, tmp_path, capsys) -> None:
    """Re-saving in shards with a filter the snapshot's facts cannot answer is the same
    one-line error as listing it (exit 2), found before anything is written."""
    src = tmp_path / "s.jsonl"
    assert main(["nodes", "--api", server.url, "--out", str(src), "-q"]) == EXIT_OK
    capsys.readouterr()
    out = tmp_path / "d"
    code = main(["nodes", "--snapshot", str(src), "--country", "DE", "--out", str(out),
                 "--shards", "2"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == EXIT_INPUT
    assert "--country: the snapshot does not record the country of" in err
    assert not (out / "manifest.json").exists()
    assert not list(out.glob("shard-*")) if out.exists() else True


def test_a_snapshot_is_listed_and_saved_a_chunk_at_a_time(
    server, tmp_path, capsys, monkeypatch
) -> None:
    """nodes --snapshot never loads it whole: json, jsonl and the table list the nodes the
    filters keep (as filtering it whole gives), --out FILE saves them (even over the file
    read: it is replaced once written), and a filter the snapshot cannot answer is refused
    before anything is printed."""
    from nodeselect import load_snapshot  # noqa: PLC0415
    from nodeselect.cli import _source  # noqa: PLC0415

    src = tmp_path / "s.jsonl"
    argv = ["nodes", "--api", server.url, "--status", "AVAILABLE", "--status", "OFFLINE"]
    assert main([*argv, "--out", str(src), "-q", "--format", "jsonl"]) == EXIT_OK
    capsys.readouterr()
    want = [n for n in load_snapshot(src).nodes if n.facts.status == "AVAILABLE"]
    monkeypatch.setattr(_source, "load_snapshot", lambda *a, **k: pytest.fail("loaded whole"))
    base = ["nodes", "--snapshot", str(src), "--status", "AVAILABLE"]
    assert main([*base, "--format", "jsonl"]) == EXIT_OK
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["document"]["uuid"] for r in rows] == [n.uuid for n in want]
    assert main([*base, "--format", "json"]) == EXIT_OK
    assert [r["document"]["uuid"] for r in json.loads(capsys.readouterr().out)] == [
        n.uuid for n in want
    ]
    assert main(base) == EXIT_OK
    table = capsys.readouterr().out
    assert f"{len(want)} nodes from snapshot" in table
    assert all(n.uuid[:8] in table for n in want)
    assert main([*base, "--out", str(src), "--force", "-q", "--format", "jsonl"]) == EXIT_OK
    capsys.readouterr()
    monkeypatch.undo()
    assert [n.uuid for n in load_snapshot(src).nodes] == [n.uuid for n in want]
    code = main(["nodes", "--snapshot", str(src), "--compliance", "GDPR", "--format", "jsonl"])
    out, err = capsys.readouterr()
    assert code == EXIT_INPUT
    assert out == ""
    assert "--compliance GDPR: the snapshot proves that tag for none" in err


@pytest.mark.parametrize(
    "flags",
    [
        ["--status", "AVAILABLE"],
        ["--country", "DE"],
        ["--status", "OFFLINE", "--compliance", "GDPR"],
        ["--status", "DELETED"],
        ["--include-deleted", "--compliance", "EEA"],
    ],
)
@pytest.mark.parametrize("size", [1, 7, 1000])
def test_filtering_a_snapshot_in_chunks_is_filtering_it_whole(server, tmp_path, flags, size):
    """_select over chunks of any size, of documents or lean nodes, keeps the nodes, and
    finds the error (the same message), that filter_snapshot finds on the whole snapshot."""
    from nodeselect import load_snapshot  # noqa: PLC0415
    from nodeselect.cli._main import build_parser  # noqa: PLC0415
    from nodeselect.cli.nodes import (  # noqa: PLC0415
        _select,
        _Tally,
        filter_snapshot,
        query_from_args,
    )
    from nodeselect.errors import InputError  # noqa: PLC0415
    from nodeselect.fetch import SnapshotNodes  # noqa: PLC0415

    src = tmp_path / "s.jsonl"
    argv = ["nodes", "--api", server.url, "--status", "AVAILABLE", "--status", "OFFLINE"]
    assert main([*argv, "--compliance", "GDPR", "--out", str(src), "-q", "-o", "jsonl"]) == 0
    query = query_from_args(build_parser().parse_args(["nodes", *flags]))
    try:
        want: object = [n.uuid for n in filter_snapshot(load_snapshot(src), query).nodes]
    except InputError as exc:
        want = str(exc)
    for read in (SnapshotNodes.chunks, SnapshotNodes.lean_chunks):  # (the first pass: lean)
        tally = _Tally()
        kept = [n.uuid for c in read(SnapshotNodes(src), size) for n in _select(c, query, tally)]
        try:
            tally.check()
            got: object = kept
        except InputError as exc:
            got = str(exc)
        assert got == want, read.__name__
