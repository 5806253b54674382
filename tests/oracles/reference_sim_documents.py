"""The plain-dict node document builder the simulator started with: the reference that
``nodeselect.sim._documents.encode_document`` must match byte for byte (after
``msgspec.json.encode``). Kept verbatim apart from the dialect (issue 10), which is applied
independently of the fast encoder: times are epoch microseconds in the row and written with
``datetime`` (``_when``); telemetry units and numeric strings are applied to the finished
dict by ``_apply_dialect``. With ``Dialect()`` the output is the original builder's.
"""

from __future__ import annotations

import bisect
import itertools
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, NamedTuple, TypeVar

from nodeselect.sim._catalog import (
    CPUS_AARCH64,
    CPUS_CONSUMER,
    CPUS_SERVER,
    DOCKER_VERSIONS,
    DRIVERS_MODERN,
    DRIVERS_OLD,
    GPU_MODELS,
    IMAGES_AMD,
    IMAGES_CPU,
    IMAGES_GPU,
    OS_RELEASES,
    SUSPENSION_REASONS,
    ZERNET_VERSIONS,
)
from nodeselect.sim._dialect import Dialect

__all__ = ["NodeRow", "OperatorRow", "build_document", "iso", "node_rng", "operator_account"]

T = TypeVar("T")
GIB: Final = 2**30
MIB: Final = 2**20
US: Final = 10**6
DEFAULT: Final = Dialect()
_ONLINE: Final = frozenset({"AVAILABLE", "ASSIGNED", "PREPARING", "WORKING", "STOPPING"})
_BUSY: Final = frozenset({"ASSIGNED", "WORKING", "RESOURCE_BUSY", "STOPPING"})
_MODEL_CUM: Final = list(itertools.accumulate(m[1] for m in GPU_MODELS))
_OS_CUM: Final = list(itertools.accumulate(o[3] for o in OS_RELEASES))
_OLD_CARDS: Final = frozenset(
    {"Tesla T4", "Tesla V100-SXM2-16GB", "NVIDIA GeForce RTX 3060", "NVIDIA GeForce RTX 3090"}
)
_NEW_CARDS: Final = frozenset(
    {
        "NVIDIA GeForce RTX 5090",
        "NVIDIA RTX PRO 6000 Blackwell Workstation Edition",
        "NVIDIA H200",
    }
)
_ARM_OK: Final = frozenset(
    {None, "NVIDIA H100 80GB HBM3", "NVIDIA H200", "NVIDIA L4", "NVIDIA A100-SXM4-80GB"}
)


class OperatorRow(NamedTuple):
    """What a node document says about its operator (shared by all the operator's nodes)."""

    number: int
    uuid: str
    handle: str
    created_at: int


class NodeRow(NamedTuple):
    """The column facts of one node that its document must agree with."""

    node_id: int
    uuid: str
    name: str
    created_at: int
    last_seen_at: int | None
    status: str
    deleted_at: int | None
    malformed: bool
    operator: OperatorRow


def iso(epoch_s: float) -> str:
    """Epoch seconds as the API writes timestamps: ``2023-11-07T05:31:56Z``."""
    days, rest = divmod(int(epoch_s), 86400)
    day = _DAYS.get(days)
    if day is None:
        t = time.gmtime(days * 86400)
        day = _DAYS[days] = f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}T"
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{day}{hours:02d}:{minutes:02d}:{seconds:02d}Z"


_DAYS: dict[int, str] = {}


def node_rng(seed: int, node_id: int) -> random.Random:
    """The per-node generator: depends only on the fleet seed and the insertion id."""
    return random.Random((seed & 0xFFFFFFFF) << 40 | node_id)


def _pick(r: random.Random, seq: Sequence[T]) -> T:
    return seq[int(r.random() * len(seq))]


def _int(r: random.Random, low: int, high: int) -> int:
    return low + int(r.random() * (high - low + 1))


def _hex(r: random.Random, n: int) -> str:
    return f"{r.getrandbits(4 * n):0{n}x}"


def _uuid(r: random.Random) -> str:
    h = f"{r.getrandbits(128) & _UUID_MASK | _UUID_BITS:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_UUID_MASK: Final = ~((0xF << 76) | (0x3 << 62)) & (2**128 - 1)
_UUID_BITS: Final = (0x4 << 76) | (0x2 << 62)


def _when(epoch_us: int, dialect: Dialect) -> str:
    """Epoch microseconds written at the dialect's written precision (truncated) and suffix."""
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=epoch_us)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    precision = dialect.written_precision or dialect.time_precision
    if precision == "ms":
        text += f".{dt.microsecond // 1000:03d}"
    elif precision == "us":
        text += f".{dt.microsecond:06d}"
    return text + dialect.time_suffix


def operator_account(op: OperatorRow, seed: int, dialect: Dialect = DEFAULT) -> dict[str, Any]:
    """The ``operator_account`` object shared by all of an operator's nodes."""
    r = random.Random(f"op:{seed}:{op.number}")
    created = _when(op.created_at * US, dialect)
    updated = _when((op.created_at + _int(r, 0, 86400 * 300)) * US, dialect)
    return {
        "email": f"{op.handle}@example.{_pick(r, ('com', 'org', 'net'))}",
        "object": "account",
        "created_at": created,
        "updated_at": updated,
        "uuid": op.uuid,
        "last_login": updated,
        "consumer_profile": None,
        "operator_profile": {
            "is_active": True,
            "object": "operator_profile",
            "created_at": created,
            "updated_at": updated,
            "uuid": _uuid(r),
            "account_uuid": op.uuid,
            "wallet_address": "0x" + _hex(r, 40),
            "deleted_at": None,
        },
        "user_profile": {
            "email_verified": r.random() < 0.9,
            "object": "user_profile",
            "created_at": created,
            "updated_at": updated,
            "uuid": _uuid(r),
            "account_uuid": op.uuid,
            "name": op.handle,
            "given_name": None,
            "family_name": None,
            "middle_name": None,
            "preferred_username": op.handle,
            "oauth_provider": _pick(r, ("google", "github", None)),
            "oauth_subject": str(r.getrandbits(60)),
        },
        "deleted_at": None,
    }


def build_document(
    row: NodeRow,
    seed: int,
    account_doc: dict[str, Any] | None = None,
    dialect: Dialect = DEFAULT,
) -> dict[str, Any]:
    """The full node document for ``row`` (deterministic for ``(row, seed, dialect)``).

    ``account_doc`` is the operator's :func:`operator_account` when the caller caches it (it
    is then shared, not copied, by the returned document). Row times are epoch microseconds.
    """
    r = node_rng(seed, row.node_id)
    model_name, _, vram_mib, counts, tier = GPU_MODELS[
        bisect.bisect(_MODEL_CUM, r.random() * _MODEL_CUM[-1])
    ]
    u = r.random()
    n_gpus = counts[-1][0]
    for count, weight in counts:
        if u < weight:
            n_gpus = count
            break
        u -= weight
    arm = model_name in _ARM_OK and r.random() < 0.2
    if arm:
        cpu = _pick(r, CPUS_AARCH64)
    elif tier in ("datacenter", "amd") or n_gpus >= 4 or (tier == "cpu" and r.random() < 0.5):
        cpu = _pick(r, CPUS_SERVER)
    else:
        cpu = _pick(r, CPUS_CONSUMER)
    sockets = 2 if cpu in CPUS_SERVER and n_gpus >= 8 else 1
    cores = cpu[1] * sockets
    ram_gb = _pick(r, (16, 32, 64, 128) if tier in ("consumer", "cpu") else (128, 256, 512))
    if n_gpus >= 8:
        ram_gb = _pick(r, (1024, 2048))
    disk_gb = _pick(r, (512, 1000, 2000, 4000) if tier == "consumer" else (2000, 4000, 8000))
    status = row.status
    busy = status in _BUSY

    created_s = row.created_at // US
    last_seen = None if row.last_seen_at is None else row.last_seen_at // US
    hw_updated = created_s + _int(r, 0, 86400 * 30)
    hw_iso = _when(hw_updated * US, dialect)

    gpu_clock = _pick(r, (1395, 1410, 1590, 2235, 2520))
    gpus: list[dict[str, Any]] = []
    tele_gpus: list[dict[str, Any]] = []
    hw_gpus: list[dict[str, Any]] = []
    gpu_ids = _hex(r, 64 * n_gpus) if n_gpus else ""
    for k in range(n_gpus):
        g = gpu_ids[64 * k : 64 * k + 64]
        used_share = r.uniform(0.4, 0.97) if busy else _pick(r, (0.0, 0.0, 0.01, 0.05, 0.2))
        used_mib = int(vram_mib * used_share)
        if used_share == 0.0:
            used_mib = _int(r, 0, 600)  # driver and display overhead
        free_mib = max(vram_mib - used_mib, 0)
        load = round(r.uniform(0.55, 1.0), 2) if busy else round(r.uniform(0.0, 0.08), 2)
        gpus.append(
            {
                "name": model_name,
                "vram_gb_available": round(free_mib / 1024, 1),
                "vram_gb_max": round(vram_mib / 1024),
            }
        )
        tele_gpus.append(
            {"load": load, "name": model_name, "vram": {"free": free_mib, "total": vram_mib}}
        )
        hw_gpus.append(
            {
                "name": model_name,
                "vram_bytes_total": vram_mib * MIB,
                "base_clock_mhz": gpu_clock,
                "device_id": f"GPU-{g[:8]}-{g[8:12]}-{g[12:16]}-{g[16:20]}-{g[20:32]}",
                "gpu_registry_uuid": f"{g[32:40]}-{g[40:44]}-{g[44:48]}-{g[48:52]}-{g[52:64]}",
            }
        )

    ram_free = int(ram_gb * GIB * (r.uniform(0.1, 0.6) if busy else r.uniform(0.6, 0.95)))
    disk_free_gb = round(disk_gb * r.uniform(0.05, 0.9), 1)
    cpu_avg = round(r.uniform(0.3, 0.95) if busy else r.uniform(0.0, 0.15), 3)
    arch = "aarch64" if arm else "x86_64"
    os_brand, os_name, os_version, _ = OS_RELEASES[bisect.bisect(_OS_CUM, r.random() * _OS_CUM[-1])]
    if arm and os_brand == "Microsoft":
        os_brand, os_name, os_version = "Ubuntu", "Ubuntu", "22.04.4 LTS"
    os_doc = {"brand": os_brand, "name": os_name, "version": os_version}

    if model_name is None or tier == "amd":
        driver = None
    elif model_name in _NEW_CARDS:
        driver = DRIVERS_MODERN[-1]
    elif model_name in _OLD_CARDS and r.random() < 0.3:
        driver = _pick(r, DRIVERS_OLD)
    else:
        driver = _pick(r, DRIVERS_MODERN)
    pool: tuple[str, ...]
    if tier == "cpu":
        pool = IMAGES_CPU
    elif tier == "amd":
        pool = IMAGES_AMD
    else:
        pool = IMAGES_GPU
    bits = r.getrandbits(len(pool)) & r.getrandbits(len(pool))  # each image with p = 1/4
    images = sorted(p for j, p in enumerate(pool) if bits >> j & 1)
    zernet = (
        _pick(r, ZERNET_VERSIONS[:2])
        if status == "OUTDATED_CLIENT"
        else _pick(r, ZERNET_VERSIONS[2:])
    )

    node_uuid = row.uuid
    ids = _hex(r, 156)
    hw_uuid = _uuid(r)
    account = row.operator.uuid
    tele_ts = None if last_seen is None else last_seen - _int(r, 0, 90)
    event: dict[str, Any] | None = None
    if tele_ts is not None and r.random() > 0.06:
        metadata: dict[str, Any] = {
            "cpu": {
                "average": cpu_avg,
                "cores": [round(min(1.0, max(0.0, cpu_avg + r.uniform(-0.1, 0.1))), 3)]
                * min(cores, 4),
            },
            "gpu": {
                "gpus": tele_gpus,
                "average": round(sum(g["load"] for g in tele_gpus) / n_gpus, 3) if n_gpus else 0,
            },
            "ram": {"free": ram_free, "total": ram_gb * GIB},
            "storage": {
                "hard_drives": [
                    {
                        "free_capacity": int(disk_free_gb * GIB),
                        "model": _pick(r, ("Samsung SSD 990 PRO 2TB", "KINGSTON SKC3000D2048G")),
                        "name": "/dev/nvme0n1",
                        "total_capacity": disk_gb * GIB,
                    }
                ]
            },
        }
        if r.random() < 0.05:  # partial telemetry: one section missing
            del metadata[_pick(r, ("gpu", "ram", "storage", "cpu"))]
        tele_iso = _when(tele_ts * US, dialect)
        event = {
            "timestamp_ms": tele_ts * 1000 + _int(r, 0, 999),
            "object": "node_hardware_event",
            "created_at": tele_iso,
            "updated_at": tele_iso,
            "uuid": _uuid(r),
            "metadata": metadata,
            "node": node_uuid,
            "node_hardware": hw_uuid,
            "account": account,
        }

    suspended = status != "DELETED" and r.random() < 0.025
    suspension: dict[str, Any] | None = None
    suspended_at: str | None = None
    if suspended:
        start = created_s + _int(r, 3600, 86400 * 60)
        reason, follow_up = _pick(r, SUSPENSION_REASONS)
        suspended_at = _when(start * US, dialect)
        suspension = {
            "started_at": suspended_at,
            "reason": reason,
            "follow_up": follow_up,
            "object": "node_suspension",
            "created_at": suspended_at,
            "updated_at": suspended_at,
            "uuid": _uuid(r),
            "node_uuid": node_uuid,
            "ended_at": None,
            "suspended_by_account_uuid": _uuid(r),
            "unsuspended_by_account_uuid": None,
        }
    updated = max(row.created_at, hw_updated * US, row.last_seen_at or 0, row.deleted_at or 0)
    ip_block = _pick(r, ("192.0.2", "198.51.100", "203.0.113"))
    doc: dict[str, Any] = {
        "name": row.name,
        "reputation": _int(r, 0, 100) if r.random() < 0.3 else _int(r, 70, 100),
        "object": "node",
        "created_at": _when(row.created_at, dialect),
        "updated_at": _when(updated, dialect),
        "cpus": [{"name": cpu[0], "num_cores": cpu[1]} for _ in range(sockets)],
        "gpus": gpus,
        "hard_drives": [
            {
                "available_capacity_gb": disk_free_gb,
                "max_capacity_gb": disk_gb,
                "name": "/dev/nvme0n1",
            }
        ],
        "rams": [{"memory_gb_available": round(ram_free / GIB, 1), "memory_gb_max": ram_gb}],
        "ramTotal": ram_gb,
        "_id": ids[:24],
        "uuid": node_uuid,
        "last_seen_at": None if row.last_seen_at is None else _when(row.last_seen_at, dialect),
        "latest_hardware_event": event,
        "current_hardware": {
            "cpus": [
                {
                    "name": cpu[0],
                    "num_cores": cpu[1],
                    "architecture": arch,
                    "base_clock_mhz": cpu[3],
                    "chipset": None,
                    "device_id": f"cpu{i}",
                    "features": ["avx2", "sse4_2"] if not arm else ["neon", "sve2"],
                    "num_threads_per_core": cpu[2],
                }
                for i in range(sockets)
            ],
            "gpus": hw_gpus,
            "memory": {
                "ram_bytes_total": ram_gb * GIB,
                "base_clock_mhz": 4800,
                "device_id": "mem0",
            },
            "storage": {
                "capacity_bytes_free": int(disk_free_gb * GIB),
                "capacity_bytes_total": disk_gb * GIB,
                "device_id": "nvme0",
            },
            "operating_system": {"architecture": arch, **os_doc},
            "schema_version": 3,
            "object": "node_hardware",
            "created_at": hw_iso,
            "updated_at": hw_iso,
            "uuid": hw_uuid,
            "node": node_uuid,
            "node_uuid": node_uuid,
            "machine_id": ids[24:56],
            "checksum_sha256": ids[56:120],
            "_id": ids[120:144],
        },
        "current_software": {
            "schema_version": 2,
            "object": "node_software",
            "created_at": hw_iso,
            "updated_at": hw_iso,
            "uuid": _uuid(r),
            "node": node_uuid,
            "node_uuid": node_uuid,
            "capabilities": ["docker"] + (["nvidia-container-toolkit"] if driver else []),
            "cached_image_tags": images,
            "docker": {"images": images, "version": _pick(r, DOCKER_VERSIONS)},
            "nvidia_driver": {"version": driver},
            "operating_system": {"architecture": arch, **os_doc},
            "zernet_client": {"version": zernet},
        },
        "ipv4_address": f"{ip_block}.{_int(r, 1, 254)}",
        "ipv6_address": f"2001:db8:{r.getrandbits(16):x}::{r.getrandbits(16):x}"
        if r.random() < 0.4
        else None,
        "mac_address": f"{ids[144:146]}:{ids[146:148]}:{ids[148:150]}:{ids[150:152]}:"
        f"{ids[152:154]}:{ids[154:156]}",
        "operator_account": account_doc or operator_account(row.operator, seed, dialect),
        "operator_account_uuid": account,
        "suspended_at": suspended_at,
        "current_suspension": suspension,
        "deleted_at": None if row.deleted_at is None else _when(row.deleted_at, dialect),
        "operating_system": os_doc,
    }
    _add_warts(doc, r)
    if row.malformed:
        if gpus:
            gpus[0]["vram_gb_available"] = str(gpus[0]["vram_gb_available"])
        else:
            doc["ramTotal"] = str(ram_gb)
    _apply_dialect(doc, dialect, stringly_node(seed, row.node_id, dialect.numeric_strings))
    return doc


def stringly_node(seed: int, node_id: int, share: float) -> bool:
    """The dialect's rule: a node writes numbers as strings with probability ``share``, drawn
    from its own generator seeded by ``numeric-strings:<seed>:<node_id>``."""
    return share > 0 and random.Random(f"numeric-strings:{seed}:{node_id}").random() < share


def _size(n_bytes: int, unit: str) -> int | float:
    if unit == "bytes":
        return n_bytes
    if unit == "MiB":
        return round(n_bytes / MIB)
    return round(n_bytes / GIB, 3)


def _load(value: int | float, percent: bool) -> int | float:
    if not percent:
        return value
    return value * 100 if isinstance(value, int) else round(value * 100, 1)


def _apply_dialect(doc: dict[str, Any], dialect: Dialect, stringly: bool) -> None:
    """Telemetry in the dialect's units, then (for a stringly node) numbers as strings."""
    percent = dialect.load_unit == "percent"
    event = doc["latest_hardware_event"]
    meta = event["metadata"] if event is not None else {}
    if "cpu" in meta:
        cpu = meta["cpu"]
        cpu["average"] = _load(cpu["average"], percent)
        cpu["cores"] = [_load(c, percent) for c in cpu["cores"]]
    if "gpu" in meta:
        gpu = meta["gpu"]
        for g in gpu["gpus"]:
            g["load"] = _load(g["load"], percent)
            g["vram"]["free"] = _size(g["vram"]["free"] * MIB, dialect.vram_unit)
            g["vram"]["total"] = _size(g["vram"]["total"] * MIB, dialect.vram_unit)
        gpu["average"] = _load(gpu["average"], percent)
    if "ram" in meta:
        meta["ram"] = {k: _size(v, dialect.ram_unit) for k, v in meta["ram"].items()}
    if "storage" in meta:
        for d in meta["storage"]["hard_drives"]:
            d["free_capacity"] = _size(d["free_capacity"], dialect.ram_unit)
            d["total_capacity"] = _size(d["total_capacity"], dialect.ram_unit)
    if not stringly:
        return

    def text(obj: dict[str, Any], *keys: str) -> None:
        for key in keys:
            if isinstance(obj.get(key), int | float) and not isinstance(obj[key], bool):
                obj[key] = str(obj[key])

    text(doc, "reputation", "ramTotal")
    for g in doc["gpus"]:
        text(g, "vram_gb_available", "vram_gb_max")
    for r in doc.get("rams") or []:
        text(r, "memory_gb_available", "memory_gb_max")
    for d in doc.get("hard_drives") or []:
        text(d, "available_capacity_gb", "max_capacity_gb")
    for c in doc["cpus"]:
        text(c, "num_cores")
    if "cpu" in meta:
        text(meta["cpu"], "average")
        meta["cpu"]["cores"] = [str(c) for c in meta["cpu"]["cores"]]
    if "gpu" in meta:
        for g in meta["gpu"]["gpus"]:
            text(g, "load")
            text(g["vram"], "free", "total")
        text(meta["gpu"], "average")
    if "ram" in meta:
        text(meta["ram"], "free", "total")
    if "storage" in meta:
        for d in meta["storage"]["hard_drives"]:
            text(d, "free_capacity", "total_capacity")


_NULLABLE: Final = ("reputation", "ipv6_address", "ramTotal", "operating_system", "mac_address")
_OMITTABLE: Final = ("hard_drives", "rams", "ipv6_address", "mac_address", "current_suspension")


def _add_warts(doc: dict[str, Any], r: random.Random) -> None:
    """The small share of nulls, omitted fields and unknown extra fields real fleets have."""
    roll = r.random()
    if roll < 0.03:
        for key in r.sample(_NULLABLE, 2):
            doc[key] = None
    elif roll < 0.05:
        for key in r.sample(_OMITTABLE, 2):
            doc.pop(key, None)
    elif roll < 0.08:
        doc["beta_features"] = {"p2p_transfer": r.random() < 0.5, "tier": _pick(r, "ABC")}
        doc["region_hint"] = _pick(r, ("us-west", "eu-central", "ap-southeast", None))
