"""`nodeselect nodes`: list the nodes matching server-side filters, or save them as a snapshot.

Every filter of the List Nodes API has a flag. ``--status``, ``--continent``, ``--country``,
``--subdivision``, ``--name``, ``--uuid`` and ``--operator`` may be repeated (any of);
``--compliance`` may be repeated (all of). Output: a table (default), ``json`` (an array) or
``jsonl`` (one ``{"document": ..., "nodeselect": {proved facts}}`` per line). Operator e-mails,
IP addresses and wallets are hidden unless ``--show-private``; ``--out FILE`` saves a full
snapshot (documents exactly as received) for ``--snapshot FILE`` later; ``--out DIR --shards N``
saves it as N shard files and a manifest (``--snapshot DIR`` reads them all).

JSON output is streamed (:class:`NodeStream`): each page's nodes are written, and flushed, as
the page arrives, while later pages are still in flight. Each document's bytes are spliced
as the server sent them; personal fields are blanked by key
(:func:`nodeselect.documents.personal_keys`; :func:`blank_spliced`), never searched for with
patterns.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, BinaryIO, Final, Protocol, TextIO, TypeVar

import attrs
import msgspec

from nodeselect.cli._common import (
    EXIT_INPUT,
    EXIT_NO_FIT,
    EXIT_OK,
    EXIT_OUTPUT,
    fail,
    json_safe,
    note,
    plural,
    terminal_safe,
    warn,
)
from nodeselect.cli._output import OutWriteError, check_out_target
from nodeselect.cli._render import Column, is_terminal, print_table, private_fields, redact
from nodeselect.cli._source import fetch_into_shards, fleet_error, load_fleet, open_snapshot
from nodeselect.documents import LeanNode, ProvedFacts, blank_personal, personal_keys
from nodeselect.errors import InputError, NodeSelectError, SnapshotError
from nodeselect.fetch import (
    FetchedNode,
    FetchResult,
    NodeQuery,
    SnapshotManifest,
    SnapshotNodes,
    node_line,
    parse_time_range,
    save_sharded_nodes,
    save_snapshot,
    save_snapshot_nodes,
)

__all__ = ["NodeStream", "blank_spliced", "filter_snapshot", "query_from_args", "run"]


def query_from_args(args: argparse.Namespace) -> NodeQuery:
    """The :class:`NodeQuery` the filter flags describe (raises QueryError)."""
    return NodeQuery(
        statuses=args.status,
        continents=args.continent,
        countries=args.country,
        subdivisions=args.subdivision,
        compliance=args.compliance,
        names=args.name,
        uuids=args.uuid,
        operators=args.operator,
        created_between=(
            None
            if args.created_between is None
            else parse_time_range(args.created_between, "--created-between")
        ),
        seen_between=(
            None
            if args.seen_between is None
            else parse_time_range(args.seen_between, "--seen-between")
        ),
        include_deleted=args.include_deleted,
    )


def _gpus(node: FetchedNode) -> str:
    gpus = node.lean.gpus or []
    if not gpus:
        return "-"
    names: dict[str, int] = {}
    for g in gpus:
        key = g.name or "?"
        names[key] = names.get(key, 0) + 1
    return ", ".join(f"{n}x {name}" for name, n in names.items())


def _where(node: FetchedNode) -> str:
    f = node.facts
    parts = [p for p in (f.continent, f.subdivision or f.country) if p]
    return "/".join(parts) or "?"


def _private_cells(node: FetchedNode) -> list[str]:
    lean = node.lean
    address = lean.ipv4_address or lean.ipv6_address or "-"
    email = private_fields(node.raw).get("operator_email") or "-"
    return [str(address), str(email)]


def _table(result: FetchResult, personal: bool) -> None:
    _print_rows(_rows(result.nodes, personal), result.source, personal)


def _print_rows(rows: list[list[str]], source: str, personal: bool) -> None:
    columns = [
        Column("uuid", keep=8),
        Column("name", keep=9),
        Column("status", keep=6),
        Column("where", keep=5),
        Column("gpus", keep=7),
        Column("reputation", "right", keep=4),
        Column("last_seen_at", keep=3),
    ]
    if personal:
        columns += [Column("address", keep=2), Column("operator e-mail", keep=2)]
    count = plural(len(rows), "node")
    print_table(columns, rows, title=f"{count} from {terminal_safe(source)}")


def _rows(nodes: Iterable[FetchedNode], personal: bool) -> list[list[str]]:
    rows = []
    for n in nodes:
        lean = n.lean
        row = [
            n.uuid,
            lean.name or "-",
            n.facts.status or "?",
            _where(n),
            _gpus(n),
            "-" if lean.reputation is None else f"{lean.reputation:g}",
            lean.last_seen_at or "-",
        ]
        if personal:
            row += _private_cells(n)
        rows.append(row if personal else [redact(c) for c in row])
    return rows


_RAW_OBJECT: Final = msgspec.json.Decoder(dict[str, msgspec.Raw])
_RAW_ARRAY: Final = msgspec.json.Decoder(list[msgspec.Raw])
_RAW_ENCODE: Final = msgspec.json.Encoder().encode
_NULL: Final = msgspec.Raw(b"null")


def _blank_value(raw: bytes, tree: dict[str, Any]) -> bytes:
    """``raw`` (an object, or an array of objects) with the personal keys of ``tree`` null."""
    text = raw.lstrip()
    if text[:1] == b"{":
        doc = _RAW_OBJECT.decode(text)
        for key, sub in tree.items():
            if key in doc:
                doc[key] = _NULL if sub is True else msgspec.Raw(_blank_value(bytes(doc[key]), sub))
        return _RAW_ENCODE(doc)
    if text[:1] == b"[":
        return _RAW_ENCODE(
            [msgspec.Raw(_blank_value(bytes(x), tree)) for x in _RAW_ARRAY.decode(text)]
        )
    return raw


def blank_spliced(raw: bytes) -> bytes:
    """:func:`~nodeselect.documents.blank_personal`'s result (the same keys, from
    :func:`~nodeselect.documents.personal_keys`, set to ``null``), with every other value
    spliced as the server's bytes: only the objects on the way to a personal key are decoded,
    and only one level at a time (``msgspec.Raw``), 1.6-2.2x faster than a full decode and
    re-encode. A document that is not a JSON object comes back unchanged (as from
    ``blank_personal``); anything unexpected falls back to ``blank_personal``."""
    if raw[:1] != b"{" and raw.lstrip()[:1] != b"{":
        return raw
    try:
        return _blank_value(raw, personal_keys())
    except (msgspec.DecodeError, RecursionError):
        return blank_personal(raw)


class NodeStream:
    """``--format jsonl|json`` written page by page: call :meth:`write` with each page's nodes
    (the fetch's ``on_nodes`` hook), then :meth:`close` once the fetch succeeded.

    Each line is ``{"document": <the bytes the server sent>, "nodeselect": <proved facts>}``,
    spliced without a JSON round-trip. Unless ``personal``, each document's personal fields
    are set to ``null`` by key (:func:`blank_spliced`). A page is written in one call and
    flushed, so a reader sees the first nodes while later pages are still in flight.
    ``array=True`` writes one JSON array (one element per line), closed by :meth:`close`:
    output cut by an error is not valid JSON, so it cannot pass for the list.
    No raw DEL, C1 control or line separator reaches the stream (``json_safe``).
    """

    def __init__(self, out: TextIO, *, array: bool, personal: bool) -> None:
        self._out = out
        self._bin: BinaryIO | None = getattr(out, "buffer", None)
        self._array = array
        self._personal = personal
        self.count = 0
        self._facts: dict[object, bytes] = {}
        if self._bin is not None:
            out.flush()  # the text layer's pending bytes first

    def write(self, nodes: Sequence[FetchedNode]) -> None:
        """Write (and flush) one page's nodes."""
        if not nodes:
            return
        lines = [self._line(n) for n in nodes]
        if self._array:
            lead = b"[\n" if self.count == 0 else b",\n"
            chunk = lead + b",\n".join(lines)
        else:
            chunk = b"\n".join(lines) + b"\n"
        self.count += len(nodes)
        self._emit(chunk)

    def _line(self, node: FetchedNode) -> bytes:
        """The node's line: :func:`~nodeselect.fetch.node_line`'s form, the document blanked."""
        if self._personal:
            return node_line(node)
        facts = self._facts.get(node.facts)
        if facts is None:  # pages share their proved facts: encoded once per distinct value
            if len(self._facts) > 4096:
                self._facts.clear()
            facts = json.dumps(node.facts.to_json(), separators=(",", ":")).encode()
            self._facts[node.facts] = facts
        return b"".join((b'{"document":', blank_spliced(node.raw), b',"nodeselect":', facts, b"}"))

    def close(self) -> None:
        """End the output (the array's closing bracket); call only when the fetch succeeded."""
        if self._array:
            self._emit(b"[]\n" if self.count == 0 else b"\n]\n")

    def _emit(self, chunk: bytes) -> None:
        # json_safe only when needed: ASCII without DEL (nearly every page) is already safe.
        if not chunk.isascii() or b"\x7f" in chunk:
            chunk = json_safe(chunk.decode("utf-8", "replace")).encode("utf-8")
        if self._bin is not None:
            self._bin.write(chunk)
            self._bin.flush()
        else:
            self._out.write(chunk.decode("utf-8"))
            self._out.flush()


def _write_json_lines(result: FetchResult, personal: bool, out: TextIO) -> None:
    """One ``{"document", "nodeselect"}`` line per node of ``result``."""
    stream = NodeStream(out, array=False, personal=personal)
    stream.write(result.nodes)
    stream.close()


def _write_json_array(result: FetchResult, personal: bool, out: TextIO) -> None:
    """The nodes of ``result`` as one JSON array, one node per line."""
    stream = NodeStream(out, array=True, personal=personal)
    stream.write(result.nodes)
    stream.close()


# ------------------------------------------------------------------ filters on a snapshot
#: The proved facts ``nodes --snapshot`` filters on, in the order they are checked.
_FACTS: Final = (
    ("--status", "status"),
    ("--continent", "continent"),
    ("--country", "country"),
    ("--subdivision", "subdivision"),
)


@attrs.define
class _Tally:
    """What filtering a snapshot's nodes (chunk by chunk) found that may make it an error:
    per fact filter, the nodes it saw with the fact unknown; per compliance tag, the nodes
    it saw and how many lacked the tag."""

    unknown: dict[str, int] = attrs.Factory(dict)
    tags: dict[str, list[int]] = attrs.Factory(dict)

    def check(self) -> None:
        """InputError for the first filter, in filtering order, that cannot be applied."""
        for flag, fact in _FACTS:
            unknown = self.unknown.get(flag, 0)
            if unknown:
                raise InputError(
                    f"{flag}: the snapshot does not record the {fact} of "
                    f"{plural(unknown, 'node')} (the API proves it only when filtering); save "
                    f"the snapshot with the filter, e.g. `nodeselect nodes {flag} ... --out "
                    "FILE`, or fetch with --api/--demo"
                )
        for tag, (lacking, seen) in self.tags.items():
            if lacking and lacking == seen:
                raise InputError(
                    f"--compliance {tag}: the snapshot proves that tag for none of its nodes "
                    "(the API proves tags only when filtering); save the snapshot with "
                    f"--compliance {tag}, or fetch with --api/--demo"
                )


def _fact_filters(query: NodeQuery) -> list[tuple[str, str, frozenset[str]]]:
    """The filters on proved facts ``query`` asks for (flag, fact, values kept), in the order
    they are applied (``--status DELETED`` alone reads the documents, not a fact)."""
    statuses = frozenset() if query.statuses == frozenset({"DELETED"}) else query.statuses
    wanted = (statuses, query.continents, query.countries, query.subdivisions)
    return [(flag, fact, w) for (flag, fact), w in zip(_FACTS, wanted, strict=True) if w]


def _refuse_ranges(query: NodeQuery) -> None:
    if query.created_between is not None or query.seen_between is not None:
        raise InputError(
            "--created-between/--seen-between: cannot be applied to a snapshot; fetch with "
            "--api or --demo, or save the snapshot with the range"
        )


class _Selectable(Protocol):
    """What :func:`_select` reads of a node (a ``FetchedNode``, or a ``LeanFetchedNode``)."""

    @property
    def uuid(self) -> str: ...

    @property
    def lean(self) -> LeanNode: ...

    @property
    def facts(self) -> ProvedFacts: ...


_S = TypeVar("_S", bound=_Selectable)


def _select(nodes: Sequence[_S], query: NodeQuery, tally: _Tally) -> list[_S]:
    """The nodes ``query`` keeps, counting in ``tally`` what would make it an error (the
    same whether the fleet comes whole or chunk by chunk: :meth:`_Tally.check` after)."""
    kept = list(nodes)
    if query.names:
        kept = [n for n in kept if n.lean.name in query.names]
    if query.uuids:
        kept = [n for n in kept if n.uuid in query.uuids]
    if query.operators:
        kept = [n for n in kept if n.lean.operator_account_uuid in query.operators]
    statuses = query.statuses
    if not (query.include_deleted or "DELETED" in statuses):
        kept = [n for n in kept if n.lean.deleted_at is None and n.facts.status != "DELETED"]
    if statuses == frozenset({"DELETED"}):
        kept = [n for n in kept if n.lean.deleted_at is not None or n.facts.status == "DELETED"]
    for flag, fact, wanted in _fact_filters(query):
        unknown = sum(1 for n in kept if getattr(n.facts, fact) is None)
        tally.unknown[flag] = tally.unknown.get(flag, 0) + unknown
        kept = [n for n in kept if getattr(n.facts, fact) in wanted]
    for tag in sorted(query.compliance):
        counts = tally.tags.setdefault(tag, [0, 0])
        counts[0] += sum(1 for n in kept if tag not in n.facts.compliance_tags)
        counts[1] += len(kept)
        kept = [n for n in kept if tag in n.facts.compliance_tags]
    return kept


def filter_snapshot(result: FetchResult, query: NodeQuery) -> FetchResult:
    """The nodes of a snapshot that ``query`` selects, checked locally.

    Names, uuids, operators and deleted nodes are read from the documents; status, geography
    and compliance tags only from what the snapshot's own fetch proved (a node with the fact
    unknown makes the filter an error, never a silent guess). Time ranges are refused.

    Raises:
        InputError: a filter that cannot be applied to this snapshot (the flag named).
    """
    _refuse_ranges(query)
    tally = _Tally()
    nodes = _select(result.nodes, query, tally)
    tally.check()
    if len(nodes) == len(result.nodes):
        return result
    return attrs.evolve(result, nodes=tuple(nodes) if isinstance(result.nodes, tuple) else nodes)


def _snapshot_source(args: argparse.Namespace, query: NodeQuery) -> SnapshotNodes:
    """``--snapshot`` of ``nodes``, its header read (a time range refused, an incomplete
    snapshot refused unless ``--allow-incomplete``, the source options checked as for a
    fetch), its nodes not yet."""
    _refuse_ranges(query)
    return open_snapshot(args, ())  # (no "used whole" note: nodes filters it here)


def _may_refuse(query: NodeQuery) -> bool:
    """Whether :func:`_select` may find a filter that the snapshot's facts cannot answer
    (then a first pass finds it, before anything is written)."""
    return bool(_fact_filters(query) or query.compliance)


def _count_kept(source: SnapshotNodes, query: NodeQuery) -> int:
    """A first pass, a chunk at a time: how many nodes ``query`` keeps; InputError for a
    filter the snapshot cannot apply (:meth:`_Tally.check`). The documents are not needed
    (``lean_chunks``: one decode a line)."""
    tally = _Tally()
    count = sum(len(_select(chunk, query, tally)) for chunk in source.lean_chunks())
    tally.check()
    return count


def _kept(
    source: SnapshotNodes,
    query: NodeQuery,
    stream: NodeStream | None,
    rows: list[list[str]] | None = None,
    personal: bool = False,
) -> Iterator[FetchedNode]:
    """The nodes ``query`` keeps, a chunk at a time, each chunk also written to ``stream``
    and its table rows added to ``rows`` (when given) as it passes."""
    for chunk in source.chunks():
        nodes = _select(chunk, query, _Tally())
        if stream is not None:
            stream.write(nodes)
        if rows is not None:
            rows.extend(_rows(nodes, personal))
        yield from nodes


def _reshard(
    args: argparse.Namespace, query: NodeQuery, stream: NodeStream | None
) -> tuple[SnapshotManifest, FetchResult]:
    """``--snapshot SRC --out DIR --shards N``: the nodes of SRC that ``query`` keeps, saved in
    shards without holding them: a first pass a chunk at a time counts them (and finds a
    filter that cannot be applied), a second writes them (and streams them to ``stream``).
    The manifest, and the snapshot's header (a result without nodes)."""
    source = _snapshot_source(args, query)
    count = _count_kept(source, query)
    kept = _kept(source, query, stream)
    manifest = save_sharded_nodes(args.out, source.header, kept, count, args.shards)
    return manifest, source.header


def _listed(
    args: argparse.Namespace,
    query: NodeQuery,
    stream: NodeStream | None,
    rows: list[list[str]] | None,
    personal: bool,
) -> tuple[FetchResult, int]:
    """``--snapshot SRC`` listed (``stream``, or table ``rows``) and saved to ``--out FILE``
    when given, a chunk at a time: a first pass only when a filter may be refused (so the
    error comes before any output). The snapshot's header and the nodes kept."""
    source = _snapshot_source(args, query)
    if _may_refuse(query):
        _count_kept(source, query)
    kept = _kept(source, query, stream, rows, personal)
    if args.out is not None:
        return source.header, _save_nodes(args.out, source.header, kept, force=args.force)
    return source.header, sum(1 for _ in kept)


def _save(path: str, result: FetchResult, *, force: bool) -> None:
    """``--out``: :func:`~nodeselect.fetch.save_snapshot` (unique temporary file, 0600, no
    symlink followed; ``--force`` replaces a link itself), its errors in the CLI's words."""
    with _out_errors(path):
        save_snapshot(path, result, replace_symlink=force)


def _save_nodes(
    path: str, header: FetchResult, nodes: Iterable[FetchedNode], *, force: bool
) -> int:
    """:func:`_save` of the nodes an iterable gives (written as they come); how many."""
    with _out_errors(path):
        return save_snapshot_nodes(path, header, nodes, replace_symlink=force)


@contextlib.contextmanager
def _out_errors(path: str) -> Iterator[None]:
    """A snapshot file that cannot be written: exit 5 (OutWriteError); refused: exit 2."""
    try:
        yield
    except SnapshotError as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        if "cannot write" in reason:
            raise OutWriteError(f"--out {path}: {reason}") from None
        raise InputError(f"--out {path}: {reason}") from None
    except OSError as exc:
        raise OutWriteError(f"--out {path}: cannot write the snapshot: {exc.strerror}") from None


@contextlib.contextmanager
def _shard_write_errors(out: str) -> Iterator[None]:
    """A sharded snapshot's files that cannot be written (a full disk, no permission): the
    output's failure, exit 5, as for ``--out FILE``."""
    try:
        yield
    except SnapshotError as exc:
        if "cannot write" not in str(exc):
            raise
        raise OutWriteError(
            f"--out {out}: {exc}" if not str(exc).startswith(out) else str(exc)
        ) from None


def run(args: argparse.Namespace) -> int:
    """The `nodes` handler."""
    if args.shards is not None and not args.out:
        return fail("--shards N needs --out DIR (the directory to write shards to)", EXIT_INPUT)
    personal = bool(args.show_private)
    out = sys.stdout
    stream: NodeStream | None = None
    if args.format != "table":
        stream = NodeStream(out, array=args.format == "json", personal=personal)
    # a fetch saved in shards goes straight to them: the fleet is never held whole (a 10M-node
    # fleet took ~100 GB), and so it is not listed as a table either
    into_shards = args.out is not None and args.shards is not None and not args.snapshot
    # a snapshot re-saved in shards, likewise: read twice a chunk at a time (count, write)
    reshard = args.out is not None and args.shards is not None and bool(args.snapshot)
    saved = found = 0
    rows: list[list[str]] | None = None  # a snapshot's table rows, made as it is read
    try:
        query = query_from_args(args)
        if args.out is not None and args.shards is None:
            check_out_target(args.out, force=args.force)  # before spending a fetch on it
        # (streamed: the bar would be drawn over the nodes on the same terminal)
        bar = stream is None or not is_terminal(out)
        if reshard:
            with _shard_write_errors(args.out):
                manifest, result = _reshard(args, query, stream)
            saved = manifest.nodes
        elif into_shards:
            with _shard_write_errors(args.out):
                manifest, result = fetch_into_shards(
                    args, query, args.out, args.shards,
                    on_nodes=None if stream is None else stream.write, progress=bar,
                )  # fmt: skip
            saved = manifest.nodes
        elif args.snapshot:  # a chunk at a time: the snapshot is never held whole
            rows = [] if stream is None else None
            result, found = _listed(args, query, stream, rows, personal)
        elif stream is not None:
            result = load_fleet(args, query, on_nodes=stream.write, progress=bar)
        else:
            result = load_fleet(args, query)
        if stream is not None:
            stream.close()
        if args.out is not None and args.shards is None and not args.snapshot:
            _save(args.out, result, force=args.force)
        if not (into_shards or reshard or args.snapshot):
            found = len(result.nodes)
        if not (into_shards or reshard):
            saved = found
    except OutWriteError as exc:
        return fail(str(exc), EXIT_OUTPUT)
    except NodeSelectError as exc:
        message, code = fleet_error(exc, args)
        if stream is not None and stream.count:
            message += f" ({plural(stream.count, 'node')} had been written)"
        return fail(message, code)
    if stream is None and (into_shards or reshard):
        what = "fetched" if into_shards else "re-saved"
        note(
            f"note: a fleet {what} into shards is not listed (it is not held whole); "
            "--format json or jsonl streams its nodes"
        )
    elif stream is None and rows is not None:
        _print_rows(rows, result.source, personal)
    elif stream is None:
        _table(result, personal)
    for issue in result.stats.issues:
        warn(str(issue))
    if result.rejected:
        warn(
            f"{plural(len(result.rejected), 'node document')} did not parse "
            f"(first: {redact(str(result.rejected[0].error))})"
        )
    if args.out:
        where = f"{plural(args.shards, 'shard')} in " if args.shards is not None else ""
        note(f"saved {plural(saved, 'node')} to {where}{args.out} (mode 0600)")
    return EXIT_OK if (saved if args.out else found) else EXIT_NO_FIT
