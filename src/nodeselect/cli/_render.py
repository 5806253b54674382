"""Rendering shared by the CLI: rich tables on a terminal, plain stable text when piped.

Every human-readable table goes through :func:`print_table`. On a terminal it is a ``rich``
table with colour; when stdout is a pipe or a file it is plain, aligned text with no escape
codes and a fixed column order, so ``grep``/``awk`` and golden-file tests see the same bytes on
every run. Scripts that need structure should use ``--json`` (:func:`write_json`).

The text form of the `plan` report (:func:`render_report`) lives here too, next to the table
and note helpers it is drawn with.

Personal data (operator e-mails, IP addresses, wallet addresses) is hidden by
:func:`redact` unless the user asked for it with ``--show-private``.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, TextIO

import attrs
from rich import box
from rich.console import Console
from rich.table import Table

__all__ = [
    "HIDDEN",
    "SIMULATED_BANNER",
    "Column",
    "fleet_info",
    "fleet_line",
    "fmt_age",
    "fmt_gb",
    "fmt_num",
    "fmt_score",
    "is_terminal",
    "jsonable",
    "make_console",
    "print_note",
    "print_table",
    "redact",
    "render_report",
    "telemetry_units_line",
    "write_json",
]

#: What replaces a piece of personal data in output.
HIDDEN = "<hidden>"
#: The first line of any human-readable output made from the demo fleet.
SIMULATED_BANNER = "*** SIMULATED FLEET: seeded demo data from nodeselect.sim, not real nodes ***"

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_WALLET = re.compile(r"\b0x[0-9a-fA-F]{40}\b")
_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
# An IPv6 address: at least two colons between hex groups (so "12:30" times are left alone).
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}(?![\w:])")


@attrs.frozen
class Column:
    """One column of a table.

    Attributes:
        header: the column title (also the stable header of the plain output).
        justify: "right" for numbers, "left" for text.
    """

    header: str
    justify: Literal["left", "right"] = "left"


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


def print_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    *,
    stream: TextIO | None = None,
    terminal: bool | None = None,
    title: str | None = None,
) -> None:
    """Print ``rows`` under ``columns``: a rich table on a terminal, aligned plain text otherwise.

    The plain form is a header line, a line of dashes, then one line per row; columns are
    separated by two spaces and padded to the widest cell; trailing spaces are stripped.
    """
    out = sys.stdout if stream is None else stream
    term = is_terminal(out) if terminal is None else terminal
    if term:
        table = Table(
            title=title,
            title_justify="left",
            header_style="bold cyan",
            box=box.SIMPLE_HEAD,
            collapse_padding=True,
            pad_edge=False,
        )
        for i, col in enumerate(columns):
            widest = max([len(col.header), *(len(row[i]) for row in rows)])
            table.add_column(
                col.header,
                justify=col.justify,
                no_wrap=True,
                # Text columns keep up to 28 characters before rich may shorten them.
                min_width=min(widest, 28),
            )
        for row in rows:
            table.add_row(*row)
        make_console(out, terminal=True).print(table)
        return
    if title:
        out.write(f"{title}\n")
    widths = [len(c.header) for c in columns]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(widths[i]) if columns[i].justify == "right" else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    out.write(line([c.header for c in columns]) + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in rows:
        out.write(line(row) + "\n")


def print_note(
    text: str,
    *,
    stream: TextIO | None = None,
    terminal: bool | None = None,
    style: str | None = None,
) -> None:
    """Print one line of prose, in ``style`` (a rich style) on a terminal, plain otherwise."""
    out = sys.stdout if stream is None else stream
    term = is_terminal(out) if terminal is None else terminal
    if term and style:
        make_console(out, terminal=True).print(text, style=style, markup=False)
    else:
        out.write(text + "\n")


def redact(text: str) -> str:
    """Replace e-mail addresses, IPv4/IPv6 addresses and wallet addresses in ``text``."""
    text = _EMAIL.sub(HIDDEN, text)
    text = _WALLET.sub(HIDDEN, text)
    text = _IPV4.sub(HIDDEN, text)
    return _IPV6.sub(lambda m: HIDDEN if m.group(0).count(":") >= 2 else m.group(0), text)


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
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
    if tolist is not None:
        return jsonable(tolist())
    return str(value)


def write_json(document: Any, stream: TextIO | None = None) -> None:
    """Write ``document`` as indented JSON (keys in the order given) and a newline."""
    out = sys.stdout if stream is None else stream
    out.write(json.dumps(jsonable(document), indent=2, ensure_ascii=False) + "\n")


def fleet_info(args: Any, result: Any) -> dict[str, Any]:
    """The ``fleet`` object of the ``--json`` schemas, from parsed args and a FetchResult.

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
        "nodes": len(result.nodes),
        "rejected_documents": len(result.rejected),
        "fetched_at": result.fetched_at.isoformat(),
    }


def fleet_line(fleet: dict[str, Any]) -> str:
    """One line saying where the fleet came from and how trustworthy the fetch was."""
    where = str(fleet.get("location") or fleet.get("source") or "?")
    if fleet.get("simulated") and "simulated" not in where.lower():
        where += " (SIMULATED)"
    head = f"fleet: {where}"
    parts = [f"{head}: {fleet.get('nodes', 0)} nodes"]
    if not fleet.get("complete", True):
        parts.append("INCOMPLETE fetch (--allow-incomplete)")
    rej = int(fleet.get("rejected_documents") or 0)
    if rej:
        parts.append(f"{rej} unreadable node documents skipped")
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


_RANK_COLUMNS: Final = (
    Column("#", "right"),
    Column("name"),
    Column("GPUs"),
    Column("VRAM", "right"),
    Column("cores", "right"),
    Column("RAM", "right"),
    Column("rep", "right"),
    Column("region"),
    Column("age", "right"),
    Column("score", "right"),
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
            columns = (*columns, Column("address"), Column("operator e-mail"))
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
