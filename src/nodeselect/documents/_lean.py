"""The lean, typed view of a node document: only what the node table and placement read.

Decoding a page into these msgspec structs is 6-9x faster than ``json.loads`` into dicts,
because every other field of the ~5 KB document is skipped without being built. Every field is
optional or nullable, because real fleets omit and null them.

Numbers (docs/units.md, "Tolerant numbers"): the structs hold ``int | float``. A node whose
numbers are written as JSON strings (``"32"``, ``"0.45"``, ``"1e3"``) is decoded by
:func:`decode_node_lax`, which reads each such string as the number (msgspec's non-strict
mode: the JSON number grammar inside the quotes) and marks the node (``numeric_strings``).
A string that is not a number (``"abc"``, ``" 1e3 "``, ``"inf"``) in a field the table reads
rejects the node with its JSON path; a boolean, object or list where a number belongs is not a
number in any reading and rejects the node too. Fields read only as *evidence* for unit
inference (``ramTotal``, ``current_hardware.memory.ram_bytes_total``,
``current_hardware.gpus[].vram_bytes_total``) accept anything: what is not a number or a
numeric string is simply no evidence, so they never cost a node. The structs are ``gc=False``: a
decoded document cannot form a reference cycle, and leaving 100k nodes' structs out of the
cyclic garbage collector's scans more than doubled page decoding speed.

Bounds: a number the table reads is at most :data:`MAX_MAGNITUDE` in size, a CPU's
``num_cores`` in ``0..MAX_CORES``, ``cpus`` at most :data:`MAX_CPUS` long; a node past them is
rejected with the path (``data[3].cpus[0].num_cores``), never an ``OverflowError`` in the table.

Units (see docs/units.md): ``*_gb`` fields are GB as the API reports them and ``*_bytes_*``
fields bytes; the reference gives **no** unit for telemetry (``metadata.*``), so the structs
keep telemetry values as sent and the table infers their units per fleet
(:mod:`nodeselect.table._units`). ``timestamp_ms`` is Unix epoch milliseconds.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Final

import msgspec

__all__ = [
    "MAX_CORES",
    "MAX_CPUS",
    "MAX_MAGNITUDE",
    "LeanCpu",
    "LeanDisk",
    "LeanGpu",
    "LeanHardware",
    "LeanHardwareEvent",
    "LeanHardwareGpu",
    "LeanHardwareMemory",
    "LeanMetadata",
    "LeanNode",
    "LeanOS",
    "LeanPage",
    "LeanRam",
    "LeanSoftware",
    "LeanTelemetryGpu",
    "LeanVram",
    "decode_node",
    "decode_node_lax",
    "decode_page",
]

#: The largest magnitude of a number the table reads (a node holding a bigger one is rejected
#: with the field's path): far above any real GB, byte count, load or epoch millisecond, and far
#: below float32's limit (3.4e38) and int64's (9.2e18), so no column ever overflows.
MAX_MAGNITUDE: Final = 10**18
#: The most cores one CPU entry may report, and the most CPU entries a node may list: their
#: product stays inside the table's int32 core count.
MAX_CORES: Final = 2**20
MAX_CPUS: Final = 256

Number = (
    Annotated[int, msgspec.Meta(ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE)]
    | Annotated[float, msgspec.Meta(ge=-float(MAX_MAGNITUDE), le=float(MAX_MAGNITUDE))]
)
Cores = Annotated[int, msgspec.Meta(ge=0, le=MAX_CORES)]
#: An evidence-only value: anything JSON holds; only numbers and numeric strings are used.
Evidence = Any


class LeanCpu(msgspec.Struct, frozen=True, gc=False):
    name: str | None = None
    num_cores: Cores | None = None


class LeanGpu(msgspec.Struct, frozen=True, gc=False):
    name: str | None = None
    vram_gb_available: Number | None = None
    vram_gb_max: Number | None = None


class LeanDisk(msgspec.Struct, frozen=True, gc=False):
    available_capacity_gb: Number | None = None
    max_capacity_gb: Number | None = None


class LeanRam(msgspec.Struct, frozen=True, gc=False):
    memory_gb_available: Number | None = None
    memory_gb_max: Number | None = None


class LeanVram(msgspec.Struct, frozen=True, gc=False):
    free: Number | None = None  # unit inferred per fleet (bytes / MiB / GB)
    total: Number | None = None


class LeanTelemetryGpu(msgspec.Struct, frozen=True, gc=False):
    load: Number | None = None  # unit inferred per fleet (fraction / percent)
    name: str | None = None
    vram: LeanVram | None = None


class LeanGpuMetrics(msgspec.Struct, frozen=True, gc=False):
    gpus: list[LeanTelemetryGpu] | None = None
    average: Number | None = None


class LeanCpuMetrics(msgspec.Struct, frozen=True, gc=False):
    average: Number | None = None


class LeanRamMetrics(msgspec.Struct, frozen=True, gc=False):
    free: Number | None = None  # unit inferred per fleet (bytes / MiB / GB)
    total: Number | None = None


class LeanMetadata(msgspec.Struct, frozen=True, gc=False):
    cpu: LeanCpuMetrics | None = None
    gpu: LeanGpuMetrics | None = None
    ram: LeanRamMetrics | None = None


class LeanHardwareEvent(msgspec.Struct, frozen=True, gc=False):
    timestamp_ms: Number | None = None
    created_at: str | None = None
    metadata: LeanMetadata | None = None


class LeanOS(msgspec.Struct, frozen=True, gc=False):
    architecture: str | None = None
    brand: str | None = None
    name: str | None = None
    version: str | None = None


class LeanHardwareGpu(msgspec.Struct, frozen=True, gc=False):
    vram_bytes_total: Evidence = None  # bytes (evidence for the VRAM telemetry unit)


class LeanHardwareMemory(msgspec.Struct, frozen=True, gc=False):
    ram_bytes_total: Evidence = None  # bytes (evidence for the RAM telemetry unit)


class LeanHardware(msgspec.Struct, frozen=True, gc=False):
    operating_system: LeanOS | None = None
    gpus: list[LeanHardwareGpu] | None = None
    memory: LeanHardwareMemory | None = None


class LeanDriver(msgspec.Struct, frozen=True, gc=False):
    version: str | None = None


class LeanSoftware(msgspec.Struct, frozen=True, gc=False):
    cached_image_tags: list[str] | None = None
    nvidia_driver: LeanDriver | None = None
    operating_system: LeanOS | None = None


class LeanNode(msgspec.Struct, frozen=True, gc=False):
    """The fields of a node document that scoring and placement use."""

    uuid: str
    name: str | None = None
    reputation: Number | None = None
    created_at: str | None = None
    last_seen_at: str | None = None
    cpus: Annotated[list[LeanCpu], msgspec.Meta(max_length=MAX_CPUS)] | None = None
    gpus: list[LeanGpu] | None = None
    hard_drives: list[LeanDisk] | None = None
    rams: list[LeanRam] | None = None
    ramTotal: Evidence = None  # noqa: N815 - the API's own spelling; evidence only
    latest_hardware_event: LeanHardwareEvent | None = None
    current_hardware: LeanHardware | None = None
    current_software: LeanSoftware | None = None
    operating_system: LeanOS | None = None
    operator_account_uuid: str | None = None
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    suspended_at: str | None = None
    deleted_at: str | None = None
    #: 1 when some of the node's numbers arrived as JSON strings (set by the lax decode; the
    #: JSON name, with an invisible separator, does not occur in real documents).
    numeric_strings: int = msgspec.field(default=0, name="\u2063nodeselect:numeric_strings")


class LeanPage(msgspec.Struct, frozen=True, gc=False):
    """The page envelope with each node kept as raw JSON, decoded one by one later."""

    data: list[msgspec.Raw]
    limit: int
    page: int
    total: int


_page_decoder = msgspec.json.Decoder(LeanPage)
_node_decoder = msgspec.json.Decoder(LeanNode)
_lax_node_decoder = msgspec.json.Decoder(LeanNode, strict=False)
#: A quoted non-finite number: msgspec's non-strict mode reads ``"inf"``/``"nan"`` as floats,
#: which nodeselect refuses (an infinite free VRAM would fit every job).
_NON_FINITE: Final = re.compile(rb'"\s*[-+]?(?:inf(?:inity)?|nan)\s*"', re.IGNORECASE)


def decode_page(body: bytes) -> LeanPage:
    """Decode a page envelope, keeping each node as raw JSON (raises ``msgspec.DecodeError``)."""
    return _page_decoder.decode(body)


def decode_node(raw: bytes | msgspec.Raw) -> LeanNode:
    """Decode one node document (raises ``msgspec.ValidationError`` with a ``$.path``)."""
    return _node_decoder.decode(raw)


def decode_node_lax(raw: bytes) -> LeanNode:
    """Decode one node document whose numbers may be JSON strings (``"32"``, ``"1e3"``).

    Each numeric string is read as its number; the result has ``numeric_strings == 1``.
    Raises ``msgspec.ValidationError`` (with a ``$.path``) for a string that is not a finite
    number in the JSON number grammar, and for booleans, objects or lists where a number
    belongs.
    """
    lean = _lax_node_decoder.decode(raw)
    if _NON_FINITE.search(raw) is not None and _has_non_finite(lean):
        raise msgspec.ValidationError(
            "Expected a finite number, got a non-finite numeric string - at `$`"
        )
    return msgspec.structs.replace(lean, numeric_strings=1)


def _has_non_finite(value: object) -> bool:
    """Whether any float inside a decoded struct is NaN or infinite."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, msgspec.Struct):
        return any(_has_non_finite(v) for v in msgspec.structs.astuple(value))
    if isinstance(value, list):
        return any(_has_non_finite(v) for v in value)
    return False
