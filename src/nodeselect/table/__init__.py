"""The node table: the fleet as numpy columns (CSR GPUs, bitsets), built from fetched nodes
with telemetry units inferred per fleet, plus derived columns cached per table.
"""

from __future__ import annotations

from nodeselect.table._build import (
    build_table,
)
from nodeselect.table._derived import (
    MAX_MASKS,
    TOP_GPUS,
    VRAM_EDGES_GB,
    cached_nbytes,
    categorical_mask,
    gpu_free_top,
    gpu_model_key,
    max_gpu_count,
    uuid_hash,
    vram_level,
)
from nodeselect.table._table import (
    GIB,
    TELEMETRY_FRESH_S,
    NodeTable,
    TableNode,
    arch_name,
    csr_take,
    driver_number,
    gpu_names_agree,
    uuid_hashes,
)
from nodeselect.table._units import (
    AGREE_SHARE,
    DEFAULT_UNITS,
    FRACTION_MAX_ABOVE_ONE,
    LOAD_FACTORS,
    MIN_EVIDENCE,
    PERCENT_MIN_ABOVE_ONE,
    SIZE_FACTORS,
    SIZE_TOLERANCE,
    UnitDecision,
    Units,
    implausible_loads,
    implausible_sizes,
    infer_load_unit,
    infer_size_unit,
)

__all__ = [
    "AGREE_SHARE",
    "DEFAULT_UNITS",
    "FRACTION_MAX_ABOVE_ONE",
    "GIB",
    "LOAD_FACTORS",
    "MAX_MASKS",
    "MIN_EVIDENCE",
    "PERCENT_MIN_ABOVE_ONE",
    "SIZE_FACTORS",
    "SIZE_TOLERANCE",
    "TELEMETRY_FRESH_S",
    "TOP_GPUS",
    "VRAM_EDGES_GB",
    "NodeTable",
    "TableNode",
    "UnitDecision",
    "Units",
    "arch_name",
    "build_table",
    "cached_nbytes",
    "categorical_mask",
    "csr_take",
    "driver_number",
    "gpu_free_top",
    "gpu_model_key",
    "gpu_names_agree",
    "implausible_loads",
    "implausible_sizes",
    "infer_load_unit",
    "infer_size_unit",
    "max_gpu_count",
    "uuid_hash",
    "uuid_hashes",
    "vram_level",
]
