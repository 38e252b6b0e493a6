"""experiments/replay_race.py: a racing rule replayed on stored selection runs, without training."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from evaluation_helpers import add_trials

from experiments.replay_race import race

REPO = Path(__file__).resolve().parents[3]
SEEDS = (500_000, 500_001, 500_002)
# Three finalists by search CV, their four folds per repeat at 20 epochs: 0 leads, 1 ties with it fold for
# fold (a point up on one fold, a point down on another), 2 is behind on every fold.
FOLDS = {
    0: [0.990, 0.986, 0.988, 0.992],
    1: [0.986, 0.990, 0.988, 0.992],
    2: [0.970, 0.968, 0.972, 0.966],
}


def _runs() -> dict[tuple[int, int], list[float | None]]:
    return {(number, seed): list(folds) for number, folds in FOLDS.items() for seed in SEEDS}


def test_a_clearly_worse_finalist_drops_after_its_first_repeat_and_a_tie_does_not() -> None:
    for rule in ("paired", "pooled"):
        raced = race(_runs(), [0, 1, 2], SEEDS, rule=rule, chunk=4, significance=0.05, floor=2)
        assert raced["left"] == [0, 1] and raced["chosen"] == raced["chosen_unraced"] == 0, rule
        assert raced["fold_models"] == 3 * 4 + 2 * 4 + 2 * 4 and raced["of"] == 36  # 2 dropped after repeat 1


def test_decisions_every_fold_drop_sooner() -> None:
    raced = race(_runs(), [0, 1, 2], SEEDS, rule="pooled", chunk=1, significance=0.05, floor=2)
    assert raced["left"] == [0, 1] and raced["fold_models"] < 3 * 4 + 2 * 8


def test_the_module_reads_a_stored_study(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = add_trials(
        url, "tiny", [{"lr": 0.05, "value": 0.99}, {"lr": 0.1, "value": 0.98}, {"lr": 0.2, "value": 0.97}]
    )
    for (number, seed), folds in _runs().items():
        study.set_user_attr(f"selection_run/trial {number}/draw {seed}/20 epochs/4 folds/1000 pairs/embedded", folds)
    study.set_user_attr(f"selection_run/trial 2/draw {SEEDS[0]}/80 epochs/4 folds/1000 pairs/embedded", FOLDS[0])

    def replay(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "experiments.replay_race", "--storage", url, "--study", "tiny", *args]
        return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)

    done = replay("--epochs", "20", "--repeats", "2", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["finalists"] == [0, 1, 2] and result["repeats"] == 2  # by search CV; the 80-epoch run ignored
    assert result["left"] == [0, 1] and result["fold_models"] == 3 * 4 + 2 * 4 and result["chosen"] == 0
    missing = replay("--epochs", "40")
    assert missing.returncode == 1 and missing.stderr.strip().splitlines() == [
        "--epochs 40: study 'tiny' stores no selection run at that length"
    ]
