"""The full node document of ``GET /v1/nodes`` as frozen attrs models.

Every object of the List Nodes reference has a model here; every field is optional (``None``
when missing or null; list fields are tuples, empty when missing or null). Field names are
pythonic (``ram_total`` for ``ramTotal``, ``id`` for ``_id``); the JSON name is kept in each
field's metadata (``"json"``) and :mod:`nodeselect.documents._convert` parses and writes
documents from that table. Unknown keys are kept in :attr:`_Document.extra` so a document
round-trips.

Units (see docs/units.md): API ``*_gb`` fields are GB as the API reports them; telemetry
``vram.free/total`` are MiB; telemetry ``ram.free/total`` and storage ``free_capacity`` /
``total_capacity`` are bytes; ``current_hardware`` ``*_bytes_*`` fields are bytes; GPU
``load`` and CPU/GPU ``average`` are fractions 0..1; ``timestamp_ms`` is Unix epoch
milliseconds; every ``*_at`` / ``last_login`` field is an aware UTC :class:`datetime`.
nodeselect's GB is 2**30 bytes = 1024 MiB.

Personal data (operator e-mail, wallet address, IP and MAC addresses, user names, OAuth
subject) is left out of ``repr``.
"""

# The field helpers (_str, _num, ...) return attrs.field(...) specs, not shared default values.
# ruff: noqa: RUF009

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

import attrs

__all__ = [
    "ConsumerProfile",
    "CpuMetrics",
    "CurrentHardware",
    "CurrentSoftware",
    "DockerInfo",
    "DriveMetrics",
    "GpuDeviceMetrics",
    "GpuMetrics",
    "HardwareCpu",
    "HardwareEvent",
    "HardwareGpu",
    "HardwareMemory",
    "HardwareMetadata",
    "HardwareStorage",
    "Node",
    "NodeCpu",
    "NodeGpu",
    "NodeHardDrive",
    "NodeRam",
    "Number",
    "NvidiaDriver",
    "OperatingSystem",
    "OperatorAccount",
    "OperatorProfile",
    "RamMetrics",
    "StorageMetrics",
    "Suspension",
    "UserProfile",
    "VramMetrics",
    "ZernetClient",
]

#: A JSON number as decoded: ints stay ints (so documents round-trip), never a bool.
Number = int | float

#: How a field is parsed: one scalar kind, an object, or a list of either.
Kind = Literal["str", "num", "int", "bool", "ts", "obj", "objs", "strs", "nums", "jsons"]


def _f(kind: Kind, key: str | None, cls: type | None = None, *, personal: bool = False) -> Any:
    """A model field: its parse kind, JSON key (``None`` = the attribute name), sub-model."""
    default: Any = () if kind in ("objs", "strs", "nums", "jsons") else None
    return attrs.field(
        default=default,
        repr=not personal,
        metadata={"json": key, "kind": kind, "cls": cls, "personal": personal},
    )


def _str(key: str | None = None, *, personal: bool = False) -> Any:
    return _f("str", key, personal=personal)


def _num(key: str | None = None) -> Any:
    return _f("num", key)


def _int(key: str | None = None) -> Any:
    return _f("int", key)


def _bool(key: str | None = None) -> Any:
    return _f("bool", key)


def _ts(key: str | None = None) -> Any:
    return _f("ts", key)


def _obj(cls: type, key: str | None = None) -> Any:
    return _f("obj", key, cls)


def _objs(cls: type, key: str | None = None) -> Any:
    return _f("objs", key, cls)


def _strs(key: str | None = None) -> Any:
    return _f("strs", key)


def _nums(key: str | None = None) -> Any:
    return _f("nums", key)


def _jsons(key: str | None = None) -> Any:
    return _f("jsons", key)


def _shape() -> Any:
    return attrs.field(factory=frozenset, repr=False, eq=False, metadata={"shape": True})


@attrs.frozen(kw_only=True)
class _Document:
    """What every model of a JSON object carries besides its documented fields.

    Attributes:
        extra: keys the reference does not document, with their JSON values as given (kept so
            the document round-trips; left out of ``repr`` since they may hold personal data).
        absent_keys: JSON names of documented keys that were missing from the source object
            (not compared by ``==``; lets :func:`~nodeselect.documents.node_to_json` omit them
            again).
        null_list_keys: JSON names of list keys that were ``null`` rather than ``[]`` (not
            compared by ``==``).
    """

    extra: Mapping[str, Any] = attrs.field(factory=dict, repr=False, metadata={"shape": True})
    absent_keys: frozenset[str] = _shape()
    null_list_keys: frozenset[str] = _shape()


@attrs.frozen(kw_only=True)
class NodeCpu(_Document):
    """An entry of ``node.cpus``.

    Attributes:
        name: CPU model name.
        num_cores: number of cores (an integer).
    """

    name: str | None = _str()
    num_cores: int | None = _int()


@attrs.frozen(kw_only=True)
class NodeGpu(_Document):
    """An entry of ``node.gpus``.

    Attributes:
        name: GPU model name as reported (not canonicalized).
        vram_gb_available: free VRAM, GB as the API reports it.
        vram_gb_max: total VRAM, GB as the API reports it.
    """

    name: str | None = _str()
    vram_gb_available: Number | None = _num()
    vram_gb_max: Number | None = _num()


@attrs.frozen(kw_only=True)
class NodeHardDrive(_Document):
    """An entry of ``node.hard_drives``.

    Attributes:
        available_capacity_gb: free capacity, GB as reported.
        max_capacity_gb: total capacity, GB as reported.
        name: drive name.
    """

    available_capacity_gb: Number | None = _num()
    max_capacity_gb: Number | None = _num()
    name: str | None = _str()


@attrs.frozen(kw_only=True)
class NodeRam(_Document):
    """An entry of ``node.rams``.

    Attributes:
        memory_gb_available: free memory, GB as reported.
        memory_gb_max: total memory, GB as reported.
    """

    memory_gb_available: Number | None = _num()
    memory_gb_max: Number | None = _num()


@attrs.frozen(kw_only=True)
class CpuMetrics(_Document):
    """Telemetry ``metadata.cpu``.

    Attributes:
        average: average CPU load, a fraction 0..1.
        cores: per-core load, fractions 0..1.
    """

    average: Number | None = _num()
    cores: tuple[Number, ...] = _nums()


@attrs.frozen(kw_only=True)
class VramMetrics(_Document):
    """Telemetry ``metadata.gpu.gpus[].vram``.

    Attributes:
        free: free VRAM in MiB.
        total: total VRAM in MiB.
    """

    free: Number | None = _num()
    total: Number | None = _num()


@attrs.frozen(kw_only=True)
class GpuDeviceMetrics(_Document):
    """Telemetry ``metadata.gpu.gpus[]``: one GPU.

    Attributes:
        load: GPU load, a fraction 0..1.
        name: GPU model name as reported by the driver.
        vram: free/total VRAM in MiB.
    """

    load: Number | None = _num()
    name: str | None = _str()
    vram: VramMetrics | None = _obj(VramMetrics)


@attrs.frozen(kw_only=True)
class GpuMetrics(_Document):
    """Telemetry ``metadata.gpu``.

    Attributes:
        gpus: per-GPU telemetry.
        average: average GPU load, a fraction 0..1.
    """

    gpus: tuple[GpuDeviceMetrics, ...] = _objs(GpuDeviceMetrics)
    average: Number | None = _num()


@attrs.frozen(kw_only=True)
class RamMetrics(_Document):
    """Telemetry ``metadata.ram``.

    Attributes:
        free: free RAM in bytes.
        total: total RAM in bytes.
    """

    free: Number | None = _num()
    total: Number | None = _num()


@attrs.frozen(kw_only=True)
class DriveMetrics(_Document):
    """Telemetry ``metadata.storage.hard_drives[]``.

    Attributes:
        free_capacity: free capacity in bytes.
        model: drive model.
        name: drive name.
        total_capacity: total capacity in bytes.
    """

    free_capacity: Number | None = _num()
    model: str | None = _str()
    name: str | None = _str()
    total_capacity: Number | None = _num()


@attrs.frozen(kw_only=True)
class StorageMetrics(_Document):
    """Telemetry ``metadata.storage``.

    Attributes:
        hard_drives: per-drive telemetry.
    """

    hard_drives: tuple[DriveMetrics, ...] = _objs(DriveMetrics)


@attrs.frozen(kw_only=True)
class HardwareMetadata(_Document):
    """``latest_hardware_event.metadata``: the telemetry sample.

    Attributes:
        cpu: CPU load (fractions 0..1).
        gpu: GPU load (fractions) and VRAM (MiB).
        ram: RAM free/total in bytes.
        storage: drive capacities in bytes.
    """

    cpu: CpuMetrics | None = _obj(CpuMetrics)
    gpu: GpuMetrics | None = _obj(GpuMetrics)
    ram: RamMetrics | None = _obj(RamMetrics)
    storage: StorageMetrics | None = _obj(StorageMetrics)


@attrs.frozen(kw_only=True)
class HardwareEvent(_Document):
    """``node.latest_hardware_event``: the latest telemetry report of the node.

    Attributes:
        timestamp_ms: when the sample was taken, Unix epoch milliseconds.
        object: the object type, ``"node_hardware_event"``.
        created_at: when the event was stored (aware UTC).
        updated_at: when the event was last updated (aware UTC).
        uuid: the event's uuid.
        metadata: the telemetry sample.
        node: the node's id.
        node_hardware: the hardware record's id.
        account: the operator account's id.
    """

    timestamp_ms: Number | None = _num()
    object: str | None = _str()
    created_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()
    uuid: str | None = _str()
    metadata: HardwareMetadata | None = _obj(HardwareMetadata)
    node: str | None = _str()
    node_hardware: str | None = _str()
    account: str | None = _str()


@attrs.frozen(kw_only=True)
class HardwareCpu(_Document):
    """``current_hardware.cpus[]``.

    Attributes:
        name: CPU model name.
        num_cores: number of cores (an integer).
        architecture: e.g. ``"x86_64"``.
        base_clock_mhz: base clock in MHz.
        chipset: chipset name.
        device_id: device id.
        features: CPU feature flags (strings).
        num_threads_per_core: hardware threads per core (an integer).
    """

    name: str | None = _str()
    num_cores: int | None = _int()
    architecture: str | None = _str()
    base_clock_mhz: Number | None = _num()
    chipset: str | None = _str()
    device_id: str | None = _str()
    features: tuple[str, ...] = _strs()
    num_threads_per_core: int | None = _int()


@attrs.frozen(kw_only=True)
class HardwareGpu(_Document):
    """``current_hardware.gpus[]``.

    Attributes:
        name: GPU model name.
        vram_bytes_total: total VRAM in bytes.
        base_clock_mhz: base clock in MHz.
        device_id: device id.
        gpu_registry_uuid: the GPU registry entry's uuid.
    """

    name: str | None = _str()
    vram_bytes_total: Number | None = _num()
    base_clock_mhz: Number | None = _num()
    device_id: str | None = _str()
    gpu_registry_uuid: str | None = _str()


@attrs.frozen(kw_only=True)
class HardwareMemory(_Document):
    """``current_hardware.memory``.

    Attributes:
        ram_bytes_total: total RAM in bytes.
        base_clock_mhz: memory clock in MHz.
        device_id: device id.
    """

    ram_bytes_total: Number | None = _num()
    base_clock_mhz: Number | None = _num()
    device_id: str | None = _str()


@attrs.frozen(kw_only=True)
class HardwareStorage(_Document):
    """``current_hardware.storage``.

    Attributes:
        capacity_bytes_free: free capacity in bytes.
        capacity_bytes_total: total capacity in bytes.
        device_id: device id.
    """

    capacity_bytes_free: Number | None = _num()
    capacity_bytes_total: Number | None = _num()
    device_id: str | None = _str()


@attrs.frozen(kw_only=True)
class OperatingSystem(_Document):
    """An ``operating_system`` object (of the node, its hardware or its software).

    Attributes:
        architecture: e.g. ``"x86_64"`` (not in ``node.operating_system``).
        brand: e.g. ``"Ubuntu"``.
        name: e.g. ``"Linux"``.
        version: e.g. ``"22.04"``.
    """

    architecture: str | None = _str()
    brand: str | None = _str()
    name: str | None = _str()
    version: str | None = _str()


@attrs.frozen(kw_only=True)
class CurrentHardware(_Document):
    """``node.current_hardware``: the node's registered hardware.

    Attributes:
        cpus: CPUs.
        gpus: GPUs (VRAM in bytes).
        memory: RAM (bytes).
        storage: storage (bytes).
        operating_system: the OS.
        schema_version: version of this record's schema (an integer).
        object: the object type, ``"node_hardware"``.
        created_at: when stored (aware UTC).
        updated_at: when last updated (aware UTC).
        uuid: the record's uuid.
        node: the node's id.
        node_uuid: the node's uuid.
        machine_id: the machine id.
        checksum_sha256: checksum of the hardware description.
        id: the record's id (JSON ``_id``).
    """

    cpus: tuple[HardwareCpu, ...] = _objs(HardwareCpu)
    gpus: tuple[HardwareGpu, ...] = _objs(HardwareGpu)
    memory: HardwareMemory | None = _obj(HardwareMemory)
    storage: HardwareStorage | None = _obj(HardwareStorage)
    operating_system: OperatingSystem | None = _obj(OperatingSystem)
    schema_version: int | None = _int()
    object: str | None = _str()
    created_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()
    uuid: str | None = _str()
    node: str | None = _str()
    node_uuid: str | None = _str()
    machine_id: str | None = _str()
    checksum_sha256: str | None = _str()
    id: str | None = _str("_id")


@attrs.frozen(kw_only=True)
class DockerInfo(_Document):
    """``current_software.docker``.

    Attributes:
        images: the images as reported (JSON values kept as given; their shape is undocumented).
        version: Docker version.
    """

    images: tuple[Any, ...] = _jsons()
    version: str | None = _str()


@attrs.frozen(kw_only=True)
class NvidiaDriver(_Document):
    """``current_software.nvidia_driver``.

    Attributes:
        version: driver version, e.g. ``"550.54.14"``.
    """

    version: str | None = _str()


@attrs.frozen(kw_only=True)
class ZernetClient(_Document):
    """``current_software.zernet_client``.

    Attributes:
        version: the node client's version.
    """

    version: str | None = _str()


@attrs.frozen(kw_only=True)
class CurrentSoftware(_Document):
    """``node.current_software``: the node's software inventory.

    Attributes:
        schema_version: version of this record's schema (an integer).
        object: the object type, ``"node_software"``.
        created_at: when stored (aware UTC).
        updated_at: when last updated (aware UTC).
        uuid: the record's uuid.
        node: the node's id.
        node_uuid: the node's uuid.
        capabilities: capability names (strings).
        cached_image_tags: container images cached on the node, e.g. ``"ubuntu:22.04"``.
        docker: Docker images and version.
        nvidia_driver: NVIDIA driver version.
        operating_system: the OS.
        zernet_client: the node client's version.
    """

    schema_version: int | None = _int()
    object: str | None = _str()
    created_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()
    uuid: str | None = _str()
    node: str | None = _str()
    node_uuid: str | None = _str()
    capabilities: tuple[str, ...] = _strs()
    cached_image_tags: tuple[str, ...] = _strs()
    docker: DockerInfo | None = _obj(DockerInfo)
    nvidia_driver: NvidiaDriver | None = _obj(NvidiaDriver)
    operating_system: OperatingSystem | None = _obj(OperatingSystem)
    zernet_client: ZernetClient | None = _obj(ZernetClient)


@attrs.frozen(kw_only=True)
class ConsumerProfile(_Document):
    """``operator_account.consumer_profile``.

    Attributes:
        is_active: whether the profile is active.
        is_compute_billing_enabled: whether compute billing is enabled.
        object: the object type, ``"consumer_profile"``.
        created_at: when created (aware UTC).
        updated_at: when last updated (aware UTC).
        uuid: the profile's uuid.
        account_uuid: the account's uuid.
        render_user_id: the render user id.
        allowed_region_codes: region codes (strings).
        deleted_at: when deleted (aware UTC), or ``None``.
    """

    is_active: bool | None = _bool()
    is_compute_billing_enabled: bool | None = _bool()
    object: str | None = _str()
    created_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()
    uuid: str | None = _str()
    account_uuid: str | None = _str()
    render_user_id: str | None = _str()
    allowed_region_codes: tuple[str, ...] = _strs()
    deleted_at: datetime | None = _ts()


@attrs.frozen(kw_only=True)
class OperatorProfile(_Document):
    """``operator_account.operator_profile``.

    Attributes:
        is_active: whether the profile is active.
        object: the object type, ``"operator_profile"``.
        created_at: when created (aware UTC).
        updated_at: when last updated (aware UTC).
        uuid: the profile's uuid.
        account_uuid: the account's uuid.
        wallet_address: payout wallet (personal: not in ``repr``).
        deleted_at: when deleted (aware UTC), or ``None``.
    """

    is_active: bool | None = _bool()
    object: str | None = _str()
    created_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()
    uuid: str | None = _str()
    account_uuid: str | None = _str()
    wallet_address: str | None = _str(personal=True)
    deleted_at: datetime | None = _ts()


@attrs.frozen(kw_only=True)
class UserProfile(_Document):
    """``operator_account.user_profile``. Names and the OAuth subject are personal (not in repr).

    Attributes:
        email_verified: whether the e-mail address is verified.
        object: the object type, ``"user_profile"``.
        created_at: when created (aware UTC).
        updated_at: when last updated (aware UTC).
        uuid: the profile's uuid.
        account_uuid: the account's uuid.
        name: full name (personal).
        given_name: given name (personal).
        family_name: family name (personal).
        middle_name: middle name (personal).
        preferred_username: user name (personal).
        oauth_provider: the OAuth provider.
        oauth_subject: the OAuth subject id (personal).
    """

    email_verified: bool | None = _bool()
    object: str | None = _str()
    created_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()
    uuid: str | None = _str()
    account_uuid: str | None = _str()
    name: str | None = _str(personal=True)
    given_name: str | None = _str(personal=True)
    family_name: str | None = _str(personal=True)
    middle_name: str | None = _str(personal=True)
    preferred_username: str | None = _str(personal=True)
    oauth_provider: str | None = _str()
    oauth_subject: str | None = _str(personal=True)


@attrs.frozen(kw_only=True)
class OperatorAccount(_Document):
    """``node.operator_account``: the account operating the node.

    Attributes:
        email: the operator's e-mail address (personal: not in ``repr``).
        object: the object type, ``"account"``.
        created_at: when created (aware UTC).
        updated_at: when last updated (aware UTC).
        uuid: the account's uuid.
        last_login: last login (aware UTC).
        consumer_profile: the consumer profile.
        operator_profile: the operator profile.
        user_profile: the user profile.
        deleted_at: when deleted (aware UTC), or ``None``.
    """

    email: str | None = _str(personal=True)
    object: str | None = _str()
    created_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()
    uuid: str | None = _str()
    last_login: datetime | None = _ts()
    consumer_profile: ConsumerProfile | None = _obj(ConsumerProfile)
    operator_profile: OperatorProfile | None = _obj(OperatorProfile)
    user_profile: UserProfile | None = _obj(UserProfile)
    deleted_at: datetime | None = _ts()


@attrs.frozen(kw_only=True)
class Suspension(_Document):
    """``node.current_suspension``.

    Attributes:
        started_at: when the suspension started (aware UTC).
        reason: why the node was suspended.
        follow_up: the follow-up action.
        object: the object type, ``"node_suspension"``.
        created_at: when created (aware UTC).
        updated_at: when last updated (aware UTC).
        uuid: the suspension's uuid.
        node_uuid: the node's uuid.
        ended_at: when it ended (aware UTC), or ``None`` while it lasts.
        suspended_by_account_uuid: who suspended the node.
        unsuspended_by_account_uuid: who lifted the suspension.
    """

    started_at: datetime | None = _ts()
    reason: str | None = _str()
    follow_up: str | None = _str()
    object: str | None = _str()
    created_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()
    uuid: str | None = _str()
    node_uuid: str | None = _str()
    ended_at: datetime | None = _ts()
    suspended_by_account_uuid: str | None = _str()
    unsuspended_by_account_uuid: str | None = _str()


@attrs.frozen(kw_only=True)
class Node(_Document):
    """One node document of ``GET /v1/nodes``, every documented field parsed.

    Status, compliance tags and geography are not in the document (see
    :class:`~nodeselect.documents.ProvedFacts`). IP and MAC addresses are personal: not in ``repr``.

    Attributes:
        name: the node's name.
        reputation: reputation score (the reference's example is 50).
        object: the object type, ``"node"``.
        created_at: when the node registered (aware UTC).
        updated_at: when the record was last updated (aware UTC).
        cpus: CPUs.
        gpus: GPUs; ``vram_gb_*`` in GB as reported.
        hard_drives: drives; capacities in GB as reported.
        rams: memory; GB as reported.
        ram_total: total RAM, GB as reported (JSON ``ramTotal``).
        id: the node's id (JSON ``_id``).
        uuid: the node's uuid (the key nodeselect dedupes on).
        last_seen_at: when the node was last seen (aware UTC).
        latest_hardware_event: the latest telemetry (VRAM MiB, RAM and storage bytes, loads 0..1).
        current_hardware: registered hardware (``*_bytes_*`` in bytes).
        current_software: software inventory (cached images, driver, OS).
        ipv4_address: IPv4 address (personal).
        ipv6_address: IPv6 address (personal).
        mac_address: MAC address (personal).
        operator_account: the operator's account (holds personal data).
        operator_account_uuid: the operator account's uuid.
        suspended_at: when the node was suspended (aware UTC), or ``None``.
        current_suspension: the current suspension, or ``None``.
        deleted_at: when deleted (aware UTC), or ``None``.
        operating_system: the OS (brand, name, version).
    """

    name: str | None = _str()
    reputation: Number | None = _num()
    object: str | None = _str()
    created_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()
    cpus: tuple[NodeCpu, ...] = _objs(NodeCpu)
    gpus: tuple[NodeGpu, ...] = _objs(NodeGpu)
    hard_drives: tuple[NodeHardDrive, ...] = _objs(NodeHardDrive)
    rams: tuple[NodeRam, ...] = _objs(NodeRam)
    ram_total: Number | None = _num("ramTotal")
    id: str | None = _str("_id")
    uuid: str | None = _str()
    last_seen_at: datetime | None = _ts()
    latest_hardware_event: HardwareEvent | None = _obj(HardwareEvent)
    current_hardware: CurrentHardware | None = _obj(CurrentHardware)
    current_software: CurrentSoftware | None = _obj(CurrentSoftware)
    ipv4_address: str | None = _str(personal=True)
    ipv6_address: str | None = _str(personal=True)
    mac_address: str | None = _str(personal=True)
    operator_account: OperatorAccount | None = _obj(OperatorAccount)
    operator_account_uuid: str | None = _str()
    suspended_at: datetime | None = _ts()
    current_suspension: Suspension | None = _obj(Suspension)
    deleted_at: datetime | None = _ts()
    operating_system: OperatingSystem | None = _obj(OperatingSystem)
