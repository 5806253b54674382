"""Build the node table's columns from fetched nodes (the body of ``NodeTable.from_nodes``).

Units and sources of every column are in ``nodeselect.table._table``'s module docstring. The result
is exactly the table the straightforward per-node loop builds (``tests/oracles/reference_table.py``,
checked column by column by hypothesis, and the previous builder of 834324c,
``tests/oracles/previous_build.py``, checked bit for bit on every simulator dialect); it is only
built faster.

What the build costs is reaching the fleet's Python objects: a fetched fleet's documents are
spread over a large heap, and every pass over them (one list comprehension per field) pays a cache
and TLB miss per object, several times the work done with it. So the build reaches every object
**once**, in chunks of :data:`CHUNK` nodes:

* one Python pass over a chunk reads each node's fields into a flat list of numbers and a tuple
  of strings and flags, sums CPU cores and RAM sticks, picks the largest drive, the OS name and
  architecture, ORs image bits, and matches GPU telemetry by name, as the per-node rules say;
* while the chunk is still in cache, its numbers become one ``float64`` block (``np.fromiter``
  over the flat list; ``None`` -> NaN), its strings are coded against the fleet's vocabularies
  with one dict operation per value (each normalization runs once per distinct raw value), its
  uuids packed as bytes and added to the set of uuids read (``from_nodes`` refuses or dedups a
  repeat once every chunk is read, before the fleet-wide work), its proved facts coded once per
  distinct combination, and its GPUs' fields read by comprehensions;
* once every chunk is read, only compact arrays remain (timestamps were parsed chunk by
  chunk, each distinct string of a chunk once): the telemetry units are decided for the fleet
  from whole columns (:mod:`nodeselect.table._units`), implausible values masked with array
  operations, GPU models resolved once per distinct (name, total VRAM) pair, and the engine's
  job-independent derived columns (:func:`nodeselect.table._derived.build_derived`) built
  vectorized, so the first rank on a fresh table does not pay for them.

The per-node read has two implementations, giving the same columns: the Python loop of
:func:`_read_chunk`, and an optional C extension (``nodeselect.table._cbuild``, compiled at
install time by ``hatch_build.py`` when a C compiler is there; ``NODESELECT_PURE_PYTHON=1``, read
at import, forces the Python loop). The C reader reads a chunk field by field in the loop's order
(member-descriptor slots read at their offsets, as ``getattr`` finds them), writes the numbers
into a preallocated float64 block through the buffer protocol and the GPU numbers into one
buffer, and codes each string as it reads it (uuid bytes and the set of uuids, first positions
of names and operators, look-ups of OS, architecture, driver and GPU names, facts slots, and the
timestamps of the common ``...Z`` form parsed to seconds): a separate pass over a chunk's
strings met each one cold again. It decides nothing odd on its own: any value of an unexpected
type (bool, numeric string, an int beyond a double, an error) hands the whole chunk back to the
Python loop, which redoes it; the values its dicts lack and the timestamps of other forms are
left to the Python side, as the Python loop's coding does them. The tests run every build
property with both readers.

Where the time goes (issue 13 wants >= 200k nodes/s; 20k simulator nodes). Pure Python, ~10 µs
a node: the per-node loop ~40 %, the GPU columns ~14 % (five numbers and a name per GPU, 2.3
GPUs a node), converting the chunk's numbers and transposing its strings ~8 %, coding strings
and facts ~15 %, the fleet-wide tail ~15 %. With the C reader, ~5 µs a node: the C read and
coding ~75 % (about 12k instructions a node, and cache and TLB misses: a node's ~100 objects are
spread over the heap; prefetching them ahead, level by level of the node's tree, gained at most
5-10 %, within this machine's noise), the fleet-wide tail (units, GPU models, derived columns)
the rest. The pure-Python loop is not replaced by
C-level iteration from Python on purpose: on CPython 3.11 ``node.field`` on a msgspec struct is
a specialized slot read, cheaper than ``operator.attrgetter`` (a generic ``getattr`` per field,
~1.7x the loop's cost for the node's 16 top-level fields) or ``msgspec.structs.astuple`` +
``zip`` (cheaper for one flat struct, but every nested optional struct then costs a pass of its
own: a column-wise build of every field counted ~1.4x the loop build's instructions). NumPy's
conversion of a Python number (``np.fromiter``/``np.array``, ~250 instructions a value) and a
dict operation per string are the other floors of the Python loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from itertools import compress, islice, repeat
from typing import Any, Final

import attrs
import numpy as np
import numpy.typing as npt

from nodeselect._collector import collector_paused
from nodeselect.documents import (
    COMPLIANCE_TAGS,
    CONTINENTS,
    STATUSES,
    LeanTelemetryGpu,
    LeanVram,
    numeric_string,
    parse_timestamps_to_epoch_s,
)
from nodeselect.gpus import gpu_codes_for_nodes
from nodeselect.table._derived import build_derived
from nodeselect.table._kernels import _cbuild  # the C reader, or None: see _kernels
from nodeselect.table._table import (
    GIB,
    TELEMETRY_FRESH_S,
    NodeTable,
    TableNode,
    arch_name,
    driver_number,
    gpu_names_agree,
)
from nodeselect.table._units import (
    SOURCES,
    UnitDecision,
    Units,
    implausible_loads,
    implausible_sizes,
    infer_load_unit,
    infer_size_unit,
)

__all__ = ["CHUNK", "RepeatedUuids", "build_table", "build_table_chunks"]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]

#: Nodes read per chunk: small enough that a chunk's objects are still in cache when its
#: columns are converted, large enough that the per-chunk NumPy calls cost little per node.
CHUNK: Final = 1024

_NO_TELE: Final = LeanTelemetryGpu()  # stands for "no matched telemetry" (every field None)
_NO_VRAM: Final = LeanVram()
_MASK64: Final = (1 << 64) - 1
_NAN_KEY: Final = 0x7FF8000000000000  # the bits every NaN total is keyed by (no number has them)

# Columns of a chunk's number block (one row per node; None -> NaN).
_REP, _MS, _CPU, _RF, _RT, _DF, _DT, _SAV, _SMX, _WHOLE, _CORES, _NG = range(12)
_NUMS: Final = 12
# Rows of the C reader's int64 output (its enum INT_*).
_I_NAME, _I_OPERATOR, _I_FACTS, _I_UUID_LEN, _I_OS, _I_ARCH, _I_DRIVER = range(7)
_INTS: Final = 7
# Fields of a node's other tuple.
_OBJS: Final = 12


def _f64(values: Iterable[Any], count: int) -> F64:
    """Numbers as float64, ``None`` -> NaN (``np.fromiter``: per item, cheaper than
    ``np.array``, which first discovers the list's shape and types)."""
    return np.fromiter(values, dtype=np.float64, count=count)


def _evidence_value(v: Any) -> float:
    """One evidence-only value as a float: numbers and numeric strings; anything else NaN."""
    t = type(v)
    if t is int or t is float:
        return float(v)
    if t is str:
        x = numeric_string(v.strip())
        return math.nan if x is None else float(x)
    return math.nan


def _sizes_gb(
    d: UnitDecision, free_raw: F64, total_raw: F64, known_gb: F64
) -> tuple[F64, F64, B, UnitDecision]:
    """Telemetry sizes in GB with implausible ones (and all, when undecided) set to NaN;
    the mask of values present but dropped, and the decision with its fallback count."""
    present = ~(np.isnan(free_raw) & np.isnan(total_raw))
    if d.unit is None:
        dropped = present
        free = np.full_like(free_raw, np.nan)
        total = free
    else:
        f = d.factor
        free, total = free_raw / f, total_raw / f
        dropped = present & implausible_sizes(free, total, known_gb)
        if dropped.any():
            free = np.where(dropped, np.nan, free)
            total = np.where(dropped, np.nan, total)
    return free, total, dropped, attrs.evolve(d, fallbacks=int(np.count_nonzero(dropped)))


def _loads(d: UnitDecision, raw: F64) -> tuple[F64, UnitDecision]:
    """Loads as fractions, implausible ones (all, when undecided) NaN, with the fallbacks."""
    present = ~np.isnan(raw)
    if d.unit is None:
        return np.full_like(raw, np.nan), attrs.evolve(d, fallbacks=int(np.count_nonzero(present)))
    load = raw / d.factor if d.factor != 1.0 else raw
    bad = implausible_loads(load)
    n_bad = int(np.count_nonzero(bad))
    if n_bad:
        load = np.where(bad, np.nan, load)
    return load, attrs.evolve(d, fallbacks=n_bad)


def _or_empty(v: str | None) -> str:
    return v or ""


def _upper_or_empty(v: str | None) -> str:
    return (v or "").upper()


def _os_norm(v: str) -> str:
    return v.strip().lower()


def _lookup(
    lut: dict[Any, int],
    values: Sequence[Hashable],
    new: Callable[[Any], int],
    dtype: type[np.signedinteger[Any]],
) -> npt.NDArray[Any]:
    """Each value's code in ``lut`` (codes >= 0), one dict lookup per value; the values it
    lacks are coded by ``new`` once each, in order of first appearance."""
    n = len(values)
    if _cbuild is not None and type(values) is list:
        out = np.empty(n, dtype=dtype)
        if not _cbuild.codes(lut, values, out):
            return out
    else:
        out = np.fromiter(map(lut.get, values, repeat(-1)), dtype=dtype, count=n)
    return _resolve(lut, values, new, out)


def _resolve(
    lut: dict[Any, int],
    values: Sequence[Hashable],
    new: Callable[[Any], int],
    out: npt.NDArray[Any],
) -> npt.NDArray[Any]:
    """``out`` (each value's code, -1 where ``lut`` lacks the value) with the lacking values
    coded by ``new`` once each, in order of first appearance."""
    missing = out < 0
    if missing.any():
        absent = list(compress(values, missing.tolist()))
        for v in dict.fromkeys(absent):
            new(v)
        out[missing] = np.fromiter(map(lut.__getitem__, absent), dtype=out.dtype, count=len(absent))
    return out


def _positions(
    first: dict[Any, int],
    values: Sequence[Hashable],
    start: int,
    dtype: type[np.signedinteger[Any]],
) -> npt.NDArray[Any]:
    """``first.setdefault(value, start + i)`` of each value: where each value first appeared."""
    n = len(values)
    if _cbuild is not None and type(values) is list:
        out = np.empty(n, dtype=dtype)
        _cbuild.positions(first, values, start, out)
        return out
    return np.fromiter(map(first.setdefault, values, range(start, start + n)), dtype=dtype, count=n)


class _Vocab:
    """Codes over a vocabulary of normalized values, grown chunk by chunk: entry 0 is ``""``,
    then ``base``, then the others in order of first appearance; ``norm`` runs once per
    distinct raw value (the codes of coding the whole fleet at once)."""

    __slots__ = ("codes", "lut", "norm")

    def __init__(self, base: Sequence[str], norm: Callable[[Any], str]) -> None:
        self.codes: dict[str, int] = {"": 0}
        for v in base:
            self.codes.setdefault(v, len(self.codes))
        self.lut: dict[Hashable, int] = {}
        self.norm = norm
        if norm is _or_empty:  # raw values are their own keys: new ones are added in bulk
            self.lut.update(self.codes)
            self.lut[None] = 0

    def code(self, values: Sequence[Hashable]) -> I32:
        out: I32 = _lookup(self.lut, values, self.code1, np.int32)
        return out

    def code1(self, raw: Hashable) -> int:
        c = self.lut.get(raw)
        if c is None:
            key = self.norm(raw)
            c = self.codes.get(key)
            if c is None:
                c = self.codes[key] = len(self.codes)
            self.lut[raw] = c
        return c

    @property
    def vocab(self) -> tuple[str, ...]:
        return tuple(self.codes)


class _FirstSeen:
    """Codes over the vocabulary ``""`` then the other values in order of first appearance
    (``None`` is ``""``), as :class:`_Vocab` with no normalization gives, at one dict
    operation per value: each chunk keys every value by the position of its first appearance
    (``dict.setdefault``, in C), and :meth:`codes` numbers the positions densely once the
    whole fleet is read. Worth it for columns of mostly distinct values (node names,
    operators), where coding chunk by chunk cost five dict operations per new value."""

    __slots__ = ("first", "raw", "seen")

    def __init__(self) -> None:
        self.first: dict[Hashable, int] = {"": 0, None: 0}  # value -> position + 1, "" -> 0
        self.raw: list[I64] = []
        self.seen = 1

    def add(self, values: Sequence[Hashable]) -> None:
        self.added(_positions(self.first, values, self.seen, np.int64))

    def added(self, positions: I64) -> None:
        """Values keyed in :attr:`first` elsewhere (from position :attr:`seen` on): their
        positions."""
        self.raw.append(positions)
        self.seen += len(positions)

    def codes(self) -> I32:
        """Every value added so far, coded."""
        firsts = np.fromiter(self.first.values(), dtype=np.int64, count=len(self.first))[2:]
        table = np.zeros(self.seen, dtype=np.int32)
        table[firsts] = np.arange(1, len(firsts) + 1, dtype=np.int32)
        out: I32 = table[np.concatenate(self.raw)]
        return out

    @property
    def vocab(self) -> tuple[str, ...]:
        return ("", *islice(self.first, 2, None))  # type: ignore[arg-type]  # "", None, ...

    def release(self) -> None:
        """Forget the values read (the build's last use: a dict of every distinct value)."""
        self.first = {"": 0, None: 0}
        self.raw = []
        self.seen = 1


class _Raw:
    """Distinct raw values (e.g. GPU names, ``None`` included) coded in order of first
    appearance, chunk by chunk; ``values[code]`` is the raw value."""

    __slots__ = ("index", "values")

    def __init__(self) -> None:
        self.index: dict[Hashable, int] = {}
        self.values: list[Any] = []

    def code(self, values: Sequence[Hashable]) -> I64:
        out: I64 = _lookup(self.index, values, self.new, np.int64)
        return out

    def new(self, v: Hashable) -> int:
        c = self.index.get(v)
        if c is None:
            c = self.index[v] = len(self.values)
            self.values.append(v)
        return c


def _words(packed: list[int], nbits: int) -> npt.NDArray[np.uint64]:
    """Python-int bitsets -> (words, n) uint64, bit j of word j // 64 = vocabulary entry j."""
    words = max(1, (nbits + 63) // 64)
    if words == 1:
        return np.array(packed, dtype=np.uint64).reshape(1, len(packed))
    bits = np.zeros((words, len(packed)), dtype=np.uint64)
    for w in range(words):
        shift = 64 * w
        bits[w] = np.array([(p >> shift) & _MASK64 for p in packed], dtype=np.uint64)
    return bits


def _utf8(strings: Sequence[str]) -> tuple[bytes, I64]:
    """The UTF-8 bytes of the strings, concatenated, and each one's length in bytes."""
    joined = "".join(strings)
    if joined.isascii():
        lengths = np.fromiter(map(len, strings), dtype=np.int64, count=len(strings))
        return joined.encode("ascii"), lengths
    encoded = [s.encode() for s in strings]
    return b"".join(encoded), np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))


def _bytes_array(data: bytes, lengths: I64) -> npt.NDArray[np.bytes_]:
    """The ``S`` array of the concatenated byte strings (as ``np.array([b, ...], np.bytes_)``:
    width the longest, at least 1)."""
    width = max(1, int(lengths.max()) if len(lengths) else 1)
    if len(data) == width * len(lengths):  # every string as long as the longest (uuids)
        return np.frombuffer(data, dtype=f"S{width}").copy()
    mat = np.zeros((len(lengths), width), dtype=np.uint8)
    mat[np.arange(width) < lengths[:, None]] = np.frombuffer(data, dtype=np.uint8)
    return mat.view(f"S{width}").reshape(len(lengths))


class _Fleet:
    """What the chunks read: per-chunk arrays (concatenated at the end) and the fleet-wide
    vocabularies they are coded against."""

    def __init__(self) -> None:
        self.nums: list[F64] = []
        self.seen: list[F64] = []  # last_seen_at, Unix seconds
        self.created: list[F64] = []  # created_at where timestamp_ms is missing, else NaN
        self.flags: list[npt.NDArray[np.bool_]] = []
        self.uuid: list[tuple[bytes, I64]] = []
        self.os_code: list[I32] = []
        self.arch_code: list[I32] = []
        self.driver: list[I32] = []
        self.image_words: list[int] = []
        self.facts: list[I64] = []
        self.g_name: list[I64] = []
        self.g_free: list[F64] = []
        self.g_max: list[F64] = []
        self.g_load: list[F64] = []
        self.g_tfree: list[F64] = []
        self.g_ttotal: list[F64] = []
        #: per chunk, each node's RAM (each GPU's VRAM) total from a field of known unit
        self.ram_known: list[F64] = []
        self.vram_known: list[F64] = []
        self.names = _FirstSeen()
        #: per chunk, the UTF-8 bytes of its new names and their lengths (the vocabulary's
        #: bytes, from the C reader; None once a chunk was read by the Python loop)
        self.name_bytes: list[tuple[bytes, I64]] | None = []
        self.operators = _FirstSeen()
        self.oses = _Vocab((), _os_norm)
        self.arches = _Vocab(("x86_64", "aarch64"), arch_name)
        self.statuses = _Vocab(STATUSES, _or_empty)
        self.continents = _Vocab(CONTINENTS, _or_empty)
        self.countries = _Vocab((), _upper_or_empty)
        self.subdivisions = _Vocab((), _upper_or_empty)
        self.gpu_names = _Raw()
        self.drivers: dict[str | None, int] = {}  # version -> driver_number (>= 0)
        self.image_bit: dict[str, int] = {}
        self.facts_slots: dict[tuple[Any, ...], int] = {}  # distinct facts -> slot
        self.facts_codes: list[tuple[int, int, int, int]] = []  # per slot
        self.tag_words: list[int] = []  # per slot
        self.tag_vocab: dict[str, int] = {
            v: k for k, v in enumerate(dict.fromkeys(COMPLIANCE_TAGS))
        }
        self.numeric_strings = 0
        #: the uuids read (a repeat is noticed as the chunks are read, instead of in a pass of
        #: its own over the fleet's objects: fewer uuids here than nodes read)
        self.uuids_seen: set[str] = set()
        self.read = 0

    def driver_number(self, version: str | None) -> int:
        n = self.drivers[version] = driver_number(version)
        return n


def _read_chunk(nodes: Sequence[TableNode], fleet: _Fleet) -> None:
    """Read one chunk of nodes (the only place the build touches their objects)."""
    nan = math.nan
    isnan = math.isnan
    nums: list[Any] = []  # _NUMS numbers per node, one flat list
    objs: list[tuple[Any, ...]] = []
    gpu_flat: list[Any] = []
    tele_flat: list[LeanTelemetryGpu] = []
    add_num, add_obj = nums.extend, objs.append
    ext_gpu, ext_tele = gpu_flat.extend, tele_flat.extend
    image_bit = fleet.image_bit
    numeric_strings = 0
    for node in nodes:
        d = node.lean
        f = node.facts
        cpus = d.cpus
        k = 0
        if cpus:
            for c in cpus:
                k += c.num_cores or 0

        ev = d.latest_hardware_event
        ms = created = cpu_a = rf = rt = tg = None
        if ev is not None:
            ms = ev.timestamp_ms
            created = ev.created_at
            md = ev.metadata
            if md is not None:
                cm = md.cpu
                if cm is not None:
                    cpu_a = cm.average
                r = md.ram
                if r is not None:
                    rf = r.free
                    rt = r.total
                gm = md.gpu
                if gm is not None:
                    tg = gm.gpus

        s_av, s_mx = nan, nan
        whole = True  # every stick has memory_gb_max: the sum is the node's total
        rams = d.rams
        if rams and len(rams) == 1:  # the common case, without the running sum's NaN tests
            rr = rams[0]
            x = rr.memory_gb_available
            if x is not None:
                s_av = 0.0 + x
            x = rr.memory_gb_max
            if x is not None:
                s_mx = 0.0 + x
            else:
                whole = False
        elif rams:
            for rr in rams:
                x = rr.memory_gb_available
                if x is not None:
                    s_av = (0.0 if isnan(s_av) else s_av) + x
                x = rr.memory_gb_max
                if x is not None:
                    s_mx = (0.0 if isnan(s_mx) else s_mx) + x
                else:
                    whole = False
        numeric_strings += d.numeric_strings

        drives = d.hard_drives
        if not drives:
            df = dt = None
        elif len(drives) == 1:
            h = drives[0]
            df = h.available_capacity_gb
            dt = h.max_capacity_gb
        else:
            av = [h.available_capacity_gb for h in drives if h.available_capacity_gb is not None]
            mx = [h.max_capacity_gb for h in drives if h.max_capacity_gb is not None]
            df = max(av) if av else None
            dt = max(mx) if mx else None

        sw = d.current_software
        hw = d.current_hardware
        hw_os = None if hw is None else hw.operating_system
        word = 0
        if sw is None:
            sw_os = version = None
        else:
            sw_os = sw.operating_system
            drv = sw.nvidia_driver
            version = None if drv is None else drv.version
            tags = sw.cached_image_tags
            if tags:
                for tag in tags:
                    bit = image_bit.get(tag)
                    if bit is None:
                        bit = image_bit[tag] = 1 << len(image_bit)
                    word |= bit
        d_os = d.operating_system
        name = ""
        if sw_os is not None and sw_os.name:
            name = sw_os.name
        elif hw_os is not None and hw_os.name:
            name = hw_os.name
        elif d_os is not None and d_os.name:
            name = d_os.name
        arch = None
        if hw_os is not None and hw_os.architecture:
            arch = hw_os.architecture
        elif sw_os is not None and sw_os.architecture:
            arch = sw_os.architecture
        elif d_os is not None and d_os.architecture:
            arch = d_os.architecture

        gpus = d.gpus
        ng = 0
        if gpus:
            ng = len(gpus)
            ext_gpu(gpus)
            matched = tg is not None and len(tg) == ng
            if matched:
                for t, g in zip(tg, gpus, strict=True):  # type: ignore[arg-type]
                    a, b = t.name, g.name
                    if a != b and not gpu_names_agree(a, b):
                        matched = False
                        break
            ext_tele(tg if matched else [_NO_TELE] * ng)  # type: ignore[arg-type]

        add_num(
            (
                d.reputation,
                ms,
                cpu_a,
                rf,
                rt,
                df,
                dt,
                s_av,
                s_mx,
                s_mx if whole else nan,
                k,
                ng,
            )
        )
        add_obj(
            (
                d.uuid,
                d.name,
                d.operator_account_uuid,
                d.last_seen_at,
                created,
                name,
                arch,
                version,
                d.suspended_at is not None,
                d.deleted_at is not None,
                word,
                (f.status, f.continent, f.country, f.subdivision, f.compliance_tags),
            )
        )
    fleet.numeric_strings += numeric_strings
    _convert_chunk(nums, objs, gpu_flat, tele_flat, fleet)


def _convert_chunk(
    nums: list[Any],
    objs: list[tuple[Any, ...]],
    gpu_flat: list[Any],
    tele_flat: list[LeanTelemetryGpu],
    fleet: _Fleet,
) -> None:
    """A chunk's rows -> arrays and codes, while its objects are still in cache."""
    # one flat pass (None -> NaN): a third of np.array's cost of discovering a list of rows
    block = _f64(nums, len(nums)).reshape(-1, _NUMS)
    cols = list(zip(*objs, strict=True)) or [()] * _OBJS
    (
        uuid,
        name,
        operator,
        last_seen,
        created,
        os_name,
        arch,
        driver,
        suspended,
        deleted,
        words,
        facts,
    ) = cols
    flags = np.array([suspended, deleted], dtype=np.bool_).reshape(2, len(objs))
    # the event's created_at where it has no timestamp_ms
    untimed = np.isnan(block[:, _MS])
    created_s = np.full(len(objs), math.nan)
    created_s[untimed] = _epoch_s(list(compress(created, untimed.tolist())))
    k = len(gpu_flat)
    vrams = [_NO_VRAM if t.vram is None else t.vram for t in tele_flat]
    gpu_nums = (
        _f64([g.vram_gb_available for g in gpu_flat], k),
        _f64([g.vram_gb_max for g in gpu_flat], k),
        _f64([t.load for t in tele_flat], k),
        _f64([v.free for v in vrams], k),
        _f64([v.total for v in vrams], k),
    )
    fleet.uuid.append(_utf8(uuid))
    fleet.uuids_seen.update(uuid)
    fleet.names.add(name)
    fleet.name_bytes = None  # new names' bytes are collected by the C reader only
    fleet.operators.add(operator)
    fleet.seen.append(_epoch_s(last_seen))
    fleet.created.append(created_s)
    fleet.os_code.append(fleet.oses.code(os_name))
    fleet.arch_code.append(fleet.arches.code(arch))
    fleet.driver.append(_lookup(fleet.drivers, driver, fleet.driver_number, np.int32))
    fleet.facts.append(_facts_slots(facts, fleet))
    g_names = [g.name for g in gpu_flat]
    fleet.g_name.append(fleet.gpu_names.code(g_names))
    _add_chunk(fleet, block, flags, words, gpu_nums)


def _read_chunk_c(nodes: Sequence[TableNode], fleet: _Fleet) -> None:
    """:func:`_read_chunk` by the C extension, which also codes the chunk's strings as it
    reads them (while their objects are in cache): same columns; the Python loop redoes a
    chunk whose values the extension calls unusual."""
    assert _cbuild is not None
    n = len(nodes)
    block = np.empty((n, _NUMS))
    flags = np.empty((2, n), dtype=np.bool_)
    ints = np.empty((_INTS, n), dtype=np.int64)
    times = np.empty((2, n))
    facts_first: dict[tuple[Any, ...], int] = {}
    try:
        out = _cbuild.read_chunk(
            nodes,
            block,
            flags,
            fleet.image_bit,
            gpu_names_agree,
            (fleet.oses.lut, fleet.arches.lut, fleet.drivers, fleet.gpu_names.index),
            fleet.names.first,
            fleet.operators.first,
            fleet.names.seen,  # = fleet.operators.seen: both count the nodes read
            fleet.facts_slots,
            facts_first,
            fleet.uuids_seen,
            ints,
            times,
        )
    except _cbuild.Fallback:
        _read_chunk(nodes, fleet)
        return
    os_name, arch, driver, words, g_names, g_bytes, g_codes, u_bytes, n_bytes, n_lengths = out[:10]
    odd, numeric_strings = out[10:]
    fleet.numeric_strings += numeric_strings
    if odd:  # timestamps of other forms than the C parser's
        rows, at, values = zip(*odd, strict=True)
        times[list(rows), list(at)] = parse_timestamps_to_epoch_s(values)
    fleet.uuid.append((u_bytes, ints[_I_UUID_LEN]))
    fleet.names.added(ints[_I_NAME])
    if fleet.name_bytes is not None:
        fleet.name_bytes.append((n_bytes, np.frombuffer(n_lengths, dtype=np.int64)))
    fleet.operators.added(ints[_I_OPERATOR])
    fleet.seen.append(times[0])
    fleet.created.append(times[1])
    fleet.os_code.append(_resolve(fleet.oses.lut, os_name, fleet.oses.code1, ints[_I_OS]))
    fleet.arch_code.append(_resolve(fleet.arches.lut, arch, fleet.arches.code1, ints[_I_ARCH]))
    fleet.driver.append(
        # driver numbers are below 2**31 (driver_number's packing)
        _resolve(fleet.drivers, driver, fleet.driver_number, ints[_I_DRIVER]).astype(np.int32)
    )
    slot = ints[_I_FACTS]  # the slot, or -1 - the row new facts first appear at
    new = slot < 0
    if new.any():
        slot[new] = _slots_of(facts_first, -1 - slot[new], fleet, n)
    fleet.facts.append(slot)
    fleet.g_name.append(
        _resolve(
            fleet.gpu_names.index,
            g_names,
            fleet.gpu_names.new,
            np.frombuffer(g_codes, dtype=np.int64).copy(),
        )
    )
    g = np.frombuffer(g_bytes, dtype=np.float64).reshape(-1, 5).T
    _add_chunk(fleet, block, flags, words, tuple(g))


def _add_chunk(
    fleet: _Fleet, block: F64, flags: B, words: Sequence[int], g_nums: Sequence[F64]
) -> None:
    """A chunk's numbers, flags and image words -> the fleet (both readers end here)."""
    fleet.nums.append(block)
    fleet.read += len(block)
    fleet.flags.append(flags)
    fleet.image_words.extend(words)
    g_free, g_max, g_load, g_tfree, g_ttotal = g_nums
    fleet.g_free.append(g_free)
    fleet.g_max.append(g_max)
    fleet.g_load.append(g_load)
    fleet.g_tfree.append(g_tfree)
    fleet.g_ttotal.append(g_ttotal)


def _epoch_s(strings: Sequence[str | None]) -> F64:
    """:func:`parse_timestamps_to_epoch_s`, each distinct string parsed once (a fleet's
    timestamps repeat: nodes report on the same seconds)."""
    n = len(strings)
    first: dict[str | None, int] = {}  # each distinct string -> where it first appears
    where = _positions(first, strings, 0, np.intp)
    if len(first) * 2 > n:
        return parse_timestamps_to_epoch_s(strings)
    at = np.zeros(n)
    at[np.fromiter(first.values(), dtype=np.intp, count=len(first))] = parse_timestamps_to_epoch_s(
        list(first)
    )
    out: F64 = at[where]
    return out


def _facts_slots(facts: Sequence[tuple[Any, ...]], fleet: _Fleet) -> I64:
    """Each node's proved facts (status, continent, country, subdivision, compliance tags) as
    the slot of its distinct combination; a new combination is coded once (vocabularies grow
    in order of first appearance, tags sorted within a node, as coding every node would).

    Each node's facts are hashed once: keyed (``dict.setdefault``, in C) by the position of
    their first appearance in the chunk, which the distinct combinations then map to slots."""
    first: dict[tuple[Any, ...], int] = {}
    try:
        pos = _positions(first, facts, 0, np.intp)
    except TypeError:  # compliance tags in an unhashable collection
        facts = [(*f[:4], frozenset(f[4])) for f in facts]
        first = {}
        pos = _positions(first, facts, 0, np.intp)
    return _slots_of(first, pos, fleet, len(pos))


def _slots_of(first: dict[tuple[Any, ...], int], pos: Any, fleet: _Fleet, n: int) -> I64:
    """The slots of facts in a chunk of ``n`` rows: ``first`` maps each distinct facts tuple
    to the row it first appears at, ``pos`` is the first appearance of each row asked for."""
    slots = fleet.facts_slots
    slot_at = np.zeros(n, dtype=np.int64)
    for key, at in first.items():
        slot = slots.get(key)
        if slot is None:
            slot = slots[key] = len(slots)
            status, continent, country, subdivision, tags = key
            fleet.facts_codes.append(
                (
                    fleet.statuses.code1(status),
                    fleet.continents.code1(continent),
                    fleet.countries.code1(country),
                    fleet.subdivisions.code1(subdivision),
                )
            )
            vocab = fleet.tag_vocab
            word = 0
            for v in sorted(tags):
                c = vocab.get(v)
                if c is None:
                    c = vocab[v] = len(vocab)
                word |= 1 << c
            fleet.tag_words.append(word)
        slot_at[at] = slot
    out: I64 = slot_at[pos]
    return out


def _gpu_codes(fleet: _Fleet, name_code: I64, total_gb: F64) -> npt.NDArray[np.uint16]:
    """:func:`gpu_codes_for_nodes` of every GPU, resolved once per distinct (name, total)
    pair (NaN -> ``None``; ``-0.0`` and ``0.0`` are one pair, as in that function's cache)."""
    if len(name_code) == 0:
        return np.zeros(0, dtype=np.uint16)
    bits = (total_gb + 0.0).view(np.int64).copy()  # + 0.0 turns -0.0 into 0.0
    bits[np.isnan(total_gb)] = _NAN_KEY
    values = np.unique(bits)
    key = name_code * len(values) + np.searchsorted(values, bits)
    cells = (int(name_code.max()) + 1) * len(values)
    if cells <= 4 * len(key) + 4096:
        # the distinct keys numbered in a dense table (names x values are few): half the time
        # of np.unique(key, return_index=True, return_inverse=True)
        present = np.zeros(cells, dtype=np.bool_)
        present[key] = True
        inverse = (np.cumsum(present) - 1)[key]
        first = np.empty(int(np.count_nonzero(present)), dtype=np.intp)
        first[inverse] = np.arange(len(key))  # a GPU of each pair (any one: they are alike)
    else:  # many distinct names and totals (a hostile fleet): no table of their product
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
    names = fleet.gpu_names.values
    totals = total_gb[first].tolist()
    codes = gpu_codes_for_nodes(
        [names[c] for c in name_code[first].tolist()],
        [None if v != v else v for v in totals],  # noqa: PLR0124 - NaN test
    )
    out: npt.NDArray[np.uint16] = np.asarray(codes, dtype=np.uint16)[inverse]
    return out


class RepeatedUuids(Exception):  # noqa: N818 - a signal to the caller, not an error shown
    """Raised by :func:`build_table` with ``unique=True`` when a uuid appears twice (the
    caller then dedups with :func:`nodeselect.table._table.unique_nodes` and builds again)."""


def build_table(
    nodes: Sequence[TableNode], now_s: float, units: Units | None = None, *, unique: bool = False
) -> NodeTable:
    """The table of ``nodes`` with telemetry freshness judged at ``now_s`` (Unix seconds).

    ``units``: telemetry units decided elsewhere (e.g. on the whole fleet, for a shard built
    apart) instead of inferred from ``nodes``; the per-node plausibility checks still run.
    ``unique``: raise :class:`RepeatedUuids` once every node is read (before the fleet-wide
    work) when a uuid repeats; the uuids are checked as the chunks are read (a set of them,
    filled in C), where a pass of its own over 20k nodes' objects cost ~8 % of the build.

    The cyclic garbage collector is paused while building (:func:`collector_paused`): the
    build allocates only acyclic lists and tuples, and with a large fleet alive each
    collection would walk the whole fleet, which took over half of the build time.
    """
    with collector_paused():
        return _build(nodes, now_s, units, unique)


def _given(d: UnitDecision) -> UnitDecision:
    """A decision taken from elsewhere: its unit and reasons, this table's counts start at 0."""
    return attrs.evolve(d, how=f"given: {d.how}", evidence=0, agreeing=0, fallbacks=0, tally=None)


def build_table_chunks(
    chunks: Iterable[Sequence[TableNode]], now_s: float, units: Units | None = None
) -> NodeTable:
    """:func:`build_table` of the concatenation of ``chunks``, reading them one at a time: only
    one chunk's node objects need to be alive (each is read and converted to columns before
    the next is asked for). The uuids are not checked for repeats here (a set of them would
    hold every uuid string): check the table's ``uuid`` column."""
    with collector_paused():
        fleet = _Fleet()
        read = _read_chunk if _cbuild is None else _read_chunk_c
        for chunk in chunks:
            for a in range(0, len(chunk), CHUNK):
                _read_known(chunk[a : a + CHUNK], fleet, read)
            fleet.uuids_seen.clear()
            del chunk  # (before the next is made: one chunk's objects alive, not two)
        if not fleet.nums:
            _read_known((), fleet, read)
        return _finish(fleet, now_s, units)


def _read_known(
    nodes: Sequence[TableNode], fleet: _Fleet, read: Callable[[Sequence[TableNode], _Fleet], None]
) -> None:
    """Read one chunk, then its known RAM and VRAM totals (the only other use of its objects)."""
    read(nodes, fleet)
    block, g_max = fleet.nums[-1], fleet.g_max[-1]
    fleet.ram_known.append(_ram_known(nodes, block[:, _WHOLE]))
    offsets = np.zeros(len(block) + 1, dtype=np.int32)
    np.cumsum(block[:, _NG].astype(np.int64), out=offsets[1:])
    fleet.vram_known.append(_vram_known(nodes, g_max, offsets))


def _build(
    nodes: Sequence[TableNode], now_s: float, given: Units | None, unique: bool
) -> NodeTable:
    n = len(nodes)
    fleet = _Fleet()
    read = _read_chunk if _cbuild is None else _read_chunk_c
    for a in range(0, max(n, 1), CHUNK):
        _read_known(nodes[a : a + CHUNK], fleet, read)
    if unique and len(fleet.uuids_seen) != fleet.read:
        raise RepeatedUuids
    fleet.uuids_seen.clear()
    return _finish(fleet, now_s, given)


def _finish(fleet: _Fleet, now_s: float, given: Units | None) -> NodeTable:
    """The table of every chunk ``fleet`` read: units decided (or ``given``), columns joined.

    Built a group of columns at a time, each emptying the chunk lists and vocabularies it
    joins as it goes: the fleet's chunks, its float64 numbers and the table are then not
    all held at once (100k nodes: a peak of 128 MB of traced memory before, 73 MB after)."""
    cols: dict[str, Any] = {}
    _coded_columns(fleet, cols)
    ram_unit, cpu_unit, gcount = _node_columns(fleet, now_s, given, cols)
    vram_unit, load_unit = _gpu_columns(fleet, gcount, given, cols)
    units = Units(
        ram=ram_unit,
        vram=vram_unit,
        gpu_load=load_unit,
        cpu_load=cpu_unit,
        numeric_strings=fleet.numeric_strings,
    )
    return build_derived(NodeTable(**cols, units=units))


def _joined(parts: list[Any], axis: int = 0) -> Any:
    """The chunks' arrays joined, and the list emptied (the chunks freed)."""
    out = np.concatenate(parts, axis=axis)
    parts.clear()
    return out


def _coded_columns(fleet: _Fleet, cols: dict[str, Any]) -> None:
    """The uuids, names, operators, categories, images and proved facts."""
    if fleet.read:
        uuid_bytes = b"".join(u[0] for u in fleet.uuid)
        uuid_lengths = np.concatenate([u[1] for u in fleet.uuid])
        fleet.uuid.clear()
        cols["uuid"] = _bytes_array(uuid_bytes, uuid_lengths)
        del uuid_bytes, uuid_lengths
    else:
        cols["uuid"] = np.zeros(0, "S1")
    cols["name_code"] = fleet.names.codes()
    if fleet.name_bytes is None:
        cols["name_vocab"] = _bytes_array(*_utf8(fleet.names.vocab))
    else:
        name_bytes = b"".join(b for b, _ in fleet.name_bytes)
        lengths = [np.zeros(1, np.int64), *(ln for _, ln in fleet.name_bytes)]
        fleet.name_bytes.clear()
        cols["name_vocab"] = _bytes_array(name_bytes, np.concatenate(lengths))
    fleet.names.release()
    cols["operator_code"] = fleet.operators.codes()
    cols["operator_vocab"] = fleet.operators.vocab
    fleet.operators.release()
    cols["os_code"] = _joined(fleet.os_code).astype(np.uint8)
    cols["os_vocab"] = fleet.oses.vocab
    cols["arch_code"] = _joined(fleet.arch_code).astype(np.uint8)
    cols["arch_vocab"] = fleet.arches.vocab
    cols["driver_version"] = _joined(fleet.driver)
    cols["image_bits"] = _words(fleet.image_words, len(fleet.image_bit))
    fleet.image_words.clear()
    cols["image_vocab"] = tuple(fleet.image_bit)
    flags = _joined(fleet.flags, axis=1)
    cols["suspended"] = flags[0].copy()
    cols["deleted"] = flags[1].copy()
    facts_slot = _joined(fleet.facts)
    facts_codes = np.array(fleet.facts_codes, dtype=np.int64).reshape(-1, 4)[facts_slot].T
    cols["compliance_bits"] = _words(fleet.tag_words, len(fleet.tag_vocab))[:, facts_slot]
    cols["compliance_vocab"] = tuple(fleet.tag_vocab)
    cols["status_code"] = facts_codes[0].astype(np.uint8)
    cols["status_vocab"] = fleet.statuses.vocab
    cols["continent_code"] = facts_codes[1].astype(np.uint8)
    cols["continent_vocab"] = fleet.continents.vocab
    cols["country_code"] = facts_codes[2].astype(np.uint16)
    cols["country_vocab"] = fleet.countries.vocab
    cols["subdivision_code"] = facts_codes[3].astype(np.uint16)
    cols["subdivision_vocab"] = fleet.subdivisions.vocab


def _node_columns(
    fleet: _Fleet, now_s: float, given: Units | None, cols: dict[str, Any]
) -> tuple[UnitDecision, UnitDecision, I64]:
    """The per-node numbers (RAM and CPU-load units decided); the units and GPU counts."""
    n = fleet.read
    nums = _joined(fleet.nums)
    tele_s = nums[:, _MS] / 1000.0
    need = np.isnan(tele_s)
    if need.any():
        tele_s[need] = np.concatenate(fleet.created)[need]
    fleet.created.clear()
    fresh = (now_s - tele_s) <= TELEMETRY_FRESH_S

    ram_known = _joined(fleet.ram_known)
    rf_raw, rt_raw = nums[:, _RF], nums[:, _RT]
    ram_unit = (
        _given(given.ram)
        if given is not None
        else infer_size_unit(
            "ram",
            rt_raw,
            ram_known,
            reporting=int(np.count_nonzero(~np.isnan(rt_raw))),
            source=SOURCES["ram"],
        )
    )
    rt, rtt, ram_dropped, ram_unit = _sizes_gb(ram_unit, rf_raw, rt_raw, ram_known)
    del ram_known
    # Counted only where the telemetry would have been used (fresh).
    ram_unit = attrs.evolve(ram_unit, fallbacks=int(np.count_nonzero(ram_dropped & fresh)))
    cols["ram_free_gb"] = np.where(fresh & ~np.isnan(rt), rt, nums[:, _SAV]).astype(np.float32)
    cols["ram_total_gb"] = np.where(fresh & ~np.isnan(rtt), rtt, nums[:, _SMX]).astype(np.float32)
    del rt, rtt, ram_dropped, fresh
    cpu_raw = np.ascontiguousarray(nums[:, _CPU])
    cpu_unit = (
        _given(given.cpu_load)
        if given is not None
        else infer_load_unit("cpu_load", cpu_raw, source=SOURCES["cpu_load"])
    )
    cpu_load, cpu_unit = _loads(cpu_unit, cpu_raw)
    cols["cpu_load"] = cpu_load.astype(np.float32)
    cores = nums[:, _CORES]
    if n and (cores.min() < -(2**31) or cores.max() > 2**31 - 1):
        np.array([int(c) for c in cores.tolist()], dtype=np.int32)  # OverflowError, as before
    cols["cpu_cores"] = cores.astype(np.int32)
    cols["reputation"] = nums[:, _REP].astype(np.float32)
    cols["disk_free_gb"] = nums[:, _DF].astype(np.float32)
    cols["disk_total_gb"] = nums[:, _DT].astype(np.float32)
    cols["last_seen_epoch_s"] = _joined(fleet.seen)
    cols["telemetry_epoch_s"] = tele_s
    gcount = nums[:, _NG].astype(np.int64)
    cols["gpu_count"] = np.minimum(gcount, 255).astype(np.uint8)
    return ram_unit, cpu_unit, gcount


def _gpu_columns(
    fleet: _Fleet, gcount: I64, given: Units | None, cols: dict[str, Any]
) -> tuple[UnitDecision, UnitDecision]:
    """The per-GPU numbers (VRAM and GPU-load units decided); the units."""
    offsets = np.zeros(len(gcount) + 1, dtype=np.int32)
    np.cumsum(gcount, out=offsets[1:])
    cols["gpu_offsets"] = offsets
    g_max = _joined(fleet.g_max)
    vt_free_raw = _joined(fleet.g_tfree)
    vt_total_raw = _joined(fleet.g_ttotal)
    vram_known = _joined(fleet.vram_known)
    vram_unit = (
        _given(given.vram)
        if given is not None
        else infer_size_unit(
            "vram",
            vt_total_raw,
            vram_known,
            reporting=int(np.count_nonzero(~np.isnan(vt_total_raw))),
            source=SOURCES["vram"],
        )
    )
    vt_free, vt_total, _, vram_unit = _sizes_gb(vram_unit, vt_free_raw, vt_total_raw, vram_known)
    del vt_free_raw, vt_total_raw, vram_known
    cols["gpu_tele_vram_free_gb"] = vt_free.astype(np.float32)
    del vt_free
    g_total = np.where(np.isnan(g_max), vt_total, g_max)
    del vt_total, g_max
    cols["gpu_model_code"] = _gpu_codes(fleet, _joined(fleet.g_name), g_total)
    cols["gpu_vram_total_gb"] = g_total.astype(np.float32)
    del g_total
    cols["gpu_vram_free_gb"] = _joined(fleet.g_free).astype(np.float32)
    load_raw = _joined(fleet.g_load)
    load_unit = (
        _given(given.gpu_load)
        if given is not None
        else infer_load_unit("gpu_load", load_raw, source=SOURCES["gpu_load"])
    )
    g_load, load_unit = _loads(load_unit, load_raw)
    cols["gpu_load"] = g_load.astype(np.float32)
    return vram_unit, load_unit


def _ram_known(nodes: Sequence[TableNode], whole: F64) -> F64:
    """Per node, its RAM total in GB from a field with a known unit: the sum of
    ``rams[].memory_gb_max`` when every stick has one (``whole``), else
    ``current_hardware.memory.ram_bytes_total`` / 2**30, else ``ramTotal``. Only nodes without
    the first are visited."""
    missing = np.flatnonzero(np.isnan(whole))
    if not len(missing):
        return whole
    known = whole.copy()
    for i in missing.tolist():
        d = nodes[i].lean
        hw = d.current_hardware
        mem = None if hw is None else hw.memory
        x = math.nan if mem is None else _evidence_value(mem.ram_bytes_total) / GIB
        known[i] = _evidence_value(d.ramTotal) if math.isnan(x) else x
    return known


def _vram_known(nodes: Sequence[TableNode], g_max: F64, offsets: I32) -> F64:
    """Per GPU, its VRAM total in GB from a field with a known unit: ``gpus[].vram_gb_max``,
    else ``current_hardware.gpus[].vram_bytes_total`` / 2**30 by index (when the node lists as
    many hardware GPUs as GPUs). Only nodes missing a ``vram_gb_max`` are visited."""
    missing = np.isnan(g_max)
    if not missing.any():
        return g_max
    known = g_max.copy()
    rows = np.unique(np.searchsorted(offsets, np.flatnonzero(missing), side="right") - 1)
    for i in rows.tolist():
        hw = nodes[i].lean.current_hardware
        hg = None if hw is None else hw.gpus
        lo, hi = int(offsets[i]), int(offsets[i + 1])
        if not hg or len(hg) != hi - lo:
            continue
        for j, h in enumerate(hg):
            if math.isnan(known[lo + j]):
                known[lo + j] = _evidence_value(h.vram_bytes_total) / GIB
    return known
