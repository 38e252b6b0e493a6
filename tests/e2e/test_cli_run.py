"""`search run`, `search studies`, `search show` end to end: the installed executable in real subprocesses.

Argument-only checks use typer's CliRunner (in-process, fast); everything touching a storage, the data
or the training runs the `search` console script (the `run_search` fixture, in the test's temp dir).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from evaluation_helpers import add_trials
from optuna.trial import TrialState
from processes import SEARCH, one_error_line
from typer.testing import CliRunner

from search.cli.app import app

# --- arguments (CliRunner) ----------------------------------------------------------------------------


def test_run_help_lists_every_flag() -> None:
    result = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for flag in (
        "--study",
        "--trials",
        "--storage",
        "--workers",
        "--epochs",
        "--folds",
        "--data-dir",
        "--seed",
        "--timeout",
        "--threads",
        "--heartbeat-interval",
        "--grace-period",
        "--verbose",
        "SEARCH_STORAGE",
    ):  # fmt: skip (the options, several to a line)
        assert flag in result.output


def test_storage_comes_from_the_environment(run_search, tmp_path: Path) -> None:
    result = run_search("studies", env={"SEARCH_STORAGE": f"sqlite:///{tmp_path}/missing/env.db"})
    assert result.returncode == 1
    assert "missing" in one_error_line(result) and "env.db" in result.stderr


def test_a_worker_with_two_threads_trains(run_search, tmp_path: Path) -> None:
    """Workers fork from a server that imported the service: a torch op run at import time there used to
    start OpenMP's thread pool, and every worker with more than one thread hung in its first convolution."""
    result = run_search("run", "--study", "smoke", "--trials", "2", "--workers", "1", "--threads", "2", timeout=90)
    assert result.returncode == 0, result.stderr
    assert "2/2 new finished trials" in result.stdout


# --- two commands share one study, then studies/show read it ------------------------------------------


@pytest.mark.slow
def test_a_timeout_alone_bounds_a_run_and_with_trials_the_earlier_ends_it(run_search, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/timed.db"
    timed = run_search(
        "run", "--study", "smoke", "--timeout", "8", "--workers", "1", "--threads", "1", "--storage", url
    )
    assert timed.returncode == 0, timed.stderr
    # No count ("N new", not "N/M new") and the clock's 8 s spent: the clock ended it, however fast the machine.
    added = re.search(r"study smoke: (\d+) new finished trials \(.*\) in ([\d.]+) s;", timed.stdout)
    assert added and int(added[1]) >= 1 and float(added[2]) >= 8, timed.stdout
    finished = optuna.load_study(study_name="smoke", storage=url).get_trials(
        states=(TrialState.COMPLETE, TrialState.PRUNED)
    )
    assert len(finished) == int(added[1])
    starts = sorted(t.datetime_start for t in finished)
    assert (starts[-1] - starts[0]).total_seconds() < 8  # none started after the deadline

    counted = run_search(
        "run",
        "--study",
        "smoke",
        "--trials",
        "2",
        "--timeout",
        "600",
        "--workers",
        "1",
        "--threads",
        "1",
        "--storage",
        url,
    )
    assert counted.returncode == 0, counted.stderr
    assert "study smoke: 2/2 new finished trials" in counted.stdout


def test_a_study_whose_toml_was_edited_resumes_from_its_stored_definition(run_search, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/edited.db"
    smoke = Path(__file__).parents[2] / "studies" / "smoke.toml"
    edited = tmp_path / "smoke.toml"
    edited.write_text(smoke.read_text().replace("n_pairs = 200", "n_pairs = 240"))  # same name, another study
    common = ("--workers", "1", "--threads", "1", "--storage", url)
    assert run_search("run", "--study", "smoke", "--trials", "2", *common).returncode == 0

    refused = run_search("run", "--study", str(edited), "--trials", "1", *common)
    assert refused.returncode == 1
    line = one_error_line(refused)
    assert "created from a different definition" in line and "--stored-definition" in line
    assert "search delete --study smoke" in line

    resumed = run_search("run", "--study", str(edited), "--trials", "1", "--stored-definition", *common)
    assert resumed.returncode == 0, resumed.stderr
    assert "study smoke: 1/1 new finished trials" in resumed.stdout
    study = optuna.load_study(study_name="smoke", storage=url)
    assert len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) == 3
    assert study.user_attrs["n_pairs"] == 200  # resumed as created, not as edited

    overridden = run_search("run", "--study", "smoke", "--trials", "1", "--stored-definition", "--epochs", "3", *common)
    assert "--stored-definition resumes a study as it was created: drop --epochs and --folds." in one_error_line(
        overridden
    )
    unknown = run_search("run", "--study", "other", "--trials", "1", "--stored-definition", *common)
    assert "has no study 'other'" in one_error_line(unknown)


def test_two_commands_share_one_study_then_studies_and_show_read_it(pg_url: str, run_search, tmp_path: Path) -> None:
    """Two `search run` processes at once on one database (as on two machines): each adds exactly its 3.
    On one new SQLite file the same two commands are tests/e2e/test_chaos.py's
    test_two_runs_on_one_new_sqlite_file, and `studies` and `show` read SQLite in test_cli_conventions.py."""
    args = [
        SEARCH,
        "run",
        "--study",
        "smoke",
        "--trials",
        "3",
        "--workers",
        "1",
        "--threads",
        "1",
        "--storage",
        pg_url,
    ]
    runs = [
        subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=240) for run in runs]
    for run, (stdout, stderr) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, stderr
        assert "study smoke: 3/3 new finished trials" in stdout
    trials = optuna.load_study(study_name="smoke", storage=pg_url).trials
    assert sorted(t.number for t in trials) == list(range(6))  # distinct numbers: none lost, none duplicated
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)

    studies = run_search("studies", "--storage", pg_url)
    assert studies.returncode == 0, studies.stderr
    assert "smoke" in studies.stdout and "siamese" in studies.stdout  # a study in the storage, and definitions
    complete = sum(t.state == TrialState.COMPLETE for t in trials)
    assert f"│ smoke │ {complete:>8} │" in studies.stdout

    show = run_search("show", "--study", "smoke", "--storage", pg_url, "--top", "2")
    assert show.returncode == 0, show.stderr
    best = max((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    assert f"{best.value:.4f}" in show.stdout and "lr=" in show.stdout

    changed = run_search("run", "--study", "smoke", "--trials", "1", "--folds", "3", "--storage", pg_url)
    assert changed.returncode == 1
    assert "was created from a different definition" in one_error_line(changed)


# --- what a run shows: worker logs, plain progress, masked passwords ----------------------------------


def test_verbose_run_shows_the_workers_log_lines_and_a_line_per_trial(run_search) -> None:
    """Workers send their log records to the parent through a queue; the parent used to crash on them.
    Without a terminal (here a pipe) each finished trial prints a plain progress line."""
    result = run_search("run", "--study", "smoke", "--trials", "3", "--workers", "1", "--verbose", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert (
        "INFO search.run.objective: trial 0 fold 1/2: completed" in result.stdout
    )  # a worker's record, shown by the parent
    assert "3/3 new finished trials" in result.stdout
    lines = [line for line in result.stdout.splitlines() if line.startswith("smoke: ")]
    counts = [int(line.split(" trials,")[0].split(": ")[1].split("/")[0]) for line in lines]
    # a line whenever the count moves; the parent polls, so two trials that end between polls share one line
    assert counts[-1] == 3 and len(counts) >= 2 and all(a < b for a, b in zip(counts, counts[1:], strict=False)), lines
    assert re.fullmatch(r"smoke: 3/3 trials, 0 running, best 0\.\d{4}, elapsed \d+:\d\d:\d\d, ETA 0:00:00", lines[-1])


def test_read_only_commands_read_a_read_only_sqlite_file(tmp_path: Path) -> None:
    add_trials(f"sqlite:///{tmp_path / 'search.db'}", "smoke", [{"lr": 0.1, "value": 0.75}])
    # In a directory of its own, both read-only. As root (CI) the commands run as `nobody`: root may write anything.
    shared = Path(tempfile.mkdtemp(prefix="search-ro-"))
    stack = contextlib.ExitStack()
    try:
        (shared / "ro.db").write_bytes((tmp_path / "search.db").read_bytes())
        (shared / "out").mkdir()
        os.chmod(shared / "out", 0o777)
        os.chmod(shared / "ro.db", 0o444)
        os.chmod(shared, 0o555)
        as_reader = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
        if as_reader:  # `nobody` must reach the executable: a checkout under a 0700 directory (mktemp -d) hides it
            stack.enter_context(_traversable_by_others(Path(SEARCH).parent))
        env = {k: v for k, v in os.environ.items() if k != "SEARCH_STORAGE"} | {
            "HOME": str(shared / "out"),
            "MPLCONFIGDIR": str(shared / "out"),
            "COLUMNS": "200",
        }
        storage = ["--storage", f"sqlite:///{shared / 'ro.db'}"]
        commands = {
            "│ smoke │": ["studies"],
            "best trials of smoke": ["show", "--study", "smoke"],
            "report written to": ["report", "--study", "smoke", "--out", str(shared / "out")],
        }
        for expected, command in commands.items():
            result = subprocess.run(
                [*as_reader, SEARCH, *command, *storage],
                capture_output=True,
                text=True,
                env=env,
                cwd=shared / "out",
                timeout=120,
            )
            assert result.returncode == 0, (command, result.stderr)
            assert expected in result.stdout
        assert "1 complete" in (shared / "out" / "report.md").read_text()
    finally:
        stack.close()
        os.chmod(shared, 0o755)
        shutil.rmtree(shared)


@contextlib.contextmanager
def _traversable_by_others(path: Path) -> Iterator[None]:
    """Let other users traverse every directory from / to `path` for a while; modes are restored after."""
    changed = []
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(directory, stat.S_IMODE(mode) | stat.S_IXOTH)
            changed.append((directory, stat.S_IMODE(mode)))
    try:
        yield
    finally:
        for directory, mode in changed:
            os.chmod(directory, mode)


@pytest.fixture
def pg_url_with_password(pg_url: str) -> Iterator[tuple[str, str]]:
    """(url, password): a role of this test alone whose password holds / @ : % #, owning pg_url's database.

    Creating a role needs PostgreSQL's superuser: `su postgres` (CI runs as root)."""
    import sqlalchemy

    password = "pa/s@s:w%rd#9"
    role = f"search_pw_{uuid.uuid4().hex[:8]}"
    database = sqlalchemy.engine.make_url(pg_url).database

    def psql(sql: str) -> None:
        command = f"psql -v ON_ERROR_STOP=1 -q -d {database}"
        done = subprocess.run(["su", "postgres", "-c", command], input=sql, text=True, capture_output=True)
        assert done.returncode == 0, done.stderr

    psql(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'; ALTER DATABASE \"{database}\" OWNER TO {role};")
    try:
        url = sqlalchemy.engine.make_url(pg_url).set(username=role, password=password)
        yield url.render_as_string(hide_password=False), password
    finally:
        psql(f"REASSIGN OWNED BY {role} TO search; DROP OWNED BY {role}; DROP ROLE {role};")


@pytest.mark.postgres
def test_a_password_with_url_syntax_is_never_shown(
    pg_url_with_password: tuple[str, str], run_search, tmp_path: Path
) -> None:
    url, password = pg_url_with_password
    assert urllib.parse.quote(password, safe="") in url  # percent-encoded in the URL, as the README says
    run = run_search("run", "--study", "smoke", "--trials", "1", "--workers", "1", "--storage", url, timeout=120)
    assert run.returncode == 0, run.stderr
    report = run_search("report", "--study", "smoke", "--out", "rep", "--storage", url)
    assert report.returncode == 0, report.stderr
    missing = run_search("show", "--study", "nope", "--storage", url)
    assert missing.returncode == 1 and "has no study 'nope'" in one_error_line(missing)
    shown = (
        run.stdout
        + run.stderr
        + report.stdout
        + report.stderr
        + missing.stderr
        + (tmp_path / "rep" / "report.md").read_text()
    )
    role = url.split("://")[1].split(":")[0]
    assert f"postgresql+psycopg://{role}:***@127.0.0.1" in shown
    for secret in (password, urllib.parse.quote(password, safe=""), "pa/s", "w%rd", "rd#9", "s:w"):
        assert secret not in shown, secret
