"""Snapshots round-trip a fetched fleet exactly, and bad files fail with file:line."""

from __future__ import annotations

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
