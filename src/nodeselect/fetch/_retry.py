"""When to retry a page request, and how long to wait.

Retried: connection errors, timeouts, dropped keep-alive connections (``RemoteProtocolError``),
truncated or invalid bodies, and HTTP 408, 429 and 5xx. Not retried: every other 4xx, which
raise a typed :class:`~nodeselect.APIStatusError` at once. Delays grow exponentially with
jitter; a ``Retry-After`` header (seconds or HTTP-date) replaces the backoff and is capped.
"""

from __future__ import annotations

import math
import random
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

import attrs
import httpx

from nodeselect.errors import APIStatusError, InvalidResponseError, ProtocolViolationError

__all__ = ["RETRYABLE_STATUSES", "RetryPolicy", "parse_retry_after", "retry_cause"]

_SECONDS: Final = re.compile(r"\d+(?:\.\d+)?", re.ASCII)


def _is_retryable_status(code: int) -> bool:
    return code in (408, 429) or 500 <= code <= 599


#: Statuses we retry (every 5xx as well).
RETRYABLE_STATUSES: Final = frozenset({408, 429, *range(500, 600)})


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, or ``None`` if absent or unusable.

    Accepts non-negative delay-seconds (``"0"``, ``"61"``, ``"1.5"``) and HTTP-dates (a date in
    the past means 0). Negative numbers, garbage and non-finite values give ``None`` (the caller
    then uses its own backoff). Huge values are returned as they are; the policy caps them.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _SECONDS.fullmatch(text):
        seconds = float(text)
        return seconds if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:  # pragma: no cover - older Pythons returned None
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    ref = now if now is not None else datetime.now(UTC)
    return max(0.0, (when - ref).total_seconds())


def retry_cause(error: BaseException) -> str | None:
    """The retry cause label of ``error`` (``"timeout"``, ``"http_503"``, ...), or ``None``
    when the error must not be retried."""
    if isinstance(error, (httpx.UnsupportedProtocol, httpx.LocalProtocolError)):
        return None  # our request is wrong: trying again cannot help
    if isinstance(error, httpx.TimeoutException):
        return "timeout"
    if isinstance(error, httpx.ConnectError):
        return "connect"
    if isinstance(error, httpx.RemoteProtocolError):
        text = str(error).lower()
        return "truncated" if "incomplete" in text or "body" in text else "dropped"
    if isinstance(error, httpx.TransportError):  # ReadError, WriteError, ProxyError ...
        return "network"
    if isinstance(error, ProtocolViolationError):
        return None  # a body past a safety limit: the same server would send it again
    if isinstance(error, InvalidResponseError):
        return "invalid_body"
    if isinstance(error, APIStatusError) and _is_retryable_status(error.status_code):
        return f"http_{error.status_code}"
    return None


@attrs.frozen
class RetryPolicy:
    """How many times, and how patiently, to retry one request.

    Attributes:
        max_attempts: requests per page at most (1 = no retry).
        backoff_base: the first backoff in seconds; attempt ``n`` waits ``base * 2**(n-1)``.
        backoff_max: the largest backoff in seconds.
        jitter: the backoff is multiplied by a uniform factor in ``[1 - jitter, 1]``.
        retry_after_max: a server's ``Retry-After`` is honoured up to this many seconds.
        deadline: seconds a whole fetch may take before it gives up (``None`` = no deadline).
        seed: seed of the jitter generator (``None`` = unpredictable).
    """

    max_attempts: int = attrs.field(default=5)
    backoff_base: float = 0.25
    backoff_max: float = 8.0
    jitter: float = 0.25
    retry_after_max: float = 60.0
    deadline: float | None = 300.0
    seed: int | None = None
    _rng: random.Random = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"jitter must be in [0, 1], got {self.jitter}")
        if self.backoff_base < 0 or self.backoff_max < 0 or self.retry_after_max < 0:
            raise ValueError("backoff_base, backoff_max and retry_after_max must be >= 0")
        object.__setattr__(self, "_rng", random.Random(self.seed))

    def backoff(self, attempt: int) -> float:
        """The jittered exponential delay after failed attempt number ``attempt`` (1-based)."""
        raw = min(self.backoff_max, self.backoff_base * 2.0 ** min(attempt - 1, 60))
        return raw * (1.0 - self.jitter * self._rng.random())

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """The wait before the next attempt: ``Retry-After`` (capped) if given, else backoff."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_max)
        return self.backoff(attempt)
