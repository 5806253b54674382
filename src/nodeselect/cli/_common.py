"""What every subcommand shares: exit codes, terminal-safe text, one-line messages on stderr.

This module imports nothing heavy (no numpy, httpx or rich): ``nodeselect --help`` and the
error paths load it before any subcommand runs.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Mapping
from typing import Final

__all__ = [
    "EXIT_API",
    "EXIT_CODES",
    "EXIT_CODES_HELP",
    "EXIT_INCOMPLETE",
    "EXIT_INPUT",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_NO_FIT",
    "EXIT_OK",
    "EXIT_OUTPUT",
    "FORMATS",
    "add_format_argument",
    "add_verbosity_arguments",
    "fail",
    "json_safe",
    "note",
    "plural",
    "terminal_safe",
    "warn",
]

EXIT_OK: Final = 0  # success
EXIT_NO_FIT: Final = 1  # the command ran, but nothing matched / no node fits / some job unplaced
EXIT_INPUT: Final = 2  # bad input: command-line usage, job file, snapshot, unknown GPU name
EXIT_API: Final = 3  # the API could not be reached or answered with an error (401/403/5xx, ...)
EXIT_INCOMPLETE: Final = 4  # the fetch could not prove it got every matching node
EXIT_OUTPUT: Final = 5  # the output could not be written (disk full, no permission, ...)
EXIT_INTERNAL: Final = 70  # a bug in nodeselect (EX_SOFTWARE): one line, please report it
EXIT_INTERRUPTED: Final = 130  # Ctrl-C (128 + SIGINT)

#: Every exit code the CLI can return (docs/cli.md lists them; the bad-input corpus checks it).
EXIT_CODES: Final = frozenset(
    {
        EXIT_OK,
        EXIT_NO_FIT,
        EXIT_INPUT,
        EXIT_API,
        EXIT_INCOMPLETE,
        EXIT_OUTPUT,
        EXIT_INTERNAL,
        EXIT_INTERRUPTED,
    }
)

EXIT_CODES_HELP: Final = """\
exit codes:
  0    success (also when the reader of a pipe leaves early, as with `| head`)
  1    nothing fits (no node matched, or a job could not be placed); the explanation is printed
  2    bad input: usage, job file, snapshot file, unknown GPU model, --out target, no fleet source
  3    the API could not be reached, or answered with an error (e.g. 401/403 bad key)
  4    the fetch was incomplete or inconsistent (--allow-incomplete to accept it)
  5    the output could not be written (disk full, permission denied, ...)
  70   internal error (a bug: please report the one-line message)
  130  interrupted (Ctrl-C)
"""

# Characters a terminal acts on, or that break "one line per row": C0 controls (ESC, BEL, CR,
# LF, TAB, ...), DEL, C1 controls (CSI 0x9b on 8-bit terminals, ...), the Unicode line and
# paragraph separators, and the bidirectional overrides and isolates ("Trojan Source").
_ESCAPED: Final[dict[int, str]] = {
    **{c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))},
    0x09: "\\t",
    0x0A: "\\n",
    0x0D: "\\r",
    **{
        c: f"\\u{c:04x}"
        for c in (0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
    },
}
# What JSON text still carries raw after json.dumps (which escapes C0 itself): escaped as JSON
# \\u escapes, so the document decodes to exactly the same strings.
_JSON_ESCAPED: Final[dict[int, str]] = {c: f"\\u{c:04x}" for c in _ESCAPED if c >= 0x7F}


def terminal_safe(text: object) -> str:
    """``text`` with every control character shown escaped (``\\x1b``, ``\\n``, ``\\u202e``).

    The one helper every text output goes through: strings from the API (node names, operator
    text, error messages quoting a document) can neither drive the terminal nor forge a line.
    Linear time; printable text (any script) is unchanged.
    """
    return str(text).translate(_ESCAPED)


def json_safe(text: str) -> str:
    """JSON text with DEL, C1 controls, line separators and bidi controls as ``\\uXXXX``.

    Only valid on JSON text (those characters can only occur inside its strings): the decoded
    document is unchanged, but no raw control character reaches a terminal.
    """
    return text.translate(_JSON_ESCAPED)


def plural(count: int, word: str, many: str | None = None) -> str:
    """``"1 node"``, ``"2 nodes"``; ``many`` when the plural is not ``word + "s"``."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def _say(prefix: str, message: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # stderr closed or full: nowhere left
        print(f"nodeselect: {prefix}{terminal_safe(message)}", file=sys.stderr, flush=True)


def fail(message: str, code: int) -> int:
    """Print ``nodeselect: error: <message>`` (terminal-safe, one line) and return ``code``."""
    _say("error: ", message)
    return code


def warn(message: str) -> None:
    """Print ``nodeselect: warning: <message>`` on stderr (terminal-safe, one line)."""
    _say("warning: ", message)


def note(message: str) -> None:
    """Print ``nodeselect: <message>`` on stderr (terminal-safe, one line); silent with -q."""
    if not QUIET[0]:
        _say("", message)


#: Set by ``-q``: notes and saved-file messages are not printed (errors and warnings still are).
QUIET: list[bool] = [False]


#: The output formats every command accepts (``-o/--format``).
FORMATS: Final = ("table", "json", "jsonl")


def add_format_argument(
    parser: argparse.ArgumentParser, json_help: str, extra: Mapping[str, str] | None = None
) -> None:
    """``-o/--format table|json|jsonl`` and its alias ``--json`` (= ``--format json``);
    ``extra``: a command's own further formats, name -> help."""
    more = "".join(f"; {name}: {text}" for name, text in (extra or {}).items())
    parser.add_argument(
        "-o",
        "--format",
        choices=(*FORMATS, *(extra or {})),
        default="table",
        help=f"table (default: text for people), json ({json_help}), or jsonl (one JSON "
        f"value per line){more}",
    )
    parser.add_argument(
        "--json",
        dest="format",
        action="store_const",
        const="json",
        help="the same as --format json",
    )


def add_verbosity_arguments(parser: argparse.ArgumentParser) -> None:
    """``-v/--verbose`` (repeatable) and ``-q/--quiet``: the ``nodeselect`` logger on stderr.

    Defaults are SUPPRESS so the flags work before or after the command name.
    """
    group = parser.add_argument_group("messages")
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="log retries, waits and repairs on stderr (-vv: debug detail)",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="only errors and warnings on stderr (no notes, no progress bar)",
    )
