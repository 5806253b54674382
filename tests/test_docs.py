"""The docs stay true to the code: every CLI flag, job key, exit code and link is documented."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from nodeselect.cli._common import EXIT_CODES_HELP
from nodeselect.cli._main import build_parser
from nodeselect.cli.plan import build_report
from nodeselect.jobs._file import _SECTIONS, _TOP  # the loader's own table of accepted keys

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> list[str]:
    """Every long option of ``parser`` and of its nested subcommands (``sim serve``)."""
    out = []
    for action in parser._actions:
        out += [o for o in action.option_strings if o.startswith("--") and o != "--help"]
    for nested in _subparsers(parser).values():
        out += _options(nested)
    return out


def _flags() -> list[tuple[str, str]]:
    return [
        (name, opt)
        for name, sub in _subparsers(build_parser()).items()
        for opt in dict.fromkeys(_options(sub))
    ]


def _section(text: str, command: str) -> str:
    """The part of docs/cli.md under the heading of ``nodeselect <command>``."""
    m = re.search(rf"^## `nodeselect {command}\b.*?$(.*?)(?=^## |\Z)", text, re.M | re.S)
    return m.group(1) if m else ""


@pytest.mark.parametrize(("command", "flag"), _flags())
def test_every_cli_flag_is_documented_under_its_command(command: str, flag: str) -> None:
    """Each long option of each subcommand appears in that subcommand's section of docs/cli.md."""
    section = _section((DOCS / "cli.md").read_text(), command)
    assert section, f"docs/cli.md has no '## `nodeselect {command}`' section"
    assert re.search(rf"`{re.escape(flag)}\b", section), f"{command} {flag} not in docs/cli.md"


def test_every_subcommand_has_a_section() -> None:
    """docs/cli.md has a section for every subcommand the parser knows."""
    text = (DOCS / "cli.md").read_text()
    for name in _subparsers(build_parser()):
        assert _section(text, name), name


def test_exit_codes_are_documented_in_the_cli_reference() -> None:
    """Every exit code listed in --help appears in docs/cli.md's exit code table."""
    text = (DOCS / "cli.md").read_text()
    codes = re.findall(r"^\s+(\d+)\s+\S", EXIT_CODES_HELP, re.M)
    assert codes == ["0", "1", "2", "3", "4", "5", "70", "130"]
    for code in codes:
        assert re.search(rf"^\|\s*`?{code}`?\s*\|", text, re.M), f"exit code {code}"


def test_every_subcommand_help_lists_the_exit_codes() -> None:
    """`nodeselect <cmd> --help` prints the exit code table for plan and gpus."""
    subs = _subparsers(build_parser())
    for name in ("plan", "gpus"):
        assert "exit codes:" in subs[name].format_help(), name


def test_every_docs_link_resolves() -> None:
    """Every relative link between the docs pages (and from the README) names an existing file."""
    pages = [*DOCS.glob("*.md"), ROOT / "README.md"]
    for page in pages:
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_readme_first_two_commands_are_the_documented_ones() -> None:
    """The README's first two code-block commands are the install+demo plan and the test run."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
    commands = [line.strip() for b in blocks for line in b.splitlines() if line.strip()][:2]
    assert commands == [
        "pip install . && nodeselect plan examples/jobs/llm-finetune.toml --demo",
        "pip install -e '.[test]' && pytest -q",
    ]
    assert (ROOT / "examples/jobs/llm-finetune.toml").exists()


def test_quickstart_shows_the_same_two_commands() -> None:
    """docs/quickstart.md repeats the README's two commands verbatim."""
    text = (DOCS / "quickstart.md").read_text()
    assert "pip install . && nodeselect plan examples/jobs/llm-finetune.toml --demo" in text
    assert "pip install -e '.[test]' && pytest -q" in text


def test_plan_json_keys_are_documented() -> None:
    """Every top-level key of the plan --json schema is named in docs/cli.md."""
    doc = build_report(
        job={},
        fleet={},
        pushed_down=[],
        local=[],
        evaluated=0,
        feasible=0,
        ranked=[],
        rejected={},
        nearest_misses=[],
    )
    text = _section((DOCS / "cli.md").read_text(), "plan")
    for key in doc:
        assert f"`{key}`" in text, key


def test_every_job_key_is_in_the_job_reference() -> None:
    """Every key the job loader accepts appears, dotted, in docs/jobs.md."""
    text = (DOCS / "jobs.md").read_text()
    keys = [k for k in _TOP if k not in _SECTIONS]
    keys += [f"{section}.{key}" for section, names in _SECTIONS.items() for key in names]
    for key in keys:
        short = key.rsplit(".", 1)[-1]
        assert f"`{key}`" in text or f"`{short}`" in text, key


def test_the_readme_python_example_runs_and_ranks_nodes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's Python snippet runs as printed (from the project root) and prints a ranking."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks, "README.md has no Python example"
    monkeypatch.chdir(ROOT)
    exec(compile(blocks[0], "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert re.search(r"^\d+/\d+ nodes fit", out, re.M), out
