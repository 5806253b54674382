"""The CLI reports which alternative a job used: `plan` a line per alternative and
`job.alternative(s)` in JSON, `place` the alternative in its tables and JSON."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from nodeselect.cli import main
from nodeselect.cli._common import EXIT_NO_FIT, EXIT_OK

QUEUE = """\
[[job]]
name = "big"
priority = 1
[[job.alternatives]]
gpu = { models = ["H100"], count = 64 }
[[job.alternatives]]
gpu = { models = ["A100-80GB"], count = 2 }

[[job]]
name = "never"
[[job.alternatives]]
gpu = { count = 99 }
[[job.alternatives]]
gpu = { count = 98 }
"""


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(list(argv))
    return code, out.getvalue()


def test_plan_names_the_alternative_it_ranked(tmp_path: Path) -> None:
    """64x H100 fits nowhere, so alternative 1 is ranked; both are listed, 1 marked."""
    path = tmp_path / "one.toml"
    path.write_text(QUEUE.split("\n\n", maxsplit=1)[0].replace("[[job]]\n", "").replace("job.", ""))
    code, text = _run("plan", str(path), "--demo", "--top", "1")
    assert code == EXIT_OK
    assert "  alternative 0 (64x H100-80GB/H100-94GB): 0 feasible" in text
    assert "* alternative 1 (2x A100-80GB):" in text
    code, out = _run("plan", str(path), "--demo", "--json", "--top", "1")
    job = json.loads(out)["job"]
    assert job["alternative"] == 1
    assert [a["tried"] for a in job["alternatives"]] == [True, True]
    assert job["alternatives"][0]["feasible"] == 0


def test_place_reports_each_jobs_alternative(tmp_path: Path) -> None:
    """A placed job shows its alternative; an unplaced one says none fits and which was last."""
    path = tmp_path / "q.toml"
    path.write_text(QUEUE)
    code, text = _run("place", str(path), "--demo")
    assert code == EXIT_NO_FIT
    assert "big (priority 1, alternative 1)" in text
    assert "no alternative fits; the last (1):" in text
    _, out = _run("place", str(path), "--demo", "--json")
    doc = json.loads(out)
    assert [(a["job"], a["alternative"]) for a in doc["assignments"]] == [("big", 1)]
    assert [(u["job"], u["alternative"]) for u in doc["unplaced"]] == [("never", 1)]
