"""The fast document encoder writes exactly the bytes the plain-dict reference builder gave."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

import reference_sim_documents as ref
from nodeselect.sim import generate_fleet
from nodeselect.sim._documents import OperatorRow, account_json, encode_document, iso

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ENCODE = msgspec.json.Encoder().encode


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**32 + 5), ties=st.sampled_from([0.0, 0.3]))
def test_every_document_matches_the_reference_byte_for_byte(seed: int, ties: float) -> None:
    """For any seed, each node's served bytes equal msgspec's encoding of the reference dict."""
    fleet = generate_fleet(400, seed=seed, now=NOW, created_at_ties=ties)
    ids = list(range(len(fleet)))
    rows = fleet._rows(ids)
    served = fleet.page_bytes(ids)
    assert any(row.malformed for row in rows)
    for row, raw in zip(rows, served, strict=True):
        expected = ENCODE(ref.build_document(row, seed))  # type: ignore[arg-type]
        assert raw == expected, row.node_id


def test_the_warts_and_rare_shapes_all_match_the_reference() -> None:
    """Across 6,000 nodes every wart (nulls, omissions, extras, partial telemetry, malformed,
    suspensions, 8-GPU and CPU-only nodes) occurs and still matches the reference."""
    seed = 3
    fleet = generate_fleet(6000, seed=seed, now=NOW)
    rows = fleet._rows(list(range(len(fleet))))
    shapes: set[str] = set()
    for row in rows:
        account = account_json(row.operator, seed)
        raw = encode_document(row, seed, account)
        doc = ref.build_document(row, seed)  # type: ignore[arg-type]
        assert raw == ENCODE(doc), row.node_id
        event = doc["latest_hardware_event"]
        shapes.update(
            name
            for name, present in (
                ("null", doc.get("reputation", 0) is None or doc.get("ramTotal", 0) is None),
                ("omitted", "rams" not in doc or "hard_drives" not in doc),
                ("extra", "beta_features" in doc),
                ("partial", event is not None and len(event["metadata"]) < 4),
                ("malformed", row.malformed),
                ("suspended", doc.get("current_suspension") is not None),
                ("eight", len(doc["gpus"]) == 8),
                ("cpu-only", not doc["gpus"]),
            )
            if present
        )
    assert shapes == {
        "null", "omitted", "extra", "partial", "malformed", "suspended", "eight", "cpu-only"
    }  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    number=st.integers(0, 10**6),
    created=st.integers(0, 4 * 10**9),
    seed=st.integers(0, 2**40),
)
def test_operator_accounts_match_the_reference(number: int, created: int, seed: int) -> None:
    """The directly written operator account equals msgspec's encoding of the reference dict."""
    op = OperatorRow(number, "6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f", f"operator{number}", created)
    assert account_json(op, seed) == ENCODE(ref.operator_account(op, seed)).decode()  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**35))
def test_iso_matches_the_reference(epoch_s: int) -> None:
    """The table-driven timestamp writer agrees with the reference for any epoch second."""
    assert iso(epoch_s) == ref.iso(epoch_s)


@settings(max_examples=60, deadline=None)
@given(names=st.lists(st.text(max_size=12), min_size=1, max_size=8))
def test_any_node_name_is_served_as_valid_json_equal_to_the_reference(names: list[str]) -> None:
    """Names with quotes, backslashes, control characters (ESC, newline, DEL, C1) or any
    Unicode: each served document is valid JSON decoding to exactly that name, and its bytes
    equal msgspec's encoding of the reference dict (plain names keep their old bytes: the
    default dialect's hash test)."""
    fleet = generate_fleet(len(names), seed=9, now=NOW)
    for i, name in enumerate(names):
        fleet._cols.names[i] = name
    ids = list(range(len(names)))
    for row, raw in zip(fleet._rows(ids), fleet.page_bytes(ids), strict=True):
        assert msgspec.json.decode(raw)["name"] == names[row.node_id]
        assert raw == ENCODE(ref.build_document(row, 9))  # type: ignore[arg-type]
