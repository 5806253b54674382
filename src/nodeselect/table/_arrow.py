"""The node table as an Apache Arrow table (``NodeTable.to_arrow``), and through it pandas and
polars: what a data person reaches for first.

One row per node. Numeric columns (floats, ints: units in their names, unknown = NaN) are
handed to Arrow without copying (Arrow wraps the NumPy buffer). Coded categories (status,
region, OS, architecture, operator, name) become dictionary columns over the table's
vocabulary, unknown = null; the per-node GPU columns become list columns over the CSR offsets
(the values are not copied); bitsets (compliance, cached images) become lists of strings.
``pyarrow`` is an optional dependency (``pip install 'nodeselect[arrow]'``), imported only here
and only when called.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from nodeselect.errors import OptionalDependencyError
from nodeselect.gpus import GPU_MODELS

if TYPE_CHECKING:
    from nodeselect.table._table import NodeTable

__all__ = ["MissingDependencyError", "import_optional", "to_arrow"]


#: The error for a missing optional extra (one class for every extra; kept under this name).
MissingDependencyError = OptionalDependencyError


def import_optional(module: str, extra: str, what: str) -> Any:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(
            f"{what} needs {module}, which is not installed; install it with "
            f"pip install 'nodeselect[{extra}]'"
        ) from None


#: Per-node coded columns: code column -> (output name, vocabulary attribute).
_CODED = (
    ("status_code", "status", "status_vocab"),
    ("continent_code", "continent", "continent_vocab"),
    ("country_code", "country", "country_vocab"),
    ("subdivision_code", "subdivision", "subdivision_vocab"),
    ("os_code", "os", "os_vocab"),
    ("arch_code", "arch", "arch_vocab"),
    ("operator_code", "operator", "operator_vocab"),
)
#: Per-node numeric columns passed without a copy, in output order.
_NUMERIC = (
    "reputation",
    "cpu_cores",
    "cpu_load",
    "ram_free_gb",
    "ram_total_gb",
    "disk_free_gb",
    "disk_total_gb",
    "driver_version",
    "last_seen_epoch_s",
    "telemetry_epoch_s",
    "gpu_count",
)
#: Per-GPU float columns, as list columns over ``gpu_offsets``.
_PER_GPU = ("gpu_vram_free_gb", "gpu_vram_total_gb", "gpu_tele_vram_free_gb", "gpu_load")


def _dictionary(pa: Any, codes: npt.NDArray[Any], vocab: Any) -> Any:
    """Codes over a vocabulary whose entry 0 means unknown -> a dictionary column, 0 = null."""
    words = [v.decode() if isinstance(v, bytes) else str(v) for v in vocab]
    indices = pa.array(codes.astype(np.int32, copy=False), mask=codes == 0)
    return pa.DictionaryArray.from_arrays(indices, pa.array(words, pa.string()))


def _bit_lists(pa: Any, bits: npt.NDArray[np.uint64], vocab: tuple[str, ...], n: int) -> Any:
    """A (words, n) bitset -> a list<string> column (vocabulary order within a node)."""
    rows_parts, tags_parts = [], []
    for j in range(len(vocab)):
        has = ((bits[j >> 6] >> np.uint64(j & 63)) & np.uint64(1)).astype(np.bool_)
        rows = np.flatnonzero(has)
        rows_parts.append(rows)
        tags_parts.append(np.full(len(rows), j, dtype=np.int32))
    rows = np.concatenate(rows_parts) if rows_parts else np.zeros(0, dtype=np.int64)
    tags = np.concatenate(tags_parts) if tags_parts else np.zeros(0, dtype=np.int32)
    order = np.lexsort((tags, rows))
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=n), out=offsets[1:])
    values = pa.DictionaryArray.from_arrays(
        pa.array(tags[order]), pa.array(list(vocab), pa.string())
    )
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def to_arrow(table: NodeTable) -> Any:
    """The ``pyarrow.Table`` of ``table`` (see the module docstring for the columns)."""
    pa = import_optional("pyarrow", "arrow", "NodeTable.to_arrow")
    n = len(table)
    cols: dict[str, Any] = {
        "uuid": pa.array(table.uuid.astype(np.str_), pa.string()),
        "name": _dictionary(pa, table.name_code, table.name_vocab),
    }
    for code, name, vocab in _CODED:
        cols[name] = _dictionary(pa, getattr(table, code), getattr(table, vocab))
    for name in _NUMERIC:
        cols[name] = pa.array(getattr(table, name))  # numeric NumPy -> Arrow wraps, no copy
    cols["suspended"] = pa.array(table.suspended)
    cols["deleted"] = pa.array(table.deleted)
    cols["compliance"] = _bit_lists(pa, table.compliance_bits, table.compliance_vocab, n)
    cols["images"] = _bit_lists(pa, table.image_bits, table.image_vocab, n)
    offsets = pa.array(table.gpu_offsets)
    models = ["", *(m.canonical for m in GPU_MODELS)]
    codes = table.gpu_model_code
    model = pa.DictionaryArray.from_arrays(
        pa.array(codes.astype(np.int32), mask=codes == 0), pa.array(models, pa.string())
    )
    cols["gpu_model"] = pa.ListArray.from_arrays(offsets, model)
    for name in _PER_GPU:
        cols[name] = pa.ListArray.from_arrays(offsets, pa.array(getattr(table, name)))
    if table.gpu_reserved is not None:
        cols["gpu_reserved"] = pa.ListArray.from_arrays(offsets, pa.array(table.gpu_reserved))
    return pa.table(cols)
