"""JSON Schemas (draft 2020-12) of nodeselect's job files and ``--json`` outputs, shipped in the
package: ``job`` (a job file, TOML or JSON), ``plan`` (``plan --json``), ``place``
(``place --json`` and ``Plan.to_json()``) and ``nodes`` (``nodes --format json|jsonl`` and
snapshot nodes). Each ``$id`` carries its version (``urn:nodeselect:plan-report:1``), the same as
the document's own ``schema`` value where it has one; additions are compatible, removals or
renames bump it. ``nodeselect schema NAME`` prints one (docs/cli.md).
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any, Final

from nodeselect.errors import InputError

__all__ = ["SCHEMA_NAMES", "schema"]

#: The schemas shipped, by name.
SCHEMA_NAMES: Final = ("job", "plan", "place", "nodes")


def schema(name: str) -> dict[str, Any]:
    """The JSON Schema called ``name`` (one of :data:`SCHEMA_NAMES`), as a dict.

    Raises:
        InputError: an unknown name (the accepted ones are listed).
    """
    if name not in SCHEMA_NAMES:
        raise InputError(f"no schema named {name!r}; accepted: {', '.join(SCHEMA_NAMES)}")
    text = files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8")
    out: dict[str, Any] = json.loads(text)
    return out
