"""Sharded snapshots: N shard files and a manifest read back as the same fleet, one shard or all."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodeselect import Client, NodeQuery, SnapshotError, load_snapshot
from nodeselect.fetch import (
    MANIFEST_NAME,
    read_manifest,
    save_sharded_snapshot,
    save_snapshot,
    snapshot_fetched_at,
)
from nodeselect.sim import DIALECTS, generate_fleet
from nodeselect.sim._query import parse_params

FLEET = generate_fleet(60, seed=11)


def handler(request: httpx.Request) -> httpx.Response:
    q = parse_params(dict(request.url.params))
    ids, total = FLEET.select(q)
    data = b",".join(FLEET.page_bytes(ids))
    tail = b'],"limit":%d,"page":%d,"total":%d}' % (q.limit, q.page, total)
    return httpx.Response(200, content=b'{"data":[' + data + tail)


def _fetch():
    with Client("http://test", transport=httpx.MockTransport(handler)) as c:
        return c.fetch(NodeQuery(statuses=["AVAILABLE", "OFFLINE", "RESOURCE_BUSY"]))


RESULT = _fetch()


@pytest.fixture
def result():
    return RESULT


def _key(nodes):
    return [(n.uuid, n.raw, n.facts, n.lean) for n in nodes]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(shards=st.integers(1, 17), take=st.integers(0, 60))
def test_shards_read_back_as_the_fleet_in_order(tmp_path_factory, shards, take) -> None:
    """All shards read back in fetched order equal the fleet; each shard is a run of it, and
    shard sizes differ by at most one (empty shards included)."""
    result = RESULT
    take = min(take, len(result.nodes))
    fleet = result.__class__(
        nodes=result.nodes[:take],
        rejected=(),
        stats=result.stats,
        query=result.query,
        fetched_at=result.fetched_at,
        source=result.source,
    )
    d = tmp_path_factory.mktemp("snap")
    manifest = save_sharded_snapshot(d, fleet, shards)
    back = load_snapshot(d)
    assert _key(back.nodes) == _key(fleet.nodes)
    assert back.query == fleet.query
    assert back.fetched_at == fleet.fetched_at
    assert back.complete == fleet.complete
    sizes = [s.nodes for s in manifest.shards]
    assert sum(sizes) == take
    assert max(sizes) - min(sizes) <= 1
    joined = []
    for i in range(shards):
        part = load_snapshot(d, shard=i)
        assert len(part.nodes) == sizes[i]
        joined.extend(part.nodes)
    assert _key(joined) == _key(fleet.nodes)
    assert read_manifest(d) == manifest


def test_one_shard_file_is_a_snapshot_on_its_own(tmp_path, result) -> None:
    """A shard file loads alone as a single-file snapshot with the fetch's query and time."""
    manifest = save_sharded_snapshot(tmp_path, result, 3)
    alone = load_snapshot(manifest.shards[1].path)
    assert _key(alone.nodes) == _key(load_snapshot(tmp_path, shard=1).nodes)
    assert alone.query == result.query
    header = json.loads(manifest.shards[1].path.read_bytes().splitlines()[0])
    assert header["shard"] == {"index": 1, "count": 3}


def test_manifest_records_when_what_and_the_fetch_facts(tmp_path, result) -> None:
    """The manifest says fetched_at, the filters, completeness, the stats and nodes per shard."""
    save_sharded_snapshot(tmp_path, result, 4)
    data = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert data["query"] == result.query.to_json()
    assert data["complete"] is result.complete
    assert data["stats"] == result.stats.to_json()
    assert data["nodes"] == len(result.nodes)
    assert [s["file"] for s in data["shards"]] == [f"shard-{i:05d}.jsonl" for i in range(4)]


def test_rewriting_with_fewer_shards_removes_the_stale_ones(tmp_path, result) -> None:
    """Saving 2 shards where 5 were leaves exactly 2 shard files, read back whole."""
    save_sharded_snapshot(tmp_path, result, 5)
    save_sharded_snapshot(tmp_path, result, 2)
    assert sorted(p.name for p in tmp_path.glob("shard-*")) == [
        "shard-00000.jsonl",
        "shard-00001.jsonl",
    ]
    assert _key(load_snapshot(tmp_path).nodes) == _key(result.nodes)


@pytest.mark.parametrize("shards", [0, -1, 100_000])
def test_a_shard_count_out_of_range_is_refused(tmp_path, result, shards) -> None:
    """shards outside 1..99,999 is a SnapshotError saying what is accepted."""
    with pytest.raises(SnapshotError, match="from 1 to"):
        save_sharded_snapshot(tmp_path, result, shards)


def test_asking_for_a_missing_shard_names_the_range(tmp_path, result) -> None:
    """shard=3 of a 3-shard snapshot (or shard=1 of one file) is refused with the valid range."""
    save_sharded_snapshot(tmp_path / "d", result, 3)
    with pytest.raises(SnapshotError, match=r"shards 0\.\.2"):
        load_snapshot(tmp_path / "d", shard=3)
    single = tmp_path / "d" / "shard-00000.jsonl"
    with pytest.raises(SnapshotError, match="one shard, 0"):
        load_snapshot(single, shard=1)


def test_a_directory_without_manifest_is_not_a_snapshot(tmp_path) -> None:
    """An empty directory fails naming manifest.json."""
    with pytest.raises(SnapshotError, match=r"manifest\.json"):
        load_snapshot(tmp_path)


def test_a_shard_cut_short_is_detected(tmp_path, result) -> None:
    """A shard holding fewer nodes than its manifest entry fails naming the shard file."""
    m = save_sharded_snapshot(tmp_path, result, 2)
    path = m.shards[0].path
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]))
    with pytest.raises(SnapshotError, match=r"shard-00000\.jsonl: holds"):
        load_snapshot(tmp_path)


def test_a_node_in_two_shards_is_refused(tmp_path, result) -> None:
    """The same uuid in two shards fails naming both files."""
    m = save_sharded_snapshot(tmp_path, result, 2)
    first = m.shards[0].path.read_bytes().splitlines(keepends=True)
    second = m.shards[1].path.read_bytes().splitlines(keepends=True)
    m.shards[1].path.write_bytes(b"".join([second[0], first[1], *second[2:]]))
    with pytest.raises(SnapshotError, match=r"also in shard-00000\.jsonl"):
        load_snapshot(tmp_path)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "not JSON"),
        ('{"x": 1}', "not a nodeselect snapshot manifest"),
        ('{"nodeselect_snapshot_manifest": 1, "fetched_at": "2026-01-01T00:00:00Z"}', "not valid"),
        (
            '{"nodeselect_snapshot_manifest": 1, "fetched_at": "2026-01-01T00:00:00Z",'
            ' "shards": [{"file": "../x.jsonl", "nodes": 1}]}',
            "plain file name",
        ),
        (
            '{"nodeselect_snapshot_manifest": 1, "fetched_at": "2026-01-01T00:00:00Z",'
            ' "shards": []}',
            "no shards",
        ),
    ],
)
def test_a_bad_manifest_says_what_was_expected(tmp_path, content, match) -> None:
    """Each malformed manifest is a SnapshotError naming manifest.json and the problem."""
    (tmp_path / MANIFEST_NAME).write_text(content)
    with pytest.raises(SnapshotError, match=match) as info:
        load_snapshot(tmp_path)
    assert MANIFEST_NAME in str(info.value)


def test_numbers_sent_as_strings_load_back_as_fetched(tmp_path) -> None:
    """A node whose numbers came as JSON strings (the fetch reads them as numbers) loads back
    from a snapshot the same, not as a bad line."""
    sim = generate_fleet(40, seed=3, dialect=DIALECTS["numeric-strings"])

    def serve(request: httpx.Request) -> httpx.Response:
        q = parse_params(dict(request.url.params))
        ids, total = sim.select(q)
        tail = b'],"limit":%d,"page":%d,"total":%d}' % (q.limit, q.page, total)
        return httpx.Response(200, content=b'{"data":[' + b",".join(sim.page_bytes(ids)) + tail)

    with Client("http://test", transport=httpx.MockTransport(serve)) as c:
        fleet = c.fetch(NodeQuery())
    assert any(n.lean.numeric_strings for n in fleet.nodes)
    save_sharded_snapshot(tmp_path, fleet, 2)
    assert _key(load_snapshot(tmp_path).nodes) == _key(fleet.nodes)


def test_the_manifest_is_written_privately_and_never_through_a_planted_link(
    tmp_path, result
) -> None:
    """The manifest goes through the same writer as the shards: mode 0600, no temporary file
    left behind, and a symbolic link planted at its name is refused, not followed."""
    out = tmp_path / "snap"
    save_sharded_snapshot(out, result, shards=2)
    assert (out / MANIFEST_NAME).stat().st_mode & 0o777 == 0o600
    assert not list(out.glob("*.tmp"))
    assert not list(out.glob(".*.tmp"))
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (out / MANIFEST_NAME).unlink()
    (out / MANIFEST_NAME).symlink_to(victim)
    with pytest.raises(SnapshotError, match="symbolic link"):
        save_sharded_snapshot(out, result, shards=2)
    assert victim.read_text() == "keep me"


def test_snapshot_fetched_at_reads_the_manifest_or_the_header_alone(tmp_path, result) -> None:
    """snapshot_fetched_at: a sharded snapshot's manifest's fetched_at, a snapshot file's
    header's (the first line alone: nodes after it are not read, a broken one included);
    SnapshotError naming the path for anything else."""
    save_sharded_snapshot(tmp_path / "dir", result, 3)
    assert snapshot_fetched_at(tmp_path / "dir") == result.fetched_at
    one = tmp_path / "one.jsonl"
    save_snapshot(one, result)
    assert snapshot_fetched_at(one) == load_snapshot(one).fetched_at == result.fetched_at
    with one.open("ab") as f:
        f.write(b"{not a node\n")
    assert snapshot_fetched_at(one) == result.fetched_at
    for name, content, match in [
        ("empty.jsonl", b"", "empty file"),
        ("blank.jsonl", b"\n{}\n", "not JSON"),
        ("other.jsonl", b'{"hello": 1}\n', "not a nodeselect snapshot header"),
        ("old.jsonl", b'{"nodeselect_snapshot": 1}\n', "no 'fetched_at'"),
    ]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(SnapshotError, match=match) as err:
            snapshot_fetched_at(tmp_path / name)
        assert name in str(err.value)
    with pytest.raises(SnapshotError, match="cannot read the snapshot"):
        snapshot_fetched_at(tmp_path / "missing.jsonl")
    with pytest.raises(SnapshotError, match="manifest"):
        snapshot_fetched_at(tmp_path)  # a directory without a manifest
