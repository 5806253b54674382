"""Every command follows the same rules: one output flag, one fleet-source rule and message,
filters that apply or refuse, --show-private that shows, --explain by row, --api that takes
what `sim serve` prints, -v/-q wired to the `nodeselect` logger."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from nodeselect.cli import main
from nodeselect.cli._common import EXIT_API, EXIT_INCOMPLETE, EXIT_INPUT, EXIT_NO_FIT, EXIT_OK
from nodeselect.cli._main import _cli_environment
from nodeselect.cli._source import NO_SOURCE, api_url, fleet_error
from nodeselect.errors import (
    IncompleteFetchError,
    InputError,
    RetriesExhaustedError,
    TransportError,
)
from nodeselect.sim import FaultConfig, SimServer, generate_fleet

JOB = 'name = "any"\n\n[gpu]\ncount = 0\n'
FLEET = generate_fleet(60, seed=9)


@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    """A 60-node simulated API."""
    with SimServer(FLEET) as s:
        yield s


@pytest.fixture
def job(tmp_path: Path) -> Path:
    path = tmp_path / "job.toml"
    path.write_text(JOB)
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_no_source_is_the_same_exit_and_line_on_every_command(
    capsys: pytest.CaptureFixture[str], job: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """plan, place, nodes and gpus with no source and no key: exit 2, the same one line."""
    monkeypatch.delenv("NODESELECT_API_KEY", raising=False)
    batch = job.with_name("batch.toml")
    batch.write_text('[[job]]\nname = "a"\n')
    errs = set()
    for argv in (["plan", str(job)], ["place", str(batch)], ["nodes"], ["gpus"]):
        code, out, err = _run(capsys, *argv)
        assert code == EXIT_INPUT, argv
        assert out == ""
        errs.add(err)
    assert errs == {f"nodeselect: error: {NO_SOURCE}\n"}
    assert "add --demo" in NO_SOURCE


def test_json_is_an_alias_of_format_json_on_every_command(
    capsys: pytest.CaptureFixture[str], server: SimServer, job: Path
) -> None:
    """--json and -o json print the same document; -o jsonl prints it on one line."""
    for argv in (["gpus", "--known"], ["gpus", "--api", server.url],
                 ["plan", str(job), "--api", server.url]):  # fmt: skip
        _, a, _ = _run(capsys, *argv, "--json")
        _, b, _ = _run(capsys, *argv, "-o", "json")
        _, c, _ = _run(capsys, *argv, "--format", "jsonl")
        if argv[0] == "plan":  # ages and freshness scores move with the clock between runs
            docs = [json.loads(x) for x in (a, b, c)]
            assert len({tuple(d) for d in docs}) == 1
            assert len({tuple(r["uuid"] for r in d["ranked"][:3]) for d in docs}) == 1
            assert len(c.splitlines()) == 1
            continue
        if argv[1] != "--known":
            a, b = (json.loads(x) for x in (a, b))
            c_doc = json.loads(c)
            for d in (a, b, c_doc):
                d["fleet"].pop("fetched_at")
            assert a == b == c_doc
        else:
            assert a == b
            assert json.loads(c) == json.loads(a)
        assert len(c.splitlines()) == 1


def test_snapshot_filters_apply_or_refuse(
    capsys: pytest.CaptureFixture[str], server: SimServer, tmp_path: Path
) -> None:
    """On a snapshot, filters are applied locally when the snapshot proves the fact, and are
    an error naming the flag when it does not: never silently ignored."""
    eu = tmp_path / "eu.jsonl"
    assert main(["nodes", "--api", server.url, "--continent", "EU", "-q", "-o", "json",
                 "--out", str(eu)]) == EXIT_OK  # fmt: skip
    saved = json.loads(capsys.readouterr().out)
    code, out, _ = _run(capsys, "nodes", "--snapshot", str(eu), "--continent", "EU", "-o", "json")
    assert code == EXIT_OK
    assert len(json.loads(out)) == len(saved)
    code, out, _ = _run(capsys, "nodes", "--snapshot", str(eu), "--continent", "NA", "-o", "json")
    assert code == EXIT_NO_FIT
    assert json.loads(out) == []
    code, _, err = _run(capsys, "nodes", "--snapshot", str(eu), "--country", "DE")
    assert code == EXIT_INPUT
    assert "--country" in err
    name = saved[0]["document"]["name"]
    code, out, _ = _run(capsys, "nodes", "--snapshot", str(eu), "--name", name, "-o", "json")
    assert code == EXIT_OK
    assert {d["document"]["name"] for d in json.loads(out)} == {name}


def test_show_private_adds_addresses_to_the_nodes_table(
    capsys: pytest.CaptureFixture[str], server: SimServer
) -> None:
    """--show-private adds address and e-mail columns with real values; without it, none."""
    _, hidden, _ = _run(capsys, "nodes", "--api", server.url)
    _, shown, _ = _run(capsys, "nodes", "--api", server.url, "--show-private")
    addresses = {d.get("ipv4_address") for d in FLEET.documents()} - {None}
    assert "address" in shown.splitlines()[1]
    assert "address" not in hidden.splitlines()[1]
    assert any(a in shown for a in addresses)
    assert not any(a in hidden for a in addresses)


def test_explain_accepts_a_row_number(
    capsys: pytest.CaptureFixture[str], server: SimServer, job: Path
) -> None:
    """plan --explain 2 explains the node on row 2 of the ranked table."""
    code, out, _ = _run(capsys, "plan", str(job), "--api", server.url, "-o", "json",
                        "--explain", "2")  # fmt: skip
    assert code == EXIT_OK
    doc = json.loads(out)
    assert doc["explain"]["uuid"] == doc["ranked"][1]["uuid"]


def test_api_accepts_what_sim_serve_prints(
    capsys: pytest.CaptureFixture[str], server: SimServer
) -> None:
    """The endpoint URL (…/v1/nodes) works as --api, and so does the root with a slash."""
    for url in (server.endpoint, server.url + "/"):
        code, out, err = _run(capsys, "gpus", "--api", url, "-o", "json")
        assert code == EXIT_OK, err
        assert json.loads(out)["fleet"]["nodes"] > 0


def test_api_url_rules() -> None:
    """http(s) with a host only; credentials refused without being echoed."""
    assert api_url("http://127.0.0.1:8000/v1/nodes") == "http://127.0.0.1:8000"
    assert api_url("https://api.example.com/") == "https://api.example.com"
    assert api_url("https://api.example.com/prefix/v1") == "https://api.example.com/prefix"
    with pytest.raises(InputError) as info:
        api_url("https://user:hunter2@api.example.com")
    assert "hunter2" not in str(info.value)
    assert "user" not in str(info.value).replace("user name", "")
    for bad in ("ftp://x", "http://", "http://h:70000", "x", "http://h/?q=1"):
        with pytest.raises(InputError):
            api_url(bad)


def test_verbose_and_quiet_wire_the_nodeselect_logger(capsys: pytest.CaptureFixture[str]) -> None:
    """-v shows INFO records of the `nodeselect` logger on stderr as one line; default shows
    warnings only; -q only errors. The handler is removed afterwards."""
    log = logging.getLogger("nodeselect.fetch")
    for verbose, quiet, shown in ((1, False, {"info", "warning", "error"}),
                                  (0, False, {"warning", "error"}),
                                  (0, True, {"error"})):  # fmt: skip
        with _cli_environment(verbose, quiet):
            log.info("retry 1\nforged")
            log.warning("drift")
            log.error("gave up")
        err = capsys.readouterr().err
        levels = {line.split(":")[1].strip() for line in err.splitlines()}
        assert levels == shown
        if "info" in shown:
            assert "nodeselect: info: retry 1\\nforged" in err
    assert not any(
        type(h).__name__ == "_OneLineHandler" for h in logging.getLogger("nodeselect").handlers
    )


def test_v_and_q_are_accepted_before_and_after_the_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`nodeselect -v gpus --known` and `nodeselect gpus --known -q` both run."""
    assert main(["-v", "gpus", "--known", "-o", "json"]) == EXIT_OK
    assert main(["gpus", "--known", "-q", "-o", "json"]) == EXIT_OK
    capsys.readouterr()


def test_a_huge_limit_is_no_warning(capsys: pytest.CaptureFixture[str], server: SimServer,
                                    tmp_path: Path) -> None:  # fmt: skip
    """min_free_gb = 1e308: nothing fits (exit 1), and no RuntimeWarning reaches the user."""
    path = tmp_path / "big.toml"
    path.write_text('name = "big"\n[memory]\nmin_free_gb = 1e308\n')
    code, out, err = _run(capsys, "plan", str(path), "--api", server.url, "-o", "json")
    assert code == EXIT_NO_FIT
    assert "Warning" not in err
    doc = json.loads(out)
    for m in doc["nearest_misses"]:
        if m["relaxed_threshold"] is not None:
            assert m["relaxed_threshold"] == float(f"{m['relaxed_threshold']:.7g}")
        assert str(m["admits"]) in m["advice"]


@pytest.mark.slow  # the client's real back-off: about 3.5 s per command
def test_api_failures_are_the_same_line_on_every_command(
    capsys: pytest.CaptureFixture[str], job: Path
) -> None:
    """A server that cuts every body: exit 3 on plan, place, nodes and gpus, one line saying
    the answers were cut (not "cannot reach"), never the library's RetryPolicy advice."""
    batch = job.with_name("batch.toml")
    batch.write_text('[[job]]\nname = "a"\n')
    with SimServer(generate_fleet(60, seed=9), faults=FaultConfig(rate_truncate=1.0)) as cut:
        for argv in (["plan", str(job)], ["place", str(batch)], ["nodes"], ["gpus"]):
            code, _, err = _run(capsys, *argv, "--api", cut.url)
            assert code == EXIT_API, argv
            assert len(err.splitlines()) == 1, err
            assert f"the API at {cut.url} cut its answers short" in err
            assert "RetryPolicy" not in err


def test_fleet_errors_say_what_happened_and_what_to_try() -> None:
    """Cut bodies, refused connections, incomplete fetches and input errors each get their
    own line and exit code, the same for every command."""
    args = argparse.Namespace(api="http://h:1")
    cut = TransportError(
        "GET http://h:1/v1/nodes: RemoteProtocolError: peer closed connection "
        "without sending complete message body (received 1 bytes, expected 2)"
    )
    refused = TransportError(
        "GET http://h:1/v1/nodes: ConnectError: [Errno 111] Connection refused"
    )
    exhausted = RetriesExhaustedError("all 5 attempts failed (raise RetryPolicy.max_attempts)",
                                      attempts=5, last_error=cut)  # fmt: skip
    message, code = fleet_error(exhausted, args)
    assert code == EXIT_API
    assert message.startswith("the API at http://h:1 cut its answers short after 5 attempts")
    assert "RetryPolicy" not in message
    message, code = fleet_error(RetriesExhaustedError("x", attempts=3, last_error=refused), args)
    assert message.startswith("cannot reach the API at http://h:1 after 3 attempts")
    assert "--demo" in message
    message, code = fleet_error(IncompleteFetchError("2 pages missing"), args)
    assert (code, message) == (
        EXIT_INCOMPLETE,
        "2 pages missing (add --allow-incomplete to use it anyway)",
    )
    assert fleet_error(InputError("bad"), args) == ("bad", EXIT_INPUT)
