"""Build one node document, deterministically, from a node's facts and its own seed.

The facts the server filters on (uuid, name, times, status, operator) come from the fleet's
columns; everything else (hardware, telemetry, software, warts) is drawn from a
``random.Random`` seeded by the fleet seed and the node's insertion id, so a document is the same
every time it is built and does not depend on which other documents were built first.

Units follow the API: ``*_gb`` fields in GB (1 GB = 1024 MiB here), ``timestamp_ms`` in epoch
ms. What the reference leaves open follows the fleet's :class:`~nodeselect.sim.Dialect` (as a
:class:`DocStyle`): telemetry RAM/storage (default bytes), VRAM (default MiB) and load (default
fractions 0..1) units, timestamp precision and suffix, numbers as JSON strings. The default
dialect writes exactly the historical bytes.
"""

from __future__ import annotations

import bisect
import functools
import itertools
from collections.abc import Callable
from typing import Any, Final, NamedTuple

import msgspec

from nodeselect.sim._catalog import (
    CPUS_AARCH64,
    CPUS_CONSUMER,
    CPUS_SERVER,
    DOCKER_VERSIONS,
    DRIVERS_MODERN,
    DRIVERS_OLD,
    GPU_MODELS,
    OS_RELEASES,
    SUSPENSION_REASONS,
    ZERNET_VERSIONS,
)
from nodeselect.sim._dialect import Dialect
from nodeselect.sim._doc_parts import (
    ENCODER,
    GIB,
    GPU_TEXT,
    IMAGE_POOLS,
    MIB,
    US,
    OperatorRow,
    Rng,
    account_json,
    cpu_text,
    fixed,
    gpu_texts,
    images_json,
    iso,
    json_str,
    json_text,
    load_text,
    node_rng,
    operator_account,
    sample2,
    size_text,
    stringly_node,
    time_writer,
    uuid_text,
)

__all__ = [
    "DEFAULT_STYLE",
    "DocStyle",
    "NodeRow",
    "OperatorRow",
    "account_json",
    "build_document",
    "doc_style",
    "encode_document",
    "iso",
    "node_rng",
    "operator_account",
]

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


class NodeRow(NamedTuple):
    """The column facts of one node that its document must agree with.

    ``created_at``, ``last_seen_at`` and ``deleted_at`` are epoch *microseconds* as stored.
    """

    node_id: int
    uuid: str
    name: str
    created_at: int
    last_seen_at: int | None
    status: str
    deleted_at: int | None
    malformed: bool
    operator: OperatorRow


class DocStyle(NamedTuple):
    """How a :class:`~nodeselect.sim.Dialect` writes documents, prepared once per dialect.

    Attributes:
        when: writes epoch microseconds as the dialect's timestamp text.
        ram_unit: telemetry RAM and storage unit (``bytes``, ``MiB``, ``GB``).
        vram_unit: telemetry VRAM unit.
        percent: loads in percent (else fractions).
        share: share of nodes whose numbers are JSON strings.
        plain_tele: telemetry in the historical units (bytes, MiB, fractions).
    """

    when: Callable[[int], str]
    ram_unit: str
    vram_unit: str
    percent: bool
    share: float
    plain_tele: bool


@functools.cache
def doc_style(dialect: Dialect) -> DocStyle:
    """The :class:`DocStyle` of ``dialect`` (memoized)."""
    return DocStyle(
        when=time_writer(dialect.written_precision or dialect.time_precision, dialect.time_suffix),
        ram_unit=dialect.ram_unit,
        vram_unit=dialect.vram_unit,
        percent=dialect.load_unit == "percent",
        share=dialect.numeric_strings,
        plain_tele=(dialect.ram_unit, dialect.vram_unit, dialect.load_unit)
        == ("bytes", "MiB", "fraction"),
    )


DEFAULT_STYLE: Final = doc_style(Dialect())


def build_document(
    row: NodeRow,
    seed: int,
    account_doc: dict[str, Any] | None = None,
    dialect: Dialect = Dialect(),  # noqa: B008 - frozen, immutable default
) -> dict[str, Any]:
    """The full node document for ``row`` (deterministic for ``(row, seed, dialect)``).

    ``account_doc`` is the operator's :func:`operator_account` when the caller caches it. The
    document is :func:`encode_document`'s JSON, decoded.
    """
    style = doc_style(dialect)
    if account_doc is None:
        account = account_json(row.operator, seed, style.when)
    else:
        account = ENCODER.encode(account_doc).decode()
    return msgspec.json.decode(encode_document(row, seed, account, style))  # type: ignore[no-any-return]


def encode_document(
    row: NodeRow, seed: int, account: str, style: DocStyle = DEFAULT_STYLE
) -> bytes:
    """The node document for ``row`` as compact JSON bytes (deterministic for ``(row, seed)``).

    ``account`` is the operator's :func:`account_json`; ``style`` the fleet dialect's
    :func:`doc_style`. The bytes are exactly what ``msgspec.json.encode`` gives for the document
    (the catalogue's strings are plain ASCII without quotes, backslashes or control characters;
    the node's name is escaped when it needs it, :func:`json_text`; floats are written as
    ``repr`` of the rounded value). The random
    draws are the same, in the same order, as those of the plain-dict reference in the tests
    (the dialect never draws from the node's generator).
    """
    stringly = style.share > 0.0 and stringly_node(seed, row.node_id, style.share)
    q = '"' if stringly else ""
    plain_tele = style.plain_tele and not stringly
    when = style.when
    r = Rng((seed & 0xFFFFFFFF) << 40 | row.node_id)  # node_rng(seed, row.node_id)
    rnd = r.random
    bits_of = r.getrandbits
    model_name, _, vram_mib, counts, tier = GPU_MODELS[
        bisect.bisect(_MODEL_CUM, rnd() * _MODEL_TOTAL)
    ]
    u = rnd()
    n_gpus = counts[-1][0]
    for count, weight in counts:
        if u < weight:
            n_gpus = count
            break
        u -= weight
    arm = model_name in _ARM_OK and rnd() < 0.2
    if arm:
        cpu = CPUS_AARCH64[int(rnd() * 2)]
    elif tier in ("datacenter", "amd") or n_gpus >= 4 or (tier == "cpu" and rnd() < 0.5):
        cpu = CPUS_SERVER[int(rnd() * 6)]
    else:
        cpu = CPUS_CONSUMER[int(rnd() * 6)]
    sockets = 2 if n_gpus >= 8 and cpu in CPUS_SERVER else 1
    cores = cpu[1] * sockets
    if tier in ("consumer", "cpu"):
        ram_gb = (16, 32, 64, 128)[int(rnd() * 4)]
    else:
        ram_gb = (128, 256, 512)[int(rnd() * 3)]
    if n_gpus >= 8:
        ram_gb = (1024, 2048)[int(rnd() * 2)]
    if tier == "consumer":
        disk_gb = (512, 1000, 2000, 4000)[int(rnd() * 4)]
    else:
        disk_gb = (2000, 4000, 8000)[int(rnd() * 3)]
    status = row.status
    busy = status in _BUSY

    created_us = row.created_at
    created_s = created_us // US
    last_seen_us = row.last_seen_at
    last_seen = None if last_seen_us is None else last_seen_us // US
    hw_updated = created_s + int(rnd() * (86400 * 30 + 1))
    hw_iso = when(hw_updated * US)

    gpu_clock = (1395, 1410, 1590, 2235, 2520)[int(rnd() * 5)]
    gpus = tele_gpus = hw_gpus = ""
    loads: list[str] = []
    first_free = ""
    if n_gpus:
        assert model_name is not None
        gt = (GPU_TEXT if plain_tele else gpu_texts(style.vram_unit, stringly))[model_name]
        gpu_ids = f"{bits_of(256 * n_gpus):0{64 * n_gpus}x}"
        gpu_parts: list[str] = []
        tele_parts: list[str] = []
        hw_parts: list[str] = []
        hw_head = f"{gt.hw_head}{gpu_clock}"
        for k in range(0, 64 * n_gpus, 64):
            if busy:
                used_share = 0.4 + (0.97 - 0.4) * rnd()
            else:
                used_share = (0.0, 0.0, 0.01, 0.05, 0.2)[int(rnd() * 5)]
            used_mib = int(vram_mib * used_share)
            if used_share == 0.0:
                used_mib = int(rnd() * 601)  # driver and display overhead
            free_mib = max(vram_mib - used_mib, 0)
            if busy:
                load = fixed("%.2f" % (0.55 + (1.0 - 0.55) * rnd()))
            else:
                load = fixed("%.2f" % (0.0 + (0.08 - 0.0) * rnd()))
            loads.append(load)
            free_gb = fixed("%.1f" % (free_mib / 1024))
            if not k:
                first_free = free_gb
            gpu_parts.append(f"{gt.gpu_head}{free_gb}{gt.gpu_tail}")
            if plain_tele:
                tele_parts.append(f'{{"load":{load}{gt.tele_name}{free_mib}{gt.tele_tail}')
            else:
                tele_parts.append(
                    f'{{"load":{q}{load_text(load, style.percent)}{q}{gt.tele_name}'
                    f"{size_text(free_mib * MIB, style.vram_unit)}{gt.tele_tail}"
                )
            g = gpu_ids[k : k + 64]
            hw_parts.append(
                f'{hw_head},"device_id":"GPU-{g[:8]}-{g[8:12]}-{g[12:16]}-{g[16:20]}-{g[20:32]}",'
                f'"gpu_registry_uuid":"{g[32:40]}-{g[40:44]}-{g[44:48]}-{g[48:52]}-{g[52:64]}"}}'
            )
        gpus = ",".join(gpu_parts)
        tele_gpus = ",".join(tele_parts)
        hw_gpus = ",".join(hw_parts)

    ram_total = ram_gb * GIB
    if busy:
        ram_free = int(ram_total * (0.1 + (0.6 - 0.1) * rnd()))
    else:
        ram_free = int(ram_total * (0.6 + (0.95 - 0.6) * rnd()))
    disk_free_gb = fixed("%.1f" % (disk_gb * (0.05 + (0.9 - 0.05) * rnd())))
    disk_free_bytes = int(float(disk_free_gb) * GIB)
    disk_total = disk_gb * GIB
    if busy:
        cpu_avg = fixed("%.3f" % (0.3 + (0.95 - 0.3) * rnd()))
    else:
        cpu_avg = fixed("%.3f" % (0.0 + (0.15 - 0.0) * rnd()))
    arch = '"aarch64"' if arm else '"x86_64"'
    os_index = bisect.bisect(_OS_CUM, rnd() * _OS_TOTAL)
    if arm and os_index == _OS_WINDOWS:
        os_index = _OS_ARM_FALLBACK
    os_json = _OS_JSON[os_index]

    if model_name is None or tier == "amd":
        driver = "null"
    elif model_name in _NEW_CARDS:
        driver = _DRIVER_LATEST
    elif model_name in _OLD_CARDS and rnd() < 0.3:
        driver = _DRIVERS_OLD_JSON[int(rnd() * 2)]
    else:
        driver = _DRIVERS_MODERN_JSON[int(rnd() * 6)]
    pool_no = 0 if tier == "cpu" else 1 if tier == "amd" else 2
    width = _POOL_WIDTHS[pool_no]
    images = images_json(pool_no, bits_of(width) & bits_of(width))  # each image with p = 1/4
    if status == "OUTDATED_CLIENT":
        zernet = ZERNET_VERSIONS[int(rnd() * 2)]
    else:
        zernet = ZERNET_VERSIONS[2 + int(rnd() * (len(ZERNET_VERSIONS) - 2))]

    node_uuid = row.uuid
    ids = f"{bits_of(624):0156x}"
    hw_uuid = uuid_text(r)
    account_uuid = row.operator.uuid
    tele_ts = None if last_seen is None else last_seen - int(rnd() * 91)
    event = "null"
    if tele_ts is not None and rnd() > 0.06:
        avg = float(cpu_avg)
        core = fixed(f"{min(1.0, max(0.0, avg + (-0.1 + (0.1 - -0.1) * rnd()))):.3f}")
        cores_json = ",".join([core] * min(cores, 4))
        gpu_avg = fixed("%.3f" % (sum(map(float, loads)) / n_gpus)) if n_gpus else "0"
        drive = _DRIVE_MODELS[int(rnd() * 2)]
        if plain_tele:
            cpu_sec = f'{{"average":{cpu_avg},"cores":[{cores_json}]}}'
            gpu_sec = f'{{"gpus":[{tele_gpus}],"average":{gpu_avg}}}'
            ram_sec = f'{{"free":{ram_free},"total":{ram_total}}}'
            disk_free_t, disk_total_t = str(disk_free_bytes), str(disk_total)
        else:
            percent, ram_unit = style.percent, style.ram_unit
            core_t = f"{q}{load_text(core, percent)}{q}"
            cpu_sec = (
                f'{{"average":{q}{load_text(cpu_avg, percent)}{q},'
                f'"cores":[{",".join([core_t] * min(cores, 4))}]}}'
            )
            gpu_sec = f'{{"gpus":[{tele_gpus}],"average":{q}{load_text(gpu_avg, percent)}{q}}}'
            ram_sec = (
                f'{{"free":{q}{size_text(ram_free, ram_unit)}{q},'
                f'"total":{q}{size_text(ram_total, ram_unit)}{q}}}'
            )
            disk_free_t = f"{q}{size_text(disk_free_bytes, ram_unit)}{q}"
            disk_total_t = f"{q}{size_text(disk_total, ram_unit)}{q}"
        storage_sec = (
            f'{{"hard_drives":[{{"free_capacity":{disk_free_t},'
            f'"model":"{drive}","name":"/dev/nvme0n1","total_capacity":{disk_total_t}}}]}}'
        )
        if rnd() < 0.05:  # partial telemetry: one section missing
            sections = {"cpu": cpu_sec, "gpu": gpu_sec, "ram": ram_sec, "storage": storage_sec}
            del sections[("gpu", "ram", "storage", "cpu")[int(rnd() * 4)]]
            metadata = ",".join([f'"{key}":{value}' for key, value in sections.items()])
        else:
            metadata = f'"cpu":{cpu_sec},"gpu":{gpu_sec},"ram":{ram_sec},"storage":{storage_sec}'
        tele_iso = when(tele_ts * US)
        event = (
            f'{{"timestamp_ms":{tele_ts * 1000 + int(rnd() * 1000)},'
            f'"object":"node_hardware_event","created_at":"{tele_iso}",'
            f'"updated_at":"{tele_iso}","uuid":"{uuid_text(r)}","metadata":{{{metadata}}},'
            f'"node":"{node_uuid}","node_hardware":"{hw_uuid}","account":"{account_uuid}"}}'
        )

    suspension = "null"
    suspended_at = "null"
    if status != "DELETED" and rnd() < 0.025:
        start = created_s + 3600 + int(rnd() * (86400 * 60 - 3600 + 1))
        reason, follow_up = SUSPENSION_REASONS[int(rnd() * len(SUSPENSION_REASONS))]
        at = when(start * US)
        suspended_at = f'"{at}"'
        suspension = (
            f'{{"started_at":"{at}","reason":"{reason}","follow_up":"{follow_up}",'
            f'"object":"node_suspension","created_at":"{at}","updated_at":"{at}",'
            f'"uuid":"{uuid_text(r)}","node_uuid":"{node_uuid}","ended_at":null,'
            f'"suspended_by_account_uuid":"{uuid_text(r)}","unsuspended_by_account_uuid":null}}'
        )
    deleted_at = row.deleted_at
    updated = max(created_us, hw_updated * US, last_seen_us or 0, deleted_at or 0)
    ip_block = ("192.0.2", "198.51.100", "203.0.113")[int(rnd() * 3)]
    reputation = int(rnd() * 101) if rnd() < 0.3 else 70 + int(rnd() * 31)
    rep_text = f'"{reputation}"' if stringly else str(reputation)
    ram_gb_text = f'"{ram_gb}"' if stringly else str(ram_gb)
    sw_uuid = uuid_text(r)
    docker = DOCKER_VERSIONS[int(rnd() * len(DOCKER_VERSIONS))]
    ipv4 = 1 + int(rnd() * 254)
    ipv6 = f'"2001:db8:{bits_of(16):x}::{bits_of(16):x}"' if rnd() < 0.4 else "null"
    roll = rnd()
    cpus, hw_cpus = cpu_text(cpu, sockets, arm, stringly)
    capabilities = '["docker"]' if driver == "null" else '["docker","nvidia-container-toolkit"]'
    last_seen_json = "null" if last_seen_us is None else f'"{when(last_seen_us)}"'
    deleted_json = "null" if deleted_at is None else f'"{when(deleted_at)}"'
    mac = (
        f'"{ids[144:146]}:{ids[146:148]}:{ids[148:150]}:{ids[150:152]}:'
        f'{ids[152:154]}:{ids[154:156]}"'
    )
    hard_drives = (
        f'[{{"available_capacity_gb":{q}{disk_free_gb}{q},"max_capacity_gb":{q}{disk_gb}{q},'
        '"name":"/dev/nvme0n1"}]'
    )
    rams = (
        f'[{{"memory_gb_available":{q}{fixed("%.1f" % (ram_free / GIB))}{q},'
        f'"memory_gb_max":{q}{ram_gb}{q}}}]'
    )
    head = f'{{"name":{json_text(row.name)},"reputation":'
    middle = (
        f',"object":"node","created_at":"{when(created_us)}","updated_at":"{when(updated)}",'
        f'"cpus":{cpus},"gpus":['
    )
    tail = (
        f',"_id":"{ids[:24]}","uuid":"{node_uuid}","last_seen_at":{last_seen_json},'
        f'"latest_hardware_event":{event},'
        f'"current_hardware":{{"cpus":{hw_cpus},"gpus":[{hw_gpus}],'
        f'"memory":{{"ram_bytes_total":{ram_total},"base_clock_mhz":4800,"device_id":"mem0"}},'
        f'"storage":{{"capacity_bytes_free":{disk_free_bytes},'
        f'"capacity_bytes_total":{disk_total},"device_id":"nvme0"}},'
        f'"operating_system":{{"architecture":{arch},{os_json}}},"schema_version":3,'
        f'"object":"node_hardware","created_at":"{hw_iso}","updated_at":"{hw_iso}",'
        f'"uuid":"{hw_uuid}","node":"{node_uuid}","node_uuid":"{node_uuid}",'
        f'"machine_id":"{ids[24:56]}","checksum_sha256":"{ids[56:120]}","_id":"{ids[120:144]}"}},'
        f'"current_software":{{"schema_version":2,"object":"node_software",'
        f'"created_at":"{hw_iso}","updated_at":"{hw_iso}","uuid":"{sw_uuid}",'
        f'"node":"{node_uuid}","node_uuid":"{node_uuid}","capabilities":{capabilities},'
        f'"cached_image_tags":{images},"docker":{{"images":{images},"version":"{docker}"}},'
        f'"nvidia_driver":{{"version":{driver}}},"operating_system":{{"architecture":{arch},'
        f'{os_json}}},"zernet_client":{{"version":"{zernet}"}}}},'
        f'"ipv4_address":"{ip_block}.{ipv4}"'
    )
    account_tail = (
        f',"operator_account":{account},"operator_account_uuid":"{account_uuid}",'
        f'"suspended_at":{suspended_at}'
    )
    if roll >= 0.08 and not row.malformed:  # the common case: no wart
        return (
            f"{head}{rep_text}{middle}{gpus}],"
            f'"hard_drives":{hard_drives},"rams":{rams},"ramTotal":{ram_gb_text}{tail},'
            f'"ipv6_address":{ipv6},"mac_address":{mac}{account_tail},'
            f'"current_suspension":{suspension},"deleted_at":{deleted_json},'
            f'"operating_system":{{{os_json}}}}}'
        ).encode()
    # Warts: nulls, omitted fields, unknown extras, and the deliberately malformed numbers.
    fields = {
        "reputation": rep_text,
        "hard_drives": hard_drives,
        "rams": rams,
        "ramTotal": ram_gb_text,
        "ipv6_address": ipv6,
        "mac_address": mac,
        "current_suspension": suspension,
        "operating_system": f"{{{os_json}}}",
    }
    extra = ""
    if roll < 0.03:
        for key in sample2(r, _NULLABLE):
            fields[key] = "null"
    elif roll < 0.05:
        for key in sample2(r, _OMITTABLE):
            fields[key] = ""
    elif roll < 0.08:
        p2p = "true" if rnd() < 0.5 else "false"
        tier_letter = "ABC"[int(rnd() * 3)]
        region = ("us-west", "eu-central", "ap-southeast", None)[int(rnd() * 4)]
        extra = (
            f',"beta_features":{{"p2p_transfer":{p2p},"tier":"{tier_letter}"}},'
            f'"region_hint":{json_str(region)}'
        )
    if row.malformed:
        if n_gpus:
            gpus = gpus.replace(
                f'"vram_gb_available":{first_free},', f'"vram_gb_available":"{first_free}",', 1
            )
        else:
            fields["ramTotal"] = f'"{ram_gb}"'

    def field(key: str) -> str:
        value = fields[key]
        return f',"{key}":{value}' if value else ""

    return (
        f"{head}{fields['reputation']}{middle}{gpus}]{field('hard_drives')}{field('rams')}"
        f"{field('ramTotal')}{tail}{field('ipv6_address')}{field('mac_address')}{account_tail}"
        f'{field("current_suspension")},"deleted_at":{deleted_json}'
        f"{field('operating_system')}{extra}}}"
    ).encode()


_MODEL_TOTAL: Final = _MODEL_CUM[-1]
_OS_TOTAL: Final = _OS_CUM[-1]
_OS_WINDOWS: Final = next(i for i, o in enumerate(OS_RELEASES) if o[0] == "Microsoft")
_OS_ARM_FALLBACK: Final = len(OS_RELEASES)
_OS_JSON: Final = tuple(
    f'"brand":"{brand}","name":"{name}","version":"{version}"'
    for brand, name, version in [o[:3] for o in OS_RELEASES] + [("Ubuntu", "Ubuntu", "22.04.4 LTS")]
)
_DRIVER_LATEST: Final = f'"{DRIVERS_MODERN[-1]}"'
_DRIVERS_OLD_JSON: Final = tuple(f'"{d}"' for d in DRIVERS_OLD)
_DRIVERS_MODERN_JSON: Final = tuple(f'"{d}"' for d in DRIVERS_MODERN)
_POOL_WIDTHS: Final = tuple(len(p) for p in IMAGE_POOLS)
_DRIVE_MODELS: Final = ("Samsung SSD 990 PRO 2TB", "KINGSTON SKC3000D2048G")
_NULLABLE: Final = ("reputation", "ipv6_address", "ramTotal", "operating_system", "mac_address")
_OMITTABLE: Final = ("hard_drives", "rams", "ipv6_address", "mac_address", "current_suspension")
