"""Keys set from outside a job file: ``--set gpu.count=2`` and the CLI's requirement flags.

An :class:`Override` is a dotted key, a value and its origin (``"--set"``,
``"--vram-free"``). The loaders apply overrides to the job's dict *before* giving it its shape,
so an overridden key goes through the one validator like a key of the file, and its errors name
the origin instead of the file's line (docs/cli.md#jobs-without-a-file).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from nodeselect.errors import JobSpecError

__all__ = ["Override", "apply_overrides", "parse_override", "parse_value"]

_KEY_RE: Final = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


@attrs.frozen
class Override:
    """One key set from outside the job's text.

    Attributes:
        key: the dotted key, e.g. ``"gpu.count"`` or ``"placement.countries"``.
        value: its value, as TOML would give it (int, float, str, bool, list, dict).
        origin: what set it, for error messages (``"--set"``, ``"--vram-free"``).
    """

    key: str
    value: Any
    origin: str


def parse_value(text: str) -> Any:
    """A value as written after ``=`` in TOML (``2``, ``0.5``, ``true``, ``["DE", "FR"]``,
    ``"1h"``); anything that is not a TOML value is the string itself (``H100``, ``10m``)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_override(text: str, origin: str | None = None) -> Override:
    """``"gpu.count=2"`` -> ``Override("gpu.count", 2, "--set")``.

    Raises:
        JobSpecError: no ``=``, or the key is not a dotted key.
    """
    key, eq, raw = text.partition("=")
    key = key.strip()
    if not eq or not _KEY_RE.match(key):
        raise JobSpecError(
            f"expected KEY=VALUE with a dotted job key, e.g. gpu.count=2 or "
            f'placement.countries=["DE","FR"], got {text!r}',
            source=origin or "--set",
        )
    return Override(key, parse_value(raw.strip()), origin or "--set")


def apply_overrides(
    data: Mapping[str, Any], overrides: Sequence[Override]
) -> tuple[dict[str, Any], dict[str, str]]:
    """``data`` with each override set (later ones win; tables on the way are copied, never
    changed in place), and the origin of each key set.

    Raises:
        JobSpecError: a key goes through a value that is not a table (``name.x``).
    """
    out: dict[str, Any] = dict(data)
    origins: dict[str, str] = {}
    for o in overrides:
        parts = o.key.split(".")
        table = out
        for depth, part in enumerate(parts[:-1]):
            inner = table.get(part, {})
            if not isinstance(inner, Mapping):
                where = ".".join(parts[: depth + 1])
                raise JobSpecError(
                    f"{where} is not a table, so {o.key} cannot be set in it",
                    source=o.origin,
                    key=o.key,
                )
            inner = dict(inner)
            table[part] = inner
            table = inner
        table[parts[-1]] = o.value
        origins[o.key] = o.origin
    return out, origins
