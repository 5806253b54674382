"""SnapshotNodes: a snapshot's nodes read a chunk at a time, and found again by index in its
files, without holding them; and NodeTable.from_snapshot's checks of the files."""

from __future__ import annotations

import json

import attrs
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect import Client, NodeQuery, NodeTable, SnapshotError, load_snapshot
from nodeselect.fetch import (
    SnapshotNodes,
    save_sharded_nodes,
    save_sharded_snapshot,
    save_snapshot,
)
from nodeselect.fetch import _snapshot_nodes as snapshot_nodes
from nodeselect.sim import generate_fleet
from nodeselect.sim._query import parse_params

FLEET = generate_fleet(45, seed=12)


def _handler(request: httpx.Request) -> httpx.Response:
    q = parse_params(dict(request.url.params))
    ids, total = FLEET.select(q)
    tail = b'],"limit":%d,"page":%d,"total":%d}' % (q.limit, q.page, total)
    return httpx.Response(200, content=b'{"data":[' + b",".join(FLEET.page_bytes(ids)) + tail)


with Client("http://test", transport=httpx.MockTransport(_handler)) as _c:
    RESULT = _c.fetch(NodeQuery(statuses=["AVAILABLE", "OFFLINE"]))


def _key(nodes):
    return [(n.uuid, n.raw, n.facts, n.lean) for n in nodes]


@settings(max_examples=20, deadline=None)
@given(shards=st.integers(1, 9), size=st.integers(1, 50), scan_first=st.booleans())
def test_chunks_and_indices_give_the_loaded_nodes(tmp_path_factory, shards, size, scan_first):
    """In a sharded snapshot (empty shards included), the chunks hold every node in order,
    each of ``size`` but the last; nodes[i] (negative and slices too) is the loaded node i,
    whether or not a pass of chunks() came first."""
    d = tmp_path_factory.mktemp("snap") / "fleet"
    save_sharded_snapshot(d, RESULT, shards)
    want = load_snapshot(d).nodes
    nodes = SnapshotNodes(d)
    if not scan_first:
        chunks = list(nodes.chunks(size))
        assert all(len(c) == size for c in chunks[:-1])
        assert _key(n for c in chunks for n in c) == _key(want)
    assert len(nodes) == len(want)
    assert _key(nodes[i] for i in range(len(want))) == _key(want)
    assert _key([nodes[-1]]) == _key(want[-1:])
    assert _key(nodes[3:9:2]) == _key(want[3:9:2])
    with pytest.raises(IndexError, match=f"node {len(want)} of a snapshot of {len(want)}"):
        nodes[len(want)]
    with pytest.raises(TypeError, match="indices are ints"):
        nodes["a"]  # type: ignore[call-overload]


def test_a_single_file_its_header_and_where_each_node_is(tmp_path, monkeypatch) -> None:
    """A snapshot file: the header is read up front (fetched_at, query, source), blank lines
    are skipped, and location(i) names the node's line (counted a block at a time: blocks of
    100 bytes here)."""
    monkeypatch.setattr(snapshot_nodes, "_READ_BUFFER", 100)
    path = tmp_path / "one.jsonl"
    save_snapshot(path, RESULT)
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join([*lines[:3], b"", *lines[3:]]))  # a blank line after node 2
    nodes = SnapshotNodes(path)
    assert nodes.header.fetched_at == RESULT.fetched_at
    assert nodes.header.query == RESULT.query
    assert nodes.header.nodes == ()
    assert nodes.header.source == f"snapshot {path}"
    assert nodes.location(0) == f"{path}:2"
    assert nodes.location(2) == f"{path}:5"
    assert nodes[2].uuid == RESULT.nodes[2].uuid
    assert "document" not in repr(nodes)
    assert RESULT.nodes[0].uuid not in repr(nodes)


def test_a_node_in_two_shards_is_named_with_both_places(tmp_path) -> None:
    """NodeTable.from_snapshot refuses a snapshot holding a node twice, naming both lines."""
    twice = attrs.evolve(RESULT, nodes=(*RESULT.nodes, RESULT.nodes[0]))
    save_sharded_snapshot(tmp_path / "d", twice, 2)
    n = len(twice.nodes)
    with pytest.raises(SnapshotError) as info:
        NodeTable.from_snapshot(tmp_path / "d")
    msg = str(info.value)
    assert f"node {RESULT.nodes[0].uuid} appears twice" in msg
    assert f"shard-00001.jsonl:{n - n // 2 + 1}" in msg  # the last line of the second shard
    assert "shard-00000.jsonl:2)" in msg


def test_a_shard_cut_short_a_bad_line_and_a_missing_file(tmp_path) -> None:
    """The checks load_snapshot makes, with the same messages: the manifest's count, the
    line that is not a node line, a file that cannot be read."""
    d = tmp_path / "d"
    save_sharded_snapshot(d, RESULT, 2)
    shard = d / "shard-00001.jsonl"
    lines = shard.read_bytes().splitlines()
    shard.write_bytes(b"\n".join(lines[:-1]) + b"\n")
    with pytest.raises(SnapshotError, match="nodes where the manifest says"):
        list(SnapshotNodes(d).chunks())
    with pytest.raises(SnapshotError, match="nodes where the manifest says"):
        len(SnapshotNodes(d))
    shard.write_bytes(b"\n".join([*lines[:2], b'{"document": 1}', *lines[3:]]) + b"\n")
    with pytest.raises(SnapshotError, match=r"shard-00001\.jsonl:3: not a node line"):
        NodeTable.from_snapshot(d)
    shard.unlink()
    with pytest.raises(SnapshotError, match=r"shard-00001\.jsonl: cannot read the snapshot"):
        NodeTable.from_snapshot(d)
    with pytest.raises(SnapshotError, match="cannot read the snapshot"):
        SnapshotNodes(tmp_path / "missing.jsonl")
    with pytest.raises(ValueError, match="size must be an int >= 1"):
        next(SnapshotNodes(tmp_path / "d").chunks(0))


def test_a_file_changed_after_it_was_read_is_reported(tmp_path) -> None:
    """nodes[i] reads the line where node i was: a file rewritten since says so."""
    path = tmp_path / "one.jsonl"
    save_snapshot(path, RESULT)
    nodes = SnapshotNodes(path)
    assert len(nodes) == len(RESULT.nodes)
    head = json.dumps({"nodeselect_snapshot": 1, "fetched_at": "2026-01-01T00:00:00Z"})
    path.write_text(head + "\n" + "x" * 20_000 + "\n")
    with pytest.raises(SnapshotError, match="no longer a node line; the file changed"):
        nodes[3]


def test_one_shard_of_a_sharded_snapshot(tmp_path) -> None:
    """shard=i reads shard i alone (its manifest count checked), as load_snapshot(shard=i);
    out of range, or a shard other than 0 of a single file, is refused."""
    save_sharded_snapshot(tmp_path / "d", RESULT, 3)
    save_snapshot(tmp_path / "one.jsonl", RESULT)
    for i in range(3):
        nodes = SnapshotNodes(tmp_path / "d", shard=i)
        want = load_snapshot(tmp_path / "d", shard=i)
        assert _key(n for c in nodes.chunks(7) for n in c) == _key(want.nodes)
        assert nodes.header.source == want.source
    assert len(SnapshotNodes(tmp_path / "one.jsonl", shard=0)) == len(RESULT.nodes)
    with pytest.raises(
        SnapshotError, match=r"shard=3 is out of range; this snapshot has shards 0\.\.2"
    ):
        SnapshotNodes(tmp_path / "d", shard=3)
    with pytest.raises(SnapshotError, match="shard=1 asked of a single-file snapshot"):
        SnapshotNodes(tmp_path / "one.jsonl", shard=1)


def test_an_empty_snapshot_gives_an_empty_table(tmp_path) -> None:
    """No node at all (a file, or a directory of empty shards): an empty table with the
    units an empty fleet decides, as from_nodes([]) gives."""
    empty = attrs.evolve(RESULT, nodes=())
    save_snapshot(tmp_path / "e.jsonl", empty)
    save_sharded_snapshot(tmp_path / "d", empty, 3)
    want = NodeTable.from_nodes([], now=RESULT.fetched_at)
    for path in (tmp_path / "e.jsonl", tmp_path / "d"):
        table = NodeTable.from_snapshot(path)
        assert len(table) == len(SnapshotNodes(path)) == 0
        assert table.units == want.units


@pytest.mark.parametrize("give", [-1, +1])
def test_save_sharded_nodes_refuses_a_miscount_before_the_manifest(tmp_path, give) -> None:
    """save_sharded_nodes writes exactly ``count`` nodes: fewer or more in the iterable is a
    SnapshotError, and no manifest is written (the directory is not a snapshot)."""
    nodes = RESULT.nodes[:10]
    with pytest.raises(SnapshotError, match="than counted while writing the shards"):
        save_sharded_nodes(tmp_path / "d", RESULT, iter(nodes), len(nodes) - give, 3)
    assert not (tmp_path / "d" / "manifest.json").exists()
    manifest = save_sharded_nodes(tmp_path / "ok", RESULT, iter(nodes), len(nodes), 3)
    assert _key(load_snapshot(tmp_path / "ok").nodes) == _key(nodes)
    assert manifest.nodes == len(nodes)


def test_crlf_line_ends_and_no_final_newline(tmp_path) -> None:
    """A snapshot file edited on another system (CRLF line ends, no newline after the last
    node) reads the same nodes, in chunks and by index, as load_snapshot reads."""
    path = tmp_path / "one.jsonl"
    save_snapshot(path, RESULT)
    path.write_bytes(path.read_bytes().rstrip(b"\n").replace(b"\n", b"\r\n"))
    nodes = SnapshotNodes(path)
    want = load_snapshot(path).nodes
    assert _key(n for c in nodes.chunks(4) for n in c) == _key(want)
    assert _key([nodes[0], nodes[-1]]) == _key([want[0], want[-1]])


def test_from_nodes_of_snapshot_nodes_reads_them_in_chunks(tmp_path, monkeypatch) -> None:
    """NodeTable.from_nodes(SnapshotNodes(...)) is from_snapshot (one pass of chunks, no
    node read back by index), with from_nodes's own default time; "newest" duplicates go
    the general way (by index) and give the same table here."""
    save_sharded_snapshot(tmp_path / "d", RESULT, 3)
    nodes = SnapshotNodes(tmp_path / "d")
    want = NodeTable.from_snapshot(tmp_path / "d", now=RESULT.fetched_at)
    reads: list[int] = []
    real = SnapshotNodes._read_many
    monkeypatch.setattr(SnapshotNodes, "_read_many", lambda s, i: reads.append(1) or real(s, i))
    got = NodeTable.from_nodes(nodes, now=RESULT.fetched_at)
    assert reads == []
    assert got.uuid.tolist() == want.uuid.tolist()
    assert got.units == want.units
    newest = NodeTable.from_nodes(nodes, now=RESULT.fetched_at, duplicates="newest")
    assert reads
    assert newest.uuid.tolist() == want.uuid.tolist()


@pytest.mark.parametrize("stop", ["interrupt", "fewer", "more"])
def test_a_resave_that_stops_midway_leaves_the_old_snapshot(tmp_path, stop) -> None:
    """Re-saving over a sharded snapshot and stopping midway (a Ctrl-C in the second shard,
    or a miscount) leaves the old snapshot as it was, readable, with no temporary file: the
    new shards take their names only once every one of them is written."""
    d = tmp_path / "d"
    old = attrs.evolve(RESULT, nodes=RESULT.nodes[:10])
    save_sharded_snapshot(d, old, 3)
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    new = RESULT.nodes[10:]
    assert len(new) >= 8

    def interrupted():
        for i, node in enumerate(new):
            if i == len(new) // 4 + 1:  # (in the second of 4 shards)
                raise KeyboardInterrupt
            yield node

    count = {"interrupt": len(new), "fewer": len(new) + 1, "more": len(new) - 1}[stop]
    nodes = interrupted() if stop == "interrupt" else iter(new)
    with pytest.raises(KeyboardInterrupt if stop == "interrupt" else SnapshotError):
        save_sharded_nodes(d, RESULT, nodes, count, 4)
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before
    assert _key(load_snapshot(d).nodes) == _key(old.nodes)


def _decoded_both(line: bytes, where) -> tuple[object, object]:
    """``line`` decoded in one pass (lean) and in two steps: each the node's uuid, view and
    facts, or the SnapshotError's message."""
    from nodeselect.fetch._snapshot import lean_node_of_line, node_of_line  # noqa: PLC0415

    def decoded(read):
        try:
            node = read(line, where, 7)
        except SnapshotError as exc:
            return str(exc)
        return (node.uuid, node.lean, node.facts)

    return decoded(lean_node_of_line), decoded(node_of_line)


_LINES = [
    b'{"document":{"uuid":"a"},"document":{"uuid":"b"},"nodeselect":{}}',  # a key twice
    b'{"nodeselect":{"status":"X"},"document":{"uuid":"a","cpus":[{"num_cores":"4"}]},'
    b'"nodeselect":{"status":"Y"}}',  # a numeric string: the lax decode
    b'{"document":{"uuid":"a"},"nodeselect":{"compliance_tags":["a","a"]},"extra":[1]}',
    b'{"document":1}',
    b'{"document":{"uuid":"a"},"nodeselect":{"status":3}}',
    b'{"document":{"uuid":"a"},"nodeselect":{"compliance_tags":null}}',
    b"[",
    b'{"document":{"uuid":"a","gpus":[{"vram_gb_max":"inf"}]},"nodeselect":{}}',
    b'{"document":{"uuid":"a","gpus":[{"vram_gb_max":"1e3"}]},"nodeselect":{"country":"DE"}}',
    b'{"document":' * 300 + b"{}" + b"}" * 300,
]


@pytest.mark.parametrize("line", _LINES)
def test_a_lean_line_decodes_as_a_full_one(line: bytes, tmp_path) -> None:
    """lean_chunks decodes a line in one pass, chunks in two (the document split out, then
    decoded strictly or with numeric strings): the same lean view and facts, or the same
    SnapshotError, whatever the line."""
    lean, full = _decoded_both(line, tmp_path)
    assert lean == full


def test_lean_chunks_record_where_each_node_is_and_hide_the_document(tmp_path) -> None:
    """A pass of lean_chunks (what from_snapshot reads) records each node's place as chunks()
    does: nodes[i] then reads the node back without scanning the files again. A lean node's
    repr names only its uuid and facts (its view holds addresses and names)."""
    d = tmp_path / "d"
    save_sharded_snapshot(d, RESULT, 3)
    nodes = SnapshotNodes(d)
    chunks = list(nodes.lean_chunks(4))
    assert [len(c) for c in chunks[:-1]] == [4] * (len(chunks) - 1)
    lean = [n for c in chunks for n in c]
    assert [(n.lean, n.facts) for n in lean] == [(n.lean, n.facts) for n in RESULT.nodes]
    assert nodes._offsets is not None  # recorded by the pass: no scan for nodes[i]
    assert _key([nodes[5]]) == _key(RESULT.nodes[5:6])
    node = next(n for n in lean if n.lean.ipv4_address and n.lean.name)
    assert repr(node) == f"LeanFetchedNode(uuid={node.uuid!r}, facts={node.facts!r})"
    with pytest.raises(ValueError, match=r"SnapshotNodes\.lean_chunks: size must be an int"):
        nodes.lean_chunks(0)


def _paths(value: object, at: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Every path to a value inside a decoded JSON document."""
    out: list[tuple[object, ...]] = [at]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*at, i))
    return out


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["12", "1e3", "-0.5", "inf", "nan", " 7 ", "", "x", "2026-11-01T12:00:00Z"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), which=st.integers(0, len(RESULT.nodes) - 1))
def test_a_changed_line_decodes_lean_as_full(tmp_path_factory, data, which) -> None:
    """Any value of a real node line (the document's or the facts') replaced by any JSON
    value: the one-pass lean decode gives what the two-step decode gives, or the same
    SnapshotError."""
    from nodeselect.fetch._snapshot import node_line  # noqa: PLC0415

    line = json.loads(node_line(RESULT.nodes[which]))
    path = data.draw(st.sampled_from(_paths(line)[1:]), label="path")
    value = data.draw(_JSON_VALUES, label="value")
    target = line
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    lean, full = _decoded_both(json.dumps(line).encode(), tmp_path_factory.getbasetemp())
    assert lean == full
