"""A simulated fleet: filterable facts in numpy columns, documents built lazily and cached.

Node ``i`` is the ``i``-th node inserted (its insertion id); nodes are never removed, a delete
sets ``status = DELETED`` and ``deleted_at``. A query is a boolean mask over the columns plus a
cached stable ``argsort`` of ``created_at``; the selection for one filter/sort combination is
cached until the next mutation, so paging through a result costs O(page).

Times are stored as epoch microseconds, multiples of the dialect's ``time_precision``; filters,
sorting and ties work on the stored values.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import attrs
import msgspec
import numpy as np
import numpy.typing as npt

from nodeselect.documents import STATUSES
from nodeselect.sim._catalog import CONTINENT_CODES, COUNTRIES, EEA, GDPR_EXTRA, STATUS_WEIGHTS
from nodeselect.sim._dialect import Dialect
from nodeselect.sim._doc_parts import US, stringly_node
from nodeselect.sim._documents import (
    NodeRow,
    OperatorRow,
    account_json,
    doc_style,
    encode_document,
)
from nodeselect.sim._query import ParsedQuery, SimQueryError, error_body, parse_params

__all__ = ["Fleet", "HiddenFacts", "StoredTimes", "generate_fleet"]

NULL_TIME: Final = np.iinfo(np.int64).min
#: Microseconds per unit of each stored precision.
QUANTUM: Final = {"s": US, "ms": 1000, "us": 1}
_TIME_COLUMNS: Final = ("created", "last_seen", "deleted_at")
_SMALL_TIE_WINDOW: Final = 64
_DELETED: Final = STATUSES.index("DELETED")
_TAG_GDPR: Final = 1
_TAG_EEA: Final = 2
_YEAR: Final = 365 * 86400
_ONLINE_CODES: Final = np.array(
    [
        STATUSES.index(s)
        for s in ("AVAILABLE", "ASSIGNED", "PREPARING", "WORKING", "STOPPING", "RESOURCE_BUSY")
    ]
)
_STATUS_P: Final = np.array([dict(STATUS_WEIGHTS)[s] for s in STATUSES]) / sum(
    w for _, w in STATUS_WEIGHTS
)
_COUNTRY_CODES: Final = tuple(c[0] for c in COUNTRIES)
_COUNTRY_P: Final = np.array([c[2] for c in COUNTRIES]) / sum(c[2] for c in COUNTRIES)
_COUNTRY_CONTINENT: Final = np.array([CONTINENT_CODES.index(c[1]) for c in COUNTRIES], np.int8)
_COUNTRY_TAGS: Final = np.array(
    [
        (_TAG_GDPR if c[0] in EEA or c[0] in GDPR_EXTRA else 0) | (_TAG_EEA if c[0] in EEA else 0)
        for c in COUNTRIES
    ],
    np.uint8,
)
_SUBDIVISIONS: Final = tuple(s for c in COUNTRIES for s in c[3])
_NAME_WORDS: Final = (
    "atlas", "birch", "cobalt", "delta", "ember", "falcon", "granite", "harbor", "iris", "juniper",
    "kestrel", "lumen", "maple", "nova", "onyx", "pine", "quartz", "raven", "sierra", "tundra",
)  # fmt: skip


@attrs.frozen
class HiddenFacts:
    """What the server knows about a node but its document does not say.

    Attributes:
        status: one of the nine statuses.
        continent: ISO continent code, or ``None`` when the node's location is unknown.
        country: ISO 3166-1 alpha-2 code, or ``None``.
        subdivision: ISO 3166-2 code, or ``None``.
        compliance_tags: ``GDPR`` for EU/EEA countries and the UK, ``EEA`` for EEA countries.
        malformed: the document deliberately has a string where a number belongs.
    """

    status: str
    continent: str | None
    country: str | None
    subdivision: str | None
    compliance_tags: frozenset[str]
    malformed: bool = False


@attrs.frozen
class StoredTimes:
    """A node's timestamps exactly as the server stores and filters them (UTC, microseconds).

    Attributes:
        created_at: when the node was registered.
        last_seen_at: when it last reported, or ``None``.
        deleted_at: when it was deleted, or ``None``.
    """

    created_at: datetime
    last_seen_at: datetime | None
    deleted_at: datetime | None


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _utc_us(epoch_us: int) -> datetime | None:
    return None if epoch_us == NULL_TIME else _EPOCH + timedelta(microseconds=epoch_us)


def _to_us(arrays: dict[str, npt.NDArray[Any]]) -> None:
    """Seconds to microseconds in the time columns (nulls stay null)."""
    for key in _TIME_COLUMNS:
        col = arrays[key]
        arrays[key] = np.where(col == NULL_TIME, NULL_TIME, col * US)


def _uuids(rng: np.random.Generator, k: int) -> list[str]:
    raw = rng.integers(0, 256, size=(k, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    h = raw.tobytes().hex()
    parts = [h[o : o + 32] for o in range(0, 32 * k, 32)]
    return [f"{p[:8]}-{p[8:12]}-{p[12:16]}-{p[16:20]}-{p[20:]}" for p in parts]


class _Columns:
    """Growable numpy columns (capacity doubling) plus the per-node Python lists."""

    def __init__(self) -> None:
        self.n = 0
        self.created = np.empty(0, np.int64)
        self.last_seen = np.empty(0, np.int64)
        self.deleted_at = np.empty(0, np.int64)
        self.status = np.empty(0, np.int8)
        self.continent = np.empty(0, np.int8)
        self.country = np.empty(0, np.int16)
        self.subdivision = np.empty(0, np.int16)
        self.tags = np.empty(0, np.uint8)
        self.operator = np.empty(0, np.int32)
        self.malformed = np.empty(0, np.bool_)
        self.uuids: list[str] = []
        self.names: list[str] = []

    _ARRAYS: Final = (
        "created", "last_seen", "deleted_at", "status", "continent", "country", "subdivision",
        "tags", "operator", "malformed",
    )  # fmt: skip

    def append(
        self, arrays: Mapping[str, npt.NDArray[Any]], uuids: list[str], names: list[str]
    ) -> None:
        k = len(uuids)
        need = self.n + k
        for attr in self._ARRAYS:
            col: npt.NDArray[Any] = getattr(self, attr)
            if need > len(col):
                grown = np.empty(max(need, 2 * len(col)), col.dtype)
                grown[: self.n] = col[: self.n]
                col = grown
                setattr(self, attr, col)
            col[self.n : need] = arrays[attr]
        self.uuids.extend(uuids)
        self.names.extend(names)
        self.n = need

    def view(self, attr: str) -> npt.NDArray[Any]:
        col: npt.NDArray[Any] = getattr(self, attr)
        return col[: self.n]


def _draw_facts(
    rng: np.random.Generator, k: int, now: int, n_ops: int, op_p: npt.NDArray[np.float64]
) -> tuple[dict[str, npt.NDArray[Any]], list[str], list[str]]:
    """Vectorized facts for ``k`` nodes created up to ``now`` (created_at sorted later)."""
    u = rng.random(k)
    created = now - (3 * _YEAR * (1.0 - u**0.6)).astype(np.int64) - 1
    status = rng.choice(len(STATUSES), size=k, p=_STATUS_P).astype(np.int8)
    online = np.isin(status, _ONLINE_CODES)
    # Online nodes reported within ~2 minutes (5 % are stale by hours or days); others long ago.
    age = np.where(
        online,
        rng.integers(1, 120, size=k),
        (rng.pareto(1.2, size=k) * 86400 * 3).astype(np.int64) + 600,
    )
    stale = online & (rng.random(k) < 0.05)
    age = np.where(stale, rng.integers(3600, 14 * 86400, size=k), age)
    last_seen = np.maximum(now - age, created)
    last_seen[rng.random(k) < 0.01] = NULL_TIME
    deleted = status == _DELETED
    deleted_at = np.where(
        deleted, np.minimum(now - rng.integers(3600, 200 * 86400, size=k), now), NULL_TIME
    )
    deleted_at = np.where(deleted, np.maximum(deleted_at, created), NULL_TIME)
    last_seen = np.where(
        deleted & (last_seen != NULL_TIME), np.minimum(last_seen, deleted_at), last_seen
    )
    country = rng.choice(len(COUNTRIES), size=k, p=_COUNTRY_P).astype(np.int16)
    country[rng.random(k) < 0.02] = -1  # location unknown
    known = country >= 0
    continent = np.where(known, _COUNTRY_CONTINENT[np.maximum(country, 0)], -1).astype(np.int8)
    tags = np.where(known, _COUNTRY_TAGS[np.maximum(country, 0)], 0).astype(np.uint8)
    subdivision = np.full(k, -1, np.int16)
    pick = rng.random(k)
    for ci, (_, _, _, subs) in enumerate(COUNTRIES):
        if subs:
            rows = np.flatnonzero((country == ci) & (pick < 0.85))
            first = _SUBDIVISIONS.index(subs[0])
            subdivision[rows] = first + rng.integers(0, len(subs), size=len(rows))
    operator = rng.choice(n_ops, size=k, p=op_p).astype(np.int32)
    malformed = rng.random(k) < 0.001
    uuids = _uuids(rng, k)
    words = rng.integers(0, len(_NAME_WORDS), size=k)
    style = rng.integers(0, 3, size=k)
    names = [
        f"node-{uu[:6]}"
        if s == 0
        else f"{_NAME_WORDS[w]}-{uu[9:13]}"
        if s == 1
        else f"rig-{uu[:4]}-{w}"
        for uu, w, s in zip(uuids, words.tolist(), style.tolist(), strict=True)
    ]
    arrays = {
        "created": created,
        "last_seen": last_seen,
        "deleted_at": deleted_at,
        "status": status,
        "continent": continent,
        "country": country,
        "subdivision": subdivision,
        "tags": tags,
        "operator": operator,
        "malformed": malformed,
    }
    return arrays, uuids, names


class Fleet:
    """A deterministic simulated fleet that answers List Nodes queries (thread-safe).

    Build one with :func:`generate_fleet`. ``len(fleet)`` counts deleted nodes too.
    """

    def __init__(
        self,
        seed: int,
        now: int,
        n_operators: int,
        doc_cache_limit: int = 250_000,
        dialect: Dialect = Dialect(),  # noqa: B008 - frozen, immutable default
    ) -> None:
        self._seed = seed
        self._now = now
        self._clock = now * US  # epoch microseconds of the latest insert or delete
        self._dialect = dialect
        self._style = doc_style(dialect)
        self._lock = threading.RLock()
        self._cols = _Columns()
        self._by_uuid: dict[str, int] = {}
        self._by_name: dict[str, list[int]] = {}
        ranks = np.arange(1, n_operators + 1, dtype=np.float64)
        self._op_p = ranks**-1.1 / np.sum(ranks**-1.1)
        op_rng = np.random.default_rng([seed, 1])
        self._op_uuids = _uuids(op_rng, n_operators)
        self._op_index = {u: i for i, u in enumerate(self._op_uuids)}
        self._op_created = now - op_rng.integers(30 * 86400, 3 * _YEAR + 86400, size=n_operators)
        self._doc_cache: dict[int, bytes] = {}
        self._doc_cache_limit = doc_cache_limit
        self._orders: dict[str | None, npt.NDArray[np.intp]] = {}
        self._selections: dict[tuple[object, ...], npt.NDArray[np.intp]] = {}
        self._op_json: dict[int, str] = {}

    # -- building ---------------------------------------------------------------------------

    def _add(
        self, arrays: Mapping[str, npt.NDArray[Any]], uuids: list[str], names: list[str]
    ) -> None:
        base = self._cols.n
        self._cols.append(arrays, uuids, names)
        for offset, (uu, name) in enumerate(zip(uuids, names, strict=True)):
            self._by_uuid[uu] = base + offset
            self._by_name.setdefault(name, []).append(base + offset)
        self._invalidate()

    def _invalidate(self) -> None:
        self._orders.clear()
        self._selections.clear()

    # -- the public contract ----------------------------------------------------------------

    @property
    def seed(self) -> int:
        """The seed the fleet was generated from."""
        return self._seed

    @property
    def dialect(self) -> Dialect:
        """The reading of the API reference this fleet is stored, written and served in."""
        return self._dialect

    @property
    def now(self) -> datetime:
        """The fleet's reference time (generation time; inserts are stamped after it)."""
        return datetime.fromtimestamp(self._now, UTC)

    def __len__(self) -> int:
        return self._cols.n

    def uuids(self) -> list[str]:
        """Every node uuid in insertion order (deleted nodes included)."""
        with self._lock:
            return list(self._cols.uuids)

    def _rows(self, ids: list[int]) -> list[NodeRow]:
        """The column facts of ``ids`` (one fancy-indexing pass per column for a whole page)."""
        c = self._cols
        index = np.asarray(ids, np.intp)
        ops = c.operator[index].tolist()
        op_created = self._op_created[ops].tolist() if ops else []
        rows = []
        for i, created, last_seen, status, deleted_at, malformed, op, op_at in zip(
            ids, c.created[index].tolist(), c.last_seen[index].tolist(),
            c.status[index].tolist(), c.deleted_at[index].tolist(),
            c.malformed[index].tolist(), ops, op_created, strict=True,
        ):  # fmt: skip
            rows.append(
                NodeRow(
                    node_id=i,
                    uuid=c.uuids[i],
                    name=c.names[i],
                    created_at=created,
                    last_seen_at=None if last_seen == NULL_TIME else last_seen,
                    status=STATUSES[status],
                    deleted_at=None if deleted_at == NULL_TIME else deleted_at,
                    malformed=malformed,
                    operator=OperatorRow(op, self._op_uuids[op], f"operator{op}", op_at),
                )
            )
        return rows

    def _encode_rows(self, rows: list[NodeRow]) -> list[bytes]:
        out = []
        for row in rows:
            op = row.operator
            account = self._op_json.get(op.number)
            if account is None:
                account = self._op_json[op.number] = account_json(op, self._seed, self._style.when)
            out.append(encode_document(row, self._seed, account, self._style))
        return out

    def _encoded_many(self, ids: list[int]) -> list[bytes]:
        """The encoded documents of ``ids``: cached ones reused, the others built in one batch."""
        cache = self._doc_cache
        found = [cache.get(i) for i in ids]
        missing = [i for i, raw in zip(ids, found, strict=True) if raw is None]
        if not missing:
            return found  # type: ignore[return-value]
        built = dict(zip(missing, self._encode_rows(self._rows(missing)), strict=True))
        for i, raw in built.items():
            if len(cache) >= self._doc_cache_limit:
                cache.pop(next(iter(cache)))
            cache[i] = raw
        return [built[i] if raw is None else raw for i, raw in zip(ids, found, strict=True)]

    def document(self, uuid: str) -> dict[str, Any]:
        """The current document of one node, as served (``KeyError`` for an unknown uuid)."""
        with self._lock:
            return msgspec.json.decode(self._encoded_many([self._by_uuid[uuid]])[0])  # type: ignore[no-any-return]

    def documents(self) -> list[dict[str, Any]]:
        """Every node document as served, deleted ones included, in insertion order."""
        with self._lock:
            rows = self._rows(list(range(self._cols.n)))
            return [msgspec.json.decode(raw) for raw in self._encode_rows(rows)]

    def hidden(self, uuid: str) -> HiddenFacts:
        """The facts only server-side filters reveal (``KeyError`` for an unknown uuid)."""
        with self._lock:
            i = self._by_uuid[uuid]
            c = self._cols
            country, sub, cont = int(c.country[i]), int(c.subdivision[i]), int(c.continent[i])
            tags = int(c.tags[i])
            return HiddenFacts(
                status=STATUSES[int(c.status[i])],
                continent=CONTINENT_CODES[cont] if cont >= 0 else None,
                country=_COUNTRY_CODES[country] if country >= 0 else None,
                subdivision=_SUBDIVISIONS[sub] if sub >= 0 else None,
                compliance_tags=frozenset(
                    t for t, bit in (("GDPR", _TAG_GDPR), ("EEA", _TAG_EEA)) if tags & bit
                ),
                malformed=bool(c.malformed[i]),
            )

    def stored_times(self, uuid: str) -> StoredTimes:
        """The node's timestamps as stored, at full precision (``KeyError`` for an unknown
        uuid); its documents may write them truncated (``Dialect.written_precision``)."""
        with self._lock:
            i = self._by_uuid[uuid]
            c = self._cols
            created = _utc_us(int(c.created[i]))
            assert created is not None
            return StoredTimes(created, _utc_us(int(c.last_seen[i])), _utc_us(int(c.deleted_at[i])))

    def numeric_strings(self, uuid: str) -> bool:
        """Whether this node's document writes its numbers as JSON strings (the dialect's
        ``numeric_strings`` share; ``KeyError`` for an unknown uuid)."""
        with self._lock:
            i = self._by_uuid[uuid]
        return stringly_node(self._seed, i, self._dialect.numeric_strings)

    def parse(self, params: Mapping[str, str]) -> ParsedQuery:
        """Validate one request's parameters as this fleet's server does (the dialect's
        ``strict_ranges``); raises :class:`~nodeselect.sim.SimQueryError`."""
        return parse_params(params, strict_ranges=self._dialect.strict_ranges)

    def query(self, params: Mapping[str, str]) -> tuple[list[dict[str, Any]], int]:
        """Evaluate one List Nodes request: ``(page of documents, total matching)``.

        Raises :class:`~nodeselect.sim.SimQueryError` for bad parameters.
        """
        parsed = self.parse(params)
        with self._lock:
            ids, total = self.select(parsed)
            return [msgspec.json.decode(raw) for raw in self.page_bytes(ids)], total

    def respond(
        self, params: Mapping[str, str], shuffle: random.Random | None = None
    ) -> tuple[int, bytes]:
        """``(HTTP status, body)`` the server answers to these parameters, without a socket
        (for ``httpx.MockTransport`` handlers); ``shuffle`` reorders ties like
        ``FaultConfig(unstable_order=True)``."""
        try:
            q = self.parse(params)
        except SimQueryError as exc:
            return exc.status, error_body(exc.status, exc.message, exc.param)
        with self._lock:
            ids, total = self.select(q, shuffle)
            docs = self.page_bytes(ids)
        return 200, b"".join(
            (
                b'{"data":[',
                b",".join(docs),
                b'],"limit":%d,"page":%d,"total":%d}' % (q.limit, q.page, total),
            )
        )

    # -- what the server uses ---------------------------------------------------------------

    def select(self, q: ParsedQuery, shuffle: random.Random | None = None) -> tuple[list[int], int]:
        """Insertion ids of the requested page and the total; ``shuffle`` reorders ties."""
        with self._lock:
            key = q.filter_key()
            sel = self._selections.get(key)
            if sel is None:
                sel = self._evaluate(q)
                if len(self._selections) >= 256:
                    self._selections.pop(next(iter(self._selections)))
                self._selections[key] = sel
            total = len(sel)
            start = (q.page - 1) * q.limit
            if start >= total:
                return [], total
            end = min(start + q.limit, total)
            if shuffle is None or q.sort is None:
                return sel[start:end].tolist(), total
            keys = self._cols.view("created")[sel]
            if q.sort == "-created_at":
                keys = -keys
            lo = int(np.searchsorted(keys, keys[start], side="left"))
            hi = int(np.searchsorted(keys, keys[end - 1], side="right"))
            window = sel[lo:hi]
            if hi - lo <= _SMALL_TIE_WINDOW:
                noise = np.array([shuffle.random() for _ in range(hi - lo)])
            else:  # a bulk registration: thousands of equal keys, one vectorized draw
                noise = np.random.default_rng(shuffle.getrandbits(64)).random(hi - lo)
            window = window[np.lexsort((noise, keys[lo:hi]))]
            return window[start - lo : end - lo].tolist(), total

    def page_bytes(self, ids: list[int]) -> list[bytes]:
        """The encoded JSON documents of ``ids`` (cached; a delete invalidates its node)."""
        with self._lock:
            return self._encoded_many(ids)

    def _order(self, sort: str | None) -> npt.NDArray[np.intp]:
        order = self._orders.get(sort)
        if order is None:
            created = self._cols.view("created")
            key = created if sort == "created_at" else -created
            order = np.argsort(key, kind="stable")
            self._orders[sort] = order
        return order

    def _evaluate(self, q: ParsedQuery) -> npt.NDArray[np.intp]:
        c = self._cols
        n = c.n
        status = c.view("status")
        mask = np.ones(n, np.bool_) if q.include_deleted else status != _DELETED
        if q.status is not None:
            mask &= status == STATUSES.index(q.status)
        for rng_, col in ((q.created_at, "created"), (q.last_seen_at, "last_seen")):
            if rng_ is not None:  # inclusive epoch microseconds against the stored values
                values = c.view(col)
                mask &= values != NULL_TIME
                if rng_[0] is not None:
                    mask &= values >= rng_[0]
                if rng_[1] is not None:
                    mask &= values <= rng_[1]
        if q.continent is not None:
            mask &= c.view("continent") == CONTINENT_CODES.index(q.continent)
        if q.compliance_tag is not None:
            bit = _TAG_GDPR if q.compliance_tag == "GDPR" else _TAG_EEA
            mask &= (c.view("tags") & bit) != 0
        if q.country is not None:
            code = _COUNTRY_CODES.index(q.country) if q.country in _COUNTRY_CODES else -2
            mask &= c.view("country") == code
        if q.subdivision is not None:
            code = _SUBDIVISIONS.index(q.subdivision) if q.subdivision in _SUBDIVISIONS else -2
            mask &= c.view("subdivision") == code
        if q.operator_account_uuid is not None:
            mask &= c.view("operator") == self._op_index.get(q.operator_account_uuid, -2)
        for ids in (
            None if q.uuid is None else [self._by_uuid[q.uuid]] if q.uuid in self._by_uuid else [],
            None if q.name is None else self._by_name.get(q.name, []),
        ):
            if ids is not None:
                only = np.zeros(n, np.bool_)
                only[ids] = True
                mask &= only
        if q.sort is None:
            return np.flatnonzero(mask)
        order = self._order(q.sort)
        selected: npt.NDArray[np.intp] = order[mask[order]]
        return selected

    # -- mutations --------------------------------------------------------------------------

    def insert_random(self, rng: random.Random) -> str:
        """Insert one new node created one second after the latest insert or delete (plus a
        sub-second part at a finer precision), so it is strictly newer than every existing
        node; return its uuid."""
        with self._lock:
            self._clock += US
            np_rng = np.random.default_rng(rng.getrandbits(64))
            arrays, uuids, names = _draw_facts(
                np_rng, 1, self._clock // US, len(self._op_uuids), self._op_p
            )
            quantum = QUANTUM[self._dialect.time_precision]
            created = self._clock
            if quantum < US:
                created += quantum * int(np_rng.integers(0, US // quantum))
            arrays["created"] = np.array([created], np.int64)
            arrays["status"][:] = np.where(arrays["status"] == _DELETED, 0, arrays["status"])
            arrays["deleted_at"] = np.array([NULL_TIME], np.int64)
            arrays["last_seen"] = np.array([created], np.int64)
            self._add(arrays, uuids, names)
            return uuids[0]

    def delete_random(self, rng: random.Random) -> str | None:
        """Delete one random live node (status DELETED, deleted_at now); ``None`` if none left."""
        with self._lock:
            live = np.flatnonzero(self._cols.view("status") != _DELETED)
            if len(live) == 0:
                return None
            i = int(live[rng.randrange(len(live))])
            self._clock += US
            self._cols.status[i] = _DELETED
            self._cols.deleted_at[i] = self._clock
            self._doc_cache.pop(i, None)
            self._invalidate()
            return self._cols.uuids[i]


def generate_fleet(
    n_nodes: int,
    seed: int = 0,
    *,
    created_at_ties: float = 0.0,
    now: datetime | None = None,
    dialect: Dialect = Dialect(),  # noqa: B008 - frozen, immutable default
) -> Fleet:
    """A realistic fleet of ``n_nodes`` nodes, deterministic for ``(n_nodes, seed, now, dialect)``.

    ``created_at_ties`` is the fraction of nodes that share their ``created_at`` with at least
    one other node (groups of 2-5; they stay tied at every precision). ``now`` defaults to the
    current time (whole seconds). ``dialect`` decides how times are stored (sub-second parts are
    drawn at ``ms``/``us`` precision from a generator of their own, so the nodes are the same as
    in the default dialect), how documents are written, and how the server parses ranges;
    ``dialect.bulk`` registers that many nodes within ``bulk.seconds`` seconds a day before
    ``now``, uniformly at the stored precision.
    """
    if n_nodes < 0:
        raise ValueError(f"n_nodes must be >= 0, got {n_nodes}")
    if not 0.0 <= created_at_ties <= 1.0:
        raise ValueError(f"created_at_ties must be in [0, 1], got {created_at_ties}")
    now_dt = now if now is not None else datetime.now(UTC)
    now_s = int(now_dt.timestamp())
    rng = np.random.default_rng([seed, 0])
    fleet = Fleet(seed, now_s, max(1, n_nodes // 12), dialect=dialect)
    if n_nodes == 0:
        return fleet
    arrays, uuids, names = _draw_facts(rng, n_nodes, now_s, len(fleet._op_uuids), fleet._op_p)
    _to_us(arrays)
    created = arrays["created"]
    if n_nodes >= 200:
        # Guarantee the deliberately malformed documents exist in any fleet worth testing.
        arrays["malformed"][rng.integers(0, n_nodes, size=max(1, n_nodes // 1000))] = True
    if created_at_ties > 0:
        k = round(created_at_ties * n_nodes)
        members = rng.permutation(n_nodes)[:k]
        sizes = rng.integers(2, 6, size=k // 2 + 1)
        pos = 0
        for size in sizes.tolist():
            group = members[pos : pos + size]
            if len(group) < 2:
                if len(group) == 1 and pos > 0:
                    created[group] = created[members[pos - 1]]
                break
            created[group] = created[group[0]]
            pos += size
    quantum = QUANTUM[dialect.time_precision]
    if quantum < US or dialect.bulk is not None:
        _refine_times(arrays, np.random.default_rng([seed, 2]), quantum, now_s, dialect)
        created = arrays["created"]
    # Insertion order follows created_at, except a 10 % of migrated nodes out of place.
    order = np.argsort(created, kind="stable")
    moved = np.flatnonzero(rng.random(n_nodes) < 0.1)
    order[moved] = order[rng.permutation(moved)]
    for key in arrays:
        arrays[key] = arrays[key][order]
    fleet._add(arrays, [uuids[i] for i in order], [names[i] for i in order])
    return fleet


def _refine_times(
    arrays: dict[str, npt.NDArray[Any]],
    rng: np.random.Generator,
    quantum: int,
    now_s: int,
    dialect: Dialect,
) -> None:
    """Sub-second parts at a finer precision, the bulk registration, and the order of times.

    Nodes that share a ``created_at`` second get one sub-second part (ties stay ties); the
    burst is drawn uniformly at the stored precision. ``last_seen_at`` and ``deleted_at`` are
    then kept at or after ``created_at``, and ``last_seen_at`` at or before ``deleted_at``.
    """
    created = arrays["created"]
    last_seen = arrays["last_seen"]
    deleted_at = arrays["deleted_at"]
    n = len(created)
    if quantum < US:
        steps = US // quantum
        seconds, inverse = np.unique(created, return_inverse=True)
        created += quantum * rng.integers(0, steps, size=len(seconds))[inverse]
        for col in (last_seen, deleted_at):
            known = col != NULL_TIME
            col[known] += quantum * rng.integers(0, steps, size=int(known.sum()))
    bulk = dialect.bulk
    if bulk is not None and bulk.nodes > 0:
        members = rng.choice(n, size=min(bulk.nodes, n), replace=False)
        start = (now_s - 86400) * US
        span = bulk.seconds * US // quantum
        offsets = rng.integers(0, span, size=len(members)) if span > 0 else 0
        created[members] = start + quantum * offsets
    seen = last_seen != NULL_TIME
    last_seen[seen] = np.maximum(last_seen[seen], created[seen])
    gone = deleted_at != NULL_TIME
    deleted_at[gone] = np.maximum(deleted_at[gone], created[gone])
    both = seen & gone
    last_seen[both] = np.minimum(last_seen[both], deleted_at[both])
