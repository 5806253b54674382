"""`nodeselect schema job|plan|place|nodes`: print the JSON Schema of a job file or of a
command's ``--json`` output (shipped in :mod:`nodeselect.schemas`, versioned by ``$id``)."""

from __future__ import annotations

import argparse
import json
import sys

from nodeselect.cli._common import EXIT_OK
from nodeselect.schemas import schema

__all__: list[str] = []


def _run(args: argparse.Namespace) -> int:
    sys.stdout.write(json.dumps(schema(args.name), indent=2) + "\n")
    return EXIT_OK
