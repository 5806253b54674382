"""Personal data in free text (e-mail, IPv4/IPv6 and wallet addresses), found in linear time.

Node names and other operator-controlled strings can hold anything, at any length. The
obvious e-mail pattern ``[A-Za-z0-9._%+-]+@...`` is quadratic: on a 200 KB name without an
``@`` the regex engine starts a match at every position and scans to the end from each (62 s).
Here the local part may only *start* where a run of local-part characters starts (a
lookbehind) and is matched possessively (``++``, Python 3.11): each run is scanned once. That
finds the same addresses: a later start inside the same run reaches the same ``@`` and the same
domain, so it matches only if the run's start does. The other patterns have a bounded width.

A node document's personal *fields* (the model marks them: e-mail, wallet, IP and MAC addresses,
user names, OAuth subject) are blanked by key (:func:`blank_personal`), which needs no pattern
at all: one typed-free decode, a walk along the known paths, one encode.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any, Final

import msgspec

from nodeselect.documents._convert import _specs
from nodeselect.documents._models import Node

__all__ = ["HIDDEN", "blank_personal", "personal_keys", "redact_text"]

#: What replaces a piece of personal data.
HIDDEN: Final = "<hidden>"

_EMAIL: Final = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]++@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_WALLET: Final = re.compile(r"\b0x[0-9a-fA-F]{40}\b")
_IPV4: Final = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
# At least two colons between hex groups (so "12:30" times are left alone).
_IPV6: Final = re.compile(r"(?<![\w:])(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}(?![\w:])")


def redact_text(text: str, hidden: str = HIDDEN) -> str:
    """``text`` with e-mail addresses, wallet addresses and IPv4/IPv6 addresses replaced by
    ``hidden``; linear in ``len(text)`` (a 200 KB string takes milliseconds)."""
    # Each pattern needs a character that most text lacks: a C-speed search skips it.
    if "@" in text:
        text = _EMAIL.sub(hidden, text)
    if "0x" in text:
        text = _WALLET.sub(hidden, text)
    if "." in text:
        text = _IPV4.sub(hidden, text)
    if text.count(":") >= 2:
        text = _IPV6.sub(lambda m: hidden if m.group(0).count(":") >= 2 else m.group(0), text)
    return text


_Tree = dict[str, Any]  # key -> True (personal) or the subtree of an object / list of objects


def _tree_of(cls: type) -> _Tree:
    out: _Tree = {}
    specs, _ = _specs(cls)
    for spec in specs:
        if spec.personal:
            out[spec.key] = True
        elif spec.kind in ("obj", "objs") and spec.cls is not None:
            sub = _tree_of(spec.cls)
            if sub:
                out[spec.key] = sub
    return out


@cache
def _tree() -> _Tree:
    return _tree_of(Node)


def personal_keys() -> dict[str, Any]:
    """The personal fields of a node document as a tree of JSON keys: ``True`` marks a
    personal value, a dict a sub-object (or list of sub-objects) holding some."""
    return _tree()


def _blank(value: Any, tree: _Tree) -> None:
    if isinstance(value, list):
        for item in value:
            _blank(item, tree)
        return
    if not isinstance(value, dict):
        return
    for key, sub in tree.items():
        if key not in value:
            continue
        if sub is True:
            value[key] = None
        else:
            _blank(value[key], sub)


def blank_personal(raw: bytes) -> bytes:
    """A node document (raw JSON) with every personal field set to ``null``, by key; every
    other byte of meaning kept (key order, numbers, unknown fields). A document that is not a
    JSON object comes back unchanged."""
    try:
        doc = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return raw
    if not isinstance(doc, dict):
        return raw
    _blank(doc, _tree())
    return msgspec.json.encode(doc)
