"""What every subcommand shares: exit codes and turning our errors into one-line messages."""

from __future__ import annotations

import sys
from typing import Final

__all__ = [
    "EXIT_API",
    "EXIT_CODES_HELP",
    "EXIT_INCOMPLETE",
    "EXIT_INPUT",
    "EXIT_NO_FIT",
    "EXIT_OK",
    "fail",
]

EXIT_OK: Final = 0  # success
EXIT_NO_FIT: Final = 1  # the command ran, but nothing matched / no node fits / some job unplaced
EXIT_INPUT: Final = 2  # bad input: command-line usage, job file, snapshot, unknown GPU name
EXIT_API: Final = 3  # the API could not be reached or answered with an error (401/403/5xx, ...)
EXIT_INCOMPLETE: Final = 4  # the fetch could not prove it got every matching node

EXIT_CODES_HELP: Final = """\
exit codes:
  0  success
  1  nothing fits (no node matched, or a job could not be placed); the explanation is printed
  2  bad input: usage, job file, snapshot file, unknown GPU model
  3  the API could not be reached, or answered with an error (e.g. 401/403 bad key)
  4  the fetch was incomplete or inconsistent (--allow-incomplete to accept it)
"""


def fail(message: str, code: int) -> int:
    """Print ``nodeselect: error: <message>`` on stderr and return ``code``."""
    print(f"nodeselect: error: {message}", file=sys.stderr)
    return code
