"""Every stage shared through the database: two `evaluate-best` (or `reproduce`) process trees on one
PostgreSQL, as two machines would run them, split the draws; one killed with SIGKILL mid-draw loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import sqlalchemy
from evaluation_helpers import add_trials, claims_of
from processes import SEARCH

from search.evaluation.store import EvaluationRow

EVALUATE = ("evaluate-best", "--study", "tiny", "--draws", "6", "--threads", "1", "--workers", "1", "--no-select")


def _start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "SEARCH_STORAGE"} | {"COLUMNS": "200"}
    return subprocess.Popen(
        [SEARCH, *args, "--json"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a SIGKILL takes the whole tree, as a lost machine
    )


def _stored(url: str, *columns) -> list[tuple]:
    """The evaluations table's rows, as sorted tuples of `columns`."""
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    with engine.connect() as connection:
        rows = connection.execute(sqlalchemy.select(*columns)).all()
    engine.dispose()
    return sorted(tuple(row) for row in rows)


def _rows(url: str) -> list[tuple[int, str]]:
    return _stored(url, EvaluationRow.draw_seed, EvaluationRow.config_key)


def _one_killed_mid_claim(url: str, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    """Two process trees on one command; the first, once it holds a claim (mid-training), killed with
    SIGKILL as a lost machine would be. The survivor's exit code, stdout and stderr."""
    victim = _start(tmp_path, *args)
    deadline = time.monotonic() + 120
    while claims_of(url, victim.pid) == 0:
        assert victim.poll() is None and time.monotonic() < deadline, victim.communicate()
        time.sleep(0.2)
    survivor = _start(tmp_path, *args)
    time.sleep(1.0)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    out, err = survivor.communicate(timeout=600)
    return survivor.returncode, out, err


def test_two_evaluate_best_processes_share_the_draws(pg_url, tmp_path):
    add_trials(pg_url, "tiny", [{"lr": 0.05, "value": 0.6, "epochs": 8}])

    first = _start(tmp_path, *EVALUATE, "--storage", pg_url)
    second = _start(tmp_path, *EVALUATE, "--storage", pg_url)
    outputs = [process.communicate(timeout=300) for process in (first, second)]

    assert [p.returncode for p in (first, second)] == [0, 0], [err for _, err in outputs]
    results = [json.loads(out) for out, _ in outputs]
    shares = [r["n_trained"] for r in results]
    assert sum(shares) == 6 and min(shares) >= 1  # each trained a share, none twice
    rows = _rows(pg_url)
    assert [seed for seed, _ in rows] == list(range(1000, 1006))  # exactly the expected rows
    tables = [r["configurations"][0]["accuracy"] for r in results]
    assert tables[0] == tables[1] and tables[0]["n"] == 6  # the same table, wherever it was started


def test_two_evaluate_best_processes_share_the_selection_stage(pg_url, tmp_path):
    add_trials(pg_url, "tiny", [{"lr": 0.05, "value": 0.6, "epochs": 8}, {"lr": 0.1, "value": 0.7, "epochs": 8}])
    args = ("evaluate-best", "--study", "tiny", "--draws", "2", "--threads", "1", "--workers", "1")
    args += ("--finalists", "2", "--repeats", "2", "--no-race", "--storage", pg_url)

    outputs = [p.communicate(timeout=300) for p in (_start(tmp_path, *args), _start(tmp_path, *args))]

    selections = [json.loads(out)["selection"] for out, _ in outputs]
    shares = [s["n_trained"] for s in selections]
    assert sum(shares) == 4 and min(shares) >= 1  # 2 finalists x 2 repeats, each run trained once
    assert selections[0]["finalists"] == selections[1]["finalists"]  # one ranking, read from the stored runs


def test_a_process_killed_mid_draw_loses_nothing_and_the_other_finishes(pg_url, tmp_path):
    add_trials(pg_url, "tiny", [{"lr": 0.05, "value": 0.6, "epochs": 40}])

    code, out, err = _one_killed_mid_claim(pg_url, tmp_path, *EVALUATE, "--storage", pg_url)

    assert code == 0, err
    assert json.loads(out)["configurations"][0]["accuracy"]["n"] == 6
    assert [seed for seed, _ in _rows(pg_url)] == list(range(1000, 1006))  # nothing lost, nothing twice


REPRODUCE = ("reproduce", "--report", "002", "--draws", "6", "--epochs", "1", "--workers", "1")


def _preset_rows(url: str) -> list[tuple[str, int]]:
    return _stored(url, EvaluationRow.preset, EvaluationRow.draw_seed)


def _report_002_rows() -> list[tuple[str, int]]:
    from search.reproduction.presets import select_presets

    return sorted((p.name, seed) for p in select_presets(report="002") for seed in range(1000, 1006))


def test_two_reproduce_processes_share_a_reports_draws(pg_url, tmp_path):
    first = _start(tmp_path, *REPRODUCE, "--storage", pg_url)
    second = _start(tmp_path, *REPRODUCE, "--storage", pg_url)
    outputs = [process.communicate(timeout=600) for process in (first, second)]

    assert [p.returncode for p in (first, second)] == [0, 0], [err for _, err in outputs]
    shares = [json.loads(out)["n_trained"] for out, _ in outputs]
    assert sum(shares) == 30 and min(shares) >= 1  # 5 presets x 6 draws, each trained once, by either
    assert _preset_rows(pg_url) == _report_002_rows()


def test_a_reproduce_process_killed_mid_draw_loses_nothing(pg_url, tmp_path):
    code, out, err = _one_killed_mid_claim(pg_url, tmp_path, *REPRODUCE, "--storage", pg_url)

    assert code == 0, err
    assert _preset_rows(pg_url) == _report_002_rows()  # every draw of every row, once
    assert all(c["accuracy"]["n"] == 6 for c in json.loads(out)["configurations"])
