"""`nodeselect gpus`: not built yet (see the issue tracker)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the `gpus` subcommand (placeholder until its issue lands)."""
    subparsers.add_parser("gpus", help="(not built yet)")
