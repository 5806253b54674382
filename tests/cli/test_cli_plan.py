"""`nodeselect plan`: the --json schema, the text report, privacy, --explain, and the helpers."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect.cli import main
from nodeselect.cli._common import EXIT_INPUT, EXIT_NO_FIT, EXIT_OK, terminal_safe
from nodeselect.cli.plan import (
    REPORT_SCHEMA,
    build_report,
    private_fields,
    pushed_down_filters,
    render_report,
)
from nodeselect.jobs._file import job_from_dict

ROOT = Path(__file__).resolve().parents[2]
LLM = ROOT / "examples" / "jobs" / "llm-finetune.toml"
TOP_KEYS = [
    "schema",
    "job",
    "fleet",
    "pushed_down",
    "local",
    "evaluated",
    "feasible",
    "ranked",
    "rejected",
    "nearest_misses",
    "gang",
    "explain",
    "pushdown",
]
RANKED_KEYS = {
    "rank",
    "uuid",
    "name",
    "score",
    "terms",
    "gpu_label",
    "gpus",
    "vram_free_gb",
    "cpu_cores",
    "ram_free_gb",
    "reputation",
    "region",
    "telemetry_age_s",
}


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    assert "Traceback" not in out.getvalue() + err.getvalue()
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def llm_json() -> dict[str, Any]:
    """`plan examples/jobs/llm-finetune.toml --demo --json --top 5`, run once."""
    code, out, _ = _run("plan", str(LLM), "--demo", "--json", "--top", "5")
    assert code == EXIT_OK
    return json.loads(out)


@pytest.fixture(scope="module")
def llm_text() -> str:
    """The same plan as piped text."""
    code, out, _ = _run("plan", str(LLM), "--demo", "--top", "5")
    assert code == EXIT_OK
    return out


# ----------------------------------------------------------------------------- --json schema
def test_json_has_every_documented_key_in_order(llm_json: dict[str, Any]) -> None:
    """The top-level keys are exactly the documented ones, in the documented order."""
    assert list(llm_json) == TOP_KEYS
    assert llm_json["schema"] == REPORT_SCHEMA
    assert llm_json["job"]["name"] == "llm-finetune"


def test_json_fleet_says_simulated(llm_json: dict[str, Any]) -> None:
    """A --demo fleet is labelled simulated, with its size and completeness."""
    fleet = llm_json["fleet"]
    assert fleet["source"] == "demo"
    assert fleet["simulated"] is True
    assert fleet["complete"] is True
    assert fleet["nodes"] == llm_json["evaluated"] > 0


def test_json_pushed_down_lists_only_server_filters(llm_json: dict[str, Any]) -> None:
    """Pushed-down entries are the job's status/continent/compliance, each with its API filter."""
    pushed = {p["key"]: p for p in llm_json["pushed_down"]}
    assert set(pushed) == {"placement.statuses", "placement.continents", "placement.compliance"}
    assert pushed["placement.continents"] == {
        "key": "placement.continents",
        "filter": "filter[continent_code]",
        "values": ["EU"],
    }
    assert all(p["filter"].startswith("filter[") for p in llm_json["pushed_down"])


def test_json_ranked_is_best_first_and_complete(llm_json: dict[str, Any]) -> None:
    """Ranked rows are numbered 1..n, scores non-increasing in [0, 1], n = min(top, feasible)."""
    ranked = llm_json["ranked"]
    assert len(ranked) == min(5, llm_json["feasible"])
    assert [r["rank"] for r in ranked] == list(range(1, len(ranked) + 1))
    scores = [r["score"] for r in ranked]
    assert scores == sorted(scores, reverse=True)
    for r in ranked:
        assert set(r) >= RANKED_KEYS
        assert 0.0 <= r["score"] <= 1.0
        assert set(r["terms"]) >= {"reputation", "freshness", "images", "fit", "idle"}
        assert all(0.0 <= v <= 1.0 for v in r["terms"].values())
        assert "private" not in r
        assert r["region"]["continent"] == "EU"  # proved by the pushed-down filter


def test_json_ranked_nodes_meet_the_job(llm_json: dict[str, Any]) -> None:
    """Every ranked node has >= 2 GPUs with >= 40 GB free, >= 16 cores and >= 64 GB RAM free."""
    for r in llm_json["ranked"]:
        good = [g for g in r["gpus"] if (g["vram_free_gb"] or 0) >= 40]
        assert len(good) >= 2
        assert r["cpu_cores"] >= 16
        assert r["ram_free_gb"] >= 64


def test_json_rejections_account_for_every_infeasible_node(llm_json: dict[str, Any]) -> None:
    """Each count is at most the infeasible nodes, and together they cover all of them."""
    infeasible = llm_json["evaluated"] - llm_json["feasible"]
    counts = list(llm_json["rejected"].values())
    assert all(0 < c <= infeasible for c in counts)
    if infeasible:
        assert sum(counts) >= infeasible
    for m in llm_json["nearest_misses"]:
        assert m["constraint"] in llm_json["rejected"]
        assert 0 <= m["admits"] <= m["only_this"] <= llm_json["rejected"][m["constraint"]]
        assert m["constraint"] in m["advice"]


# ----------------------------------------------------------------------------- text report
def test_text_report_is_plain_labelled_and_matches_json(
    llm_text: str, llm_json: dict[str, Any]
) -> None:
    """Piped text: SIMULATED first, pushdown stated, no escape codes, the same ranked nodes."""
    lines = llm_text.splitlines()
    assert lines[0].startswith("*** SIMULATED FLEET")
    assert "\x1b[" not in llm_text
    assert "pushed down to the server: filter[status]=AVAILABLE" in llm_text
    assert "filter[compliance_tags]=GDPR" in llm_text
    names = [r["name"] or r["uuid"] for r in llm_json["ranked"]]
    positions = [llm_text.index(n) for n in names]
    assert positions == sorted(positions)
    assert re.search(r"evaluated \d+ nodes, \d+ feasible", llm_text)


def test_personal_data_is_hidden_unless_asked() -> None:
    """No e-mail or IP in default output; --show-private adds them for the listed nodes."""
    code, out, _ = _run("plan", str(LLM), "--demo", "--json", "--top", "3")
    assert code == EXIT_OK
    assert "@" not in out
    assert not re.search(r"\b\d{1,3}(\.\d{1,3}){3}\b", out)
    code, out, _ = _run("plan", str(LLM), "--demo", "--json", "--top", "3", "--show-private")
    assert code == EXIT_OK
    doc = json.loads(out)
    assert all("private" in r for r in doc["ranked"])
    assert any("@" in (r["private"].get("operator_email") or "") for r in doc["ranked"])


def test_explain_a_ranked_node_and_an_unknown_one(llm_json: dict[str, Any]) -> None:
    """--explain of the best node says feasible with its terms; an unknown node is exit 2."""
    best = llm_json["ranked"][0]
    code, out, _ = _run("plan", str(LLM), "--demo", "--json", "--explain", best["uuid"])
    assert code == EXIT_OK
    explain = json.loads(out)["explain"]
    assert explain["uuid"] == best["uuid"]
    assert explain["feasible"] is True
    assert explain["failures"] == []
    assert set(explain["terms"]) == set(best["terms"])
    code, _, err = _run("plan", str(LLM), "--demo", "--explain", "no-such-node")
    assert code == EXIT_INPUT
    assert "no-such-node" in err


def test_explain_a_rejected_node_lists_its_failures(
    llm_json: dict[str, Any], tmp_path: Path
) -> None:
    """--explain of a node that misses a limit names the constraint, its value and the limit."""
    best = llm_json["ranked"][0]
    strict = tmp_path / "strict.toml"
    strict.write_text(LLM.read_text().replace("min_cores = 16", "min_cores = 100000"))
    code, out, _ = _run("plan", str(strict), "--demo", "--explain", best["uuid"])
    assert code == EXIT_NO_FIT
    assert f"({best['uuid']}): rejected" in out
    assert re.search(r"fails cpu-cores: has \S+.*needs .*100000", out)
    code, out, _ = _run("plan", str(strict), "--demo", "--json", "--explain", best["uuid"])
    explain = json.loads(out)["explain"]
    assert explain["feasible"] is False
    assert [f["constraint"] for f in explain["failures"]] == ["cpu-cores"]


def test_a_gang_job_shows_the_replicas_place_would_choose() -> None:
    """For nodes > 1 the report holds the gang: 4 distinct nodes, each with its GPUs."""
    code, out, _ = _run("plan", str(ROOT / "examples/jobs/gang-training.toml"), "--demo", "--json")
    assert code == EXIT_OK
    gang = json.loads(out)["gang"]
    assert gang["placed"] is True
    assert len({r["uuid"] for r in gang["replicas"]}) == gang["nodes"] == 4


# ----------------------------------------------------------------------------- helpers
def test_pushed_down_filters_name_the_api_parameter() -> None:
    """Each pushed-down job key maps to its filter[...] parameter with the job's values."""
    job = job_from_dict({"placement": {"countries": ["DE", "FR"], "compliance": ["EEA"]}})
    got = pushed_down_filters(job, ["placement.countries", "placement.compliance"])
    assert got == [
        {
            "key": "placement.countries",
            "filter": "filter[country_iso_code]",
            "values": ["DE", "FR"],
        },
        {"key": "placement.compliance", "filter": "filter[compliance_tags]", "values": ["EEA"]},
    ]


def test_private_fields_reads_the_raw_document() -> None:
    """Addresses, e-mail and wallet come from the raw document; garbage gives nothing."""
    raw = json.dumps(
        {
            "ipv4_address": "198.51.100.7",
            "operator_account": {
                "email": "a@b.example",
                "operator_profile": {"wallet_address": "w"},
            },
        }
    ).encode()
    assert private_fields(raw) == {
        "ipv4_address": "198.51.100.7",
        "ipv6_address": None,
        "operator_email": "a@b.example",
        "wallet_address": "w",
    }
    assert private_fields(b"not json") == {}


_row = st.fixed_dictionaries(
    {
        "uuid": st.uuids().map(str),
        "name": st.one_of(st.none(), st.text(min_size=1, max_size=12)),
        "score": st.floats(0, 1),
        "terms": st.just({}),
        "gpu_label": st.text(max_size=10),
        "gpus": st.just([]),
        "vram_free_gb": st.one_of(st.none(), st.floats(0, 1000)),
        "cpu_cores": st.integers(0, 256),
        "ram_free_gb": st.one_of(st.none(), st.floats(0, 4096)),
        "reputation": st.one_of(st.none(), st.floats(0, 100)),
        "region": st.just({"continent": "EU", "country": None, "subdivision": None}),
        "telemetry_age_s": st.one_of(st.none(), st.floats(0, 1e7)),
    }
)


@settings(max_examples=60, deadline=None)
@given(
    ranked=st.lists(_row, max_size=6),
    rejected=st.dictionaries(
        st.sampled_from(["gpu-count", "vram-free", "compliance"]), st.integers(1, 99)
    ),
    simulated=st.booleans(),
)
def test_render_is_deterministic_plain_and_shows_every_row(
    ranked: list[dict[str, Any]], rejected: dict[str, int], simulated: bool
) -> None:
    """Any report renders the same bytes twice, without escape codes, with every ranked row."""
    rows = [dict(r, rank=i + 1) for i, r in enumerate(ranked)]
    report = build_report(
        job={"name": "j", "file": "j.toml", "nodes": 1},
        fleet={
            "source": "demo" if simulated else "api",
            "location": "x",
            "simulated": simulated,
            "complete": True,
            "nodes": len(rows),
            "rejected_documents": 0,
        },
        pushed_down=[],
        local=["gpu-count"],
        evaluated=len(rows) + sum(rejected.values()),
        feasible=len(rows),
        ranked=rows,
        rejected=rejected,
        nearest_misses=[],
    )
    outs = []
    for _ in range(2):
        buf = io.StringIO()
        render_report(report, stream=buf, terminal=False)
        outs.append(buf.getvalue())
    assert outs[0] == outs[1]
    assert "\x1b[" not in outs[0]
    assert outs[0].startswith("*** SIMULATED") == simulated
    for r in rows:  # shown escaped (terminal_safe), one line per row
        assert terminal_safe(r["name"] or r["uuid"]).strip() in outs[0]
    for name in rejected:
        assert name in outs[0]


def test_nothing_fits_json_still_prints_the_document(tmp_path: Path) -> None:
    """With --json and no feasible node: exit 1, a full document with rejections, a stderr note."""
    path = tmp_path / "impossible.toml"
    path.write_text('name = "impossible"\n[cpu]\nmin_cores = 100000\n')
    code, out, err = _run("plan", str(path), "--demo", "--json")
    assert code == EXIT_NO_FIT
    doc = json.loads(out)
    assert doc["feasible"] == 0
    assert doc["ranked"] == []
    assert doc["rejected"]
    assert max(doc["rejected"].values()) == doc["evaluated"]
    assert "no node fits" in err


def test_terminal_rendering_uses_rich_and_keeps_the_banner(llm_json: dict[str, Any]) -> None:
    """On a terminal the report is drawn by rich (box characters) and still says SIMULATED."""
    buf = io.StringIO()
    render_report(llm_json, stream=buf, terminal=True)
    text = buf.getvalue()
    assert "SIMULATED" in text
    assert "━" in text or "─" in text
    assert llm_json["ranked"][0]["name"] in text


@pytest.mark.parametrize("nodes", [1, 2])
def test_plan_on_a_snapshot_read_in_chunks_finds_each_nodes_private_fields(
    tmp_path, capsys, nodes
) -> None:
    """plan --snapshot DIR builds its table a chunk of nodes at a time; --show-private reads
    each ranked node's personal data back from the files (by its table row): the same as
    the documents loaded whole say; a gang is placed."""
    from nodeselect import load_snapshot  # noqa: PLC0415
    from nodeselect.cli._render import private_fields  # noqa: PLC0415

    snap = tmp_path / "dir"
    assert main(["nodes", "--demo", "--status", "AVAILABLE", "--out", str(snap), "--shards",
                 "3", "-q", "--format", "json"]) == 0  # fmt: skip
    capsys.readouterr()
    path = tmp_path / "job.toml"
    path.write_text(f'[[job]]\nname = "j"\nnodes = {nodes}\n[job.gpu]\ncount = 1\n')
    main(["plan", str(path), "--snapshot", str(snap), "--json", "--show-private", "--top", "5"])
    doc = json.loads(capsys.readouterr().out)
    whole = {n.uuid: n for n in load_snapshot(snap).nodes}
    assert doc["fleet"]["nodes"] == len(whole)
    assert doc["ranked"], "the test needs ranked nodes"
    for item in doc["ranked"]:
        assert item["private"] == private_fields(whole[item["uuid"]].raw)
        assert item["private"]  # (the simulated documents carry addresses)
    if nodes > 1:  # (placed with the snapshot's nodes as place(nodes=...))
        assert doc["gang"]["placed"]
        assert {r["uuid"] for r in doc["gang"]["replicas"]} <= whole.keys()
