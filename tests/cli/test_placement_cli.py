"""`nodeselect place`: the JSON schema, privacy of addresses, exit codes, over the demo fleet."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest

from nodeselect.cli import main
from nodeselect.fetch import SnapshotNodes

ROOT = Path(__file__).resolve().parents[2]
QUEUE = ROOT / "examples" / "jobs" / "queue.toml"
IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")


@pytest.fixture(scope="module")
def demo_json() -> tuple[int, dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["place", str(QUEUE), "--demo", "--json", "--show-private"])
    return code, json.loads(out.getvalue())


def test_place_json_follows_the_documented_schema(demo_json: tuple[int, dict]) -> None:
    """The --json document has the documented keys, and the exit code matches unplaced jobs."""
    code, doc = demo_json
    assert doc["schema"] == "nodeselect.plan/1"
    assert set(doc) == {
        "schema",
        "seed",
        "now",
        "assignments",
        "unplaced",
        "totals",
        "quality",
        "fleet",
    }
    assert set(doc["quality"]) == {
        "objective",
        "unplaced_capacity",
        "unplaced_no_fit",
        "repaired",
        "displaced",
        "moved",
        "solver",
    }
    assert set(doc["totals"]) == {
        "jobs_placed",
        "jobs_unplaced",
        "gpus_used",
        "nodes_used",
        "free_gpus_left",
        "stranded_gpus",
    }
    assert doc["fleet"]["simulated"] is True
    for a in doc["assignments"]:
        assert set(a) == {"job", "job_index", "priority", "score", "gpus", "replicas"}
        for r in a["replicas"]:
            assert set(r) == {"node_uuid", "node_name", "gpu_indices", "score", "address", "env"}
    for u in doc["unplaced"]:
        assert set(u) == {"job", "job_index", "priority", "reason", "rejected", "cause"}
    assert code == (1 if doc["unplaced"] else 0)
    assert doc["totals"]["jobs_placed"] + doc["totals"]["jobs_unplaced"] == 4


def test_place_json_lists_jobs_by_priority(demo_json: tuple[int, dict]) -> None:
    """Placed jobs come out in placement order: priorities never increase."""
    _, doc = demo_json
    prios = [a["priority"] for a in doc["assignments"]]
    assert prios == sorted(prios, reverse=True)


def test_place_hides_addresses_unless_asked(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --show-private neither the table nor the JSON contains an IP address."""
    main(["place", str(QUEUE), "--demo"])
    table = capsys.readouterr().out
    assert "prod-inference" in table
    assert not IPV4.search(table)
    main(["place", str(QUEUE), "--demo", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert all("address" not in r for a in doc["assignments"] for r in a["replicas"])
    assert all("MASTER_ADDR" not in r["env"] for a in doc["assignments"] for r in a["replicas"])
    main(["place", str(QUEUE), "--demo", "--format", "env"])
    assert not IPV4.search(capsys.readouterr().out)


def test_place_json_env_pins_each_replica_to_its_gpus(demo_json: tuple[int, dict]) -> None:
    """Every replica's env lists exactly its gpu_indices; no GPU of a node appears twice."""
    _, doc = demo_json
    used: dict[str, list[int]] = {}
    for a in doc["assignments"]:
        master = a["replicas"][0]["address"]
        for k, r in enumerate(a["replicas"]):
            visible = [int(g) for g in r["env"]["CUDA_VISIBLE_DEVICES"].split(",") if g]
            assert visible == r["gpu_indices"]
            assert r["env"]["NODE_RANK"] == str(k)
            assert r["env"]["MASTER_ADDR"] == master
            used.setdefault(r["node_uuid"], []).extend(r["gpu_indices"])
    assert all(len(g) == len(set(g)) for g in used.values())


def test_place_env_and_hostfile_formats(capsys: pytest.CaptureFixture[str]) -> None:
    """--format env prints one KEY=VALUE line per replica; hostfile needs --show-private."""
    main(["place", str(QUEUE), "--demo", "--format", "env"])
    lines = capsys.readouterr().out.splitlines()
    envs = [ln for ln in lines if ln.startswith("CUDA_VISIBLE_DEVICES=")]
    assert envs
    assert all("NODE_RANK=" in ln and "MASTER_PORT=" in ln for ln in envs)
    assert main(["place", str(QUEUE), "--demo", "--format", "hostfile"]) == 2
    assert "--show-private" in capsys.readouterr().err
    main(["place", str(QUEUE), "--demo", "--format", "hostfile", "--show-private"])
    hosts = [ln for ln in capsys.readouterr().out.splitlines() if not ln.startswith("#")]
    assert hosts
    assert all(re.fullmatch(r"\S+ slots=\d+", ln) for ln in hosts)


def test_place_with_a_bad_job_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A job file with an unknown key is an input error (exit 2) naming the file."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[[job]]\nname = "x"\nnodez = 2\n')
    assert main(["place", str(bad), "--demo"]) == 2
    assert "bad.toml" in capsys.readouterr().err


@pytest.mark.parametrize("workers", ["2"])
def test_place_workers_gives_the_same_plan(workers: str, capfd: pytest.CaptureFixture[str]) -> None:
    """`--workers N` surveys in threads; the plan (JSON, every field but the demo fleet's
    fetch time) is the one-thread plan."""
    args = ["place", str(QUEUE), "--demo", "--json", "--now", "2026-11-01T00:00:00Z"]
    one_code = main(args)
    one = json.loads(capfd.readouterr().out)
    code = main([*args, "--workers", workers])
    got = json.loads(capfd.readouterr().out)
    assert code == one_code
    assert one["assignments"]
    assert got.pop("fleet")
    assert one.pop("fleet")
    assert got == one


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5", "257"])
def test_place_workers_rejects_a_bad_count(bad: str, capfd: pytest.CaptureFixture[str]) -> None:
    """A bad `--workers` is a usage error (exit 2) naming the flag and what it accepts."""
    assert main(["place", str(QUEUE), "--demo", "--workers", bad]) == 2
    err = capfd.readouterr().err
    assert "--workers" in err
    assert "1..256" in err


def test_a_snapshot_is_read_once_whatever_the_jobs_queries(tmp_path, capsys, monkeypatch):
    """Jobs that push down different filters (countries here) are fetched with one query
    each, but a snapshot is used whole: it is read once, a chunk at a time, and its note said
    once (it was read again per query: a 30k-node snapshot, 3 queries, took 1.9 s and 431 MB,
    then 0.9 s and 215 MB loaded whole). The plan is the same."""
    from nodeselect.cli import _source  # noqa: PLC0415

    snap = tmp_path / "fleet.jsonl"
    assert main(["nodes", "--demo", "--status", "AVAILABLE", "--out", str(snap), "-q",
                 "--format", "json"]) == 0  # fmt: skip
    jobs = tmp_path / "jobs.toml"
    jobs.write_text("".join(
        f'[[job]]\nname = "{c}"\n[job.gpu]\ncount = 1\n[job.placement]\ncountries = ["{c}"]\n'
        for c in ("US", "DE", "FR")
    ))  # fmt: skip
    reads, loads = [], []
    real = SnapshotNodes._read_chunks  # (both chunks() and lean_chunks() read through it)
    monkeypatch.setattr(SnapshotNodes, "_read_chunks", lambda s, *a: reads.append(s) or real(s, *a))
    monkeypatch.setattr(_source, "load_snapshot", loads.append)
    capsys.readouterr()
    main(["place", str(jobs), "--snapshot", str(snap), "--json"])
    captured = capsys.readouterr()
    assert len(reads) == 1
    assert loads == []  # (read a chunk at a time: the fleet's documents never held at once)
    assert captured.err.count("the snapshot is used whole") == 1
    doc = json.loads(captured.out)
    assert {a["job"] for a in doc["assignments"]} | {u["job"] for u in doc["unplaced"]} == {
        "US",
        "DE",
        "FR",
    }


@pytest.mark.parametrize("shards", [None, 3])
def test_place_on_a_snapshot_read_in_chunks_is_the_whole_fleets_plan(tmp_path, capsys, shards):
    """place --snapshot (a file, or a directory of 3 shards) builds its table a chunk of
    nodes at a time and reads the placed nodes' addresses back from the files: the plan,
    addresses included, is the one ``place`` gives on the whole snapshot loaded at once."""
    from nodeselect import NodeTable, load_snapshot, place  # noqa: PLC0415
    from nodeselect.jobs import load_jobs  # noqa: PLC0415

    queue = Path(__file__).resolve().parents[2] / "examples" / "jobs" / "queue.toml"
    snap = tmp_path / ("dir" if shards else "fleet.jsonl")
    out = ["--out", str(snap), *(["--shards", str(shards)] if shards else [])]
    assert main(["nodes", "--demo", "--status", "AVAILABLE", *out, "-q", "--format", "json"]) == 0
    capsys.readouterr()
    code = main(["place", str(queue), "--snapshot", str(snap), "--json", "--show-private"])
    got = json.loads(capsys.readouterr().out)
    whole = load_snapshot(snap)
    table = NodeTable.from_fetch(whole, now=whole.fetched_at)
    want = place(load_jobs(queue), table, nodes=whole.nodes, now=whole.fetched_at)
    assert code == (1 if want.unplaced else 0)
    doc = want.to_json(show_private=True)
    assert got["assignments"] == doc["assignments"]
    assert got["unplaced"] == doc["unplaced"]
    assert any(r["address"] for a in got["assignments"] for r in a["replicas"])
    assert got["fleet"]["nodes"] == len(whole.nodes)
