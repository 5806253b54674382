"""Page bytes to nodes: a strict envelope, then each node on its own.

The envelope (``{"data": [...], "limit", "page", "total"}``) must be valid; a body that is not
(a truncated or garbled response) raises :class:`~nodeselect.InvalidResponseError`, which the
client retries. Each node is then decoded into the lean view; a node that fails becomes a
rejected document carrying the JSON path of its fault, and the rest of the page is kept.

Numbers written as JSON strings (``"32"``) are read as numbers (docs/units.md, "Tolerant
numbers"): such a node fails the strict decode and is decoded again by
:func:`~nodeselect.documents._lean.decode_node_lax`, which marks it
(``LeanNode.numeric_strings``; the table counts them). Only a value that cannot be read as a
number rejects the node. The typed whole-page fast path is unchanged for pages without
numeric strings.

With ``validate="full"`` every node is also parsed by the full model
(``nodeselect.documents.parse_node``), which is slower but rejects a fault in any field.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final, Literal

import attrs
import msgspec

from nodeselect.documents import (
    LeanNode,
    ProvedFacts,
    RejectedNode,
    decode_node,
    decode_node_lax,
    decode_page,
    parse_node,
)
from nodeselect.errors import DocumentError, InvalidResponseError, ProtocolViolationError
from nodeselect.fetch._result import FetchedNode, Rejected, RejectedDocument

__all__ = ["DecodedPage", "Validate", "decode_body"]

Validate = Literal["lean", "full"]

_AT: Final = re.compile(r"^(.*?)\s*-\s*at `\$(.*)`$", re.DOTALL)


class _UuidOnly(msgspec.Struct):
    uuid: Any = None


_uuid_decoder = msgspec.json.Decoder(_UuidOnly)


@attrs.frozen
class DecodedPage:
    """One decoded page.

    Attributes:
        nodes: the nodes that decoded, in page order.
        rejected: the nodes that did not.
        uuids: every uuid on the page in order (rejected ones too, when readable), for the
            consistency checks.
        total / page / limit: the envelope's numbers.
        nbytes: the body's size.
    """

    nodes: list[FetchedNode]
    rejected: list[Rejected]
    uuids: list[str]
    total: int
    page: int
    limit: int
    nbytes: int


class _TypedPage(msgspec.Struct):
    data: list[LeanNode]


_typed_page_decoder: Final = msgspec.json.Decoder(_TypedPage)


#: msgspec and the json module recurse once per level of nesting, up to Python's recursion
#: limit: 1,000 levels (2 KB) raise RecursionError, which is caught and reported as this.
_DEPTH_REASON: Final = "JSON nested too deep for the decoder (a node document nests about 6 levels)"


def _uuid_of(raw: bytes) -> str | None:
    try:
        uuid_val = _uuid_decoder.decode(raw).uuid
    except (msgspec.DecodeError, RecursionError):
        return None
    return uuid_val if isinstance(uuid_val, str) else None


def _bad_utf8_path(raw: bytes, base: str) -> str:
    """The JSON path of the first string holding invalid UTF-8 (read with surrogate escapes,
    which turn each bad byte into a lone surrogate), else ``base``."""
    try:
        value = json.loads(raw.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError):
        return base
    stack: list[tuple[str, Any]] = [(base, value)]
    while stack:
        path, v = stack.pop()
        if isinstance(v, str):
            if any("\udc80" <= c <= "\udcff" for c in v):
                return path
        elif isinstance(v, dict):
            items = list(v.items())
            for k, sub in reversed(items):
                if any("\udc80" <= c <= "\udcff" for c in k):
                    return f"{path}.<key>"
                stack.append((f"{path}.{k}", sub))
        elif isinstance(v, list):
            stack.extend((f"{path}[{j}]", sub) for j, sub in reversed(list(enumerate(v))))
    return base


def _reject(index: int, raw: bytes, lean_error: Exception | None) -> Rejected:
    """A rejected node with the canonical message (``parse_node``) or msgspec's, re-pathed."""
    uuid = _uuid_of(raw)
    base = f"data[{index}]"
    if isinstance(lean_error, RecursionError):
        return RejectedDocument(index, uuid, DocumentError(base, _DEPTH_REASON))
    if isinstance(lean_error, msgspec.DecodeError) and not isinstance(
        lean_error, msgspec.ValidationError
    ):
        if "UTF-8" in str(lean_error):
            path = _bad_utf8_path(raw, base)
            reason = "a string holds bytes that are not valid UTF-8"
        else:
            path, reason = base, f"not valid JSON ({lean_error})"
        return RejectedDocument(index, uuid, DocumentError(path, reason))
    try:
        parse_node(json.loads(raw), path=base)
    except DocumentError as exc:
        return RejectedNode(index, uuid, exc)
    except (ValueError, RecursionError):
        return RejectedDocument(index, uuid, DocumentError(base, "does not parse"))
    text = str(lean_error) if lean_error is not None else "does not parse"
    m = _AT.match(text)
    if m is not None:
        reason, sub = m.group(1), m.group(2)
        path = f"data[{index}]{sub}"
    else:
        reason, path = text, f"data[{index}]"
    return RejectedDocument(index, uuid, DocumentError(path, reason))


def _decode_tolerant(data: bytes) -> tuple[LeanNode | None, Exception | None]:
    """The node strictly, else with numeric strings read as numbers, else its error (a
    ``DecodeError`` for invalid UTF-8, a ``RecursionError`` for deep nesting)."""
    try:
        return decode_node(data), None
    except msgspec.ValidationError:
        pass
    except (msgspec.DecodeError, RecursionError) as exc:
        return None, exc
    try:
        return decode_node_lax(data), None
    except msgspec.ValidationError as exc:
        return None, exc


def decode_body(
    body: bytes,
    facts: ProvedFacts,
    *,
    validate: Validate = "lean",
    max_items: int | None = None,
) -> DecodedPage:
    """Decode a page body; nodes carry ``facts``.

    Raises:
        InvalidResponseError: the body is not a List Nodes page (truncated, not JSON, wrong
            envelope) - the request should be retried.
        ProtocolViolationError: more than ``max_items`` nodes on the page (the request's
            ``limit``), a negative total, or JSON nested deeper than the page envelope allows
            - not retried.
    """
    try:
        page = decode_page(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise InvalidResponseError(
            f"the response body ({len(body)} bytes) is not a List Nodes page: {exc}; "
            'expected {"data": [...], "limit": int, "page": int, "total": int}'
        ) from None
    except RecursionError:
        raise ProtocolViolationError(
            f"the response body ({len(body)} bytes) is {_DEPTH_REASON}", limit="depth"
        ) from None
    if max_items is not None and len(page.data) > max_items:
        raise ProtocolViolationError(
            f"the page holds {len(page.data)} nodes but the request asked for limit="
            f"{max_items}: the server does not page as documented (at most `limit` nodes)",
            limit="limit",
        )
    if page.total < 0 or (page.total < len(page.data) and page.page == 1):
        raise ProtocolViolationError(
            f"the page claims total={page.total} with {len(page.data)} nodes on page "
            f"{page.page}: a total is at least the nodes on the first page",
            limit="total",
        )
    if validate == "lean":
        # Fast path: the whole page typed in one call (several times faster than node by node);
        # a page holding a bad node falls through to the node-by-node path that isolates it.
        try:
            typed = _typed_page_decoder.decode(body).data
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            pass
        else:
            nodes = [
                FetchedNode(lean.uuid, lean, bytes(raw), facts)
                for lean, raw in zip(typed, page.data, strict=True)
            ]
            uuids = [lean.uuid for lean in typed]
            return DecodedPage(nodes, [], uuids, page.total, page.page, page.limit, len(body))
    nodes = []
    rejected: list[Rejected] = []
    uuids = []
    for i, raw in enumerate(page.data):
        data = bytes(raw)
        lean, error = _decode_tolerant(data)
        if lean is None:
            rej = _reject(i, data, error)
            rejected.append(rej)
            if rej.uuid is not None:
                uuids.append(rej.uuid)
            continue
        if validate == "full":
            try:
                parse_node(json.loads(data), path=f"data[{i}]")
            except DocumentError as exc:
                rejected.append(RejectedNode(i, lean.uuid, exc))
                uuids.append(lean.uuid)
                continue
            except RecursionError:
                error_ = DocumentError(f"data[{i}]", _DEPTH_REASON)
                rejected.append(RejectedDocument(i, lean.uuid, error_))
                uuids.append(lean.uuid)
                continue
        nodes.append(FetchedNode(lean.uuid, lean, data, facts))
        uuids.append(lean.uuid)
    return DecodedPage(nodes, rejected, uuids, page.total, page.page, page.limit, len(body))
