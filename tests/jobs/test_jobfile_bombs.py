"""Job files built to exhaust the parser: each is one JobSpecError naming the file (and the
line where one exists), found before or instead of tomllib's traceback, in linear time."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect.errors import JobSpecError
from nodeselect.jobs import _file, load_job, load_jobs
from nodeselect.jobs._file import _LONG_KEY_RE, MAX_JOB_FILE_BYTES, MAX_KEY_PARTS
from nodeselect.jobs._values import key_lines

HEAD = b'name = "bomb"\n\n'


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        (b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", 3, "nested too deeply"),
        (b"x = " + b"{ a = " * 3000 + b"1" + b" }" * 3000 + b"\n", 3, "nested too deeply"),
        (b"x = " + b"9" * 5000 + b"\n", 3, "number too long"),
        (b"[gpu]\ncount = " + b"1" * 4301 + b"\n", 4, "number too long"),
        (b"a" + b".a" * 100_000 + b" = 1\n", 3, f"more than {MAX_KEY_PARTS} parts"),
        (b'"a"' + b'."a"' * 50_000 + b" = 1\n", 3, f"more than {MAX_KEY_PARTS} parts"),
        (b"[" + b"a." * 40 + b"a]\n", 3, f"more than {MAX_KEY_PARTS} parts"),
        (b'[placement]\nmax_staleness = "99999999999999999999d"\n', 4, "longest duration"),
        (b"x = '\xff'\n", 3, "not UTF-8"),
    ],
    ids=[
        "deep-array", "deep-inline-table", "5000-digits", "4301-digits", "dotted-100k",
        "quoted-dotted", "dotted-header", "huge-duration", "bad-utf8",
    ],
)  # fmt: skip
def test_each_bomb_is_one_job_spec_error_with_its_line(
    tmp_path: Path, body: bytes, line: int, words: str
) -> None:
    """The error names file and line, says what was wrong, and is a JobSpecError."""
    path = tmp_path / "job.toml"
    path.write_bytes(HEAD + body)
    with pytest.raises(JobSpecError) as info:
        load_job(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert words in message
    assert "\n" not in message


def test_a_file_over_the_size_limit_is_refused_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over the limit (64 MiB; 1 MiB here, to keep the test small): refused after reading at
    most one byte more than the limit, the limit named."""
    assert MAX_JOB_FILE_BYTES == 64 << 20
    limit = 1 << 20
    monkeypatch.setattr(_file, "MAX_JOB_FILE_BYTES", limit)
    path = tmp_path / "big.toml"
    path.write_bytes(HEAD + b"# padding\n" * (limit // 10 + 1))
    with pytest.raises(JobSpecError, match=r"larger than 1,048,576 bytes \(1 MiB\)"):
        load_jobs(path)
    ok = tmp_path / "ok.toml"
    ok.write_bytes(HEAD + b"#" * (limit - len(HEAD) - 1) + b"\n")
    assert load_job(ok).name == "bomb"


def test_a_queue_of_thousands_of_jobs_loads(tmp_path: Path) -> None:
    """A planner's queue (14,000 jobs, 1.2 MB: past the old 1 MB limit) loads, every job
    named and in order; an error in its last job still names that job's line."""
    one = (
        '[[job]]\nname = "j{i}"\n[job.gpu]\ncount = 2\nmodels = ["H100"]\n'
        "[job.cpu]\nmin_cores = 8\n"
    )
    text = "".join(one.format(i=i) for i in range(14_000))
    path = tmp_path / "queue.toml"
    path.write_text(text)
    assert path.stat().st_size > 1 << 20
    jobs = load_jobs(path)
    assert [j.name for j in jobs] == [f"j{i}" for i in range(14_000)]
    path.write_text(text + '[[job]]\nname = "bad"\n[job.gpu]\ncount = -1\n')
    with pytest.raises(JobSpecError) as e:
        load_jobs(path)
    assert e.value.line == text.count("\n") + 4


def test_ordinary_dotted_keys_still_load(tmp_path: Path) -> None:
    """Dotted keys a job file uses (and up to the limit) are not refused by the guard."""
    path = tmp_path / "j.toml"
    path.write_text('gpu.count = 2\nplacement."countries" = ["DE"]\n[job_note]\n', "utf-8")
    with pytest.raises(JobSpecError, match="unknown"):  # a real key error, not the guard
        load_job(path)
    path.write_text('gpu.count = 2\nplacement . "countries" = ["DE"]\n', "utf-8")
    job = load_job(path)
    assert job.gpu.count == 2
    assert job.placement.countries == ("DE",)


_BARE = st.text("ab_-1", min_size=1, max_size=3)
_QUOTED = _BARE.map(lambda s: f'"{s}"')


def _reference_has_long_key(text: str) -> bool:
    """Plain Python: split every line at the characters that cannot be in a dotted key, and
    count the parts of each maximal dotted run."""
    for line in text.splitlines():
        tokens = re.findall(r'[A-Za-z0-9_-]+|"[^"\n]*"|\'[^\'\n]*\'|[ \t]*\.[ \t]*|.', line)
        run, want_part = 0, True
        for tok in tokens:
            is_part = (tok[0] in "\"'" and len(tok) > 1) or re.fullmatch(r"[A-Za-z0-9_-]+", tok)
            is_dot = tok.strip() == "."
            if want_part and is_part:
                run, want_part = run + 1, False
                if run > MAX_KEY_PARTS:
                    return True
            elif not want_part and is_dot:
                want_part = True
            else:
                run, want_part = (1, False) if is_part else (0, True)
        if run > MAX_KEY_PARTS:
            return True
    return False


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.one_of(_BARE, _QUOTED), min_size=1, max_size=2 * MAX_KEY_PARTS + 4),
    st.sampled_from([".", " . ", "\t."]),
    st.sampled_from(["", "x = 1 # ", "[", "z "]),
)
def test_the_long_key_guard_agrees_with_a_plain_count(
    parts: list[str], dot: str, before: str
) -> None:
    """The guard fires exactly when a dotted run has more than MAX_KEY_PARTS parts."""
    text = before + dot.join(parts) + " = 1\n"
    assert (_LONG_KEY_RE.search(text) is not None) == _reference_has_long_key(text)


def test_key_lines_is_linear_on_long_lines() -> None:
    """A 300 KB line of spaces in a header or a long key: key_lines returns (no quadratic
    backtracking); its result for ordinary keys is unchanged."""
    key_lines("[a" + " " * 300_000 + "x\n")
    key_lines("a" + ".a" * 100_000 + " = 1\n")
    assert key_lines("[ gpu ]\ncount = 1\n[[job]]\n[job.cpu]\nmin_cores = 2\n") == {
        "gpu": 1,
        "gpu.count": 2,
        "job[0]": 3,
        "job[0].cpu": 4,
        "job[0].cpu.min_cores": 5,
    }
