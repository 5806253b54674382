"""Snapshots round-trip a fetched fleet exactly, and bad files fail with file:line."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from nodeselect import Client, NodeQuery, SnapshotError, load_snapshot, save_snapshot
from nodeselect.sim import generate_fleet
from nodeselect.sim._query import parse_params

FLEET = generate_fleet(120, seed=8)


def handler(request: httpx.Request) -> httpx.Response:
    q = parse_params(dict(request.url.params))
    ids, total = FLEET.select(q)
    data = b",".join(FLEET.page_bytes(ids))
    tail = b'],"limit":%d,"page":%d,"total":%d}' % (q.limit, q.page, total)
    return httpx.Response(200, content=b'{"data":[' + data + tail)


@pytest.fixture(scope="module")
def result():
    with Client("http://test", transport=httpx.MockTransport(handler)) as c:
        return c.fetch(NodeQuery(statuses=["AVAILABLE", "OFFLINE"], compliance=["GDPR"]))


def test_round_trip_keeps_documents_facts_and_query(tmp_path, result) -> None:
    """Saving then loading gives the same documents (byte for byte), facts, query and verdict."""
    path = tmp_path / "fleet.jsonl"
    save_snapshot(path, result)
    back = load_snapshot(path)
    assert [(n.uuid, n.raw, n.facts, n.lean) for n in back.nodes] == [
        (n.uuid, n.raw, n.facts, n.lean) for n in result.nodes
    ]
    assert back.query == result.query
    assert back.complete == result.complete
    assert back.stats.pages == result.stats.pages
    assert back.fetched_at == result.fetched_at


def test_missing_file_names_the_file(tmp_path) -> None:
    """A missing snapshot raises SnapshotError naming the file."""
    with pytest.raises(SnapshotError, match=r"nope\.jsonl"):
        load_snapshot(tmp_path / "nope.jsonl")


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ("", ":1:"),
        ("{not json\n", ":1:"),
        ('{"something": 1}\n', ":1:"),
        (
            '{"nodeselect_snapshot": 1, "fetched_at": "2024-01-01T00:00:00+00:00"}\n{"x": 1}\n',
            ":2:",
        ),
        (
            '{"nodeselect_snapshot": 1, "fetched_at": "2024-01-01T00:00:00+00:00"}\n\n'
            '{"document": {"uuid": 5}, "nodeselect": {}}\n',
            ":3:",
        ),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, content, where) -> None:
    """Each malformed line raises SnapshotError with file:line."""
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(SnapshotError, match=rf"bad\.jsonl{where}"):
        load_snapshot(path)


def test_duplicate_nodes_are_refused(tmp_path, result) -> None:
    """A snapshot with one node twice is refused (it could not have come from one fetch)."""
    path = tmp_path / "dup.jsonl"
    save_snapshot(path, result)
    lines = path.read_bytes().splitlines()
    path.write_bytes(b"\n".join([*lines, lines[1]]) + b"\n")
    with pytest.raises(SnapshotError, match="appears twice"):
        load_snapshot(path)


def test_unwritable_path_is_a_snapshot_error(tmp_path, result) -> None:
    """Writing into a missing directory raises SnapshotError naming the path."""
    with pytest.raises(SnapshotError, match="missing"):
        save_snapshot(tmp_path / "missing" / "x.jsonl", result)


_GOOD = '"nodeselect_snapshot": 1, "fetched_at": "2026-01-31T12:00:00Z"'


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('{"nodeselect_snapshot": 1}', "no 'fetched_at'"),
        ('{"nodeselect_snapshot": 1, "fetched_at": 5}', "'fetched_at' must be an ISO 8601"),
        ('{"nodeselect_snapshot": 1, "fetched_at": "yesterday"}', "is not an ISO 8601 time"),
        ("{" + _GOOD + ', "query": []}', "'query' must be an object"),
        ("{" + _GOOD + ', "query": {"statuses": 5}}', "query is not valid"),
        ("{" + _GOOD + ', "query": {"limit": "x"}}', "query is not valid"),
        ("{" + _GOOD + ', "stats": []}', "'stats' must be an object"),
        ("{" + _GOOD + ', "stats": {"pages": "x"}}', r"stats\.pages is not valid"),
        ("{" + _GOOD + ', "stats": {"totals_seen": 5}}', r"stats\.totals_seen is not valid"),
        ("{" + _GOOD + ', "stats": {"issues": [1]}}', r"stats\.issues\[0\] is not valid"),
        ("{" + _GOOD + ', "stats": {"retries": {"x": "y"}}}', r"stats\.retries"),
        ("[" * 5000 + "]" * 5000, "not a nodeselect snapshot header|nested too deep"),
        ('{"a": ' + "[" * 5000 + "]" * 5000 + "}", "nested too deep|not a nodeselect"),
    ],
)
def test_a_malformed_header_is_a_snapshot_error_at_line_1(tmp_path, header, expected) -> None:
    """Every malformed header field is a SnapshotError naming file:1 and the field."""
    path = tmp_path / "bad.jsonl"
    path.write_text(header + "\n")
    with pytest.raises(SnapshotError, match=expected) as info:
        load_snapshot(path)
    assert f"{path}:1:" in str(info.value)


def test_a_node_line_nested_too_deep_is_a_snapshot_error(tmp_path) -> None:
    """A node line of 5,000 nested brackets is a SnapshotError at its line, no RecursionError."""
    path = tmp_path / "deep.jsonl"
    deep = '{"document": ' + "[" * 5000 + "]" * 5000 + ', "nodeselect": {}}'
    path.write_text("{" + _GOOD + "}\n" + deep + "\n")
    with pytest.raises(SnapshotError, match=f"{path}:2:"):
        load_snapshot(path)


def test_a_snapshot_is_private_and_leaves_no_temporary_file(tmp_path, result) -> None:
    """A new snapshot, and one replacing a 0644 file, is mode 0600; nothing else is left."""
    new, old = tmp_path / "new.jsonl", tmp_path / "old.jsonl"
    old.write_text("old")
    old.chmod(0o644)
    save_snapshot(new, result)
    save_snapshot(old, result)
    assert new.stat().st_mode & 0o777 == 0o600
    assert old.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.jsonl", "old.jsonl"]
    assert len(load_snapshot(old).nodes) == len(result.nodes)


def test_a_symlink_target_is_refused_and_its_file_untouched(tmp_path, result) -> None:
    """A planted link is not followed: refused by default, replaced itself on request."""
    victim = tmp_path / "victim"
    victim.write_text("precious")
    link = tmp_path / "snap.jsonl"
    link.symlink_to(victim)
    with pytest.raises(SnapshotError, match="symbolic link"):
        save_snapshot(link, result)
    save_snapshot(link, result, replace_symlink=True)
    assert victim.read_text() == "precious"
    assert not link.is_symlink()
    assert len(load_snapshot(link).nodes) == len(result.nodes)


@pytest.mark.parametrize("kind", ["directory", "device"])
def test_a_directory_or_device_target_is_refused(tmp_path, result, kind) -> None:
    """Only a new or regular file is written; a directory or /dev/null is refused."""
    target = tmp_path if kind == "directory" else Path("/dev/null")
    with pytest.raises(SnapshotError, match=r"a directory|not a regular file"):
        save_snapshot(target, result)


def test_concurrent_writers_do_not_collide(tmp_path, result) -> None:
    """Eight writers at once: each uses its own temporary file; the result is one whole
    snapshot and no temporary file is left."""
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    target = tmp_path / "snap.jsonl"
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: save_snapshot(target, result), range(8)))
    assert [p.name for p in tmp_path.iterdir()] == ["snap.jsonl"]
    assert len(load_snapshot(target).nodes) == len(result.nodes)
