"""The command-line parsers, without the commands: ``nodeselect --help`` and usage errors load
only this module, argparse and ``_common`` (no numpy, httpx, rich or engine). Each parser's
handler imports its command module when it runs (:func:`lazy_handler`), so Ctrl-C during those
imports is an ordinary "interrupted" (exit 130).

The fleet defaults are mirrored here as plain values (a test holds them equal to
``nodeselect.fetch``'s), so that help text does not import the fetch layer.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from nodeselect.cli._common import EXIT_CODES_HELP, add_format_argument
from nodeselect.cli._jobargs import add_job_arguments, add_set_argument

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_DEADLINE",
    "DEFAULT_TIMEOUT",
    "MAX_SECONDS",
    "add_now_argument",
    "add_source_arguments",
    "lazy_handler",
    "register_gpus",
    "register_nodes",
    "register_place",
    "register_plan",
    "register_schema",
    "register_survey",
]

#: ``nodeselect.fetch.DEFAULT_BASE_URL`` (held equal by tests/cli/test_cli_startup.py).
DEFAULT_BASE_URL: Final = "https://api.dispersed.com"
#: ``nodeselect.fetch.DEFAULT_CONCURRENCY`` (held equal by tests/cli/test_cli_startup.py).
DEFAULT_CONCURRENCY: Final = 16
#: ``--timeout``: seconds one request may take (connect, each read, and the whole answer
#: however a server trickles it). A page of 50 nodes takes well under a second; a server
#: that does not answer is reported (retry count in the progress bar) within this.
DEFAULT_TIMEOUT: Final = 10.0
#: ``--deadline``: seconds the whole fetch may take, retries and back-off waits included.
DEFAULT_DEADLINE: Final = 120.0
#: The largest ``--timeout`` / ``--deadline`` accepted (a day).
MAX_SECONDS: Final = 86_400.0

_NODES_DOC: Final = """`nodeselect nodes`: list the nodes matching server-side filters, or save
them as a snapshot.

Every filter of the List Nodes API has a flag. ``--status``, ``--continent``, ``--country``,
``--subdivision``, ``--name``, ``--uuid`` and ``--operator`` may be repeated (any of);
``--compliance`` may be repeated (all of). Output: a table (default), ``json`` (an array) or
``jsonl`` (one ``{"document": ..., "nodeselect": {proved facts}}`` per line). Operator e-mails,
IP addresses and wallets are hidden unless ``--show-private``; ``--out FILE`` saves a full
snapshot (documents exactly as received) for ``--snapshot FILE`` later.
"""


def lazy_handler(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """A handler that imports ``module`` only when the command runs, then calls ``name``."""

    def handler(args: argparse.Namespace) -> int:
        run: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module), name)
        return run(args)

    handler.__qualname__ = f"lazy_handler({module}:{name})"
    return handler


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--api``, ``--snapshot``, ``--demo``, ``--concurrency``, ``--allow-incomplete``,
    ``--timeout``, ``--deadline`` and ``--allow-insecure-http``."""
    group = parser.add_argument_group("fleet source (one of)")
    ex = group.add_mutually_exclusive_group()
    ex.add_argument(
        "--api",
        metavar="URL",
        default=None,
        help=f"List Nodes API base URL (default {DEFAULT_BASE_URL}; key from $NODESELECT_API_KEY)",
    )
    ex.add_argument(
        "--snapshot", metavar="FILE", default=None, help="read the fleet from a saved snapshot"
    )
    ex.add_argument(
        "--demo",
        action="store_true",
        help="use the embedded simulated fleet (a local server; data is not real)",
    )
    group.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"page requests in flight (default {DEFAULT_CONCURRENCY})",
    )
    group.add_argument(
        "--allow-incomplete",
        action="store_true",
        help="accept a fetch that could not prove it got every matching node (else exit 4)",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"bound on one request: connect, each read and the whole answer (default "
        f"{DEFAULT_TIMEOUT:g}); a request past it is retried",
    )
    group.add_argument(
        "--deadline",
        type=float,
        default=DEFAULT_DEADLINE,
        metavar="SECONDS",
        help=f"bound on the whole fetch, retries included (default {DEFAULT_DEADLINE:g})",
    )
    group.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="send the API key over plain http:// to a host that is not this machine "
        "(refused by default: the key would cross the network in clear text)",
    )


def register_plan(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the `plan` subcommand."""
    parser = subparsers.add_parser(
        "plan",
        help="dry run: rank the nodes for one job file and explain the rejections",
        description=(
            "Rank every node of a fleet for one job file and explain the rejections. "
            "Choose the fleet with --api URL (key from NODESELECT_API_KEY), --snapshot FILE "
            "or --demo (the embedded simulated fleet)."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "job",
        metavar="JOB.toml",
        nargs="?",
        help="the job file (docs/jobs.md); - reads TOML or JSON on stdin; leave it out to give "
        "the requirements as flags",
    )
    add_source_arguments(parser)
    add_job_arguments(parser)
    out = parser.add_argument_group("output")
    out.add_argument(
        "--top", type=int, default=10, metavar="N", help="rank this many nodes (default 10)"
    )
    out.add_argument(
        "--explain",
        metavar="NODE",
        help="also explain one node (uuid, name, or row number of the ranked table): every "
        "failing constraint and score term",
    )
    add_format_argument(out, "the report, schema in docs/cli.md; jsonl: the same on one line")
    out.add_argument(
        "--show-private",
        action="store_true",
        help="show operator e-mails, IP addresses and wallets (hidden by default)",
    )
    out.add_argument("--seed", type=int, default=0, metavar="N", help="tie-break seed (default 0)")
    add_now_argument(parser)
    parser.set_defaults(handler=lazy_handler("nodeselect.cli.plan", "_handle"))


def register_place(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the `place` subcommand."""
    parser = subparsers.add_parser(
        "place",
        help="place a batch of jobs ([[job]] tables) on the fleet without double-booking",
        description=(
            "Place every job of JOBS.toml (a file of [[job]] tables) on one fleet: priority "
            "first, then hardest to place first; GPUs, cores, RAM and disk are reserved as jobs "
            "are placed, and gangs (nodes > 1) are placed all-or-nothing. "
            "Exit 1 when a job could not be placed."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "jobs", metavar="JOBS.toml", help="the job file; - reads TOML or JSON on stdin"
    )
    add_source_arguments(parser)
    add_set_argument(parser)
    add_format_argument(
        parser,
        "the plan, schema in docs/placement.md; jsonl: on one line",
        extra={
            "env": "each replica's launch environment (CUDA_VISIBLE_DEVICES, NODE_RANK, ...)",
            "hostfile": "ADDRESS slots=GPUS per replica (needs --show-private)",
        },
    )
    parser.add_argument(
        "--master-port",
        type=int,
        default=29500,
        metavar="PORT",
        help=(
            "first MASTER_PORT in --format env and json (default 29500; a job whose master "
            "shares a node with an earlier job's gets the next port)"
        ),
    )
    parser.add_argument(
        "--show-private",
        action="store_true",
        help="show node addresses and MASTER_ADDR (personal data; hidden by default)",
    )
    add_now_argument(parser)
    parser.add_argument("--seed", type=int, default=0, help="tie-break seed (default 0)")
    parser.add_argument(
        "--optimal",
        action="store_true",
        help=(
            "solve the batch exactly (most jobs placed, priority tiers first) with the HiGHS "
            'solver, seeded by the default plan; needs pip install "nodeselect[optimal]"'
        ),
    )
    parser.add_argument(
        "--time-limit",
        type=_seconds,
        default=None,
        metavar="S",
        help="with --optimal: stop the solver after S seconds and keep the best plan found",
    )
    parser.add_argument(
        "--workers",
        type=_threads,
        default=1,
        metavar="N",
        help=(
            "survey the jobs in N threads (default 1); the plan is the same for any N, "
            "only the survey runs in parallel (large batches)"
        ),
    )
    parser.add_argument(
        "--dask",
        metavar="WHERE",
        default=None,
        help=(
            "survey the jobs' candidate nodes on Dask, from the --snapshot's shards built on "
            "the workers: sync (this process), local:N (N worker processes) or "
            "tcp://host:8786; the jobs are then placed here, and the plan is the same "
            "(needs pip install 'nodeselect[dask]'; docs/scale-out.md)"
        ),
    )
    parser.set_defaults(handler=lazy_handler("nodeselect.cli.place", "_run"))


def _seconds(text: str) -> float:
    """A ``--time-limit``: a finite number of seconds >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0 (e.g. 30)")
    return value


def _threads(text: str) -> int:
    """A ``--workers``: a whole number of threads, 1..256."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of threads 1..256 (e.g. 2)")
    return value


def register_nodes(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the `nodes` subcommand."""
    p = subparsers.add_parser(
        "nodes",
        help="list nodes matching server-side filters (or save a snapshot)",
        description=_NODES_DOC,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    f = p.add_argument_group("filters (repeatable flags are unions, except --compliance)")
    f.add_argument(
        "--status",
        action="append",
        default=[],
        metavar="STATUS",
        help="e.g. AVAILABLE, RESOURCE_BUSY (DELETED implies --include-deleted)",
    )
    f.add_argument(
        "--continent", action="append", default=[], metavar="CODE", help="AF AN AS EU NA OC SA"
    )
    f.add_argument(
        "--country", action="append", default=[], metavar="ISO", help="ISO 3166-1 alpha-2, e.g. US"
    )
    f.add_argument(
        "--subdivision", action="append", default=[], metavar="ISO", help="ISO 3166-2, e.g. US-CA"
    )
    f.add_argument(
        "--compliance",
        action="append",
        default=[],
        metavar="TAG",
        help="GDPR or EEA; repeated = all of them",
    )
    f.add_argument("--name", action="append", default=[], help="exact node name")
    f.add_argument(
        "--operator", action="append", default=[], metavar="UUID", help="operator account uuid"
    )
    f.add_argument("--uuid", action="append", default=[], help="node uuid")
    f.add_argument(
        "--created-between",
        metavar="START,END",
        default=None,
        help="created_at range, inclusive; dates or ISO datetimes, either side open",
    )
    f.add_argument(
        "--seen-between",
        metavar="START,END",
        default=None,
        help="last_seen_at range, like --created-between",
    )
    f.add_argument("--include-deleted", action="store_true", help="also list deleted nodes")
    add_source_arguments(p)
    o = p.add_argument_group("output")
    add_format_argument(o, "an array of {document, nodeselect}; jsonl: one node per line")
    o.add_argument(
        "--out",
        metavar="FILE",
        default=None,
        help="also save the fetched fleet as a snapshot file (atomic, mode 0600)",
    )
    o.add_argument(
        "--force",
        action="store_true",
        help="let --out replace a symlink or special file (never writes through it)",
    )
    o.add_argument(
        "--shards",
        metavar="N",
        type=int,
        default=None,
        help="with --out DIR: save the snapshot as N shard files and a manifest in DIR",
    )
    o.add_argument(
        "--show-private",
        "--include-personal",  # the first spelling; kept so existing scripts keep working
        dest="show_private",
        action="store_true",
        help="show operator e-mails, IP addresses and wallets (hidden by default)",
    )
    p.set_defaults(handler=lazy_handler("nodeselect.cli.nodes", "run"))


def register_gpus(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the `gpus` subcommand."""
    parser = subparsers.add_parser(
        "gpus",
        help="list the GPU models in a fleet (nodes, GPUs, free VRAM range)",
        description="List the GPU models in a fleet: canonical name, nodes, GPUs, free VRAM.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_source_arguments(parser)
    add_format_argument(parser, "the catalogue, schema in docs/cli.md; jsonl: on one line")
    parser.add_argument(
        "--known",
        action="store_true",
        help="list the GPU models nodeselect recognises (the registry; no fleet is fetched)",
    )
    parser.add_argument(
        "--available",
        action="store_true",
        help=(
            "per GPU model, how many nodes could take 1, 2, 4 or 8 of its GPUs now "
            "(AVAILABLE, not suspended), per continent"
        ),
    )
    add_now_argument(parser)
    parser.set_defaults(handler=lazy_handler("nodeselect.cli.gpus", "_handle"))


_SURVEY_DOC: Final = """\
`nodeselect survey`: every job's top nodes over a sharded fleet, on Dask
(docs/scale-out.md).

Reads the jobs of JOBS.toml, builds each shard of ``--snapshot DIR`` (a sharded
snapshot from ``nodeselect nodes --out DIR --shards N``, or one snapshot file) on
the Dask workers, and writes each job's top ``--top`` nodes to ``--out`` as they
come: JSON lines, or Parquet for a ``.parquet`` path (needs pyarrow). ``--dask``
picks where: ``sync`` (this process, Dask's synchronous scheduler), ``local:N``
(N worker processes on this machine) or a scheduler address
(``tcp://host:8786``). The answer is the single-machine ``rank_many`` on the
whole fleet, bit for bit. Needs the optional extra:
``pip install 'nodeselect[dask]'``.
"""


def register_survey(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the `survey` subcommand."""
    p = subparsers.add_parser(
        "survey",
        help="every job's top nodes over a sharded fleet, on Dask (exact, streamed to a file)",
        description=_SURVEY_DOC,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("jobs", metavar="JOBS.toml", type=Path, help="the job file ([[job]] tables)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--snapshot",
        metavar="DIR",
        default=None,
        help="a sharded snapshot directory (nodes --out DIR --shards N) or one snapshot file",
    )
    src.add_argument(
        "--synthetic",
        metavar="NODES",
        type=int,
        default=None,
        help="instead: NODES simulated nodes generated on the workers (trials, benchmarks)",
    )
    p.add_argument(
        "--shards",
        metavar="N",
        type=int,
        default=None,
        help="with --synthetic: how many shards (default: 1 per 250,000 nodes)",
    )
    p.add_argument(
        "--dask",
        metavar="WHERE",
        default="sync",
        help="sync (default: this process), local:N (N worker processes) or tcp://host:8786",
    )
    p.add_argument("--top", metavar="K", type=int, default=10, help="nodes per job (default 10)")
    p.add_argument(
        "--out",
        metavar="FILE",
        type=Path,
        required=True,
        help="results: JSON lines, or Parquet for *.parquet (needs pyarrow)",
    )
    p.add_argument(
        # nodeselect.dask.DEFAULT_BATCH (not imported here: dask is an optional extra)
        "--batch",
        metavar="JOBS",
        type=int,
        default=4000,
        help="jobs per tile (default 4000)",
    )
    p.add_argument("--seed", type=int, default=0, help="tie-break seed (default 0)")
    add_now_argument(p)
    p.add_argument(
        "--skip",
        metavar="N",
        type=int,
        default=0,
        help="leave out the first N jobs of JOBS.toml, as a survey that stopped after N jobs "
        "says (the rest keep their job_index; give another --out)",
    )
    p.set_defaults(handler=lazy_handler("nodeselect.cli.survey", "_run"))


_SCHEMA_WHAT: Final = {
    "job": "a job file (TOML or JSON; docs/jobs.md)",
    "plan": "`plan --json`",
    "place": "`place --json` (Plan.to_json)",
    "nodes": "`nodes --format json` (an array) or one `--format jsonl` line",
}


def register_schema(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the `schema` subcommand."""
    from nodeselect.schemas import SCHEMA_NAMES  # noqa: PLC0415 - json and a file list only

    parser = subparsers.add_parser(
        "schema",
        help="print the JSON Schema of a job file or of a --json output",
        description="Print a JSON Schema (draft 2020-12) shipped with nodeselect: "
        + "; ".join(f"{k}: {v}" for k, v in _SCHEMA_WHAT.items())
        + ". Its $id carries the schema version.",
    )
    parser.add_argument("name", choices=SCHEMA_NAMES, help="which schema")
    parser.set_defaults(handler=lazy_handler("nodeselect.cli.schema", "_run"))


def add_now_argument(parser: argparse.ArgumentParser) -> None:
    """``--now ISO8601|now``: the evaluation time (read by ``cli._asof.evaluation_time``)."""
    parser.add_argument(
        "--now",
        metavar="ISO8601|now",
        default=None,
        help=(
            "evaluate as of this time (ISO 8601 with a timezone, e.g. 2026-11-30T10:00:00Z, or "
            "'now'); default: a snapshot's fetched_at, else the current time"
        ),
    )
