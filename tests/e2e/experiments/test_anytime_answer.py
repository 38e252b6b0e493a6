"""experiments/anytime_answer.py: the test accuracy of the configuration a search names, against its wall time."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path

import optuna
import sqlalchemy
from evaluation_helpers import add_trials

from experiments.anytime_answer import checkpoints, incumbents
from search.evaluation.ranking import SELECTION_ATTR

REPO = Path(__file__).resolve().parents[3]
START = datetime.datetime(2026, 1, 1, 12, 0, 0)


def _trial(number: int, value: float | None, finished_minute: float) -> optuna.trial.FrozenTrial:
    state = optuna.trial.TrialState.COMPLETE if value is not None else optuna.trial.TrialState.PRUNED
    trial = optuna.trial.create_trial(state=state, value=value)
    trial.number = number
    trial.datetime_start = START
    trial.datetime_complete = START + datetime.timedelta(minutes=finished_minute)
    return trial


def test_the_named_configuration_steps_to_each_better_trial_and_holds_to_the_end() -> None:
    # Trial 0 at minute 1, a worse one, a pruned one, trial 3 better at minute 4; trial 4 ties it (not better).
    trials = [_trial(0, 0.90, 1), _trial(1, 0.85, 2), _trial(2, None, 3), _trial(3, 0.95, 4), _trial(4, 0.95, 7)]
    steps = incumbents(trials)
    assert [(minutes, trial.number) for minutes, trial in steps] == [(1, 0), (4, 3)]
    marks = checkpoints(steps, end_minutes=8)
    assert [(m.minutes, m.trial_number, m.cv) for m in marks] == [(1, 0, 0.90), (4, 3, 0.95), (8, 3, 0.95)]
    assert incumbents([]) == [] and checkpoints([], end_minutes=8) == []


def test_the_module_tests_each_named_configuration_once_and_the_pipelines_answer(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = add_trials(
        url, "tiny", [{"lr": 0.05, "value": 0.90}, {"lr": 0.1, "value": 0.95}, {"lr": 0.2, "value": 0.93}]
    )
    study.set_user_attr(
        SELECTION_ATTR,
        {
            "finalists": [{"trial_number": 2, "search_value": 0.93, "fold_accuracies": [0.9]}],
            "epochs": None,
            "n_folds": 1,
            "draw_seeds": [1],
        },
    )
    out = tmp_path / "anytime.png"
    command = [sys.executable, "-m", "experiments.anytime_answer", f"tiny run=sqlite:///{tmp_path / 'study.db'}#tiny"]
    command += ["--out", str(out), "--draws", "2", "--evaluate-minutes", "1.5", "--json"]

    def rows() -> int:
        with sqlalchemy.create_engine(url).connect() as connection:
            return connection.execute(sqlalchemy.text("SELECT count(*) FROM evaluations")).scalar_one()

    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)["tiny run"]
    marks = run["checkpoints"]
    assert [m["trial_number"] for m in marks] == [0, 1, 1]  # 1 named from its end to the search's; 2 never led
    assert all(m["test"]["n"] == 2 and 0 < m["test"]["mean"] <= 1 for m in marks)
    answer = run["answer"]
    assert answer["trial_number"] == 2 and answer["test"]["n"] == 25
    assert answer["minutes"] == run["search_minutes"] + 1.5
    assert out.read_bytes().startswith(b"\x89PNG")
    stored = rows()
    assert stored == 2 * 2 + 25
    again = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert (
        again.returncode == 0 and json.loads(again.stdout)["tiny run"] == run and rows() == stored
    )  # read, not retrained

    wrong = subprocess.run(
        [*command[:4], "--out", str(out), "--evaluate-minutes", "1", "2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert wrong.returncode == 1 and wrong.stderr.strip() == "--evaluate-minutes: 2 values for 1 runs"
