"""Bad input to every command and option, in one place: each ends in one line, a non-zero exit, no traceback.

Table-driven. Most cases run in-process through typer's CliRunner (fast: nothing in them trains); the
cases marked EXECUTABLE also run the installed `search` console script. Placeholders in the arguments:
{db} a SQLite storage holding the smoke study (created from the embedded digits), {missing} a SQLite
path that does not exist, {file} an existing plain file, {dir} a directory, {idx} a directory of
other MNIST IDX files.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from processes import SEARCH, one_error_line
from typer.testing import CliRunner

from models.data.pools import IDX_FILES
from search.cli.app import app
from search.run.runner import prepare_study
from search.run.study_data import load_study_data
from search.storage.studies import open_storage
from search.study.loader import load_definition

EXECUTABLE = "executable"  # also run through the installed console script
RUN = ("run", "--study", "smoke", "--trials", "1", "--workers", "1")

# (id, arguments, a fragment of the one message expected, run through the executable too)
CASES: list[tuple[str, tuple[str, ...], str, str]] = [
    # search (no command) and unknown commands
    ("unknown-command", ("nosuch",), "No such command 'nosuch'", EXECUTABLE),
    ("unknown-global-option", ("--bogus",), "No such option: --bogus", ""),
    # run
    ("run-no-study", ("run", "--trials", "1"), "Missing option '--study'", EXECUTABLE),
    (
        "run-no-trials-nor-timeout",
        ("run", "--study", "smoke", "--storage", "{db}"),
        "give --trials (new finished trials to add), --timeout",
        EXECUTABLE,
    ),
    ("run-trials-text", ("run", "--study", "smoke", "--trials", "many"), "Invalid value for '--trials'", ""),
    (
        "run-trials-zero",
        ("run", "--study", "smoke", "--trials", "0", "--storage", "{db}"),
        "--trials must be at least 1",
        "",
    ),
    (
        "run-trials-negative",
        ("run", "--study", "smoke", "--trials", "-2", "--storage", "{db}"),
        "--trials must be at least 1",
        "",
    ),
    ("run-unknown-study", (*RUN[:2], "nope", *RUN[3:], "--storage", "{db}"), "unknown study 'nope'", ""),
    (
        "run-missing-toml",
        ("run", "--study", "{dir}/none.toml", "--trials", "1", "--storage", "{db}"),
        "no such study file",
        "",
    ),
    ("run-workers-zero", (*RUN[:-1], "0", "--storage", "{db}"), "--workers must be at least 1", ""),
    ("run-workers-text", (*RUN[:-1], "two"), "Invalid value for '--workers'", ""),
    ("run-threads-zero", (*RUN, "--threads", "0", "--storage", "{db}"), "--threads must be at least 1", ""),
    (
        "run-timeout-zero",
        (*RUN, "--timeout", "0", "--storage", "{db}"),
        "--timeout must be a positive number of seconds",
        "",
    ),
    ("run-timeout-text", (*RUN, "--timeout", "soon"), "Invalid value for '--timeout'", ""),
    ("run-epochs-zero", (*RUN, "--epochs", "0", "--storage", "{db}"), "epochs must be an integer >= 1, but got 0", ""),
    (
        "run-folds-one",
        (*RUN, "--folds", "1", "--storage", "{db}"),
        "n_folds must be an integer between 2 and 20, but got 1",
        "",
    ),
    ("run-folds-text", (*RUN, "--folds", "x"), "Invalid value for '--folds'", ""),
    ("run-seed-text", (*RUN, "--seed", "x"), "Invalid value for '--seed'", ""),
    (
        "run-heartbeat-zero",
        (*RUN, "--heartbeat-interval", "0", "--storage", "{db}"),
        "heartbeat interval must be a positive number",
        "",
    ),
    (
        "run-grace-too-short",
        (*RUN, "--heartbeat-interval", "30", "--grace-period", "40", "--storage", "{db}"),
        "grace period must be more than twice",
        "",
    ),
    (
        "run-max-outage-negative",
        (*RUN, "--max-outage", "-1", "--storage", "{db}"),
        "--max-outage must be zero or a positive number",
        "",
    ),
    ("run-max-outage-text", (*RUN, "--max-outage", "long"), "Invalid value for '--max-outage'", ""),
    ("run-unknown-option", (*RUN, "--bogus"), "No such option: --bogus", ""),
    ("run-malformed-url", (*RUN, "--storage", "definitely not a url"), "Malformed storage URL", EXECUTABLE),
    ("run-unsupported-backend", (*RUN, "--storage", "oracle://u@h/db"), "Unsupported storage URL", ""),
    (
        "run-mysql-without-driver",
        (*RUN, "--storage", "mysql://u:pw@127.0.0.1/db"),
        "needs a database driver that is not installed",
        EXECUTABLE,
    ),
    (
        "run-postgres-no-database",
        (*RUN, "--storage", "postgresql+psycopg://u:pw@127.0.0.1:5432"),
        "names no database",
        "",
    ),
    ("run-grpc-bad-port", (*RUN, "--storage", "grpc://127.0.0.1:x"), "the port must be a number", ""),
    ("run-sqlite-memory", (*RUN, "--storage", "sqlite:///:memory:"), "in-memory SQLite database", ""),
    ("run-sqlite-no-dir", (*RUN, "--storage", "sqlite:///{dir}/no/such/x.db"), "does not exist. Create it first", ""),
    ("run-sqlite-is-dir", (*RUN, "--storage", "sqlite:///{dir}"), "it is a directory", ""),
    (
        "run-data-dir-missing",
        (*RUN, "--data-dir", "{dir}/nope", "--storage", "{db}"),
        "MNIST data directory does not exist",
        "",
    ),
    (
        "run-data-dir-without-mnist",
        (*RUN, "--data-dir", "{dir}", "--storage", "{db}"),
        "missing train-images-idx3-ubyte",
        "",
    ),
    (
        "run-data-dir-other-digits",
        (*RUN, "--data-dir", "{idx}", "--storage", "{db}"),
        "was created from other digits",
        EXECUTABLE,
    ),
    # studies
    ("studies-malformed-url", ("studies", "--storage", "::"), "Malformed storage URL", ""),
    # show
    ("show-no-study", ("show",), "Missing option '--study'", ""),
    (
        "show-unknown-study",
        ("show", "--study", "nope", "--storage", "{db}"),
        "has no study 'nope'; it holds: smoke",
        "",
    ),
    (
        "show-missing-file",
        ("show", "--study", "smoke", "--storage", "{missing}"),
        "There is no SQLite storage",
        EXECUTABLE,
    ),
    ("show-top-zero", ("show", "--study", "smoke", "--top", "0", "--storage", "{db}"), "Invalid value for '--top'", ""),
    # evaluate-best
    (
        "evaluate-missing-file",
        ("evaluate-best", "--study", "smoke", "--storage", "{missing}"),
        "There is no SQLite storage",
        "",
    ),
    (
        "evaluate-no-trial",
        ("evaluate-best", "--study", "smoke", "--storage", "{db}"),
        "The study 'smoke' has no completed trial with a stored configuration to evaluate; run `search run --study "
        "smoke --trials N` until one completes.",
        EXECUTABLE,
    ),
    (
        "evaluate-unknown-study",
        ("evaluate-best", "--study", "nope", "--storage", "{db}"),
        "has no study 'nope'; it holds: smoke",
        "",
    ),
    (
        "evaluate-draws-zero",
        ("evaluate-best", "--study", "smoke", "--draws", "0", "--storage", "{db}"),
        "draws must be between 1 and 100",
        "",
    ),
    (
        "evaluate-top-zero",
        ("evaluate-best", "--study", "smoke", "--top", "0", "--storage", "{db}"),
        "top must be at least 1",
        "",
    ),
    (
        "evaluate-finalists-zero",
        ("evaluate-best", "--study", "smoke", "--finalists", "0", "--storage", "{db}"),
        "finalists must be between 1 and 100",
        "",
    ),
    (
        "evaluate-workers-zero",
        ("evaluate-best", "--study", "smoke", "--workers", "0", "--storage", "{db}"),
        "workers must be at least 1",
        "",
    ),
    (
        "evaluate-through-proxy",
        ("evaluate-best", "--study", "smoke", "--storage", "grpc://127.0.0.1:1"),
        "needs a direct database URL",
        "",
    ),
    # reproduce
    ("reproduce-draws-zero", ("reproduce", "--draws", "0", "--storage", "{db}"), "draws must be between 1 and 100", ""),
    (
        "reproduce-unknown-preset",
        ("reproduce", "--presets", "nope", "--storage", "{db}"),
        "Unknown preset(s) 'nope'",
        "",
    ),
    (
        "reproduce-unknown-report",
        ("reproduce", "--report", "9", "--storage", "{db}"),
        "Unknown report '9'; the reports are 000, 001, 002, 003, 004 (or 'all').",
        "",
    ),
    (
        "reproduce-report-and-presets",
        ("reproduce", "--report", "3", "--presets", "seed003/sgd", "--storage", "{db}"),
        "Give preset names or a report, not both.",
        "",
    ),
    (
        "reproduce-vary-no-value",
        ("reproduce", "--presets", "seed003/sgd", "--vary", "momentum", "--storage", "{db}"),
        "--vary 'momentum' is not FIELD=VALUE",
        "",
    ),
    (
        "reproduce-vary-out-of-range",
        ("reproduce", "--presets", "seed003/sgd", "--vary", "momentum=3", "--storage", "{db}"),
        "momentum must be in [0, 1), but got 3.",
        "",
    ),
    ("reproduce-epochs-zero", ("reproduce", "--epochs", "0", "--storage", "{db}"), "epochs must be at least 1", ""),
    # report
    ("report-no-out", ("report", "--study", "smoke"), "Missing option '--out'", ""),
    (
        "report-no-presets",
        ("report", "--out", "{dir}/presets-report", "--storage", "{db}"),
        "holds no reproduced presets: run `search reproduce` first, or give --study",
        "",
    ),
    (
        "report-out-in-proc",
        ("report", "--study", "smoke", "--out", "/proc/rep", "--storage", "{db}"),
        "Cannot write the report to /proc/rep",
        EXECUTABLE,
    ),
    (
        "report-out-unwritable",
        ("report", "--study", "smoke", "--out", "/proc/self", "--storage", "{db}"),
        "Cannot write the report to /proc/self",
        "",
    ),
    (
        "report-out-is-a-file",
        ("report", "--study", "smoke", "--out", "{file}", "--storage", "{db}"),
        "is a file, but the report needs a directory",
        "",
    ),
    (
        "report-unknown-study",
        ("report", "--study", "nope", "--out", "{dir}/r", "--storage", "{db}"),
        "has no study 'nope'",
        "",
    ),
    # dashboard and proxy
    (
        "dashboard-port-too-big",
        ("dashboard", "--port", "70000", "--storage", "{db}"),
        "port must be between 0 and 65535",
        "",
    ),
    ("dashboard-port-text", ("dashboard", "--port", "http"), "Invalid value for '--port'", ""),
    ("proxy-port-zero", ("proxy", "--port", "0", "--storage", "{db}"), "port must be between 1 and 65535", ""),
    (
        "proxy-in-front-of-a-proxy",
        ("proxy", "--storage", "grpc://127.0.0.1:13000"),
        "The gRPC proxy, which must sit in front of a database, needs a direct database URL",
        "",
    ),
]


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("bad-input")
    db = root / "search.db"
    smoke = load_definition("smoke")
    prepare_study(open_storage(f"sqlite:///{db}"), smoke, data=load_study_data(smoke).identity)
    (root / "plain.txt").write_text("not a directory\n")
    rng = np.random.default_rng(0)
    for (_pool, kind), name in IDX_FILES.items():  # other digits: 500 random images per pool
        shape = (500, 28, 28) if kind == "images" else (500,)
        array = rng.integers(0, 256 if kind == "images" else 10, size=shape, dtype=np.uint8)
        header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
        (root / "idx").mkdir(exist_ok=True)
        (root / "idx" / name).write_bytes(header + array.tobytes())
    return {
        "db": f"sqlite:///{db}",
        "missing": f"sqlite:///{root / 'missing.db'}",
        "file": str(root / "plain.txt"),
        "dir": str(root),
        "idx": str(root / "idx"),
    }


def _check(output: str, code: int, expected: str) -> None:
    lines = [line for line in output.splitlines() if line.strip()]
    assert code != 0, output
    assert "Traceback" not in output
    assert len(lines) == 1, output
    assert expected in " ".join(output.split()), output


@pytest.mark.parametrize(
    ("args", "expected"), [pytest.param(args, expected, id=name) for name, args, expected, _ in CASES]
)
def test_bad_input_in_process(places: dict[str, str], args: tuple[str, ...], expected: str) -> None:
    result = CliRunner().invoke(
        app, [arg.format(**places) for arg in args], env={"COLUMNS": "200", "SEARCH_STORAGE": ""}
    )
    _check(result.output, result.exit_code, expected)


@pytest.mark.parametrize(
    ("args", "expected"),
    [pytest.param(args, expected, id=name) for name, args, expected, how in CASES if how == EXECUTABLE],
)
def test_bad_input_through_the_executable(
    places: dict[str, str], tmp_path: Path, args: tuple[str, ...], expected: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SEARCH_STORAGE"} | {"COLUMNS": "200"}
    result = subprocess.run(
        [SEARCH, *(arg.format(**places) for arg in args)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    _check(result.stdout + result.stderr, result.returncode, expected)
    assert not Path(places["missing"].removeprefix("sqlite:///")).exists()  # reading commands never create a storage


def test_there_are_at_least_40_cases_over_every_command() -> None:
    assert len(CASES) >= 40
    commands = {args[0] for _, args, _, _ in CASES}
    assert {"run", "studies", "show", "evaluate-best", "reproduce", "report", "dashboard", "proxy"} <= commands


# --- checks a table row cannot express ------------------------------------------------------------------


def test_unknown_study_lists_the_known_ones(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["run", "--study", "nope", "--trials", "1", "--storage", f"sqlite:///{tmp_path}/x.db"]
    )
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "unknown study 'nope'" in line and "smoke" in line and "siamese" in line


@pytest.mark.parametrize("trials", ["0", "-2"])
def test_trials_below_one_are_refused(tmp_path: Path, trials: str) -> None:
    result = CliRunner().invoke(
        app, ["run", "--study", "smoke", "--trials", trials, "--storage", f"sqlite:///{tmp_path}/x.db"]
    )
    assert result.exit_code == 1
    assert f"--trials must be at least 1 (new finished trials to add), but got {trials}." in one_error_line(result)
    assert not (tmp_path / "x.db").exists()


def test_a_definition_with_errors_is_rejected_with_its_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "bad"\n[search]\nn_folds = 2\nepochs = 1\n[params.learning_rate]\ntype = "float"\nlow = 0.1\nhigh = 0.01\n'
    )
    result = CliRunner().invoke(
        app, ["run", "--study", str(bad), "--trials", "1", "--storage", f"sqlite:///{tmp_path}/x.db"]
    )
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "bad.toml" in line and "learning_rate" in line
