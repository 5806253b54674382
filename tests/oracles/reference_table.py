"""The node table built the straightforward way: the original per-node loop of ``from_nodes``.

Kept as the reference the fast builder (``nodeselect.table._build``) must reproduce column for
column; it reads every field with plain attribute access and generator expressions.

It does not infer telemetry units: it is *told* them (``units``: quantity -> unit, ``None`` =
undecided), e.g. the true units of a simulator dialect, or the units the fast build decided
(to check the rest of the build). Per node it applies the plausibility rules of docs/units.md
in plain Python.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from nodeselect.documents._facts import COMPLIANCE_TAGS, CONTINENTS, STATUSES
from nodeselect.documents._timestamps import parse_timestamps_to_epoch_s
from nodeselect.gpus import gpu_codes_for_nodes
from nodeselect.table._table import (
    GIB,
    TELEMETRY_FRESH_S,
    NodeTable,
    TableNode,
    arch_name,
    driver_number,
    gpu_names_agree,
)
from nodeselect.table._units import DEFAULT_UNITS, LOAD_FACTORS, SIZE_FACTORS, SIZE_TOLERANCE, Units

__all__ = [
    "implausible",
    "ram_known",
    "reference_from_nodes",
    "told_load",
    "told_units",
    "vram_known",
]

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]


def _vocab_codes(values: list[str], base: Sequence[str]) -> tuple[tuple[str, ...], I32]:
    """Codes over a vocabulary whose entry 0 is ``""`` (unknown); ``base`` entries come first."""
    vocab: dict[str, int] = {"": 0}
    for v in base:
        vocab.setdefault(v, len(vocab))
    codes = np.empty(len(values), dtype=np.int32)
    for i, v in enumerate(values):
        c = vocab.get(v)
        if c is None:
            c = vocab[v] = len(vocab)
        codes[i] = c
    return tuple(vocab), codes


def _bitset(sets: list[Iterable[str]], base: Sequence[str]) -> tuple[tuple[str, ...], Any]:
    """Bitsets (words, n) uint64 over a vocabulary (bit j of word j//64 = vocab entry j)."""
    vocab: dict[str, int] = {}
    for v in base:
        vocab.setdefault(v, len(vocab))
    members: list[list[int]] = []
    for s in sets:
        row = []
        for v in s:
            c = vocab.get(v)
            if c is None:
                c = vocab[v] = len(vocab)
            row.append(c)
        members.append(row)
    words = max(1, (len(vocab) + 63) // 64)
    packed = []
    for row in members:
        word = 0
        for c in row:
            word |= 1 << c
        packed.append(word)
    mask = (1 << 64) - 1
    bits = np.zeros((words, len(sets)), dtype=np.uint64)
    for w in range(words):
        bits[w] = np.array([(p >> (64 * w)) & mask for p in packed], dtype=np.uint64)
    return tuple(vocab), bits


def _f32(values: list[float]) -> F32:
    return np.array(values, dtype=np.float64).astype(np.float32)


def told_units(units: Units | Mapping[str, str | None] | object) -> dict[str, str | None]:
    """Quantity -> unit from a :class:`Units` (what a build decided), a mapping, or a
    simulator ``Dialect`` (its true ``ram_unit``/``vram_unit``/``load_unit``)."""
    if isinstance(units, Units):
        return {d.quantity: d.unit for d in units.decisions()}
    if isinstance(units, Mapping):
        return dict(units)
    ram, vram, load = (getattr(units, a) for a in ("ram_unit", "vram_unit", "load_unit"))
    return {"ram": ram, "vram": vram, "gpu_load": load, "cpu_load": load}


def _num(v: Any) -> float:
    """An evidence value as a float (numbers and numeric strings; else NaN)."""
    if isinstance(v, bool):
        return math.nan
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            x = float(v.strip())
        except ValueError:
            return math.nan
        # the JSON number grammar only (no "inf", "1_000", "+1", ".5")
        t = v.strip()
        body = t[1:] if t.startswith("-") else t
        ok = (
            bool(body)
            and body[0].isdigit()
            and not (len(body) > 1 and body[0] == "0" and body[1].isdigit())
            and all(c in "0123456789.eE+-" for c in body)
            and not body.endswith(".")
            and ".e" not in body.lower()
            and "_" not in body
            and math.isfinite(x)
        )
        return x if ok else math.nan
    return math.nan


def _implausible(free: float, total: float, known: float) -> bool:
    """The plausibility rule of docs/units.md, one node (GPU) in plain Python."""
    if free < 0 or total < 0 or free > total * (1.0 + 1e-6):
        return True
    if known > 0 and not math.isnan(total):
        ratio = total / known
        return ratio > SIZE_TOLERANCE or ratio < 1.0 / SIZE_TOLERANCE
    return False


def _load(raw: Any, unit: str | None) -> float:
    if raw is None or unit is None:
        return math.nan
    x = float(raw) / LOAD_FACTORS[unit]
    return math.nan if x < 0 or x > 1.0 + 1e-6 else x


#: Public names for the engine reference (tests/oracles/reference_engine.py), which applies the same
#: documented per-node rules to the values it derives on its own.
implausible = _implausible
told_load = _load


def ram_known(d: Any) -> float:
    """A node's RAM total in a known unit (GB): the sum of every stick's ``memory_gb_max``
    when each has one, else ``ram_bytes_total`` / 2**30, else ``ramTotal`` (docs/units.md)."""
    known = math.nan
    if all(rr.memory_gb_max is not None for rr in d.rams or ()):
        known = math.nan if not d.rams else float(sum(rr.memory_gb_max for rr in d.rams))
    hw = d.current_hardware
    if math.isnan(known) and hw is not None and hw.memory is not None:
        known = _num(hw.memory.ram_bytes_total) / GIB
    if math.isnan(known):
        known = _num(d.ramTotal)
    return known


def vram_known(d: Any, j: int, g_max: float) -> float:
    """GPU ``j``'s VRAM total in GB: ``vram_gb_max``, else ``vram_bytes_total`` / 2**30 by
    index when both GPU lists have the same length."""
    if not math.isnan(g_max):
        return g_max
    hw = d.current_hardware
    hw_gpus = hw.gpus if hw is not None else None
    if hw_gpus and d.gpus and len(hw_gpus) == len(d.gpus):
        return _num(hw_gpus[j].vram_bytes_total) / GIB
    return math.nan


def reference_from_nodes(
    nodes: Sequence[TableNode],
    now_s: float,
    units: Units | Mapping[str, str | None] | object | None = None,
) -> NodeTable:
    """Build the table from fetched nodes one node at a time (the pre-optimisation builder),
    reading telemetry in the ``units`` it is told (default: the documented defaults)."""
    told = told_units(units) if units is not None else dict(DEFAULT_UNITS)
    ram_f = SIZE_FACTORS[told["ram"]] if told["ram"] is not None else None
    vram_f = SIZE_FACTORS[told["vram"]] if told["vram"] is not None else None
    n = len(nodes)
    uuids: list[str] = []
    names: list[str] = []
    operators: list[str] = []
    rep: list[float] = []
    cores: list[int] = []
    cpu_load: list[float] = []
    ram_tele: list[float] = []
    ram_tele_total: list[float] = []
    ram_static: list[float] = []
    ram_static_total: list[float] = []
    disk_free: list[float] = []
    disk_total: list[float] = []
    last_seen: list[str | None] = []
    tele_ms: list[float] = []
    tele_created: list[str | None] = []
    suspended: list[bool] = []
    deleted: list[bool] = []
    oses: list[str] = []
    arches: list[str] = []
    driver: list[int] = []
    images: list[Iterable[str]] = []
    compliance: list[Iterable[str]] = []
    statuses: list[str] = []
    continents: list[str] = []
    countries: list[str] = []
    subdivisions: list[str] = []
    gcount: list[int] = []
    g_name: list[str | None] = []
    g_free: list[float] = []
    g_total: list[float] = []
    g_tfree: list[float] = []
    g_load: list[float] = []
    nan = math.nan
    for node in nodes:
        d = node.lean
        f = node.facts
        uuids.append(d.uuid)
        names.append(d.name or "")
        operators.append(d.operator_account_uuid or "")
        rep.append(nan if d.reputation is None else float(d.reputation))
        cores.append(sum(c.num_cores or 0 for c in d.cpus) if d.cpus else 0)
        ev = d.latest_hardware_event
        md = ev.metadata if ev is not None else None
        tele_ms.append(nan if ev is None or ev.timestamp_ms is None else float(ev.timestamp_ms))
        tele_created.append(ev.created_at if ev is not None else None)
        cpu_load.append(
            _load(None if md is None or md.cpu is None else md.cpu.average, told["cpu_load"])
        )
        s_av, s_mx = nan, nan
        for rr in d.rams or ():
            if rr.memory_gb_available is not None:
                s_av = (0.0 if math.isnan(s_av) else s_av) + rr.memory_gb_available
            if rr.memory_gb_max is not None:
                s_mx = (0.0 if math.isnan(s_mx) else s_mx) + rr.memory_gb_max
        ram_static.append(s_av)
        ram_static_total.append(s_mx)
        hw = d.current_hardware
        known = nan
        if all(rr.memory_gb_max is not None for rr in d.rams or ()):
            known = s_mx
        if math.isnan(known) and hw is not None and hw.memory is not None:
            known = _num(hw.memory.ram_bytes_total) / GIB
        if math.isnan(known):
            known = _num(d.ramTotal)
        r = md.ram if md is not None else None
        free_gb = nan if r is None or r.free is None or ram_f is None else r.free / ram_f
        total_gb = nan if r is None or r.total is None or ram_f is None else r.total / ram_f
        if _implausible(free_gb, total_gb, known):
            free_gb = total_gb = nan
        ram_tele.append(free_gb)
        ram_tele_total.append(total_gb)
        av = [
            h.available_capacity_gb
            for h in d.hard_drives or ()
            if h.available_capacity_gb is not None
        ]
        mx = [h.max_capacity_gb for h in d.hard_drives or () if h.max_capacity_gb is not None]
        disk_free.append(float(max(av)) if av else nan)
        disk_total.append(float(max(mx)) if mx else nan)
        last_seen.append(d.last_seen_at)
        suspended.append(d.suspended_at is not None)
        deleted.append(d.deleted_at is not None)
        sw = d.current_software
        hw_os = d.current_hardware.operating_system if d.current_hardware else None
        sw_os = sw.operating_system if sw is not None else None
        os_name = next((o.name for o in (sw_os, hw_os, d.operating_system) if o and o.name), "")
        oses.append(os_name.strip().lower())
        arch = next(
            (o.architecture for o in (hw_os, sw_os, d.operating_system) if o and o.architecture),
            None,
        )
        arches.append(arch_name(arch))
        driver.append(
            driver_number(sw.nvidia_driver.version)
            if sw is not None and sw.nvidia_driver is not None
            else 0
        )
        images.append((sw.cached_image_tags or ()) if sw is not None else ())
        compliance.append(sorted(f.compliance_tags))
        statuses.append(f.status or "")
        continents.append(f.continent or "")
        countries.append((f.country or "").upper())
        subdivisions.append((f.subdivision or "").upper())
        gpus = d.gpus or ()
        gcount.append(len(gpus))
        tg = md.gpu.gpus if md is not None and md.gpu is not None else None
        matched = (
            tg is not None
            and len(tg) == len(gpus)
            and all(gpu_names_agree(t.name, g.name) for t, g in zip(tg, gpus, strict=True))
        )
        hw_gpus = hw.gpus if hw is not None else None
        for j, g in enumerate(gpus):
            t = tg[j] if matched and tg is not None else None
            tv = t.vram if t is not None else None
            g_name.append(g.name)
            g_free.append(nan if g.vram_gb_available is None else float(g.vram_gb_available))
            g_max = nan if g.vram_gb_max is None else float(g.vram_gb_max)
            known = g_max
            if math.isnan(known) and hw_gpus and len(hw_gpus) == len(gpus):
                known = _num(hw_gpus[j].vram_bytes_total) / GIB
            tfree = nan if tv is None or tv.free is None or vram_f is None else tv.free / vram_f
            ttotal = nan if tv is None or tv.total is None or vram_f is None else tv.total / vram_f
            if _implausible(tfree, ttotal, known):
                tfree = ttotal = nan
            g_total.append(ttotal if math.isnan(g_max) else g_max)
            g_tfree.append(tfree)
            g_load.append(_load(None if t is None else t.load, told["gpu_load"]))

    tele_s = np.array(tele_ms, dtype=np.float64) / 1000.0
    gcount_arr = np.array(gcount, dtype=np.int64)
    need = np.isnan(tele_s)
    if need.any():
        parsed = parse_timestamps_to_epoch_s([tele_created[int(k)] for k in np.flatnonzero(need)])
        tele_s[need] = parsed
    fresh = (now_s - tele_s) <= TELEMETRY_FRESH_S
    rt, rtt = np.array(ram_tele), np.array(ram_tele_total)
    ram_free = np.where(fresh & ~np.isnan(rt), rt, np.array(ram_static))
    ram_total = np.where(fresh & ~np.isnan(rtt), rtt, np.array(ram_static_total))
    name_vocab, name_code = _vocab_codes(names, ())
    op_vocab, op_code = _vocab_codes(operators, ())
    os_vocab, os_code = _vocab_codes(oses, ())
    arch_vocab, arch_code = _vocab_codes(arches, ("x86_64", "aarch64"))
    st_vocab, st_code = _vocab_codes(statuses, STATUSES)
    co_vocab, co_code = _vocab_codes(continents, CONTINENTS)
    cn_vocab, cn_code = _vocab_codes(countries, ())
    sd_vocab, sd_code = _vocab_codes(subdivisions, ())
    img_vocab, img_bits = _bitset(images, ())
    cmp_vocab, cmp_bits = _bitset(compliance, COMPLIANCE_TAGS)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(gcount_arr, out=offsets[1:])
    g_total_arr = np.array(g_total, dtype=np.float64)
    codes = gpu_codes_for_nodes(g_name, [None if math.isnan(v) else v for v in g_total])
    return NodeTable(
        uuid=np.array([u.encode() for u in uuids], dtype=np.bytes_) if n else np.zeros(0, "S1"),
        name_code=name_code,
        name_vocab=np.array([v.encode() for v in name_vocab], dtype=np.bytes_),
        operator_code=op_code,
        operator_vocab=op_vocab,
        reputation=_f32(rep),
        cpu_cores=np.array(cores, dtype=np.int32),
        cpu_load=_f32(cpu_load),
        ram_free_gb=ram_free.astype(np.float32),
        ram_total_gb=ram_total.astype(np.float32),
        disk_free_gb=_f32(disk_free),
        disk_total_gb=_f32(disk_total),
        last_seen_epoch_s=parse_timestamps_to_epoch_s(last_seen),
        telemetry_epoch_s=tele_s,
        suspended=np.array(suspended, dtype=np.bool_),
        deleted=np.array(deleted, dtype=np.bool_),
        os_code=os_code.astype(np.uint8),
        os_vocab=os_vocab,
        arch_code=arch_code.astype(np.uint8),
        arch_vocab=arch_vocab,
        driver_version=np.array(driver, dtype=np.int32),
        image_bits=img_bits,
        image_vocab=img_vocab,
        compliance_bits=cmp_bits,
        compliance_vocab=cmp_vocab,
        status_code=st_code.astype(np.uint8),
        status_vocab=st_vocab,
        continent_code=co_code.astype(np.uint8),
        continent_vocab=co_vocab,
        country_code=cn_code.astype(np.uint16),
        country_vocab=cn_vocab,
        subdivision_code=sd_code.astype(np.uint16),
        subdivision_vocab=sd_vocab,
        gpu_count=np.minimum(gcount_arr, 255).astype(np.uint8),
        gpu_offsets=offsets,
        gpu_model_code=np.asarray(codes, dtype=np.uint16),
        gpu_vram_free_gb=_f32(g_free),
        gpu_vram_total_gb=g_total_arr.astype(np.float32),
        gpu_tele_vram_free_gb=_f32(g_tfree),
        gpu_load=_f32(g_load),
    )
