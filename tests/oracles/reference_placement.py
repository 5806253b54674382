"""Plain-Python reference for batch placement on tiny instances.

A tiny instance is a handful of nodes described directly (GPUs by model and free VRAM, cores,
free RAM, free disk, operator, country) plus jobs that use a subset of the job model (GPU
count/models/free VRAM, cores, RAM, disk, replicas, gang rules). This module

* turns an instance into node documents (``LeanNode`` + ``ProvedFacts``) for ``NodeTable``;
* checks any plan from scratch (:func:`check_plan`): every resource, every hard constraint and
  every gang rule, with no shared code with the vectorized placement;
* computes the brute-force optimum number of placed jobs (:func:`optimum_placed`) by exhaustive
  search over every placement of every job (jobs in any subset, GPUs by interchangeable type).
"""

from __future__ import annotations

import functools
import itertools
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import attrs

from nodeselect.documents._facts import ProvedFacts
from nodeselect.documents._lean import LeanCpu, LeanDisk, LeanGpu, LeanNode, LeanRam
from nodeselect.jobs._model import CpuReq, DiskReq, GangReq, GpuReq, Job, MemoryReq

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

#: canonical model -> (driver spelling, total VRAM GB)
MODELS: dict[str, tuple[str, int]] = {
    "T4": ("Tesla T4", 16),
    "RTX-4090": ("NVIDIA GeForce RTX 4090", 24),
    "A100-80GB": ("NVIDIA A100 80GB PCIe", 80),
}
COUNTRIES = {"DE": "EU", "FR": "EU", "US": "NA"}


@attrs.frozen
class TinyGpu:
    model: str
    vram_free_gb: int


@attrs.frozen
class TinyNode:
    uuid: str
    gpus: tuple[TinyGpu, ...]
    cores: int
    ram_free_gb: int
    disk_free_gb: int
    operator: str
    country: str

    def node(self) -> FleetNode:
        """This node as a document the table reads."""
        seen = (NOW - timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
        lean = LeanNode(
            uuid=self.uuid,
            name=f"node-{self.uuid[-4:]}",
            reputation=80,
            last_seen_at=seen,
            created_at="2025-01-01T00:00:00Z",
            cpus=[LeanCpu(name="cpu", num_cores=self.cores)],
            gpus=[
                LeanGpu(
                    name=MODELS[g.model][0],
                    vram_gb_available=g.vram_free_gb,
                    vram_gb_max=MODELS[g.model][1],
                )
                for g in self.gpus
            ],
            hard_drives=[LeanDisk(available_capacity_gb=self.disk_free_gb, max_capacity_gb=2000)],
            rams=[LeanRam(memory_gb_available=self.ram_free_gb, memory_gb_max=512)],
            operator_account_uuid=self.operator,
            ipv4_address=f"10.0.{int(self.uuid[-4:], 16) % 250}.{len(self.gpus) + 1}",
        )
        facts = ProvedFacts(
            status="AVAILABLE", continent=COUNTRIES[self.country], country=self.country
        )
        return FleetNode(lean=lean, facts=facts)


@attrs.frozen
class FleetNode:
    """What ``NodeTable.from_nodes`` reads: a lean document and its proved facts."""

    lean: LeanNode
    facts: ProvedFacts


def tiny_job(
    name: str,
    *,
    gpus: int = 0,
    models: tuple[str, ...] = (),
    vram: int | None = None,
    cores: int | None = None,
    ram: int | None = None,
    disk: int | None = None,
    nodes: int = 1,
    priority: int = 0,
    same: str | None = None,
    distinct: str = "node",
    operators: str = "spread",
) -> Job:
    """A job in the subset the reference understands."""
    return Job(
        name=name,
        nodes=nodes,
        priority=priority,
        gpu=GpuReq(models=models, count=gpus, min_vram_free_gb=vram),
        cpu=CpuReq(min_cores=cores),
        memory=MemoryReq(min_free_gb=ram),
        disk=DiskReq(min_free_gb=disk),
        gang=GangReq(same=same, distinct=distinct, operators=operators),  # type: ignore[arg-type]
    )


# --- feasibility in plain Python ------------------------------------------------------------


def gpu_ok(job: Job, gpu: TinyGpu) -> bool:
    """Whether one GPU satisfies the job's per-GPU limits."""
    if job.gpu.models and gpu.model not in job.gpu.models:
        return False
    return job.gpu.min_vram_free_gb is None or gpu.vram_free_gb >= job.gpu.min_vram_free_gb


def node_ok(job: Job, node: TinyNode, cores: int, ram: int, disk: int) -> bool:
    """Whether the node's non-GPU residual capacity admits one replica."""
    return (
        (job.cpu.min_cores is None or cores >= job.cpu.min_cores)
        and (job.memory.min_free_gb is None or ram >= job.memory.min_free_gb)
        and (job.disk.min_free_gb is None or disk >= job.disk.min_free_gb)
    )


def take(job: Job) -> tuple[int, int, int]:
    """Cores, RAM GB and disk GB one replica of the job reserves."""
    return (
        job.cpu.min_cores or 0,
        int(job.memory.min_free_gb or 0),
        int(job.disk.min_free_gb or 0),
    )


def gang_ok(job: Job, nodes: Sequence[TinyNode]) -> bool:
    """Whether a set of nodes obeys the job's replica count and gang rules."""
    if len(nodes) != job.nodes or len({n.uuid for n in nodes}) != len(nodes):
        return False
    if job.gang.distinct == "operator" and len({n.operator for n in nodes}) != len(nodes):
        return False
    if job.gang.same == "country" and len({n.country for n in nodes}) > 1:
        return False
    return not (job.gang.same == "continent" and len({COUNTRIES[n.country] for n in nodes}) > 1)


def check_plan(nodes: Sequence[TinyNode], jobs: Sequence[Job], plan: object) -> list[str]:
    """Every violation of the plan against the instance (empty = the plan is sound)."""
    by_uuid = {n.uuid: n for n in nodes}
    used_gpus: set[tuple[str, int]] = set()
    used: Counter[tuple[str, str]] = Counter()
    errors: list[str] = []
    for a in plan.assignments:  # type: ignore[attr-defined]
        job = jobs[a.job_index]
        placed = [by_uuid[r.node_uuid] for r in a.replicas]
        if not gang_ok(job, placed):
            errors.append(f"{job.name}: gang rule broken on {[n.uuid for n in placed]}")
        for r in a.replicas:
            node = by_uuid[r.node_uuid]
            if len(r.gpu_indices) != job.gpu.count:
                errors.append(f"{job.name}: {len(r.gpu_indices)} GPUs, wants {job.gpu.count}")
            for g in r.gpu_indices:
                if (node.uuid, g) in used_gpus:
                    errors.append(f"{job.name}: GPU {g} of {node.uuid} promised twice")
                used_gpus.add((node.uuid, g))
                if not gpu_ok(job, node.gpus[g]):
                    errors.append(f"{job.name}: GPU {g} of {node.uuid} does not fit")
            c, m, d = take(job)
            used[(node.uuid, "cores")] += c
            used[(node.uuid, "ram")] += m
            used[(node.uuid, "disk")] += d
            # the replica must fit the capacity left before it took its share
            if not node_ok(
                job,
                node,
                node.cores - used[(node.uuid, "cores")] + c,
                node.ram_free_gb - used[(node.uuid, "ram")] + m,
                node.disk_free_gb - used[(node.uuid, "disk")] + d,
            ):
                errors.append(f"{job.name}: {node.uuid} lacks cores/RAM/disk at its turn")
    for n in nodes:
        if used[(n.uuid, "cores")] > n.cores and used[(n.uuid, "cores")] > 0:
            errors.append(f"{n.uuid}: cores over-promised")
        if used[(n.uuid, "ram")] > n.ram_free_gb and used[(n.uuid, "ram")] > 0:
            errors.append(f"{n.uuid}: RAM over-promised")
        if used[(n.uuid, "disk")] > n.disk_free_gb and used[(n.uuid, "disk")] > 0:
            errors.append(f"{n.uuid}: disk over-promised")
    return errors


# --- brute-force optimum --------------------------------------------------------------------

State = tuple[tuple[int, ...], tuple[tuple[int, int, int], ...]]  # free-GPU bitmask, residuals


def _replica_options(
    job: Job, nodes: Sequence[TinyNode], state: State, i: int
) -> Iterator[tuple[int, tuple[int, int, int]]]:
    """Each distinct way to put one replica on node ``i``: (new free-GPU mask, new residual)."""
    masks, res = state
    node = nodes[i]
    cores, ram, disk = res[i]
    if not node_ok(job, node, cores, ram, disk):
        return
    c, m, d = take(job)
    new_res = (cores - c, ram - m, disk - d)
    free = [g for g in range(len(node.gpus)) if masks[i] >> g & 1 and gpu_ok(job, node.gpus[g])]
    if len(free) < job.gpu.count:
        return
    seen: set[tuple[TinyGpu, ...]] = set()
    for combo in itertools.combinations(free, job.gpu.count):
        key = tuple(sorted((node.gpus[g] for g in combo), key=lambda x: (x.model, x.vram_free_gb)))
        if key in seen:  # interchangeable GPUs: one representative per multiset of types
            continue
        seen.add(key)
        mask = masks[i]
        for g in combo:
            mask &= ~(1 << g)
        yield mask, new_res


def _job_options(job: Job, nodes: Sequence[TinyNode], state: State) -> Iterator[State]:
    """Every state reachable by placing the whole job (all replicas) from ``state``."""
    for combo in itertools.combinations(range(len(nodes)), job.nodes):
        if not gang_ok(job, [nodes[i] for i in combo]):
            continue
        per_node = [list(_replica_options(job, nodes, state, i)) for i in combo]
        if any(not opts for opts in per_node):
            continue
        for choice in itertools.product(*per_node):
            masks = list(state[0])
            res = list(state[1])
            for i, (mask, r) in zip(combo, choice, strict=True):
                masks[i] = mask
                res[i] = r
            yield tuple(masks), tuple(res)


def optimum_placed(nodes: Sequence[TinyNode], jobs: Sequence[Job]) -> int:
    """The largest number of jobs any placement fits on the instance (exhaustive search)."""
    start: State = (
        tuple((1 << len(n.gpus)) - 1 for n in nodes),
        tuple((n.cores, n.ram_free_gb, n.disk_free_gb) for n in nodes),
    )

    @functools.cache
    def best(j: int, state: State) -> int:
        if j == len(jobs):
            return 0
        result = best(j + 1, state)  # leave job j out
        if result == len(jobs) - j:
            return result
        for nxt in _job_options(jobs[j], nodes, state):
            result = max(result, 1 + best(j + 1, nxt))
            if result == len(jobs) - j:
                break
        return result

    return best(0, start)


# --- random tiny instances --------------------------------------------------------------------


def random_instance(rng: random.Random, max_nodes: int = 8, max_jobs: int = 6) -> Instance:
    """A random instance with up to ``max_nodes`` nodes and ``max_jobs`` jobs."""
    nodes = []
    for i in range(rng.randint(1, max_nodes)):
        model = rng.choice(sorted(MODELS))
        total = MODELS[model][1]
        gpus = tuple(
            TinyGpu(model, rng.choice([v for v in (8, 12, 16, 24, 40, 80) if v <= total]))
            for _ in range(rng.choice([0, 1, 1, 2, 2, 4]))
        )
        nodes.append(
            TinyNode(
                uuid=f"00000000-0000-0000-0000-00000000{i:04x}",
                gpus=gpus,
                cores=rng.choice([4, 8, 16, 32]),
                ram_free_gb=rng.choice([16, 64, 128]),
                disk_free_gb=rng.choice([100, 500, 1000]),
                operator=f"op-{rng.randint(1, 3)}",
                country=rng.choice(sorted(COUNTRIES)),
            )
        )
    jobs = []
    for j in range(rng.randint(1, max_jobs)):
        n = rng.choice([1, 1, 1, 2, 3])
        gpus = rng.choice([0, 1, 1, 2, 4])
        models = rng.choice([(), (), ("T4",), ("RTX-4090", "A100-80GB")])
        vram = rng.choice([None, None, 12, 24])
        jobs.append(
            tiny_job(
                f"job-{j}",
                gpus=gpus,
                models=models if gpus else (),
                vram=vram if gpus else None,
                cores=rng.choice([None, 4, 8, 16]),
                ram=rng.choice([None, 16, 64]),
                disk=rng.choice([None, 100, 500]),
                nodes=n,
                priority=rng.choice([0, 0, 1]),
                same=rng.choice([None, "country", "continent"]) if n > 1 else None,
                distinct=rng.choice(["node", "operator"]) if n > 1 else "node",
                operators=rng.choice(["spread", "pack"]) if n > 1 else "spread",
            )
        )
    return Instance(tuple(nodes), tuple(jobs))


@attrs.frozen
class Instance:
    nodes: tuple[TinyNode, ...]
    jobs: tuple[Job, ...]

    def fleet(self) -> list[FleetNode]:
        return [n.node() for n in self.nodes]
