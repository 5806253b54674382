"""rank_many chooses, per GPU group, between the shared layout and the per-job path by their
cost (``GROUP_COST``); the jobs no group takes are ranked one by one (``SharedRows``)."""

from __future__ import annotations

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
