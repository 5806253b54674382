"""Parse node documents into :mod:`nodeselect.documents._models` and write them back, losslessly.

Tolerant of what real fleets send: missing keys, ``null`` and unknown keys (kept in ``extra``).
Strict on types: a bool where a number belongs (a bool is not a number), a string that is not a
number where a number belongs, a float where an integer belongs, a list where an object belongs,
a timestamp that does not parse. A *numeric string* (``"32"``, ``"0.45"``, ``"1e3"``: the JSON
number grammar inside quotes, as the lean decode reads it) is read as the number (docs/units.md,
"Tolerant numbers"); a document holding one then writes back with the number unquoted. Every
fault of a document is collected and reported at once in one :class:`~nodeselect.DocumentError`
(``.errors`` lists them, each with its JSON path).

The parser is driven by the field table of the models (each attrs field's ``metadata``), so the
models are the single description of the document. :func:`parse_page` never fails because one
node is bad: that node becomes a :class:`RejectedNode`; only a bad envelope raises.

Round trips: ``parse_node(node_to_json(n)) == n``, and ``node_to_json(parse_node(doc)) == doc``
for a valid ``doc`` whose timestamps are in canonical form (``2023-11-07T05:31:56Z``).
Values in ``extra`` (and ``docker.images``) are the JSON values as given, not copied.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import attrs

from nodeselect.documents._models import Node, _Document
from nodeselect.documents._timestamps import format_timestamp, parse_timestamp
from nodeselect.errors import DocumentError

__all__ = [
    "PageResult",
    "RejectedNode",
    "node_to_json",
    "numeric_string",
    "page_to_json",
    "parse_node",
    "parse_page",
]

_MAX_ECHO: Final = 40
_LIST_KINDS: Final = frozenset({"objs", "strs", "nums", "jsons"})


@attrs.frozen
class _Spec:
    """One documented field of a model: attribute, JSON key, parse kind, sub-model."""

    attr: str
    key: str
    kind: str
    cls: type[_Document] | None
    personal: bool


_SPECS: dict[type, tuple[tuple[_Spec, ...], dict[str, _Spec]]] = {}


def _specs(cls: type) -> tuple[tuple[_Spec, ...], dict[str, _Spec]]:
    """The field table of a model class (computed once per class)."""
    found = _SPECS.get(cls)
    if found is None:
        specs = tuple(
            _Spec(
                attr=f.name,
                key=f.metadata["json"] or f.name,
                kind=f.metadata["kind"],
                cls=f.metadata["cls"],
                personal=f.metadata["personal"],
            )
            for f in attrs.fields(cls)
            if "kind" in f.metadata
        )
        found = (specs, {s.key: s for s in specs})
        _SPECS[cls] = found
    return found


def _describe(value: Any, *, personal: bool = False) -> str:
    """A short description of a bad value for an error message (personal values not echoed)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        if personal:
            return "a number"
        return repr(value)
    if isinstance(value, str):
        if personal:
            return "a string"
        text = value if len(value) <= _MAX_ECHO else value[:_MAX_ECHO] + "..."
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"a {type(value).__name__}"


class _Errors:
    """Collects the faults of one document."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[DocumentError] = []

    def add(self, path: str, reason: str) -> None:
        self.items.append(DocumentError(path, reason))

    def raise_if_any(self) -> None:
        if self.items:
            first = self.items[0]
            raise DocumentError(first.path, first.reason, errors=tuple(self.items))


#: The JSON number grammar: what a numeric string must hold to be read as a number.
_NUMERIC: Final = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


def numeric_string(value: str) -> int | float | None:
    """The number a numeric string holds (``"32"`` -> 32, ``"0.5"`` -> 0.5), else ``None``.

    Accepted: exactly the JSON number grammar (no spaces, no ``+``, no ``inf``/``nan``), the
    same strings the lean decode reads (msgspec's non-strict mode). A value too large for a
    float is not a number here.
    """
    if _NUMERIC.fullmatch(value) is None:
        return None
    if "." in value or "e" in value or "E" in value:
        x = float(value)
        return x if math.isfinite(x) else None
    try:
        return int(value)
    except ValueError:  # more digits than Python converts
        return None


def _scalar(kind: str, value: Any, path: str, personal: bool, errs: _Errors) -> Any:
    """Check one non-null scalar; returns it (or a datetime), or ``None`` after recording."""
    if kind == "str":
        if isinstance(value, str):
            return value
        errs.add(path, f"expected a string, got {_describe(value, personal=personal)}")
        return None
    if isinstance(value, str) and kind in ("num", "nums", "int"):
        parsed = numeric_string(value)
        if parsed is not None:
            if kind != "int":
                return parsed
            if isinstance(parsed, int) or parsed.is_integer():
                return int(parsed)
    if kind in ("num", "nums"):
        if isinstance(value, int | float) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                errs.add(path, f"expected a finite number, got {value!r}")
                return None
            return value
        errs.add(path, f"expected a number, got {_describe(value, personal=personal)}")
        return None
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        errs.add(path, f"expected an integer, got {_describe(value, personal=personal)}")
        return None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        errs.add(path, f"expected true or false, got {_describe(value, personal=personal)}")
        return None
    if kind == "ts":
        if not isinstance(value, str):
            errs.add(path, f"expected a timestamp string, got {_describe(value)}")
            return None
        try:
            return parse_timestamp(value, path=path)
        except DocumentError as exc:
            errs.items.append(exc)
            return None
    if kind == "strs":
        return _scalar("str", value, path, personal, errs)
    return value  # "jsons": any JSON value, kept as given


def _parse_obj(cls: type[_Document], obj: Any, path: str, errs: _Errors) -> Any:
    """Parse one JSON object into ``cls``, recording faults; ``None`` if ``obj`` is no object."""
    if not isinstance(obj, dict):
        errs.add(path, f"expected an object, got {_describe(obj)}")
        return None
    specs, by_key = _specs(cls)
    kwargs: dict[str, Any] = {}
    absent: list[str] = []
    null_lists: list[str] = []
    for spec in specs:
        key = spec.key
        value = obj.get(key, _MISSING)
        if value is _MISSING:
            absent.append(key)
            continue
        if value is None:
            if spec.kind in _LIST_KINDS:
                null_lists.append(key)
            continue
        kind = spec.kind
        # Fast paths for well-typed scalars; everything else goes the general way below.
        vtype = type(value)
        if kind == "str":
            if vtype is str:
                kwargs[spec.attr] = value
                continue
        elif kind == "num":
            if vtype is int or (vtype is float and math.isfinite(value)):
                kwargs[spec.attr] = value
                continue
        elif kind == "ts" and vtype is str:
            fast = _fast_timestamp(value)
            if fast is not None:
                kwargs[spec.attr] = fast
                continue
        sub = f"{path}.{key}"
        if kind == "obj":
            assert spec.cls is not None
            kwargs[spec.attr] = _parse_obj(spec.cls, value, sub, errs)
        elif kind in _LIST_KINDS:
            if not isinstance(value, list):
                errs.add(sub, f"expected a list, got {_describe(value)}")
                continue
            if kind == "objs":
                assert spec.cls is not None
                item_cls = spec.cls
                items = [_parse_obj(item_cls, v, f"{sub}[{i}]", errs) for i, v in enumerate(value)]
            elif kind == "strs" and all(type(v) is str for v in value):
                items = value
            else:
                items = []
                for i, v in enumerate(value):
                    if v is None and kind != "jsons":
                        errs.add(f"{sub}[{i}]", f"expected {_ITEM[kind]}, got null")
                    else:
                        items.append(_scalar(kind, v, f"{sub}[{i}]", spec.personal, errs))
            kwargs[spec.attr] = tuple(items)
        else:
            kwargs[spec.attr] = _scalar(kind, value, sub, spec.personal, errs)
    if len(obj) + len(absent) == len(specs):
        return cls(
            **kwargs,
            absent_keys=frozenset(absent) if absent else _EMPTY,
            null_list_keys=frozenset(null_lists) if null_lists else _EMPTY,
        )
    extra = {k: v for k, v in obj.items() if k not in by_key}
    return cls(
        **kwargs,
        extra=extra,
        absent_keys=frozenset(absent),
        null_list_keys=frozenset(null_lists),
    )


_ITEM: Final = {"strs": "a string", "nums": "a number"}
_MISSING: Final = object()
_EMPTY: Final[frozenset[str]] = frozenset()
_CANONICAL_LEN: Final = 20  # len("2023-11-07T05:31:56Z")


def _fast_timestamp(s: str) -> datetime | None:
    """The common ``YYYY-MM-DDTHH:MM:SSZ`` form without the regex, or ``None`` to go slow."""
    if (
        len(s) == _CANONICAL_LEN
        and s[19] == "Z"
        and s[10] == "T"
        and s[4] == s[7] == "-"
        and s[13] == s[16] == ":"
    ):
        digits = s[0:4] + s[5:7] + s[8:10] + s[11:13] + s[14:16] + s[17:19]
        if digits.isascii() and digits.isdigit():
            try:
                return datetime(
                    int(s[0:4]),
                    int(s[5:7]),
                    int(s[8:10]),
                    int(s[11:13]),
                    int(s[14:16]),
                    int(s[17:19]),
                    tzinfo=UTC,
                )
            except ValueError:
                return None
    return None


def parse_node(obj: Any, *, path: str = "$", require_uuid: bool = True) -> Node:
    """Parse one node document (a dict decoded from JSON) into a :class:`Node`.

    Args:
        obj: the decoded document.
        path: the JSON path of the document, used in errors (the fetcher passes ``"data[i]"``).
        require_uuid: reject a document without a string ``uuid`` (the default, as the lean
            decoder does: a node without a uuid cannot be deduplicated or placed).

    Raises:
        DocumentError: with every fault of the document in ``.errors`` (paths from ``path``).
    """
    errs = _Errors()
    node = _parse_obj(Node, obj, path, errs)
    if require_uuid and isinstance(obj, dict) and obj.get("uuid") is None:
        errs.add(f"{path}.uuid", "required: every node needs a string uuid, got it missing or null")
    errs.raise_if_any()
    assert isinstance(node, Node)
    return node


def _to_json(model: _Document) -> dict[str, Any]:
    """Write one model back to its JSON object (absent keys omitted, null lists as null)."""
    specs, _ = _specs(type(model))
    out: dict[str, Any] = {}
    absent = model.absent_keys
    null_lists = model.null_list_keys
    for spec in specs:
        key = spec.key
        if key in absent:
            continue
        value = getattr(model, spec.attr)
        kind = spec.kind
        if kind in _LIST_KINDS:
            if key in null_lists and not value:
                out[key] = None
            elif kind == "objs":
                out[key] = [_to_json(v) for v in value]
            else:
                out[key] = list(value)
        elif value is None:
            out[key] = None
        elif kind == "obj":
            out[key] = _to_json(value)
        elif kind == "ts":
            out[key] = format_timestamp(value) if isinstance(value, datetime) else value
        else:
            out[key] = value
    for k, v in model.extra.items():
        out.setdefault(k, v)
    return out


def node_to_json(node: Node) -> dict[str, Any]:
    """Write a :class:`Node` as a JSON-ready dict, the inverse of :func:`parse_node`.

    Keys that were missing from the parsed document stay missing; every other documented key
    is written (``None`` as null); timestamps in canonical UTC form; unknown keys from
    ``extra`` last (a key in ``extra`` never overrides a documented field).
    """
    return _to_json(node)


@attrs.frozen
class RejectedNode:
    """A node document of a page that did not parse.

    Attributes:
        index: its position in the page's ``data`` list (0-based).
        uuid: its ``uuid`` when the document is an object with a string uuid, else ``None``.
        error: every fault, with paths ``data[index]...``.
    """

    index: int
    uuid: str | None
    error: DocumentError = attrs.field(eq=False)


@attrs.frozen
class PageResult:
    """One parsed page of ``GET /v1/nodes``.

    Attributes:
        nodes: the nodes that parsed, in page order.
        rejected: the node documents that did not, in page order.
        limit: the page size the server applied.
        page: the 1-based page number.
        total: how many nodes match the query in all.
        extra: unknown envelope keys (kept for :func:`page_to_json`).
    """

    nodes: tuple[Node, ...]
    rejected: tuple[RejectedNode, ...]
    limit: int
    page: int
    total: int
    extra: Mapping[str, Any] = attrs.field(factory=dict, repr=False)


def parse_page(obj: Any) -> PageResult:
    """Parse a decoded page envelope; bad nodes become :class:`RejectedNode` entries.

    Raises:
        DocumentError: only for a bad envelope: not an object, ``data`` not a list, or
            ``limit`` / ``page`` / ``total`` missing or not a non-negative integer.
    """
    errs = _Errors()
    if not isinstance(obj, dict):
        errs.add("$", f"expected a page object with data, limit, page, total, got {_describe(obj)}")
        errs.raise_if_any()
    numbers: dict[str, int] = {}
    for key in ("limit", "page", "total"):
        if key not in obj:
            errs.add(key, "required: a non-negative integer, got it missing")
            continue
        value = obj[key]
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            numbers[key] = value
        else:
            errs.add(key, f"expected a non-negative integer, got {_describe(value)}")
    data = obj.get("data")
    if not isinstance(data, list):
        got = "it missing" if "data" not in obj else _describe(data)
        errs.add("data", f"expected a list of node objects, got {got}")
    errs.raise_if_any()
    assert isinstance(data, list)
    nodes: list[Node] = []
    rejected: list[RejectedNode] = []
    for i, doc in enumerate(data):
        try:
            nodes.append(parse_node(doc, path=f"data[{i}]"))
        except DocumentError as exc:
            uuid = doc.get("uuid") if isinstance(doc, dict) else None
            rejected.append(RejectedNode(i, uuid if isinstance(uuid, str) else None, exc))
    extra = {k: v for k, v in obj.items() if k not in ("data", "limit", "page", "total")}
    return PageResult(
        nodes=tuple(nodes),
        rejected=tuple(rejected),
        limit=numbers["limit"],
        page=numbers["page"],
        total=numbers["total"],
        extra=extra,
    )


def page_to_json(result: PageResult) -> dict[str, Any]:
    """Write a page back as a JSON-ready dict (only the parsed nodes; rejected ones are gone)."""
    out: dict[str, Any] = {
        "data": [node_to_json(n) for n in result.nodes],
        "limit": result.limit,
        "page": result.page,
        "total": result.total,
    }
    for k, v in result.extra.items():
        out.setdefault(k, v)
    return out
