"""The ``nodeselect`` command line: one small module per subcommand, wired together here."""

from __future__ import annotations

from nodeselect.cli._main import main

__all__ = ["main"]
