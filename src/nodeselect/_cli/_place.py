"""`nodeselect place`: not built yet (see the issue tracker)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the `place` subcommand (placeholder until its issue lands)."""
    subparsers.add_parser("place", help="(not built yet)")
