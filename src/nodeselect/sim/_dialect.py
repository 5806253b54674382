"""Dialects: one simulated server per reading of what the API reference leaves open.

The reference (``shared/reference/list-nodes-api.txt``) documents the shape of a node and the
query parameters, but not the units of telemetry values, the precision of timestamps, the order
among equal sort keys, nor whether a number may arrive as a JSON string. An independent server
written from the same text may read each of these differently, so the simulator serves every
plausible reading, and the tests run the client and the engine against each of them.

A :class:`Dialect` is a property of the *fleet* (how its documents are written and how its
timestamps are stored) and of the *server* (how it parses ranges). ``Dialect()`` is the
simulator's historical reading; :data:`DIALECTS` names one dialect per reading for the tests.
"""

from __future__ import annotations

from typing import Final, Literal

import attrs

__all__ = [
    "DIALECTS",
    "BulkRegistration",
    "ContentEncoding",
    "Dialect",
    "LoadUnit",
    "SizeUnit",
    "TimePrecision",
]

TimePrecision = Literal["s", "ms", "us"]
SizeUnit = Literal["bytes", "MiB", "GB"]
LoadUnit = Literal["fraction", "percent"]
ContentEncoding = Literal["identity", "gzip", "deflate", "raw-deflate"]


def _non_negative_int(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{attr.name} must be a whole number >= 0, got {value!r}")


def _share(_inst: object, attr: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attr.name} must be a share in [0, 1], got {value!r}")


@attrs.frozen
class BulkRegistration:
    """A burst of nodes registered within a few seconds (tie groups larger than a page).

    Attributes:
        nodes: how many of the fleet's nodes belong to the burst.
        seconds: the span of their ``created_at`` values; with second precision every second
            holds about ``nodes / seconds`` nodes with one equal ``created_at``.
    """

    nodes: int = attrs.field(default=3000, validator=_non_negative_int)
    seconds: int = attrs.field(default=3, validator=_non_negative_int)


@attrs.frozen
class Dialect:
    """One reading of everything the API reference leaves open.

    Attributes:
        time_precision: the precision the server *stores* ``created_at``/``last_seen_at`` with
            and filters on (``s``, ``ms`` or ``us``).
        written_precision: the precision timestamps are *written* with in documents;
            ``None`` = as stored. Coarser than stored means a written value is truncated.
        time_suffix: ``"Z"`` or ``"+00:00"`` at the end of every written timestamp.
        strict_ranges: the server accepts only the documented range form ``START,END`` with
            both ends present (an empty side is a 422).
        ram_unit: unit of ``metadata.ram.free/total`` and
            ``metadata.storage.hard_drives[].free_capacity/total_capacity``.
        vram_unit: unit of ``metadata.gpu.gpus[].vram.free/total``.
        load_unit: unit of ``metadata.gpu.gpus[].load``, ``metadata.gpu.average``,
            ``metadata.cpu.average`` and ``metadata.cpu.cores[]``.
        numeric_strings: share of nodes whose numeric fields (``ramTotal``, ``*_gb_*``,
            ``num_cores``, ``reputation``, telemetry values) are written as JSON strings
            such as ``"32"``.
        bulk: a burst registration, or ``None``.
        content_encoding: how the server compresses a page when the request's
            ``Accept-Encoding`` allows it (the reference says nothing of compression):
            ``identity`` (never), ``gzip``, ``deflate`` (zlib-wrapped, as RFC 9110 says) or
            ``raw-deflate`` (a bare deflate stream under ``Content-Encoding: deflate``, as
            some servers send it).
    """

    time_precision: TimePrecision = "s"
    written_precision: TimePrecision | None = None
    time_suffix: Literal["Z", "+00:00"] = "Z"
    strict_ranges: bool = False
    ram_unit: SizeUnit = "bytes"
    vram_unit: SizeUnit = "MiB"
    load_unit: LoadUnit = "fraction"
    numeric_strings: float = attrs.field(default=0.0, validator=_share)
    bulk: BulkRegistration | None = None
    content_encoding: ContentEncoding = "identity"

    def describe(self) -> str:
        """A short label for test ids and logs, naming only what differs from the default."""
        default = Dialect()
        parts = [
            f"{a.name}={getattr(self, a.name)}"
            for a in attrs.fields(Dialect)
            if getattr(self, a.name) != getattr(default, a.name)
        ]
        return ",".join(parts) or "default"


#: One dialect per reading the tests run (name -> dialect).
DIALECTS: Final[dict[str, Dialect]] = {
    "default": Dialect(),
    "ms-z": Dialect(time_precision="ms"),
    "us-offset": Dialect(time_precision="us", time_suffix="+00:00"),
    "us-written-ms": Dialect(time_precision="us", written_precision="ms"),
    "us-written-s": Dialect(time_precision="us", written_precision="s"),
    "strict-ranges-us": Dialect(time_precision="us", strict_ranges=True),
    "ram-gb-load-percent": Dialect(ram_unit="GB", load_unit="percent"),
    "ram-mib-vram-bytes": Dialect(ram_unit="MiB", vram_unit="bytes"),
    "vram-gb": Dialect(vram_unit="GB"),
    "numeric-strings": Dialect(numeric_strings=0.3),
    "bulk": Dialect(bulk=BulkRegistration(nodes=600, seconds=3)),
    "gzip": Dialect(content_encoding="gzip"),
    "raw-deflate": Dialect(content_encoding="raw-deflate"),
}
