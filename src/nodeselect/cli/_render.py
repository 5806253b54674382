"""Rendering shared by the CLI: rich tables on a terminal, plain stable text when piped.

Every human-readable table goes through :func:`print_table`. On a terminal it is a ``rich``
table with colour; when stdout is a pipe or a file it is plain, aligned text with no escape
codes and a fixed column order, so ``grep``/``awk`` and golden-file tests see the same bytes on
every run. Scripts that need structure should use ``--json`` (:func:`write_json`).

The text form of the `plan` report (:func:`render_report`) lives here too, next to the table
and note helpers it is drawn with.

Personal data (operator e-mails, IP addresses, wallet addresses) is hidden by
:func:`redact` unless the user asked for it with ``--show-private``.

Every string printed as text goes through :func:`~nodeselect.cli._common.terminal_safe`
(inside :func:`print_table` and :func:`print_note`): control characters are shown escaped,
so text from the API cannot drive the terminal or forge a row. Rich never reads markup or
emoji codes from data (cells are :class:`rich.text.Text`). JSON output is made safe by
:func:`write_json` without changing what it decodes to.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, TextIO

import attrs
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from nodeselect.cli._common import json_safe, plural, terminal_safe
from nodeselect.documents import redact_text

__all__ = [
    "HIDDEN",
    "SIMULATED_BANNER",
    "Column",
    "fit_columns",
    "fleet_info",
    "fleet_line",
    "float32_value",
    "fmt_age",
    "fmt_gb",
    "fmt_num",
    "fmt_score",
    "is_terminal",
    "jsonable",
    "make_console",
    "print_note",
    "print_table",
    "private_fields",
    "redact",
    "render_report",
    "telemetry_units_line",
    "write_json",
]

#: What replaces a piece of personal data in output.
HIDDEN = "<hidden>"
#: The first line of any human-readable output made from the demo fleet.
SIMULATED_BANNER = "*** SIMULATED FLEET: seeded demo data from nodeselect.sim, not real nodes ***"


@attrs.frozen
class Column:
    """One column of a table.

    Attributes:
        header: the column title (also the stable header of the plain output).
        justify: "right" for numbers, "left" for text.
        keep: how much the column matters when a terminal is too narrow for the table: the
            lowest are hidden first (rightmost first among equals), and a line says which.
    """

    header: str
    justify: Literal["left", "right"] = "left"
    keep: int = 5


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal (colours and rich tables allowed)."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except ValueError:  # a closed stream
        return False


def make_console(stream: TextIO | None = None, *, terminal: bool | None = None) -> Console:
    """A rich Console writing to ``stream`` (stdout by default) that colours only on a terminal."""
    out = sys.stdout if stream is None else stream
    term = is_terminal(out) if terminal is None else terminal
    if term:
        return Console(file=out, highlight=False, soft_wrap=False)
    # Piped: no colour, no wrapping at a guessed width, no markup surprises.
    return Console(
        file=out, force_terminal=False, no_color=True, highlight=False, width=10_000, soft_wrap=True
    )


#: Text columns are never shrunk below this many characters on a terminal (rich ellipsises).
_TEXT_MIN: Final = 28


def _cell_width(col: Column, cells: Sequence[str]) -> int:
    widest = max([len(col.header), *(len(c) for c in cells)])
    return widest if col.justify == "right" else min(widest, _TEXT_MIN)


def fit_columns(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int) -> list[int]:
    """The indices of the columns kept when the table must fit in ``width`` characters.

    Columns are dropped lowest :attr:`Column.keep` first (rightmost first among equals) until
    the table fits; at least one column is always kept.
    """
    widths = [_cell_width(c, [r[i] for r in rows]) for i, c in enumerate(columns)]
    kept = list(range(len(columns)))
    order = sorted(kept, key=lambda i: (columns[i].keep, -i))

    def total() -> int:  # cells plus one space of padding either side of each inner border
        return sum(widths[i] for i in kept) + 2 * (len(kept) - 1)

    for i in order:
        if total() <= width or len(kept) == 1:
            break
        kept.remove(i)
    return kept


def print_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    *,
    stream: TextIO | None = None,
    terminal: bool | None = None,
    title: str | None = None,
    width: int | None = None,
) -> None:
    """Print ``rows`` under ``columns``: a rich table on a terminal, aligned plain text otherwise.

    Every cell, header and the title are made :func:`terminal_safe` first: one line per row.
    The plain form is a header line, a line of dashes, then one line per row; columns are
    separated by two spaces and padded to the widest cell; trailing spaces are stripped.
    On a terminal narrower than the table (``width``, by default the console's), the least
    important columns are hidden and a line after the table names them.
    """
    out = sys.stdout if stream is None else stream
    term = is_terminal(out) if terminal is None else terminal
    safe_rows = [[terminal_safe(c) for c in row] for row in rows]
    headers = [terminal_safe(c.header) for c in columns]
    title = None if title is None else terminal_safe(title)
    if term:
        console = make_console(out, terminal=True)
        kept = fit_columns(columns, safe_rows, console.width if width is None else width)
        table = Table(
            title=None if title is None else Text(title),
            title_justify="left",
            header_style="bold cyan",
            box=box.SIMPLE_HEAD,
            collapse_padding=True,
            pad_edge=False,
        )
        for i in kept:
            col = columns[i]
            widest = max([len(headers[i]), *(len(row[i]) for row in safe_rows)])
            table.add_column(
                Text(headers[i]),
                justify=col.justify,
                no_wrap=True,
                # Text columns keep up to 28 characters before rich may shorten them.
                min_width=min(widest, _TEXT_MIN),
            )
        for row in safe_rows:
            table.add_row(*(Text(row[i]) for i in kept))
        console.print(table)
        hidden = [headers[i] for i in range(len(columns)) if i not in kept]
        if hidden:
            wide = console.width if width is None else width
            console.print(
                Text(
                    f"({plural(len(hidden), 'column')} hidden to fit {wide} characters: "
                    f"{', '.join(hidden)}; widen the terminal, or use --format json)",
                    style="dim",
                )
            )
        return
    if title:
        out.write(f"{title}\n")
    widths = [len(h) for h in headers]
    for row in safe_rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(widths[i]) if columns[i].justify == "right" else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    out.write(line(headers) + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in safe_rows:
        out.write(line(row) + "\n")


def print_note(
    text: str,
    *,
    stream: TextIO | None = None,
    terminal: bool | None = None,
    style: str | None = None,
) -> None:
    """Print one line of prose, in ``style`` (a rich style) on a terminal, plain otherwise.

    ``text`` is made :func:`terminal_safe` first: it stays one line.
    """
    out = sys.stdout if stream is None else stream
    term = is_terminal(out) if terminal is None else terminal
    text = terminal_safe(text)
    if term and style:
        make_console(out, terminal=True).print(Text(text, style=style))
    else:
        out.write(text + "\n")


def redact(text: str) -> str:
    """Replace e-mail addresses, IPv4/IPv6 addresses and wallet addresses in ``text``
    (:func:`nodeselect.documents.redact_text`: linear time, whatever the text)."""
    return redact_text(text, HIDDEN)


def private_fields(raw: bytes) -> dict[str, Any]:
    """The personal data of one node document: addresses, operator e-mail, wallet."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return {}
    op = doc.get("operator_account") if isinstance(doc, dict) else None
    op = op if isinstance(op, dict) else {}
    prof = op.get("operator_profile")
    prof = prof if isinstance(prof, dict) else {}
    return {
        "ipv4_address": doc.get("ipv4_address"),
        "ipv6_address": doc.get("ipv6_address"),
        "operator_email": op.get("email"),
        "wallet_address": prof.get("wallet_address"),
    }


def fmt_num(value: float | None, digits: int = 1) -> str:
    """A number with ``digits`` decimals (integers without), or ``-`` when unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.{digits}f}"


def fmt_gb(value: float | None) -> str:
    """A size in GB (nodeselect's GB = 2**30 bytes) with one decimal, or ``-`` when unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.1f}"


def fmt_score(value: float | None) -> str:
    """A score with three decimals, or ``-`` when unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3f}"


def fmt_age(seconds: float | None) -> str:
    """An age as the largest whole unit: ``45s``, ``12m``, ``3h``, ``9d``; ``-`` when unknown."""
    if seconds is None or (isinstance(seconds, float) and not math.isfinite(seconds)):
        return "-"
    s = max(0.0, float(seconds))
    if s < 60:
        return f"{int(s)}s"
    if s < 3600:
        return f"{int(s // 60)}m"
    if s < 86400:
        return f"{int(s // 3600)}h"
    return f"{int(s // 86400)}d"


def float32_value(x: Any) -> float:
    """``x`` as a float; a numpy float32 as its shortest decimal (``78.9``, not ``78.90000153``).

    The table keeps GB and loads as float32; converting one to a Python float directly shows
    digits that were never measured.
    """
    return float(str(x)) if type(x).__name__ == "float32" else float(x)


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays, tuples, sets and NaN turned into plain JSON values."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(jsonable(v) for v in value)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if type(value).__name__ == "float32":
        f32 = float32_value(value)
        return f32 if math.isfinite(f32) else None
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
    if tolist is not None:
        return jsonable(tolist())
    return str(value)


def write_json(document: Any, stream: TextIO | None = None, *, indent: int | None = 2) -> None:
    """Write ``document`` as indented JSON (keys in the order given) and a newline.

    ``indent=None`` writes it on one line (``--format jsonl``). Control characters that JSON
    allows raw inside strings are written as ``\\u`` escapes (:func:`json_safe`).
    """
    out = sys.stdout if stream is None else stream
    out.write(json_safe(json.dumps(jsonable(document), indent=indent, ensure_ascii=False)) + "\n")


def fleet_info(args: Any, result: Any, *, nodes: int | None = None) -> dict[str, Any]:
    """The ``fleet`` object of the ``--json`` schemas, from parsed args and a FetchResult
    (``nodes``: the count, when the result holds none: a snapshot read a chunk at a time).

    Keys: ``source`` ("demo" | "api" | "snapshot"), ``location`` (URL, file, or the demo
    label), ``simulated``, ``complete``, ``consistent``, ``nodes``, ``rejected_documents``,
    ``fetched_at`` (ISO 8601 UTC).
    """
    if getattr(args, "demo", False):
        kind = "demo"
    elif getattr(args, "snapshot", None):
        kind = "snapshot"
    else:
        kind = "api"
    return {
        "source": kind,
        "location": str(result.source),
        "simulated": kind == "demo",
        "complete": bool(result.complete),
        "consistent": bool(result.consistent),
        "nodes": len(result.nodes) if nodes is None else nodes,
        "rejected_documents": len(result.rejected),
        "fetched_at": result.fetched_at.isoformat(),
    }


def fleet_line(fleet: dict[str, Any]) -> str:
    """One line saying where the fleet came from and how trustworthy the fetch was."""
    where = str(fleet.get("location") or fleet.get("source") or "?")
    if fleet.get("simulated") and "simulated" not in where.lower():
        where += " (SIMULATED)"
    head = f"fleet: {where}"
    parts = [f"{head}: {plural(int(fleet.get('nodes') or 0), 'node')}"]
    if not fleet.get("complete", True):
        parts.append("INCOMPLETE fetch (--allow-incomplete)")
    rej = int(fleet.get("rejected_documents") or 0)
    if rej:
        parts.append(f"{plural(rej, 'unreadable node document')} skipped")
    return ", ".join(parts)


def telemetry_units_line(units: Mapping[str, Any] | None) -> str | None:
    """The header line about telemetry units (``fleet.units`` of ``plan --json``): only when a
    unit is not the documented default or was undecided, or values fell back; else ``None``."""
    if not units:
        return None
    parts: list[str] = []
    for key in ("ram", "vram", "gpu_load", "cpu_load"):
        d = units.get(key)
        if not isinstance(d, Mapping):
            continue
        label = key.replace("_", " ")
        if d.get("unit") is None:
            if d.get("how") != "no telemetry":  # nothing reported: nothing to say
                parts.append(f"{label} undecided, not used")
        elif d.get("unit") != d.get("default"):
            parts.append(f"{label} in {d['unit']}")
    fallbacks = int(units.get("telemetry_fallbacks") or 0)
    if fallbacks:
        parts.append(f"{fallbacks} values not used (implausible or unit undecided)")
    strings = int(units.get("numeric_strings") or 0)
    if parts and strings:
        parts.append(f"{strings} nodes sent numbers as strings")
    if not parts:
        return None
    return "telemetry units (inferred, docs/units.md): " + ", ".join(parts)


# ----------------------------------------------------------------------------- plan report
def _region_label(region: Mapping[str, str | None]) -> str:
    parts = [region.get(k) for k in ("continent", "country", "subdivision")]
    known = [p for p in parts if p]
    return "/".join(known) if known else "-"


def _pushed_label(p: Mapping[str, Any]) -> str:
    v = p["values"]
    shown = ",".join(map(str, v)) if isinstance(v, list) else str(v).lower()
    return f"{p['filter']}={shown}"


# keep: on a narrow terminal rank, name and score stay longest, then GPUs and VRAM.
_RANK_COLUMNS: Final = (
    Column("#", "right", keep=9),
    Column("name", keep=8),
    Column("GPUs", keep=6),
    Column("VRAM", "right", keep=5),
    Column("cores", "right", keep=3),
    Column("RAM", "right", keep=4),
    Column("rep", "right", keep=2),
    Column("region", keep=1),
    Column("age", "right", keep=1),
    Column("score", "right", keep=9),
)


def render_report(
    report: Mapping[str, Any],
    *,
    stream: TextIO,
    terminal: bool | None = None,
) -> None:
    """Draw a ``build_report`` document for people: header, ranked table, rejections, misses."""
    term = is_terminal(stream) if terminal is None else terminal
    job = report["job"]
    fleet = report["fleet"]

    def note(text: str, style: str | None = None) -> None:
        print_note(text, stream=stream, terminal=term, style=style)

    if fleet.get("simulated"):
        note(SIMULATED_BANNER, "bold yellow")
    note(f"job {job.get('name')!s} ({job.get('file')!s}): {job.get('summary', '')}".rstrip(": "))
    note(fleet_line(fleet))
    if fleet.get("source") == "snapshot" and fleet.get("age_s") is not None:
        note(
            f"snapshot saved {fleet.get('fetched_at')}, evaluated as of "
            f"{fleet.get('evaluated_at')} (age {fmt_age(fleet['age_s'])}; --now to change)"
        )
    for line in fleet.get("unproved") or ():
        note(line, "yellow")
    units_line = telemetry_units_line(fleet.get("units"))
    if units_line is not None:
        note(units_line, "yellow")
    pushed = ", ".join(_pushed_label(p) for p in report["pushed_down"]) or "none"
    if fleet.get("source") == "snapshot":
        note("pushed down to the server: none (a snapshot is used as it was saved)")
    else:
        note(f"pushed down to the server: {pushed}")
    local = ", ".join(report["local"]) or "none"
    note(f"checked locally: {local}")
    push = report.get("pushdown")
    if push:
        bound = "" if push["exact"] else "at most "
        note(
            f"the server's filters matched {bound}{push['matched']} of the "
            f"{push['considered']} nodes they were applied to"
        )
    note(f"evaluated {report['evaluated']} nodes, {report['feasible']} feasible")
    ranked = report["ranked"]
    private = any("private" in r for r in ranked)
    if ranked:
        rows = [
            [
                str(r["rank"]),
                r["name"] or r["uuid"],
                r["gpu_label"],
                fmt_gb(r["vram_free_gb"]),
                str(r["cpu_cores"]),
                fmt_gb(r["ram_free_gb"]),
                fmt_num(r["reputation"]),
                _region_label(r["region"]),
                fmt_age(r["telemetry_age_s"]),
                fmt_score(r["score"]),
            ]
            for r in ranked
        ]
        columns: tuple[Column, ...] = _RANK_COLUMNS
        if private:
            columns = (*columns, Column("address", keep=0), Column("operator e-mail", keep=0))
            for row, r in zip(rows, ranked, strict=True):
                p = r.get("private") or {}
                row.append(str(p.get("ipv4_address") or p.get("ipv6_address") or "-"))
                row.append(str(p.get("operator_email") or "-"))
        note("")
        title = "ranked nodes (VRAM, RAM: free GB, VRAM over the node's GPUs; age: telemetry)"
        print_table(columns, rows, stream=stream, terminal=term, title=title)
    else:
        note("")
        note("no node fits this job", "bold red")
    rejected = report["rejected"]
    if rejected:
        note("")
        rows = [[name, str(count)] for name, count in rejected.items()]
        cols = (Column("constraint"), Column("rejected nodes", "right"))
        print_table(cols, rows, stream=stream, terminal=term, title="rejections")
    misses = report["nearest_misses"]
    if misses:
        note("")
        note("nearest misses (relaxing one constraint would admit):")
        for m in misses:
            note(f"  {m['advice']}")
    gang = report.get("gang")
    if gang:
        note("")
        if gang["placed"]:
            note(f"gang of {gang['nodes']}: placed on")
            for r in gang["replicas"]:
                gpus = ",".join(map(str, r["gpu_indices"])) or "none"
                who = r["name"] or r["uuid"]
                note(
                    f"  replica {r['replica']}: {who}  gpus [{gpus}]  score {fmt_score(r['score'])}"
                )
        else:
            note(f"gang of {gang['nodes']}: cannot be placed: {gang['reason']}", "bold red")
    explain = report.get("explain")
    if explain:
        _render_explain(explain, stream=stream, terminal=term)


def _render_explain(explain: Mapping[str, Any], *, stream: TextIO, terminal: bool) -> None:
    def note(text: str, style: str | None = None) -> None:
        print_note(text, stream=stream, terminal=terminal, style=style)

    note("")
    verdict = "feasible" if explain.get("feasible") else "rejected"
    note(f"node {explain.get('name') or explain.get('uuid')} ({explain.get('uuid')}): {verdict}")
    for f in explain.get("failures", []):
        note(f"  fails {f['constraint']}: has {f['value']}, needs {f['required']}")
    terms = explain.get("terms") or {}
    if terms:
        note("  score terms: " + ", ".join(f"{k}={fmt_score(v)}" for k, v in terms.items()))
    if explain.get("score") is not None:
        note(f"  score: {fmt_score(explain['score'])}")
