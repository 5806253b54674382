"""Hypothesis strategies for node documents (dicts as decoded from JSON) and node models.

Both are generated from the models' own field table, so a field added to a model is generated
here without further edits. Unknown keys are always spelled ``x-...`` so tests can tell them
apart from documented ones.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from hypothesis import strategies as st

from nodeselect.documents._convert import _specs
from nodeselect.documents._models import Node, _Document
from nodeselect.documents._timestamps import format_timestamp

__all__ = [
    "EXTRA_PREFIX",
    "arbitrary_json",
    "json_values",
    "node_documents",
    "node_models",
    "page_documents",
    "timestamp_strings",
]

EXTRA_PREFIX = "x-"
# Valid numbers are bounded (documents/_lean.py: MAX_MAGNITUDE, MAX_CORES): beyond, a node is
# rejected with its path; tests/documents/test_bounds.py covers that side.
NUMBERS = st.integers(-(10**18), 10**18) | st.floats(
    min_value=-1e18, max_value=1e18, allow_nan=False, allow_infinity=False
)
COUNTS = st.integers(min_value=0, max_value=2**20)
TEXT = st.text(max_size=8)
DATETIMES = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.just(UTC),
)
timestamp_strings = DATETIMES.map(format_timestamp)

json_scalars = st.none() | st.booleans() | NUMBERS | TEXT
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=6,
)
extra_keys = TEXT.map(lambda s: EXTRA_PREFIX + s)
extras = st.dictionaries(extra_keys, json_values, max_size=2)


def _doc_value(kind: str, cls: type[_Document] | None) -> st.SearchStrategy[Any]:
    """Valid JSON for one field kind (never null: null is added by the caller)."""
    if kind == "str":
        return TEXT
    if kind == "num":
        return NUMBERS
    if kind == "int":
        return COUNTS
    if kind == "bool":
        return st.booleans()
    if kind == "ts":
        return timestamp_strings
    if kind == "obj":
        assert cls is not None
        return documents(cls)
    if kind == "objs":
        assert cls is not None
        return st.lists(documents(cls), max_size=2)
    if kind == "strs":
        return st.lists(TEXT, max_size=3)
    if kind == "nums":
        return st.lists(NUMBERS, max_size=3)
    return st.lists(json_values, max_size=2)  # "jsons"


def _merge(parts: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    known, extra = parts
    return {**known, **extra}


@cache
def documents(cls: type[_Document]) -> st.SearchStrategy[dict[str, Any]]:
    """Valid JSON objects for model ``cls``: any key missing, null or set, plus unknown keys."""
    specs, _ = _specs(cls)
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for spec in specs:
        if cls is Node and spec.key == "uuid":
            required["uuid"] = TEXT
        else:
            optional[spec.key] = st.none() | _doc_value(spec.kind, spec.cls)
    known = st.fixed_dictionaries(required, optional=optional)
    return st.tuples(known, extras).map(_merge)


node_documents = documents(Node)


def page_documents(nodes: st.SearchStrategy[list[Any]] | None = None) -> st.SearchStrategy[Any]:
    """Valid page envelopes around ``nodes`` (default: up to 4 valid node documents)."""
    return st.fixed_dictionaries(
        {
            "data": nodes if nodes is not None else st.lists(node_documents, max_size=4),
            "limit": st.integers(0, 50),
            "page": st.integers(0, 10**6),
            "total": st.integers(0, 10**9),
        }
    )


def _model_value(kind: str, cls: type[_Document] | None) -> st.SearchStrategy[Any]:
    """A Python value for one model field kind (``None`` allowed for scalars and objects)."""
    if kind == "ts":
        return st.none() | DATETIMES
    if kind == "obj":
        assert cls is not None
        return st.none() | models(cls)
    if kind == "objs":
        assert cls is not None
        return st.lists(models(cls), max_size=2).map(tuple)
    if kind in ("strs", "nums", "jsons"):
        return _doc_value(kind, cls).map(tuple)
    return st.none() | _doc_value(kind, cls)


@cache
def models(cls: type[_Document]) -> st.SearchStrategy[Any]:
    """Instances of model ``cls`` with every field drawn, plus unknown keys in ``extra``."""
    specs, _ = _specs(cls)
    fields = {spec.attr: _model_value(spec.kind, spec.cls) for spec in specs}
    if cls is Node:
        fields["uuid"] = TEXT
    return st.builds(cls, extra=extras, **fields)


node_models = models(Node)

_known_keys = st.sampled_from(
    sorted(
        {s.key for c in _Document.__subclasses__() for s in _specs(c)[0]}
        | {"data", "limit", "page", "total"}
    )
)
#: Arbitrary JSON whose objects often use documented keys, so it reaches deep into the parser.
arbitrary_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(_known_keys | st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)
