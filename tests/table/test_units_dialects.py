"""Every telemetry dialect: the table admits what a plain-Python reading told the truth admits.

The simulator writes telemetry in the units of its dialect (``sim/_dialect.py``); nodeselect is
not told them and must infer them (``nodeselect.table._units``). For each dialect, a generated
fleet's documents -> ``decode_body`` -> ``NodeTable.from_nodes`` -> ``rank`` must admit exactly
the nodes that ``reference_rank`` (node by node, from the documents) admits when it is *told*
the dialect's true units; and ``nodeselect plan --json --top 100000`` against a loopback
``SimServer`` serving that dialect must admit the same set. The class of error of issue 10
(RAM telemetry in GB and loads in percent read as bytes and fractions: 60 % and 97 % of the
feasible nodes rejected) fails these tests: reading a non-default dialect in the default units
admits a different set (checked below, so the equality has power).
"""

from __future__ import annotations

import contextlib
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from nodeselect.cli import _asof, main
from nodeselect.documents._facts import ProvedFacts
from nodeselect.engine._rank import rank
from nodeselect.fetch._decode import decode_body
from nodeselect.fetch._result import FetchedNode
from nodeselect.jobs._file import job_from_dict
from nodeselect.jobs._model import Job
from nodeselect.sim import DIALECTS, Dialect, Fleet, SimServer, generate_fleet
from nodeselect.table._table import NodeTable
from reference_engine import reference_rank

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
N_NODES = 400
JOBS: dict[str, dict[str, Any]] = {
    "ram": {"memory": {"min_free_gb": 40}},
    "load": {"gpu": {"count": 1, "max_load": 0.3}},
    "vram": {"gpu": {"count": 1, "min_vram_free_gb": 20}},
    "all": {
        "memory": {"min_free_gb": 24},
        "gpu": {"count": 1, "max_load": 0.5, "min_vram_free_gb": 10},
    },
}
JOB_TOML: dict[str, str] = {
    "ram": "[memory]\nmin_free_gb = 40\n",
    "load": "[gpu]\ncount = 1\nmax_load = 0.3\n",
    "vram": "[gpu]\ncount = 1\nmin_vram_free_gb = 20\n",
    "all": "[memory]\nmin_free_gb = 24\n[gpu]\ncount = 1\nmax_load = 0.5\nmin_vram_free_gb = 10\n",
}
DEFAULT = Dialect()


def _job(name: str) -> Job:
    return job_from_dict({"name": name, **JOBS[name]})


def _fleet(dialect: Dialect) -> Fleet:
    return generate_fleet(N_NODES, seed=5, now=NOW, dialect=dialect)


def _fetched(fleet: Fleet) -> list[FetchedNode]:
    """Every document decoded as a fetch decodes it (pages of 50), with the hidden facts."""
    enc = msgspec.json.Encoder()
    docs = [enc.encode(d) for d in fleet.documents()]
    out: list[FetchedNode] = []
    for a in range(0, len(docs), 50):
        body = b'{"data":[%s],"limit":50,"page":1,"total":%d}' % (
            b",".join(docs[a : a + 50]),
            len(docs),
        )
        page = decode_body(body, ProvedFacts())
        assert not page.rejected, [r.error for r in page.rejected]
        for node in page.nodes:
            h = fleet.hidden(node.uuid)
            facts = ProvedFacts(
                status=h.status,
                compliance_tags=h.compliance_tags,
                continent=h.continent,
                country=h.country,
                subdivision=h.subdivision,
            )
            out.append(FetchedNode(node.uuid, node.lean, node.raw, facts))
    return out


_CACHE: dict[str, tuple[Fleet, list[FetchedNode], NodeTable]] = {}


def _built(name: str) -> tuple[Fleet, list[FetchedNode], NodeTable]:
    if name not in _CACHE:
        fleet = _fleet(DIALECTS[name])
        nodes = _fetched(fleet)
        _CACHE[name] = (fleet, nodes, NodeTable.from_nodes(nodes, now=NOW))
    return _CACHE[name]


def _admitted(job: Job, table: NodeTable) -> set[str]:
    return {r.uuid for r in rank(job, table, k=100_000, now=NOW).top}


def _truth(job: Job, nodes: list[FetchedNode], dialect: Dialect) -> set[str]:
    return set(reference_rank(job, list(nodes), NOW, units=dialect).score)


def _naive(job: Job, nodes: list[FetchedNode]) -> set[str]:
    """What a reader that assumes the documented units and trusts every value admits."""
    return set(reference_rank(job, list(nodes), NOW, units=DEFAULT, checks=False).score)


@pytest.mark.parametrize("name", list(DIALECTS))
def test_the_table_infers_each_dialects_true_units(name: str) -> None:
    """RAM, VRAM, GPU and CPU load units decided equal the dialect's, with no fallbacks."""
    dialect = DIALECTS[name]
    _, _, table = _built(name)
    u = table.units
    assert (u.ram.unit, u.vram.unit, u.gpu_load.unit, u.cpu_load.unit) == (
        dialect.ram_unit,
        dialect.vram_unit,
        dialect.load_unit,
        dialect.load_unit,
    )
    assert u.telemetry_fallbacks == 0
    assert (u.summary() is None) == (
        (dialect.ram_unit, dialect.vram_unit, dialect.load_unit) == ("bytes", "MiB", "fraction")
    )


@pytest.mark.parametrize("job_name", list(JOBS))
@pytest.mark.parametrize("name", list(DIALECTS))
def test_rank_admits_what_the_reference_told_the_true_units_admits(
    name: str, job_name: str
) -> None:
    """Documents -> table -> rank admits exactly the reference's feasible nodes."""
    _, nodes, table = _built(name)
    job = _job(job_name)
    want = _truth(job, nodes, DIALECTS[name])
    assert 0 < len(want) < len(nodes)  # the job splits the fleet: the check has teeth
    assert _admitted(job, table) == want


@pytest.mark.parametrize(
    "name",
    [
        n
        for n, d in DIALECTS.items()
        if (d.ram_unit, d.vram_unit, d.load_unit) != ("bytes", "MiB", "fraction")
    ],
)
def test_assuming_the_default_units_would_be_caught(name: str) -> None:
    """Reading a non-default dialect in the default units admits a different set for some job,
    so the equality above fails if inference is broken (issue 10's measured failure)."""
    _, nodes, _ = _built(name)
    differs = [j for j in JOBS if _truth(_job(j), nodes, DIALECTS[name]) != _naive(_job(j), nodes)]
    assert differs


def test_ram_in_gb_and_percent_loads_keep_the_feasible_nodes() -> None:
    """The issue's fleet: RAM telemetry in GB, loads in percent. Nearly every truly feasible
    node is admitted (not 40 % / 3 %), and the reading in default units loses most of them."""
    name = "ram-gb-load-percent"
    _, nodes, table = _built(name)
    for job_name in ("ram", "load"):
        job = _job(job_name)
        truth = _truth(job, nodes, DIALECTS[name])
        wrong = _naive(job, nodes)
        assert _admitted(job, table) == truth
        assert len(wrong & truth) < 0.5 * len(truth)


@pytest.mark.parametrize("name", list(DIALECTS))
def test_plan_json_over_http_admits_what_the_reference_admits(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``plan JOB --api URL --json --top 100000`` against a SimServer in the dialect: the
    ranked uuids are the reference's feasible nodes, and ``fleet.units`` names the true units."""
    fleet = _fleet(DIALECTS[name])
    nodes = _fetched(fleet)
    monkeypatch.setattr(_asof, "clock", lambda: NOW)  # the CLI reads the time only here
    monkeypatch.setenv("NODESELECT_API_KEY", "test-key")
    job_name = "all"
    path = tmp_path / "job.toml"
    path.write_text(f'name = "{job_name}"\n' + JOB_TOML[job_name])
    out, err = io.StringIO(), io.StringIO()
    with (
        SimServer(fleet) as server,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        code = main(["plan", str(path), "--api", server.url, "--json", "--top", "100000"])
    assert code in (0, 1), err.getvalue()
    report = json.loads(out.getvalue())
    want = _truth(_job(job_name), nodes, DIALECTS[name])
    assert want
    assert {r["uuid"] for r in report["ranked"]} == want
    units = report["fleet"]["units"]
    d = DIALECTS[name]
    assert (units["ram"]["unit"], units["vram"]["unit"], units["gpu_load"]["unit"]) == (
        d.ram_unit,
        d.vram_unit,
        d.load_unit,
    )
