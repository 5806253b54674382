"""Personal data in free text is found in linear time, exactly as the first patterns found it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect.documents import HIDDEN, redact_text
from reference_redact import reference_redact

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
