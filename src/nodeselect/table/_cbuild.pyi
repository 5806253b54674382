"""Types of the optional C reader of the table build (``_cbuild.c``)."""

from typing import Any

class Fallback(Exception):  # noqa: N818 - a signal, not an error
    """A chunk holds values the C reader leaves to the Python builder."""

def read_chunk(
    nodes: Any,
    block: Any,
    flags: Any,
    image_bit: dict[str, int],
    agree: Any,
) -> tuple[Any, ...]:
    """Read a chunk of nodes: see ``_cbuild.c``."""
