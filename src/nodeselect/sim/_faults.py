"""Fault injection settings and the counters a simulated server keeps."""

from __future__ import annotations

import random
import threading
from typing import Final, Literal

import attrs

__all__ = ["FAULT_KINDS", "FaultConfig", "FaultPlan", "ServerStats"]

#: Names of the injected faults, as keys of :attr:`ServerStats.faults`.
FAULT_KINDS: Final = ("drop", "http_429", "http_500", "http_503", "truncate")


def _rate(_inst: object, attr: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"FaultConfig.{attr.name} must be a probability in [0, 1], got {value}")


def _non_negative(_inst: object, attr: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"FaultConfig.{attr.name} must be >= 0, got {value}")


@attrs.frozen
class FaultConfig:
    """What goes wrong, and how often, on a :class:`~nodeselect.sim.SimServer`.

    Every draw comes from one generator seeded with ``seed``, one draw sequence per request in
    arrival order, so a sequential client sees the same faults on every run.

    Attributes:
        rate_500: probability that a request is answered ``500``.
        rate_503: probability of ``503`` (with ``Retry-After``).
        rate_429: probability of ``429`` (with ``Retry-After``).
        retry_after: the ``Retry-After`` header value on 429/503; ``None`` sends no header.
        rate_drop: probability that the connection is closed without any response.
        rate_truncate: probability of a 200 whose body is cut short (full ``Content-Length``),
            after which the connection is closed.
        latency_ms: delay added before answering every request.
        inserts_per_request: expected number of nodes inserted after each answered page.
        deletes_per_request: expected number of nodes deleted after each answered page.
        unstable_order: shuffle nodes with equal ``created_at`` on every sorted request.
        seed: seed of the fault generator.
    """

    rate_500: float = attrs.field(default=0.0, validator=_rate)
    rate_503: float = attrs.field(default=0.0, validator=_rate)
    rate_429: float = attrs.field(default=0.0, validator=_rate)
    retry_after: str | None = "0"
    rate_drop: float = attrs.field(default=0.0, validator=_rate)
    rate_truncate: float = attrs.field(default=0.0, validator=_rate)
    latency_ms: float = attrs.field(default=0.0, validator=_non_negative)
    inserts_per_request: float = attrs.field(default=0.0, validator=_non_negative)
    deletes_per_request: float = attrs.field(default=0.0, validator=_non_negative)
    unstable_order: bool = False
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        total = self.rate_500 + self.rate_503 + self.rate_429 + self.rate_drop + self.rate_truncate
        if total > 1.0 + 1e-9:
            raise ValueError(f"FaultConfig rates add up to {total:.3f}; they must add up to <= 1")


FaultKind = Literal["drop", "http_429", "http_500", "http_503", "truncate"]


class FaultPlan:
    """Deterministic draws for a :class:`FaultConfig` (thread-safe)."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()
        c = config
        self._table: tuple[tuple[float, FaultKind], ...] = (
            (c.rate_drop, "drop"),
            (c.rate_500, "http_500"),
            (c.rate_503, "http_503"),
            (c.rate_429, "http_429"),
            (c.rate_truncate, "truncate"),
        )

    def draw_fault(self) -> FaultKind | None:
        """The fault for the next request, or ``None``."""
        with self._lock:
            u = self._rng.random()
        for rate, kind in self._table:
            if u < rate:
                return kind
            u -= rate
        return None

    def draw_count(self, expected: float) -> int:
        """``floor(expected)`` plus one more with probability ``frac(expected)``."""
        whole = int(expected)
        with self._lock:
            return whole + (1 if self._rng.random() < expected - whole else 0)

    def fork(self) -> random.Random:
        """A new generator for one request's shuffles or mutations, seeded from this one."""
        with self._lock:
            return random.Random(self._rng.getrandbits(64))


@attrs.define
class ServerStats:
    """Counters of a :class:`~nodeselect.sim.SimServer` (read them; the server writes them).

    Attributes:
        requests: every request received (all paths and methods, faults included).
        page_requests_ok: 200 pages answered in full.
        faults: injected faults by kind (``drop``, ``http_429``, ``http_500``, ``http_503``,
            ``truncate``).
        open_connections: connections accepted and not yet closed, now.
        max_open_connections: the most that were open at once.
        connections_total: connections accepted since start.
        mutations: ``(request_no, "insert" | "delete", uuid)`` in the order applied; request_no
            is the 1-based number of the page request after which it happened.
    """

    requests: int = 0
    page_requests_ok: int = 0
    faults: dict[str, int] = attrs.Factory(lambda: dict.fromkeys(FAULT_KINDS, 0))
    open_connections: int = 0
    max_open_connections: int = 0
    connections_total: int = 0
    mutations: list[tuple[int, str, str]] = attrs.Factory(list)
