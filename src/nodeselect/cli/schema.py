"""`nodeselect schema job|plan|place|nodes`: print the JSON Schema of a job file or of a
command's ``--json`` output (shipped in :mod:`nodeselect.schemas`, versioned by ``$id``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from nodeselect.cli._common import EXIT_OK
from nodeselect.schemas import SCHEMA_NAMES, schema

__all__ = ["register"]

_WHAT = {
    "job": "a job file (TOML or JSON; docs/jobs.md)",
    "plan": "`plan --json`",
    "place": "`place --json` (Plan.to_json)",
    "nodes": "`nodes --format json` (an array) or one `--format jsonl` line",
}


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the `schema` subcommand."""
    parser = subparsers.add_parser(
        "schema",
        help="print the JSON Schema of a job file or of a --json output",
        description="Print a JSON Schema (draft 2020-12) shipped with nodeselect: "
        + "; ".join(f"{k}: {v}" for k, v in _WHAT.items())
        + ". Its $id carries the schema version.",
    )
    parser.add_argument("name", choices=SCHEMA_NAMES, help="which schema")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    sys.stdout.write(json.dumps(schema(args.name), indent=2) + "\n")
    return EXIT_OK
