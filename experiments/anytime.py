"""The anytime curve of a search: the best cross-validated accuracy found so far against what it cost.

One line per study database (`LABEL=sqlite:///file.db`, or `LABEL=sqlite:///file.db#STUDY` for a study
not named by `--study`); the cost is wall time from the first trial's
start (`--x minutes`, comparable only for runs on one CPU) or the fold-epochs trained so far (`--x
fold-epochs`, the same on every CPU: a pruned trial counts the epochs of the folds it trained). The
configuration a pipeline answers with is chosen later, by the selection stage, from the finalists this
curve shows being found.

    python -m experiments.anytime --study siamese --out docs/anytime.png \
        "median, all folds=sqlite:///old.db" "successive halving, one screening fold=sqlite:///new.db"
"""

from __future__ import annotations

import argparse
from pathlib import Path

import optuna
from matplotlib.figure import Figure
from optuna.trial import TrialState

from search.study.record import TrialRecord


def fold_epochs(trial: optuna.trial.FrozenTrial, screen_folds: int | None) -> int:
    """The fold-epochs a finished trial trained: its screening folds for every reported epoch, the other
    folds for the full length once it completed (all folds for every epoch without screening)."""
    folds = len(TrialRecord.from_trial(trial).fold_accuracies or ()) or 1
    epochs = len(trial.intermediate_values)
    if screen_folds is None:
        return folds * epochs
    screened = min(screen_folds, folds) * epochs
    return screened + (folds - screen_folds) * epochs if trial.state == TrialState.COMPLETE else screened


def parse_run(run: str, default_study: str) -> tuple[str, str, str]:
    """(label, storage URL, study name) of a `LABEL=STORAGE_URL` or `LABEL=STORAGE_URL#STUDY` argument."""
    label, _, target = run.partition("=")
    storage, _, study_name = target.partition("#")
    return label, storage, study_name or default_study


def finished_in_order(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The finished trials in the order they finished: the order the search found them."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished() and t.datetime_complete]
    return sorted(trials, key=lambda t: t.datetime_complete)


def curve(storage: str, study_name: str, x: str) -> tuple[list[float], list[float]]:
    """(cost so far, best value so far) at each completed trial, in the order trials finished."""
    study = optuna.load_study(study_name=study_name, storage=storage)
    screen = (study.user_attrs.get("definition") or {}).get("screen_folds")
    trials = finished_in_order(study)
    start = min(t.datetime_start for t in trials)
    cost, spent, best = [], 0, []
    for trial in trials:
        spent += fold_epochs(trial, screen)
        if trial.state != TrialState.COMPLETE:
            continue
        best.append(100 * (trial.value if not best else max(best[-1] / 100, trial.value)))
        cost.append(spent if x == "fold-epochs" else (trial.datetime_complete - start).total_seconds() / 60)
    return cost, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="LABEL=STORAGE_URL or LABEL=STORAGE_URL#STUDY")
    parser.add_argument("--study", default="siamese")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--x", choices=("minutes", "fold-epochs"), default="fold-epochs")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    figure = Figure(figsize=(7, 4))
    axes = figure.subplots()
    for run in args.runs:
        label, storage, study_name = parse_run(run, args.study)
        cost, best = curve(storage, study_name, args.x)
        unit = "min" if args.x == "minutes" else "fold-epochs"
        axes.step(cost, best, where="post", label=f"{label} ({cost[-1]:,.0f} {unit}, best {best[-1]:.1f} %)")
        axes.plot(cost[-1:], best[-1:], "o", color=axes.lines[-1].get_color())
    axes.set_xlabel("wall time of the search (min)" if args.x == "minutes" else "fold-epochs trained so far")
    axes.set_ylabel("best CV accuracy so far (%)")
    axes.set_ylim(bottom=min(97.5, *(line.get_ydata().min() for line in axes.lines)) - 0.5)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(args.out, dpi=120)
    print(args.out)


if __name__ == "__main__":
    main()
