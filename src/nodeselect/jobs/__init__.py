"""Jobs: the model (``Job`` and its requirement sections), the job-file loader and the value
rules every loader and the engine share (:func:`check_job`, the one validator).
"""

from __future__ import annotations

from nodeselect.jobs._check import check_job
from nodeselect.jobs._file import (
    ARCH_ALIASES,
    MAX_JOB_FILE_BYTES,
    format_duration,
    job_from_dict,
    job_to_dict,
    load_job,
    load_jobs,
    loads_job,
    loads_jobs,
    normalize_arch,
    parse_duration,
)
from nodeselect.jobs._model import (
    ALTERNATIVE_SECTIONS,
    DEFAULT_WEIGHTS,
    SCORE_TERMS,
    Alternative,
    CpuReq,
    DiskReq,
    GangReq,
    GpuReq,
    Job,
    MemoryReq,
    PlacementReq,
    Preferences,
    SoftwareReq,
)
from nodeselect.jobs._overrides import Override, apply_overrides, parse_override, parse_value

__all__ = [
    "ALTERNATIVE_SECTIONS",
    "ARCH_ALIASES",
    "DEFAULT_WEIGHTS",
    "MAX_JOB_FILE_BYTES",
    "SCORE_TERMS",
    "Alternative",
    "CpuReq",
    "DiskReq",
    "GangReq",
    "GpuReq",
    "Job",
    "MemoryReq",
    "Override",
    "PlacementReq",
    "Preferences",
    "SoftwareReq",
    "apply_overrides",
    "check_job",
    "format_duration",
    "job_from_dict",
    "job_to_dict",
    "load_job",
    "load_jobs",
    "loads_job",
    "loads_jobs",
    "normalize_arch",
    "parse_duration",
    "parse_override",
    "parse_value",
]
