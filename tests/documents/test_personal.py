"""Personal data in free text is found in linear time, exactly as the first patterns found it."""

from __future__ import annotations

import json
from typing import Any

import attrs
import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodeselect.documents import HIDDEN, blank_personal, node_to_json, parse_node, redact_text
from reference_redact import reference_redact
from strategies_documents import node_documents

# The characters the patterns care about, so that addresses (and near misses) are common.
_ALPHABET = st.sampled_from([*"ab0x19.:@-_+%ZZ  \n", "é", "f", "c", "om"])
texts = st.lists(_ALPHABET, max_size=60).map("".join)


@settings(max_examples=200, deadline=None)
@given(texts)
def test_redact_text_equals_the_reference_patterns(text: str) -> None:
    """On any short text, redact_text replaces exactly what the original patterns replaced."""
    assert redact_text(text) == reference_redact(text)


def test_every_kind_of_personal_data_is_hidden() -> None:
    """An e-mail, a wallet, an IPv4 and an IPv6 address are hidden; a time of day is not."""
    text = "ops@example.com 0x" + "ab" * 20 + " 10.0.0.1 fe80::1 at 12:30"
    out = redact_text(text)
    assert out == f"{HIDDEN} {HIDDEN} {HIDDEN} {HIDDEN} at 12:30"


def test_a_200_kb_name_is_redacted_whole() -> None:
    """A 200 KB name without and with an address (the quadratic pattern took 62 s on it):
    the address at the end is found and nothing else changes."""
    name = "a" * 200_000
    assert redact_text(name) == name
    assert redact_text(name + "@example.com") == HIDDEN
    assert redact_text(name + " x@example.com") == name + " " + HIDDEN


def _without_personal(model: Any) -> Any:
    """The model with every field its metadata marks personal set to None (by the model,
    independently of the key tree blank_personal walks)."""
    if isinstance(model, tuple):
        return tuple(_without_personal(m) for m in model)
    if not attrs.has(type(model)):
        return model
    changes = {}
    for f in attrs.fields(type(model)):
        value = getattr(model, f.name)
        if f.metadata.get("personal"):
            changes[f.name] = None
        elif attrs.has(type(value)) or isinstance(value, tuple):
            changes[f.name] = _without_personal(value)
    return attrs.evolve(model, **changes)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(node_documents)
def test_blank_personal_nulls_exactly_the_personal_fields(doc: dict[str, Any]) -> None:
    """blank_personal(raw) parses to the same node with every personal field None."""
    raw = msgspec.json.encode(doc)
    blanked = blank_personal(raw)
    expected = node_to_json(_without_personal(parse_node(json.loads(raw))))
    assert node_to_json(parse_node(json.loads(blanked))) == expected


def test_blank_personal_hides_an_operator_e_mail_and_keeps_the_rest() -> None:
    """A real-shaped document: e-mail, wallet, IPs and user names go; name and GPUs stay."""
    doc = {
        "uuid": "u1",
        "name": "rig-7",
        "ipv4_address": "10.0.0.1",
        "gpus": [{"name": "A100"}],
        "operator_account": {
            "email": "ops@example.com",
            "operator_profile": {"wallet_address": "0x" + "ab" * 20},
            "user_profile": {"name": "Ada", "oauth_subject": "s-1"},
        },
    }
    out = json.loads(blank_personal(msgspec.json.encode(doc)))
    assert out["name"] == "rig-7"
    assert out["gpus"] == [{"name": "A100"}]
    assert out["ipv4_address"] is None
    assert out["operator_account"]["email"] is None
    assert out["operator_account"]["operator_profile"]["wallet_address"] is None
    assert out["operator_account"]["user_profile"] == {"name": None, "oauth_subject": None}
    assert blank_personal(b"[1, 2]") == b"[1, 2]"
