"""rank_many chooses, per GPU group, between the shared layout and the per-job path by their
cost (``GROUP_COST``), and a batch where nothing repays the shared columns is the plain loop."""

from __future__ import annotations

import pytest

from nodeselect.engine._rank import Ranking, rank
from nodeselect.engine.batch import _rank_many as _batch
from nodeselect.engine.batch._columns import BatchColumns
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
    """Records which paths rank: group rank_all, or BatchColumns built for the per-job path."""
    seen: list[str] = []
    real_all, real_one = JobGroup.rank_all, BatchColumns.rank_one

    def rank_all(self: JobGroup, cjs: list[object]) -> list[Ranking]:
        seen.append("group")
        return real_all(self, cjs)  # type: ignore[arg-type]

    def rank_one(self: BatchColumns, cj: object) -> Ranking:
        seen.append("one")
        return real_one(self, cj)  # type: ignore[arg-type]

    monkeypatch.setattr(JobGroup, "rank_all", rank_all)
    monkeypatch.setattr(BatchColumns, "rank_one", rank_one)
    return seen


def test_a_small_group_with_many_candidates_takes_the_plain_loop(calls: list[str]) -> None:
    """Few jobs against a layout of every GPU node: no group, no shared columns, same result."""
    t = NodeTable.synthetic(3000, seed=4, now=NOW)
    jobs = _jobs(_batch.MIN_GROUP + 2)
    got = rank_many(jobs, t, now=NOW)
    assert calls == []
    assert [r.top for r in got] == [rank(j, t, now=NOW).top for j in jobs]


def test_a_group_with_enough_jobs_ranks_through_its_layout(calls: list[str]) -> None:
    """When jobs x rows reach GROUP_COST x the layout's cells, the group path ranks them."""
    t = NodeTable.synthetic(3000, seed=4, now=NOW)
    jobs = _jobs(8 * _batch.GROUP_COST)
    got = rank_many(jobs, t, now=NOW)
    assert calls == ["group"]
    assert [r.top for r in got[:5]] == [rank(j, t, now=NOW).top for j in jobs[:5]]
