"""The GPU registry: driver spellings -> canonical models, job names -> model sets, codes."""

from __future__ import annotations

import math
import string

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import nodeselect
from nodeselect.gpus import (
    GPU_MODELS,
    UNKNOWN_GPU_CODE,
    canonical_node_gpu,
    gpu_code,
    gpu_codes_for_nodes,
    gpu_model,
    resolve_job_models,
    suggest,
)

# (driver / API spelling, vram_gb_max as reported or None, expected canonical or None)
REAL_SPELLINGS: list[tuple[str, float | None, str | None]] = [
    ("NVIDIA H100 80GB HBM3", None, "H100-80GB"),
    ("NVIDIA H100 80GB HBM3", 79.6, "H100-80GB"),
    ("NVIDIA H100 PCIe", None, "H100-80GB"),
    ("NVIDIA H100 SXM5 80GB", None, "H100-80GB"),
    ("NVIDIA H100 NVL", None, "H100-94GB"),
    ("NVIDIA H100 NVL", 93.6, "H100-94GB"),
    ("NVIDIA H100", 79.6, "H100-80GB"),
    ("NVIDIA H100", 85.5, "H100-80GB"),  # 80 GB card reported in decimal GB
    ("NVIDIA H100", 93.6, "H100-94GB"),
    ("NVIDIA H100", None, None),  # family known, variant not: unknown, never guessed
    ("NVIDIA H100", 40.0, None),
    ("NVIDIA H200", None, "H200-141GB"),
    ("NVIDIA H200 NVL", 139.8, "H200-141GB"),
    ("NVIDIA A100-SXM4-80GB", None, "A100-80GB"),
    ("NVIDIA A100-SXM4-40GB", None, "A100-40GB"),
    ("NVIDIA A100-PCIE-40GB", None, "A100-40GB"),
    ("NVIDIA A100 80GB PCIe", None, "A100-80GB"),
    ("NVIDIA A100-SXM-80GB", None, "A100-80GB"),
    ("NVIDIA A100-PCIE", 39.4, "A100-40GB"),
    ("NVIDIA A100-PCIE", 79.2, "A100-80GB"),
    ("NVIDIA A100-PCIE", 60.0, None),
    ("NVIDIA A100-PCIE", None, None),
    ("NVIDIA A10G", 22.5, "A10G"),
    ("NVIDIA A10", 22.5, "A10"),
    ("NVIDIA A40", None, "A40"),
    ("NVIDIA A30", None, "A30"),
    ("NVIDIA L4", None, "L4"),
    ("NVIDIA L40", None, "L40"),
    ("NVIDIA L40S", None, "L40S"),
    ("NVIDIA L40-S", None, "L40S"),
    ("Tesla T4", 15.0, "T4"),
    ("NVIDIA T4", None, "T4"),
    ("Tesla V100-SXM2-16GB", None, "V100-16GB"),
    ("Tesla V100-SXM2-32GB", None, "V100-32GB"),
    ("Tesla V100-PCIE-32GB", None, "V100-32GB"),
    ("Tesla V100-PCIE", 15.8, "V100-16GB"),
    ("NVIDIA GeForce RTX 3060", 12.0, "RTX-3060"),
    ("NVIDIA GeForce RTX 3060 Ti", None, "RTX-3060-Ti"),
    ("NVIDIA GeForce RTX 3070", None, "RTX-3070"),
    ("NVIDIA GeForce RTX 3080", None, "RTX-3080"),
    ("NVIDIA GeForce RTX 3080 Ti", None, "RTX-3080-Ti"),
    ("NVIDIA GeForce RTX 3090", 24.0, "RTX-3090"),
    ("NVIDIA GeForce RTX 3090 Ti", None, "RTX-3090-Ti"),
    ("NVIDIA GeForce RTX 4060", None, "RTX-4060"),
    ("NVIDIA GeForce RTX 4060 Ti", None, "RTX-4060-Ti"),
    ("NVIDIA GeForce RTX 4070", None, "RTX-4070"),
    ("NVIDIA GeForce RTX 4070 SUPER", None, "RTX-4070-Super"),
    ("NVIDIA GeForce RTX 4070 Ti", None, "RTX-4070-Ti"),
    ("NVIDIA GeForce RTX 4070 Ti SUPER", None, "RTX-4070-Ti-Super"),
    ("NVIDIA GeForce RTX 4080", None, "RTX-4080"),
    ("NVIDIA GeForce RTX 4080 SUPER", None, "RTX-4080-Super"),
    ("NVIDIA GeForce RTX 4090", 23.99, "RTX-4090"),
    ("NVIDIA GeForce RTX 4090 D", None, "RTX-4090-D"),
    ("GeForce RTX4090", None, "RTX-4090"),
    ("NVIDIA GeForce RTX 4090 Laptop GPU", None, None),
    ("NVIDIA GeForce RTX 3080 Laptop GPU", None, None),
    ("NVIDIA GeForce RTX 5080", None, "RTX-5080"),
    ("NVIDIA GeForce RTX 5090", 31.8, "RTX-5090"),
    ("NVIDIA RTX A4000", None, "RTX-A4000"),
    ("NVIDIA RTX A5000", None, "RTX-A5000"),
    ("NVIDIA RTX A6000", None, "RTX-A6000"),
    ("NVIDIA RTX 6000 Ada Generation", None, "RTX-6000-Ada"),
    ("NVIDIA RTX PRO 6000 Blackwell Workstation Edition", None, "RTX-PRO-6000"),
    ("NVIDIA RTX PRO 6000 Blackwell Server Edition", None, "RTX-PRO-6000"),
    ("NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition", None, "RTX-PRO-6000"),
    ("NVIDIA B200", None, "B200"),
    ("AMD Instinct MI300X", None, "MI300X"),
    ("AMD Instinct MI300X VF", None, "MI300X"),
    ("AMD Instinct MI250", None, "MI250"),
    ("AMD Instinct MI250X", None, "MI250X"),
    ("AMD Radeon RX 7900 XTX", 24.0, "RX-7900-XTX"),
    ("AMD Radeon RX 7900 XT", 20.0, None),
    ("NVIDIA Graphics Device", None, None),
    ("Quadro RTX 6000", None, None),  # Turing, not the RTX 6000 Ada nor the RTX PRO 6000
    ("NVIDIA GeForce RTX", None, None),
    ("NVIDIA", None, None),
    ("", None, None),
    ("Tesla V100S-PCIE-32GB", None, None),
    ("NVIDIA GeForce GTX 1080 Ti", None, None),
]


@pytest.mark.parametrize(("name", "vram", "expected"), REAL_SPELLINGS)
def test_real_driver_spellings_map_to_the_expected_model(
    name: str, vram: float | None, expected: str | None
) -> None:
    """Each real driver spelling (with its reported VRAM) maps to the documented model or None."""
    assert canonical_node_gpu(name, vram) == expected


def test_none_name_is_unknown() -> None:
    """A GPU without a name is unknown."""
    assert canonical_node_gpu(None, 80.0) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [("NVIDIA L4", "L4"), ("NVIDIA L40", "L40"), ("NVIDIA L40S", "L40S"), ("NVIDIA A10", "A10")],
)
def test_word_boundaries_separate_prefix_names(name: str, expected: str) -> None:
    """L4, L40, L40S and A10/A100 are told apart by whole tokens, never by substring."""
    assert canonical_node_gpu(name) == expected
    assert resolve_job_models([expected]) == {expected}


def test_registry_has_unique_canonical_names_and_consistent_families() -> None:
    """Canonical names are unique and every family's variants share its vendor."""
    names = [m.canonical for m in GPU_MODELS]
    assert len(names) == len(set(names))
    for m in GPU_MODELS:
        siblings = [o for o in GPU_MODELS if o.family == m.family]
        assert {o.vendor for o in siblings} == {m.vendor}
        if len(siblings) > 1:
            vrams = [o.vram_gb for o in siblings]
            assert None not in vrams, m.family
            assert len(set(vrams)) == len(vrams), m.family


def _spellings() -> list[tuple[str, str]]:
    return [(m.canonical, s) for m in GPU_MODELS for s in (m.canonical, *m.aliases)]


@pytest.mark.parametrize(("canonical", "spelling"), _spellings())
def test_no_alias_of_one_model_matches_another(canonical: str, spelling: str) -> None:
    """Every spelling of a model maps to that model, on a node and in a job."""
    model = gpu_model(canonical)
    assert canonical_node_gpu(spelling, model.vram_gb) == canonical
    assert canonical_node_gpu(spelling) == canonical
    assert resolve_job_models([spelling]) == {canonical}


_SEPARATORS = st.text(alphabet=" -_/.", min_size=1, max_size=3)


@st.composite
def _variation(draw: st.DrawFn) -> tuple[str, str]:
    canonical, spelling = draw(st.sampled_from(_spellings()))
    parts = [p for p in spelling.replace("-", " ").split(" ") if p]
    out = draw(st.sampled_from(["", " ", "NVIDIA ", "nvidia_", "GeForce ", "Tesla ", "AMD "]))
    for i, part in enumerate(parts):
        if i:
            out += draw(_SEPARATORS)
        out += "".join(c.upper() if draw(st.booleans()) else c.lower() for c in part)
    out += draw(st.sampled_from(["", " ", "\t", "  "]))
    return canonical, out


@settings(max_examples=400, deadline=None)
@given(_variation())
def test_case_punctuation_and_whitespace_variations_map_to_the_same_model(
    case: tuple[str, str],
) -> None:
    """Changing case, separators, surrounding whitespace or adding a vendor word keeps the model."""
    canonical, spelling = case
    assert canonical_node_gpu(spelling, gpu_model(canonical).vram_gb) == canonical
    assert resolve_job_models([spelling]) == {canonical}


@pytest.mark.parametrize("family", sorted({m.family for m in GPU_MODELS}))
def test_family_names_expand_exactly_to_their_variants(family: str) -> None:
    """A family name resolves to exactly the models of that family, in any case."""
    expected = {m.canonical for m in GPU_MODELS if m.family == family}
    assert resolve_job_models([family]) == expected
    assert resolve_job_models([family.lower().replace("-", " ")]) == expected


def test_job_names_accept_mixed_forms_and_union_them() -> None:
    """Canonical names, families, aliases and driver spellings resolve together as a union."""
    got = resolve_job_models(["H100", "a100_80gb", "rtx 4090", "NVIDIA A10G"])
    assert got == {"H100-80GB", "H100-94GB", "A100-80GB", "RTX-4090", "A10G"}
    assert resolve_job_models([]) == frozenset()


@pytest.mark.parametrize(
    ("name", "candidates"),
    [("RTX 6000", {"RTX-6000-Ada", "RTX-PRO-6000"}), ("A100 SXM4", {"A100-40GB", "A100-80GB"})],
)
def test_ambiguous_job_names_raise_listing_the_candidates(name: str, candidates: set[str]) -> None:
    """An ambiguous name raises GPUNameError whose message and suggestions list every candidate."""
    with pytest.raises(nodeselect.GPUNameError, match="ambiguous") as info:
        resolve_job_models([name])
    assert set(info.value.suggestions) == candidates
    for c in candidates:
        assert c in str(info.value)


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("H10", "H100"),
        ("L40SS", "L40S"),
        ("rtx4900", "RTX-4090"),
        ("MI300", "MI300X"),
        ("4090", "RTX-4090"),
        ("V100-80GB", "A100-80GB"),
    ],
)
def test_unknown_job_names_raise_with_did_you_mean(name: str, meant: str) -> None:
    """An unknown name raises GPUNameError (an InputError) naming the likely intended model."""
    with pytest.raises(nodeselect.GPUNameError, match="did you mean") as info:
        resolve_job_models([name])
    assert meant in info.value.suggestions
    assert meant in str(info.value)
    assert isinstance(info.value, nodeselect.InputError)
    assert isinstance(info.value, ValueError)


def test_garbage_gets_no_suggestions() -> None:
    """A name near nothing known raises without inventing suggestions."""
    with pytest.raises(nodeselect.GPUNameError) as info:
        resolve_job_models(["frobnicator"])
    assert info.value.suggestions == ()


_ALPHABET = string.ascii_uppercase + string.digits


@st.composite
def _typo(draw: st.DrawFn) -> tuple[str, str]:
    model = draw(st.sampled_from(GPU_MODELS))
    s = model.canonical
    i = draw(st.integers(0, len(s) - 1))
    c = draw(st.sampled_from(_ALPHABET))
    op = draw(st.sampled_from(["sub", "del", "ins", "swap"]))
    if op == "sub":
        typo = s[:i] + c + s[i + 1 :]
    elif op == "del":
        typo = s[:i] + s[i + 1 :]
    elif op == "ins":
        typo = s[:i] + c + s[i:]
    else:
        typo = s[:i] + s[i + 1 : i + 2] + s[i] + s[i + 2 :]
    return model.canonical, typo


@settings(max_examples=400, deadline=None)
@given(_typo())
def test_misspellings_get_a_did_you_mean_containing_the_intended_model(
    case: tuple[str, str],
) -> None:
    """A one-edit typo of a canonical name that is not itself valid suggests its model or family."""
    canonical, typo = case
    err: nodeselect.GPUNameError | None = None
    try:
        resolve_job_models([typo])
    except nodeselect.GPUNameError as caught:
        err = caught
    assume(err is not None and "ambiguous" not in str(err))
    assert err is not None
    family = gpu_model(canonical).family
    assert canonical in err.suggestions or family in err.suggestions, err.suggestions


def test_suggest_respects_n_and_returns_unique_names() -> None:
    """suggest returns at most n distinct names."""
    got = suggest("RTX 30", n=2)
    assert len(got) <= 2
    assert len(set(suggest("A1000", n=10))) == len(suggest("A1000", n=10))
    assert suggest("") == ()


def test_codes_are_index_plus_one_and_none_is_zero() -> None:
    """gpu_code maps a canonical name to its index + 1, None to 0, and rejects other strings."""
    assert gpu_code(None) == UNKNOWN_GPU_CODE == 0
    for i, m in enumerate(GPU_MODELS):
        assert gpu_code(m.canonical) == i + 1
        assert gpu_model(m.canonical) is m
    assert len(GPU_MODELS) < np.iinfo(np.uint16).max
    with pytest.raises(nodeselect.GPUNameError, match="canonical"):
        gpu_code("H100")


_NODE_NAMES = [s for s, _, _ in REAL_SPELLINGS] + [None, "nvidia h100", "NVIDIA A100-PCIE"]
_VRAMS = [None, 15.8, 24.0, 39.4, 79.2, 79.6, 85.5, 93.6, float("nan"), 60.0]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_NODE_NAMES), st.sampled_from(_VRAMS)), max_size=60))
def test_vectorized_codes_equal_the_plain_python_reference(
    gpus: list[tuple[str | None, float | None]],
) -> None:
    """gpu_codes_for_nodes equals gpu_code(canonical_node_gpu(name, vram)) for every GPU."""
    names = [n for n, _ in gpus]
    vrams = [v for _, v in gpus]
    got = gpu_codes_for_nodes(names, vrams)
    assert got.dtype == np.uint16
    assert got.shape == (len(gpus),)
    expected = []
    for n, v in gpus:
        vv = None if v is None or math.isnan(v) else v
        expected.append(gpu_code(canonical_node_gpu(n, vv)))
    assert got.tolist() == expected


def test_vectorized_codes_reject_mismatched_lengths() -> None:
    """Names and VRAM sequences of different lengths are an error, not a silent truncation."""
    with pytest.raises(ValueError, match="entries"):
        gpu_codes_for_nodes(["NVIDIA L4"], [])
