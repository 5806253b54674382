"""The GPU registry: canonical model names, and matching of driver spellings and job names.

Two directions, two rules:

* **Node side** (:func:`canonical_node_gpu`, :func:`gpu_codes_for_nodes`): a driver's name such
  as ``"NVIDIA A100-SXM4-80GB"`` is tokenized (lower case, split on anything that is not a
  letter or digit), vendor noise (``NVIDIA``, ``GeForce``, ``Tesla``, ``AMD``, ``Instinct``,
  ``Radeon``) is dropped, a memory size (``80GB`` / ``80 GB``) is taken out, and the known
  patterns are matched as *whole-token* runs: ``L4`` never matches ``L40`` or ``L40S``,
  ``RTX PRO 6000`` is not ``RTX 6000 Ada``. The most specific matching pattern wins. A pattern
  followed by a variant word it does not name (``Ti``, ``Super``, ``D``, ``Laptop``, ``Mobile``,
  ``M``, ``S``, ``X``, ``XT``, ``Max``) does not match, so ``"RTX 4070 Ti"`` is never taken for
  an RTX 4070 and ``"RTX 4090 Laptop GPU"`` is unknown. ``"RTX 4090 D"`` is its own model
  (``RTX-4090-D``), not an RTX 4090. When a name carries no memory size and its family has
  several (``"NVIDIA A100-PCIE"``), the reported ``vram_gb_max`` decides (nearest variant
  within 12 %, which accepts both GiB and decimal-GB reports); otherwise the GPU is *unknown*
  (``None``): kept and reported, never guessed.
* **Job side** (:func:`resolve_job_models`): a name is a canonical name, a family (expanded to
  every variant: ``"H100"`` -> ``{"H100-80GB", "H100-94GB"}``) or an alias, in any case and
  punctuation. Unknown names raise :class:`~nodeselect.GPUNameError` with a did-you-mean;
  ambiguous ones (``"RTX 6000"``, ``"A100 SXM4"``) raise it listing the candidates.

The code of a model is its index in :data:`GPU_MODELS` plus one; code 0 is *unknown*. Codes are
stable within one version of nodeselect only (they are an in-memory column encoding).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Sequence
from typing import Final

import attrs
import numpy as np

from nodeselect.errors import GPUNameError

__all__ = [
    "GPU_MODELS",
    "UNKNOWN_GPU_CODE",
    "GpuModel",
    "canonical_node_gpu",
    "gpu_code",
    "gpu_codes_for_nodes",
    "gpu_model",
    "resolve_job_models",
    "suggest",
]


@attrs.frozen
class GpuModel:
    """One GPU model of the registry.

    Attributes:
        canonical: the canonical name, e.g. ``"H100-80GB"``; what jobs and tables store.
        family: the family, e.g. ``"H100"``; a job naming it accepts every variant.
        vendor: ``"NVIDIA"`` or ``"AMD"``.
        vram_gb: memory per GPU in GB, or ``None`` when the model ships in several sizes.
        aliases: other spellings accepted (on nodes and in jobs), matched token-wise.
        datacenter: a data-center part (as opposed to workstation/consumer).
    """

    canonical: str
    family: str
    vendor: str
    vram_gb: int | None
    aliases: tuple[str, ...] = ()
    datacenter: bool = False


def _m(
    canonical: str,
    family: str,
    vram_gb: int | None,
    aliases: tuple[str, ...] = (),
    *,
    datacenter: bool = False,
    vendor: str = "NVIDIA",
) -> GpuModel:
    return GpuModel(canonical, family, vendor, vram_gb, aliases, datacenter)


#: Every known model; the code of a model is its index + 1. Append only (codes stay stable).
GPU_MODELS: Final[tuple[GpuModel, ...]] = (
    # NVIDIA data center
    _m(
        "H100-80GB",
        "H100",
        80,
        ("H100 SXM", "H100 SXM5", "H100 PCIe", "H100 HBM3", "H100 80GB"),
        datacenter=True,
    ),
    _m("H100-94GB", "H100", 94, ("H100 NVL", "H100 94GB"), datacenter=True),
    _m("H200-141GB", "H200", 141, ("H200 SXM", "H200 NVL", "H200 141GB"), datacenter=True),
    _m("A100-40GB", "A100", 40, ("A100 40GB",), datacenter=True),
    _m("A100-80GB", "A100", 80, ("A100 80GB",), datacenter=True),
    _m("A10G", "A10G", 24, datacenter=True),
    _m("A10", "A10", 24, datacenter=True),
    _m("A40", "A40", 48, datacenter=True),
    _m("A30", "A30", 24, datacenter=True),
    _m("L4", "L4", 24, datacenter=True),
    _m("L40", "L40", 48, datacenter=True),
    _m("L40S", "L40S", 48, ("L40 S",), datacenter=True),
    _m("T4", "T4", 16, datacenter=True),
    _m("V100-16GB", "V100", 16, ("V100 16GB",), datacenter=True),
    _m("V100-32GB", "V100", 32, ("V100 32GB",), datacenter=True),
    _m("B200", "B200", 180, datacenter=True),
    # NVIDIA workstation
    _m("RTX-A4000", "RTX-A4000", 16, ("A4000",)),
    _m("RTX-A5000", "RTX-A5000", 24, ("A5000",)),
    _m("RTX-A6000", "RTX-A6000", 48, ("A6000",)),
    _m("RTX-6000-Ada", "RTX-6000-Ada", 48, ("RTX 6000 Ada Generation", "6000 Ada")),
    _m("RTX-PRO-6000", "RTX-PRO-6000", 96, ("RTX PRO 6000 Blackwell",)),
    # NVIDIA consumer
    _m("RTX-3060", "RTX-3060", None),
    _m("RTX-3060-Ti", "RTX-3060-Ti", 8),
    _m("RTX-3070", "RTX-3070", 8),
    _m("RTX-3070-Ti", "RTX-3070-Ti", 8),
    _m("RTX-3080", "RTX-3080", None),
    _m("RTX-3080-Ti", "RTX-3080-Ti", 12),
    _m("RTX-3090", "RTX-3090", 24),
    _m("RTX-3090-Ti", "RTX-3090-Ti", 24),
    _m("RTX-4060", "RTX-4060", 8),
    _m("RTX-4060-Ti", "RTX-4060-Ti", None),
    _m("RTX-4070", "RTX-4070", 12),
    _m("RTX-4070-Super", "RTX-4070-Super", 12),
    _m("RTX-4070-Ti", "RTX-4070-Ti", 12),
    _m("RTX-4070-Ti-Super", "RTX-4070-Ti-Super", 16),
    _m("RTX-4080", "RTX-4080", 16),
    _m("RTX-4080-Super", "RTX-4080-Super", 16),
    _m("RTX-4090", "RTX-4090", 24),
    _m("RTX-4090-D", "RTX-4090-D", 24),
    _m("RTX-5080", "RTX-5080", 16),
    _m("RTX-5090", "RTX-5090", 32),
    # AMD
    _m("MI300X", "MI300X", 192, datacenter=True, vendor="AMD"),
    _m("MI250", "MI250", 128, datacenter=True, vendor="AMD"),
    _m("MI250X", "MI250X", 128, datacenter=True, vendor="AMD"),
    _m("RX-7900-XTX", "RX-7900-XTX", 24, vendor="AMD"),
)

UNKNOWN_GPU_CODE: Final = 0

#: Job-side names that could mean several models: the caller must say which.
_AMBIGUOUS: Final[dict[str, tuple[str, ...]]] = {
    "RTX 6000": ("RTX-6000-Ada", "RTX-PRO-6000"),
    "6000": ("RTX-6000-Ada", "RTX-PRO-6000"),
}

_NOISE: Final = frozenset({"nvidia", "geforce", "tesla", "amd", "instinct", "radeon"})
#: Words that, right after a matched pattern, make it a different product.
_MODIFIERS: Final = frozenset(
    {"ti", "super", "d", "laptop", "mobile", "m", "s", "x", "xt", "max", "maxq"}
)
_TOKEN_RE: Final = re.compile(r"[a-z0-9]+")
_MEM_RE: Final = re.compile(r"^(\d+)gb$")
_PREFIX_SPLIT_RE: Final = re.compile(r"^(rtx|gtx|rx)(\d\w*)$")
#: Relative tolerance when the reported total VRAM picks a variant.
_VRAM_TOLERANCE: Final = 0.12

_BY_CANONICAL: Final[dict[str, int]] = {m.canonical: i for i, m in enumerate(GPU_MODELS)}

Key = tuple[tuple[str, ...], int | None]


def _tokens(name: str) -> tuple[tuple[str, ...], int | None]:
    """Word tokens of ``name`` without vendor noise, and the memory size it names (GB)."""
    raw = _TOKEN_RE.findall(name.lower())
    out: list[str] = []
    mem: int | None = None
    i = 0
    while i < len(raw):
        tok = raw[i]
        if tok in _NOISE:
            i += 1
            continue
        hit = _MEM_RE.match(tok)
        if hit is not None:
            mem = int(hit.group(1))
            i += 1
            continue
        if tok.isdigit() and i + 1 < len(raw) and raw[i + 1] == "gb":
            mem = int(tok)
            i += 2
            continue
        split = _PREFIX_SPLIT_RE.match(tok)
        if split is not None:
            out.extend(split.groups())
        else:
            out.append(tok)
        i += 1
    return tuple(out), mem


def _compact(name: str) -> str:
    return "".join(_TOKEN_RE.findall(name.lower()))


def _build_patterns() -> dict[Key, frozenset[str]]:
    pats: dict[Key, set[str]] = {}
    families: dict[str, set[str]] = {}
    for m in GPU_MODELS:
        families.setdefault(m.family, set()).add(m.canonical)
        for spelling in (m.canonical, *m.aliases):
            pats.setdefault(_tokens(spelling), set()).add(m.canonical)
    for fam, members in families.items():
        pats.setdefault(_tokens(fam), set()).update(members)
    return {k: frozenset(v) for k, v in pats.items()}


_PATTERNS: Final = _build_patterns()
_FAMILIES: Final[dict[str, frozenset[str]]] = {
    fam: frozenset(m.canonical for m in GPU_MODELS if m.family == fam)
    for fam in dict.fromkeys(m.family for m in GPU_MODELS)
}
#: Job-side names that are not any pattern but are known to be ambiguous.
_AMBIGUOUS_KEYS: Final[dict[Key, tuple[str, ...]]] = {_tokens(k): v for k, v in _AMBIGUOUS.items()}


def gpu_model(canonical: str) -> GpuModel:
    """The :class:`GpuModel` of a canonical name (raises :class:`GPUNameError` otherwise)."""
    return GPU_MODELS[gpu_code(canonical) - 1]


def gpu_code(canonical: str | None) -> int:
    """The uint16 code of a canonical model name; ``None`` (unknown) is 0.

    Raises :class:`GPUNameError` for a string that is not a canonical name (use
    :func:`canonical_node_gpu` or :func:`resolve_job_models` first).
    """
    if canonical is None:
        return UNKNOWN_GPU_CODE
    idx = _BY_CANONICAL.get(canonical)
    if idx is None:
        raise GPUNameError(
            f"{canonical!r} is not a canonical GPU model name; accepted: "
            f"{', '.join(m.canonical for m in GPU_MODELS)}",
            name=canonical,
            suggestions=suggest(canonical),
        )
    return idx + 1


def _node_candidates(tokens: tuple[str, ...], mem: int | None) -> frozenset[str]:
    """Models of the most specific patterns found as whole-token runs in ``tokens``."""
    best = -1
    found: set[str] = set()
    n = len(tokens)
    for (ptoks, pmem), models in _PATTERNS.items():
        k = len(ptoks)
        if k == 0 or k > n or (pmem is not None and pmem != mem):
            continue
        for i in range(n - k + 1):
            if tokens[i : i + k] != ptoks:
                continue
            if i + k < n and tokens[i + k] in _MODIFIERS:
                continue
            spec = k + (1 if pmem is not None else 0)
            if spec > best:
                best, found = spec, set(models)
            elif spec == best:
                found |= models
            break
    return frozenset(found)


def _pick_variant(
    candidates: frozenset[str], mem: int | None, vram_gb_max: float | None
) -> str | None:
    if len(candidates) == 1:
        return next(iter(candidates))
    models = [GPU_MODELS[_BY_CANONICAL[c]] for c in sorted(candidates)]
    if mem is not None:
        same = [m for m in models if m.vram_gb == mem]
        return same[0].canonical if len(same) == 1 else None
    if vram_gb_max is None or not math.isfinite(vram_gb_max) or vram_gb_max <= 0:
        return None
    near = [
        (abs(vram_gb_max - m.vram_gb) / m.vram_gb, m.canonical)
        for m in models
        if m.vram_gb is not None and abs(vram_gb_max - m.vram_gb) <= _VRAM_TOLERANCE * m.vram_gb
    ]
    near.sort()
    if not near or (len(near) > 1 and near[0][0] == near[1][0]):
        return None
    return near[0][1]


@functools.lru_cache(maxsize=65536)
def _canonical_cached(name: str, vram_key: float | None) -> str | None:
    tokens, mem = _tokens(name)
    return _pick_variant(_node_candidates(tokens, mem), mem, vram_key)


def canonical_node_gpu(name: str | None, vram_gb_max: float | None = None) -> str | None:
    """A node's reported GPU name -> its canonical model name, or ``None`` when unknown.

    ``vram_gb_max`` (the GPU's total memory as the API reports it, GB) only decides between
    variants of a family when the name carries no memory size. Unknown names are never guessed.
    """
    if not name:
        return None
    vram = None if vram_gb_max is None or not math.isfinite(vram_gb_max) else vram_gb_max
    return _canonical_cached(name, None if vram is None else round(vram, 1))


def gpu_codes_for_nodes(names: Sequence[str | None], vram_gb: Sequence[float | None]) -> np.ndarray:
    """Codes (uint16, 0 = unknown) for many GPUs, each name with its total VRAM in GB.

    Each distinct ``(name, VRAM)`` pair is resolved once (and resolutions are shared across
    calls through an LRU cache keyed on VRAM rounded to 0.1 GB); the rest are dict look-ups.
    ``names`` and ``vram_gb`` must have the same length.
    """
    if len(names) != len(vram_gb):
        raise ValueError(f"names has {len(names)} entries but vram_gb has {len(vram_gb)}")
    cache: dict[tuple[str | None, float | None], int] = {}
    codes: list[int] = []
    append = codes.append
    for key in zip(names, vram_gb, strict=True):
        code = cache.get(key)
        if code is None:
            name, vram = key
            v = None if vram is None or not math.isfinite(vram) else float(vram)
            code = cache[key] = gpu_code(canonical_node_gpu(name, v))
        append(code)
    return np.array(codes, dtype=np.uint16)


def _job_index() -> dict[Key, frozenset[str]]:
    return dict(_PATTERNS)


_JOB_INDEX: Final = _job_index()


def resolve_job_models(names: Iterable[str]) -> frozenset[str]:
    """Job GPU names -> canonical model names (a family expands to all its variants).

    Accepts canonical names, families and aliases in any case and punctuation (``"h100"``,
    ``"a100_80gb"``, ``"RTX 4090"``), and full driver spellings (``"NVIDIA A100-SXM4-80GB"``).
    Raises :class:`GPUNameError` for an unknown name (with did-you-mean suggestions) or an
    ambiguous one (listing the candidates).
    """
    out: set[str] = set()
    for name in names:
        out |= _resolve_one(name)
    return frozenset(out)


def _resolve_one(name: str) -> frozenset[str]:
    if not isinstance(name, str):
        raise GPUNameError(
            f"a GPU model name must be a string, got {type(name).__name__}", name=repr(name)
        )
    key = _tokens(name)
    if key in _AMBIGUOUS_KEYS:
        cands = _AMBIGUOUS_KEYS[key]
        raise GPUNameError(
            f"GPU model {name!r} is ambiguous: it could be {' or '.join(cands)}; name one of them",
            name=name,
            suggestions=cands,
        )
    hit = _JOB_INDEX.get(key)
    if hit is not None:
        return hit
    cands_set = _node_candidates(*key) if key[0] else frozenset()
    if key[1] is not None:  # a memory size no variant has is unknown, not ambiguous
        cands_set = frozenset(
            c for c in cands_set if GPU_MODELS[_BY_CANONICAL[c]].vram_gb in (key[1], None)
        )
    if len(cands_set) == 1:
        return cands_set
    if len(cands_set) > 1:
        cands = tuple(sorted(cands_set))
        raise GPUNameError(
            f"GPU model {name!r} is ambiguous: it could be {' or '.join(cands)}; name one of "
            "them (or the family to accept all)",
            name=name,
            suggestions=cands,
        )
    sugg = suggest(name, 5)
    hint = f"; did you mean {' or '.join(sugg)}?" if sugg else ""
    raise GPUNameError(
        f"unknown GPU model {name!r}{hint} (`nodeselect gpus` lists the known models)",
        name=name,
        suggestions=sugg,
    )


def _display_names() -> dict[str, str]:
    """Compact spelling -> the name to suggest (family names suggest the family)."""
    out: dict[str, str] = {}
    for m in GPU_MODELS:
        out.setdefault(_compact(m.canonical), m.canonical)
    for fam in _FAMILIES:
        out.setdefault(_compact(fam), fam)
    for m in GPU_MODELS:
        for a in m.aliases:
            out.setdefault(_compact(a), m.canonical)
    return out


_DISPLAY: Final = _display_names()


def _distance(a: str, b: str) -> int:
    """Optimal-string-alignment (Damerau-Levenshtein) distance."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)]


def suggest(name: str, n: int = 3) -> tuple[str, ...]:
    """Up to ``n`` known model or family names closest to ``name``, best first.

    Closeness is the edit distance between the spellings with case, punctuation and vendor words
    removed; a name contained in a known spelling (``"4090"`` in ``"RTX 4090"``) counts as close.
    """
    tokens, mem = _tokens(name)
    query = "".join(tokens) + (f"{mem}gb" if mem is not None else "")
    if not query:
        return ()
    limit = max(2, len(query) // 3 + 1)
    scored: list[tuple[float, int, str]] = []
    for compact, display in _DISPLAY.items():
        d: float = _distance(query, compact)
        if d > limit and query in compact:
            d = 1.5
        if d <= limit:
            scored.append((d, abs(len(compact) - len(query)), display))
    scored.sort()
    out: list[str] = []
    for _, _, display in scored:
        idx = _BY_CANONICAL.get(display)
        family = None if idx is None else GPU_MODELS[idx].family
        if display not in out and (family is None or family == display or family not in out):
            out.append(display)
        if len(out) == n:
            break
    return tuple(out)
