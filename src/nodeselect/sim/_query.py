"""Parse and validate one List Nodes query exactly as the simulated server does.

:func:`parse_query_string` turns a raw query string into a mapping (rejecting repeated
parameters); :func:`parse_params` validates that mapping into a :class:`ParsedQuery`. Every
problem is a :class:`SimQueryError` carrying the HTTP status, a message that says what was wrong
and what is accepted, and the offending parameter. With ``strict_ranges`` (the
:class:`~nodeselect.sim.Dialect` of a server that implements only the documented forms) a range
must have both ends (``START,END``); an open side is a 422.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final
from urllib.parse import parse_qsl

import attrs

from nodeselect.documents import COMPLIANCE_TAGS, CONTINENTS, STATUSES
from nodeselect.errors import QueryError

__all__ = [
    "KNOWN_PARAMS",
    "MAX_LIMIT",
    "MAX_PAGE",
    "ParsedQuery",
    "SimQueryError",
    "error_body",
    "parse_iso_timestamp",
    "parse_iso_timestamp_ns",
    "parse_params",
    "parse_query_string",
]

MAX_LIMIT: Final = 50
MAX_PAGE: Final = 9007199254740991

#: Every query parameter the endpoint accepts.
KNOWN_PARAMS: Final = (
    "limit",
    "page",
    "sort",
    "filter[created_at]",
    "filter[last_seen_at]",
    "filter[status]",
    "filter[name]",
    "filter[operator_account_uuid]",
    "filter[country_iso_code]",
    "filter[continent_code]",
    "filter[subdivision_iso_code]",
    "filter[compliance_tags]",
    "filter[uuid]",
    "filter[include_deleted]",
)

_INT_RE: Final = re.compile(r"[0-9]+")
_DATE_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME_RE: Final = re.compile(
    r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})",
    re.IGNORECASE,
)
_ACCEPTED: Final = (
    "an ISO date like 2024-01-01 (midnight UTC) or an ISO datetime with Z or an offset and a "
    "fraction of any length, like 2024-01-01T12:00:00Z or 2024-01-01T12:00:00.123456+02:00"
)


class SimQueryError(QueryError):
    """The simulated server rejects a request.

    Attributes:
        status: the HTTP status to answer with (400 for every bad parameter; 422 for an open
            range side under ``strict_ranges``).
        message: what was wrong and what would be accepted.
        param: the query parameter at fault, or ``None``.
    """

    def __init__(self, status: int, message: str, param: str | None) -> None:
        self.status = status
        self.message = message
        self.param = param
        super().__init__(f"{param}: {message}" if param else message)


def error_body(status: int, message: str, param: str | None) -> bytes:
    """The JSON error body the server answers with: ``{"error": {status, message, param}}``."""
    return json.dumps({"error": {"status": status, "message": message, "param": param}}).encode()


@attrs.frozen
class ParsedQuery:
    """A validated List Nodes query.

    Ranges are inclusive epoch *microseconds* (the start rounded up, the end rounded down to
    a whole microsecond), ``None`` for an open side. ``country`` and ``subdivision`` are
    upper-cased (they match case-insensitively).
    """

    limit: int = MAX_LIMIT
    page: int = 1
    sort: str | None = None
    created_at: tuple[int | None, int | None] | None = None
    last_seen_at: tuple[int | None, int | None] | None = None
    status: str | None = None
    name: str | None = None
    operator_account_uuid: str | None = None
    country: str | None = None
    continent: str | None = None
    subdivision: str | None = None
    compliance_tag: str | None = None
    uuid: str | None = None
    include_deleted: bool = False

    def filter_key(self) -> tuple[object, ...]:
        """Everything that decides which nodes match and in what order (not limit/page)."""
        return (
            self.sort,
            self.created_at,
            self.last_seen_at,
            self.status,
            self.name,
            self.operator_account_uuid,
            self.country,
            self.continent,
            self.subdivision,
            self.compliance_tag,
            self.uuid,
            self.include_deleted,
        )


def parse_query_string(query: str) -> dict[str, str]:
    """Split a raw query string into parameters, rejecting repeated and unknown ones."""
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in params:
            raise SimQueryError(
                400, f"parameter {key!r} is given more than once; give it at most once", key
            )
        params[key] = value
    return params


def parse_iso_timestamp_ns(text: str, *, param: str) -> int:
    """An ISO date (midnight UTC) or datetime with ``Z`` or an offset, as exact epoch
    nanoseconds (a fraction longer than 9 digits is truncated to nanoseconds)."""
    if _DATE_RE.fullmatch(text):
        try:
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise SimQueryError(
                400, f"{text!r} is not a valid date; expected {_ACCEPTED}", param
            ) from None
        return int(day.timestamp()) * 1_000_000_000
    match = _DATETIME_RE.fullmatch(text)
    if match:
        minutes, seconds, fraction, zone = match.groups()
        zone = "+00:00" if zone.upper() == "Z" else zone
        try:
            whole = datetime.fromisoformat(f"{minutes.upper()}:{seconds or '00'}{zone}")
        except ValueError:
            pass
        else:
            nanos = int((fraction or "0")[:9].ljust(9, "0"))
            return int(whole.timestamp()) * 1_000_000_000 + nanos
    raise SimQueryError(400, f"{text!r} is not a valid timestamp; expected {_ACCEPTED}", param)


def parse_iso_timestamp(text: str, *, param: str) -> float:
    """An ISO date (midnight UTC) or datetime with ``Z`` or an offset, as epoch seconds."""
    return parse_iso_timestamp_ns(text, param=param) / 1e9


def _parse_range(text: str, param: str, strict: bool) -> tuple[int | None, int | None]:
    """``START,END`` as inclusive epoch microseconds (start rounded up, end rounded down)."""
    if text.count(",") != 1:
        form = (
            "'START,END' with both ends, e.g. '2023-01-01,2024-01-01'"
            if strict
            else "'START,END' with either side empty for an open end, e.g. "
            "'2023-01-01,2024-01-01' or '2024-01-01,'"
        )
        raise SimQueryError(400, f"{text!r} is not a range; expected {form}", param)
    start_text, end_text = (side.strip() for side in text.split(","))
    if strict and (not start_text or not end_text):
        raise SimQueryError(
            422,
            f"{text!r} has an empty side; only the documented form 'START,END' with both ends "
            f"is accepted, e.g. '2023-01-01,2024-01-01', each end {_ACCEPTED}",
            param,
        )
    start = parse_iso_timestamp_ns(start_text, param=param) if start_text else None
    end = parse_iso_timestamp_ns(end_text, param=param) if end_text else None
    if start is not None and end is not None and start > end:
        raise SimQueryError(400, f"range {text!r} starts after it ends; give START <= END", param)
    return (
        None if start is None else -(-start // 1000),
        None if end is None else end // 1000,
    )


def _parse_int(text: str, param: str, low: int, high: int) -> int:
    if not _INT_RE.fullmatch(text) or not low <= int(text) <= high:
        raise SimQueryError(
            400, f"{text!r} is not accepted; expected an integer from {low} to {high}", param
        )
    return int(text)


def _parse_enum(text: str, param: str, options: tuple[str, ...]) -> str:
    if text not in options:
        raise SimQueryError(
            400, f"{text!r} is not accepted; expected one of {', '.join(options)}", param
        )
    return text


def parse_params(params: Mapping[str, str], *, strict_ranges: bool = False) -> ParsedQuery:
    """Validate one request's parameters (each at most once) into a :class:`ParsedQuery`.

    ``strict_ranges`` accepts only ranges with both ends (an open side is a 422).
    """
    for key in params:
        if key not in KNOWN_PARAMS:
            raise SimQueryError(
                400, f"unknown parameter {key!r}; accepted: {', '.join(KNOWN_PARAMS)}", key
            )
    fields: dict[str, object] = {}
    if "limit" in params:
        fields["limit"] = _parse_int(params["limit"], "limit", 1, MAX_LIMIT)
    if "page" in params:
        fields["page"] = _parse_int(params["page"], "page", 1, MAX_PAGE)
    if "sort" in params:
        fields["sort"] = _parse_enum(params["sort"], "sort", ("created_at", "-created_at"))
    for param, field in (
        ("filter[created_at]", "created_at"),
        ("filter[last_seen_at]", "last_seen_at"),
    ):
        if param in params:
            fields[field] = _parse_range(params[param], param, strict_ranges)
    if "filter[status]" in params:
        fields["status"] = _parse_enum(params["filter[status]"], "filter[status]", STATUSES)
    if "filter[continent_code]" in params:
        fields["continent"] = _parse_enum(
            params["filter[continent_code]"], "filter[continent_code]", CONTINENTS
        )
    if "filter[compliance_tags]" in params:
        fields["compliance_tag"] = _parse_enum(
            params["filter[compliance_tags]"], "filter[compliance_tags]", COMPLIANCE_TAGS
        )
    for param, field in (
        ("filter[name]", "name"),
        ("filter[uuid]", "uuid"),
        ("filter[operator_account_uuid]", "operator_account_uuid"),
    ):
        if param in params:
            fields[field] = params[param]
    if "filter[country_iso_code]" in params:
        fields["country"] = params["filter[country_iso_code]"].upper()
    if "filter[subdivision_iso_code]" in params:
        fields["subdivision"] = params["filter[subdivision_iso_code]"].upper()
    if "filter[include_deleted]" in params:
        fields["include_deleted"] = (
            _parse_enum(
                params["filter[include_deleted]"], "filter[include_deleted]", ("true", "false")
            )
            == "true"
        )
    return ParsedQuery(**fields)  # type: ignore[arg-type]
