"""The personal-data patterns as first written (quadratic e-mail pattern): the truth that
``nodeselect.documents.redact_text`` must equal on inputs small enough for it."""

from __future__ import annotations

import re

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
WALLET = re.compile(r"\b0x[0-9a-fA-F]{40}\b")
IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}(?![\w:])")


def reference_redact(text: str, hidden: str = "<hidden>") -> str:
    """Replace e-mail, wallet, IPv4 and IPv6 addresses, one pattern after the other."""
    text = EMAIL.sub(hidden, text)
    text = WALLET.sub(hidden, text)
    text = IPV4.sub(hidden, text)
    return IPV6.sub(lambda m: hidden if m.group(0).count(":") >= 2 else m.group(0), text)
