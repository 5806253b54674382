"""`nodeselect survey` and `nodes --shards`: sharded snapshots surveyed to a results file."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, timedelta
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from nodeselect.cli import _asof, main
from nodeselect.cli._common import EXIT_INPUT, EXIT_NO_FIT, EXIT_OK
from nodeselect.cli._source import DEMO_SOURCE
from nodeselect.fetch import load_snapshot, read_manifest
from nodeselect.sim import SimServer, generate_fleet

FLEET = generate_fleet(150, seed=12)
JOBS = """
[[job]]
name = "two-gpus"
[job.gpu]
count = 2

[[job]]
name = "cores"
[job.cpu]
min_cores = 8

[[job]]
name = "nowhere"
[job.gpu]
count = 64
"""


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    """The simulated fleet's AVAILABLE nodes saved by `nodes --out DIR --shards 3`."""
    d = tmp_path_factory.mktemp("snap") / "fleet"
    with SimServer(FLEET) as server:
        code = main(
            ["nodes", "--api", server.url, "--status", "AVAILABLE", "--format", "json",
             "--out", str(d), "--shards", "3"]
        )  # fmt: skip
    assert code == EXIT_OK
    return d


@pytest.fixture
def jobs_file(tmp_path):
    p = tmp_path / "jobs.toml"
    p.write_text(JOBS)
    return p


def test_nodes_shards_writes_a_manifest_and_shards(snapshot, capsys) -> None:
    """`nodes --out DIR --shards 3` writes 3 shards whose nodes are the fetched fleet."""
    m = read_manifest(snapshot)
    assert len(m.shards) == 3
    assert set(m.query.statuses) == {"AVAILABLE"}
    assert sum(s.nodes for s in m.shards) == len(load_snapshot(snapshot).nodes) > 0


def test_nodes_shards_from_a_fetch_go_straight_to_the_shards(tmp_path, capsys) -> None:
    """`nodes --demo --out DIR --shards N` fetches into the shards without holding the fleet:
    no node table on stdout (a note says why and how to stream them), the count saved, the
    shards the fleet that `nodes --demo --out FILE` saves, no spill file left; with
    --format jsonl the nodes still stream to stdout as they arrive."""
    assert main(["nodes", "--demo", "--out", str(tmp_path / "one.jsonl")]) == EXIT_OK
    capsys.readouterr()
    assert main(["nodes", "--demo", "--out", str(tmp_path / "d"), "--shards", "3"]) == EXIT_OK
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "a fleet fetched into shards is not listed" in captured.err
    whole = load_snapshot(tmp_path / "one.jsonl")
    sharded = load_snapshot(tmp_path / "d")
    assert f"saved {len(whole.nodes)} nodes to 3 shards in" in captured.err
    assert sorted(n.uuid for n in sharded.nodes) == sorted(n.uuid for n in whole.nodes)
    assert read_manifest(tmp_path / "d").source == DEMO_SOURCE  # (as the file's header)
    assert not [p for p in (tmp_path / "d").iterdir() if p.name.startswith(".")]
    code = main(["nodes", "--demo", "--out", str(tmp_path / "e"), "--shards", "2",
                 "--format", "jsonl"])  # fmt: skip
    assert code == EXIT_OK
    out = capsys.readouterr().out.splitlines()
    streamed = [json.loads(line)["document"]["uuid"] for line in out]
    assert sorted(streamed) == sorted(n.uuid for n in whole.nodes)


def test_nodes_shards_that_cannot_be_written_exit_5(tmp_path, capsys, monkeypatch) -> None:
    """A full disk while a fetch goes into shards (the spill file is /dev/full): exit 5 (the
    output could not be written), one line naming the file, nothing left in the directory."""
    import os  # noqa: PLC0415

    from nodeselect.fetch import _sharded  # noqa: PLC0415

    full = Path("/dev/full")
    if not full.exists():
        pytest.skip("no /dev/full here")

    def fdopen(fd: int, mode: str):
        os.close(fd)
        return full.open(mode)

    monkeypatch.setattr(_sharded.os, "fdopen", fdopen)
    code = main(["nodes", "--demo", "--out", str(tmp_path / "d"), "--shards", "2"])
    err = capsys.readouterr().err
    assert code == 5
    assert "cannot write the fetch's documents: No space left on device" in err
    assert err.count("nodeselect: error:") == 1
    assert list((tmp_path / "d").iterdir()) == []


def test_nodes_shards_without_out_is_refused(capsys) -> None:
    """--shards without --out exits 2 before fetching, saying what it needs."""
    assert main(["nodes", "--demo", "--shards", "2"]) == EXIT_INPUT
    assert "--shards N needs --out DIR" in capsys.readouterr().err


def test_survey_writes_every_jobs_top_and_exits_1_when_one_has_no_fit(
    snapshot, jobs_file, tmp_path, capsys
) -> None:
    """Each job gets up to --top rows in job order; a job with no fit gets its null row, and
    the exit status is 1 because of it."""
    out = tmp_path / "r.jsonl"
    code = main(["survey", str(jobs_file), "--snapshot", str(snapshot), "--top", "4",
                 "--out", str(out)])  # fmt: skip
    assert code == EXIT_NO_FIT
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    by_job: dict[str, list[dict]] = {}
    for r in rows:
        by_job.setdefault(r["job"], []).append(r)
    assert list(by_job) == ["two-gpus", "cores", "nowhere"]
    assert [r["rank"] for r in by_job["cores"]] == [1, 2, 3, 4]
    scores = [r["score"] for r in by_job["cores"]]
    assert scores == sorted(scores, reverse=True)
    assert by_job["nowhere"] == [
        {"job": "nowhere", "job_index": 2, "rank": None, "node": None, "score": None,
         "terms": None, "feasible": 0, "alternative": None}
    ]  # fmt: skip
    err = capsys.readouterr().err
    assert "in 3 shards" in err
    assert "2 jobs have a fitting node" in err


def test_survey_of_synthetic_shards(jobs_file, tmp_path, capsys) -> None:
    """--synthetic N --shards S generates the fleet on the workers."""
    out = tmp_path / "r.jsonl"
    code = main(["survey", str(jobs_file), "--synthetic", "3000", "--shards", "4", "--top", "2",
                 "--batch", "2", "--out", str(out)])  # fmt: skip
    assert code == EXIT_NO_FIT
    assert "3,000 nodes in 4 shards (8 tiles)" in capsys.readouterr().err
    assert len(out.read_text().splitlines()) == 5


def test_top_0_counts_the_fitting_jobs_without_listing_nodes(tmp_path, capsys) -> None:
    """--top 0 writes each job's feasible count on a row with null nodes; a job with feasible
    nodes still fits (exit 0 when all do; it was counted by its listed nodes, none)."""
    jobs = tmp_path / "fit.toml"
    jobs.write_text('[[job]]\nname = "a"\n[job.gpu]\ncount = 1\n')
    out = tmp_path / "r.jsonl"
    code = main(["survey", str(jobs), "--synthetic", "3000", "--top", "0", "--out", str(out)])
    assert code == EXIT_OK
    assert "1 job has a fitting node" in capsys.readouterr().err
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["node"] is None
    assert row["feasible"] > 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--synthetic", "10", "--dask", "local:x"], "expected local:N"),
        (["--synthetic", "10", "--top", "-1"], "--top >= 0"),
        (["--snapshot", "nope", "--shards", "2"], "--shards goes with --synthetic"),
        (["--synthetic", "10", "--shards", "0"], "--shards 0: give --synthetic >= 0 nodes"),
        (["--synthetic", "-1"], "--synthetic -1: give --synthetic >= 0"),
        (["--synthetic", "10", "--shards", "11"], "at most one shard per node"),
        (["--synthetic", "0", "--shards", "2"], "at most one shard per node"),
        (["--snapshot", "no/such/dir"], "no/such/dir"),
    ],
)
def test_survey_usage_errors_exit_2_with_one_line(jobs_file, tmp_path, capsys, extra, message):
    """Bad options exit 2 with one line naming the problem, never a traceback."""
    code = main(["survey", str(jobs_file), *extra, "--out", str(tmp_path / "r.jsonl")])
    err = capsys.readouterr().err
    assert code == EXIT_INPUT
    assert message in err
    assert "Traceback" not in err


def test_an_out_that_cannot_be_a_results_file_is_refused_first(jobs_file, tmp_path, capsys):
    """--out a directory, a missing folder's file or a device: exit 2, one line, before any
    cluster starts or job is ranked (as `nodes --out`); a link is written through."""
    for out, says in [
        (tmp_path, "is a directory"),
        (tmp_path / "no" / "r.jsonl", "does not exist"),
        (Path(os.devnull), "not a regular file"),
    ]:
        code = main(["survey", str(jobs_file), "--synthetic", "10", "--out", str(out)])
        err = capsys.readouterr().err
        assert code == EXIT_INPUT
        assert says in err
        assert err.count("\n") == 1
    real = tmp_path / "real.jsonl"
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    assert main(["survey", str(jobs_file), "--synthetic", "3000", "--out", str(link)]) == 1
    assert link.is_symlink()
    assert len(real.read_text().splitlines()) == 3 * 10 - 9  # ("nowhere": one null row)


def test_a_results_file_that_fails_midway_exits_5(jobs_file, tmp_path, capsys) -> None:
    """The results file failing midway (a full disk: a link to /dev/full): exit 5 (the
    output could not be written), one line naming the file, how far the survey got, and
    that the file may hold fewer jobs; not 'written to' with a --skip that would lose
    jobs."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    full = tmp_path / "full.jsonl"
    full.symlink_to("/dev/full")
    code = main(["survey", str(jobs_file), "--synthetic", "3000", "--out", str(full)])
    err = capsys.readouterr().err
    assert code == 5
    assert f"nodeselect: error: {full}: cannot write the results: No space left on device" in err
    assert "the file may hold fewer" in err
    assert "--skip" not in err
    assert err.count("\n") == 1


def test_survey_batch_default_is_the_librarys() -> None:
    """`--batch`'s default is `nodeselect.dask.DEFAULT_BATCH` (the parser cannot import it:
    dask is an optional extra)."""
    import argparse  # noqa: PLC0415

    from nodeselect.cli._parsers import register_survey  # noqa: PLC0415
    from nodeselect.dask import DEFAULT_BATCH  # noqa: PLC0415

    subparsers = argparse.ArgumentParser().add_subparsers()
    register_survey(subparsers)
    survey = subparsers.choices["survey"]
    assert survey.get_default("batch") == DEFAULT_BATCH
    assert f"(default {DEFAULT_BATCH})" in " ".join(survey.format_help().split())


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
@pytest.mark.parametrize("verbose", [[], ["-vv"]])
def test_a_survey_that_fails_midway_says_what_it_wrote(  # noqa: PLR0917 (fixtures)
    jobs_file, tmp_path, capsys, monkeypatch, suffix, verbose
) -> None:
    """A Dask run that fails after some jobs (a lost scheduler): exit 3 with one line saying
    how many jobs were written and where, and what failed (its first line); the file holds
    exactly those jobs, Parquet included; Dask's own traceback (logged at ERROR by its
    client) never reaches the terminal (-vv: its message as one line)."""
    if suffix == ".parquet":
        pq = pytest.importorskip("pyarrow.parquet")
    import nodeselect.dask as nd  # noqa: PLC0415

    real = nd.Survey.run

    def failing(self, jobs, **kw):
        for i, result in enumerate(real(self, jobs, **kw)):
            if i == 2:
                try:
                    raise OSError("connection refused")
                except OSError:
                    logging.getLogger("distributed.client").exception("lost the scheduler")
                    logging.getLogger("distributed.worker").error("a worker line")
                raise RuntimeError("scheduler-connection-lost.\nClient lost the connection.")
            yield result

    monkeypatch.setattr(nd.Survey, "run", failing)
    # Dask's logging as it configures it outside pytest (its own stderr handlers on
    # "distributed" and, apart, "distributed.client", neither propagating), into a buffer
    dask_stream = io.StringIO()
    for name in ("distributed", "distributed.client"):
        lg = logging.getLogger(name)
        monkeypatch.setattr(lg, "handlers", [logging.StreamHandler(dask_stream)])
        monkeypatch.setattr(lg, "propagate", False)
    out = tmp_path / f"r{suffix}"
    code = main(["survey", str(jobs_file), "--synthetic", "2000", "--top", "2",
                 "--out", str(out), *verbose])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 3
    assert "Traceback" not in err
    assert "connection refused" not in err
    assert err.count("nodeselect: error:") == 1
    assert (
        f"the survey stopped after 2 jobs of 3, written to {out} (to survey the rest: --skip 2 "
        "and another --out): the Dask computation failed: RuntimeError: "
        "scheduler-connection-lost." in err
    )
    assert ("dask: error: lost the scheduler" in err) == bool(verbose)
    assert dask_stream.getvalue() == ""
    if suffix == ".parquet":
        rows = pq.read_table(out).to_pylist()
    else:
        rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted({r["job_index"] for r in rows}) == [0, 1]


_SURVEY_THEN_WAIT = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # (whatever the test runner ignores)
from nodeselect.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_ctrl_c_during_a_local_cluster_survey_is_one_line(tmp_path) -> None:
    """A Ctrl-C at a terminal goes to the whole process group: the CLI and the local
    cluster's worker processes. Exit 130 with one line saying how many jobs were written, and
    no traceback from anyone: each worker printed its KeyboardInterrupt traceback, and
    asyncio logged Dask's own tasks cut short. Interrupted once results are being written
    (the cluster is up and ranking); the file holds exactly the jobs the line says."""
    jobs = tmp_path / "jobs.toml"
    jobs.write_text("".join(
        f'[[job]]\nname = "j{i}"\n[job.gpu]\ncount = {1 + i % 3}\n' for i in range(1500)
    ))  # fmt: skip
    out = tmp_path / "r.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-c", _SURVEY_THEN_WAIT, "survey", str(jobs), "--synthetic",
         "1000000", "--batch", "100", "--dask", "local:2", "--out", str(out)],
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while not (out.exists() and out.stat().st_size) and proc.poll() is None:
            assert time.monotonic() < deadline, "no results within 90 s"
            time.sleep(0.05)
        assert proc.poll() is None, "the survey ended before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)
        err = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    said = re.fullmatch(
        r"nodeselect: error: the survey stopped after ([\d,]+) jobs? of 1,500, written to "
        r"(.*) \(to survey the rest: --skip (\d+) and another --out\): interrupted\n",
        err,
    )
    assert said, err
    written = {json.loads(line)["job_index"] for line in out.read_text().splitlines()}
    assert written == set(range(int(said[1].replace(",", ""))))
    assert said[2] == str(out)
    assert int(said[3]) == len(written)


def test_a_ctrl_c_swallowed_by_a_finalizer_is_raised_at_the_next_check(monkeypatch) -> None:
    """A KeyboardInterrupt raised inside a finalizer (a Dask future's __del__, under load) is
    dropped by Python ("Exception ignored in ..."), and the survey ran to its end: it is
    noted instead, raised by the next check, and not reported. Other exceptions in
    finalizers go to the hook there was, which is back afterwards."""
    from nodeselect.cli._dask import interrupts  # noqa: PLC0415

    reported: list[BaseException] = []
    before = lambda u: reported.append(u.exc_value)  # noqa: E731
    monkeypatch.setattr(sys, "unraisablehook", before)

    class Finalized:
        def __init__(self, exc: BaseException) -> None:
            self.exc = exc

        def __del__(self) -> None:
            raise self.exc

    with interrupts() as check:
        check()  # nothing swallowed yet
        Finalized(KeyboardInterrupt())  # (dropped at once: its __del__ raises)
        with pytest.raises(KeyboardInterrupt):
            check()
        Finalized(ValueError("other"))
    assert [type(e) for e in reported] == [ValueError]
    assert sys.unraisablehook is before


def test_skip_surveys_the_rest_of_a_job_file(jobs_file, tmp_path, capsys) -> None:
    """--skip N leaves out the first N jobs, as a survey that stopped after N says: the rest
    keep their job_index, and their rows are the whole run's; a skip outside 0..jobs-1, or
    onto an existing file (the stopped survey's own results, most likely), is refused with
    exit 2."""
    args = ["survey", str(jobs_file), "--synthetic", "3000", "--shards", "2", "--top", "2"]
    assert main([*args, "--out", str(tmp_path / "all.jsonl")]) == EXIT_NO_FIT
    assert main([*args, "--skip", "1", "--out", str(tmp_path / "rest.jsonl")]) == EXIT_NO_FIT
    err = capsys.readouterr().err
    assert "surveyed 2 jobs (the first 1 left out) x 3,000 nodes" in err
    # the summary is a note: -q leaves it out
    assert main([*args, "-q", "--out", str(tmp_path / "q.jsonl")]) == EXIT_NO_FIT
    assert capsys.readouterr().err == ""
    whole = [json.loads(line) for line in (tmp_path / "all.jsonl").read_text().splitlines()]
    rest = [json.loads(line) for line in (tmp_path / "rest.jsonl").read_text().splitlines()]
    assert rest == [r for r in whole if r["job_index"] >= 1]
    for bad in ("3", "-1"):
        assert main([*args, "--skip", bad, "--out", str(tmp_path / "x.jsonl")]) == EXIT_INPUT
        assert f"--skip {bad}: " in capsys.readouterr().err
    # the stopped survey's own file is not overwritten by the rest
    before = (tmp_path / "all.jsonl").read_bytes()
    assert main([*args, "--skip", "1", "--out", str(tmp_path / "all.jsonl")]) == EXIT_INPUT
    assert "with --skip, write the rest to a new file" in capsys.readouterr().err
    assert (tmp_path / "all.jsonl").read_bytes() == before


def _lost_after(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Survey.run yields ``n`` results, then fails as a lost Dask computation does."""
    import nodeselect.dask as nd  # noqa: PLC0415

    real = nd.Survey.run

    def failing(self, jobs, **kw):
        for i, result in enumerate(real(self, jobs, **kw)):
            if i == n:
                raise RuntimeError("lost")
            yield result

    monkeypatch.setattr(nd.Survey, "run", failing)


def test_a_stop_after_a_skip_names_the_jobs_written(jobs_file, tmp_path, capsys, monkeypatch):
    """A survey started with --skip that stops: which jobs the file holds, and the next
    --skip."""
    _lost_after(1, monkeypatch)
    out = tmp_path / "r.jsonl"
    code = main(["survey", str(jobs_file), "--synthetic", "2000", "--skip", "1",
                 "--out", str(out)])  # fmt: skip
    assert code == 3
    assert (
        f"the survey stopped after 2 jobs of 3, job 1 written to {out} (to survey the "
        "rest: --skip 2 and another --out)" in capsys.readouterr().err
    )
    assert {json.loads(line)["job_index"] for line in out.read_text().splitlines()} == {1}


def test_a_snapshot_is_surveyed_as_of_its_fetched_at(snapshot, jobs_file, tmp_path, capsys,
                                                     monkeypatch) -> None:  # fmt: skip
    """A survey of a snapshot is evaluated as of its fetched_at, as `plan` and `place` take
    it, whatever the clock says: the same snapshot gives the same file tomorrow, and the rest
    of a stopped survey (--skip) ranks as the whole run would have. Freshness and idle
    scores move with the evaluation time, so at the current time two runs differed."""
    fetched = read_manifest(snapshot).fetched_at
    base = ["survey", str(jobs_file), "--snapshot", str(snapshot), "--top", "3"]
    files = []
    for i, later in enumerate((timedelta(hours=1), timedelta(days=2))):
        monkeypatch.setattr(_asof, "clock", lambda later=later: fetched + later)
        files.append(tmp_path / f"r{i}.jsonl")
        assert main([*base, "--out", str(files[-1])]) == EXIT_NO_FIT
        assert "(the snapshot's fetched_at)" in capsys.readouterr().err
    assert files[0].read_bytes() == files[1].read_bytes()
    # the rest of it with --skip: the whole run's rows
    assert main([*base, "--skip", "1", "--out", str(tmp_path / "rest.jsonl")]) == EXIT_NO_FIT
    whole = [json.loads(line) for line in files[0].read_text().splitlines()]
    rest = [json.loads(line) for line in (tmp_path / "rest.jsonl").read_text().splitlines()]
    assert rest == [r for r in whole if r["job_index"] >= 1]


def test_now_sets_a_surveys_evaluation_time(snapshot, jobs_file, tmp_path, capsys,
                                            monkeypatch) -> None:  # fmt: skip
    """--now ISO8601 (or 'now': the clock) is the survey's evaluation time, named in its
    summary; the stop message repeats it in the command for the rest; a bad one exits 2
    with one line, before anything is read."""

    fetched = read_manifest(snapshot).fetched_at
    base = ["survey", str(jobs_file), "--snapshot", str(snapshot), "--top", "3"]
    later = (fetched + timedelta(hours=5)).astimezone(UTC)
    monkeypatch.setattr(_asof, "clock", lambda: later)
    stamp = later.isoformat().replace("+00:00", "Z")
    for i, given in enumerate((stamp, "now")):
        assert main([*base, "--now", given, "--out", str(tmp_path / f"n{i}.jsonl")]) == 1
        assert f"evaluated as of {stamp} (--now)" in capsys.readouterr().err
    assert (tmp_path / "n0.jsonl").read_bytes() == (tmp_path / "n1.jsonl").read_bytes()
    assert main([*base, "--out", str(tmp_path / "d.jsonl")]) == EXIT_NO_FIT
    assert (tmp_path / "d.jsonl").read_bytes() != (tmp_path / "n0.jsonl").read_bytes()
    capsys.readouterr()
    assert main([*base, "--now", "tomorrow", "--out", str(tmp_path / "x.jsonl")]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--now: 'tomorrow' is not an ISO 8601 time" in err
    assert not (tmp_path / "x.jsonl").exists()

    _lost_after(1, monkeypatch)
    assert main([*base, "--now", "now", "--out", str(tmp_path / "s.jsonl")]) == 3
    assert f"(to survey the rest: --skip 1 --now {stamp} and another --out)" in (
        capsys.readouterr().err
    )


@pytest.fixture
def operated_cluster(tmp_path):
    """A Dask scheduler and a worker of 2 processes, started as an operator starts them
    (``dask scheduler``, ``dask worker ADDRESS``: processes of their own, apart from the
    survey), on loopback; yields the scheduler's address, and stops them."""
    info = tmp_path / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = []
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(info)],
            start_new_session=True, **quiet,
        ))  # fmt: skip
        deadline = time.monotonic() + 60
        address = None
        while address is None:
            assert procs[0].poll() is None, "the scheduler exited"
            assert time.monotonic() < deadline, "no scheduler within 60 s"
            try:
                address = json.loads(info.read_text())["address"]
            except (OSError, ValueError, KeyError):  # not written yet, or half written
                time.sleep(0.05)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "dask", "worker", address, "--nworkers", "2", "--nthreads",
             "1", "--no-dashboard"],
            start_new_session=True, **quiet,
        ))  # fmt: skip
        from distributed import Client  # noqa: PLC0415

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()


@pytest.mark.slow
def test_a_survey_on_a_cluster_started_apart_writes_what_one_process_writes(
    operated_cluster, snapshot, jobs_file, tmp_path
) -> None:
    """The deployment the survey is for: a scheduler and workers an operator started, reached
    by address (``--dask tcp://...``), each shard read from the snapshot and built on a
    worker. The results file is byte for byte the one Dask's synchronous scheduler writes in
    this process."""
    base = ["survey", str(jobs_file), "--snapshot", str(snapshot), "--top", "3"]
    there, here = tmp_path / "cluster.jsonl", tmp_path / "here.jsonl"
    assert main([*base, "--dask", operated_cluster, "--out", str(there)]) == EXIT_NO_FIT
    assert main([*base, "--out", str(here)]) == EXIT_NO_FIT  # ("nowhere" fits nowhere)
    assert there.read_bytes() == here.read_bytes()
    assert len(there.read_text().splitlines()) > 3


PLACE_JOBS = """
[[job]]
name = "gang"
nodes = 2
[job.gpu]
count = 2

[[job]]
name = "urgent"
priority = 5
[job.gpu]
count = 1
min_vram_free_gb = 8

[[job]]
name = "either"
[[job.alternatives]]
[job.alternatives.gpu]
count = 64
[[job.alternatives]]
[job.alternatives.cpu]
min_cores = 4

[[job]]
name = "nowhere"
[job.gpu]
count = 64
"""


@pytest.mark.parametrize("where", ["sync", pytest.param("local:2", marks=pytest.mark.slow)])
def test_place_with_its_survey_on_dask_gives_the_same_plan(snapshot, tmp_path, capsys, where):
    """place --snapshot DIR --dask WHERE: the candidates surveyed on the shards (built on the
    workers), the jobs placed here: the plan (--json) is the one without --dask, gangs,
    priorities, alternatives and an unplaceable job included (exit 1 for it, both ways)."""
    jobs = tmp_path / "jobs.toml"
    jobs.write_text(PLACE_JOBS)
    base = ["place", str(jobs), "--snapshot", str(snapshot), "--json"]
    assert main(base) == EXIT_NO_FIT
    alone = capsys.readouterr().out
    assert main([*base, "--dask", where]) == EXIT_NO_FIT
    captured = capsys.readouterr()
    assert captured.out == alone
    assert "Traceback" not in captured.err
    assert len(json.loads(alone)["assignments"]) == 3


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--demo"], "--dask needs --snapshot DIR"),
        (["--snapshot", "SNAP", "--workers", "2"], "--workers 2 surveys in threads"),
        (["--snapshot", "SNAP", "--dask", "local:x"], "expected local:N"),
    ],
)
def test_place_dask_refusals_exit_2_with_one_line(snapshot, jobs_file, capsys, extra, message):
    """--dask without a snapshot (the workers read its shards), with --workers (threads here),
    or with a bad cluster spec: exit 2, one line, nothing placed."""
    args = [str(snapshot) if a == "SNAP" else a for a in extra]
    dask = [] if "--dask" in args else ["--dask", "sync"]
    assert main(["place", str(jobs_file), *args, *dask]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert message in err
    assert err.count("nodeselect: error:") == 1
    assert "Traceback" not in err


def test_place_dask_failing_midway_is_one_line(snapshot, jobs_file, capsys, monkeypatch):
    """A Dask computation that fails (a lost scheduler) during place --dask: exit 3 and one
    line saying nothing was placed and what failed."""
    import nodeselect.dask as nd  # noqa: PLC0415

    def failing(*args, **kwargs):
        raise RuntimeError("scheduler-connection-lost.\nClient lost the connection.")

    monkeypatch.setattr(nd, "place", failing)
    code = main(["place", str(jobs_file), "--snapshot", str(snapshot), "--dask", "sync"])
    err = capsys.readouterr().err
    assert code == 3
    assert (
        "nodeselect: error: the Dask computation failed, nothing was placed: RuntimeError: "
        "scheduler-connection-lost.\n" in err
    )
    assert "Traceback" not in err


def test_without_a_terminal_progress_is_a_line_now_and_then(caplog, monkeypatch) -> None:
    """Off a terminal (a batch job's log), the tile bar is an INFO line (-v) at most every
    30 s of its clock, never at the last tile (the summary says the end); each tile calls
    the interrupt check first. With -q there is no bar even on a terminal."""
    from nodeselect.cli import _common, _dask  # noqa: PLC0415

    t = [0.0]
    checks = []
    caplog.set_level(logging.INFO, logger="nodeselect.cli")
    with _dask.tile_bar(10, lambda: checks.append(1), clock=lambda: t[0]) as tick:
        for _ in range(10):
            t[0] += 10.0
            tick()
    lines = [r.getMessage() for r in caplog.records if r.name == "nodeselect.cli"]
    assert lines == [
        "ranked 3 of 10 tiles (30 %) in 0:30",
        "ranked 6 of 10 tiles (60 %) in 1:00",
        "ranked 9 of 10 tiles (90 %) in 1:30",
    ]
    assert len(checks) == 10

    def stop() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), _dask.tile_bar(3, stop) as tick:
        tick()
    monkeypatch.setattr(_dask, "is_terminal", lambda stream: True)
    monkeypatch.setattr(_common, "QUIET", [True])
    monkeypatch.setattr(_dask, "QUIET", _common.QUIET)
    monkeypatch.setattr(_dask, "Progress", None)  # (a bar would fail: there is none)
    with _dask.tile_bar(2, lambda: None) as tick:
        tick()


def test_one_snapshot_file_on_a_cluster_says_it_is_one_shard(
    snapshot, jobs_file, tmp_path, capsys, monkeypatch
) -> None:
    """A single snapshot file is one shard: on a cluster one worker ranks every tile, and a
    note says how to save it in shards (not on the synchronous scheduler, nor for a sharded
    snapshot)."""
    import contextlib  # noqa: PLC0415

    from nodeselect.cli import survey  # noqa: PLC0415

    monkeypatch.setattr(survey, "cluster", lambda spec: contextlib.nullcontext(None))
    one = snapshot / "shard-00001.jsonl"
    for source, where, said in [(one, "local:2", True), (one, "sync", False),
                                (snapshot, "local:2", False)]:  # fmt: skip
        main(["survey", str(jobs_file), "--snapshot", str(source), "--dask", where,
              "--out", str(tmp_path / "r.jsonl")])  # fmt: skip
        (tmp_path / "r.jsonl").unlink()
        err = capsys.readouterr().err
        assert ("is one shard, so one worker ranks every tile" in err) == said
        assert (f"nodeselect nodes --snapshot {one} --out DIR --shards N" in err) == said
