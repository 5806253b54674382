"""CPU architecture: the one canonical spelling every layer compares with.

Node documents report ``operating_system.architecture`` as free text (``x86_64``, ``amd64``,
``aarch64``, ``arm64``, ...); job files accept the same aliases. Both sides go through
:func:`canonical_arch`, so a job asking for ``arm64`` matches a node reporting ``aarch64``, and
tables, jobs and explanations all say ``x86_64`` or ``aarch64``.
"""

from __future__ import annotations

import functools
import re
from typing import Final

__all__ = ["ARCH_ALIASES", "ARCH_SPELLINGS", "canonical_arch"]

#: The spellings accepted, as a user writes them, in the order messages list them.
ARCH_SPELLINGS: Final = ("x86_64", "amd64", "x64", "x86-64", "aarch64", "arm64", "armv8")
_NON_ALNUM: Final = re.compile(r"[^a-z0-9]+")
#: Alias (lower-case, without punctuation) -> the canonical name.
ARCH_ALIASES: Final[dict[str, str]] = {
    "x8664": "x86_64",
    "amd64": "x86_64",
    "x64": "x86_64",
    "aarch64": "aarch64",
    "arm64": "aarch64",
    "armv8": "aarch64",
}


@functools.lru_cache(maxsize=4096)
def canonical_arch(raw: str | None) -> str:
    """An architecture spelling -> ``"x86_64"`` / ``"aarch64"``; another value lower-cased and
    stripped; ``""`` for none (``amd64`` -> ``x86_64``, ``ARM64`` -> ``aarch64``)."""
    if not raw:
        return ""
    return ARCH_ALIASES.get(_NON_ALNUM.sub("", raw.lower()), raw.strip().lower())
