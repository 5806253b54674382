"""The ``nodeselect`` command line: one small module per subcommand, wired together here.

Importing this package is cheap: the parsers live in ``_parsers``/``sim`` and each command's
module (with numpy, httpx, rich and the engine) is imported only when that command runs.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (documented in ``nodeselect --help``)."""
    try:
        from nodeselect.cli._main import main as run  # noqa: PLC0415 - Ctrl-C here is handled
    except KeyboardInterrupt:
        import sys  # noqa: PLC0415

        print("nodeselect: error: interrupted", file=sys.stderr)
        return 130
    return run(argv)
