"""`nodeselect sim serve`: run the simulated List Nodes API on loopback until Ctrl-C/SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

import attrs

from nodeselect.cli._common import EXIT_INPUT, EXIT_OK, fail

__all__ = ["register"]


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give 0..1") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a probability; give 0..1")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give >= 0") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative; give >= 0")
    return value


#: The largest fleet ``sim serve --nodes`` generates (about 5 KB of JSON per node).
MAX_SIM_NODES = 2_000_000


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number; give 0..65535") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a TCP port; give 0..65535 (0: any free)")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= MAX_SIM_NODES:
        raise argparse.ArgumentTypeError(f"{text}: give 0 to {MAX_SIM_NODES:,} nodes")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"{text}: give a seed from 0 to 2**63-1")
    return value


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add `sim` with its `serve` subcommand."""
    sim = subparsers.add_parser(
        "sim",
        help="run a simulated fleet behind a local GET /v1/nodes",
        description="A deterministic simulated GPU fleet served over HTTP on loopback.",
    )
    actions = sim.add_subparsers(dest="sim_command", metavar="ACTION")
    serve = actions.add_parser(
        "serve",
        help="serve N simulated nodes until Ctrl-C / SIGTERM",
        description=(
            "Serve a simulated fleet as GET /v1/nodes (the List Nodes API) on loopback. "
            "Prints the endpoint URL on stdout (--api accepts it as it is), then serves until "
            "Ctrl-C or SIGTERM (exit 0)."
        ),
    )
    serve.add_argument("--nodes", type=_count, default=3000, help="fleet size (default 3000)")
    serve.add_argument("--seed", type=_seed, default=0, help="fleet seed (default 0)")
    serve.add_argument(
        "--port", type=_port, default=0, help="TCP port, 0..65535 (default: a free one)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    serve.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="require 'Authorization: Bearer <key>' with the key read from this variable",
    )
    faults = serve.add_argument_group("faults (deterministic for --fault-seed)")
    for flag, help_text in (
        ("--rate-500", "share of requests answered 500"),
        ("--rate-503", "share answered 503 (with Retry-After)"),
        ("--rate-429", "share answered 429 (with Retry-After)"),
        ("--rate-drop", "share whose connection is closed without a response"),
        ("--rate-truncate", "share answered 200 with a cut body"),
    ):
        faults.add_argument(flag, type=_probability, default=0.0, metavar="X", help=help_text)
    faults.add_argument(
        "--retry-after", default="0", metavar="S", help="Retry-After value on 429/503 (default 0)"
    )
    faults.add_argument(
        "--latency-ms", type=_non_negative, default=0.0, metavar="MS", help="delay per request"
    )
    faults.add_argument(
        "--inserts-per-request", type=_non_negative, default=0.0, metavar="X",
        help="expected nodes inserted after each answered page",
    )  # fmt: skip
    faults.add_argument(
        "--deletes-per-request", type=_non_negative, default=0.0, metavar="X",
        help="expected nodes deleted after each answered page",
    )  # fmt: skip
    faults.add_argument(
        "--unstable-order", action="store_true", help="shuffle equal created_at on every request"
    )
    faults.add_argument(
        "--created-at-ties", type=_probability, default=0.0, metavar="X",
        help="share of nodes sharing their created_at with another node",
    )  # fmt: skip
    faults.add_argument("--fault-seed", type=_seed, default=0, help="seed of the fault draws")
    dialect = serve.add_argument_group(
        "dialect (one reading of what the API reference leaves open; see docs/simulator.md)"
    )
    dialect.add_argument(
        "--dialect", metavar="NAME", default="default",
        help="a named dialect to start from (default: default); the options below override it",
    )  # fmt: skip
    for flag, help_text in (
        ("--time-precision", "precision times are stored and filtered with: s, ms or us"),
        ("--written-precision", "precision times are written with (coarser = truncated)"),
        ("--time-suffix", "suffix of every written timestamp: Z or +00:00"),
        ("--ram-unit", "telemetry RAM and storage unit: bytes, MiB or GB"),
        ("--vram-unit", "telemetry VRAM unit: bytes, MiB or GB"),
        ("--load-unit", "telemetry load unit: fraction (0..1) or percent (0..100)"),
        ("--numeric-strings", "share of nodes whose numbers are JSON strings, 0..1"),
        ("--bulk-nodes", "nodes registered in one burst (tie groups larger than a page)"),
        ("--bulk-seconds", "span of the burst in seconds (default 3)"),
        ("--content-encoding", "page compression when asked: identity, gzip, deflate, raw-deflate"),
    ):
        dialect.add_argument(flag, metavar="V", default=None, help=help_text)
    dialect.add_argument(
        "--strict-ranges", action="store_true", default=None,
        help="accept only START,END ranges with both ends (an open side is a 422)",
    )  # fmt: skip
    serve.set_defaults(handler=_serve)
    sim.set_defaults(handler=_usage)


def _usage(_args: argparse.Namespace) -> int:
    return fail("sim: give an action: serve (see `nodeselect sim --help`)", EXIT_INPUT)


_CHOICES: dict[str, tuple[str, ...]] = {
    "time_precision": ("s", "ms", "us"),
    "written_precision": ("s", "ms", "us"),
    "time_suffix": ("Z", "+00:00"),
    "ram_unit": ("bytes", "MiB", "GB"),
    "vram_unit": ("bytes", "MiB", "GB"),
    "load_unit": ("fraction", "percent"),
    "content_encoding": ("identity", "gzip", "deflate", "raw-deflate"),
}


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def _dialect(args: argparse.Namespace) -> Any:
    """The dialect the options ask for, or a one-line error message (``str``)."""
    from nodeselect.sim import DIALECTS, BulkRegistration  # noqa: PLC0415

    base = DIALECTS.get(args.dialect)
    if base is None:
        return f"--dialect {args.dialect}: unknown; give one of {', '.join(DIALECTS)}"
    changes: dict[str, Any] = {}
    for field, options in _CHOICES.items():
        value = getattr(args, field)
        if value is None:
            continue
        if value not in options:
            return f"{_flag(field)} {value}: give one of {', '.join(options)}"
        changes[field] = value
    if args.strict_ranges:
        changes["strict_ranges"] = True
    if args.numeric_strings is not None:
        try:
            share = float(args.numeric_strings)
        except ValueError:
            share = -1.0
        if not 0.0 <= share <= 1.0:
            return f"--numeric-strings {args.numeric_strings}: give a share from 0 to 1"
        changes["numeric_strings"] = share
    counts: dict[str, int] = {}
    for field in ("bulk_nodes", "bulk_seconds"):
        text = getattr(args, field)
        if text is None:
            continue
        if not text.isdigit():
            return f"{_flag(field)} {text}: give a whole number >= 0"
        counts[field] = int(text)
    if "bulk_seconds" in counts and "bulk_nodes" not in counts and base.bulk is None:
        return "--bulk-seconds needs --bulk-nodes (how many nodes the burst registers)"
    if counts:
        bulk = base.bulk or BulkRegistration()
        changes["bulk"] = BulkRegistration(
            nodes=counts.get("bulk_nodes", bulk.nodes),
            seconds=counts.get("bulk_seconds", bulk.seconds),
        )
    return attrs.evolve(base, **changes)


def _serve(args: argparse.Namespace) -> int:
    # Imported here so that `nodeselect --help` does not pay for numpy and the fleet tables.
    from nodeselect.sim import FaultConfig, SimServer, generate_fleet  # noqa: PLC0415

    api_key: str | None = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            return fail(
                f"--api-key-env {args.api_key_env}: that environment variable is not set or empty",
                EXIT_INPUT,
            )
    if args.nodes < 0:
        return fail(f"--nodes {args.nodes}: give a node count >= 0", EXIT_INPUT)
    dialect = _dialect(args)
    if isinstance(dialect, str):
        return fail(dialect, EXIT_INPUT)
    try:
        faults = FaultConfig(
            rate_500=args.rate_500,
            rate_503=args.rate_503,
            rate_429=args.rate_429,
            retry_after=args.retry_after,
            rate_drop=args.rate_drop,
            rate_truncate=args.rate_truncate,
            latency_ms=args.latency_ms,
            inserts_per_request=args.inserts_per_request,
            deletes_per_request=args.deletes_per_request,
            unstable_order=args.unstable_order,
            seed=args.fault_seed,
        )
    except ValueError as exc:
        return fail(str(exc), EXIT_INPUT)
    try:
        fleet = generate_fleet(
            args.nodes, args.seed, created_at_ties=args.created_at_ties, dialect=dialect
        )
    except ValueError as exc:
        return fail(str(exc), EXIT_INPUT)
    server = SimServer(fleet, faults=faults, api_key=api_key, host=args.host, port=args.port)
    try:
        server.start()
    except (OSError, ValueError, OverflowError, TypeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        return fail(f"cannot listen on {args.host}:{args.port}: {reason}", EXIT_INPUT)
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        described = dialect.describe()
        label = "" if described == "default" else f" [dialect {args.dialect}: {described}]"
        print(  # the URL stays the last word of the line
            f"nodeselect sim: serving {args.nodes} simulated nodes{label} at {server.endpoint}",
            flush=True,
        )
        while not stop.wait(0.2):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        started = time.monotonic()
        server.stop()
        stats = server.stats
        print(
            f"nodeselect sim: stopped after {stats.requests} requests "
            f"({stats.page_requests_ok} pages, faults {sum(stats.faults.values())}, "
            f"stop took {time.monotonic() - started:.2f} s)",
            file=sys.stderr,
        )
    return EXIT_OK
