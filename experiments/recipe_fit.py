"""How close can any training recipe bring one report's table? (docs/reproduction.md, the gaps)

Where a report leaves its recipe unstated (report 004 names no optimizer, learning rate, batch size,
epochs or normalisation), one recipe at a time tried by hand can only ever cover a few points of that
space. This benchmark searches it: an Optuna TPE study whose trial is one recipe, applied to every row
of the report (`search.reproduction.presets.vary`, the same variants `search reproduce --vary` trains), trained on
`--draws` fresh draws through `search.evaluation.evaluate.reproduce`, and scored by the sum over the rows of
|reproduced - published| in points, on the report's own figure (best over epochs where the report
takes the maximum over epochs). Lower is closer. Every draw is stored in the evaluations table of
`--storage`, and the study beside it, so a rerun with more trials continues where the last stopped.

The space: optimizer (adam, sgd with momentum 0 or 0.9), learning rate (log-uniform, per optimizer;
two significant digits), batch size (25-1,000), epochs (10-50) and normalisation (the course's scalar
statistics, or the raw 0..255 pixels). It prints one line per trial, then the best recipe's row gaps.
`--trials 0` prints a stored study without training. `--holdout R` then trains the best recipe on R draws
the search never saw (the seeds after its own) and prints each row there, gap and gap in standard errors
with the report's shared set counted: a recipe chosen on the published figures is judged on fresh draws. `--rows PATTERN` fits only the rows whose preset name PATTERN matches from its start (a regular
expression: `seed004/fc`, one architecture's rows; `seed004/deep(?!-sigmoid)`, the Deep ReLU rows), for a
report whose recipe may have differed between its architectures. `--min-epochs`/`--max-epochs` bound the
epochs, `--pairs` the pairs per draw (the tests run it small; the figures use the defaults).

    python -m experiments.recipe_fit --report 004 --trials 40 --draws 3 [--rows PATTERN] [--data-dir DIR]
        [--holdout R] [--storage URL] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time
from pathlib import Path
from typing import Any

import optuna

from benchmarks.reference import machine_info, machine_line
from models.data.sizes import DEFAULT_N_PAIRS
from search.evaluation.evaluate import DRAW_SEED_BASE
from search.evaluation.results import ConfigurationResult
from search.evaluation.stats import summarize
from search.reporting.published import counted_gap, like_the_report, per_draw_like_the_report
from search.reproduction.presets import PRESETS
from search.reproduction.reproduce import reproduce
from search.variants import base_name

BATCH_SIZES = (25, 50, 100, 250, 1000)  # batch 10, ten times slower, was the worst of the hand-tried grid
LR_RANGES = {"adam": (1e-4, 1e-2), "sgd": (1e-3, 0.3)}
CHANCE = 0.5  # the score of a row whose every draw diverged


def sample_recipe(trial: optuna.Trial, max_epochs: int = 50, min_epochs: int = 10) -> dict[str, Any]:
    """One point of the unstated-recipe space, as `vary` changes (field -> value)."""
    optimizer = trial.suggest_categorical("optimizer", ["adam", "sgd"])
    low, high = LR_RANGES[optimizer]
    lr = float(f"{trial.suggest_float(f'lr_{optimizer}', low, high, log=True):.2g}")  # short variant names
    recipe: dict[str, Any] = {"optimizer": optimizer, "lr": lr}
    if optimizer == "sgd":
        recipe["momentum"] = trial.suggest_categorical("momentum", [0.0, 0.9])
    recipe["batch_size"] = trial.suggest_categorical("batch_size", list(BATCH_SIZES))
    recipe["epochs"] = trial.suggest_int("epochs", min_epochs, max_epochs, step=5)
    recipe["normalisation"] = trial.suggest_categorical("normalisation", ["scalar", "none"])
    return recipe


def row_gap(result: ConfigurationResult) -> float:
    """|ours - published| in points, on the figure the report printed (its maximum over epochs, or final)."""
    preset = PRESETS[base_name(result.candidate.label)]
    summary = like_the_report(preset, result)
    ours = summary.mean if summary is not None and summary.n > 0 else CHANCE
    return 100 * abs(ours - preset.published_mean)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", default="004", help="the report whose rows are fitted (000-004)")
    parser.add_argument("--trials", type=int, default=40, help="recipes tried (in this call)")
    parser.add_argument("--draws", type=int, default=3, help="fresh draws per row and recipe")
    parser.add_argument("--storage", default="sqlite:///recipe_fit.db", help="the evaluations and the study")
    parser.add_argument(
        "--rows", default="", help="only the rows whose preset name this regular expression matches from its start"
    )
    parser.add_argument("--max-epochs", type=int, default=50, help="the space's longest training")
    parser.add_argument("--min-epochs", type=int, default=10, help="the space's shortest training")
    parser.add_argument(
        "--pairs", type=int, default=DEFAULT_N_PAIRS, help="training (and test) pairs per draw, as the reports drew"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="the four MNIST IDX files (default: embedded digits)"
    )
    parser.add_argument(
        "--holdout", type=int, default=0, help="then train the best recipe on this many draws the search never saw"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="the TPE sampler's seed")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    print(machine_line(), flush=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = [p.name for p in PRESETS.values() if p.report == args.report and p.published_mean is not None]
    if not rows:
        raise SystemExit(f"--report {args.report}: no report has that name; the reports are 000-004.")
    try:
        pattern = re.compile(args.rows)
    except re.error as error:
        raise SystemExit(f"--rows {args.rows}: not a regular expression ({error}).") from None
    chosen = [name for name in rows if pattern.match(name)]
    if not chosen:
        raise SystemExit(f"--rows {args.rows}: no row of report {args.report} matches; its rows: {', '.join(rows)}.")
    rows = chosen
    study = optuna.create_study(
        study_name=f"recipe-fit-{args.report}-{args.draws}-draws-{args.max_epochs}-epochs"
        + (f"-from-{args.min_epochs}" if args.min_epochs != 10 else "")
        + (f"-{args.pairs}-pairs" if args.pairs != DEFAULT_N_PAIRS else "")
        + (f"-rows-{args.rows}" if args.rows else "")
        + ("" if args.data_dir is None else f"-{args.data_dir.resolve()}"),
        storage=args.storage,
        sampler=optuna.samplers.TPESampler(seed=args.seed),
        load_if_exists=True,
    )
    began = time.perf_counter()

    def objective(trial: optuna.Trial) -> float:
        recipe = sample_recipe(trial, args.max_epochs, args.min_epochs)
        summary = reproduce(
            rows,
            storage_url=args.storage,
            draws=args.draws,
            n_pairs=args.pairs,
            data_dir=args.data_dir,
            workers=args.workers,
            changes=recipe,
        )
        gaps = {base_name(r.candidate.label): round(row_gap(r), 2) for r in summary.configurations}
        trial.set_user_attr("recipe", recipe)
        trial.set_user_attr("gaps", gaps)
        total = sum(gaps.values())
        print(f"trial {trial.number}: {_describe(recipe)}: sum of |gaps| {total:.1f}", flush=True)
        return total

    study.optimize(objective, n_trials=args.trials)
    complete = [t for t in study.trials if t.value is not None and not math.isnan(t.value)]
    best = min(complete, key=lambda t: t.value) if complete else None  # --trials 0 on a new study: none
    if best is None:
        print(f"no recipe tried yet for rows {', '.join(rows)}")
    else:
        print(f"best of {len(complete)} recipes: trial {best.number}, {_describe(best.user_attrs['recipe'])}")
        for name, gap in best.user_attrs["gaps"].items():
            print(f"  {name}: |gap| {gap:.2f}")
        print(f"sum of |gaps| {best.value:.1f} points; {time.perf_counter() - began:.0f} s")
    held = held_out(rows, best.user_attrs["recipe"], args) if best is not None and args.holdout > 0 else None
    if args.json:
        print(
            json.dumps(
                {
                    "report": args.report,
                    "rows": rows,
                    "draws": args.draws,
                    "trials": [
                        {
                            "number": t.number,
                            "sum": t.value,
                            "recipe": t.user_attrs["recipe"],
                            "gaps": t.user_attrs["gaps"],
                        }
                        for t in complete
                    ],
                    "best": None if best is None else best.number,
                    "holdout": held,
                    "machine_info": machine_info(),
                }
            )
        )


def held_out(rows: list[str], recipe: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The recipe on `args.holdout` draws after the search's own: each row's figure there, its gap and its
    gap in standard errors (the report's shared set and its runs counted), printed and returned."""
    summary = reproduce(
        rows,
        storage_url=args.storage,
        draws=args.draws + args.holdout,
        n_pairs=args.pairs,
        data_dir=args.data_dir,
        workers=args.workers,
        changes=recipe,
    )
    seeds = list(range(DRAW_SEED_BASE + args.draws, DRAW_SEED_BASE + args.draws + args.holdout))
    print(f"held out: the best recipe on draw seeds {seeds[0]}-{seeds[-1]}, which the search never saw")
    report: dict[str, Any] = {"seeds": seeds, "rows": {}}
    for result in summary.configurations:
        preset = PRESETS[base_name(result.candidate.label)]
        per_draw = per_draw_like_the_report(preset, result)
        ours = summarize([per_draw[seed] for seed in seeds if seed in per_draw])
        gap, z = 100 * (ours.mean - preset.published_mean), counted_gap(preset, ours)
        row = {"mean": ours.mean, "std": ours.std, "n": ours.n, "gap": gap, "z": z}
        report["rows"][preset.name] = {key: None if math.isnan(value) else value for key, value in row.items()}
        print(
            f"  {preset.name}: published {100 * preset.published_mean:.2f}, ours {100 * ours.mean:.2f} ± "
            f"{100 * ours.std:.2f} ({ours.n} draws), gap {gap:+.2f}, {z:+.1f} s.e. (set counted)"
        )
    report["sum"] = sum(abs(row["gap"]) for row in report["rows"].values() if row["gap"] is not None)
    print(f"sum of |gaps| on the held-out draws {report['sum']:.1f} points")
    return report


def _describe(recipe: dict[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in recipe.items())


if __name__ == "__main__":
    main()
