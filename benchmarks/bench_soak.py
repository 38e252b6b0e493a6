"""Soak: a long `search run` on PostgreSQL while the database restarts; does it finish, exactly, alone?

Runs the installed `search` executable (as a user would) with --workers W on --trials N smoke trials,
in a fresh database on the server of --pg-url (created here, dropped afterwards), and restarts the
server (`pg_ctlcluster VERSION NAME restart`, needs root) --restarts times, evenly spread over the
run's progress. Then it reports what the README quotes:

- finished trials (complete + pruned) against the N asked, and whether any trial is left RUNNING;
- failed-and-retried trials: trials that failed (a worker lost mid-trial, an outage) and the retries
  queued for them with the same parameters; storage operations retried (the warnings logged);
- wall time, the exit code, and whether the output held a traceback.

    python -m benchmarks.bench_soak [--trials 200] [--workers 4] [--restarts 2] [--pg-url URL]
        [--cluster "15 main"] [--study smoke] [--json]

Restarting the server interrupts every other client of it: run this on a server of your own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from search.storage.studies import STORAGE_ENVVAR, mask_url

SEARCH = str(Path(sys.executable).with_name("search"))
FINISHED_STATES = ("COMPLETE", "PRUNED")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--restarts", type=int, default=2)
    parser.add_argument("--study", default="smoke")
    parser.add_argument("--pg-url", default=os.environ.get("SEARCH_TEST_PG_URL"))
    parser.add_argument("--cluster", default="15 main", help="VERSION NAME of the cluster for pg_ctlcluster")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()
    if not args.pg_url:
        parser.error("no PostgreSQL URL: pass --pg-url or set SEARCH_TEST_PG_URL")
    result = soak(
        args.pg_url,
        study=args.study,
        n_trials=args.trials,
        n_workers=args.workers,
        n_restarts=args.restarts,
        cluster=args.cluster.split(),
    )
    for key, value in result.items():
        print(f"{key:>24}: {value}")
    if args.json:
        print(json.dumps(result))


def soak(
    base_url: str, *, study: str, n_trials: int, n_workers: int, n_restarts: int, cluster: list[str]
) -> dict[str, Any]:
    name = f"search_soak_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(base_url, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    url = sqlalchemy.engine.make_url(base_url).set(database=name).render_as_string(hide_password=False)
    try:
        return _soak(url, study=study, n_trials=n_trials, n_workers=n_workers, n_restarts=n_restarts, cluster=cluster)
    finally:
        _wait_for_server(base_url)
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _soak(
    url: str, *, study: str, n_trials: int, n_workers: int, n_restarts: int, cluster: list[str]
) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != STORAGE_ENVVAR}
    command = [
        SEARCH,
        "run",
        "--study",
        study,
        "--trials",
        str(n_trials),
        "--workers",
        str(n_workers),
        "--threads",
        "1",
        "--storage",
        url,
    ]
    started = time.monotonic()
    run = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    marks = [n_trials * (k + 1) // (n_restarts + 1) for k in range(n_restarts)]  # restart at these finished counts
    restarts = []
    try:
        for mark in marks:
            while run.poll() is None and _finished(url, study) < mark:
                time.sleep(0.5)
            if run.poll() is not None:
                break
            subprocess.run(["pg_ctlcluster", *cluster, "restart"], check=True, capture_output=True, timeout=120)
            restarts.append({"at_finished": mark, "at_seconds": round(time.monotonic() - started, 1)})
        stdout, stderr = run.communicate()
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    wall = time.monotonic() - started
    trials = optuna.load_study(study_name=study, storage=url).get_trials(deepcopy=False)
    state = {s: sum(t.state == s for t in trials) for s in TrialState}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retries = [t for t in trials if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) is not None]
    return {
        "storage": mask_url(url),
        "machine": f"{_cpu_model()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "asked": n_trials,
        "workers": n_workers,
        "restarts": restarts,
        "exit_code": run.returncode,
        "finished_trials": state[TrialState.COMPLETE] + state[TrialState.PRUNED],
        "complete": state[TrialState.COMPLETE],
        "pruned": state[TrialState.PRUNED],
        "failed_trials": state[TrialState.FAIL],
        "retried_trials": len(retries),
        "left_running": state[TrialState.RUNNING] + state[TrialState.WAITING],
        "storage_retries_logged": stderr.count("WARNING search.storage.studies: storage"),
        "traceback": "Traceback" in stdout + stderr,
        "wall_seconds": round(wall, 1),
        "summary": stdout.strip().splitlines()[-1] if stdout.strip() else "",
        "error": next((line for line in stderr.splitlines() if line.startswith("error: ")), ""),
    }


def _finished(url: str, study: str) -> int:
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    query = sqlalchemy.text(
        "SELECT count(*) FROM trials t JOIN studies s ON s.study_id = t.study_id "
        "WHERE s.study_name = :study AND t.state IN ('COMPLETE', 'PRUNED')"
    )
    try:
        with engine.connect() as connection:
            return int(connection.execute(query, {"study": study}).scalar() or 0)
    except sqlalchemy.exc.DBAPIError:  # no tables yet, or the server restarting
        return 0
    finally:
        engine.dispose()


def _wait_for_server(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        while True:
            try:
                with engine.connect():
                    return
            except sqlalchemy.exc.DBAPIError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        engine.dispose()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
