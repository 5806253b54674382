"""Entry point: build the argument parser from each subcommand module and dispatch."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version

from nodeselect.cli import gpus, nodes, place, plan, schema, sim
from nodeselect.cli._common import EXIT_CODES_HELP, EXIT_INPUT, EXIT_OK
from nodeselect.errors import NodeSelectError

__all__ = ["main"]

Handler = Callable[[argparse.Namespace], int]

# Each module exposes register(subparsers) -> None and sets a ``handler`` default on its parser.
_SUBCOMMANDS = (plan, place, nodes, gpus, sim, schema)


def _version() -> str:
    try:
        return version("nodeselect")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    """The full parser (also used by the docs test that checks every flag is documented)."""
    parser = argparse.ArgumentParser(
        prog="nodeselect",
        description="Decide where compute jobs should run on a decentralized GPU network.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"nodeselect {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _SUBCOMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (documented in ``nodeselect --help``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_OK
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("nodeselect: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `nodeselect ... | head`: the reader left; that is not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush stays quiet
        return EXIT_OK
    except NodeSelectError as exc:  # a last net: handlers map their own errors to exit codes
        print(f"nodeselect: error: {exc}", file=sys.stderr)
        return EXIT_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
