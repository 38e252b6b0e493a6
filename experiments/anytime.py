"""The anytime curve of a search: the best cross-validated accuracy found so far against wall time.

One line per study database (`LABEL=sqlite:///file.db`), time counted from its first trial's start; a
marker at each run's end. The configuration a pipeline answers with is chosen later, by the selection
stage, from the finalists this curve shows being found.

    python -m experiments.anytime --study siamese --out docs/anytime.png \
        "median, all folds=sqlite:///old.db" "successive halving, one screening fold=sqlite:///new.db"
"""

from __future__ import annotations

import argparse
from pathlib import Path

import optuna
from matplotlib.figure import Figure
from optuna.trial import TrialState


def curve(storage: str, study_name: str) -> tuple[list[float], list[float]]:
    """(minutes since the first trial started, best value so far) at each completed trial."""
    trials = optuna.load_study(study_name=study_name, storage=storage).get_trials(deepcopy=False)
    start = min(t.datetime_start for t in trials if t.datetime_start is not None)
    done = sorted(
        (t for t in trials if t.state == TrialState.COMPLETE and t.datetime_complete is not None),
        key=lambda t: t.datetime_complete,
    )
    minutes, best = [], []
    for trial in done:
        value = trial.value if not best else max(best[-1], trial.value)
        minutes.append((trial.datetime_complete - start).total_seconds() / 60)
        best.append(100 * value)
    return minutes, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="LABEL=STORAGE_URL")
    parser.add_argument("--study", default="siamese")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    figure = Figure(figsize=(7, 4))
    axes = figure.subplots()
    for run in args.runs:
        label, _, storage = run.partition("=")
        minutes, best = curve(storage, args.study)
        axes.step(minutes, best, where="post", label=f"{label} ({minutes[-1]:.1f} min)")
        axes.plot(minutes[-1:], best[-1:], "o", color=axes.lines[-1].get_color())
    axes.set_xlabel("wall time of the search (min)")
    axes.set_ylabel("best CV accuracy so far (%)")
    axes.set_ylim(bottom=97.0)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(args.out, dpi=120)
    print(args.out)


if __name__ == "__main__":
    main()
