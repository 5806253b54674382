"""The node table builder as it was at commit 834324c: one Python pass per node (the oracle).

``nodeselect.table._build`` was rewritten column-wise for issue 13 (table build >= 200k nodes/s).
This is the previous builder, kept verbatim apart from its name (``previous_build_table``), so
tests can check the new one gives bit-identical columns *and* the same unit decisions (which
``reference_table.py`` does not infer) on every simulator dialect and on odd values, and
``benchmarks/bench_build.py`` can time both side by side.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Final, cast

import attrs
import numpy as np
import numpy.typing as npt

from nodeselect.documents import (
    COMPLIANCE_TAGS,
    CONTINENTS,
    STATUSES,
    LeanTelemetryGpu,
    LeanVram,
    ProvedFacts,
    numeric_string,
    parse_timestamps_to_epoch_s,
)
from nodeselect.gpus import gpu_codes_for_nodes
from nodeselect.table._derived import build_derived
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
    UnitDecision,
    Units,
    implausible_loads,
    implausible_sizes,
    infer_load_unit,
    infer_size_unit,
)

__all__ = ["previous_build_table"]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]
I32 = npt.NDArray[np.int32]

_NO_TELE: Final = LeanTelemetryGpu()  # stands for "no matched telemetry" (every field None)
_NO_VRAM: Final = LeanVram()
_MASK64: Final = (1 << 64) - 1


def _floats(values: Sequence[Any]) -> F64:
    """float64 of numbers, ``None`` -> NaN (as ``float(v)``, which NumPy's cast agrees with)."""
    return np.array(values, dtype=np.float64)


def _f32(values: Sequence[Any]) -> F32:
    return np.array(values, dtype=np.float64).astype(np.float32)


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


def _upper_or_empty(v: str | None) -> str:
    return (v or "").upper()


def _os_norm(v: str) -> str:
    return v.strip().lower()


def _coded(
    values: Sequence[Hashable],
    base: Sequence[str],
    norm: Callable[[Any], str],
) -> tuple[tuple[str, ...], I32]:
    """Codes over a vocabulary of normalized values: entry 0 is ``""``, then ``base``, then
    the others in order of first appearance; ``norm`` runs once per distinct raw value."""
    vocab: dict[str, int] = {"": 0}
    for v in base:
        vocab.setdefault(v, len(vocab))
    lut: dict[Hashable, int] = {}
    for raw in dict.fromkeys(values):
        key = norm(raw)
        c = vocab.get(key)
        if c is None:
            c = vocab[key] = len(vocab)
        lut[raw] = c
    codes = np.fromiter(map(lut.__getitem__, values), dtype=np.int32, count=len(values))
    return tuple(vocab), codes


def _coded_or_empty(
    values: Sequence[str | None], base: Sequence[str]
) -> tuple[tuple[str, ...], I32]:
    """:func:`_coded` with ``v or ""`` as the normalization, without a call per value."""
    order: dict[str | None, None] = dict.fromkeys(("", *base))
    order.update(dict.fromkeys(values))
    order.pop(None, None)
    vocab = cast("tuple[str, ...]", tuple(order))  # None was popped
    index: dict[str | None, int] = {v: i for i, v in enumerate(vocab)}
    index[None] = 0
    codes = np.fromiter(map(index.__getitem__, values), dtype=np.int32, count=len(values))
    return vocab, codes


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


def _facts_columns(nodes: Sequence[TableNode]) -> dict[str, Any]:
    """The proved-fact columns, computed once per distinct facts *object* and gathered.

    A fetch shares one facts object among all nodes a query returned, so there are usually a
    handful; codes and vocabularies are those of coding every node in order (first seen first,
    tags sorted within a node).
    """
    facts = [node.facts for node in nodes]
    ids = list(map(id, facts))
    by_id: dict[int, ProvedFacts] = dict(zip(ids, facts, strict=True))  # first seen first
    slot = {i: k for k, i in enumerate(by_id)}
    distinct = list(by_id.values())
    which = np.fromiter(map(slot.__getitem__, ids), dtype=np.intp, count=len(ids))
    st_vocab, st_code = _coded_or_empty([f.status for f in distinct], STATUSES)
    co_vocab, co_code = _coded_or_empty([f.continent for f in distinct], CONTINENTS)
    cn_vocab, cn_code = _coded([f.country for f in distinct], (), _upper_or_empty)
    sd_vocab, sd_code = _coded([f.subdivision for f in distinct], (), _upper_or_empty)
    vocab: dict[str, int] = {}
    for v in COMPLIANCE_TAGS:
        vocab.setdefault(v, len(vocab))
    packed: list[int] = []
    for f in distinct:
        word = 0
        for v in sorted(f.compliance_tags):
            c = vocab.get(v)
            if c is None:
                c = vocab[v] = len(vocab)
            word |= 1 << c
        packed.append(word)
    return {
        "status_code": st_code.astype(np.uint8)[which],
        "status_vocab": st_vocab,
        "continent_code": co_code.astype(np.uint8)[which],
        "continent_vocab": co_vocab,
        "country_code": cn_code.astype(np.uint16)[which],
        "country_vocab": cn_vocab,
        "subdivision_code": sd_code.astype(np.uint16)[which],
        "subdivision_vocab": sd_vocab,
        "compliance_bits": _words(packed, len(vocab))[:, which],
        "compliance_vocab": tuple(vocab),
    }


def _names_agree(tele: Sequence[LeanTelemetryGpu], gpus: Sequence[Any]) -> bool:
    for t, g in zip(tele, gpus, strict=True):
        a, b = t.name, g.name
        if a != b and not gpu_names_agree(a, b):
            return False
    return True


def previous_build_table(
    nodes: Sequence[TableNode], now_s: float, units: Units | None = None
) -> NodeTable:
    """The table of ``nodes`` with telemetry freshness judged at ``now_s`` (Unix seconds).

    ``units``: telemetry units decided elsewhere (e.g. on the whole fleet, for a shard built
    apart) instead of inferred from ``nodes``; the per-node plausibility checks still run.

    The cyclic garbage collector is paused while building (it is restored after, and left
    alone if it was already off): the build allocates only acyclic lists and tuples, and with
    a large fleet alive each collection would walk the whole fleet, which took over half of
    the build time.
    """
    if not gc.isenabled():
        return _build(nodes, now_s, units)
    gc.disable()
    try:
        return _build(nodes, now_s, units)
    finally:
        gc.enable()


def _given(d: UnitDecision) -> UnitDecision:
    """A decision taken from elsewhere: its unit and reasons, this table's counts start at 0."""
    return attrs.evolve(d, how=f"given: {d.how}", evidence=0, agreeing=0, fallbacks=0)


def _build(nodes: Sequence[TableNode], now_s: float, given: Units | None) -> NodeTable:
    n = len(nodes)
    leans = [node.lean for node in nodes]
    nan = math.nan
    isnan = math.isnan

    # Per node: what needs logic. One pass, appends bound to locals.
    cores: list[int] = []
    tele_ms: list[Any] = []
    tele_created: list[str | None] = []
    cpu_avg: list[Any] = []
    ram_free_b: list[Any] = []
    ram_total_b: list[Any] = []
    ram_static: list[float] = []
    ram_static_total: list[float] = []
    ram_whole: list[float] = []
    numeric_strings = 0
    disk_free: list[float] = []
    disk_total: list[float] = []
    os_raw: list[str] = []
    arch_raw: list[str | None] = []
    driver_raw: list[str | None] = []
    image_packed: list[int] = []
    gcount: list[int] = []
    gpu_flat: list[Any] = []
    tele_flat: list[LeanTelemetryGpu] = []
    image_bit: dict[str, int] = {}
    add_cores, add_ms, add_created = cores.append, tele_ms.append, tele_created.append
    add_cpu, add_rf, add_rt = cpu_avg.append, ram_free_b.append, ram_total_b.append
    add_rs, add_rst = ram_static.append, ram_static_total.append
    add_rwhole = ram_whole.append
    add_df, add_dt = disk_free.append, disk_total.append
    add_os, add_arch, add_drv = os_raw.append, arch_raw.append, driver_raw.append
    add_img, add_gc = image_packed.append, gcount.append
    ext_gpu, ext_tele = gpu_flat.extend, tele_flat.extend
    for d in leans:
        cpus = d.cpus
        k = 0
        if cpus:
            for c in cpus:
                k += c.num_cores or 0
        add_cores(k)

        ev = d.latest_hardware_event
        tg = None
        if ev is None:
            add_ms(None)
            add_created(None)
            add_cpu(None)
            add_rf(None)
            add_rt(None)
        else:
            add_ms(ev.timestamp_ms)
            add_created(ev.created_at)
            md = ev.metadata
            if md is None:
                add_cpu(None)
                add_rf(None)
                add_rt(None)
            else:
                cm = md.cpu
                add_cpu(None if cm is None else cm.average)
                r = md.ram
                if r is None:
                    add_rf(None)
                    add_rt(None)
                else:
                    add_rf(r.free)
                    add_rt(r.total)
                gm = md.gpu
                if gm is not None:
                    tg = gm.gpus

        s_av, s_mx = nan, nan
        rams = d.rams
        whole = True  # every stick has memory_gb_max: the sum is the node's total
        if rams:
            for rr in rams:
                x = rr.memory_gb_available
                if x is not None:
                    s_av = (0.0 if isnan(s_av) else s_av) + x
                x = rr.memory_gb_max
                if x is not None:
                    s_mx = (0.0 if isnan(s_mx) else s_mx) + x
                else:
                    whole = False
        add_rs(s_av)
        add_rst(s_mx)
        add_rwhole(s_mx if whole else nan)
        numeric_strings += d.numeric_strings

        drives = d.hard_drives
        if not drives:
            add_df(nan)
            add_dt(nan)
        elif len(drives) == 1:
            h = drives[0]
            x = h.available_capacity_gb
            add_df(nan if x is None else float(x))
            x = h.max_capacity_gb
            add_dt(nan if x is None else float(x))
        else:
            av = [h.available_capacity_gb for h in drives if h.available_capacity_gb is not None]
            mx = [h.max_capacity_gb for h in drives if h.max_capacity_gb is not None]
            add_df(float(max(av)) if av else nan)
            add_dt(float(max(mx)) if mx else nan)

        sw = d.current_software
        hw = d.current_hardware
        hw_os = None if hw is None else hw.operating_system
        if sw is None:
            sw_os = None
            add_drv(None)
            add_img(0)
        else:
            sw_os = sw.operating_system
            drv = sw.nvidia_driver
            add_drv(None if drv is None else drv.version)
            word = 0
            tags = sw.cached_image_tags
            if tags:
                for tag in tags:
                    bit = image_bit.get(tag)
                    if bit is None:
                        bit = image_bit[tag] = 1 << len(image_bit)
                    word |= bit
            add_img(word)
        d_os = d.operating_system
        name = ""
        if sw_os is not None and sw_os.name:
            name = sw_os.name
        elif hw_os is not None and hw_os.name:
            name = hw_os.name
        elif d_os is not None and d_os.name:
            name = d_os.name
        add_os(name)
        arch = None
        if hw_os is not None and hw_os.architecture:
            arch = hw_os.architecture
        elif sw_os is not None and sw_os.architecture:
            arch = sw_os.architecture
        elif d_os is not None and d_os.architecture:
            arch = d_os.architecture
        add_arch(arch)

        gpus = d.gpus
        if gpus:
            ng = len(gpus)
            add_gc(ng)
            ext_gpu(gpus)
            if (
                tg is not None
                and len(tg) == ng
                and (
                    (tg[0].name == gpus[0].name or gpu_names_agree(tg[0].name, gpus[0].name))
                    if ng == 1
                    else _names_agree(tg, gpus)
                )
            ):
                ext_tele(tg)
            else:
                ext_tele([_NO_TELE] * ng)
        else:
            add_gc(0)

    tele_s = _floats(tele_ms) / 1000.0
    need = np.isnan(tele_s)
    if need.any():
        tele_s[need] = parse_timestamps_to_epoch_s(
            [tele_created[int(k)] for k in np.flatnonzero(need)]
        )
    fresh = (now_s - tele_s) <= TELEMETRY_FRESH_S
    static_total = np.array(ram_static_total)
    ram_known = _ram_known(leans, np.array(ram_whole))
    rf_raw, rt_raw = _floats(ram_free_b), _floats(ram_total_b)
    ram_unit = (
        _given(given.ram)
        if given is not None
        else infer_size_unit(
            "ram",
            rt_raw,
            ram_known,
            reporting=int(np.count_nonzero(~np.isnan(rt_raw))),
            source="the node's known RAM total",
        )
    )
    rt, rtt, ram_dropped, ram_unit = _sizes_gb(ram_unit, rf_raw, rt_raw, ram_known)
    # Counted only where the telemetry would have been used (fresh).
    ram_unit = attrs.evolve(ram_unit, fallbacks=int(np.count_nonzero(ram_dropped & fresh)))
    ram_free = np.where(fresh & ~np.isnan(rt), rt, np.array(ram_static))
    ram_total = np.where(fresh & ~np.isnan(rtt), rtt, static_total)
    cpu_raw = _floats(cpu_avg)
    cpu_unit = (
        _given(given.cpu_load)
        if given is not None
        else infer_load_unit("cpu_load", cpu_raw, source="metadata.cpu.average")
    )
    cpu_load, cpu_unit = _loads(cpu_unit, cpu_raw)

    name_vocab, name_code = _coded_or_empty([d.name for d in leans], ())
    op_vocab, op_code = _coded_or_empty([d.operator_account_uuid for d in leans], ())
    os_vocab, os_code = _coded(os_raw, (), _os_norm)
    arch_vocab, arch_code = _coded(arch_raw, ("x86_64", "aarch64"), arch_name)
    drv_lut = {v: driver_number(v) for v in dict.fromkeys(driver_raw)}
    img_vocab = tuple(image_bit)
    img_bits = _words(image_packed, len(img_vocab))

    gcount_arr = np.array(gcount, dtype=np.int64)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(gcount_arr, out=offsets[1:])
    vrams = [_NO_VRAM if t.vram is None else t.vram for t in tele_flat]
    g_max = _floats([g.vram_gb_max for g in gpu_flat])
    vt_free_raw, vt_total_raw = _floats([v.free for v in vrams]), _floats([v.total for v in vrams])
    vram_known = _vram_known(leans, g_max, offsets)
    vram_unit = (
        _given(given.vram)
        if given is not None
        else infer_size_unit(
            "vram",
            vt_total_raw,
            vram_known,
            reporting=int(np.count_nonzero(~np.isnan(vt_total_raw))),
            source="the GPU's known VRAM total",
        )
    )
    vt_free, vt_total, _, vram_unit = _sizes_gb(vram_unit, vt_free_raw, vt_total_raw, vram_known)
    g_total = np.where(np.isnan(g_max), vt_total, g_max)
    load_raw = _floats([t.load for t in tele_flat])
    load_unit = (
        _given(given.gpu_load)
        if given is not None
        else infer_load_unit("gpu_load", load_raw, source="metadata.gpu.gpus[].load")
    )
    g_load, load_unit = _loads(load_unit, load_raw)
    units = Units(
        ram=ram_unit,
        vram=vram_unit,
        gpu_load=load_unit,
        cpu_load=cpu_unit,
        numeric_strings=numeric_strings,
    )
    codes = gpu_codes_for_nodes(
        [g.name for g in gpu_flat],
        [None if v != v else v for v in g_total.tolist()],  # noqa: PLR0124 - NaN test
    )
    table = NodeTable(
        uuid=np.array([d.uuid.encode() for d in leans], dtype=np.bytes_)
        if n
        else np.zeros(0, "S1"),
        name_code=name_code,
        name_vocab=np.array([v.encode() for v in name_vocab], dtype=np.bytes_),
        operator_code=op_code,
        operator_vocab=op_vocab,
        reputation=_f32([d.reputation for d in leans]),
        cpu_cores=np.array(cores, dtype=np.int32),
        cpu_load=cpu_load.astype(np.float32),
        ram_free_gb=ram_free.astype(np.float32),
        ram_total_gb=ram_total.astype(np.float32),
        disk_free_gb=_f32(disk_free),
        disk_total_gb=_f32(disk_total),
        last_seen_epoch_s=parse_timestamps_to_epoch_s([d.last_seen_at for d in leans]),
        telemetry_epoch_s=tele_s,
        suspended=np.array([d.suspended_at is not None for d in leans], dtype=np.bool_),
        deleted=np.array([d.deleted_at is not None for d in leans], dtype=np.bool_),
        os_code=os_code.astype(np.uint8),
        os_vocab=os_vocab,
        arch_code=arch_code.astype(np.uint8),
        arch_vocab=arch_vocab,
        driver_version=np.fromiter(map(drv_lut.__getitem__, driver_raw), np.int32, count=n),
        image_bits=img_bits,
        image_vocab=img_vocab,
        **_facts_columns(nodes),
        gpu_count=np.minimum(gcount_arr, 255).astype(np.uint8),
        gpu_offsets=offsets,
        gpu_model_code=np.asarray(codes, dtype=np.uint16),
        gpu_vram_free_gb=_f32([g.vram_gb_available for g in gpu_flat]),
        gpu_vram_total_gb=g_total.astype(np.float32),
        gpu_tele_vram_free_gb=vt_free.astype(np.float32),
        gpu_load=g_load.astype(np.float32),
        units=units,
    )
    return build_derived(table)


def _ram_known(leans: Sequence[Any], whole: F64) -> F64:
    """Per node, its RAM total in GB from a field with a known unit: the sum of
    ``rams[].memory_gb_max`` when every stick has one (``whole``), else
    ``current_hardware.memory.ram_bytes_total`` / 2**30, else ``ramTotal``. Only nodes without
    the first are visited."""
    missing = np.flatnonzero(np.isnan(whole))
    if not len(missing):
        return whole
    known = whole.copy()
    for i in missing.tolist():
        d = leans[i]
        hw = d.current_hardware
        mem = None if hw is None else hw.memory
        x = math.nan if mem is None else _evidence_value(mem.ram_bytes_total) / GIB
        known[i] = _evidence_value(d.ramTotal) if math.isnan(x) else x
    return known


def _vram_known(leans: Sequence[Any], g_max: F64, offsets: I32) -> F64:
    """Per GPU, its VRAM total in GB from a field with a known unit: ``gpus[].vram_gb_max``,
    else ``current_hardware.gpus[].vram_bytes_total`` / 2**30 by index (when the node lists as
    many hardware GPUs as GPUs). Only nodes missing a ``vram_gb_max`` are visited."""
    missing = np.isnan(g_max)
    if not missing.any():
        return g_max
    known = g_max.copy()
    nodes = np.unique(np.searchsorted(offsets, np.flatnonzero(missing), side="right") - 1)
    for i in nodes.tolist():
        hw = leans[i].current_hardware
        hg = None if hw is None else hw.gpus
        lo, hi = int(offsets[i]), int(offsets[i + 1])
        if not hg or len(hg) != hi - lo:
            continue
        for j, h in enumerate(hg):
            if math.isnan(known[lo + j]):
                known[lo + j] = _evidence_value(h.vram_bytes_total) / GIB
    return known
