"""The CLI and the fetch layer's bounds: key and http refusals, timeouts, deadline, protocol
violations, oversized bodies; each one line on stderr with its documented exit code."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from nodeselect.cli import _source as source
from nodeselect.cli import main
from nodeselect.cli._common import EXIT_API, EXIT_INPUT, EXIT_OK
from nodeselect.errors import (
    DeadlineExceededError,
    ProtocolViolationError,
    ResponseTooLargeError,
    TransportError,
)
from nodeselect.sim import SimServer, generate_fleet


@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    """A small simulated API."""
    with SimServer(generate_fleet(20, seed=5)) as s:
        yield s


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("nodeselect: error: ")
    assert "Traceback" not in err
    return lines[0]


def test_a_key_with_a_newline_is_exit_2_and_never_echoed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """NODESELECT_API_KEY ending in a newline: exit 2, the variable named, the key not shown."""
    monkeypatch.setenv("NODESELECT_API_KEY", "s3cret-key\n")
    assert main(["gpus", "--api", "https://127.0.0.1:9"]) == EXIT_INPUT
    line = _one_line(capsys.readouterr().err)
    assert "NODESELECT_API_KEY" in line
    assert "whitespace" in line
    assert "s3cret" not in line


def test_cleartext_http_with_a_key_is_refused_unless_allowed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """http:// to another host with a key: exit 2 naming --allow-insecure-http; with the
    flag the Client is told so (nothing is sent in this test)."""
    monkeypatch.setenv("NODESELECT_API_KEY", "s3cret-key")
    assert main(["nodes", "--api", "http://nodes.example.com"]) == EXIT_INPUT
    line = _one_line(capsys.readouterr().err)
    assert "--allow-insecure-http" in line
    assert "s3cret" not in line
    assert "allow_insecure_http" not in line
    seen: dict[str, Any] = {}

    class StopError(Exception):
        pass

    def fake_client(url: str, **kwargs: Any) -> Any:
        seen.update(kwargs, url=url)
        raise StopError

    monkeypatch.setattr(source, "Client", fake_client)
    with pytest.raises(StopError):
        source.load_fleet(
            source_args(api="http://nodes.example.com", allow_insecure_http=True, timeout=3.0)
        )
    assert seen["allow_insecure_http"] is True
    assert seen["timeout"] == seen["request_timeout"] == 3.0


def source_args(**kwargs: Any) -> Any:
    """A namespace as the parsers build it (defaults for what is not given)."""
    from nodeselect.cli._main import build_parser  # noqa: PLC0415

    args = build_parser().parse_args(["nodes"])
    for key, value in kwargs.items():
        setattr(args, key, value)
    return args


@pytest.mark.parametrize("flag", ["--timeout", "--deadline"])
@pytest.mark.parametrize("value", ["0", "-1", "nan", "1e9"])
def test_bad_bounds_are_exit_2(
    server: SimServer, capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    """--timeout/--deadline must be positive seconds up to a day."""
    assert main(["nodes", "--api", server.url, flag, value]) == EXIT_INPUT
    assert flag in _one_line(capsys.readouterr().err)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A loopback server that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.05)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        sock.close()


def test_a_server_that_never_answers_is_exit_3_naming_the_bound(
    silent_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--timeout and --deadline bound a silent server: exit 3, one line naming the deadline
    and the flag to raise (not the library's keyword arguments)."""
    code = main(["nodes", "--api", silent_server, "--timeout", "0.2", "--deadline", "0.8"])
    assert code == EXIT_API
    line = _one_line(capsys.readouterr().err)
    assert "deadline of 0.8 s" in line
    assert "--deadline" in line
    assert "RetryPolicy" not in line


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (
            DeadlineExceededError(
                "GET u: the fetch deadline of 5 s passed after 3 requests (raise "
                "RetryPolicy.deadline, or narrow the query)",
                attempts=3,
                last_error=None,
            ),
            ("deadline", "--deadline"),
        ),
        (
            ResponseTooLargeError(
                "GET u: the response body is larger than max_body_bytes=8388608; reading "
                "stopped there (a page of 50 nodes is a few hundred KB: raise max_body_bytes)",
                limit="max_body_bytes",
            ),
            ("too large", "the limit of 8388608", "--api"),
        ),
        (
            ProtocolViolationError(
                "the page holds 900 nodes but the request asked for limit=50: the server "
                "does not page as documented (at most `limit` nodes)",
                limit="limit",
            ),
            ("does not follow the List Nodes protocol", "900 nodes", "--api"),
        ),
        (TransportError("GET u: no complete answer within request_timeout=2 s"), ("--timeout 2",)),
    ],
)
def test_new_fetch_errors_are_one_line_exit_3_in_the_clis_words(
    server: SimServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: Exception,
    words: tuple[str, ...],
) -> None:
    """Each new error of the fetch layer: exit 3, the URL, what happened, the flag to try;
    never the library's keyword arguments (max_body_bytes=, RetryPolicy, request_timeout=)."""

    def fetch(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(source.Client, "fetch", fetch)
    assert main(["nodes", "--api", server.url]) == EXIT_API
    line = _one_line(capsys.readouterr().err)
    assert server.url in line
    for word in words:
        assert word in line
    for leak in ("max_body_bytes", "RetryPolicy", "request_timeout", "GET u"):
        assert leak not in line


def test_defaults_bound_every_request(server: SimServer) -> None:
    """Without flags the CLI's Client has a per-request bound of seconds and a deadline."""
    args = source_args(api=server.url)
    with source._client(args, server.url, 4) as client:
        assert client.timeout == client.request_timeout == 10.0
        assert client.retry.deadline == 120.0
    assert main(["nodes", "--api", server.url, "-q", "-o", "jsonl"]) == EXIT_OK


def test_the_bar_says_retrying_before_any_page_arrives(silent_server: str) -> None:
    """A server that never answers: the bar (on a terminal) says a request is being retried,
    and why, within --timeout, not "starting" until the deadline."""
    import io  # noqa: PLC0415

    from rich.console import Console  # noqa: PLC0415

    from nodeselect.fetch import Client, RetryPolicy  # noqa: PLC0415

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    client = Client(
        silent_server, timeout=0.2, request_timeout=0.2, retry=RetryPolicy(deadline=1.0)
    )
    with client, source.fetch_progress(True, console=console) as hook:
        with pytest.raises(DeadlineExceededError):
            client.fetch(on_progress=hook)
        console.print()  # a render of the live display, as its refresh thread does
    assert "retrying (timeout)" in out.getvalue()
