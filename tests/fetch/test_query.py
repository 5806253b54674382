"""NodeQuery validation and the planning of server queries (unions, intersections, facts)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect import Job, NodeQuery, QueryError
from nodeselect.documents._facts import COMPLIANCE_TAGS, CONTINENTS, STATUSES
from nodeselect.fetch import expand_query
from nodeselect.fetch._query import MAX_SERVER_QUERIES, format_bound, parse_time_range
from nodeselect.jobs import PlacementReq


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"statuses": ["AVAILABLE", "NOPE"]}, "statuses: 'NOPE'"),
        ({"continents": ["XX"]}, "continents: 'XX'"),
        ({"compliance": ["HIPAA"]}, "accepted: GDPR, EEA"),
        ({"countries": ["USA"]}, "countries: 'USA'"),
        ({"subdivisions": ["CA"]}, "subdivisions: 'CA'"),
        ({"limit": 0}, "outside 1..50"),
        ({"limit": 51}, "outside 1..50"),
        ({"names": [""]}, "non-empty"),
        ({"created_between": (date(2024, 2, 1), date(2024, 1, 1))}, "inverted"),
        ({"seen_between": (datetime(2024, 1, 1), None)}, "no time zone"),
    ],
)
def test_invalid_values_raise_query_error_naming_the_field(kwargs, needle) -> None:
    """Each invalid value raises QueryError whose message names the field and the problem."""
    with pytest.raises(QueryError) as info:
        NodeQuery(**kwargs)
    assert needle in str(info.value)


def test_lowercase_codes_are_accepted_and_normalized() -> None:
    """Status, continent, country and subdivision codes are case-insensitive and stored upper."""
    q = NodeQuery(statuses="available", continents=["eu"], countries=["de"], subdivisions="us-ca")
    assert q.statuses == {"AVAILABLE"}
    assert q.continents == {"EU"}
    assert q.countries == {"DE"}
    assert q.subdivisions == {"US-CA"}


def test_deleted_status_switches_include_deleted_on() -> None:
    """Asking for DELETED nodes sets include_deleted, since the server needs it to return them."""
    q = NodeQuery(statuses=["DELETED"])
    assert q.include_deleted
    assert ("filter[include_deleted]", "true") in expand_query(q)[0].params


def test_an_empty_query_is_one_unfiltered_server_query() -> None:
    """No filters plan exactly one server query without parameters."""
    (sq,) = expand_query(NodeQuery())
    assert sq.params == ()
    assert sq.facts == sq.facts.__class__()


def test_explosion_is_refused_with_a_suggestion() -> None:
    """A product of more than 64 server queries raises QueryError asking for fewer values."""
    with pytest.raises(QueryError, match="fewer values"):
        NodeQuery(statuses=STATUSES, continents=CONTINENTS, compliance=COMPLIANCE_TAGS)


_subsets = lambda values: st.frozensets(st.sampled_from(values), max_size=3)  # noqa: E731


@settings(max_examples=150, deadline=None)
@given(
    statuses=_subsets(STATUSES),
    continents=_subsets(CONTINENTS),
    countries=_subsets(("US", "DE", "FR")),
    compliance=_subsets(COMPLIANCE_TAGS),
)
def test_plan_is_the_cartesian_product_with_facts(statuses, continents, countries, compliance):
    """Server queries = product of union values x compliance tags, each proving its values."""
    try:
        q = NodeQuery(
            statuses=statuses, continents=continents, countries=countries, compliance=compliance
        )
    except QueryError:
        assert (
            max(1, len(statuses))
            * max(1, len(continents))
            * max(1, len(countries))
            * max(1, len(compliance))
            > MAX_SERVER_QUERIES
        )
        return
    plan = expand_query(q)
    branches = max(1, len(statuses)) * max(1, len(continents)) * max(1, len(countries))
    assert len(plan) == branches * max(1, len(compliance))
    assert len({sq.params for sq in plan}) == len(plan)
    for sq in plan:
        params = dict(sq.params)
        assert params.get("filter[status]") == sq.facts.status
        assert params.get("filter[continent_code]") == sq.facts.continent
        assert params.get("filter[country_iso_code]") == sq.facts.country
        tags = {params["filter[compliance_tags]"]} if "filter[compliance_tags]" in params else set()
        assert sq.facts.compliance_tags == tags
    # every branch asks every compliance tag once
    for _, group in itertools.groupby(sorted(plan, key=lambda s: s.branch), key=lambda s: s.branch):
        tags = [t for sq in group for t in sq.facts.compliance_tags]
        assert sorted(tags) == sorted(compliance)


@settings(max_examples=100, deadline=None)
@given(
    a=st.datetimes(timezones=st.just(UTC)),
    delta=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3650)),
)
def test_time_ranges_round_trip_through_their_text_form(a, delta) -> None:
    """A valid range formatted as START,END parses back to the same instants."""
    b = a + delta if a <= datetime.max.replace(tzinfo=UTC) - delta else a
    text = f"{format_bound(a)},{format_bound(b)}"
    s, e = parse_time_range(text)
    assert s == a
    assert e == b


def test_open_and_date_ranges_format_for_the_api() -> None:
    """Dates format as YYYY-MM-DD, aware datetimes as UTC with Z, and an open side goes out as a
    far date: the reference documents only ranges with both ends."""
    q = NodeQuery(
        created_between=(date(2024, 1, 1), None),
        seen_between=(None, datetime(2024, 5, 1, 12, tzinfo=UTC)),
    )
    params = dict(expand_query(q)[0].params)
    assert params["filter[created_at]"] == "2024-01-01,9999-12-31"
    assert params["filter[last_seen_at]"] == "1970-01-01,2024-05-01T12:00:00Z"


@pytest.mark.parametrize(
    ("micro", "text"),
    [(0, "2024-05-01T12:00:00Z"), (229000, "2024-05-01T12:00:00.229Z"),
     (229123, "2024-05-01T12:00:00.229123Z")],
)  # fmt: skip
def test_bounds_carry_a_fraction_only_when_needed(micro, text) -> None:
    """A datetime bound is written as the reference shows it, with the shortest exact fraction."""
    assert format_bound(datetime(2024, 5, 1, 12, microsecond=micro, tzinfo=UTC)) == text


@pytest.mark.parametrize("text", ["2024-01-01", "x,y", "2024-13-01,", "2024-01-01T00:00:00,"])
def test_bad_range_text_raises(text) -> None:
    """Malformed range text raises QueryError (missing comma, bad date, naive datetime)."""
    with pytest.raises(QueryError):
        parse_time_range(text)


def test_from_job_pushes_down_placement_and_lists_it() -> None:
    """from_job carries statuses, geography, compliance and deleted nodes, and names them."""
    job = Job(
        placement=PlacementReq(
            statuses=("AVAILABLE",), continents=("EU",), compliance=("GDPR",), allow_deleted=True
        )
    )
    q = NodeQuery.from_job(job)
    assert q.statuses == {"AVAILABLE"}
    assert q.continents == {"EU"}
    assert q.compliance == {"GDPR"}
    assert q.include_deleted
    assert q.pushed_down == (
        "placement.statuses",
        "placement.continents",
        "placement.compliance",
        "placement.allow_deleted",
    )


def test_to_json_from_json_round_trip() -> None:
    """A query survives to_json/from_json unchanged (as snapshots store it)."""
    q = NodeQuery(
        statuses=["AVAILABLE", "RESOURCE_BUSY"],
        compliance=["GDPR", "EEA"],
        names=["a"],
        created_between=(date(2024, 1, 1), datetime(2024, 2, 1, tzinfo=UTC)),
        limit=7,
    )
    assert NodeQuery.from_json(q.to_json()) == q
