"""`nodeselect plan`: not built yet (see the issue tracker)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the `plan` subcommand (placeholder until its issue lands)."""
    subparsers.add_parser("plan", help="(not built yet)")
