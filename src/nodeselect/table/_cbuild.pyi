"""Types of the optional C reader of the table build (``_cbuild.c``)."""

from typing import Any

VERSION: int

class Fallback(Exception):  # noqa: N818 - a signal, not an error
    """A chunk holds values the C reader leaves to the Python builder."""

def read_chunk(
    nodes: Any,
    block: Any,
    flags: Any,
    image_bit: dict[str, int],
    agree: Any,
    luts: tuple[dict[Any, int], dict[Any, int], dict[Any, int], dict[Any, int]],
    names: dict[Any, int],
    operators: dict[Any, int],
    start: int,
    slots: dict[tuple[Any, ...], int],
    facts: dict[tuple[Any, ...], int],
    uuids: set[str],
    ints: Any,
    times: Any,
) -> tuple[Any, ...]:
    """Read and code a chunk of nodes: see ``_cbuild.c``."""

def codes(lut: dict[Any, int], values: list[Any], out: Any) -> int:
    """``out[i] = lut.get(values[i], -1)`` (``out``: int32 or int64); the count of -1s."""

def positions(first: dict[Any, int], values: list[Any], start: int, out: Any) -> None:
    """``out[i] = first.setdefault(values[i], start + i)``."""

def repeat(values: Any, counts: Any, out: Any, itemsize: int) -> None:
    """``out[:] = numpy.repeat(values, counts)`` on contiguous buffers, the GIL released."""

def segment_counts(mask: Any, offsets: Any, out: Any) -> None:
    """``out[i]``: nonzero bytes of ``mask[offsets[i]:offsets[i + 1]]``, the GIL released."""

def reaching(lower: Any, upper: Any, pos: Any, bounds: Any, k: int, out: Any, direct: bool) -> int:
    """The pairs of each segment that can reach its top ``k`` into ``out``; how many."""
