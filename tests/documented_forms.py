"""The request grammar of ``shared/reference/list-nodes-api.txt``, and nothing more.

:func:`violations` lists every way a request steps outside what the reference documents:
the path, unknown or repeated parameters, ``limit``/``page`` outside their documented ranges,
``sort`` other than ``created_at``/``-created_at``, enum filters outside their options, and
ranges that are not ``START,END`` with both ends in the form the reference shows
(``2023-01-01`` or ``2023-11-07T05:31:56Z``, a fraction allowed) with ``START <= END``.
:class:`CheckingTransport` / :class:`AsyncCheckingTransport` wrap a transport and record them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import httpx

STATUSES = ("AVAILABLE", "ASSIGNED", "PREPARING", "WORKING", "STOPPING", "OFFLINE", "DELETED",
            "RESOURCE_BUSY", "OUTDATED_CLIENT")  # fmt: skip
CONTINENTS = ("AF", "AN", "AS", "EU", "NA", "OC", "SA")
TAGS = ("GDPR", "EEA")
PARAMS = ("limit", "page", "sort", "filter[created_at]", "filter[last_seen_at]", "filter[status]",
          "filter[name]", "filter[operator_account_uuid]", "filter[country_iso_code]",
          "filter[continent_code]", "filter[subdivision_iso_code]", "filter[compliance_tags]",
          "filter[uuid]", "filter[include_deleted]")  # fmt: skip
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")
_INT = re.compile(r"[1-9][0-9]*")
_VALUES = {
    "filter[status]": lambda v: v in STATUSES,
    "filter[continent_code]": lambda v: v in CONTINENTS,
    "filter[compliance_tags]": lambda v: v in TAGS,
    "filter[country_iso_code]": lambda v: re.fullmatch(r"[A-Z]{2}", v) is not None,
    "filter[subdivision_iso_code]": lambda v: (
        re.fullmatch(r"[A-Z]{2}-[A-Z0-9]{1,3}", v) is not None
    ),
    "filter[include_deleted]": lambda v: v in ("true", "false"),
}


def _instant(text: str) -> datetime | None:
    if _DATE.fullmatch(text):
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    if _STAMP.fullmatch(text):
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    return None


def violations(url: httpx.URL) -> list[str]:
    """Every way ``url`` is outside the documented request forms (empty when it is inside)."""
    out = []
    if url.path != "/v1/nodes":
        out.append(f"path {url.path!r}")
    pairs = parse_qsl(url.query.decode(), keep_blank_values=True)
    keys = [k for k, _ in pairs]
    for k in set(keys):
        if keys.count(k) > 1:
            out.append(f"{k} repeated")
        if k not in PARAMS:
            out.append(f"{k} undocumented")
    for k, v in pairs:
        if k == "limit" and not (_INT.fullmatch(v) and 1 <= int(v) <= 50):
            out.append(f"limit={v}")
        elif k == "page" and not (_INT.fullmatch(v) and 1 <= int(v) <= 9007199254740991):
            out.append(f"page={v}")
        elif k == "sort" and v not in ("created_at", "-created_at"):
            out.append(f"sort={v}")
        elif k in ("filter[created_at]", "filter[last_seen_at]"):
            parts = v.split(",")
            ends = [_instant(p) for p in parts]
            if len(parts) != 2 or None in ends:
                out.append(f"{k}={v} is not START,END in a documented form")
            elif ends[0] > ends[1]:  # type: ignore[operator]
                out.append(f"{k}={v} is inverted")
        elif k in _VALUES and not _VALUES[k](v):
            out.append(f"{k}={v}")
        elif k in ("filter[name]", "filter[uuid]", "filter[operator_account_uuid]") and not v:
            out.append(f"{k} empty")
    return out


class CheckingTransport(httpx.BaseTransport):
    """Records every request's violations, then passes it on."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.seen = 0
        self.bad: list[tuple[str, list[str]]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen += 1
        v = violations(request.url)
        if v:
            self.bad.append((str(request.url), v))
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class AsyncCheckingTransport(httpx.AsyncBaseTransport):
    """The asyncio twin of :class:`CheckingTransport`."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.seen = 0
        self.bad: list[tuple[str, list[str]]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen += 1
        v = violations(request.url)
        if v:
            self.bad.append((str(request.url), v))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
