"""`nodeselect nodes`: not built yet (see the issue tracker)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the `nodes` subcommand (placeholder until its issue lands)."""
    subparsers.add_parser("nodes", help="(not built yet)")
