"""`nodes --format json|jsonl` streams pages as they arrive; the live progress bar."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from nodeselect.cli import main
from nodeselect.cli._common import EXIT_OK
from nodeselect.cli._source import fetch_progress, progress_text
from nodeselect.cli.nodes import NodeStream, blank_spliced
from nodeselect.documents import blank_personal, personal_keys
from nodeselect.fetch import FetchProgress
from nodeselect.sim import SimServer, generate_fleet

FLEET = generate_fleet(320, seed=21)


@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    """A simulated API of 320 nodes (7 pages of 50)."""
    with SimServer(FLEET) as s:
        yield s


class _Sink(io.StringIO):
    """stdout without a binary buffer, recording the server's request count at each write."""

    def __init__(self, server: SimServer) -> None:
        super().__init__()
        self.server = server
        self.requests_at_write: list[int] = []

    def write(self, text: str) -> int:
        self.requests_at_write.append(self.server.stats.requests)
        return super().write(text)


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_the_first_nodes_are_written_while_later_pages_are_in_flight(
    server: SimServer, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """One page at a time (--concurrency 1): nodes are written page by page, the first
    before the server saw its last request; the output is still every node exactly once."""
    sink = _Sink(server)
    monkeypatch.setattr("sys.stdout", sink)
    before = server.stats.requests
    code = main(["nodes", "--api", server.url, "-q", "--concurrency", "1", "-o", fmt])
    after = server.stats.requests
    assert code == EXIT_OK
    assert len(sink.requests_at_write) >= 3  # one write per page, not one at the end
    assert sink.requests_at_write[0] < after
    assert after - before >= 7
    text = sink.getvalue()
    items = [json.loads(x) for x in text.splitlines()] if fmt == "jsonl" else json.loads(text)
    uuids = [item["document"]["uuid"] for item in items]
    assert sorted(uuids) == sorted(d["uuid"] for d in FLEET.documents() if not d["deleted_at"])


def _personal_values(value: Any, tree: Any) -> Iterator[Any]:
    if isinstance(value, list):
        for item in value:
            yield from _personal_values(item, tree)
    elif isinstance(value, dict):
        for key, sub in tree.items():
            if key in value:
                yield from ([value[key]] if sub is True else _personal_values(value[key], sub))


def _without_personal(value: Any, tree: Any) -> Any:
    if isinstance(value, list):
        return [_without_personal(v, tree) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, v in value.items():
        sub = tree.get(key)
        out[key] = None if sub is True else (_without_personal(v, sub) if sub else v)
    return out


def test_personal_fields_are_blanked_by_key_and_nothing_else_changes(
    server: SimServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --show-private every personal field is null; every other value is the
    server's (key order included); with it the documents are exactly the server's."""
    tree = personal_keys()
    sent = {d["uuid"]: d for d in FLEET.documents()}
    assert main(["nodes", "--api", server.url, "-q", "-o", "jsonl"]) == EXIT_OK
    hidden = [json.loads(x)["document"] for x in capsys.readouterr().out.splitlines()]
    assert main(["nodes", "--api", server.url, "-q", "-o", "jsonl", "--show-private"]) == 0
    shown = [json.loads(x)["document"] for x in capsys.readouterr().out.splitlines()]
    assert any(v is not None for d in shown for v in _personal_values(d, tree))
    for doc in hidden:
        assert all(v is None for v in _personal_values(doc, tree))
        expected = _without_personal(sent[doc["uuid"]], tree)
        assert doc == expected
        assert list(doc) == list(expected)
    for doc in shown:
        assert doc == sent[doc["uuid"]]


def test_an_empty_stream_is_an_empty_array_and_no_lines() -> None:
    """No node: ``[]`` for json, nothing for jsonl."""
    for array, expected in ((True, "[]\n"), (False, "")):
        out = io.StringIO()
        stream = NodeStream(out, array=array, personal=False)
        stream.write([])
        stream.close()
        assert out.getvalue() == expected


def test_progress_text_counts_pages_retries_and_repairs() -> None:
    """Pages done / known always; retries and repairs when there are some, plural right."""
    assert progress_text(FetchProgress(3, 7, 0, 0, 150)) == "3/7 pages"
    assert progress_text(FetchProgress(3, 9, 1, 2, 150)) == "3/9 pages, 1 retry, 2 repairs"
    assert progress_text(FetchProgress(9, 9, 2, 1, 150)) == "9/9 pages, 2 retries, 1 repair"


def test_the_bar_follows_each_page_on_a_terminal() -> None:
    """On a terminal the bar shows pages known as they grow (not 1/1 until the end)."""
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    with fetch_progress(True, console=console) as hook:
        assert hook is not None
        hook(FetchProgress(1, 1, 0, 0, 0))
        hook(FetchProgress(2, 7, 1, 0, 50))
        console.print()  # a render of the live display, as its refresh thread does
    assert "2/7 pages, 1 retry" in out.getvalue()


def test_no_bar_when_piped_or_quiet(
    server: SimServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """stderr not a terminal: no bar; -q: no bar even when forced on."""
    with fetch_progress(False) as hook:
        assert hook is None
    assert main(["nodes", "--api", server.url, "-o", "jsonl"]) == EXIT_OK
    assert capsys.readouterr().err == ""
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    assert main(["nodes", "--api", server.url, "-q", "-o", "jsonl"]) == EXIT_OK
    assert capsys.readouterr().err == ""


_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.text(max_size=6),
    st.floats(allow_nan=False, allow_infinity=False),
)  # fmt: skip
_KEYS = st.sampled_from(
    ["email", "name", "uuid", "ipv4_address", "operator_profile", "wallet_address",
     "user_profile", "oauth_subject", "gpus", "x"]
)  # fmt: skip
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=4)),
    max_leaves=12,
)
_DOCS = st.dictionaries(
    st.sampled_from(
        ["uuid", "name", "ipv4_address", "ipv6_address", "mac_address", "operator_account",
         "gpus", "extra"]
    ),
    _JSON,
    max_size=6,
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(doc=st.one_of(_DOCS, _JSON), spaced=st.booleans())
def test_blank_spliced_equals_blank_personal(doc: Any, spaced: bool) -> None:
    """Told the truth by documents.blank_personal: the same JSON value, the same key order,
    for any document shape (personal keys at any depth, in arrays, of any type; not an
    object at all; with or without whitespace in the server's bytes)."""
    raw = json.dumps(doc, indent=1 if spaced else None).encode()
    expected = blank_personal(raw)
    got = blank_spliced(raw)
    assert json.loads(got) == json.loads(expected)
    assert json.dumps(json.loads(got)) == json.dumps(json.loads(expected))  # key order too
