"""`nodeselect gpus`: the catalogue logic against a plain reference, and the command end to end."""

from __future__ import annotations

import contextlib
import io
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect.cli import main
from nodeselect.cli._render import Column, print_table, redact
from nodeselect.cli.gpus import GpuModelRow, GpuSighting, catalogue

_models = st.sampled_from(["H100-80GB", "A100-40GB", "RTX-4090", "L4", "weird gpu"])
_vram = st.one_of(st.none(), st.floats(0, 200, allow_nan=False), st.just(math.nan))
_sighting = st.builds(
    GpuSighting, model=_models, known=st.booleans(), vram_free_gb=_vram, vram_total_gb=_vram
)
_fleet = st.lists(st.lists(_sighting, max_size=8), max_size=30)


def _reference(fleet: list[list[GpuSighting]]) -> dict[tuple[str, bool], GpuModelRow]:
    """A deliberately naive catalogue: one pass per model."""
    keys = {(g.model, g.known) for node in fleet for g in node}
    out = {}
    for model, known in keys:
        mine = [[g for g in node if (g.model, g.known) == (model, known)] for node in fleet]
        flat = [g for node in mine for g in node]
        free = [g.vram_free_gb for g in flat if g.vram_free_gb is not None]
        free = [f for f in free if not math.isnan(f)]
        total = [g.vram_total_gb for g in flat if g.vram_total_gb is not None]
        total = [t for t in total if not math.isnan(t)]
        out[(model, known)] = GpuModelRow(
            model,
            known,
            sum(1 for node in mine if node),
            len(flat),
            min(free) if free else None,
            max(free) if free else None,
            max(total) if total else None,
        )
    return out


@settings(max_examples=60, deadline=None)
@given(_fleet)
def test_catalogue_matches_a_naive_reference(fleet: list[list[GpuSighting]]) -> None:
    """Every catalogue row equals the one a naive per-model count computes."""
    rows = catalogue(fleet)
    assert {(r.model, r.known): r for r in rows} == _reference(fleet)
    assert len(rows) == len({(r.model, r.known) for r in rows})


@settings(max_examples=50, deadline=None)
@given(_fleet)
def test_catalogue_is_ordered_by_gpu_count_then_name(fleet: list[list[GpuSighting]]) -> None:
    """Rows come most-GPUs first, ties by model name, so the output is stable run to run."""
    rows = catalogue(fleet)
    keys = [(-r.gpus, r.model, not r.known) for r in rows]
    assert keys == sorted(keys)
    assert sum(r.gpus for r in rows) == sum(len(n) for n in fleet)


def test_a_node_with_two_gpus_of_one_model_counts_once_as_a_node() -> None:
    """Two GPUs of one model on one node are one node and two GPUs."""
    [row] = catalogue([[GpuSighting("L4", True, 10.0, 24.0), GpuSighting("L4", True, 20.0, 24.0)]])
    assert (row.nodes, row.gpus, row.vram_free_min_gb, row.vram_free_max_gb) == (1, 2, 10.0, 20.0)


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def demo_json() -> dict:
    """`nodeselect gpus --demo --json`, run once for the module."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["gpus", "--demo", "--json"])
    assert code == 0
    return json.loads(buf.getvalue())


def test_gpus_json_schema_on_the_demo_fleet(demo_json: dict) -> None:
    """The --json catalogue has the documented keys, says the fleet is simulated, and adds up."""
    assert demo_json["schema"] == "nodeselect.gpus/1"
    fleet = demo_json["fleet"]
    assert fleet["source"] == "demo"
    assert fleet["simulated"] is True
    assert fleet["nodes"] > 1000
    models = demo_json["models"]
    assert models, "the demo fleet has GPUs"
    keys = {"model", "known", "nodes", "gpus", "vram_free_min_gb", "vram_free_max_gb"}
    for m in models:
        assert keys <= set(m)
        assert 1 <= m["nodes"] <= m["gpus"]
        if m["vram_free_min_gb"] is not None:
            assert m["vram_free_min_gb"] <= m["vram_free_max_gb"]
    assert sum(m["nodes"] for m in models) >= max(m["nodes"] for m in models)
    assert [m["gpus"] for m in models] == sorted((m["gpus"] for m in models), reverse=True)


def test_gpus_plain_output_is_labelled_simulated_and_has_no_escape_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Piped output starts with the SIMULATED banner, is a plain table, and has no ANSI codes."""
    assert main(["gpus", "--demo"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("*** SIMULATED FLEET")
    assert "\x1b[" not in out
    assert "model" in out
    assert "H100-80GB" in out


def test_gpus_known_lists_the_registry_without_a_fleet(capsys: pytest.CaptureFixture[str]) -> None:
    """--known prints every registry model (what job files accept) and fetches nothing."""
    assert main(["gpus", "--known", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    names = {m["model"] for m in doc["models"]}
    assert {"H100-80GB", "RTX-4090", "L4"} <= names
    assert doc["fleet"] is None


def test_plain_table_is_aligned_and_stable() -> None:
    """The piped table is a header, a dash rule and rows; numbers right-aligned; same every run."""
    cols = (Column("name"), Column("n", "right"))
    outs = []
    for _ in range(2):
        buf = io.StringIO()
        print_table(cols, [["a", "1"], ["bbb", "22"]], stream=buf, terminal=False)
        outs.append(buf.getvalue())
    assert outs[0] == outs[1] == "name   n\n----  --\na      1\nbbb   22\n"


def test_terminal_table_uses_rich() -> None:
    """On a terminal the same rows are drawn by rich with box characters."""
    buf = io.StringIO()
    print_table((Column("name"),), [["alpha"]], stream=buf, terminal=True)
    assert "alpha" in buf.getvalue()
    assert "─" in buf.getvalue() or "━" in buf.getvalue()


@pytest.mark.parametrize(
    "text",
    [
        "ops jsmith@example.com here",
        "at 198.51.100.83 now",
        "v6 2001:db8::1 addr",
        "wallet 0x" + "ab" * 20,
    ],
)
def test_redact_hides_personal_data(text: str) -> None:
    """E-mails, IPv4/IPv6 and wallet addresses are replaced by <hidden>."""
    out = redact(text)
    assert "<hidden>" in out
    for secret in ("jsmith@", "198.51.100.83", "2001:db8::1", "abab"):
        assert secret not in out


def test_redact_leaves_ordinary_names_alone() -> None:
    """Node names, GPU names and times are not mistaken for personal data."""
    for text in ("node-e565a7", "NVIDIA A100-SXM4-80GB", "12:30", "rack-3.dc-7"):
        assert redact(text) == text


def test_gpus_on_a_snapshot_reads_it_a_chunk_at_a_time(tmp_path, capsys, monkeypatch) -> None:
    """gpus --snapshot (the catalogue, and --available) never loads the snapshot whole: the
    catalogue is the one of every node loaded at once, and the fleet's node count is right."""
    from nodeselect import load_snapshot  # noqa: PLC0415
    from nodeselect.cli import _source  # noqa: PLC0415
    from nodeselect.cli.gpus import sightings  # noqa: PLC0415

    snap = tmp_path / "d"
    assert main(["nodes", "--demo", "--status", "AVAILABLE", "--out", str(snap), "--shards",
                 "2", "-q", "--format", "jsonl"]) == 0  # fmt: skip
    whole = load_snapshot(snap)
    capsys.readouterr()
    monkeypatch.setattr(_source, "load_snapshot", lambda *a, **k: pytest.fail("loaded whole"))
    assert main(["gpus", "--snapshot", str(snap), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["fleet"]["nodes"] == len(whole.nodes)
    assert doc["models"] == [r.to_json() for r in catalogue(sightings(whole.nodes))]
    assert main(["gpus", "--available", "--snapshot", str(snap), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["fleet"]["nodes"] == len(whole.nodes)
