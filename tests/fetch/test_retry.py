"""Retry-After parsing, backoff bounds and which errors are retried."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect import (
    BadRequestError,
    InvalidResponseError,
    RateLimitError,
    RetryPolicy,
    ServerError,
)
from nodeselect.fetch import parse_retry_after
from nodeselect.fetch._retry import retry_cause

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "parsed", "waited"),
    [
        (None, None, None),
        ("", None, None),
        ("0", 0.0, 0.0),
        ("1", 1.0, 1.0),
        ("1.5", 1.5, 1.5),
        (" 7 ", 7.0, 7.0),
        ("-10", None, None),
        ("60", 60.0, 60.0),
        ("61", 61.0, 60.0),
        ("99999999999999999999999999", 1e26, 60.0),
        ("1e3", None, None),
        ("nan", None, None),
        ("soon", None, None),
        (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0, 30.0),
        (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0, 0.0),
        (format_datetime(NOW + timedelta(hours=2), usegmt=True), 7200.0, 60.0),
        ("Wed, 32 Foo 2024 99:00:00 GMT", None, None),
    ],
)
def test_retry_after_table(value, parsed, waited) -> None:
    """Retry-After values parse to seconds (or None), and the policy caps the wait at 60 s."""
    assert parse_retry_after(value, now=NOW) == pytest.approx(parsed)
    if parsed is not None:
        assert RetryPolicy().delay(1, parsed) == pytest.approx(waited)


@settings(max_examples=200, deadline=None)
@given(
    attempt=st.integers(1, 200), base=st.floats(0, 5), cap=st.floats(0, 30), jitter=st.floats(0, 1)
)
def test_backoff_is_bounded_and_jittered_downwards(attempt, base, cap, jitter) -> None:
    """Backoff lies in [(1-jitter) * min(cap, base*2**(n-1)), min(cap, base*2**(n-1))]."""
    policy = RetryPolicy(backoff_base=base, backoff_max=cap, jitter=jitter, seed=1)
    raw = min(cap, base * 2.0 ** min(attempt - 1, 60))
    d = policy.backoff(attempt)
    assert raw * (1 - jitter) - 1e-9 <= d <= raw + 1e-9


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (httpx.ConnectError("refused"), "connect"),
        (httpx.ReadTimeout("slow"), "timeout"),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), "dropped"),
        (
            httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body"
            ),
            "truncated",
        ),
        (httpx.ReadError("reset"), "network"),
        (httpx.UnsupportedProtocol("ftp"), None),
        (InvalidResponseError("cut"), "invalid_body"),
        (ServerError(503, None, "u"), "http_503"),
        (ServerError(500, None, "u"), "http_500"),
        (RateLimitError(429, None, "u"), "http_429"),
        (BadRequestError(400, "bad", "u"), None),
        (ValueError("x"), None),
    ],
)
def test_retry_causes(error, cause) -> None:
    """Connection faults, timeouts, bad bodies, 408/429/5xx retry; other errors do not."""
    assert retry_cause(error) == cause


def test_invalid_policies_are_refused() -> None:
    """A policy with no attempts or an impossible jitter raises ValueError."""
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=2)
