"""How much does the default run's answer depend on luck? (docs/results.md)

Runs what a user runs, --runs times with different sampler seeds, each in its own SQLite file:

    search run --study siamese --trials T --seed S
    search evaluate-best --study siamese --draws 25          (selection stage, then 25 fresh draws)
    search evaluate-best --study siamese --draws 25 --no-select   (the search's own CV best, for comparison)

Every run's answer is scored on the same 25 draws. It prints one row per run (the chosen trial, its
search CV, its selection CV, its test accuracy with a 95 % CI, and the CV-best trial's test accuracy),
then the spread across runs and the targets: each run's chosen configuration >= 98.9 %, their mean
>= 99.0 %.

    python -m benchmarks.bench_answer [--runs 3] [--first-seed 0] [--trials 200] [--study siamese] [--draws 25]
        [--finalists 10] [--repeats 3] [--workers 2] [--epochs E] [--data-dir DIR] [--dir DIR] [--json]

--dir keeps the study files (default a temporary directory). A run whose file already holds trials is
topped up to --trials finished trials, not restarted, as a user resumes a run (`search run` adds the
missing ones; the selection stage and the draws reuse what is stored), so the measurement can be
stopped and continued, and each run is finished before the next one starts. --first-seed lets one
sitting measure a later run alone (`--runs 1 --first-seed 2`) when the earlier runs' files are gone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState
from scipy import stats

from benchmarks.reference import machine_info, machine_line
from search.defaults import DEFAULT_FINALISTS
from search.study.loader import load_definition

SEARCH = Path(sys.executable).with_name("search")
TARGET_EACH, TARGET_MEAN = 0.989, 0.990


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seed of the first run; the runs take seeds first .. first+runs-1"
    )
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--study", default="siamese")
    parser.add_argument("--draws", type=int, default=25)
    parser.add_argument("--finalists", type=int, default=DEFAULT_FINALISTS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None, help="override the search's epochs (quick runs)")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where the study files go (default: a temporary directory)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    print(machine_line(), flush=True)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        where = args.dir or Path(scratch)
        where.mkdir(parents=True, exist_ok=True)
        rows = [one_run(args, seed, where) for seed in range(args.first_seed, args.first_seed + args.runs)]
    means = [r["chosen"]["accuracy"]["mean"] for r in rows]
    summary = {
        "study": args.study,
        "trials": args.trials,
        "draws": args.draws,
        "finalists": args.finalists,
        "repeats": args.repeats,
        "runs": rows,
        "mean_of_runs": statistics.fmean(means),
        "spread": max(means) - min(means),
        "each_at_least_98_9": all(m >= TARGET_EACH for m in means),
        "mean_at_least_99_0": statistics.fmean(means) >= TARGET_MEAN,
        "wall_seconds": round(time.perf_counter() - began, 1),
        "machine": machine_line().removeprefix("machine: "),
        "machine_info": machine_info(),
    }
    print_table(summary)
    if args.json:
        print(json.dumps(summary))


def one_run(args: argparse.Namespace, seed: int, where: Path) -> dict:
    storage = f"sqlite:///{where / f'run{seed}.db'}"
    common = ["--study", args.study, "--storage", storage]
    data = ["--data-dir", str(args.data_dir)] if args.data_dir else []
    run_began = time.perf_counter()
    missing = args.trials - finished_trials(where / f"run{seed}.db", args.study)
    if missing > 0:
        run = [str(SEARCH), "run", *common, "--trials", str(missing), "--seed", str(seed), *data]
        run += ["--epochs", str(args.epochs)] if args.epochs else []
        subprocess.run(run, check=True)
    search_seconds = time.perf_counter() - run_began
    evaluate = [
        str(SEARCH),
        "evaluate-best",
        *common,
        "--draws",
        str(args.draws),
        "--workers",
        str(args.workers),
        *data,
        "--json",
    ]
    chosen = _json([*evaluate, "--finalists", str(args.finalists), "--repeats", str(args.repeats)])
    cv_best = _json([*evaluate, "--no-select"])
    (answer,) = chosen["configurations"]
    (plain,) = cv_best["configurations"]
    selected = chosen["selection"]["finalists"][0]
    row = {
        "seed": seed,
        "search_minutes": round(search_seconds / 60, 1),
        "minutes": round((time.perf_counter() - run_began) / 60, 1),
        "chosen": {**answer, "selection_mean": selected["mean"], "selection_std": selected["std"]},
        "cv_best": plain,
        "selection": chosen["selection"],
    }
    print(f"run {seed}: {_line(row)}", flush=True)
    return row


def finished_trials(path: Path, study: str) -> int:
    """Complete and pruned trials already in the run's file (0 when it holds no such study yet)."""
    if not path.exists():
        return 0
    try:
        loaded = optuna.load_study(study_name=load_definition(study).name, storage=f"sqlite:///{path}")
    except KeyError:
        return 0
    return len(loaded.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def _json(command: list[str]) -> dict:
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)  # its progress shows on stderr
    return json.loads(done.stdout)


def _pct(value: float) -> str:
    return f"{100 * value:.2f}"


def _line(row: dict) -> str:
    a, plain = row["chosen"], row["cv_best"]
    acc = a["accuracy"]
    return (
        f"trial {a['trial_number']} (search CV {_pct(a['trial_value'])}, selection CV {_pct(row['chosen']['selection_mean'])}): "
        f"test {_pct(acc['mean'])} ± {_pct(acc['std'])} % [{_pct(acc['ci_low'])}, {_pct(acc['ci_high'])}]; "
        f"CV best trial {plain['trial_number']}: {_pct(plain['accuracy']['mean'])} ± {_pct(plain['accuracy']['std'])} %; "
        f"{a['description']}; {row['minutes']} min"
    )


def print_table(summary: dict) -> None:
    print(
        "\n| run | chosen (selection stage) | search CV | selection CV | test accuracy (25 draws) | 95 % CI | CV-best trial's test | minutes |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in summary["runs"]:
        a, plain = row["chosen"], row["cv_best"]
        acc = a["accuracy"]
        print(
            f"| {row['seed']} | trial {a['trial_number']}: {a['description']} | {_pct(a['trial_value'])} | "
            f"{_pct(a['selection_mean'])} | {_pct(acc['mean'])} ± {_pct(acc['std'])} | [{_pct(acc['ci_low'])}, {_pct(acc['ci_high'])}] | "
            f"trial {plain['trial_number']}: {_pct(plain['accuracy']['mean'])} | {row['minutes']} |"
        )
    means = [r["chosen"]["accuracy"]["mean"] for r in summary["runs"]]
    gains = [r["chosen"]["accuracy"]["mean"] - r["cv_best"]["accuracy"]["mean"] for r in summary["runs"]]
    print(
        f"\nmean of the runs' answers {_pct(summary['mean_of_runs'])} % (target >= {_pct(TARGET_MEAN)}: "
        f"{'met' if summary['mean_at_least_99_0'] else 'not met'}); spread {_pct(summary['spread'])} points; "
        f"lowest {_pct(min(means))} % (target each >= {_pct(TARGET_EACH)}: {'met' if summary['each_at_least_98_9'] else 'not met'}); "
        f"selection stage against the CV best: {' '.join(f'{100 * g:+.2f}' for g in gains)} points"
        + (f" (t-test over runs p={stats.ttest_1samp(gains, 0.0).pvalue:.2f})" if len(gains) > 2 else "")
        + f"; {summary['wall_seconds'] / 60:.0f} min on {summary['machine']}"
    )


if __name__ == "__main__":
    main()
