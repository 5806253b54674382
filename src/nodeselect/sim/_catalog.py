"""What a realistic fleet is made of: countries, GPU models, CPUs, images, drivers.

Every table here is plain data. Weights are relative (they are normalized where used). GPU
names are spelled exactly as drivers report them; VRAM totals are the MiB figures ``nvidia-smi``
(or ``rocm-smi``) prints for that card.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CONTINENT_CODES",
    "COUNTRIES",
    "CPUS_AARCH64",
    "CPUS_CONSUMER",
    "CPUS_SERVER",
    "DOCKER_VERSIONS",
    "DRIVERS_MODERN",
    "DRIVERS_OLD",
    "EEA",
    "EU",
    "GDPR_EXTRA",
    "GPU_MODELS",
    "IMAGES_AMD",
    "IMAGES_CPU",
    "IMAGES_GPU",
    "OS_RELEASES",
    "STATUS_WEIGHTS",
    "SUSPENSION_REASONS",
    "ZERNET_VERSIONS",
    "Country",
    "GpuModel",
]

#: ``filter[continent_code]`` values, in the order their integer codes use.
CONTINENT_CODES: Final = ("AF", "AN", "AS", "EU", "NA", "OC", "SA")

#: The nine statuses with the share of the fleet in each (AVAILABLE/WORKING/OFFLINE dominate).
STATUS_WEIGHTS: Final = (
    ("AVAILABLE", 0.36),
    ("ASSIGNED", 0.04),
    ("PREPARING", 0.02),
    ("WORKING", 0.20),
    ("STOPPING", 0.015),
    ("OFFLINE", 0.22),
    ("DELETED", 0.035),
    ("RESOURCE_BUSY", 0.04),
    ("OUTDATED_CLIENT", 0.07),
)

#: The 27 EU member states.
_EU_CODES: Final = (
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE"
)
EU: Final = frozenset(_EU_CODES.split(" "))
#: The European Economic Area: the EU plus Iceland, Liechtenstein and Norway.
EEA: Final = EU | {"IS", "LI", "NO"}
#: Outside the EEA but under GDPR (the UK GDPR).
GDPR_EXTRA: Final = frozenset({"GB"})

Country = tuple[str, str, float, tuple[str, ...]]
#: (ISO 3166-1 alpha-2, continent, weight, ISO 3166-2 subdivisions that nodes report).
COUNTRIES: Final[tuple[Country, ...]] = (
    ("US", "NA", 30.0, ("US-CA", "US-TX", "US-NY", "US-WA", "US-VA", "US-OR", "US-IL", "US-GA")),
    ("CA", "NA", 4.0, ("CA-ON", "CA-QC", "CA-BC", "CA-AB")),
    ("MX", "NA", 1.0, ()),
    ("BR", "SA", 2.0, ("BR-SP", "BR-RJ")),
    ("AR", "SA", 0.6, ()),
    ("CL", "SA", 0.4, ()),
    ("CO", "SA", 0.3, ()),
    ("DE", "EU", 8.0, ("DE-BE", "DE-BY", "DE-HE", "DE-NW")),
    ("GB", "EU", 5.0, ("GB-ENG", "GB-SCT", "GB-WLS")),
    ("FR", "EU", 4.0, ("FR-IDF", "FR-ARA")),
    ("NL", "EU", 3.0, ()),
    ("PL", "EU", 2.0, ()),
    ("SE", "EU", 1.5, ()),
    ("FI", "EU", 1.5, ()),
    ("ES", "EU", 1.2, ()),
    ("IT", "EU", 1.2, ()),
    ("IE", "EU", 0.8, ()),
    ("RO", "EU", 1.0, ()),
    ("CZ", "EU", 0.8, ()),
    ("NO", "EU", 0.8, ()),
    ("IS", "EU", 0.5, ()),
    ("CH", "EU", 0.8, ()),
    ("UA", "EU", 1.0, ()),
    ("TR", "AS", 0.8, ()),
    ("IN", "AS", 3.0, ("IN-MH", "IN-KA", "IN-DL")),
    ("SG", "AS", 2.0, ()),
    ("JP", "AS", 2.0, ("JP-13", "JP-27")),
    ("KR", "AS", 1.5, ()),
    ("HK", "AS", 1.0, ()),
    ("TW", "AS", 1.0, ()),
    ("VN", "AS", 1.5, ()),
    ("TH", "AS", 0.6, ()),
    ("ID", "AS", 0.6, ()),
    ("AE", "AS", 0.5, ()),
    ("IL", "AS", 0.4, ()),
    ("AU", "OC", 2.0, ("AU-NSW", "AU-VIC", "AU-QLD")),
    ("NZ", "OC", 0.4, ()),
    ("ZA", "AF", 0.6, ()),
    ("NG", "AF", 0.5, ()),
    ("KE", "AF", 0.3, ()),
    ("EG", "AF", 0.3, ()),
    ("AQ", "AN", 0.02, ()),
)

GpuModel = tuple[str | None, float, int, tuple[tuple[int, float], ...], str]
#: (driver-reported name, fleet weight, VRAM MiB, ((gpu count, weight), ...), tier).
#: Tier is ``consumer``, ``workstation``, ``datacenter``, ``amd`` or ``unknown``.
_SOLO = ((1, 0.8), (2, 0.15), (4, 0.05))
_RIG = ((1, 0.55), (2, 0.27), (4, 0.13), (8, 0.05))
_BOX = ((1, 0.05), (2, 0.05), (4, 0.2), (8, 0.7))
_CARD = ((1, 0.5), (2, 0.22), (4, 0.2), (8, 0.08))
GPU_MODELS: Final[tuple[GpuModel, ...]] = (
    ("NVIDIA GeForce RTX 4090", 20.0, 24564, _RIG, "consumer"),
    ("NVIDIA GeForce RTX 3090", 14.0, 24576, _RIG, "consumer"),
    ("NVIDIA GeForce RTX 3060", 8.0, 12288, _SOLO, "consumer"),
    ("NVIDIA GeForce RTX 5090", 2.0, 32607, _RIG, "consumer"),
    ("NVIDIA RTX A6000", 5.0, 49140, _CARD, "workstation"),
    ("NVIDIA RTX 6000 Ada Generation", 3.0, 49140, _CARD, "workstation"),
    ("NVIDIA RTX PRO 6000 Blackwell Workstation Edition", 1.5, 97887, _CARD, "workstation"),
    ("NVIDIA A100-SXM4-80GB", 3.5, 81920, _BOX, "datacenter"),
    ("NVIDIA A100-PCIE-40GB", 3.0, 40960, _CARD, "datacenter"),
    ("NVIDIA H100 80GB HBM3", 3.0, 81559, _BOX, "datacenter"),
    ("NVIDIA H100 PCIe", 2.0, 81559, _CARD, "datacenter"),
    ("NVIDIA H200", 1.0, 143771, _BOX, "datacenter"),
    ("NVIDIA L40S", 3.0, 46068, _CARD, "datacenter"),
    ("NVIDIA L40", 2.0, 46068, _CARD, "datacenter"),
    ("NVIDIA L4", 3.0, 23034, _CARD, "datacenter"),
    ("Tesla T4", 4.0, 15360, _CARD, "datacenter"),
    ("Tesla V100-SXM2-16GB", 2.0, 16384, _BOX, "datacenter"),
    ("NVIDIA A10G", 3.0, 23028, _CARD, "datacenter"),
    ("AMD Instinct MI300X", 0.8, 196592, _BOX, "amd"),
    ("AMD Radeon RX 7900 XTX", 0.5, 24560, _SOLO, "amd"),
    ("NVIDIA Graphics Device", 0.5, 32768, _SOLO, "unknown"),
    (None, 12.0, 0, ((0, 1.0),), "cpu"),  # CPU-only nodes
)

#: (name, cores, threads per core, base clock MHz)
CPUS_CONSUMER: Final = (
    ("AMD Ryzen 9 7950X 16-Core Processor", 16, 2, 4500),
    ("AMD Ryzen 9 5950X 16-Core Processor", 16, 2, 3400),
    ("AMD Ryzen 7 5800X 8-Core Processor", 8, 2, 3800),
    ("13th Gen Intel(R) Core(TM) i9-13900K", 24, 1, 3000),
    ("Intel(R) Core(TM) i7-12700K", 12, 2, 3600),
    ("AMD Ryzen Threadripper PRO 5975WX 32-Cores", 32, 2, 3600),
)
CPUS_SERVER: Final = (
    ("AMD EPYC 7763 64-Core Processor", 64, 2, 2450),
    ("AMD EPYC 9654 96-Core Processor", 96, 2, 2400),
    ("AMD EPYC 7543 32-Core Processor", 32, 2, 2800),
    ("Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz", 32, 2, 2000),
    ("Intel(R) Xeon(R) Platinum 8480+", 56, 2, 2000),
    ("Intel(R) Xeon(R) CPU E5-2690 v4 @ 2.60GHz", 14, 2, 2600),
)
CPUS_AARCH64: Final = (
    ("NVIDIA Grace CPU", 72, 1, 3100),
    ("Ampere Altra Q80-30", 80, 1, 3000),
)

#: Driver versions: modern ones for every NVIDIA card; old ones only for older cards.
DRIVERS_MODERN: Final = (
    "535.104.05",
    "535.183.01",
    "550.54.15",
    "550.127.05",
    "560.35.03",
    "570.124.06",
)
DRIVERS_OLD: Final = ("470.223.02", "525.147.05")

IMAGES_GPU: Final = (
    "pytorch/pytorch:latest",
    "pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime",
    "nvcr.io/nvidia/pytorch:24.08-py3",
    "nvcr.io/nvidia/pytorch:23.10-py3",
    "vllm/vllm-openai:latest",
    "vllm/vllm-openai:v0.6.3",
    "tensorflow/tensorflow:latest-gpu",
    "nvidia/cuda:12.4.1-runtime-ubuntu22.04",
    "nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04",
    "ghcr.io/huggingface/text-generation-inference:2.3",
    "ollama/ollama:latest",
    "ubuntu:22.04",
    "ubuntu:20.04",
)
IMAGES_AMD: Final = ("rocm/pytorch:latest", "rocm/vllm:latest", "ubuntu:22.04")
IMAGES_CPU: Final = ("ubuntu:22.04", "ubuntu:24.04", "python:3.11-slim", "debian:bookworm")

#: (brand, name, version) as ``operating_system`` reports it.
OS_RELEASES: Final = (
    ("Ubuntu", "Ubuntu", "22.04.4 LTS", 0.55),
    ("Ubuntu", "Ubuntu", "20.04.6 LTS", 0.15),
    ("Ubuntu", "Ubuntu", "24.04.1 LTS", 0.18),
    ("Debian", "Debian GNU/Linux", "12 (bookworm)", 0.07),
    ("Microsoft", "Windows 11 Pro (WSL2)", "10.0.22631", 0.05),
)

DOCKER_VERSIONS: Final = ("24.0.7", "25.0.3", "26.1.4", "27.3.1")
#: Client versions, newest last; OUTDATED_CLIENT nodes run one of the first two.
ZERNET_VERSIONS: Final = ("0.9.4", "1.0.2", "1.2.0", "1.3.1")

SUSPENSION_REASONS: Final = (
    ("failed_health_checks", "Node failed 3 consecutive health checks."),
    ("abuse_report", "Investigating a report of misuse."),
    ("hardware_mismatch", "Reported hardware does not match benchmark results."),
)
