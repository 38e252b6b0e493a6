"""experiments/recipe_fit.py: a recipe search over one report's rows, stored, resumable, scored on the report's figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from search.evaluation.stats import summarize
from search.reporting.published import counted_gap, load_results
from search.reproduction.presets import PRESETS
from search.variants import base_name

REPO = Path(__file__).resolve().parents[3]
MODULE = ("-m", "experiments.recipe_fit")  # run from the repository's root, as its docstring says
EPOCHS = 3  # the mechanics at a small fidelity: the figures are the benchmark's own run (docs/reproduction.md)


def _run(storage: str, trials: int, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *MODULE, "--report", "004", "--trials", str(trials), "--draws", "1"]
        + ["--min-epochs", str(EPOCHS), "--max-epochs", str(EPOCHS), "--pairs", "200"]
        + ["--storage", storage, "--json", *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _fit(storage: str, trials: int, *extra: str) -> dict:
    done = _run(storage, trials, *extra)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_a_recipe_search_scores_every_row_on_its_figure_and_continues_where_it_stopped(tmp_path):
    storage = f"sqlite:///{tmp_path / 'fit.db'}"
    rows = sorted(name for name, p in PRESETS.items() if p.report == "004")

    first = _fit(storage, 1)

    (trial,) = first["trials"]
    assert sorted(trial["gaps"]) == rows and trial["recipe"]["epochs"] == EPOCHS
    assert trial["sum"] == pytest.approx(sum(trial["gaps"].values()), abs=0.01)
    # The gaps are on the report's own figure, the maximum over epochs: ours, best over epochs, as stored.
    (stored,) = load_results(storage)
    best = {base_name(r.candidate.label): r.best_epoch_accuracy.mean for r in stored.configurations}
    for name, gap in trial["gaps"].items():
        assert gap == pytest.approx(100 * abs(best[name] - PRESETS[name].published_mean), abs=0.006)

    again = _fit(storage, 1)  # the same study: one more recipe beside the first

    assert [t["number"] for t in again["trials"]] == [0, 1] and again["trials"][0] == trial
    assert again["best"] == min(again["trials"], key=lambda t: t["sum"])["number"]


def test_a_recipe_search_can_fit_one_architectures_rows_alone(tmp_path):
    """--rows: the fully connected rows of report 004 in a study of their own, beside the whole report's."""
    storage = f"sqlite:///{tmp_path / 'fit.db'}"
    fc = sorted(name for name, p in PRESETS.items() if p.report == "004" and name.startswith("seed004/fc"))
    assert len(fc) == 4

    fitted = _fit(storage, 1, "--rows", "seed004/fc")

    assert sorted(fitted["rows"]) == fc and sorted(fitted["trials"][0]["gaps"]) == fc
    (stored,) = load_results(storage)
    assert sorted(base_name(r.candidate.label) for r in stored.configurations) == fc
    wrong = _run(storage, 1, "--rows", "seed004/resnet")
    assert wrong.returncode != 0 and wrong.stderr.strip().splitlines() == [
        f"--rows seed004/resnet: no row of report 004 matches; its rows: {', '.join(p for p in PRESETS if p.startswith('seed004/'))}."
    ]
    broken = _run(storage, 1, "--rows", "seed004/(deep")
    assert broken.returncode != 0 and len(broken.stderr.strip().splitlines()) == 1
    assert broken.stderr.startswith(
        "--rows seed004/(deep: not a regular expression (missing ), unterminated subpattern"
    )


def test_the_best_recipe_is_judged_on_draws_the_search_never_saw(tmp_path):
    """--holdout: the search scores recipes on the first draw (seed 1000); the best is then trained on the
    next two (1001, 1002) and each row's figure there, its gap and its counted gap come from those alone."""
    storage = f"sqlite:///{tmp_path / 'fit.db'}"

    fitted = _fit(storage, 1, "--rows", "seed004/fc-ws", "--holdout", "2")

    held = fitted["holdout"]
    assert held["seeds"] == [1001, 1002] and list(held["rows"]) == ["seed004/fc-ws"]
    (stored,) = load_results(storage)
    (result,) = stored.configurations
    assert sorted(result.best_epoch_accuracies) == [1000, 1001, 1002]  # the searched draw and the two held out
    preset = PRESETS["seed004/fc-ws"]
    fresh = summarize([result.best_epoch_accuracies[1001], result.best_epoch_accuracies[1002]])
    row = held["rows"]["seed004/fc-ws"]
    assert row["n"] == 2 and row["mean"] == pytest.approx(fresh.mean)
    assert row["gap"] == pytest.approx(100 * (fresh.mean - preset.published_mean))
    assert row["z"] == pytest.approx(counted_gap(preset, fresh))
    assert held["sum"] == pytest.approx(abs(row["gap"]))


def test_a_recipe_search_rows_pattern_can_leave_out_an_architectures_variants():
    """The Deep ReLU rows alone: a prefix cannot say it, as every sigmoid row starts with `seed004/deep-`."""
    done = subprocess.run(
        [sys.executable, *MODULE, "--report", "004", "--trials", "0", "--rows", "seed004/deep(?!-sigmoid)"]
        + ["--storage", "sqlite:///:memory:", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(json.loads(done.stdout.splitlines()[-1])["rows"]) == [
        "seed004/deep",
        "seed004/deep-al",
        "seed004/deep-al-ws",
        "seed004/deep-ws",
    ]
