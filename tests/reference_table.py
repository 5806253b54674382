"""The node table built the straightforward way: the original per-node loop of ``from_nodes``.

Kept as the reference the fast builder (``nodeselect._build``) must reproduce column for
column; it reads every field with plain attribute access and generator expressions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from nodeselect._facts import COMPLIANCE_TAGS, CONTINENTS, STATUSES
from nodeselect._gpus import gpu_codes_for_nodes
from nodeselect._table import (
    GIB,
    TELEMETRY_FRESH_S,
    NodeTable,
    TableNode,
    arch_name,
    driver_number,
    gpu_names_agree,
)
from nodeselect._timestamps import parse_timestamps_to_epoch_s

__all__ = ["reference_from_nodes"]

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


def reference_from_nodes(nodes: Sequence[TableNode], now_s: float) -> NodeTable:
    """Build the table from fetched nodes one node at a time (the pre-optimisation builder)."""
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
            nan if md is None or md.cpu is None or md.cpu.average is None else float(md.cpu.average)
        )
        r = md.ram if md is not None else None
        ram_tele.append(nan if r is None or r.free is None else r.free / GIB)
        ram_tele_total.append(nan if r is None or r.total is None else r.total / GIB)
        s_av, s_mx = nan, nan
        for rr in d.rams or ():
            if rr.memory_gb_available is not None:
                s_av = (0.0 if math.isnan(s_av) else s_av) + rr.memory_gb_available
            if rr.memory_gb_max is not None:
                s_mx = (0.0 if math.isnan(s_mx) else s_mx) + rr.memory_gb_max
        ram_static.append(s_av)
        ram_static_total.append(s_mx)
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
        for j, g in enumerate(gpus):
            t = tg[j] if matched and tg is not None else None
            tv = t.vram if t is not None else None
            g_name.append(g.name)
            g_free.append(nan if g.vram_gb_available is None else float(g.vram_gb_available))
            total = nan if g.vram_gb_max is None else float(g.vram_gb_max)
            if math.isnan(total) and tv is not None and tv.total is not None:
                total = tv.total / 1024.0
            g_total.append(total)
            g_tfree.append(nan if tv is None or tv.free is None else tv.free / 1024.0)
            g_load.append(nan if t is None or t.load is None else float(t.load))

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
    arch_vocab, arch_code = _vocab_codes(arches, ("x86_64", "arm64"))
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
