"""The simulator's List Nodes query semantics, checked against a plain-Python evaluation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodeselect import QueryError
from nodeselect.documents._facts import COMPLIANCE_TAGS, CONTINENTS, STATUSES
from nodeselect.sim import Fleet, SimQueryError, generate_fleet
from nodeselect.sim._query import parse_iso_timestamp, parse_query_string

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return generate_fleet(700, seed=11, created_at_ties=0.3, now=NOW)


@pytest.fixture(scope="module")
def docs(fleet: Fleet) -> list[dict[str, Any]]:
    return fleet.documents()


def _epoch(text: str | None) -> float | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _bound(text: str) -> float | None:
    if not text:
        return None
    if len(text) == 10:
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def reference(fleet: Fleet, docs: list[dict[str, Any]], params: dict[str, str]) -> list[str]:
    """Every matching uuid in response order, by a slow and obvious evaluation."""
    out = []
    for index, doc in enumerate(docs):
        h = fleet.hidden(doc["uuid"])
        if params.get("filter[include_deleted]", "false") != "true" and doc["deleted_at"]:
            continue
        ok = True
        for param, field in (
            ("filter[created_at]", "created_at"),
            ("filter[last_seen_at]", "last_seen_at"),
        ):
            if param in params:
                start, end = (_bound(t) for t in params[param].split(","))
                value = _epoch(doc[field])
                ok &= (
                    value is not None
                    and (start is None or value >= start)
                    and (end is None or value <= end)
                )
        checks = {
            "filter[status]": h.status,
            "filter[continent_code]": h.continent,
            "filter[name]": doc["name"],
            "filter[uuid]": doc["uuid"],
            "filter[operator_account_uuid]": doc["operator_account_uuid"],
        }
        for param, actual in checks.items():
            if param in params:
                ok &= actual == params[param]
        if "filter[country_iso_code]" in params:
            ok &= (h.country or "").upper() == params[
                "filter[country_iso_code]"
            ].upper() and h.country is not None
        if "filter[subdivision_iso_code]" in params:
            ok &= (
                h.subdivision is not None
                and h.subdivision.upper() == params["filter[subdivision_iso_code]"].upper()
            )
        if "filter[compliance_tags]" in params:
            ok &= params["filter[compliance_tags]"] in h.compliance_tags
        if ok:
            out.append((_epoch(doc["created_at"]) or 0.0, index, doc["uuid"]))
    sort = params.get("sort")
    if sort == "created_at":
        out.sort(key=lambda t: (t[0], t[1]))
    elif sort == "-created_at":
        out.sort(key=lambda t: (-t[0], t[1]))
    return [u for _, _, u in out]


def _date_text(draw: st.DrawFn, docs: list[dict[str, Any]]) -> str:
    kind = draw(st.sampled_from(["empty", "date", "exact", "offset", "fraction"]))
    base = datetime.fromisoformat(draw(st.sampled_from(docs))["created_at"].replace("Z", "+00:00"))
    base += timedelta(seconds=draw(st.integers(-86400 * 30, 86400 * 30)))
    if kind == "empty":
        return ""
    if kind == "date":
        return base.strftime("%Y-%m-%d")
    if kind == "exact":
        return base.strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == "offset":
        return (
            base.astimezone(datetime.now().astimezone().tzinfo).replace(microsecond=0).isoformat()
        )
    return base.strftime("%Y-%m-%dT%H:%M:%S") + ".25Z"


@st.composite
def filters(draw: st.DrawFn, fleet: Fleet, docs: list[dict[str, Any]]) -> dict[str, str]:
    params: dict[str, str] = {}
    doc = draw(st.sampled_from(docs))
    hidden = fleet.hidden(doc["uuid"])
    options = {
        "filter[status]": st.sampled_from(STATUSES),
        "filter[continent_code]": st.sampled_from(CONTINENTS),
        "filter[compliance_tags]": st.sampled_from(COMPLIANCE_TAGS),
        "filter[name]": st.sampled_from([doc["name"], doc["name"].upper(), "nope"]),
        "filter[uuid]": st.sampled_from([doc["uuid"], "00000000-0000-4000-8000-000000000000"]),
        "filter[operator_account_uuid]": st.sampled_from([doc["operator_account_uuid"], "x"]),
        "filter[country_iso_code]": st.sampled_from(
            [c for c in (hidden.country, (hidden.country or "us").lower(), "ZZ") if c]
        ),
        "filter[subdivision_iso_code]": st.sampled_from(
            [s for s in (hidden.subdivision, "us-ca", "US-TX", "XX-YY") if s]
        ),
        "filter[include_deleted]": st.sampled_from(["true", "false"]),
        "sort": st.sampled_from(["created_at", "-created_at"]),
    }
    for key in draw(st.sets(st.sampled_from(sorted(options)), max_size=4)):
        params[key] = draw(options[key])
    for key in ("filter[created_at]", "filter[last_seen_at]"):
        if draw(st.booleans()) and draw(st.booleans()):
            a, b = _date_text(draw, docs), _date_text(draw, docs)
            if a and b and _bound(a) > _bound(b):  # type: ignore[operator]
                a, b = b, a
            params[key] = f"{a},{b}"
    return params


def _all_pages(fleet: Fleet, params: dict[str, str], limit: int) -> tuple[list[str], set[int]]:
    seen: list[str] = []
    totals = set()
    page = 1
    while True:
        data, total = fleet.query({**params, "limit": str(limit), "page": str(page)})
        totals.add(total)
        if not data:
            return seen, totals
        assert len(data) <= limit
        seen.extend(d["uuid"] for d in data)
        page += 1


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_every_filter_combination_matches_the_plain_python_reference(fleet, docs, data) -> None:
    """For drawn filter combinations, the first page and the total equal the reference's."""
    params = data.draw(filters(fleet, docs))
    expected = reference(fleet, docs, params)
    page, total = fleet.query({**params, "limit": "50"})
    assert total == len(expected)
    assert [d["uuid"] for d in page] == expected[:50]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_paging_covers_the_whole_result_exactly_once_in_order(fleet, docs, data) -> None:
    """Walking the pages yields every matching node once, in the reference order."""
    params = data.draw(filters(fleet, docs))
    limit = data.draw(st.integers(1, 50))
    seen, totals = _all_pages(fleet, params, limit)
    expected = reference(fleet, docs, params)
    assert seen == expected
    assert totals == {len(expected)}


def test_a_page_past_the_end_is_empty_with_the_true_total(fleet) -> None:
    """page beyond the last returns no data but still the total."""
    data, total = fleet.query({"page": "9007199254740991"})
    assert data == []
    assert total == sum(1 for d in fleet.documents() if not d["deleted_at"])


def test_default_limit_is_fifty_and_order_is_insertion_order(fleet, docs) -> None:
    """Without limit/sort the first 50 live nodes come back in insertion order."""
    data, _ = fleet.query({})
    assert [d["uuid"] for d in data] == [d["uuid"] for d in docs if not d["deleted_at"]][:50]


def test_deleted_status_needs_include_deleted(fleet) -> None:
    """filter[status]=DELETED alone matches nothing; with include_deleted=true it matches."""
    assert fleet.query({"filter[status]": "DELETED"})[1] == 0
    _, total = fleet.query({"filter[status]": "DELETED", "filter[include_deleted]": "true"})
    assert total > 0


BAD = [
    ({"limit": "0"}, "limit"),
    ({"limit": "51"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"limit": "-1"}, "limit"),
    ({"limit": ""}, "limit"),
    ({"page": "0"}, "page"),
    ({"page": "9007199254740992"}, "page"),
    ({"page": "1.5"}, "page"),
    ({"sort": "name"}, "sort"),
    ({"sort": "CREATED_AT"}, "sort"),
    ({"filter[status]": "available"}, "filter[status]"),
    ({"filter[status]": ""}, "filter[status]"),
    ({"filter[continent_code]": "XX"}, "filter[continent_code]"),
    ({"filter[compliance_tags]": "HIPAA"}, "filter[compliance_tags]"),
    ({"filter[include_deleted]": "yes"}, "filter[include_deleted]"),
    ({"filter[created_at]": "2024-01-01"}, "filter[created_at]"),
    ({"filter[created_at]": "2024-13-01,"}, "filter[created_at]"),
    ({"filter[created_at]": "2024-02-30,"}, "filter[created_at]"),
    ({"filter[created_at]": "2024-01-01T10:00:00,"}, "filter[created_at]"),
    ({"filter[created_at]": "yesterday,"}, "filter[created_at]"),
    ({"filter[created_at]": "2024-01-02,2024-01-01"}, "filter[created_at]"),
    ({"filter[last_seen_at]": "a,b,c"}, "filter[last_seen_at]"),
    ({"filter[colour]": "red"}, "filter[colour]"),
    ({"filter[gpu]": "H100"}, "filter[gpu]"),
]


@pytest.mark.parametrize(("params", "param"), BAD)
def test_bad_parameters_are_rejected_naming_the_parameter(fleet, params, param) -> None:
    """Each invalid value is a 400 SimQueryError (a QueryError) naming the parameter."""
    with pytest.raises(SimQueryError) as info:
        fleet.query(params)
    assert info.value.status == 400
    assert info.value.param == param
    assert isinstance(info.value, QueryError)
    assert info.value.message


def test_repeated_parameters_are_rejected() -> None:
    """A parameter given twice is a 400 naming it."""
    with pytest.raises(SimQueryError) as info:
        parse_query_string("limit=5&filter%5Bstatus%5D=AVAILABLE&limit=6")
    assert info.value.param == "limit"


def test_query_string_names_are_percent_decoded() -> None:
    """filter%5Bstatus%5D is filter[status]."""
    assert parse_query_string("filter%5Bstatus%5D=AVAILABLE&page=2") == {
        "filter[status]": "AVAILABLE",
        "page": "2",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01", datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-01-01T12:30:00Z", datetime(2024, 1, 1, 12, 30, tzinfo=UTC)),
        ("2024-01-01T12:30Z", datetime(2024, 1, 1, 12, 30, tzinfo=UTC)),
        ("2024-01-01T12:30:00.5+02:00", datetime(2024, 1, 1, 10, 30, 0, 500000, tzinfo=UTC)),
        ("2024-01-01t12:30:00z", datetime(2024, 1, 1, 12, 30, tzinfo=UTC)),
    ],
)
def test_timestamps_parse_as_documented(text, expected) -> None:
    """Dates are midnight UTC; datetimes honour Z, offsets and fractions."""
    assert parse_iso_timestamp(text, param="p") == expected.timestamp()


def test_ranges_are_inclusive_on_both_ends(fleet, docs) -> None:
    """A range whose both ends equal a node's created_at matches that node."""
    doc = next(d for d in docs if not d["deleted_at"])
    stamp = doc["created_at"]
    data, total = fleet.query({"filter[created_at]": f"{stamp},{stamp}", "limit": "50"})
    assert doc["uuid"] in [d["uuid"] for d in data]
    assert total == len(reference(fleet, docs, {"filter[created_at]": f"{stamp},{stamp}"}))


def test_null_last_seen_never_matches_a_range(fleet, docs) -> None:
    """Nodes without last_seen_at are excluded by even an open last_seen range."""
    nulls = {d["uuid"] for d in docs if d["last_seen_at"] is None and not d["deleted_at"]}
    assert nulls, "the fleet should contain nodes that never reported"
    seen, _ = _all_pages(fleet, {"filter[last_seen_at]": ","}, 50)
    assert not nulls & set(seen)
    assert len(seen) == sum(1 for d in docs if not d["deleted_at"]) - len(nulls)
