"""rank_many chooses, per GPU group, between the shared layout and the per-job path by their
cost (``GROUP_COST``); the jobs no group takes are ranked one by one (``SharedRows``)."""

from __future__ import annotations

import threading
import weakref

import pytest

from nodeselect.engine._rank import Ranking, rank
from nodeselect.engine.batch import _rank_many as _batch
from nodeselect.engine.batch._alone import SharedRows
from nodeselect.engine.batch._group import JobGroup
from nodeselect.engine.batch._rank_many import rank_many
from nodeselect.jobs._model import GpuReq, Job
from nodeselect.table._table import NodeTable
from strategies_fleet import NOW


def _jobs(n: int) -> list[Job]:
    """``n`` GPU jobs of any model (one group whose candidates are every GPU node)."""
    return [Job(gpu=GpuReq(count=1 + i % 3, min_vram_free_gb=8.0 + i % 7)) for i in range(n)]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records which paths rank: group rank_all, or the per-job path (SharedRows.rank)."""
    seen: list[str] = []
    real_all, real_one = JobGroup.rank_all, SharedRows.rank

    def rank_all(self: JobGroup, cjs: list[object]) -> list[Ranking]:
        seen.append("group")
        return real_all(self, cjs)  # type: ignore[arg-type]

    def rank_one(self: SharedRows, cj: object, **kw: object) -> Ranking:
        seen.append("one")
        return real_one(self, cj, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(JobGroup, "rank_all", rank_all)
    monkeypatch.setattr(SharedRows, "rank", rank_one)
    return seen


def test_a_small_group_with_many_candidates_takes_the_per_job_path(calls: list[str]) -> None:
    """Few jobs against a layout of every GPU node: no group, each job ranked alone, same
    result."""
    t = NodeTable.synthetic(3000, seed=4, now=NOW)
    jobs = _jobs(_batch.MIN_GROUP + 2)
    got = rank_many(jobs, t, now=NOW)
    assert calls == ["one"] * len(jobs)
    assert [r.top for r in got] == [rank(j, t, now=NOW).top for j in jobs]


def test_a_group_with_enough_jobs_ranks_through_its_layout(calls: list[str]) -> None:
    """When jobs x rows reach GROUP_COST x the layout's cells, the group path ranks them."""
    t = NodeTable.synthetic(3000, seed=4, now=NOW)
    jobs = _jobs(8 * _batch.GROUP_COST)
    got = rank_many(jobs, t, now=NOW)
    assert calls == ["group"]
    assert [r.top for r in got[:5]] == [rank(j, t, now=NOW).top for j in jobs[:5]]


def test_cpu_only_jobs_with_bounded_terms_take_the_per_job_path(calls: list[str]) -> None:
    """CPU-only jobs (every term bounded) are ranked one by one, alone or next to a batched
    GPU group, with the loop's results."""
    from nodeselect.jobs._model import CpuReq  # noqa: PLC0415

    t = NodeTable.synthetic(3000, seed=4, now=NOW)
    cpu = [Job(cpu=CpuReq(min_cores=4 + i % 5)) for i in range(3 * _batch.MIN_GROUP)]
    got = rank_many(cpu, t, now=NOW)
    assert calls == ["one"] * len(cpu)
    calls.clear()
    assert [r.top for r in got] == [rank(j, t, now=NOW).top for j in cpu]
    jobs = [*cpu[:2], *_jobs(8 * _batch.GROUP_COST)]
    got = rank_many(jobs, t, now=NOW)
    assert calls == ["one", "one", "group"]
    assert [r.top for r in got[:3]] == [rank(j, t, now=NOW).top for j in jobs[:3]]


def test_planning_takes_cpu_only_jobs_score_bounds_once_per_weights(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whether a CPU-only job takes the pruned per-job path depends on its terms' bounds,
    which are kept with the table per weights: a batch of CPU-only jobs with one set of
    weights computes each term's bound once, not once per job (1,000 distinct CPU-only jobs
    spent 0.3 s of 1.8 s planning, each computing three table-wide columns)."""
    from nodeselect.engine.scorers._reputation import Reputation  # noqa: PLC0415
    from nodeselect.jobs._model import CpuReq  # noqa: PLC0415

    seen: list[int] = []
    real = Reputation.upper

    def upper(self: Reputation, cj: object, t: object) -> object:
        seen.append(1)
        return real(self, cj, t)  # type: ignore[arg-type]

    monkeypatch.setattr(Reputation, "upper", upper)
    t = NodeTable.synthetic(3000, seed=5, now=NOW)
    jobs = [Job(cpu=CpuReq(min_cores=1 + i % 30)) for i in range(40)]
    got = rank_many(jobs, t, now=NOW)
    assert len(seen) == 1
    assert [r.top for r in got] == [rank(j, t, now=NOW).top for j in jobs]


def _by_vram_total(per_group: int, groups: int = 5) -> list[Job]:
    """GPU jobs in ``groups`` groups (one per VRAM total), interleaved, with per-job counts
    and free-VRAM thresholds, and a load limit shared within one group."""
    totals = [8.0, 16.0, 24.0, 40.0, 80.0, 10.0, 12.0, 20.0, 32.0, 48.0][:groups]
    return [
        Job(
            name=f"j{i}",
            gpu=GpuReq(
                count=1 + i % 3,
                min_vram_total_gb=totals[i % groups],
                min_vram_free_gb=None if i % 2 else 4.0 + i % 7,
                max_load=0.8 if i % groups == 4 else None,
            ),
        )
        for i in range(groups * per_group)
    ]


def test_jobs_sharing_a_vram_total_or_load_limit_rank_as_a_group(calls: list[str]) -> None:
    """Jobs whose per-GPU limits other than free VRAM agree (here a VRAM total, and a load
    limit in one group) are ranked through groups, one per set of limits, and rank as the
    loop over rank does."""
    t = NodeTable.synthetic(3000, seed=4, now=NOW)
    jobs = _by_vram_total(8 * _batch.GROUP_COST)
    got = rank_many(jobs, t, now=NOW)
    assert calls.count("group") == 5
    assert "one" not in calls
    for job, r in zip(jobs, got, strict=True):
        want = rank(job, t, now=NOW)
        assert (r.feasible, r.top) == (want.feasible, want.top)


@pytest.mark.parametrize("workers", [1, 2])
def test_each_groups_layout_is_freed_once_its_jobs_are_ranked(
    monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """GPU layouts (the large part of a group) do not pile up: one thread keeps one alive at
    a time; threads start a further layout only after the pieces of the group ``workers``
    layouts before it (at most ``2 * workers`` alive, 10 groups here); none outlives the
    call."""
    alive: set[int] = set()
    most: list[int] = [0]
    lock = threading.Lock()
    real = JobGroup.layout

    def layout(self: JobGroup) -> None:
        with lock:
            if self.gpu and id(self) not in alive:
                alive.add(id(self))
                most[0] = max(most[0], len(alive))
                weakref.finalize(self, alive.discard, id(self))
        real(self)

    monkeypatch.setattr(JobGroup, "layout", layout)
    monkeypatch.setattr(_batch, "GROUP_COST", 0)  # every group laid out
    t = NodeTable.synthetic(3000, seed=4, now=NOW)
    jobs = _by_vram_total(40, groups=10)
    got = rank_many(jobs, t, now=NOW, workers=workers)
    assert not alive
    assert 1 <= most[0] <= 2 * workers - (workers == 1)
    assert [r.top for r in got] == [r.top for r in rank_many(jobs, t, now=NOW)]
