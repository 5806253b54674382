"""Simulator dialects (issue 10): every reading of what the API reference leaves open.

For every entry of ``DIALECTS``: the documents equal the independent reference builder byte for
byte, telemetry converts back (with the dialect's true unit) to the same node's known-unit
fields, timestamps carry the precision and suffix, range filters are inclusive at the stored
precision, strict ranges answer 422 for an open side, bulk registration makes tie groups larger
than a page, and numeric strings appear at about the asked share.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import attrs
import httpx
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference_sim_documents as ref
from nodeselect.sim import (
    DIALECTS,
    BulkRegistration,
    Dialect,
    FaultConfig,
    Fleet,
    SimQueryError,
    SimServer,
    generate_fleet,
)
from strategies_fleet import sim_dialects

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SEED = 13
N = 900
ENCODE = msgspec.json.Encoder().encode
GIB = 2**30
MIB = 2**20
SIZE = {"bytes": 1, "MiB": MIB, "GB": GIB}
FRACTION_DIGITS = {"s": 0, "ms": 3, "us": 6}
QUANTUM_US = {"s": 10**6, "ms": 10**3, "us": 1}


@cache
def fleet_of(name: str) -> Fleet:
    """One fleet per dialect, shared by the tests of this module."""
    return generate_fleet(N, seed=SEED, now=NOW, created_at_ties=0.1, dialect=DIALECTS[name])


@cache
def docs_of(name: str) -> list[dict[str, Any]]:
    return fleet_of(name).documents()


def written(dt: datetime, precision: str, suffix: str) -> str:
    """``dt`` written like the dialect writes it (truncated to ``precision``)."""
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    digits = FRACTION_DIGITS[precision]
    if digits:
        text += "." + f"{dt.microsecond:06d}"[:digits]
    return text + suffix


def number(value: Any) -> float:
    """A JSON number, or a numeric string (the numeric-strings dialect)."""
    assert not isinstance(value, bool)
    return float(value)


NAMES = sorted(DIALECTS)


def test_the_default_dialect_writes_the_bytes_it_always_wrote() -> None:
    """The whole default fleet, with inserts and deletes, hashes to the value computed from the
    simulator before dialects existed (commit 009861d): not one byte changed."""
    f = generate_fleet(1000, seed=17, now=NOW, created_at_ties=0.2)
    rng = random.Random(5)
    for _ in range(5):
        f.insert_random(rng)
        f.delete_random(rng)
    digest = hashlib.sha256(b"\n".join(f.page_bytes(list(range(len(f)))))).hexdigest()
    assert digest == "e5ab9520e35879587ee1c23d0eeb248b3a5298af356d1079fbdf0f932ce29453"


@pytest.mark.parametrize("name", NAMES)
def test_documents_match_the_reference_builder_byte_for_byte(name: str) -> None:
    """Every served document equals msgspec's encoding of the reference dict in the dialect."""
    f = fleet_of(name)
    ids = list(range(len(f)))
    for row, raw in zip(f._rows(ids), f.page_bytes(ids), strict=True):
        expected = ENCODE(ref.build_document(row, SEED, dialect=f.dialect))  # type: ignore[arg-type]
        assert raw == expected, row.node_id


@pytest.mark.parametrize("name", NAMES)
def test_telemetry_converts_back_to_the_known_unit_fields(name: str) -> None:
    """With the dialect's true units, metadata RAM/storage/VRAM equal the same node's byte and
    GB fields (to the written precision) and loads lie in the unit's range."""
    d = DIALECTS[name]
    ram, vram = SIZE[d.ram_unit], SIZE[d.vram_unit]
    top = 100.0 if d.load_unit == "percent" else 1.0
    # Half a unit of the last written digit (GB: 3 decimals; MiB: whole MiB), in bytes.
    slack = {"bytes": 0, "MiB": MIB / 2, "GB": GIB * 0.0005}
    checked = Counter[str]()
    for doc in docs_of(name):
        event = doc["latest_hardware_event"]
        if event is None:
            continue
        meta, hw = event["metadata"], doc["current_hardware"]
        if "ram" in meta:
            total = number(meta["ram"]["total"]) * ram
            assert abs(total - hw["memory"]["ram_bytes_total"]) <= slack[d.ram_unit]
            assert 0 <= number(meta["ram"]["free"]) <= number(meta["ram"]["total"])
            rams = doc.get("rams")
            if rams:
                free_gb = number(meta["ram"]["free"]) * ram / GIB
                error = abs(free_gb - number(rams[0]["memory_gb_available"]))
                assert error <= 0.05 + slack[d.ram_unit] / GIB + 1e-9
            checked["ram"] += 1
        if "storage" in meta:
            disk = meta["storage"]["hard_drives"][0]
            storage = hw["storage"]
            assert (
                abs(number(disk["total_capacity"]) * ram - storage["capacity_bytes_total"])
                <= (slack[d.ram_unit])
            )
            assert (
                abs(number(disk["free_capacity"]) * ram - storage["capacity_bytes_free"])
                <= (slack[d.ram_unit])
            )
            checked["storage"] += 1
        if "gpu" in meta:
            for tele, card, api in zip(meta["gpu"]["gpus"], hw["gpus"], doc["gpus"], strict=True):
                total = number(tele["vram"]["total"]) * vram
                assert abs(total - card["vram_bytes_total"]) <= slack[d.vram_unit]
                assert 0 <= number(tele["vram"]["free"]) <= number(tele["vram"]["total"])
                assert number(api["vram_gb_max"]) == round(card["vram_bytes_total"] / GIB)
                assert 0 <= number(tele["load"]) <= top
                checked["gpu"] += 1
            assert 0 <= number(meta["gpu"]["average"]) <= top
        if "cpu" in meta:
            assert 0 <= number(meta["cpu"]["average"]) <= top
            assert all(0 <= number(c) <= top for c in meta["cpu"]["cores"])
            checked["cpu"] += 1
    assert min(checked.values()) > N // 3, checked
    if d.load_unit == "percent":
        loads = [
            number(g["load"])
            for doc in docs_of(name)
            for g in (
                (doc["latest_hardware_event"] or {}).get("metadata", {}).get("gpu") or {}
            ).get("gpus", [])
        ]
        assert max(loads) > 50, "percent loads must use the 0..100 range"


@pytest.mark.parametrize("name", NAMES)
def test_timestamps_carry_the_written_precision_and_suffix(name: str) -> None:
    """created_at/last_seen_at/deleted_at/updated_at are the stored values truncated to the
    written precision, with the dialect's suffix; stored values sit on the stored precision."""
    f, d = fleet_of(name), DIALECTS[name]
    precision = d.written_precision or d.time_precision
    digits = FRACTION_DIGITS[precision]
    fraction = rf"\.\d{{{digits}}}" if digits else ""
    shape = re.compile(rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d{fraction}{re.escape(d.time_suffix)}")
    quantum = QUANTUM_US[d.time_precision]
    for doc in docs_of(name):
        stored = f.stored_times(doc["uuid"])
        for key, value in (
            ("created_at", stored.created_at),
            ("last_seen_at", stored.last_seen_at),
            ("deleted_at", stored.deleted_at),
        ):
            if value is None:
                assert doc[key] is None
                continue
            assert doc[key] == written(value, precision, d.time_suffix), (key, doc["uuid"])
            assert (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
                microseconds=1
            ) % quantum == 0
        assert shape.fullmatch(doc["updated_at"]), doc["updated_at"]
        assert doc["operator_account"]["created_at"].endswith(d.time_suffix)
        if doc["latest_hardware_event"] is not None:
            assert shape.fullmatch(doc["latest_hardware_event"]["created_at"])
        # (At second precision without a burst, a created_at_ties member may keep the historical
        # wart of being created after it was last seen: the default bytes are pinned.)
        if quantum < 10**6 or d.bulk is not None:
            if stored.last_seen_at is not None:
                assert stored.created_at <= stored.last_seen_at
            if stored.deleted_at is not None:
                assert stored.created_at <= stored.deleted_at
    if quantum < 10**6:  # sub-second parts are really drawn
        fractions = {f.stored_times(u).created_at.microsecond for u in f.uuids()}
        assert len(fractions) > N // 2


@pytest.mark.parametrize("name", NAMES)
def test_a_one_instant_range_at_the_stored_precision_finds_exactly_the_tie_group(
    name: str,
) -> None:
    """filter[created_at]=t,t with t the stored value written at the stored precision matches
    the node and exactly the live nodes stored at that instant (inclusive on both ends)."""
    f, d = fleet_of(name), DIALECTS[name]
    by_instant = Counter(
        f.stored_times(u).created_at for u in f.uuids() if f.hidden(u).status != "DELETED"
    )
    rng = random.Random(1)
    for uuid in rng.sample([u for u in f.uuids() if f.hidden(u).status != "DELETED"], 25):
        t = f.stored_times(uuid).created_at
        stamp = written(t, d.time_precision, d.time_suffix)
        data, total = f.query({"filter[created_at]": f"{stamp},{stamp}", "sort": "created_at"})
        assert total == by_instant[t]
        if total <= 50:
            assert uuid in {doc["uuid"] for doc in data}
        # One microsecond later on both ends excludes it.
        later = t + timedelta(microseconds=1)
        stamp = written(later, "us", "Z")
        assert f.query({"filter[created_at]": f"{stamp},{stamp}"})[1] == by_instant[later]


@pytest.mark.parametrize("name", NAMES)
def test_last_seen_ranges_work_on_the_stored_values(name: str) -> None:
    """filter[last_seen_at] with both ends at a node's stored last_seen_at matches it."""
    f, d = fleet_of(name), DIALECTS[name]
    live = [
        u
        for u in f.uuids()
        if f.hidden(u).status != "DELETED" and f.stored_times(u).last_seen_at is not None
    ]
    for uuid in random.Random(2).sample(live, 10):
        seen = f.stored_times(uuid).last_seen_at
        assert seen is not None
        stamp = written(seen, "us", d.time_suffix)
        data, total = f.query({"filter[last_seen_at]": f"{stamp},{stamp}", "filter[uuid]": uuid})
        assert total == 1
        assert data[0]["uuid"] == uuid


@pytest.mark.parametrize("name", NAMES)
def test_strict_dialects_refuse_open_ranges_with_422_and_others_accept_them(name: str) -> None:
    """strict_ranges: ',X' and 'X,' are 422 saying what is accepted, 'X,Y' is 200; otherwise
    open ends are accepted as before."""
    f = fleet_of(name)
    x, y = "2024-01-01T00:00:00Z", "2026-01-01"
    for param in ("filter[created_at]", "filter[last_seen_at]"):
        for text in (f",{x}", f"{x},", ","):
            status, body = f.respond({param: text})
            if f.dialect.strict_ranges:
                assert status == 422, text
                error = msgspec.json.decode(body)["error"]
                assert error["status"] == 422
                assert error["param"] == param
                assert "START,END" in error["message"]
                assert "both ends" in error["message"]
                with pytest.raises(SimQueryError) as info:
                    f.query({param: text})
                assert info.value.status == 422
            else:
                assert status == 200, text
        assert f.respond({param: f"{x},{y}"})[0] == 200


STRICT_FORMS = [
    "2024-01-01",
    "2024-01-01T12:00:00Z",
    "2024-01-01T12:00:00+00:00",
    "2024-01-01T14:00:00+02:00",
    "2024-01-01T12:00:00.5Z",
    "2024-01-01T12:00:00.123Z",
    "2024-01-01T12:00:00.123456Z",
    "2024-01-01T12:00:00.123456789Z",
    "2024-01-01T12:00:00.1234567890123+00:00",
    "2024-01-01T12:00Z",
]


@pytest.mark.parametrize("text", STRICT_FORMS)
def test_strict_ranges_accept_every_documented_timestamp_form(text: str) -> None:
    """A date, or a datetime with Z or an offset and a fraction of any length, is accepted on
    both ends in strict mode."""
    f = fleet_of("strict-ranges-us")
    status, body = f.respond({"filter[created_at]": f"{text},{text}"})
    assert status == 200, body
    status, _ = f.respond({"filter[created_at]": f"2020-01-01,{text}"})
    assert status == 200


def test_fractions_round_inward_at_the_microsecond() -> None:
    """Ends finer than a microsecond: the start rounds up and the end down, so a node at t
    matches [t - 0.5 us, t + 0.5 us] but not [t + 0.1 us, t + 0.9 us]."""
    f = fleet_of("us-offset")
    uuid = next(u for u in f.uuids() if f.hidden(u).status != "DELETED")
    t = f.stored_times(uuid).created_at
    base = t.strftime("%Y-%m-%dT%H:%M:%S")
    us = t.microsecond

    def at(nanos: int) -> str:
        sec_shift, ns = divmod(us * 1000 + nanos, 10**9)
        moved = t.replace(microsecond=0) + timedelta(seconds=sec_shift)
        return moved.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns:09d}Z"

    assert base
    hit = {"filter[created_at]": f"{at(-500)},{at(500)}", "filter[uuid]": uuid}
    miss = {"filter[created_at]": f"{at(100)},{at(900)}", "filter[uuid]": uuid}
    assert f.query(hit)[1] == 1
    assert f.query(miss)[1] == 0


def test_bulk_registration_makes_tie_groups_far_larger_than_a_page() -> None:
    """Second precision, 3,000 nodes within 3 seconds: three groups of about 1,000 equal
    created_at values, a day before now, each counted exactly by a one-instant range."""
    d = Dialect(bulk=BulkRegistration(nodes=3000, seconds=3))
    f = generate_fleet(5000, seed=3, now=NOW, dialect=d)
    created = Counter(f.stored_times(u).created_at for u in f.uuids())
    big = {t: c for t, c in created.items() if c > 50}
    assert len(big) == 3
    assert sum(big.values()) >= 3000
    for t, count in big.items():
        assert NOW - timedelta(days=1) <= t < NOW - timedelta(days=1) + timedelta(seconds=3)
        stamp = written(t, "s", "Z")
        live = sum(
            1
            for u in f.uuids()
            if f.stored_times(u).created_at == t and f.hidden(u).status != "DELETED"
        )
        assert f.query({"filter[created_at]": f"{stamp},{stamp}", "limit": "1"})[1] == live
        assert 800 <= count <= 1200


def test_bulk_at_microsecond_precision_spreads_over_the_span() -> None:
    """At µs precision the same burst is nearly tie-free but stays within its span."""
    d = Dialect(time_precision="us", bulk=BulkRegistration(nodes=2000, seconds=3))
    f = generate_fleet(2500, seed=3, now=NOW, dialect=d)
    start = NOW - timedelta(days=1)
    burst = [
        f.stored_times(u).created_at
        for u in f.uuids()
        if start <= f.stored_times(u).created_at < start + timedelta(seconds=3)
    ]
    assert len(burst) >= 2000
    assert max(Counter(burst).values()) <= 3


def test_unstable_order_reshuffles_a_big_tie_group_on_every_request() -> None:
    """With a burst and unstable_order, pages inside one group differ between requests, keys
    stay sorted, and every page holds only members of the group."""
    d = Dialect(bulk=BulkRegistration(nodes=1500, seconds=1))
    f = generate_fleet(1600, seed=4, now=NOW, dialect=d)
    t = Counter(f.stored_times(u).created_at for u in f.uuids()).most_common(1)[0][0]
    stamp = written(t, "s", "Z")
    params = {"filter[created_at]": f"{stamp},{stamp}", "sort": "created_at", "page": "3"}
    with SimServer(f, faults=FaultConfig(unstable_order=True, seed=2)) as s, httpx.Client() as c:
        pages = [c.get(s.endpoint, params=params).json() for _ in range(4)]
        unshuffled = f.query(params)[0]
    group = {u for u in f.uuids() if f.stored_times(u).created_at == t}
    orders = [tuple(d["uuid"] for d in p["data"]) for p in pages]
    assert len(set(orders)) == 4
    assert all(set(o) <= group and len(o) == 50 for o in orders)
    assert all(p["total"] == pages[0]["total"] > 1000 for p in pages)
    assert tuple(d["uuid"] for d in unshuffled) not in set(orders)


@pytest.mark.parametrize("name", ["numeric-strings"])
def test_numeric_strings_appear_at_about_the_share_and_only_on_their_nodes(name: str) -> None:
    """~30 % of nodes write every listed number as a string; the others write none."""
    f = fleet_of(name)
    stringly = 0
    for doc in docs_of(name):
        expected = f.numeric_strings(doc["uuid"])
        stringly += expected
        values = [
            doc.get("reputation"),
            doc.get("ramTotal"),
            *(c["num_cores"] for c in doc["cpus"]),
            *(r["memory_gb_max"] for r in doc.get("rams") or []),
            *(h["max_capacity_gb"] for h in doc.get("hard_drives") or []),
            *(g["vram_gb_max"] for g in doc["gpus"]),
        ]
        event = doc["latest_hardware_event"]
        if event is not None and "cpu" in event["metadata"]:
            values.append(event["metadata"]["cpu"]["average"])
        if event is not None and "gpu" in event["metadata"]:
            values.extend(g["load"] for g in event["metadata"]["gpu"]["gpus"])
            values.extend(g["vram"]["total"] for g in event["metadata"]["gpu"]["gpus"])
        if event is not None and "ram" in event["metadata"]:
            values.append(event["metadata"]["ram"]["free"])
        values = [v for v in values if v is not None]
        if expected:
            assert all(isinstance(v, str) for v in values), doc["uuid"]
            assert all(float(v) >= 0 for v in values)
        elif not f.hidden(doc["uuid"]).malformed:
            assert not any(isinstance(v, str) for v in values), doc["uuid"]
        assert isinstance(doc["current_hardware"]["memory"]["ram_bytes_total"], int)
    assert 0.25 * N <= stringly <= 0.35 * N


def test_dialects_keep_the_same_nodes() -> None:
    """Precision, units and strings change how a fleet is written, not which nodes it has."""
    base = fleet_of("default")
    for name in NAMES:
        if DIALECTS[name].bulk is None:
            other = fleet_of(name)
            assert other.uuids() == base.uuids()
            assert [other.hidden(u) for u in other.uuids()[:50]] == [
                base.hidden(u) for u in base.uuids()[:50]
            ]


@pytest.mark.parametrize("precision", ["s", "ms", "us"])
def test_inserted_nodes_are_strictly_newer_than_every_node_at_every_precision(
    precision: str,
) -> None:
    """insert_random stamps a created_at later than every existing one, also after deletes
    and with a burst; the new node is last in sort=created_at."""
    d = Dialect(time_precision=precision, bulk=BulkRegistration(nodes=100, seconds=1))  # type: ignore[arg-type]
    f = generate_fleet(300, seed=6, now=NOW, dialect=d)
    rng = random.Random(3)
    for _ in range(8):
        newest = max(f.stored_times(u).created_at for u in f.uuids())
        uuid = f.insert_random(rng)
        assert f.stored_times(uuid).created_at > newest
        f.delete_random(rng)
        data, total = f.query({"sort": "created_at", "page": str(10**6)})
        assert data == []
        assert total == sum(1 for u in f.uuids() if f.hidden(u).status != "DELETED")
        last = f.query({"sort": "-created_at", "limit": "1"})[0][0]
        assert last["uuid"] == uuid


@settings(max_examples=25, deadline=None)
@given(dialect=sim_dialects(), seed=st.integers(0, 2**33))
def test_any_dialect_matches_the_reference_and_keeps_times_ordered(
    dialect: Dialect, seed: int
) -> None:
    """For any combination of readings: bytes equal the reference, every document is JSON,
    stored times are on the precision and ordered (created <= last_seen, created <= deleted),
    and each node's t,t range at the stored precision finds it."""
    f = generate_fleet(60, seed=seed, now=NOW, dialect=dialect)
    ids = list(range(len(f)))
    quantum = QUANTUM_US[dialect.time_precision]
    for row, raw in zip(f._rows(ids), f.page_bytes(ids), strict=True):
        assert raw == ENCODE(ref.build_document(row, seed, dialect=dialect)), row.node_id  # type: ignore[arg-type]
        assert row.created_at % quantum == 0
        if row.last_seen_at is not None:
            assert row.created_at <= row.last_seen_at
            assert row.last_seen_at % quantum == 0
        if row.deleted_at is not None:
            assert row.created_at <= row.deleted_at
    for uuid in f.uuids()[:5]:
        t = f.stored_times(uuid).created_at
        stamp = written(t, dialect.time_precision, dialect.time_suffix)
        params = {"filter[created_at]": f"{stamp},{stamp}", "filter[uuid]": uuid}
        params["filter[include_deleted]"] = "true"
        assert f.query(params)[1] == 1


def test_dialect_describe_names_what_differs() -> None:
    """describe() is 'default' for Dialect() and names the changed fields otherwise."""
    assert Dialect().describe() == "default"
    assert attrs.evolve(Dialect(), ram_unit="GB").describe() == "ram_unit=GB"
