"""The value layer of job files: key -> line scanning, typed value checks, durations, arch.

:mod:`nodeselect.jobs._file` builds Jobs from these; everything here is independent of the Job
model. Every check raises :class:`~nodeselect.JobSpecError` through a :class:`Ctx`, which knows
the source, the key prefix of the job (``job[2].``) and the line of each key.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any, Final, TypeVar

from nodeselect.documents import ARCH_ALIASES, canonical_arch
from nodeselect.errors import JobSpecError

__all__ = [
    "ARCH_ALIASES",
    "Ctx",
    "as_bool",
    "as_choices",
    "as_codes",
    "as_int",
    "as_num",
    "as_one_of",
    "as_str",
    "as_strs",
    "as_table",
    "check_keys",
    "format_duration",
    "key_lines",
    "normalize_arch",
    "optional",
    "parse_duration",
    "show",
]

_DURATION_UNITS: Final[dict[str, int]] = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_RE: Final = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")

T = TypeVar("T")


def normalize_arch(value: str | None) -> str | None:
    """An architecture spelling -> ``"x86_64"`` / ``"aarch64"`` (:func:`canonical_arch`);
    another value lower-cased; ``None`` for none."""
    return canonical_arch(value) or None


#: The longest duration accepted: 999,999,999 days in seconds, the whole days a ``timedelta``
#: holds (``timedelta.max.total_seconds()`` itself rounds up past the limit in float).
_MAX_DURATION_S: Final = float(timedelta.max.days * 86_400)


def parse_duration(value: object) -> timedelta:
    """``"90s"``, ``"10m"``, ``"2h"``, ``"1d"``, ``"1h30m"``, or a number of seconds -> timedelta.

    Raises ``ValueError`` (with what is accepted) for anything else or a negative duration.
    """
    accepted = 'accepted: a duration like "90s", "10m", "2h", "1d", "1h30m", or seconds'
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected a duration, got {show(value)}; {accepted}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"expected a duration >= 0, got {value!r}; {accepted}")
        seconds = float(value)
    else:
        text = value.strip().lower().replace(" ", "")
        if not text or _DURATION_RE.sub("", text) != "":
            raise ValueError(f"{value!r} is not a duration; {accepted}")
        seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_RE.findall(text))
    if not seconds <= _MAX_DURATION_S:
        raise ValueError(
            f"{value!r} is longer than the longest duration accepted "
            f"({_MAX_DURATION_S:.0f} s); {accepted}"
        )
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str | float:
    """A timedelta as the shortest exact job-file spelling (``"10m"``), or seconds as a float."""
    us = value // timedelta(microseconds=1)
    if us % 1_000_000:
        return value.total_seconds()
    seconds = us // 1_000_000
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in sorted(_DURATION_UNITS.items(), key=lambda kv: -kv[1]):
        if unit == "w":
            continue
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts)


def show(value: object) -> str:
    """How a wrong value is described in messages: its TOML type, and the value if short."""
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    return type(value).__name__


# ---------------------------------------------------------------------------------------------
# Finding the line of a key in TOML text (tomllib reports none)


def _unquoted(text: str) -> Iterator[tuple[int, str]]:
    """``(index, char)`` of every character outside quoted strings (escapes in basic strings
    honoured); the one scanner behind :func:`_strip_comment` and :func:`_depth`."""
    quote = ""
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        else:
            yield i, c
        i += 1


def _strip_comment(line: str) -> str:
    """The line without its comment, honouring quotes (escapes in basic strings included)."""
    for i, c in _unquoted(line):
        if c == "#":
            return line[:i]
    return line


def _depth(text: str) -> int:
    """Open brackets/braces minus closed ones, outside quoted strings."""
    depth = 0
    for _i, c in _unquoted(text):
        if c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
    return depth


def _norm_key(raw: str) -> str:
    return ".".join(p.strip().strip("\"'") for p in raw.split("."))


# No lazy group followed by \s* (quadratic on a long run of spaces): the name is stripped later.
_HEADER_RE: Final = re.compile(r"^\[\[?([^\[\]]*)\]\]?$")
_ASSIGN_RE: Final = re.compile(
    r"""^((?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*'))*)\s*="""
)
_INLINE_KEY_RE: Final = re.compile(r"[{,]\s*([A-Za-z0-9_\-]+)\s*=")


def _resolve(name: str, arrays: dict[str, int], *, new: bool) -> str:
    """A table header's dotted name with the index of each array of tables it is inside
    (``job.alternatives.gpu`` -> ``job[1].alternatives[0].gpu``); ``new``: a ``[[...]]``
    header, which starts the next table of its array."""
    parts = name.split(".")
    path = ""
    for k, part in enumerate(parts):
        path = f"{path}.{part}" if path else part
        if new and k == len(parts) - 1:
            arrays[path] = arrays.get(path, -1) + 1
        if path in arrays:
            path = f"{path}[{arrays[path]}]"
    return path


def key_lines(text: str) -> dict[str, int]:
    """Dotted key (``job[1].gpu.count`` for the 2nd ``[[job]]``, ``alternatives[0].gpu`` for
    the 1st ``[[alternatives]]``) -> first 1-based line."""
    lines: dict[str, int] = {}
    table = ""
    arrays: dict[str, int] = {}  # resolved array-of-tables path -> index of its last table
    depth = 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw).strip()
        if depth > 0:
            depth = max(0, depth + _depth(line))
            continue
        if not line:
            continue
        header = _HEADER_RE.match(line)
        if header is not None and header.group(1).strip():
            name = _norm_key(header.group(1).strip())
            table = _resolve(name, arrays, new=line.startswith("[["))
            lines.setdefault(table, lineno)
            continue
        assign = _ASSIGN_RE.match(line)
        if assign is None:
            continue
        key = _norm_key(assign.group(1))
        full = f"{table}.{key}" if table else key
        lines.setdefault(full, lineno)
        rest = line[assign.end() :]
        if rest.lstrip().startswith("{"):
            for inner in _INLINE_KEY_RE.findall(rest):
                lines.setdefault(f"{full}.{inner}", lineno)
        depth = max(0, _depth(rest))
    return lines


# ---------------------------------------------------------------------------------------------
# Validation


class Ctx:
    """Where a job came from: the source, the key prefix of this job, the key lines, and the
    keys set from elsewhere (``origins``: a dotted key with the prefix -> ``"--set gpu.count"``,
    ``"--vram-free"``...), whose errors name that origin instead of the file."""

    def __init__(
        self,
        source: str,
        prefix: str = "",
        lines: Mapping[str, int] | None = None,
        origins: Mapping[str, str] | None = None,
    ) -> None:
        self.source = source
        self.prefix = prefix
        self.lines = lines or {}
        self.origins = origins or {}

    def path(self, key: str) -> str:
        return f"{self.prefix}{key}" if key else self.prefix.rstrip(".")

    def sub(self, prefix: str) -> Ctx:
        """The context of a part of this job under ``prefix`` (e.g. ``alternatives[0].``)."""
        return Ctx(self.source, f"{self.prefix}{prefix}", self.lines, self.origins)

    def line(self, key: str) -> int | None:
        k = self.path(key)
        while k:
            if k in self.lines:
                return self.lines[k]
            k = _parent(k)
        return None

    def where(self, key: str) -> tuple[str, int | None]:
        """The source and line to report for ``key``: the origin of a key set from elsewhere
        (or of a table containing it), else this job's file and the key's line."""
        if self.origins:
            k = full = self.path(key)
            while k:
                if k in self.origins:
                    return self.origins[k], None
                k = _parent(k)
            for set_key, origin in self.origins.items():  # a key set inside this value
                if set_key.startswith((full + ".", full + "[")):
                    return origin, None
        return self.source, self.line(key)

    def error(self, key: str, message: str) -> JobSpecError:
        source, line = self.where(key)
        return JobSpecError(message, source=source, key=self.path(key) or None, line=line)


def _parent(k: str) -> str:
    return k[: k.rindex("[")] if k.endswith("]") and "[" in k else k.rpartition(".")[0]


def as_table(ctx: Ctx, key: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ctx.error(key, f"expected a table, got {show(value)}")
    return value


def check_keys(ctx: Ctx, key: str, table: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for k in table:
        if k not in allowed:
            close = difflib.get_close_matches(str(k), allowed, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            where = f"{key}.{k}" if key else str(k)
            raise ctx.error(
                where, f"unknown key {k!r}{hint}; accepted keys here: {', '.join(sorted(allowed))}"
            )


def as_int(ctx: Ctx, key: str, value: object, *, minimum: int | None = None) -> int:
    lo = "" if minimum is None else f" >= {minimum}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ctx.error(key, f"expected an integer{lo}, got {show(value)}")
    if isinstance(value, float):
        if not value.is_integer():
            raise ctx.error(key, f"expected an integer{lo}, got {value!r}")
        value = int(value)
    if minimum is not None and value < minimum:
        raise ctx.error(key, f"expected an integer{lo}, got {value}")
    return value


def as_num(
    ctx: Ctx, key: str, value: object, *, maximum: float | None = None, unit: str = ""
) -> float:
    accepted = "a number >= 0" if maximum is None else f"a number from 0 to {maximum:g}"
    accepted += unit
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ctx.error(key, f"expected {accepted}, got {show(value)}")
    f = float(value)
    if not math.isfinite(f) or f < 0 or (maximum is not None and f > maximum):
        raise ctx.error(key, f"expected {accepted}, got {value!r}")
    return f


def as_str(ctx: Ctx, key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ctx.error(key, f"expected a non-empty string, got {show(value)}")
    return value.strip()


def as_bool(ctx: Ctx, key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ctx.error(key, f"expected true or false, got {show(value)}")
    return value


def as_strs(ctx: Ctx, key: str, value: object) -> tuple[str, ...]:
    if value in ((), []):  # the common case, without the checks below
        return ()
    if isinstance(value, str):
        raise ctx.error(key, f'expected an array of strings (e.g. ["{value}"]), got a string')
    if not isinstance(value, (list, tuple)):
        raise ctx.error(key, f"expected an array of strings, got {show(value)}")
    out = [as_str(ctx, f"{key}[{i}]", v) for i, v in enumerate(value)]
    return tuple(dict.fromkeys(out))


def as_choices(
    ctx: Ctx, key: str, value: object, accepted: tuple[str, ...], what: str
) -> tuple[str, ...]:
    out = []
    for i, v in enumerate(as_strs(ctx, key, value)):
        u = v.upper()
        if u not in accepted:
            raise ctx.error(f"{key}[{i}]", f"unknown {what} {v!r}; accepted: {', '.join(accepted)}")
        out.append(u)
    return tuple(dict.fromkeys(out))


def as_codes(
    ctx: Ctx, key: str, value: object, pattern: re.Pattern[str], accepted: str
) -> tuple[str, ...]:
    out = []
    for i, v in enumerate(as_strs(ctx, key, value)):
        u = v.upper()
        if not pattern.match(u):
            raise ctx.error(f"{key}[{i}]", f"{v!r} is not {accepted}")
        out.append(u)
    return tuple(dict.fromkeys(out))


def as_one_of(ctx: Ctx, key: str, value: object, accepted: tuple[str, ...]) -> str:
    choices = ", ".join(f'"{a}"' for a in accepted)
    if not isinstance(value, str) or value.strip().lower() not in accepted:
        raise ctx.error(key, f"expected one of {choices}, got {show(value)}")
    return value.strip().lower()


def optional(section: Mapping[str, Any], key: str, conv: Callable[[object], T]) -> T | None:
    return conv(section[key]) if key in section else None
