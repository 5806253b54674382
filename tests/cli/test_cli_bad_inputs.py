"""A corpus of bad inputs and hostile environments, generated here, run through ``main()`` in
process: never a traceback, always a documented exit code (the expected one), and on stderr
one short line (nothing at all for a closed pipe)."""

from __future__ import annotations

import errno
import io
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from nodeselect.cli import main
from nodeselect.cli._common import (
    EXIT_API,
    EXIT_CODES,
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_OUTPUT,
)
from nodeselect.jobs import _file as jobs_file
from nodeselect.sim import SimServer, generate_fleet

GOOD_JOB = 'name = "ok"\n\n[gpu]\ncount = 0\n'
GOOD_BATCH = '[[job]]\nname = "a"\n[job.gpu]\ncount = 0\n'
MAX_ERR_CHARS = 600


@attrs.frozen
class Case:
    """One bad input: argv (``{snap}``, ``{job}``, ``{batch}``, ``{tmp}`` filled in), the
    exit code it must give, and optional setup of files in the case's folder."""

    id: str
    argv: tuple[str, ...]
    code: int = EXIT_INPUT
    files: tuple[tuple[str, bytes], ...] = ()
    stdout: str | None = None  # "enospc" | "epipe" | "eio": a stdout that fails that way
    #: why the case fails today in a layer the CLI does not own (strict xfail: remove the
    #: mark when that layer is fixed)
    elsewhere: str | None = None


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 30-node snapshot of a simulated fleet, saved once through `nodes --out`."""
    path = tmp_path_factory.mktemp("snap") / "fleet.jsonl"
    with SimServer(generate_fleet(30, seed=2)) as server:
        assert main(["nodes", "--api", server.url, "-q", "--out", str(path), "-o", "json"]) == 0
    return path


def _flag_cases() -> Iterator[Case]:
    bad_values = {
        "--top": ["x", "0", "-1", "1.5", ""],
        "--seed": ["x", "1e3", ""],
        "--concurrency": ["0", "-3", "x", "100000"],
        "--format": ["xml", "", "JSON", "tab"],
        "-o": ["yaml"],
    }
    for command, pos in (("plan", ("{job}",)), ("place", ("{batch}",))):
        for flag, values in bad_values.items():
            if flag == "--top" and command == "place":
                continue
            for v in values:
                yield Case(
                    f"{command}{flag}={v!r}", (command, *pos, "--snapshot", "{snap}", flag, v)
                )
    for command in ("nodes", "gpus"):
        for flag in ("--concurrency", "--format"):
            for v in bad_values[flag]:
                yield Case(f"{command}{flag}={v!r}", (command, "--snapshot", "{snap}", flag, v))
    for command in ("plan {job}", "place {batch}", "nodes", "gpus"):
        base = tuple(command.split())
        name = base[0]
        yield Case(f"{name}-unknown-flag", (*base, "--demo", "--nope"))
        yield Case(f"{name}-two-sources", (*base, "--demo", "--snapshot", "{snap}"))
        yield Case(f"{name}-api-without-value", (*base, "--api"))
        yield Case(f"{name}-format-without-value", (*base, "--demo", "--format"))
        yield Case(f"{name}-stray-argument", (*base, "--demo", "extra", "args"))
    yield Case("no-command-flag", ("--nope",))
    yield Case("unknown-command", ("frobnicate",))
    yield Case("plan-no-job", ("plan",))
    yield Case("place-no-job", ("place",))
    yield Case("plan-explain-without-value", ("plan", "{job}", "--snapshot", "{snap}", "--explain"))
    yield Case("plan-explain-unknown", ("plan", "{job}", "--snapshot", "{snap}", "--explain", "zz"))
    yield Case("plan-explain-row-0", ("plan", "{job}", "--snapshot", "{snap}", "--explain", "0"))
    yield Case(
        "plan-explain-row-999", ("plan", "{job}", "--snapshot", "{snap}", "--explain", "999")
    )
    yield Case("verbose-with-value", ("-v=3", "gpus", "--known"))


def _source_cases() -> Iterator[Case]:
    for command in ("plan {job}", "place {batch}", "nodes", "gpus"):
        base = tuple(command.split())
        name = base[0]
        yield Case(f"{name}-no-source", base)
        for url_id, url in (
            ("ftp", "ftp://example.com"),
            ("no-scheme", "example.com"),
            ("empty", ""),
            ("no-host", "http://"),
            ("bad-port", "http://127.0.0.1:99999"),
            ("port-text", "http://127.0.0.1:port"),
            ("bracket", "http://[::1"),
            ("userinfo", "http://user:s3cret@127.0.0.1:9"),
            ("query", "http://127.0.0.1:9/?x=1"),
            ("space", "http://exa mple.com"),
            ("nul", "http://exa\x00mple.com"),
            ("long", "http://" + "a" * 5000 + ".com"),
            ("javascript", "javascript:alert(1)"),
        ):
            yield Case(f"{name}-api-{url_id}", (*base, "--api", url))


def _snapshot_cases() -> Iterator[Case]:
    header = (
        b'{"nodeselect_snapshot":1,"fetched_at":"2026-01-01T00:00:00Z","source":"x",'
        b'"query":{},"complete":true,"stats":{}}\n'
    )
    contents = {
        "empty": b"",
        "not-json": b"hello\n",
        "binary": bytes(range(256)) * 4,
        "bad-utf8": b"\xff\xfe\xfd\n",
        "array-header": b"[1,2,3]\n",
        "version-2": b'{"nodeselect_snapshot":2}\n',
        "version-string": b'{"nodeselect_snapshot":"1"}\n',
        "no-fetched-at": b'{"nodeselect_snapshot":1}\n',
        "bad-fetched-at": b'{"nodeselect_snapshot":1,"fetched_at":"yesterday"}\n',
        "fetched-at-number": b'{"nodeselect_snapshot":1,"fetched_at":12}\n',
        "bad-query": header.replace(b'"query":{}', b'"query":{"limit":0}'),
        "query-list": header.replace(b'"query":{}', b'"query":[1]'),
        "stats-list": header.replace(b'"stats":{}', b'"stats":[1]'),
        "node-not-json": header + b"not json\n",
        "node-no-document": header + b'{"nodeselect":{}}\n',
        "node-document-number": header + b'{"document":5,"nodeselect":{}}\n',
        "deep-header": b"[" * 100_000 + b"]" * 100_000 + b"\n",
        "deep-node": header + b'{"document":' + b"[" * 50_000 + b"]" * 50_000 + b"}\n",
        "nul-bytes": b"\x00" * 1000,
        "truncated": header[:40],
    }
    for command in ("nodes", "gpus", "plan {job}", "place {batch}"):
        base = tuple(command.split())
        for cid, data in contents.items():
            if command.startswith(("plan", "place")) and cid not in (
                "empty", "binary", "deep-header", "version-2", "node-not-json",
            ):  # fmt: skip
                continue
            yield Case(
                f"{base[0]}-snapshot-{cid}",
                (*base, "--snapshot", "{tmp}/s"),
                files=(("s", data),),
            )
        yield Case(f"{base[0]}-snapshot-missing", (*base, "--snapshot", "{tmp}/missing"))
        yield Case(f"{base[0]}-snapshot-directory", (*base, "--snapshot", "{tmp}"))
    yield Case("nodes-snapshot-country", ("nodes", "--snapshot", "{snap}", "--country", "DE"))
    yield Case(
        "nodes-snapshot-seen", ("nodes", "--snapshot", "{snap}", "--seen-between", "2020-01-01,")
    )
    yield Case(
        "nodes-snapshot-compliance", ("nodes", "--snapshot", "{snap}", "--compliance", "GDPR")
    )


def _job_cases() -> Iterator[Case]:
    jobs = {
        "empty-name": b'name = ""\n',
        "bad-toml": b"name = = 1\n",
        "unclosed-array": b'[gpu]\nmodels = ["H100"\n',
        "unknown-key": b"[gpu]\ncuont = 1\n",
        "unknown-section": b"[gpux]\ncount = 1\n",
        "negative-count": b"[gpu]\ncount = -1\n",
        "count-string": b'[gpu]\ncount = "two"\n',
        "unknown-model": b'[gpu]\ncount = 1\nmodels = ["H10"]\n',
        "nan-vram": b"[gpu]\ncount = 1\nmin_vram_free_gb = nan\n",
        "inf-ram": b"[memory]\nmin_free_gb = inf\n",
        "load-2": b"[gpu]\ncount = 1\nmax_load = 2\n",
        "bad-duration": b'[placement]\nmax_staleness = "soon"\n',
        "huge-duration": b'[placement]\nmax_staleness = "99999999999999999999d"\n',
        "bad-status": b'[placement]\nstatuses = ["NOPE"]\n',
        "bad-continent": b'[placement]\ncontinents = ["XX"]\n',
        "bad-strategy": b'[preferences]\nstrategy = "random"\n',
        "weights-negative": b"[preferences]\nweights = { images = -1.0 }\n",
        "binary": bytes(range(256)),
        "bad-utf8": b'name = "\xff"\n',
        "deep-array": b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n",
        "big-integer": b"x = " + b"9" * 5000 + b"\n",
        # tomllib is quadratic in dotted-key length (40 KB: 17 s): refused before parsing
        "long-dotted-key": b"a" + b".a" * 100_000 + b" = 1\n",
        # over the size limit (64 MiB; 1 MiB in this test, which lowers it: see below)
        "over-the-limit": b'name = "big"\n' + b"# padding\n" * 110_000,
        "inline-table-bomb": b"x = " + b"{ a = " * 3000 + b"1" + b" }" * 3000 + b"\n",
        "nul": b'name = "a\x00b"\n',
        "escape-in-name": b'name = "\\u001b[2J"\n[gpu]\ncount = -5\n',
        "gang-zero": b"nodes = 0\n",
    }
    for cid, data in jobs.items():
        yield Case(
            f"plan-job-{cid}",
            ("plan", "{tmp}/job.toml", "--snapshot", "{snap}"),
            files=(("job.toml", data),),
        )
    empty = (("empty", b""), ("comments-only", b"# nothing yet\n"), ("no-jobs", b"job = []\n"))
    for cid, data in empty:
        yield Case(f"place-job-{cid}", ("place", "{tmp}/jobs.toml", "--snapshot", "{snap}"),
                   files=(("jobs.toml", data),))  # fmt: skip
    for cid in ("bad-toml", "unknown-key", "negative-count", "binary", "deep-array"):
        batch = b"[[job]]\n" + jobs[cid].replace(b"[gpu]", b"[job.gpu]")
        if cid in ("binary", "deep-array", "bad-toml"):
            batch = jobs[cid]
        yield Case(f"place-job-{cid}", ("place", "{tmp}/jobs.toml", "--snapshot", "{snap}"),
                   files=(("jobs.toml", batch),))  # fmt: skip
    yield Case("plan-job-missing", ("plan", "{tmp}/missing.toml", "--snapshot", "{snap}"))
    yield Case("plan-job-directory", ("plan", "{tmp}", "--snapshot", "{snap}"))


def _out_cases() -> Iterator[Case]:
    yield Case("out-directory", ("nodes", "--snapshot", "{snap}", "--out", "{tmp}"))
    yield Case(
        "out-directory-force", ("nodes", "--snapshot", "{snap}", "--out", "{tmp}", "--force")
    )
    yield Case("out-device", ("nodes", "--snapshot", "{snap}", "--out", os.devnull))
    yield Case("out-missing-folder", ("nodes", "--snapshot", "{snap}", "--out", "{tmp}/no/such"))
    yield Case("out-empty", ("nodes", "--snapshot", "{snap}", "--out", ""))
    yield Case("out-trailing-slash", ("nodes", "--snapshot", "{snap}", "--out", "{tmp}/x/"))


def _sim_cases() -> Iterator[Case]:
    bad = {
        "--port": ["99999", "-1", "x", "65536", "1e3"],
        "--nodes": ["-1", "x", "1000000000000", "3.5"],
        "--seed": ["-1", "x"],
        "--fault-seed": ["-5"],
        "--rate-500": ["2", "-0.1", "x", "nan"],
        "--latency-ms": ["-1", "x"],
        "--dialect": ["nope"],
        "--time-precision": ["ns"],
        "--ram-unit": ["KB"],
        "--numeric-strings": ["2", "x"],
        "--bulk-nodes": ["x", "-1"],
        "--api-key-env": ["NODESELECT_TEST_UNSET_VARIABLE"],
        "--host": ["999.999.999.999", "exa mple", "a\x00b"],
    }
    yield Case("sim-no-action", ("sim",))
    yield Case("sim-unknown-action", ("sim", "frob"))
    yield Case("sim-bulk-seconds-alone", ("sim", "serve", "--nodes", "1", "--bulk-seconds", "3"))
    for flag, values in bad.items():
        for v in values:
            yield Case(f"sim{flag}={v!r}", ("sim", "serve", "--nodes", "1", flag, v))


def _io_cases() -> Iterator[Case]:
    commands = {
        "nodes": ("nodes", "--snapshot", "{snap}"),
        "gpus": ("gpus", "--snapshot", "{snap}"),
        "known": ("gpus", "--known"),
        "plan": ("plan", "{job}", "--snapshot", "{snap}"),
        "place": ("place", "{batch}", "--snapshot", "{snap}"),
    }
    for name, argv in commands.items():
        for fmt in ("table", "json", "jsonl"):
            yield Case(f"{name}-{fmt}-full-disk", (*argv, "-o", fmt), EXIT_OUTPUT, stdout="enospc")
            yield Case(f"{name}-{fmt}-closed-pipe", (*argv, "-o", fmt), EXIT_OK, stdout="epipe")
        yield Case(f"{name}-io-error", argv, EXIT_OUTPUT, stdout="eio")


def _api_cases() -> Iterator[Case]:
    yield Case("nodes-api-refused", ("nodes", "--api", "{closed}"), EXIT_API)


CASES = [
    *_flag_cases(),
    *_source_cases(),
    *_snapshot_cases(),
    *_job_cases(),
    *_out_cases(),
    *_sim_cases(),
    *_io_cases(),
]


class _FailingStdout(io.StringIO):
    """A stdout whose writes fail like a full disk, a closed pipe or a dead terminal."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.error = {"enospc": errno.ENOSPC, "epipe": errno.EPIPE, "eio": errno.EIO}[kind]

    def write(self, s: str) -> int:
        if self.error == errno.EPIPE:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")
        raise OSError(self.error, os.strerror(self.error))


def test_the_corpus_is_large_and_ids_are_unique() -> None:
    """At least 150 cases, each with its own id (so a failure names one input)."""
    assert len(CASES) >= 150
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture
def guard_sim_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad `sim serve` input that nonetheless starts serving fails the case (never hangs)."""
    import nodeselect.sim  # noqa: PLC0415

    original: Callable[[Any], Any] = nodeselect.sim.SimServer.start

    def start(self: Any) -> Any:
        original(self)
        self.stop()
        raise AssertionError("a bad sim serve input started serving")

    monkeypatch.setattr(nodeselect.sim.SimServer, "start", start)


def _param(case: Case) -> Any:
    marks = (
        [] if case.elsewhere is None else [pytest.mark.xfail(reason=case.elsewhere, strict=True)]
    )
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input_is_one_line_with_its_exit_code(  # noqa: PLR0917 - pytest fixtures
    case: Case,
    snapshot: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    guard_sim_start: None,
) -> None:
    """No traceback, the expected documented exit code, one short line on stderr."""
    monkeypatch.delenv("NODESELECT_API_KEY", raising=False)
    monkeypatch.delenv("NODESELECT_TEST_UNSET_VARIABLE", raising=False)
    monkeypatch.setattr(jobs_file, "MAX_JOB_FILE_BYTES", 1 << 20)  # (a 64 MiB case is slow)
    (tmp_path / "job.toml").write_text(GOOD_JOB)
    (tmp_path / "batch.toml").write_text(GOOD_BATCH)
    for name, data in case.files:
        (tmp_path / name).write_bytes(data)
    fill = {"{snap}": str(snapshot), "{job}": str(tmp_path / "job.toml"),
            "{batch}": str(tmp_path / "batch.toml"), "{tmp}": str(tmp_path)}  # fmt: skip
    argv = []
    for template in case.argv:
        arg = template
        for key, value in fill.items():
            arg = arg.replace(key, value)
        argv.append(arg)
    if case.stdout is not None:
        monkeypatch.setattr(sys, "stdout", _FailingStdout(case.stdout))
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert code in EXIT_CODES
    assert code != EXIT_INTERNAL, err
    assert code == case.code, err
    lines = err.splitlines()
    errors = [line for line in lines if line.startswith("nodeselect: error:")]
    if case.stdout == "epipe":  # the reader left: quiet, as `head` expects (notes may remain)
        assert errors == []
        return
    errors = [line for line in lines if line.startswith("nodeselect: error:")]
    assert len(errors) == 1, err
    assert len(errors[0]) <= MAX_ERR_CHARS, errors[0]
    assert all(line.startswith("nodeselect: ") for line in lines), err
    assert "s3cret" not in err
