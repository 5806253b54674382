"""Pieces shared by the node document builders: timestamps, per-node generators, uuids,
the operator account, and memoized JSON text for the catalogue's fixed fragments.

The catalogue's strings written as JSON text here are plain ASCII without quotes, backslashes
or control characters, so none needs escaping. Strings that come from outside the catalogue
(node names, which a test may set to anything) go through :func:`json_text`, which escapes
only when a string needs it (the same bytes as ``msgspec.json.encode`` either way).
"""

from __future__ import annotations

import _random
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple, TypeVar

import msgspec

from nodeselect.sim._catalog import GPU_MODELS, IMAGES_AMD, IMAGES_CPU, IMAGES_GPU

__all__ = [
    "ENCODER",
    "GIB",
    "GPU_TEXT",
    "IMAGE_POOLS",
    "MIB",
    "US",
    "GpuText",
    "OperatorRow",
    "Rng",
    "account_json",
    "cpu_text",
    "fixed",
    "gpu_texts",
    "images_json",
    "iso",
    "json_str",
    "json_text",
    "load_text",
    "node_rng",
    "operator_account",
    "sample2",
    "size_text",
    "stringly_node",
    "time_writer",
    "uuid_text",
]

T = TypeVar("T")
GIB: Final = 2**30
MIB: Final = 2**20
US: Final = 1_000_000  # microseconds per second: the fleet stores times as epoch microseconds


class OperatorRow(NamedTuple):
    """What a node document says about its operator (shared by all the operator's nodes)."""

    number: int
    uuid: str
    handle: str
    created_at: int


def iso(epoch_s: float) -> str:
    """Epoch seconds as the API writes timestamps: ``2023-11-07T05:31:56Z``."""
    days, rest = divmod(int(epoch_s), 86400)
    day = _DAYS.get(days)
    if day is None:
        t = time.gmtime(days * 86400)
        day = _DAYS[days] = f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}T"
    hours, rest = divmod(rest, 3600)
    return f"{day}{_HOURS[hours]}{_MINUTES_SECONDS[rest]}"


_DAYS: dict[int, str] = {}
_HOURS: Final = tuple(f"{h:02d}:" for h in range(24))
_MINUTES_SECONDS: Final = tuple(f"{m:02d}:{s:02d}Z" for m in range(60) for s in range(60))
_MINUTES_SECONDS_BARE: Final = tuple(f"{m:02d}:{s:02d}" for m in range(60) for s in range(60))
_FRACTION_DIGITS: Final = {"s": 0, "ms": 3, "us": 6}


def _iso_bare(epoch_s: int) -> str:
    """Epoch seconds as ``2023-11-07T05:31:56`` (no fraction, no zone)."""
    days, rest = divmod(epoch_s, 86400)
    day = _DAYS.get(days)
    if day is None:
        t = time.gmtime(days * 86400)
        day = _DAYS[days] = f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}T"
    hours, rest = divmod(rest, 3600)
    return f"{day}{_HOURS[hours]}{_MINUTES_SECONDS_BARE[rest]}"


def _iso_from_us(epoch_us: int) -> str:
    return iso(epoch_us // US)


def time_writer(precision: str, suffix: str) -> Callable[[int], str]:
    """A writer of epoch microseconds as the API text with ``precision`` digits and ``suffix``.

    ``precision`` is ``s``, ``ms`` or ``us`` (a finer stored value is truncated, never rounded
    up); ``suffix`` is ``Z`` or ``+00:00``. ``time_writer("s", "Z")`` writes exactly :func:`iso`.
    """
    digits = _FRACTION_DIGITS[precision]
    if digits == 0 and suffix == "Z":
        return _iso_from_us
    if digits == 0:

        def write_s(epoch_us: int) -> str:
            return f"{_iso_bare(epoch_us // US)}{suffix}"

        return write_s
    div = 10 ** (6 - digits)

    def write(epoch_us: int) -> str:
        sec, frac = divmod(epoch_us, US)
        return f"{_iso_bare(sec)}.{frac // div:0{digits}d}{suffix}"

    return write


def stringly_node(seed: int, node_id: int, share: float) -> bool:
    """Whether node ``node_id`` of fleet ``seed`` writes its numbers as JSON strings.

    Deterministic per ``(seed, node_id)`` and independent of the node's own draws; a node is
    stringly with probability ``share``.
    """
    if share <= 0.0:
        return False
    return random.Random(f"numeric-strings:{seed}:{node_id}").random() < share


def node_rng(seed: int, node_id: int) -> random.Random:
    """The per-node generator: depends only on the fleet seed and the insertion id."""
    return random.Random((seed & 0xFFFFFFFF) << 40 | node_id)


class Rng(_random.Random):
    """The C generator alone: seeded exactly like :func:`node_rng` (``random.Random`` passes an
    int seed straight to it) without the Python-level ``seed`` wrapper."""


def sample2(r: _random.Random, population: tuple[str, ...]) -> list[str]:
    """``random.Random.sample(population, 2)`` for a small population, the same draws."""
    pool = list(population)
    n = len(pool)
    result = []
    for i in range(2):
        k = (n - i).bit_length()
        j = r.getrandbits(k)
        while j >= n - i:
            j = r.getrandbits(k)
        result.append(pool[j])
        pool[j] = pool[n - i - 1]
    return result


def _pick(r: random.Random, seq: Sequence[T]) -> T:
    return seq[int(r.random() * len(seq))]


def _int(r: random.Random, low: int, high: int) -> int:
    return low + int(r.random() * (high - low + 1))


def _hex(r: random.Random, n: int) -> str:
    return f"{r.getrandbits(4 * n):0{n}x}"


def uuid_text(r: _random.Random) -> str:
    h = f"{r.getrandbits(128) & _UUID_MASK | _UUID_BITS:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_UUID_MASK: Final = ~((0xF << 76) | (0x3 << 62)) & (2**128 - 1)
_UUID_BITS: Final = (0x4 << 76) | (0x2 << 62)


def operator_account(op: OperatorRow, seed: int) -> dict[str, Any]:
    """The ``operator_account`` object shared by all of an operator's nodes."""
    r = random.Random(f"op:{seed}:{op.number}")
    created = iso(op.created_at)
    updated = iso(op.created_at + _int(r, 0, 86400 * 300))
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
            "uuid": uuid_text(r),
            "account_uuid": op.uuid,
            "wallet_address": "0x" + _hex(r, 40),
            "deleted_at": None,
        },
        "user_profile": {
            "email_verified": r.random() < 0.9,
            "object": "user_profile",
            "created_at": created,
            "updated_at": updated,
            "uuid": uuid_text(r),
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


ENCODER: Final = msgspec.json.Encoder()


def account_json(op: OperatorRow, seed: int, when: Callable[[int], str] | None = None) -> str:
    """The operator's :func:`operator_account` as compact JSON text (for :func:`encode_document`).

    Written directly (the same draws in the same order as :func:`operator_account`, whose
    ``msgspec`` encoding it equals byte for byte). ``when`` writes epoch microseconds (a
    :func:`time_writer`; default: :func:`iso`, the historical ``...:56Z``).
    """
    r = random.Random(f"op:{seed}:{op.number}")
    rnd = r.random
    if when is None:
        created = iso(op.created_at)
        updated = iso(op.created_at + int(rnd() * (86400 * 300 + 1)))
    else:
        created = when(op.created_at * US)
        updated = when((op.created_at + int(rnd() * (86400 * 300 + 1))) * US)
    domain = ("com", "org", "net")[int(rnd() * 3)]
    profile_uuid = uuid_text(r)
    wallet = f"{r.getrandbits(160):040x}"
    verified = "true" if rnd() < 0.9 else "false"
    user_uuid = uuid_text(r)
    provider = ("google", "github", None)[int(rnd() * 3)]
    handle, account = op.handle, op.uuid
    return (
        f'{{"email":"{handle}@example.{domain}","object":"account","created_at":"{created}",'
        f'"updated_at":"{updated}","uuid":"{account}","last_login":"{updated}",'
        f'"consumer_profile":null,"operator_profile":{{"is_active":true,'
        f'"object":"operator_profile","created_at":"{created}","updated_at":"{updated}",'
        f'"uuid":"{profile_uuid}","account_uuid":"{account}","wallet_address":"0x{wallet}",'
        f'"deleted_at":null}},"user_profile":{{"email_verified":{verified},'
        f'"object":"user_profile","created_at":"{created}","updated_at":"{updated}",'
        f'"uuid":"{user_uuid}","account_uuid":"{account}","name":"{handle}","given_name":null,'
        f'"family_name":null,"middle_name":null,"preferred_username":"{handle}",'
        f'"oauth_provider":{json_str(provider)},"oauth_subject":"{r.getrandbits(60)}"}},'
        f'"deleted_at":null}}'
    )


def json_list(items: Sequence[str]) -> str:
    return '["' + '","'.join(items) + '"]' if items else "[]"


_IMAGE_LISTS: dict[tuple[int, int], str] = {}
IMAGE_POOLS: Final = (IMAGES_CPU, IMAGES_AMD, IMAGES_GPU)


def images_json(pool_no: int, bits: int) -> str:
    """The sorted JSON list of the images of pool ``pool_no`` whose bit is set (memoized)."""
    key = (pool_no, bits)
    text = _IMAGE_LISTS.get(key)
    if text is None:
        pool = IMAGE_POOLS[pool_no]
        text = _IMAGE_LISTS[key] = json_list(sorted(p for j, p in enumerate(pool) if bits >> j & 1))
    return text


def json_text(value: str) -> str:
    """``value`` as a JSON string literal: quoted as it is when it holds no quote, backslash or
    control character (every name the simulator makes), else escaped by msgspec (control
    characters as ``\\u00XX``, other text as UTF-8): always valid JSON, the same bytes as
    ``msgspec.json.encode(value)``."""
    if value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return ENCODER.encode(value).decode("utf-8")


def json_str(value: str | None) -> str:
    """:func:`json_text`, or ``null`` for ``None``."""
    return "null" if value is None else json_text(value)


def fixed(text: str) -> str:
    """``repr(round(x, n))`` from ``"%.nf" % x`` (both round the exact binary value half-even
    to ``n`` decimals; the short decimal is then the float's shortest repr)."""
    text = text.rstrip("0")
    return text + "0" if text[-1] == "." else text


class GpuText(NamedTuple):
    gpu_head: str  # {"name":...,"vram_gb_available":
    gpu_tail: str  # ,"vram_gb_max":N}
    tele_name: str  # ,"name":...,"vram":{"free":
    tele_tail: str  # ,"total":N}}
    hw_head: str  # {"name":...,"vram_bytes_total":N,"base_clock_mhz":


def gpu_text(name: str, vram_mib: int, vram_unit: str = "MiB", stringly: bool = False) -> GpuText:
    """The fixed JSON fragments of one GPU model; telemetry VRAM total in ``vram_unit``, and
    with ``stringly`` the numbers (document GB fields, telemetry VRAM) as JSON strings (the
    free values written between ``*_head``/``*_name`` and ``*_tail`` get their quotes here)."""
    q = '"' if stringly else ""
    return GpuText(
        f'{{"name":"{name}","vram_gb_available":{q}',
        f'{q},"vram_gb_max":{q}{round(vram_mib / 1024)}{q}}}',
        f',"name":"{name}","vram":{{"free":{q}',
        f'{q},"total":{q}{size_text(vram_mib * MIB, vram_unit)}{q}}}}}',
        f'{{"name":"{name}","vram_bytes_total":{vram_mib * MIB},"base_clock_mhz":',
    )


def size_text(n_bytes: int, unit: str) -> str:
    """A size of ``n_bytes`` bytes written in ``unit``: ``bytes`` and ``MiB`` as whole numbers
    (MiB rounded), ``GB`` (2**30 bytes) as ``repr(round(x, 3))``."""
    if unit == "bytes":
        return str(n_bytes)
    if unit == "MiB":
        return str(round(n_bytes / MIB))
    return fixed("%.3f" % (n_bytes / GIB))


def load_text(fraction: str, percent: bool) -> str:
    """A load written as a fraction (``fraction`` itself) or in percent (``repr(round(x*100,
    1))``; the integer ``0`` stays ``0``)."""
    if not percent or fraction == "0":
        return fraction
    return fixed("%.1f" % (float(fraction) * 100))


GPU_TEXT: Final = {m[0]: gpu_text(m[0], m[2]) for m in GPU_MODELS if m[0] is not None}
_GPU_TEXTS: dict[tuple[str, bool], dict[str, GpuText]] = {("MiB", False): GPU_TEXT}


def gpu_texts(vram_unit: str, stringly: bool) -> dict[str, GpuText]:
    """:data:`GPU_TEXT` for another telemetry VRAM unit and/or numbers as strings (memoized)."""
    key = (vram_unit, stringly)
    table = _GPU_TEXTS.get(key)
    if table is None:
        table = _GPU_TEXTS[key] = {
            m[0]: gpu_text(m[0], m[2], vram_unit, stringly) for m in GPU_MODELS if m[0] is not None
        }
    return table


_CPU_TEXT: dict[tuple[str, int, bool, bool], tuple[str, str]] = {}


def cpu_text(
    cpu: tuple[str, int, int, int], sockets: int, arm: bool, stringly: bool = False
) -> tuple[str, str]:
    """The top-level ``cpus`` and the ``current_hardware.cpus`` JSON of one CPU fit (memoized);
    ``stringly`` writes the top-level ``num_cores`` as a JSON string."""
    key = (cpu[0], sockets, arm, stringly)
    text = _CPU_TEXT.get(key)
    if text is None:
        name, cores, threads, clock = cpu
        arch = "aarch64" if arm else "x86_64"
        features = '["neon","sve2"]' if arm else '["avx2","sse4_2"]'
        q = '"' if stringly else ""
        top = ",".join([f'{{"name":"{name}","num_cores":{q}{cores}{q}}}'] * sockets)
        hw = ",".join(
            f'{{"name":"{name}","num_cores":{cores},"architecture":"{arch}",'
            f'"base_clock_mhz":{clock},"chipset":null,"device_id":"cpu{i}",'
            f'"features":{features},"num_threads_per_core":{threads}}}'
            for i in range(sockets)
        )
        text = _CPU_TEXT[key] = (f"[{top}]", f"[{hw}]")
    return text
