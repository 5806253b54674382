"""The full node document model: round trips, strictness, tolerance, timestamps, lean agreement."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nodeselect
from nodeselect import DocumentError
from nodeselect.documents import Node, _models, node_to_json, page_to_json, parse_node, parse_page
from nodeselect.documents._lean import decode_node
from nodeselect.documents._models import _Document
from nodeselect.documents._timestamps import (
    format_timestamp,
    parse_timestamp,
    parse_timestamps_to_epoch_s,
)
from nodeselect.fetch._decode import _decode_tolerant
from strategies_documents import (
    EXTRA_PREFIX,
    arbitrary_json,
    json_values,
    node_documents,
    node_models,
    page_documents,
)

# The example response of the List Nodes reference (shared/reference/list-nodes-api.txt), copied
# verbatim so the test stands on its own in any checkout.
REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference_example_page.json"
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _reference_page() -> dict[str, Any]:
    """The example response of the List Nodes reference, as a dict."""
    page: dict[str, Any] = json.loads(REFERENCE.read_text())
    return page


EXAMPLE_PAGE: dict[str, Any] = _reference_page()


def _shape(model: Any) -> Any:
    """Every model's (type, absent_keys, null_list_keys) in the tree, which == ignores."""
    if isinstance(model, _Document):
        inner = [_shape(getattr(model, f.name)) for f in attrs.fields(type(model))]
        return (type(model).__name__, model.absent_keys, model.null_list_keys, inner)
    if isinstance(model, tuple):
        return [_shape(m) for m in model]
    return None


# --- round trips ---------------------------------------------------------------------------


@FAST
@given(node_documents)
def test_valid_documents_round_trip_exactly(doc: dict[str, Any]) -> None:
    """Writing a parsed valid document gives back the same document (missing, null, [] kept)."""
    assert node_to_json(parse_node(doc)) == doc


@FAST
@given(node_models)
def test_models_round_trip_through_real_json(node: Node) -> None:
    """A model written to JSON text and parsed back is equal to the original, shape included."""
    text = json.dumps(node_to_json(node))
    back = parse_node(json.loads(text))
    assert back == node
    assert _shape(back) == _shape(node)


@FAST
@given(page_documents())
def test_valid_pages_round_trip_and_reject_nothing(page: dict[str, Any]) -> None:
    """A page of valid documents parses with no rejections and writes back unchanged."""
    result = parse_page(page)
    assert result.rejected == ()
    assert len(result.nodes) == len(page["data"])
    assert page_to_json(result) == page


# --- arbitrary and mutated input -------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(arbitrary_json)
def test_arbitrary_json_raises_only_document_error(obj: Any) -> None:
    """Any JSON value given to parse_node or parse_page either parses or raises DocumentError."""
    for parse in (parse_node, parse_page):
        errors: tuple[DocumentError, ...] = ()
        try:
            parse(obj)
        except DocumentError as exc:
            errors = exc.errors
            assert errors
        assert all(isinstance(e, DocumentError) and e.path for e in errors)


def _leaves(value: Any, path: str) -> list[tuple[str, list[Any]]]:
    """Every non-null scalar in a JSON tree, as (path, key chain from the root)."""
    out: list[tuple[str, list[Any]]] = []

    def walk(v: Any, p: str, chain: list[Any]) -> None:
        if isinstance(v, dict):
            for k, sub in v.items():
                walk(sub, f"{p}.{k}", [*chain, k])
        elif isinstance(v, list):
            for i, sub in enumerate(v):
                walk(sub, f"{p}[{i}]", [*chain, i])
        elif v is not None:
            out.append((p, chain))

    walk(value, path, [])
    return out


def _category(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    return "other"


REPLACEMENTS: dict[str, Any] = {
    "bool": True,
    "number": 7,
    "string": "abc",
    "list": [1],
    "object": {"k": 1},
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(node_documents, st.data())
def test_a_mutated_leaf_is_rejected_exactly_at_its_path(doc: dict[str, Any], data: Any) -> None:
    """Replacing a documented scalar by another JSON type is rejected with exactly its path."""
    leaves = _leaves(doc, "$")
    path, chain = data.draw(st.sampled_from(leaves))
    original = doc
    for k in chain[:-1]:
        original = original[k]
    old = original[chain[-1]]
    new_kind = data.draw(st.sampled_from([c for c in REPLACEMENTS if c != _category(old)]))
    mutated = json.loads(json.dumps(doc))
    target = mutated
    for k in chain[:-1]:
        target = target[k]
    target[chain[-1]] = REPLACEMENTS[new_kind]
    tolerated = f".{EXTRA_PREFIX}" in path or ".docker.images[" in path
    if tolerated:
        assert node_to_json(parse_node(mutated)) == mutated
        return
    with pytest.raises(DocumentError) as info:
        parse_node(mutated)
    assert [e.path for e in info.value.errors] == [path]
    assert info.value.path == path


@FAST
@given(node_documents, json_values)
def test_unknown_keys_at_every_level_are_kept(doc: dict[str, Any], value: Any) -> None:
    """An unknown key added to every object of a document is kept in extra and written back."""
    doc = json.loads(json.dumps(doc))

    def add(v: Any) -> None:
        if isinstance(v, dict):
            for sub in list(v.values()):
                add(sub)
            v[EXTRA_PREFIX + "added"] = value
        elif isinstance(v, list):
            for sub in v:
                add(sub)

    add(doc)
    node = parse_node(doc)
    assert node.extra[EXTRA_PREFIX + "added"] == value
    assert node_to_json(node) == doc


@FAST
@given(st.lists(node_documents, min_size=1, max_size=6), st.data())
def test_one_bad_node_does_not_spoil_the_page(docs: list[dict[str, Any]], data: Any) -> None:
    """One bad node in a page yields every other node plus one RejectedNode with index and path."""
    bad = data.draw(st.integers(0, len(docs) - 1))
    docs[bad] = {**docs[bad], "gpus": [{"vram_gb_available": "abc"}]}
    result = parse_page({"data": docs, "limit": 50, "page": 1, "total": len(docs)})
    assert [node_to_json(n) for n in result.nodes] == docs[:bad] + docs[bad + 1 :]
    assert len(result.rejected) == 1
    rejected = result.rejected[0]
    assert rejected.index == bad
    assert rejected.uuid == docs[bad]["uuid"]
    assert rejected.error.path == f"data[{bad}].gpus[0].vram_gb_available"
    assert rejected.error.reason == 'expected a number, got "abc"'


def test_every_bad_field_is_reported_at_once() -> None:
    """All faults of one node come in one DocumentError, in document order, with paths."""
    doc = {
        "uuid": "n1",
        "reputation": True,
        "cpus": [{"num_cores": 2.5}],
        "current_hardware": [],
        "latest_hardware_event": {"created_at": "yesterday", "metadata": {"gpu": {"gpus": [5]}}},
    }
    with pytest.raises(DocumentError) as info:
        parse_node(doc, path="data[3]")
    assert [(e.path, e.reason) for e in info.value.errors] == [
        ("data[3].reputation", "expected a number, got true"),
        ("data[3].cpus[0].num_cores", "expected an integer, got 2.5"),
        (
            "data[3].latest_hardware_event.created_at",
            'expected an ISO 8601 timestamp like 2023-11-07T05:31:56Z, got "yesterday"',
        ),
        ("data[3].latest_hardware_event.metadata.gpu.gpus[0]", "expected an object, got 5"),
        ("data[3].current_hardware", "expected an object, got a list"),
    ]
    assert "and 4 more" in str(info.value)


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({}, "$.uuid"),
        ({"uuid": None}, "$.uuid"),
        ({"uuid": 5}, "$.uuid"),
        ({"uuid": "u", "gpus": {}}, "$.gpus"),
        ({"uuid": "u", "cached": 1, "current_software": {"cached_image_tags": [None]}}, None),
        ({"uuid": "u", "ramTotal": float("nan")}, "$.ramTotal"),
        ({"uuid": "u", "operator_account": {"consumer_profile": {"is_active": 1}}}, None),
    ],
)
def test_required_uuid_and_strict_types(doc: dict[str, Any], path: str | None) -> None:
    """A node needs a string uuid; nulls inside lists, NaN and 1-for-true are type errors."""
    with pytest.raises(DocumentError) as info:
        parse_node(doc)
    if path is not None:
        assert info.value.path == path


def test_a_missing_uuid_is_accepted_when_not_required() -> None:
    """require_uuid=False parses a document without a uuid."""
    assert parse_node({}, require_uuid=False).uuid is None


def test_personal_values_are_not_echoed_in_errors() -> None:
    """A wrongly typed personal field is reported without its value."""
    with pytest.raises(DocumentError) as info:
        parse_node({"uuid": "u", "ipv4_address": 1234567, "operator_account": {"email": 99}})
    assert "1234567" not in str(info.value)
    assert "99" not in str(info.value)
    assert info.value.errors[0].reason == "expected a string, got a number"


@pytest.mark.parametrize(
    ("page", "path"),
    [
        ([], "$"),
        ({"limit": 1, "page": 1, "total": 1}, "data"),
        ({"data": {}, "limit": 1, "page": 1, "total": 1}, "data"),
        ({"data": [], "page": 1, "total": 1}, "limit"),
        ({"data": [], "limit": True, "page": 1, "total": 1}, "limit"),
        ({"data": [], "limit": 1, "page": "1", "total": 1}, "page"),
        ({"data": [], "limit": 1, "page": 1, "total": -1}, "total"),
    ],
)
def test_a_bad_envelope_raises(page: Any, path: str) -> None:
    """A page that is not an object, or has no data list or integer limit/page/total, raises."""
    with pytest.raises(DocumentError) as info:
        parse_page(page)
    assert info.value.path == path


def test_a_node_that_is_not_an_object_is_rejected_at_its_index() -> None:
    """A non-object entry of data is rejected with path data[i] and no uuid."""
    result = parse_page({"data": [{"uuid": "a"}, "x", None], "limit": 3, "page": 1, "total": 3})
    assert [n.uuid for n in result.nodes] == ["a"]
    assert [(r.index, r.uuid, r.error.path) for r in result.rejected] == [
        (1, None, "data[1]"),
        (2, None, "data[2]"),
    ]


# --- the reference example -----------------------------------------------------------------


def test_the_reference_example_parses_with_every_field_documented() -> None:
    """The reference's example page parses, every key maps to a model field, and it round-trips."""
    result = parse_page(EXAMPLE_PAGE)
    assert result.rejected == ()
    (node,) = result.nodes

    def no_extra(m: Any) -> None:
        if isinstance(m, _Document):
            assert dict(m.extra) == {}, type(m).__name__
            # node.operating_system is the one object documented without "architecture".
            assert m.absent_keys <= {"architecture"}, type(m).__name__
            for f in attrs.fields(type(m)):
                no_extra(getattr(m, f.name))
        elif isinstance(m, tuple):
            for x in m:
                no_extra(x)

    no_extra(node)
    assert node.ram_total == 123
    assert node.id == "<string>"
    assert node.created_at == datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)
    assert node.current_software is not None
    assert node.current_software.cached_image_tags == ("ubuntu:22.04", "pytorch/pytorch:latest")
    assert page_to_json(result) == EXAMPLE_PAGE


def test_personal_data_is_not_in_repr() -> None:
    """repr of a node shows no e-mail, wallet, IP/MAC address or user names."""
    doc = json.loads(json.dumps(EXAMPLE_PAGE["data"][0]))
    doc.update(ipv4_address="10.1.2.3", ipv6_address="fe80::1", mac_address="aa:bb:cc:dd:ee:ff")
    doc["operator_account"]["operator_profile"]["wallet_address"] = "0xWALLET"
    doc["operator_account"]["user_profile"].update(name="Jo Smith", given_name="Jo")
    text = repr(parse_node(doc))
    for secret in ("jsmith@example.com", "10.1.2.3", "fe80::1", "aa:bb", "0xWALLET", "Jo Smith"):
        assert secret not in text
    assert "reputation=50" in text


def test_every_model_is_exported_and_documented() -> None:
    """Every model class is public and its docstring has an Attributes section naming each field."""
    # attrs' slotted classes replace the class first defined, and the originals can linger in
    # __subclasses__() for a while: check each model by name against the module's final class.
    for name in {sub.__name__ for sub in _Document.__subclasses__()}:
        cls = getattr(_models, name)
        assert getattr(nodeselect.documents, name) is cls
        doc = cls.__doc__ or ""
        assert "Attributes:" in doc, cls.__name__
        for f in attrs.fields(cls):
            if "kind" in f.metadata:
                assert f"{f.name}:" in doc, (cls.__name__, f.name)


# --- agreement with the lean msgspec decoder -------------------------------------------------


@FAST
@given(node_documents)
def test_lean_decoder_accepts_every_valid_document_and_agrees(doc: dict[str, Any]) -> None:
    """Every generated valid document also decodes with the lean msgspec schema, same values."""
    lean = decode_node(json.dumps(doc).encode())
    node = parse_node(doc)
    ts = format_timestamp
    assert lean.uuid == node.uuid
    assert lean.name == node.name
    assert lean.reputation == node.reputation
    assert lean.ramTotal == node.ram_total
    assert lean.operator_account_uuid == node.operator_account_uuid
    assert lean.ipv4_address == node.ipv4_address
    assert lean.ipv6_address == node.ipv6_address
    for attr in ("created_at", "last_seen_at", "suspended_at", "deleted_at"):
        value = getattr(node, attr)
        assert getattr(lean, attr) == (None if value is None else ts(value))
    assert [(c.name, c.num_cores) for c in lean.cpus or []] == [
        (c.name, c.num_cores) for c in node.cpus
    ]
    assert [(g.name, g.vram_gb_available, g.vram_gb_max) for g in lean.gpus or []] == [
        (g.name, g.vram_gb_available, g.vram_gb_max) for g in node.gpus
    ]
    assert [(d.available_capacity_gb, d.max_capacity_gb) for d in lean.hard_drives or []] == [
        (d.available_capacity_gb, d.max_capacity_gb) for d in node.hard_drives
    ]
    assert [(r.memory_gb_available, r.memory_gb_max) for r in lean.rams or []] == [
        (r.memory_gb_available, r.memory_gb_max) for r in node.rams
    ]
    ev, lev = node.latest_hardware_event, lean.latest_hardware_event
    assert (ev is None) == (lev is None)
    if ev is not None and lev is not None:
        assert lev.timestamp_ms == ev.timestamp_ms
        assert lev.created_at == (None if ev.created_at is None else ts(ev.created_at))
        md, lmd = ev.metadata, lev.metadata
        assert (md is None) == (lmd is None)
        if md is not None and lmd is not None:
            if md.gpu is not None and lmd.gpu is not None:
                assert lmd.gpu.average == md.gpu.average
                got = [
                    (g.load, g.name, g.vram and (g.vram.free, g.vram.total))
                    for g in lmd.gpu.gpus or []
                ]
                want = [
                    (g.load, g.name, g.vram and (g.vram.free, g.vram.total)) for g in md.gpu.gpus
                ]
                assert got == want
            if md.ram is not None and lmd.ram is not None:
                assert (lmd.ram.free, lmd.ram.total) == (md.ram.free, md.ram.total)
            if md.cpu is not None and lmd.cpu is not None:
                assert lmd.cpu.average == md.cpu.average
    sw, lsw = node.current_software, lean.current_software
    if sw is not None and lsw is not None:
        assert tuple(lsw.cached_image_tags or ()) == sw.cached_image_tags
        assert (lsw.nvidia_driver and lsw.nvidia_driver.version) == (
            sw.nvidia_driver and sw.nvidia_driver.version
        )
    os_, los = node.operating_system, lean.operating_system
    if os_ is not None and los is not None:
        assert (los.brand, los.name, los.version) == (os_.brand, os_.name, os_.version)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(node_documents, st.data())
def test_a_lean_field_the_converter_rejects_the_lean_decoder_rejects(
    doc: dict[str, Any], data: Any
) -> None:
    """A wrong type in a field the lean schema reads is rejected by both decoders (the lean one
    as ``decode_body`` runs it: strict, then numeric strings read as numbers). ``ramTotal`` is
    evidence-only in the lean view (never rejects; see test_units_numbers.py)."""
    lean_fields = [
        "name",
        "reputation",
        "cpus",
        "gpus",
        "rams",
        "operator_account_uuid",
    ]
    key = data.draw(st.sampled_from(lean_fields))
    doc = {**doc, key: data.draw(st.sampled_from([True, "abc", {"a": 1}, 1.5]))}
    try:
        parse_node(doc)
        converter_ok = True
    except DocumentError:
        converter_ok = False
    lean, _ = _decode_tolerant(json.dumps(doc).encode())
    lean_ok = lean is not None
    assert converter_ok == lean_ok


# --- timestamps ------------------------------------------------------------------------------

IST = timezone(timedelta(hours=5, minutes=30))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-11-07T05:31:56Z", datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)),
        ("2023-11-07t05:31:56z", datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)),
        ("2023-11-07T11:01:56+05:30", datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)),
        ("2023-11-06T21:31:56-08:00", datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)),
        ("2023-11-07T05:31:56.1Z", datetime(2023, 11, 7, 5, 31, 56, 100000, tzinfo=UTC)),
        ("2023-11-07T05:31:56.123456789Z", datetime(2023, 11, 7, 5, 31, 56, 123456, tzinfo=UTC)),
        (
            "2023-11-07T05:31:56.999999999+00:00",
            datetime(2023, 11, 7, 5, 31, 56, 999999, tzinfo=UTC),
        ),
        ("2024-02-29T23:59:59Z", datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)),
        ("2023-11-07", None),
        ("2023-11-07T05:31:56", None),
        ("2023-11-07 05:31:56Z", None),
        ("2023-02-29T00:00:00Z", None),
        ("2023-11-07T24:00:00Z", None),
        ("2023-11-07T05:31:56.Z", None),
        ("2023-11-07T05:31:56+5:30", None),
        ("2023-11-07T05:31:56+24:00", None),
        ("0001-01-01T00:00:00+01:00", None),
        ("\uff12\uff10\uff12\uff13-11-07T05:31:56Z", None),  # full-width digits
        ("", None),
        ("yesterday", None),
    ],
)
def test_timestamp_table(text: str, expected: datetime | None) -> None:
    """Z and ±hh:mm offsets parse to UTC, fractions truncate to µs, anything else is rejected."""
    if expected is None:
        with pytest.raises(DocumentError):
            parse_timestamp(text, path="$.created_at")
        assert math.isnan(parse_timestamps_to_epoch_s([text])[0])
    else:
        got = parse_timestamp(text)
        assert got == expected
        assert got.tzinfo is UTC
        assert parse_timestamps_to_epoch_s([text])[0] == expected.timestamp()


@pytest.mark.parametrize(
    ("dt", "text"),
    [
        (datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC), "2023-11-07T05:31:56Z"),
        (datetime(2023, 11, 7, 5, 31, 56, 120, tzinfo=UTC), "2023-11-07T05:31:56.000120Z"),
        (datetime(2023, 11, 7, 11, 1, 56, tzinfo=IST), "2023-11-07T05:31:56Z"),
    ],
)
def test_format_timestamp_is_canonical(dt: datetime, text: str) -> None:
    """Timestamps are written in UTC with Z, and with .ffffff only when microseconds are set."""
    assert format_timestamp(dt) == text


_fragments = st.sampled_from(
    [
        "2023",
        "-",
        "11",
        "07",
        "T",
        "t",
        ":",
        "05",
        "31",
        "56",
        ".",
        "1",
        "123456789",
        "Z",
        "z",
        "+05:30",
        "-08:00",
        "99",
        "0000",
        " ",
        "\x00",
        "é",
    ]
)
timestampish = (
    st.datetimes(timezones=st.just(UTC)).map(format_timestamp)
    | st.builds(
        lambda dt, frac, off: dt.strftime("%Y-%m-%dT%H:%M:%S") + frac + off,
        st.datetimes(min_value=datetime(2, 1, 1)),
        st.sampled_from(["", ".", ".5", ".123", ".123456", ".1234567891", ".12345678901234"]),
        st.sampled_from(["Z", "z", "+00:00", "+05:30", "-08:00", "", "+24:00"]),
    )
    | st.lists(_fragments, max_size=10).map("".join)
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.none() | timestampish, max_size=20))
def test_vectorized_timestamps_agree_with_the_scalar_parser(strings: list[str | None]) -> None:
    """parse_timestamps_to_epoch_s equals parse_timestamp(s).timestamp() element by element."""
    got = parse_timestamps_to_epoch_s(strings)
    assert got.dtype == np.float64
    assert got.shape == (len(strings),)
    for s, value in zip(strings, got, strict=True):
        try:
            want = parse_timestamp(s).timestamp() if s is not None else math.nan
        except DocumentError:
            want = math.nan
        assert (math.isnan(want) and math.isnan(value)) or value == want, (s, value, want)


@FAST
@given(st.datetimes(timezones=st.just(UTC), min_value=datetime(1, 1, 2)))
def test_timestamps_round_trip(dt: datetime) -> None:
    """format then parse gives back the same instant."""
    assert parse_timestamp(format_timestamp(dt)) == dt
