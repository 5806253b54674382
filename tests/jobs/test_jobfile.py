"""Job files: TOML and dicts -> validated Jobs, errors that point at file:line:key, round-trips."""

from __future__ import annotations

import string
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nodeselect
from nodeselect.documents._facts import COMPLIANCE_TAGS, CONTINENTS, STATUSES
from nodeselect.errors import JobSpecError
from nodeselect.gpus import GPU_MODELS
from nodeselect.jobs._check import check_job
from nodeselect.jobs._file import (
    format_duration,
    job_from_dict,
    job_to_dict,
    load_job,
    load_jobs,
    normalize_arch,
    parse_duration,
)
from nodeselect.jobs._model import (
    SCORE_TERMS,
    CpuReq,
    DiskReq,
    GangReq,
    GpuReq,
    Job,
    MemoryReq,
    PlacementReq,
    Preferences,
    SoftwareReq,
)

BRIEF_EXAMPLE = """\
name = "llama-70b-finetune"
[gpu]                       # all per node
models = ["H100", "A100-80GB"]   # any of; a family name matches all its variants
count = 4                   # GPUs that individually satisfy the lines below
min_vram_free_gb = 60       # per GPU
max_load = 0.3              # per GPU, from telemetry
[cpu]
min_cores = 32
[memory]
min_free_gb = 128
[disk]
min_free_gb = 500
[software]
images_required = ["pytorch/pytorch:latest"]
images_preferred = ["nvcr.io/nvidia/pytorch:24.08-py3"]
min_driver = "535"
arch = "x86_64"
[placement]
statuses = ["AVAILABLE"]    # default
continents = ["EU"]         # any of; also countries, subdivisions
compliance = ["GDPR"]       # all of
min_reputation = 60
max_staleness = "10m"       # last_seen_at age
exclude_operators = []      # also exclude_nodes / only_nodes
[preferences]
strategy = "pack"           # or "spread"
weights = { reputation = 1.0, freshness = 1.0, images = 2.0, fit = 1.0, idle = 1.0 }
"""

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "jobs"


def _write(tmp_path: Path, text: str, name: str = "job.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_documented_example_loads_to_the_expected_job(tmp_path: Path) -> None:
    """The example of the issue loads to exactly this Job, with GPU families expanded."""
    job = load_job(_write(tmp_path, BRIEF_EXAMPLE))
    assert job == Job(
        name="llama-70b-finetune",
        gpu=GpuReq(
            models=("A100-80GB", "H100-80GB", "H100-94GB"),
            count=4,
            min_vram_free_gb=60.0,
            max_load=0.3,
        ),
        cpu=CpuReq(min_cores=32),
        memory=MemoryReq(min_free_gb=128.0),
        disk=DiskReq(min_free_gb=500.0),
        software=SoftwareReq(
            images_required=("pytorch/pytorch:latest",),
            images_preferred=("nvcr.io/nvidia/pytorch:24.08-py3",),
            min_driver="535",
            arch="x86_64",
        ),
        placement=PlacementReq(
            statuses=("AVAILABLE",),
            continents=("EU",),
            compliance=("GDPR",),
            min_reputation=60.0,
            max_staleness=timedelta(minutes=10),
        ),
        preferences=Preferences(
            strategy="pack",
            weights={"reputation": 1.0, "freshness": 1.0, "images": 2.0, "fit": 1.0, "idle": 1.0},
        ),
    )


def test_an_empty_dict_is_the_default_job() -> None:
    """A job with no keys is the all-defaults Job (CPU-only, AVAILABLE nodes, pack)."""
    assert job_from_dict({}) == Job()


def test_gpu_limits_without_count_mean_one_gpu() -> None:
    """Naming GPU limits without gpu.count asks for one such GPU."""
    job = job_from_dict({"gpu": {"models": ["l4"]}})
    assert job.gpu.count == 1
    assert job.gpu.models == ("L4",)


def test_values_are_normalized() -> None:
    """Codes are upper-cased, arch aliases mapped, duplicates dropped, ints become floats."""
    job = job_from_dict(
        {
            "placement": {
                "countries": ["de", "DE", "fr"],
                "subdivisions": ["us-ca"],
                "continents": ["eu"],
                "statuses": ["available", "working"],
                "compliance": ["gdpr"],
                "max_staleness": 90,
            },
            "software": {"arch": "arm64", "min_driver": 535},
            "memory": {"min_free_gb": 16},
        }
    )
    assert job.placement.countries == ("DE", "FR")
    assert job.placement.subdivisions == ("US-CA",)
    assert job.placement.continents == ("EU",)
    assert job.placement.statuses == ("AVAILABLE", "WORKING")
    assert job.placement.compliance == ("GDPR",)
    assert job.placement.max_staleness == timedelta(seconds=90)
    assert job.software.arch == "aarch64"
    assert job.software.min_driver == "535"
    assert job.memory.min_free_gb == 16.0
    assert isinstance(job.memory.min_free_gb, float)


# (TOML body, key at fault, expected line, fragments the message must contain)
ERRORS: list[tuple[str, str, int, tuple[str, ...]]] = [
    ('name = "x"\n[gpu]\ncout = 2\n', "gpu.cout", 3, ("did you mean 'count'", "max_load")),
    ('nam = "x"\n', "nam", 1, ("did you mean 'name'", "priority")),
    ("[gpus]\ncount = 1\n", "gpus", 1, ("did you mean 'gpu'", "placement")),
    ("[gpu]\ncount = true\n", "gpu.count", 2, ("integer >= 0", "boolean")),
    ("[gpu]\ncount = -1\n", "gpu.count", 2, ("integer >= 0", "-1")),
    ("[gpu]\ncount = 1.5\n", "gpu.count", 2, ("integer",)),
    ("nodes = 0\n", "nodes", 1, ("integer >= 1",)),
    ('nodes = "2"\n', "nodes", 1, ("integer >= 1", "string")),
    ("[gpu]\ncount = 1\nmax_load = 1.5\n", "gpu.max_load", 3, ("from 0 to 1",)),
    ("[gpu]\ncount = 1\nmin_vram_free_gb = -4\n", "gpu.min_vram_free_gb", 3, (">= 0", "GB")),
    ("[gpu]\ncount = 1\nmin_vram_free_gb = nan\n", "gpu.min_vram_free_gb", 3, (">= 0",)),
    ("[memory]\nmin_free_gb = true\n", "memory.min_free_gb", 2, ("number >= 0", "boolean")),
    ("[placement]\nmin_reputation = 101\n", "placement.min_reputation", 2, ("0 to 100",)),
    (
        "[preferences]\nweights = { reputation = -1.0 }\n",
        "preferences.weights.reputation",
        2,
        (">= 0",),
    ),
    (
        "[preferences]\nweights = { reputaton = 1.0 }\n",
        "preferences.weights.reputaton",
        2,
        ("did you mean 'reputation'", *SCORE_TERMS),
    ),
    ('[preferences]\nstrategy = "binpack"\n', "preferences.strategy", 2, ('"pack"', '"spread"')),
    ('[placement]\nstatuses = ["READY"]\n', "placement.statuses[0]", 2, STATUSES),
    ('[placement]\ncontinents = ["EUR"]\n', "placement.continents[0]", 2, CONTINENTS),
    ('[placement]\ncompliance = ["HIPAA"]\n', "placement.compliance[0]", 2, COMPLIANCE_TAGS),
    ('[placement]\ncountries = ["DEU"]\n', "placement.countries[0]", 2, ("two letters",)),
    ('[placement]\ncountries = "DE"\n', "placement.countries", 2, ("array of strings",)),
    ('[placement]\nsubdivisions = ["California"]\n', "placement.subdivisions[0]", 2, ("US-CA",)),
    ('[placement]\nmax_staleness = "10 minutes"\n', "placement.max_staleness", 2, ('"10m"',)),
    ("[placement]\nmax_staleness = -5\n", "placement.max_staleness", 2, (">= 0",)),
    ('[placement]\nmax_staleness = "0s"\n', "placement.max_staleness", 2, ("> 0",)),
    ('[software]\nmin_driver = "535.x"\n', "software.min_driver", 2, ('"535.104.05"',)),
    ("[software]\nmin_driver = 535.1\n", "software.min_driver", 2, ("as a string",)),
    ('[software]\narch = "sparc"\n', "software.arch", 2, ("x86_64", "amd64", "arm64")),
    ('[gang]\nsame = "planet"\n', "gang.same", 2, ('"continent"', '"country"', '"subdivision"')),
    ('[gang]\ndistinct = "rack"\n', "gang.distinct", 2, ('"operator"', '"node"')),
    ("[placement]\nallow_deleted = 1\n", "placement.allow_deleted", 2, ("true or false",)),
    ("gpu = 4\n", "gpu", 1, ("expected a table",)),
    ('[gpu]\ncount = 0\nmodels = ["L4"]\n', "gpu.models", 3, ("gpu.count >= 1",)),
    ("[gpu]\ncount = 0\nmax_load = 0.5\n", "gpu.max_load", 3, ("gpu.count >= 1",)),
    (
        '[placement]\nonly_nodes = ["n1", "n2"]\nexclude_nodes = ["n2"]\n',
        "placement.exclude_nodes",
        3,
        ("'n2'", "only_nodes"),
    ),
    ('name = ""\n', "name", 1, ("non-empty string",)),
    (
        '[placement]\nexclude_operators = [\n  "a",\n  3,\n]\n',
        "placement.exclude_operators[1]",
        2,
        ("non-empty string",),
    ),
]


@pytest.mark.parametrize(("text", "key", "line", "fragments"), ERRORS)
def test_each_invalid_value_is_reported_with_key_line_and_accepted_values(
    tmp_path: Path, text: str, key: str, line: int, fragments: tuple[str, ...]
) -> None:
    """Every invalid job raises JobSpecError naming file:line, the key and what is accepted."""
    path = _write(tmp_path, text)
    with pytest.raises(nodeselect.JobSpecError) as info:
        load_job(path)
    err = info.value
    assert err.key == key
    assert err.line == line
    assert err.source == str(path)
    message = str(err)
    assert f"{path}:{line}: {key}: " in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_dict_errors_carry_the_key_and_no_line() -> None:
    """A dict job error names the source and key; there is no line to give."""
    with pytest.raises(nodeselect.JobSpecError) as info:
        job_from_dict({"gpu": {"count": -2}}, source="api-request")
    assert info.value.key == "gpu.count"
    assert info.value.line is None
    assert str(info.value).startswith("api-request: gpu.count: ")


@pytest.mark.parametrize(
    ("text", "key", "line", "suggestion"),
    [
        ('[gpu]\ncount = 1\nmodels = ["H10"]\n', "gpu.models[0]", 3, "H100"),
        ('[gpu]\ncount = 1\nmodels = [\n  "L4",\n  "L40SS",\n]\n', "gpu.models[1]", 3, "L40S"),
    ],
)
def test_unknown_gpu_names_are_input_errors_with_location_and_suggestions(
    tmp_path: Path, text: str, key: str, line: int, suggestion: str
) -> None:
    """An unknown GPU model is catchable as JobSpecError and GPUNameError, with did-you-mean."""
    path = _write(tmp_path, text)
    with pytest.raises(nodeselect.GPUNameError) as info:
        load_job(path)
    err = info.value
    assert isinstance(err, nodeselect.JobSpecError)
    assert isinstance(err, nodeselect.JobGPUNameError)
    assert err.key == key
    assert err.line == line
    assert suggestion in err.suggestions
    assert f"did you mean {suggestion}" in str(err) or suggestion in str(err)
    assert f"{path}:{line}" in str(err)


def test_ambiguous_gpu_names_list_the_candidates(tmp_path: Path) -> None:
    """An ambiguous GPU name in a job file lists the candidate models."""
    path = _write(tmp_path, '[gpu]\ncount = 1\nmodels = ["RTX 6000"]\n')
    with pytest.raises(nodeselect.JobGPUNameError, match="ambiguous") as info:
        load_job(path)
    assert set(info.value.suggestions) == {"RTX-6000-Ada", "RTX-PRO-6000"}


def test_toml_syntax_errors_name_the_file_and_line(tmp_path: Path) -> None:
    """A TOML syntax error is a JobSpecError at file:line."""
    path = _write(tmp_path, 'name = "x"\n[gpu]\ncount = = 2\n')
    with pytest.raises(nodeselect.JobSpecError, match="not valid TOML") as info:
        load_job(path)
    assert info.value.line == 3
    assert f"{path}:3" in str(info.value)


def test_missing_file_is_a_job_spec_error(tmp_path: Path) -> None:
    """A job file that cannot be read is a JobSpecError naming it."""
    with pytest.raises(nodeselect.JobSpecError, match="cannot read"):
        load_job(tmp_path / "nope.toml")


QUEUE = """\
[[job]]
name = "first"
priority = 5
[job.gpu]
count = 1

[[job]]
priority = 1
[job.gpu]
count = 2
min_vram_free_gb = 20

[[job]]
name = "third"
[job.cpu]
min_cores = -3
"""


def test_multi_job_files_load_each_job_and_locate_errors_per_job(tmp_path: Path) -> None:
    """Errors in the n-th [[job]] name job[n-1] and its own line; good jobs load in order."""
    path = _write(tmp_path, QUEUE, "queue.toml")
    with pytest.raises(nodeselect.JobSpecError) as info:
        load_jobs(path)
    assert info.value.key == "job[2].cpu.min_cores"
    assert info.value.line == 16
    fixed = _write(tmp_path, QUEUE.replace("-3", "3"), "queue.toml")
    jobs = load_jobs(fixed)
    assert [j.name for j in jobs] == ["first", "queue-2", "third"]
    assert [j.priority for j in jobs] == [5, 1, 0]
    assert jobs[1].gpu == GpuReq(count=2, min_vram_free_gb=20.0)
    with pytest.raises(nodeselect.JobSpecError, match="expected one job, found 3"):
        load_job(fixed)


def test_multi_job_files_reject_stray_top_level_keys(tmp_path: Path) -> None:
    """Top-level keys beside [[job]] tables are an error, not silently ignored."""
    path = _write(tmp_path, 'name = "x"\n[[job]]\nnodes = 1\n')
    with pytest.raises(nodeselect.JobSpecError, match="top-level") as info:
        load_jobs(path)
    assert info.value.line == 1


def test_a_single_top_level_job_loads_with_load_jobs(tmp_path: Path) -> None:
    """load_jobs accepts a file with one top-level job and names it after the file."""
    jobs = load_jobs(_write(tmp_path, "[cpu]\nmin_cores = 4\n", "small.toml"))
    assert jobs == (Job(name="small", cpu=CpuReq(min_cores=4)),)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("10m", 600), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("1.5h", 5400)],
)
def test_durations_parse(text: str, seconds: int) -> None:
    """Durations with s/m/h/d units (and combinations) parse to the right number of seconds."""
    assert parse_duration(text) == timedelta(seconds=seconds)
    assert parse_duration(seconds) == timedelta(seconds=seconds)


@pytest.mark.parametrize("value", ["99999999999999d", "1000000000d", 1e300, 10**30])
def test_a_duration_too_long_for_timedelta_is_a_job_error(value: object) -> None:
    """A huge max_staleness names the key and the limit instead of an OverflowError."""
    longer = r"placement\.max_staleness: .* longer than the longest"
    with pytest.raises(JobSpecError, match=longer):
        job_from_dict({"placement": {"max_staleness": value}})


@settings(max_examples=200, deadline=None)
@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400)))
def test_duration_formatting_round_trips(value: timedelta) -> None:
    """format_duration's output parses back to the same timedelta."""
    assert parse_duration(format_duration(value)) == value


def test_an_empty_status_list_accepts_any_status(tmp_path: Path) -> None:
    """``statuses = []`` drops the status constraint, in a file as for a Job built in Python
    (one rule: :func:`nodeselect.jobs.check_job`)."""
    job = nodeselect.load_job(_write(tmp_path, "[placement]\nstatuses = []\n"))
    assert job.placement.statuses == ()
    assert check_job(Job(placement=PlacementReq(statuses=()))) == job


def test_arch_aliases() -> None:
    """amd64/x64 mean x86_64 and arm64 means aarch64."""
    assert normalize_arch("AMD64") == "x86_64"
    assert normalize_arch("x64") == "x86_64"
    assert normalize_arch("arm64") == "aarch64"
    assert normalize_arch(None) is None


# ---------------------------------------------------------------------------------------------
# Round-trip

_names = st.text(alphabet=string.ascii_letters + string.digits + "-_.:/", min_size=1, max_size=12)
_gb = st.floats(min_value=0, max_value=4096, allow_nan=False) | st.none()


def _unique(
    elements: st.SearchStrategy[str], max_size: int = 3
) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(elements, unique=True, max_size=max_size).map(tuple)


@st.composite
def jobs(draw: st.DrawFn) -> Job:
    count = draw(st.integers(0, 8))
    if count:
        gpu = GpuReq(
            models=tuple(sorted(draw(_unique(st.sampled_from([m.canonical for m in GPU_MODELS]))))),
            count=count,
            min_vram_free_gb=draw(_gb),
            min_vram_total_gb=draw(_gb),
            max_load=draw(st.floats(0, 1) | st.none()),
        )
    else:
        gpu = GpuReq()
    only = draw(_unique(_names))
    exclude = tuple(n for n in draw(_unique(_names)) if n not in only)
    letters = st.text(alphabet=string.ascii_uppercase, min_size=2, max_size=2)
    return Job(
        name=draw(_names),
        nodes=draw(st.integers(1, 16)),
        priority=draw(st.integers(-100, 100)),
        gpu=gpu,
        cpu=CpuReq(min_cores=draw(st.integers(0, 256) | st.none())),
        memory=MemoryReq(min_free_gb=draw(_gb)),
        disk=DiskReq(min_free_gb=draw(_gb)),
        software=SoftwareReq(
            images_required=draw(_unique(_names)),
            images_preferred=draw(_unique(_names)),
            min_driver=draw(st.none() | st.from_regex(r"\A[1-9][0-9]{0,2}(\.[0-9]{1,3}){0,2}\Z")),
            arch=draw(st.sampled_from([None, "x86_64", "aarch64"])),
        ),
        placement=PlacementReq(
            statuses=draw(_unique(st.sampled_from(STATUSES)).filter(bool)),
            continents=draw(_unique(st.sampled_from(CONTINENTS))),
            countries=draw(_unique(letters)),
            subdivisions=draw(_unique(st.builds(lambda a, b: f"{a}-{b}", letters, letters))),
            compliance=draw(_unique(st.sampled_from(COMPLIANCE_TAGS))),
            min_reputation=draw(st.floats(0, 100) | st.none()),
            max_staleness=draw(
                st.none()
                | st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=30))
            ),
            exclude_operators=draw(_unique(_names)),
            exclude_nodes=exclude,
            only_nodes=only,
            allow_suspended=draw(st.booleans()),
            allow_deleted=draw(st.booleans()),
        ),
        preferences=Preferences(
            strategy=draw(st.sampled_from(["pack", "spread"])),
            # every weight 0 is a JobSpecError (check_job): the strategy draws valid jobs
            weights=draw(
                st.dictionaries(st.sampled_from(SCORE_TERMS), st.floats(0, 100), max_size=5).filter(
                    lambda w: len(w) < len(SCORE_TERMS) or any(v > 0 for v in w.values())
                )
            ),
        ),
        gang=GangReq(
            same=draw(st.sampled_from([None, "continent", "country", "subdivision"])),
            distinct=draw(st.sampled_from(["operator", "node"])),
            operators=draw(st.sampled_from(["spread", "pack"])),
        ),
    )


@settings(max_examples=150, deadline=None)
@given(jobs())
def test_job_to_dict_round_trips(job: Job) -> None:
    """job_from_dict(job_to_dict(job)) == job for every valid job."""
    assert job_from_dict(job_to_dict(job)) == job


@settings(max_examples=50, deadline=None)
@given(jobs())
def test_job_to_dict_round_trips_through_a_toml_file(
    tmp_path_factory: pytest.TempPathFactory, job: Job
) -> None:
    """A job written as TOML (by a minimal writer) and loaded back is the same job."""
    path = tmp_path_factory.mktemp("rt") / "job.toml"
    path.write_text(_to_toml(job_to_dict(job)), encoding="utf-8")
    assert load_job(path) == job


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(type(v))


def _to_toml(d: dict[str, object]) -> str:
    lines = [f"{k} = {_toml_value(v)}" for k, v in d.items() if not isinstance(v, dict)]
    for k, v in d.items():
        if isinstance(v, dict):
            lines.append(f"[{k}]")
            lines.extend(f"{kk} = {_toml_value(vv)}" for kk, vv in v.items())
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# The shipped examples

_EXAMPLE_FILES = [
    "llm-finetune.toml",
    "batch-inference.toml",
    "cpu-only.toml",
    "gang-training.toml",
]


@pytest.mark.parametrize("name", _EXAMPLE_FILES)
def test_shipped_single_job_examples_load(name: str) -> None:
    """Each single-job example file under examples/jobs loads without error."""
    job = load_job(EXAMPLES / name)
    assert job.name


def test_shipped_examples_say_what_they_claim() -> None:
    """The examples ask for what their names promise (multi-GPU EU+GDPR, gang of 4, ...)."""
    llm = load_job(EXAMPLES / "llm-finetune.toml")
    assert llm.gpu.count >= 2
    assert llm.placement.continents == ("EU",)
    assert "GDPR" in llm.placement.compliance
    assert load_job(EXAMPLES / "cpu-only.toml").gpu.count == 0
    gang = load_job(EXAMPLES / "gang-training.toml")
    assert gang.nodes == 4
    assert gang.gang.same == "country"
    assert gang.gang.distinct == "operator"
    queue = load_jobs(EXAMPLES / "queue.toml")
    assert len(queue) >= 3
    assert len({j.priority for j in queue}) > 1


def test_every_job_key_is_documented() -> None:
    """Every key the loader accepts appears, backquoted, in docs/jobs.md."""
    from nodeselect.jobs._file import _SECTIONS, _TOP  # noqa: PLC0415

    text = (EXAMPLES.parent.parent / "docs" / "jobs.md").read_text(encoding="utf-8")
    for key in _TOP:
        assert f"`{key}`" in text or f"`[{key}]`" in text, key
    for section, keys in _SECTIONS.items():
        assert f"`[{section}]`" in text, section
        for key in keys:
            assert f"`{key}`" in text or f"`{section}.{key}`" in text, f"{section}.{key}"
    for term in SCORE_TERMS:
        assert f"`{term}`" in text, term
