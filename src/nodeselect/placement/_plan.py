"""The immutable result of batch placement: who goes where, who could not, and what is left.

A :class:`Plan` is a value: frozen attrs classes all the way down, built once by
:func:`nodeselect.place`. Launchers read it through :meth:`Plan.hosts` and
:meth:`Plan.torchrun_args`; schedulers re-check it against a fresher fleet with
:meth:`Plan.validate` just before they commit, and serialize it with :meth:`Plan.to_json`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import attrs
import numpy as np
import numpy.typing as npt

from nodeselect.engine import rank, table_stats
from nodeselect.errors import InputError
from nodeselect.jobs import Job
from nodeselect.table import NodeTable

__all__ = [
    "DEFAULT_MASTER_PORT",
    "PLAN_SCHEMA",
    "JobAssignment",
    "Plan",
    "PlanQuality",
    "PlanTotals",
    "Problem",
    "Replica",
    "Residual",
    "SolverReport",
    "Unplaced",
    "UnplacedCause",
    "UnplacedDetail",
    "totals_from",
    "validate_plan",
]

#: The first rendezvous port a plan hands out (see :meth:`Plan.master_port`).
DEFAULT_MASTER_PORT = 29500

#: The ``schema`` value of :meth:`Plan.to_json` (bumped on incompatible changes).
PLAN_SCHEMA = "nodeselect.plan/1"

ProblemKind = Literal["node-gone", "gpu-gone", "no-longer-fits"]
#: Why a job is unplaced: the fleet was full for it, or nothing fits it even when empty.
UnplacedCause = Literal["capacity", "no-fit"]


@attrs.frozen
class Replica:
    """One replica of a job on one node.

    Attributes:
        node_index: the node's row in the table the plan was made from.
        node_uuid / node_name: the node.
        address: the node's IPv4 address, else its IPv6 address, else ``None`` (personal data:
            the CLI shows it only with ``--show-private``).
        operator: the node's operator account uuid, or ``None`` when unknown.
        gpu_indices: positions in the node's ``gpus[]`` reserved for this replica.
        score: the node's score for the job in [0, 1], against the capacity left at its turn.
    """

    node_index: int
    node_uuid: str
    node_name: str | None
    address: str | None
    operator: str | None
    gpu_indices: tuple[int, ...]
    score: float


@attrs.frozen
class JobAssignment:
    """A placed job: one replica per node (a gang has ``nodes`` replicas, in node-rank order).

    Attributes:
        job_name / job_index: the job and its position in the input sequence.
        priority: the job's priority.
        replicas: the replicas, best-scored first (replica 0 is the torchrun master).
        score: the mean score of the replicas.
        alternative: for a job with alternatives, the position of the one placed; ``None``
            for a job without.
    """

    job_name: str
    job_index: int
    priority: int
    replicas: tuple[Replica, ...]
    score: float
    alternative: int | None = None

    @property
    def gpus(self) -> int:
        """GPUs reserved by the job over all its replicas."""
        return sum(len(r.gpu_indices) for r in self.replicas)


#: What an unplaced job's detail is made of: (reason, rejected, explanation).
UnplacedWhy = tuple[str, tuple[tuple[str, int], ...], Any]


class UnplacedDetail:
    """An unplaced job's reason, rejection counts and explanation, computed on first access.

    Placement hands over a function that evaluates the job against the residual capacity as
    it was at the job's turn (a cheap snapshot: the number of reservations made before it), so
    plans stay fast to build when nobody reads why a job was left out. Two details are equal
    when their reasons and rejection counts are.
    """

    __slots__ = ("_compute", "_value")

    def __init__(self, compute: Callable[[], UnplacedWhy]) -> None:
        self._compute: Callable[[], UnplacedWhy] | None = compute
        self._value: UnplacedWhy | None = None

    @classmethod
    def known(
        cls, reason: str, rejected: tuple[tuple[str, int], ...] = (), explanation: Any = None
    ) -> UnplacedDetail:
        """A detail whose values are already known."""
        out = cls(lambda: (reason, rejected, explanation))
        out.get()
        return out

    def get(self) -> UnplacedWhy:
        """(reason, rejected, explanation), computing them on the first call."""
        if self._value is None:
            assert self._compute is not None
            self._value = self._compute()
            self._compute = None  # release what the computation held (the residual snapshot)
        return self._value

    @property
    def computed(self) -> bool:
        """Whether the values have been computed yet."""
        return self._value is not None

    def _key(self) -> tuple[str, tuple[tuple[str, int], ...]]:
        reason, rejected, _ = self.get()
        return reason, rejected

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UnplacedDetail):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"UnplacedDetail({self.get()[0]!r})" if self.computed else "UnplacedDetail(<lazy>)"

    def __reduce__(self) -> tuple[Any, ...]:
        # A pickled plan carries the reason and counts, not the computation; the engine's
        # explanation object holds closures over the table and is dropped (``None``).
        reason, rejected, _ = self.get()
        return (UnplacedDetail.known, (reason, rejected))


@attrs.frozen
class Unplaced:
    """A job that could not be placed.

    Attributes:
        job_name / job_index / priority: the job.
        detail: where ``reason``, ``rejected`` and ``explanation`` come from (computed on first
            access of any of them, against the capacity left at the job's turn).
        alternative: for a job with alternatives, the last one tried (every one was tried and
            none could be placed; the reason is this one's); ``None`` for a job without.

    Properties:
        reason: a one-line summary against the capacity that was left for it, e.g.
            ``"0/3000 nodes fit: 2900 gpu-model, 100 gpu-count"`` or
            ``"gang of 4: 3 feasible nodes, best country DE has 2"``.
        rejected: per-constraint rejection counts against the residual capacity, in the engine's
            stable order (empty when every node passed but a gang rule failed).
        explanation: the engine's explanation object against the residual capacity (``None`` when
            not computed), for callers who want nearest misses.

    Attributes (continued):
        cause: ``"capacity"`` when the job fits the *empty* fleet (every hard constraint and
            gang rule) and was left out because the capacity went to other jobs;
            ``"no-fit"`` when it does not fit even the empty fleet.
    """

    job_name: str
    job_index: int
    priority: int
    detail: UnplacedDetail = attrs.field(repr=False)
    cause: UnplacedCause = "capacity"
    alternative: int | None = None

    @property
    def reason(self) -> str:
        """A one-line summary of why the job was not placed (see the class docstring)."""
        return self.detail.get()[0]

    @property
    def rejected(self) -> tuple[tuple[str, int], ...]:
        """Per-constraint rejection counts against the residual capacity, in stable order."""
        return self.detail.get()[1]

    @property
    def explanation(self) -> Any:
        """The engine's explanation against the residual capacity at the job's turn."""
        return self.detail.get()[2]


@attrs.frozen
class PlanTotals:
    """What the plan uses and leaves.

    Attributes:
        jobs_placed / jobs_unplaced: counts.
        gpus_used: GPUs reserved by all replicas.
        nodes_used: distinct nodes holding at least one replica.
        free_gpus_left: GPUs on the table not reserved by the plan.
        stranded_gpus: free GPUs left on nodes where no job of the batch fits any more
            (fragmentation; see docs/placement.md).
    """

    jobs_placed: int
    jobs_unplaced: int
    gpus_used: int
    nodes_used: int
    free_gpus_left: int
    stranded_gpus: int


@attrs.frozen
class SolverReport:
    """What the exact solver said (``Plan.quality.solver`` after ``objective="optimal"``).

    Attributes:
        status: ``"optimal"`` (proved), ``"time-limit"`` (stopped; the best plan found is
            returned) or ``"greedy"`` (the solver found nothing better than its greedy seed and
            proved nothing, e.g. a zero time limit).
        objective: the plan's weighted objective (see ``weights`` in docs/placement.md).
        bound: the solver's proven upper bound on the objective.
        gap: ``(bound - objective) / max(objective, 1)``; 0 when proved optimal.
        jobs_bound: an upper bound on the number of jobs any plan can place, derived from the
            bound (the tiers' weights make it exact for one tier).
        seed_placed: jobs the greedy seed placed.
        seconds: the solver's wall time.
        columns / rows: the model's size.
    """

    status: Literal["optimal", "time-limit", "greedy"]
    objective: float
    bound: float
    gap: float
    jobs_bound: int
    seed_placed: int
    seconds: float
    columns: int
    rows: int


@attrs.frozen
class PlanQuality:
    """How good a plan is, as far as placement can tell.

    Attributes:
        objective: ``"greedy"`` (the default: greedy pass then repair) or ``"optimal"``.
        unplaced_capacity: unplaced jobs that fit the empty fleet (left out for lack of
            capacity: a better plan might place some of them).
        unplaced_no_fit: unplaced jobs that fit nothing even on the empty fleet.
        repaired: jobs the repair pass placed after the greedy pass left them out.
        displaced: jobs the greedy pass placed that the repair pass left out to place more
            jobs of the same or a higher priority (no tier ever loses placed jobs).
        moved: replicas of jobs placed by both passes that the repair pass moved to another
            node to make room.
        solver: the exact solver's report (``None`` unless ``objective="optimal"``).
    """

    objective: Literal["greedy", "optimal"] = "greedy"
    unplaced_capacity: int = 0
    unplaced_no_fit: int = 0
    repaired: int = 0
    displaced: int = 0
    moved: int = 0
    solver: SolverReport | None = None


@attrs.frozen
class Problem:
    """An assignment that no longer fits a fresher fleet (see :meth:`Plan.validate`).

    Attributes:
        job_name: the job.
        replica: the replica's position in its assignment.
        node_uuid: the node.
        kind: ``"node-gone"`` (not in the fresh table), ``"gpu-gone"`` (a reserved GPU index no
            longer exists on the node), or ``"no-longer-fits"`` (the node, with the plan's GPUs and
            the capacity the plan's other replicas take, fails the job's hard constraints).
        detail: what failed, e.g. the failing constraint names.
    """

    job_name: str
    replica: int
    node_uuid: str
    kind: ProblemKind
    detail: str


@attrs.frozen
class Plan:
    """An immutable placement of a batch of jobs.

    Attributes:
        jobs: the jobs as placed (``job_index`` refers to this tuple): a job with alternatives
            is here as the alternative it used (``Job.choices()``; the last tried if unplaced).
        assignments: placed jobs, in turn order (``order``; a job placed by the repair pass
            appears at its own turn), so priorities never rise along it.
        unplaced: jobs that could not be placed, in the order they were tried.
        totals: usage and fragmentation figures.
        order: job indices in the order placement considered them.
        seed: the tie-break seed.
        now: the evaluation time.
        quality: why jobs are unplaced (capacity versus no fit), what the repair pass did, and
            the solver's bound and gap after ``objective="optimal"``.
    """

    jobs: tuple[Job, ...] = attrs.field(repr=False)
    assignments: tuple[JobAssignment, ...]
    unplaced: tuple[Unplaced, ...]
    totals: PlanTotals
    order: tuple[int, ...]
    seed: int
    now: datetime
    quality: PlanQuality = PlanQuality()

    def assignment(self, job_name: str) -> JobAssignment:
        """The assignment of the placed job called ``job_name`` (InputError if none)."""
        for a in self.assignments:
            if a.job_name == job_name:
                return a
        placed = ", ".join(repr(a.job_name) for a in self.assignments) or "none"
        unplaced = [u.job_name for u in self.unplaced]
        why = " (it was not placed)" if job_name in unplaced else ""
        raise InputError(f"no placed job named {job_name!r} in the plan{why}; placed: {placed}")

    def hosts(self, job_name: str) -> list[tuple[str, int]]:
        """``(address, gpu_count)`` per replica of a placed job, in node-rank order.

        Raises InputError if the job was not placed or a node has no known address.
        """
        out: list[tuple[str, int]] = []
        for node_rank, r in enumerate(self.assignment(job_name).replicas):
            if r.address is None:
                raise InputError(
                    f"job {job_name!r} replica {node_rank} on node {r.node_uuid}: the node "
                    "document has no ipv4_address or ipv6_address; a launcher needs one"
                )
            out.append((r.address, len(r.gpu_indices)))
        return out

    def master_port(self, job_name: str, base: int = DEFAULT_MASTER_PORT) -> int:
        """The default rendezvous port of a placed job: ``base`` plus the number of jobs placed
        before it whose master (replica 0) is on the same node, so two jobs whose masters
        share a node do not collide on one port."""
        a = self.assignment(job_name)
        return base + _port_offsets(self.assignments)[a.job_index]

    def torchrun_args(self, job_name: str, master_port: int | None = None) -> list[list[str]]:
        """The ``torchrun`` rendezvous arguments for each replica (node rank order).

        ``--nproc-per-node`` is the replica's reserved GPU count (1 for a CPU-only job); the
        master is replica 0. torchrun has no flag that selects devices: launch each replica with
        its :meth:`launch_env` ``CUDA_VISIBLE_DEVICES`` (or use :meth:`torchrun_commands`, which
        does), else a replica given GPUs 2,3 of a shared node would start on GPUs 0,1. Raises
        InputError like :meth:`hosts`.
        """
        port = self.master_port(job_name) if master_port is None else master_port
        _check_port(port)
        hosts = self.hosts(job_name)
        master = hosts[0][0]
        return [
            [
                f"--nnodes={len(hosts)}",
                f"--nproc-per-node={max(gpus, 1)}",
                f"--node-rank={rank}",
                f"--master-addr={master}",
                f"--master-port={port}",
            ]
            for rank, (_, gpus) in enumerate(hosts)
        ]

    def launch_env(
        self, job_name: str, *, master_port: int | None = None, show_private: bool = False
    ) -> list[dict[str, str]]:
        """The environment each replica of a placed job is launched with (node-rank order).

        Per replica: ``CUDA_VISIBLE_DEVICES`` (exactly its reserved ``gpu_indices``, comma
        separated; empty for a CPU-only job, which hides every GPU), ``NODE_RANK``, ``NNODES``,
        ``NPROC_PER_NODE`` (its GPU count, 1 for a CPU-only job), ``WORLD_SIZE`` (processes over
        all replicas) and ``MASTER_PORT``. ``MASTER_ADDR`` (the address of replica 0's node, from
        its document) is personal data: it is included only with ``show_private=True``, and
        then a master without an address raises InputError like :meth:`hosts`.

        Two jobs sharing a node get disjoint ``CUDA_VISIBLE_DEVICES``: placement never reserves
        one GPU index twice. The indices are positions in the node's ``gpus[]``, which are
        assumed to follow the node's CUDA device order (``CUDA_DEVICE_ORDER=PCI_BUS_ID``).
        """
        port = self.master_port(job_name) if master_port is None else master_port
        _check_port(port)
        a = self.assignment(job_name)
        master = self.hosts(job_name)[0][0] if show_private else None
        return _launch_env(a, port, master)

    def torchrun_commands(
        self, job_name: str, script: str, *script_args: str, master_port: int | None = None
    ) -> list[list[str]]:
        """The full command of each replica (node-rank order), pinned to its reserved GPUs.

        ``["env", "CUDA_VISIBLE_DEVICES=2,3", "torchrun", *torchrun_args, script, *script_args]``:
        torchrun itself has no flag that selects devices, so the reservation is passed through
        the environment. Raises InputError like :meth:`hosts` (the master address is needed).
        """
        envs = self.launch_env(job_name, master_port=master_port)
        args = self.torchrun_args(job_name, master_port=master_port)
        return [
            [
                "env",
                f"CUDA_VISIBLE_DEVICES={e['CUDA_VISIBLE_DEVICES']}",
                "torchrun",
                *a,
                script,
                *script_args,
            ]
            for e, a in zip(envs, args, strict=True)
        ]

    def to_records(self, *, show_private: bool = False) -> list[dict[str, Any]]:
        """One plain dict per replica of every placed job (for pandas, polars, CSV writers).

        Keys: ``job``, ``job_index``, ``priority``, ``replica`` (node rank), ``node_uuid``,
        ``node_name``, ``gpu_indices`` (a list), ``gpus``, ``score``, ``job_score``; plus
        ``address`` with ``show_private=True``. Unplaced jobs are in :attr:`unplaced`.
        """
        out: list[dict[str, Any]] = []
        for a in self.assignments:
            for k, r in enumerate(a.replicas):
                rec: dict[str, Any] = {
                    "job": a.job_name,
                    "job_index": a.job_index,
                    "priority": a.priority,
                    "replica": k,
                    "node_uuid": r.node_uuid,
                    "node_name": r.node_name,
                    "gpu_indices": list(r.gpu_indices),
                    "gpus": len(r.gpu_indices),
                    "score": r.score,
                    "job_score": a.score,
                }
                if show_private:
                    rec["address"] = r.address
                out.append(rec)
        return out

    def validate(
        self, fleet: NodeTable | Any, *, now: datetime | None = None
    ) -> tuple[Problem, ...]:
        """Assignments that no longer fit ``fleet``; empty when all still fit.

        ``fleet`` is a fresher :class:`NodeTable`, ``FetchResult`` or sequence of fetched nodes;
        ``now`` the evaluation time (default: the current time). Every replica is re-checked
        with the plan's own GPUs and with the cores, RAM and disk the plan's earlier replicas
        on the same node take, so the plan as a whole must fit.
        """
        return validate_plan(self, fleet, now=now)

    def to_json(
        self, *, show_private: bool = False, master_port: int = DEFAULT_MASTER_PORT
    ) -> dict[str, Any]:
        """The plan as a JSON-ready dict (schema in docs/placement.md).

        Raises InputError when ``master_port`` is not a TCP port.
        Every replica has an ``env``: its :meth:`launch_env`, ``MASTER_PORT`` being
        :meth:`master_port` with ``base=master_port``.
        Node addresses (and ``MASTER_ADDR``) are included only with ``show_private=True``.
        """

        offsets = _port_offsets(self.assignments)
        _check_port(master_port + max(offsets.values(), default=0))

        def replica(r: Replica, env: dict[str, str]) -> dict[str, Any]:
            d: dict[str, Any] = {
                "node_uuid": r.node_uuid,
                "node_name": r.node_name,
                "gpu_indices": list(r.gpu_indices),
                "score": r.score,
                "env": env,
            }
            if show_private:
                d["address"] = r.address
            return d

        def envs(a: JobAssignment) -> list[dict[str, str]]:
            # A master without an address is not an error in a JSON dump: the key is left out.
            port = master_port + offsets[a.job_index]
            return _launch_env(a, port, a.replicas[0].address if show_private else None)

        return {
            "schema": PLAN_SCHEMA,
            "seed": self.seed,
            "now": self.now.isoformat(),
            "assignments": [
                {
                    "job": a.job_name,
                    "job_index": a.job_index,
                    "priority": a.priority,
                    "score": a.score,
                    "gpus": a.gpus,
                    "replicas": [replica(r, e) for r, e in zip(a.replicas, envs(a), strict=True)],
                    **({} if a.alternative is None else {"alternative": a.alternative}),
                }
                for a in self.assignments
            ],
            "unplaced": [
                {
                    "job": u.job_name,
                    "job_index": u.job_index,
                    "priority": u.priority,
                    "reason": u.reason,
                    "rejected": dict(u.rejected),
                    "cause": u.cause,
                    **({} if u.alternative is None else {"alternative": u.alternative}),
                }
                for u in self.unplaced
            ],
            "totals": attrs.asdict(self.totals),
            "quality": attrs.asdict(self.quality),
        }


def _launch_env(a: JobAssignment, port: int, master: str | None) -> list[dict[str, str]]:
    """The launch environment of each replica of ``a`` (see :meth:`Plan.launch_env`)."""
    procs = [max(len(r.gpu_indices), 1) for r in a.replicas]
    common = {"NNODES": str(len(a.replicas)), "WORLD_SIZE": str(sum(procs))}
    common["MASTER_PORT"] = str(port)
    if master is not None:
        common["MASTER_ADDR"] = master
    return [
        {
            "CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in r.gpu_indices),
            "NODE_RANK": str(node_rank),
            "NPROC_PER_NODE": str(nproc),
            **common,
        }
        for node_rank, (r, nproc) in enumerate(zip(a.replicas, procs, strict=True))
    ]


def _port_offsets(assignments: Sequence[JobAssignment]) -> dict[int, int]:
    """Per placed job index, how many earlier assignments have their master on the same node."""
    seen: dict[str, int] = {}
    out: dict[int, int] = {}
    for a in assignments:
        node = a.replicas[0].node_uuid if a.replicas else ""
        out[a.job_index] = seen.get(node, 0)
        seen[node] = out[a.job_index] + 1
    return out


def _check_port(port: int) -> None:
    if not 0 < port < 65536:
        raise InputError(f"master_port: {port} is not a TCP port (1..65535)")


def totals_from(
    assignments: tuple[JobAssignment, ...],
    unplaced: tuple[Unplaced, ...],
    *,
    total_gpus: int,
    stranded_gpus: int,
) -> PlanTotals:
    """Totals for a plan over a table with ``total_gpus`` GPUs."""
    used = sum(a.gpus for a in assignments)
    nodes = {r.node_uuid for a in assignments for r in a.replicas}
    return PlanTotals(
        jobs_placed=len(assignments),
        jobs_unplaced=len(unplaced),
        gpus_used=used,
        nodes_used=len(nodes),
        free_gpus_left=total_gpus - used,
        stranded_gpus=stranded_gpus,
    )


class Residual:
    """Capacity left on a table while a plan is being built (mutable; private to placement).

    Attributes:
        table: the table the plan is made from.
        gpu_reserved: per GPU, True once promised to a replica.
        cpu_cores / ram_free_gb / disk_free_gb: per node, what is still unpromised.
        touched: rows that have had anything reserved, in first-touch order.
        touched_mask: per node, True once anything was reserved on it.
        version: reservations made so far; :meth:`view_at` rebuilds the residual of any earlier
            version from the reservation log (a snapshot costs one integer).
    """

    def __init__(self, table: NodeTable) -> None:
        self.table = table
        self.gpu_reserved = (
            np.zeros(len(table.gpu_model_code), dtype=np.bool_)
            if table.gpu_reserved is None
            else table.gpu_reserved.copy()
        )
        self.cpu_cores = table.cpu_cores.copy()
        self.ram_free_gb = table.ram_free_gb.copy()
        self.disk_free_gb = table.disk_free_gb.copy()
        self.touched: dict[int, None] = {}
        self.touched_mask = np.zeros(len(table), dtype=np.bool_)
        counts = np.diff(table.gpu_offsets).astype(np.int64)
        taken = np.zeros(len(self.gpu_reserved) + 1, dtype=np.int64)
        np.cumsum(self.gpu_reserved, out=taken[1:])
        self.free_gpu_count = counts - (
            taken[table.gpu_offsets[1:]] - taken[table.gpu_offsets[:-1]]
        )
        #: (row, GPUs, cores, RAM, disk, +1 reserve / -1 release)
        self._log: list[tuple[int, tuple[int, ...], int, float, float, int]] = []
        self._rows = np.zeros(0, dtype=np.int64)
        self._view: NodeTable | None = None

    @property
    def version(self) -> int:
        """How many replicas have been reserved so far."""
        return len(self._log)

    def view(self) -> NodeTable:
        """The table with the residual capacity (columns shared, not copied: the view follows
        every later reservation)."""
        if self._view is None:
            self._view = self.table.with_capacity(
                gpu_reserved=self.gpu_reserved,
                cpu_cores=self.cpu_cores,
                ram_free_gb=self.ram_free_gb,
                disk_free_gb=self.disk_free_gb,
            )
        return self._view

    def view_at(self, version: int) -> NodeTable:
        """The residual table as it was after the first ``version`` reservations (a copy).

        Replays the log on fresh copies of the table's columns, in the same order and with the
        same float32 arithmetic as :meth:`reserve`, so the result is bit-identical.
        """
        past = Residual(self.table)
        for row, gpus, cores, ram, disk, sign in self._log[:version]:
            past._apply(row, gpus, cores, ram, disk, sign=sign)
        return past.view()

    def touched_rows(self) -> npt.NDArray[np.int64]:
        """The touched rows as an array, in first-touch order (read-only).

        Rows are only ever added (a :meth:`restore` starts the array again), so only the rows
        touched since the last call are converted: rebuilding the whole array at every turn
        was quadratic in a large batch."""
        have, n = len(self._rows), len(self.touched)
        if have != n:
            new = np.fromiter(itertools.islice(self.touched, have, None), np.int64, n - have)
            self._rows = np.concatenate([self._rows, new]) if have else new
        return self._rows

    def fits(self, job: Job, row: int, gpu_indices: Sequence[int]) -> bool:
        """Whether one replica with these GPUs still fits the residual capacity of ``row``.

        A last line of defence under the engine's own check: the GPUs must exist, be distinct
        and unreserved, and the node must have the job's cores, RAM and disk left.
        """
        start = int(self.table.gpu_offsets[row])
        count = int(self.table.gpu_offsets[row + 1]) - start
        if len(gpu_indices) != job.gpu.count or len(set(gpu_indices)) != len(gpu_indices):
            return False
        if any(not 0 <= g < count or self.gpu_reserved[start + g] for g in gpu_indices):
            return False
        cores, ram, disk = _demand(job)
        return (
            (cores == 0 or int(self.cpu_cores[row]) >= cores)
            and (ram == 0 or float(self.ram_free_gb[row]) >= ram)
            and (disk == 0 or float(self.disk_free_gb[row]) >= disk)
        )

    def reserve(self, job: Job, row: int, gpu_indices: Sequence[int]) -> None:
        """Promise one replica's GPUs, cores, RAM and disk on ``row``."""
        start = int(self.table.gpu_offsets[row])
        gpus = tuple(start + int(g) for g in gpu_indices)
        cores, ram, disk = _demand(job)
        self._apply(row, gpus, cores, ram, disk, sign=1)
        self._log.append((row, gpus, cores, ram, disk, 1))

    def release(self, job: Job, row: int, gpu_indices: Sequence[int]) -> None:
        """Give back what :meth:`reserve` promised for one replica (the row stays touched)."""
        start = int(self.table.gpu_offsets[row])
        gpus = tuple(start + int(g) for g in gpu_indices)
        cores, ram, disk = _demand(job)
        self._apply(row, gpus, cores, ram, disk, sign=-1)
        self._log.append((row, gpus, cores, ram, disk, -1))

    def snapshot(self) -> tuple[Any, ...]:
        """The mutable state, copied (for :meth:`restore`: an exact undo, float32 included)."""
        return (
            self.gpu_reserved.copy(),
            self.free_gpu_count.copy(),
            self.cpu_cores.copy(),
            self.ram_free_gb.copy(),
            self.disk_free_gb.copy(),
            dict(self.touched),
            self.touched_mask.copy(),
            len(self._log),
        )

    def restore(self, state: tuple[Any, ...]) -> None:
        """Return to a :meth:`snapshot` (in place: views already handed out follow)."""
        gpu, free, cores, ram, disk, touched, mask, log = state
        self.gpu_reserved[:] = gpu
        self.free_gpu_count[:] = free
        self.cpu_cores[:] = cores
        self.ram_free_gb[:] = ram
        self.disk_free_gb[:] = disk
        self.touched = touched
        self.touched_mask[:] = mask
        del self._log[log:]
        self._rows = np.zeros(0, dtype=np.int64)

    def _apply(
        self, row: int, gpus: tuple[int, ...], cores: int, ram: float, disk: float, *, sign: int
    ) -> None:
        taken = sign > 0
        for g in gpus:
            if self.gpu_reserved[g] != taken:
                self.gpu_reserved[g] = taken
                self.free_gpu_count[row] -= sign
        if sign > 0:
            self.cpu_cores[row] -= cores
            self.ram_free_gb[row] -= np.float32(ram)
            self.disk_free_gb[row] -= np.float32(disk)
        else:
            self.cpu_cores[row] += cores
            self.ram_free_gb[row] += np.float32(ram)
            self.disk_free_gb[row] += np.float32(disk)
        self.touched[row] = None
        self.touched_mask[row] = True

    def free_gpus(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Unreserved GPUs on each of ``rows``."""
        out: npt.NDArray[np.int64] = self.free_gpu_count[rows]
        return out


def _demand(job: Job) -> tuple[int, float, float]:
    """Cores, RAM GB and disk GB one replica promises: the job's minimums (0 when unset)."""
    return (
        job.cpu.min_cores or 0,
        float(job.memory.min_free_gb or 0.0),
        float(job.disk.min_free_gb or 0.0),
    )


def validate_plan(plan: Plan, fleet: Any, *, now: datetime | None = None) -> tuple[Problem, ...]:
    """Assignments of ``plan`` that no longer fit ``fleet`` (see :meth:`Plan.validate`)."""
    if isinstance(fleet, NodeTable):
        table = fleet
    else:
        nodes = getattr(fleet, "nodes", fleet)
        if not isinstance(nodes, Sequence):
            raise InputError(
                "validate: expected a NodeTable, a FetchResult or a sequence of fetched nodes, "
                f"got {type(fleet).__name__}"
            )
        table = NodeTable.from_nodes(nodes, now=now)
    when = now or datetime.now(UTC)
    residual = Residual(table)
    stats = table_stats(table)
    problems: list[Problem] = []
    for a in plan.assignments:
        job = plan.jobs[a.job_index]
        for k, rep in enumerate(a.replicas):
            try:
                row = table.index_of(rep.node_uuid)
            except InputError:
                problems.append(Problem(a.job_name, k, rep.node_uuid, "node-gone", "not in table"))
                continue
            count = int(table.gpu_offsets[row + 1] - table.gpu_offsets[row])
            gone = [g for g in rep.gpu_indices if g >= count]
            if gone:
                problems.append(
                    Problem(
                        a.job_name,
                        k,
                        rep.node_uuid,
                        "gpu-gone",
                        f"GPU index {gone} not on the node, which now has {count} GPUs",
                    )
                )
                continue
            # Offer the job only the plan's GPUs on this node, with the capacity left.
            start = int(table.gpu_offsets[row])
            saved = residual.gpu_reserved[start : start + count].copy()
            residual.gpu_reserved[start : start + count] = True
            for g in rep.gpu_indices:
                residual.gpu_reserved[start + g] = saved[g]
            r = rank(job, residual.view().take([row]), k=1, now=when, seed=plan.seed, stats=stats)
            residual.gpu_reserved[start : start + count] = saved
            if r.feasible == 0 or not residual.fits(job, row, rep.gpu_indices):
                failing = [name for name, c in r.explanation.rejected if c]
                detail = "fails " + ", ".join(failing) if failing else "capacity already promised"
                problems.append(Problem(a.job_name, k, rep.node_uuid, "no-longer-fits", detail))
                continue
            residual.reserve(job, row, rep.gpu_indices)
    return tuple(problems)
