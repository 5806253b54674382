"""A small List Nodes server written from the reference alone, for httpx.MockTransport.

It keeps ``created_at`` in microseconds, writes it truncated to a chosen precision, accepts
only the documented request forms (anything else is a 422), and can misbehave on purpose:
an unstable order among equal ``created_at``, ignoring ``sort``, or repeating nodes.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import httpx

from documented_forms import _instant, violations

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STATUSES = ("AVAILABLE", "OFFLINE", "WORKING")


def write(us: int, precision: str) -> str:
    """A µs instant written truncated to ``precision`` (s, ms or us) with Z."""
    dt = EPOCH + timedelta(microseconds=us)
    base = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if precision == "s":
        return base + "Z"
    if precision == "ms":
        return f"{base}.{dt.microsecond // 1000:03d}Z"
    return f"{base}.{dt.microsecond:06d}Z"


class MiniServer:
    """Nodes as dicts ``uuid, created (µs), seen (µs or None), status``; call it as a handler."""

    def __init__(
        self,
        nodes: list[dict],
        *,
        precision: str = "s",
        unstable: bool = False,
        ignore_sort: bool = False,
        repeat_to: int | None = None,
        seed: int = 0,
    ) -> None:
        self.nodes = nodes
        self.precision = precision
        self.unstable = unstable
        self.ignore_sort = ignore_sort
        self.repeat_to = repeat_to
        self.rng = random.Random(seed)
        self.requests: list[httpx.URL] = []

    def doc(self, n: dict) -> dict:
        seen = None if n["seen"] is None else write(n["seen"], self.precision)
        created = write(n["created"], self.precision)
        return {"uuid": n["uuid"], "name": n["uuid"][:8], "created_at": created,
                "last_seen_at": seen}  # fmt: skip

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url)
        bad = violations(request.url)
        if bad:
            return httpx.Response(422, json={"error": {"message": "; ".join(bad)}})
        q = dict(parse_qsl(request.url.query.decode()))
        sel = list(self.nodes)
        for key, field in (("filter[created_at]", "created"), ("filter[last_seen_at]", "seen")):
            if key in q:
                a, b = (_instant(x) for x in q[key].split(","))
                lo = (a - EPOCH) // timedelta(microseconds=1)  # type: ignore[operator]
                hi = (b - EPOCH) // timedelta(microseconds=1)  # type: ignore[operator]
                sel = [n for n in sel if n[field] is not None and lo <= n[field] <= hi]
        if "filter[status]" in q:
            sel = [n for n in sel if n["status"] == q["filter[status]"]]
        if "filter[uuid]" in q:
            sel = [n for n in sel if n["uuid"] == q["filter[uuid]"]]
        sort = q.get("sort")
        if sort and not self.ignore_sort:
            noise = {n["uuid"]: self.rng.random() if self.unstable else 0 for n in sel}
            sel.sort(key=lambda n: (n["created"], noise[n["uuid"]]), reverse=sort.startswith("-"))
        if self.repeat_to is not None and sel:
            sel = [sel[i % len(sel)] for i in range(self.repeat_to)]
        limit, page = int(q.get("limit", 50)), int(q.get("page", 1))
        data = [self.doc(n) for n in sel[(page - 1) * limit : page * limit]]
        body = {"data": data, "limit": limit, "page": page, "total": len(sel)}
        return httpx.Response(200, content=json.dumps(body).encode())


def make_nodes(n: int, seed: int, *, tie_groups: tuple[int, ...] = (), span_s: int = 86_400 * 30,
               precision: str = "us") -> list[dict]:  # fmt: skip
    """``n`` nodes spread over ``span_s`` seconds at ``precision``, plus groups sharing one
    instant (sizes ``tie_groups``)."""
    rng = random.Random(seed)
    base = 1_700_000_000 * 10**6
    step = {"s": 10**6, "ms": 10**3, "us": 1}[precision]
    nodes = []
    for _ in range(n):
        created = base + rng.randrange(span_s * 10**6) // step * step
        nodes.append(created)
    for size in tie_groups:
        t = base + rng.randrange(span_s * 10**6) // step * step
        nodes.extend([t] * size)
    out = []
    for i, created in enumerate(nodes):
        seen = None if rng.random() < 0.05 else created + rng.randrange(10**12)
        out.append({"uuid": f"{rng.getrandbits(64):016x}-{i:05d}", "created": created,
                    "seen": seen, "status": rng.choice(STATUSES)})  # fmt: skip
    return out
