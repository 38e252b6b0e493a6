"""The anytime curve of the answer: the test accuracy of the configuration a pipeline names, against wall time.

Through a search, the configuration it names is its best-CV trial so far: a step each time a better one
finishes, held to the search's end. Each of those trials is retrained at the study's evaluation length on
the same `--draws` fresh draws (seeds 1000, 1001, ..., as `evaluate-best` uses) and scored on their test
pairs. The rows go to the study's own `evaluations` table, so a second call trains nothing and the draws
`evaluate-best` stored are reused. The last point of each curve is the pipeline's answer: the selection
stage's chosen trial on 25 draws, at the search's wall time plus `evaluate-best`'s (`--evaluate-minutes`,
as measured, in the order of the runs). Wall time compares only runs made on one CPU, in one sitting.

    python -m experiments.anytime_answer --out docs/anytime-answer.png --draws 10 \\
        "all four folds=sqlite:///old.db" "two of four folds=sqlite:///new.db" --evaluate-minutes 37.6 15.6
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import optuna
from matplotlib.figure import Figure
from optuna.trial import FrozenTrial, TrialState

from experiments.anytime import finished_in_order, parse_run
from experiments.output import print_result
from models.data.sizes import DEFAULT_N_PAIRS
from search.defaults import DEFAULT_DRAWS
from search.evaluation.evaluate import evaluate_candidates, trial_candidate
from search.evaluation.ranking import stored_selection
from search.run.speed import run_layout
from search.study.definition import stored_definition


@dataclass(frozen=True)
class Checkpoint:
    minutes: float  # wall time since the search's first trial started
    trial_number: int  # the best-CV complete trial finished by then
    cv: float  # its search value


def incumbents(trials: Sequence[FrozenTrial]) -> list[tuple[float, FrozenTrial]]:
    """(minutes, the best complete trial so far) each time the best changes; `trials` in the order they finished."""
    if not trials:
        return []
    start = min(t.datetime_start for t in trials)
    steps: list[tuple[float, FrozenTrial]] = []
    for trial in trials:
        if trial.state == TrialState.COMPLETE and (not steps or trial.value > steps[-1][1].value):
            steps.append(((trial.datetime_complete - start).total_seconds() / 60, trial))
    return steps


def checkpoints(steps: Sequence[tuple[float, FrozenTrial]], end_minutes: float) -> list[Checkpoint]:
    """The named configuration at each step, and still at the search's end."""
    marks = [Checkpoint(minutes, trial.number, trial.value) for minutes, trial in steps]
    return [*marks, Checkpoint(end_minutes, marks[-1].trial_number, marks[-1].cv)] if marks else []


def curve(storage: str, study_name: str, *, draws: int, evaluate_minutes: float | None) -> dict:
    """The checkpoints with their incumbents' test accuracy, and the pipeline's answer where one is stored."""
    study = optuna.load_study(study_name=study_name, storage=storage)
    definition = stored_definition(study.user_attrs)
    epochs = definition.evaluate_epochs if definition is not None else None
    trials = finished_in_order(study)
    end = (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds() / 60
    marks = checkpoints(incumbents(trials), end)
    by_number = {t.number: t for t in trials}
    selection = stored_selection(study)
    layout = run_layout(definition, None, None)

    def test(numbers: Sequence[int], n_draws: int) -> dict[int, dict]:
        summary = evaluate_candidates(
            [trial_candidate(by_number[n], epochs) for n in numbers],
            study_name=study_name,
            storage_url=storage,
            draws=n_draws,
            data_dir=None,
            workers=layout.workers,
            threads=layout.threads,
            n_pairs=DEFAULT_N_PAIRS,
            progress=None,
        )
        return {r.candidate.trial_number: r.accuracy.to_dict() for r in summary.configurations}

    tested = test(sorted({m.trial_number for m in marks}), draws)
    result = {
        "search_minutes": end,
        "epochs": epochs,
        "checkpoints": [{**dataclasses.asdict(m), "test": tested[m.trial_number]} for m in marks],
    }
    if selection is not None:
        chosen = selection.chosen.trial_number
        result["answer"] = {
            "trial_number": chosen,
            "minutes": None if evaluate_minutes is None else end + evaluate_minutes,
            "test": test([chosen], DEFAULT_DRAWS)[chosen],
        }
    return result


def plot(curves: dict[str, dict], out: Path) -> None:
    figure = Figure(figsize=(7, 4))
    axes = figure.subplots()
    for label, data in curves.items():
        marks = data["checkpoints"]
        x = [m["minutes"] for m in marks]
        y = [100 * m["test"]["mean"] for m in marks]
        low = [100 * (m["test"]["mean"] - (m["test"]["ci_low"] or m["test"]["mean"])) for m in marks]
        high = [100 * ((m["test"]["ci_high"] or m["test"]["mean"]) - m["test"]["mean"]) for m in marks]
        line = axes.errorbar(x, y, yerr=[low, high], drawstyle="steps-post", capsize=2, label=f"{label}: search")
        answer = data.get("answer")
        if answer is not None and answer["minutes"] is not None:
            mean = 100 * answer["test"]["mean"]
            error = [[mean - 100 * answer["test"]["ci_low"]], [100 * answer["test"]["ci_high"] - mean]]
            color = line.lines[0].get_color()
            axes.plot([x[-1], answer["minutes"]], [y[-1], mean], ":", color=color)
            axes.errorbar(
                [answer["minutes"]],
                [mean],
                yerr=error,
                fmt="*",
                markersize=11,
                capsize=3,
                color=color,
                label=f"{label}: answer after evaluate-best ({answer['minutes']:.1f} min, {mean:.2f} %)",
            )
    axes.set_xlabel("wall time (min): the search, then evaluate-best")
    axes.set_ylabel("test accuracy of the named configuration (%)")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=7)
    figure.tight_layout()
    figure.savefig(out, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="LABEL=STORAGE_URL or LABEL=STORAGE_URL#STUDY")
    parser.add_argument("--study", default="siamese")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--draws", type=int, default=10, help="test draws per checkpoint's configuration")
    parser.add_argument(
        "--evaluate-minutes", type=float, nargs="*", default=[], help="evaluate-best's wall time per run"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.evaluate_minutes and len(args.evaluate_minutes) != len(args.runs):
        sys.exit(f"--evaluate-minutes: {len(args.evaluate_minutes)} values for {len(args.runs)} runs")
    if not 2 <= args.draws <= 100:
        sys.exit(f"--draws {args.draws}: give 2-100 draws")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.basicConfig(level=logging.WARNING)
    curves = {}
    for i, run in enumerate(args.runs):
        label, storage, study_name = parse_run(run, args.study)
        minutes = args.evaluate_minutes[i] if args.evaluate_minutes else None
        curves[label] = curve(storage, study_name, draws=args.draws, evaluate_minutes=minutes)
    plot(curves, args.out)
    print_result({"out": str(args.out), **curves}, as_json=args.json)


if __name__ == "__main__":
    main()
