"""Page decoding: the fast whole-page path and the isolating node-by-node path agree."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect.documents._facts import ProvedFacts
from nodeselect.fetch._decode import decode_body
from strategies_documents import node_documents

FACTS = ProvedFacts(status="AVAILABLE")


def _page(docs: list[dict[str, Any]]) -> bytes:
    return msgspec.json.encode({"data": docs, "limit": 50, "page": 1, "total": len(docs)})


def _unique(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**d, "uuid": f"node-{i}"} for i, d in enumerate(docs)]


@settings(max_examples=40, deadline=None)
@given(st.lists(node_documents, max_size=6).map(_unique))
def test_a_clean_page_keeps_every_node_as_received_with_its_facts(
    docs: list[dict[str, Any]],
) -> None:
    """Every node of a valid page comes back, in order, with its bytes as sent and the facts."""
    page = decode_body(_page(docs), FACTS)
    assert [n.uuid for n in page.nodes] == [d["uuid"] for d in docs]
    assert page.uuids == [d["uuid"] for d in docs]
    assert not page.rejected
    for node, doc in zip(page.nodes, docs, strict=True):
        assert msgspec.json.decode(node.raw) == msgspec.json.decode(msgspec.json.encode(doc))
        assert node.facts == FACTS


@settings(max_examples=40, deadline=None)
@given(st.lists(node_documents, min_size=1, max_size=6).map(_unique), st.data())
def test_one_bad_node_is_rejected_at_its_path_and_the_rest_are_kept(
    docs: list[dict[str, Any]], data: st.DataObject
) -> None:
    """A string where a number belongs rejects that node only, naming data[i] and the field."""
    bad = data.draw(st.integers(0, len(docs) - 1))
    docs[bad] = {**docs[bad], "reputation": "high"}
    page = decode_body(_page(docs), FACTS)
    assert [n.uuid for n in page.nodes] == [d["uuid"] for i, d in enumerate(docs) if i != bad]
    assert len(page.rejected) == 1
    rejected = page.rejected[0]
    assert rejected.index == bad
    assert rejected.uuid == docs[bad]["uuid"]
    assert rejected.error.path == f"data[{bad}].reputation"
