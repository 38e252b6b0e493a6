"""Chaos: real `search run` processes while the database restarts or stops, processes are killed, Ctrl-C comes.

Each scenario causes the fault for real (`pg_ctlcluster` on the PostgreSQL that .ci/run starts, SIGKILL,
SIGINT to the process group as a terminal sends it) and asserts what a user relies on: the exact number
of finished trials, nothing left RUNNING, no traceback, no process left behind. The smoke study.

The PostgreSQL scenarios restart the server named by SEARCH_TEST_PG_URL (cluster PG_CLUSTER below);
the `pg_cluster` fixture starts it again whatever happens. They fail, not skip, under CI=true without it.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import optuna
import pytest
import sqlalchemy
from evaluation_helpers import add_trials, claims_of
from optuna.trial import TrialState
from processes import SEARCH, alive, descendants, kill_alone

from search.study.record import TrialRecord

PG_CLUSTER = ("15", "main")  # the cluster .ci/run starts (pg_ctlcluster VERSION NAME)
FINISHED = ("COMPLETE", "PRUNED")
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


# --- helpers ---------------------------------------------------------------------------------------------


class Run:
    """A `search run` (or any `search` command) in its own process group, as a terminal starts it."""

    def __init__(self, cwd: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if k != "SEARCH_STORAGE"} | {"COLUMNS": "200"}
        self.process = subprocess.Popen(
            [SEARCH, *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.seen: set[int] = set()  # every process seen under it: fork server, workers, resource tracker

    def watch(self) -> None:
        self.seen.update(descendants(self.process.pid))

    def finish(self, timeout: float = 240) -> tuple[int, str, str]:
        """Wait for the end; (exit code, stdout, stderr), after checking no process of the run outlives it."""
        try:
            stdout, stderr = self.process.communicate(timeout=timeout)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.communicate()
        deadline = time.monotonic() + 15
        while any(alive(pid) for pid in self.seen) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in self.seen if alive(pid)], f"processes outlived the run: {stderr}"
        assert "Traceback" not in stdout + stderr, stderr
        return self.process.returncode, stdout, stderr


T = TypeVar("T")


def _counts(url: str) -> dict[str, int]:
    """Trials of the smoke study by state, read with plain SQL (no Optuna: it would create the tables); {} before."""
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    query = sqlalchemy.text(
        "SELECT t.state, count(*) FROM trials t JOIN studies s ON s.study_id = t.study_id "
        "WHERE s.study_name = 'smoke' GROUP BY t.state"
    )
    try:
        with engine.connect() as connection:
            return {str(state): n for state, n in connection.execute(query)}
    except sqlalchemy.exc.DBAPIError:  # no tables yet, or the server is down
        return {}
    finally:
        engine.dispose()


def _running_worker(url: str) -> int | None:
    """The PID of a worker that runs a trial now, as the trial records it when it starts; None if none does."""
    trials = optuna.load_study(study_name="smoke", storage=url).get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    pids = (TrialRecord.from_trial(t).worker_pid for t in trials)
    return next((pid for pid in pids if pid is not None), None)


def _finished(url: str) -> int:
    return sum(_counts(url).get(state, 0) for state in FINISHED)


def _wait_until(run: Run, condition: Callable[[], T], timeout: float = 120) -> T:
    """Poll until `condition()` is truthy while the run goes on; its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert run.process.poll() is None, f"the run ended early: {run.process.communicate()}"
        run.watch()
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not reached within {timeout:g} s")


def _assert_settled(url: str, n_finished: int) -> None:
    """Exactly `n_finished` finished trials, none RUNNING or WAITING."""
    trials = optuna.load_study(study_name="smoke", storage=url).get_trials(deepcopy=False)
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == n_finished
    assert not [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]


def _run_args(url: str, n_trials: int, *extra: str) -> list[str]:
    return ["run", "--study", "smoke", "--trials", str(n_trials), "--threads", "1", "--storage", url, *extra]


def _pg_ctl(action: str) -> None:
    subprocess.run(["pg_ctlcluster", *PG_CLUSTER, action], check=True, capture_output=True, timeout=120)


def _pg_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while _counts_ok(url) is False:
        assert time.monotonic() < deadline, "PostgreSQL did not come back"
        time.sleep(0.5)


def _counts_ok(url: str) -> bool:
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
        return True
    except sqlalchemy.exc.DBAPIError:
        return False
    finally:
        engine.dispose()


@pytest.fixture
def pg_cluster(pg_url: str) -> Iterator[str]:
    """pg_url on a server this test may restart or stop; started again when the test ends, even on failure."""
    try:
        yield pg_url
    finally:
        online = subprocess.run(["pg_ctlcluster", *PG_CLUSTER, "status"], capture_output=True).returncode == 0
        if not online:
            _pg_ctl("start")
        _pg_ready(pg_url)


# --- the database goes away ----------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_postgres_restart_mid_run_is_ridden_out(pg_cluster: str, tmp_path: Path) -> None:
    run = Run(tmp_path, *_run_args(pg_cluster, 16, "--workers", "2"))
    _wait_until(run, lambda: _finished(pg_cluster) >= 3)
    _pg_ctl("restart")
    code, stdout, stderr = run.finish()
    assert code == 0, stderr
    assert "study smoke: 16/16 new finished trials" in stdout
    _assert_settled(pg_cluster, 16)


STEADY_RETRY = re.compile(r"WARNING search\.storage\.\w+: storage.*retrying in 5\.0 s")  # past the backoff


def _stderr_lines_until(run: Run, enough: Callable[[list[str]], bool], timeout: float = 90) -> list[str]:
    """Read the run's stderr line by line while it goes on, until `enough(lines so far)`."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while not enough(lines):
        left = deadline - time.monotonic()
        assert left > 0, f"not seen within {timeout:g} s: {lines}"
        if select.select([run.process.stderr], [], [], min(left, 1.0))[0]:
            line = run.process.stderr.readline()
            assert line, f"the run ended early: {lines}"
            lines.append(line)
        run.watch()
    return lines


@pytest.mark.postgres
def test_a_postgres_stop_across_the_whole_retry_backoff_is_ridden_out(pg_cluster: str, tmp_path: Path) -> None:
    """The server stays down until a worker's retries have gone past the backoff's growing delays (0.5, 1,
    2, 4 s) into its steady 5 s cadence (its warnings, shown by the parent, say so), and the run goes on
    when the server is back."""
    run = Run(tmp_path, *_run_args(pg_cluster, 10, "--workers", "2"))
    _wait_until(run, lambda: _finished(pg_cluster) >= 2)
    _pg_ctl("stop")
    try:
        _stderr_lines_until(run, lambda lines: any(STEADY_RETRY.search(line) for line in lines))
        assert run.process.poll() is None, "the run ended while the database was down"
    finally:
        _pg_ctl("start")
    code, stdout, stderr = run.finish()
    assert code == 0, stderr
    assert "study smoke: 10/10 new finished trials" in stdout
    _assert_settled(pg_cluster, 10)


@pytest.mark.postgres
def test_an_outage_longer_than_max_outage_ends_in_one_line_and_loses_nothing(pg_cluster: str, tmp_path: Path) -> None:
    run = Run(tmp_path, *_run_args(pg_cluster, 12, "--workers", "2", "--max-outage", "4"))
    _wait_until(run, lambda: _finished(pg_cluster) >= 2)
    _pg_ctl("stop")
    try:
        code, stdout, stderr = run.finish(timeout=120)
    finally:
        _pg_ctl("start")
    assert code == 1
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Lost the connection to the storage postgresql+psycopg://search:***@" in errors[0], (
        stderr
    )
    assert "(--max-outage 4)" in errors[0] and "run the command again" in errors[0]
    _pg_ready(pg_cluster)
    before = _finished(pg_cluster)
    assert 2 <= before < 12
    # The resumed run fails at once the trials the first one left RUNNING (their workers are gone) and retries them.
    code, stdout, stderr = Run(tmp_path, *_run_args(pg_cluster, 12 - before, "--workers", "2")).finish()
    assert code == 0, stderr
    _assert_settled(pg_cluster, 12)


# --- processes are killed ------------------------------------------------------------------------------


def test_a_worker_killed_with_sigkill_is_replaced_by_its_retry(sqlite_url: str, tmp_path: Path) -> None:
    run = Run(tmp_path, *_run_args(sqlite_url, 8, "--workers", "2", "--epochs", "20"))
    worker = _wait_until(run, lambda: _finished(sqlite_url) >= 1 and _running_worker(sqlite_url))
    assert worker in descendants(run.process.pid)
    os.kill(worker, signal.SIGKILL)
    code, stdout, stderr = run.finish()
    assert code == 0, stderr
    assert "study smoke: 8/8 new finished trials" in stdout
    assert re.search(rf"worker \d \(pid {worker}\) exited with code -9; 1 worker\(s\) left", stderr), stderr
    _assert_settled(sqlite_url, 8)


def test_a_run_killed_with_sigkill_resumes_to_the_exact_count(sqlite_url: str, tmp_path: Path) -> None:
    run = Run(tmp_path, *_run_args(sqlite_url, 40, "--workers", "2", "--epochs", "20"))
    _wait_until(run, lambda: _counts(sqlite_url).get("RUNNING", 0) >= 1 and _finished(sqlite_url) >= 2)
    run.watch()
    os.kill(run.process.pid, signal.SIGKILL)  # the parent alone: its workers must notice and end
    code, _, stderr = run.finish()
    assert code == -signal.SIGKILL
    assert "leaked semaphore" not in stderr
    before, running = _finished(sqlite_url), _counts(sqlite_url).get("RUNNING", 0)
    assert running >= 1

    started = time.monotonic()
    code, stdout, stderr = Run(tmp_path, *_run_args(sqlite_url, 3, "--workers", "1", "--epochs", "20")).finish()
    assert code == 0, stderr
    assert time.monotonic() - started < 80  # the dead run's trials are retried at once, not after the 90 s grace period
    assert "its worker process" in stderr and "is gone" in stderr
    _assert_settled(sqlite_url, before + 3)


def test_an_evaluate_best_killed_with_sigkill_leaves_no_worker_behind(sqlite_url: str, tmp_path: Path) -> None:
    """The command alone is killed (its workers are not): they end with it instead of training on, orphaned."""
    add_trials(sqlite_url, "tiny", [{"lr": 0.05, "value": 0.6}, {"lr": 0.1, "value": 0.7}])
    args = ("evaluate-best", "--study", "tiny", "--storage", sqlite_url, "--epochs", "200", "--draws", "2")
    args += ("--finalists", "2", "--repeats", "1", "--no-race", "--workers", "2", "--threads", "1")
    command = subprocess.Popen([SEARCH, *args], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while claims_of(sqlite_url, command.pid) < 2:  # both selection runs handed to the workers
            assert command.poll() is None and time.monotonic() < deadline, "the selection stage did not start"
            time.sleep(0.2)
        time.sleep(1.0)  # the workers take their jobs
        _, survivors = kill_alone(command, timeout=15)
        assert not survivors, "a worker outlived its `search evaluate-best`"
    finally:
        if command.poll() is None:
            command.kill()
            command.wait()


# --- Ctrl-C --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def startup_seconds(tmp_path_factory: pytest.TempPathFactory) -> float:
    """How long `search run` takes on this machine from its start to its run stage, when it logs its
    compute settings and a Ctrl-C stops trials instead of the start: the shortest of two runs (the first
    may fill the speed cache). Machines differ by 2-3x, so the Ctrl-C moments below are fractions of it."""
    times = []
    for attempt in range(2):
        folder = tmp_path_factory.mktemp(f"startup{attempt}")
        run = Run(folder, *_run_args(f"sqlite:///{folder / 'search.db'}", 20, "--workers", "2"))
        began = time.monotonic()
        line = ""
        while "compute settings" not in line:
            assert select.select([run.process.stderr], [], [], 60)[0], "no compute settings logged within 60 s"
            line = run.process.stderr.readline()
            assert line, f"the run ended early: {run.process.communicate()}"
        times.append(time.monotonic() - began)
        os.killpg(run.process.pid, signal.SIGKILL)
        run.process.communicate()
    return min(times)


STARTING = (
    ["interrupted while starting: nothing was run."],  # still importing the CLI
    ["interrupted while starting: no trial was started by this run; run the command again to start."],
)
STOPPING = "stopping: the running trials end after their current epoch"


# Early on: importing torch, Typer building the commands; later: loading the data (search.run.interrupts)
@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, 0.7, 0.9])
def test_ctrl_c_while_a_run_starts_says_so(
    sqlite_url: str, tmp_path: Path, startup_seconds: float, fraction: float
) -> None:
    """A Ctrl-C at `fraction` of the measured start says the run was interrupted while starting. On a
    noisy host one start can be quicker than the measured one, and the Ctrl-C then lands after it: that
    run must stop as any interrupted run stops, and the moment is tried again, earlier, until one lands
    inside the start, which is what this test is for."""
    delay = fraction * startup_seconds
    for _ in range(4):
        run = Run(tmp_path, *_run_args(sqlite_url, 20, "--workers", "2"))
        time.sleep(delay)  # importing, loading the data, opening the storage
        run.watch()
        os.killpg(run.process.pid, signal.SIGINT)
        code, stdout, stderr = run.finish(timeout=120)
        assert code == 130, stderr
        assert _counts(sqlite_url).get("RUNNING", 0) == 0
        said = [line for line in stderr.splitlines() if line.strip() and "compute settings" not in line]
        if said in STARTING:
            return
        assert "compute settings" in stderr and len(said) == 1 and STOPPING in said[0], stderr  # after the start
        delay *= 0.6
    pytest.fail(f"no Ctrl-C landed inside the start in 4 tries (the last {delay / 0.6:.2f} s after it began)")


# 0 s: the pool's workers are still starting (the fork server imports torch); 4 s: they train.
@pytest.mark.parametrize("delay", [0.0, 4.0])
def test_ctrl_c_while_evaluate_best_trains_in_its_workers_stops_cleanly(
    sqlite_url: str, tmp_path: Path, delay: float
) -> None:
    """Ctrl-C while the selection stage starts or trains its two pool workers (forked from the fork server,
    which holds SIGINT blocked): the command says what is kept and exits 130 at once; no traceback, no
    process outlives it, and the claims are released so the next command trains the runs at once."""
    add_trials(sqlite_url, "tiny", [{"lr": 0.05, "value": 0.6}, {"lr": 0.1, "value": 0.7}])
    args = ("evaluate-best", "--study", "tiny", "--storage", sqlite_url, "--epochs", "200", "--draws", "2")
    run = Run(tmp_path, *args, "--finalists", "2", "--repeats", "1", "--no-race", "--workers", "2", "--threads", "1")
    _wait_until(run, lambda: claims_of(sqlite_url, run.process.pid) >= 2)  # both selection runs handed out
    time.sleep(delay)
    run.watch()
    os.killpg(run.process.pid, signal.SIGINT)
    code, _, stderr = run.finish(timeout=30)  # the 200-epoch jobs would take minutes: they are stopped
    assert code == 130, stderr
    assert "interrupted" in stderr, stderr
    assert claims_of(sqlite_url, run.process.pid) == 0


@pytest.mark.postgres
def test_ctrl_c_mid_run_stops_cleanly_and_counts_exactly(pg_cluster: str, tmp_path: Path) -> None:
    run = Run(tmp_path, *_run_args(pg_cluster, 100, "--workers", "2", "--epochs", "20"))
    _wait_until(run, lambda: _counts(pg_cluster).get("RUNNING", 0) >= 1 and _finished(pg_cluster) >= 2)
    os.killpg(run.process.pid, signal.SIGINT)
    code, stdout, stderr = run.finish(timeout=120)
    assert code == 130, stderr
    added = re.search(r"study smoke: (\d+)/100 new finished trials \(interrupted\)", stdout)
    assert added is not None, stdout
    _assert_settled(pg_cluster, int(added.group(1)))


# --- two runs at once ----------------------------------------------------------------------------------


def test_two_runs_on_one_new_sqlite_file(sqlite_url: str, tmp_path: Path) -> None:
    runs = [Run(tmp_path, *_run_args(sqlite_url, 3, "--workers", "1")) for _ in range(2)]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(r.process.poll() is None for r in runs):
        for r in runs:
            r.watch()
        time.sleep(0.2)
    for r in runs:
        code, stdout, stderr = r.finish()
        assert code == 0, stderr
        assert "study smoke: 3/3 new finished trials" in stdout
    _assert_settled(sqlite_url, 6)
