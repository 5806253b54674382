"""Text from the API is shown, never obeyed: node names with escape sequences and newlines go
through the simulator and every text output, and no raw control character or forged line
comes out; JSON stays faithful."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect.cli import main
from nodeselect.cli._common import json_safe, plural, terminal_safe
from nodeselect.cli._render import (
    _RANK_COLUMNS,
    Column,
    fit_columns,
    jsonable,
    print_note,
    print_table,
    redact,
)
from nodeselect.sim import SimServer, generate_fleet

EVIL = [
    "\x1b]0;pwned title\x07",  # set the window title, ring the bell
    "\x1b[2J\x1b[Hcleared",  # clear the screen
    "ok\nFORGED-ROW  AVAILABLE  EU  8x H100-80GB",  # a forged table row
    "cr\rFORGED-CR",  # carriage return over the row
    "\u202eevil-bidi\u202c",  # right-to-left override (Trojan Source)
    "c1-\x9b31m-csi",  # 8-bit CSI
    "tab\there\x00nul\x7fdel",
    "[bold red]markup[/] :smile:",  # rich must not read markup or emoji codes from data
    "line\u2028separator",
]
# Characters no text output may contain raw (newline ends lines and is checked separately).
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
ANY_JOB = 'name = "any"\n\n[gpu]\ncount = 0\n'
BATCH = '[[job]]\nname = "a"\n[job.gpu]\ncount = 0\n\n[[job]]\nname = "b"\n[job.gpu]\ncount = 0\n'


@pytest.fixture(scope="module")
def evil_server() -> Iterator[SimServer]:
    """A 40-node simulated API whose first nodes carry hostile names."""
    fleet = generate_fleet(40, seed=5)
    for i, name in enumerate(EVIL):
        fleet._cols.names[i] = name  # the simulator escapes what needs it (sim/_doc_parts.py)
    with SimServer(fleet) as server:
        yield server


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _assert_safe_text(text: str) -> None:
    assert not RAW.search(text), repr(RAW.search(text))
    for line in text.splitlines():
        assert not line.lstrip().startswith("FORGED"), line


def test_every_text_output_escapes_hostile_names(
    evil_server: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """nodes, plan (with --explain), place and gpus print no raw control character and no
    forged line, and still show each hostile name escaped on its own row."""
    job = tmp_path / "any.toml"
    job.write_text(ANY_JOB)
    batch = tmp_path / "batch.toml"
    batch.write_text(BATCH)
    url = evil_server.url
    outputs = []
    code, out, err = _run(capsys, "nodes", "--api", url, "--show-private")
    assert code == 0
    outputs.append(out + err)
    title, _header, _dashes, *rows = out.splitlines()
    listed = int(title.split()[0])
    assert listed >= 35  # a few simulated documents are malformed on purpose
    assert len(rows) == listed  # one line per node: no name added a line
    assert len({line.split()[0] for line in rows}) == listed  # each line starts with a uuid
    for name in EVIL:
        assert terminal_safe(name) in out
    code, out, err = _run(capsys, "plan", str(job), "--api", url, "--top", "40")
    assert code == 0
    outputs.append(out + err)
    assert terminal_safe(EVIL[2]) in out
    for row in (1, 2, 3):
        code, out, err = _run(capsys, "plan", str(job), "--api", url, "--explain", str(row))
        assert code == 0, err
        outputs.append(out + err)
    code, out, err = _run(capsys, "place", str(batch), "--api", url)
    outputs.append(out + err)
    code, out, err = _run(capsys, "gpus", "--api", url)
    assert code == 0
    outputs.append(out + err)
    for text in outputs:
        _assert_safe_text(text)


def test_json_output_stays_faithful(evil_server: SimServer, capsys) -> None:
    """--format json and jsonl decode to exactly the names the server sent, with no raw C1."""
    for fmt in ("json", "jsonl"):
        code, out, _ = _run(capsys, "nodes", "--api", evil_server.url, "-o", fmt, "--show-private")
        assert code == 0
        assert not RAW.search(out.replace("\n", ""))
        docs = (
            [d["document"] for d in json.loads(out)]
            if fmt == "json"
            else [json.loads(line)["document"] for line in out.splitlines()]
        )
        names = {d.get("name") for d in docs}
        assert set(EVIL) <= names


def test_terminal_tables_do_not_pass_sequences_through() -> None:
    """On a terminal (rich), cells are text: no escape sequence from the data, no markup read."""
    buf = io.StringIO()
    print_table([Column("name"), Column("n", "right")], [[n, "1"] for n in EVIL], stream=buf,
                terminal=True, title=EVIL[0], width=200)  # fmt: skip
    print_note(EVIL[1], stream=buf, terminal=True, style="bold")
    text = buf.getvalue()
    for bad in ("\x1b]0;", "\x1b[2J", "\x07", "\x9b", "\u202e", "\r", "\x00"):
        assert bad not in text
    assert "[bold red]markup[/]" in text
    assert ":smile:" in text


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_terminal_safe_is_one_line_without_controls(text: str) -> None:
    """Any string becomes one line free of control characters; printable text is unchanged."""
    safe = terminal_safe(text)
    assert not RAW.search(safe)
    assert "\n" not in safe
    if not RAW.search(text) and "\n" not in text:
        assert safe == text


@settings(max_examples=100, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.text() | st.integers(),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(), c, max_size=3),
                    max_leaves=8))  # fmt: skip
def test_json_safe_keeps_the_document(doc: object) -> None:
    """json_safe changes the JSON text but never what it decodes to."""
    text = json.dumps(doc, ensure_ascii=False)
    safe = json_safe(text)
    assert json.loads(safe) == doc
    assert not RAW.search(safe)


def test_narrow_terminal_keeps_rank_name_and_score_and_says_what_it_hid() -> None:
    """At 70 columns the plan table keeps #, name and score and names the hidden columns."""
    row = ["1", "rig-0123-4", "8x H100-80GB", "632.0", "128", "1007.5", "99", "EU/DE", "2m",
           "0.987"]  # fmt: skip
    kept = fit_columns(_RANK_COLUMNS, [row], 70)
    headers = [_RANK_COLUMNS[i].header for i in kept]
    assert {"#", "name", "score"} <= set(headers)
    buf = io.StringIO()
    print_table(_RANK_COLUMNS, [row], stream=buf, terminal=True, width=70)
    text = buf.getvalue()
    assert "score" in text
    assert "0.987" in text
    assert "hidden to fit 70 characters" in text
    hidden = [c.header for i, c in enumerate(_RANK_COLUMNS) if i not in kept]
    assert hidden
    assert ", ".join(hidden) in text
    wide = io.StringIO()
    print_table(_RANK_COLUMNS, [row], stream=wide, terminal=True, width=200)
    assert "hidden" not in wide.getvalue()


def test_small_things_said_right() -> None:
    """Plurals, float32 values in JSON, and linear-time redaction of a 200 KB name."""
    assert plural(1, "more node") == "1 more node"
    assert plural(2, "more node") == "2 more nodes"
    assert plural(0, "node") == "0 nodes"
    assert jsonable(np.float32(78.9)) == 78.9
    assert jsonable([np.float32(0.1)]) == [0.1]
    long = "a" * 200_000 + " ops@example.com"
    assert redact(long).endswith(" <hidden>")
    assert redact("x@" + "a" * 200_000) == "x@" + "a" * 200_000
