"""ISO 8601 timestamps of node documents: parse to aware UTC datetimes, format canonically.

Node documents carry datetimes such as ``"2023-11-07T05:31:56Z"``. We accept:

* a ``T`` (or ``t``) between date and time, seconds always present;
* fractional seconds of any length (digits beyond microseconds are truncated, not rounded);
* a ``Z`` (or ``z``) suffix or a ``+hh:mm`` / ``-hh:mm`` offset (converted to UTC).

Dates without a time and datetimes without a zone are rejected: a document always carries an
instant, and guessing a zone would silently shift it. The query layer handles plain dates.

:func:`format_timestamp` writes the canonical form ``2023-11-07T05:31:56Z``, with
``.ffffff`` only when the microseconds are non-zero. :func:`parse_timestamps_to_epoch_s`
turns a column of strings into float64 Unix seconds in one vectorized pass over the bytes
(the common ``...Z`` forms), falling back to :func:`parse_timestamp` only for the odd ones.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

import numpy as np
import numpy.typing as npt

from nodeselect.errors import DocumentError

__all__ = ["format_timestamp", "parse_timestamp", "parse_timestamps_to_epoch_s"]

_PATTERN: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)
_EXPECTED: Final = "expected an ISO 8601 timestamp like 2023-11-07T05:31:56Z"
_MAX_ECHO: Final = 40


def _echo(s: str) -> str:
    """A short, quoted rendering of a bad input for an error message."""
    text = s if len(s) <= _MAX_ECHO else s[:_MAX_ECHO] + "..."
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_timestamp(s: str, *, path: str = "") -> datetime:
    """Parse an ISO 8601 datetime with a zone into an aware UTC :class:`datetime`.

    Args:
        s: e.g. ``"2023-11-07T05:31:56Z"``, ``"2023-11-07T11:01:56.123456789+05:30"``.
        path: the JSON path of the value, used in the error.

    Raises:
        DocumentError: ``s`` is not a string or not such a timestamp (the reason says which
            form would be accepted).
    """
    if not isinstance(s, str):
        raise DocumentError(path, f"{_EXPECTED}, got {type(s).__name__}")
    m = _PATTERN.fullmatch(s)
    if m is None:
        raise DocumentError(path, f"{_EXPECTED}, got {_echo(s)}")
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    frac = m.group(7)
    micro = int((frac + "000000")[:6]) if frac else 0
    if m.group(8):
        tz = UTC
    else:
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 23 or om > 59:
            raise DocumentError(path, f"{_EXPECTED}, got an offset out of range in {_echo(s)}")
        delta = timedelta(hours=oh, minutes=om)
        tz = timezone(-delta if m.group(9) == "-" else delta)
    try:
        dt = datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
        return dt.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise DocumentError(path, f"{_EXPECTED}, got an impossible date in {_echo(s)}") from exc


def format_timestamp(dt: datetime) -> str:
    """Write ``dt`` in canonical UTC form: ``2023-11-07T05:31:56Z`` or ``...56.000123Z``.

    A naive ``dt`` is taken to be UTC already.
    """
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)
    base = (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
    )
    return f"{base}.{dt.microsecond:06d}Z" if dt.microsecond else f"{base}Z"


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_WIDTH: Final = 32  # bytes per string in the fast path; longer strings take the slow path
_DIGIT_POS: Final = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18])
_SEPS: Final = ((4, ord("-")), (7, ord("-")), (10, ord("T")), (13, ord(":")), (16, ord(":")))
_EXACT_US: Final = 2**53
_FRAC_MAX: Final = _WIDTH - 21  # fraction digits that fit between "." (19) and "Z"


def _slow_epoch_s(s: object) -> float:
    """Reference conversion of one value (NaN for None or anything unparsable)."""
    if not isinstance(s, str):
        return float("nan")
    try:
        dt = parse_timestamp(s)
    except DocumentError:
        return float("nan")
    us = (dt - _EPOCH) // timedelta(microseconds=1)
    return us / 10**6  # int / int: correctly rounded, as datetime.timestamp() is


def parse_timestamps_to_epoch_s(strings: Sequence[str | None]) -> npt.NDArray[np.float64]:
    """Convert timestamps to float64 Unix seconds, NaN for ``None`` or unparsable values.

    Agrees exactly with ``parse_timestamp(s).timestamp()`` (microsecond precision, fraction
    digits beyond six truncated). The forms ``YYYY-MM-DDTHH:MM:SS[.f...]Z`` are decoded in one
    vectorized pass over the ASCII bytes; anything else (offsets, lower-case ``t``/``z``,
    non-ASCII, very long fractions) goes through :func:`parse_timestamp` one by one.
    """
    n = len(strings)
    out = np.full(n, np.nan)
    if n == 0:
        return out
    cleaned = [
        s if isinstance(s, str) and len(s) <= _WIDTH and s.isascii() else "" for s in strings
    ]
    raw = np.array(cleaned, dtype=f"S{_WIDTH}")
    u = raw.view(np.uint8).reshape(n, _WIDTH)
    length = np.fromiter(map(len, cleaned), dtype=np.int64, count=n)
    digits = u[:, _DIGIT_POS].astype(np.int64) - 48
    ok = (length >= 20) & (np.count_nonzero(u, axis=1) == length)  # no NUL inside
    ok &= np.all((digits >= 0) & (digits <= 9), axis=1)
    for pos, char in _SEPS:
        ok &= u[:, pos] == char
    last = u[np.arange(n), np.maximum(length - 1, 0)]
    ok &= last == ord("Z")
    # Either "...SSZ" (length 20) or "...SS.f+Z" with at least one fraction digit.
    has_frac = length > 20
    ok &= ~has_frac | ((u[:, 19] == ord(".")) & (length >= 22))
    micro = np.zeros(n, dtype=np.int64)
    if has_frac.any():
        frac = u[:, 20 : 20 + _FRAC_MAX].astype(np.int16) - 48
        in_frac = np.arange(_FRAC_MAX)[None, :] < (length - 21)[:, None]
        ok &= np.all(~in_frac | ((frac >= 0) & (frac <= 9)), axis=1)
        frac6 = np.where(in_frac[:, :6], frac[:, :6], 0).astype(np.int64)
        micro = frac6 @ np.array([100000, 10000, 1000, 100, 10, 1], dtype=np.int64)

    year = digits[:, 0] * 1000 + digits[:, 1] * 100 + digits[:, 2] * 10 + digits[:, 3]
    month = digits[:, 4] * 10 + digits[:, 5]
    day = digits[:, 6] * 10 + digits[:, 7]
    hour = digits[:, 8] * 10 + digits[:, 9]
    minute = digits[:, 10] * 10 + digits[:, 11]
    second = digits[:, 12] * 10 + digits[:, 13]
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    mdays = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    month_ok = (month >= 1) & (month <= 12)
    dim = mdays[np.where(month_ok, month, 0)] + ((month == 2) & leap)
    ok &= (year >= 1) & month_ok & (day >= 1) & (day <= dim)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)

    # days_from_civil (H. Hinnant), valid for the proleptic Gregorian calendar.
    y = year - (month <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = (month + 9) % 12
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    total_us = ((days * 86400 + hour * 3600 + minute * 60 + second) * 1_000_000) + micro
    # Exact like datetime.timestamp() only while the int64 -> float64 step is exact (2**53 µs,
    # about 1685-2255); the rare instants outside take the slow path.
    ok &= np.abs(total_us) < _EXACT_US
    out[ok] = total_us[ok] / 1e6

    for i in np.flatnonzero(~ok):
        s = strings[int(i)]
        if s is not None:
            out[i] = _slow_epoch_s(s)
    return out
