"""Speed, storage overhead and memory of the search service (the targets below, reported in the README's Results).

Runs a study through `search.run.runner.run_study`, each run in a fresh interpreter (so one run's memory
and thread settings never leak into the next) and each on a fresh study:

- every worker layout of --layouts (workers x torch threads): a --trials study in its own temporary
  SQLite file; wall time, trials per minute, complete/pruned/failed, best mean CV accuracy, time
  outside training, and each worker's peak RSS and its growth from the worker's 10th trial to its last;
- every backend of --storage-check: a shorter --overhead-trials study in the default layout (the one
  `search run` measures fastest and uses without --workers/--threads: models/training/layout.py);
  the storage overhead per trial = trial duration (start to complete) minus the time spent training
  (the objective's `train_seconds` less its `report_seconds`, the pruner's storage reads and writes),
  as a share of the trial duration; the gap between a worker's trials is shown beside it. While the
  sampler is in its startup trials (20 for siamese) it samples at random, so up to there the overhead
  is storage alone; a layout run's time outside training also holds the TPE sampler's time.

Targets: 200 trials of `siamese` in <= 20 min at >= 98 % mean CV accuracy in the default layout (the
fastest); storage overhead < 2 % of trial time; peak RSS <= 600 MiB per worker and flat (< 5 % growth).

    python -m benchmarks.bench_search [--study siamese] [--trials 200] [--layouts 2x1,1x2 (default: all that fill the cores)]
        [--storage-check sqlite,postgresql] [--pg-url URL] [--overhead-trials 20] [--epochs E]
        [--seed S] [--data-dir DIR] [--json] [--out FILE] [--against REF [--rounds R]]

Every run prints the machine (CPU model, avx2/avx512f/avx512_bf16/amx, torch) and each layout's trial rate
as a ratio against the default layout's, measured in the same run. `--against REF` runs the layout part
(storage checks off) at commit REF too, in a temporary git worktree, in turns with this commit's for R
rounds (default 1), and prints this commit's trials per minute against REF's, layout by layout
(benchmarks/reference.py); its JSON: ref, rounds, machine_info, ratios {layout: this/REF}, this, against.

PostgreSQL is measured on --pg-url (default $SEARCH_TEST_PG_URL) under a unique study name that is
deleted afterwards; without a URL it is skipped with a note. `--layouts none` or `--storage-check none`
skips a part. A layout run of fewer than 200 trials projects the 200-trial time from its trial rate.

With --json the last line is one JSON object (--out FILE writes it there too):
  study, epochs, n_folds, n_pairs, seed, trials, overhead_trials, default_layout, fastest_layout, machine, machine_info,
  layouts: [{layout, vs_default (its trials/min over the default layout's), workers, threads, trials, n_complete, n_pruned, n_failed, interrupted, wall_seconds,
             trials_per_minute, minutes_for_200, minutes_projected, best_value, overhead: COSTS,
             workers_memory: [MEMORY], peak_rss_mib, max_rss_growth_pct, storage}],
  storage: [{backend, storage, layout, trials, n_complete, n_pruned, n_failed, wall_seconds, overhead: COSTS}],
  checks: [{name, target, value, unit, passed, note}],  notes: [str]
  COSTS = {n_trials, trial_seconds_mean, training_seconds_mean, report_seconds_mean, overhead_seconds_mean,
           overhead_pct, gap_seconds_mean, overhead_with_gaps_pct}
  MEMORY = {pid, n_trials, peak_rss_mib, reference_trial, reference_rss_mib, rss_growth_mib, rss_growth_pct,
            retained_reference_mib, retained_last_mib, retained_growth_pct}
  (peak: the running maximum RSS after each trial, which rises whenever a trial trains a bigger model
  than any before; retained: the RSS when a trial starts, i.e. what earlier trials left behind. The
  flatness target is checked on the retained memory: growth there is a leak, growth of the peak is not.)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import multiprocessing as mp
import os
import queue
import secrets
import signal
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from benchmarks.reference import against, machine_info, machine_line, ratio
from models.training.layout import layout_candidates, usable_cores
from search.errors import SearchError
from search.run.runner import RunProgress, run_study
from search.run.speed import study_layout
from search.storage.studies import mask_url, open_storage
from search.study.loader import StudyDefinition, load_definition, with_overrides
from search.study.record import TrialRecord

TARGET_TRIALS = 200
TARGET_MINUTES = 20.0
TARGET_ACCURACY = 0.98
TARGET_OVERHEAD_PCT = 2.0
TARGET_RSS_MIB = 600.0
FLAT_GROWTH_PCT = 5.0  # growth below this counts as flat
RSS_REFERENCE_TRIAL = 10  # a worker's growth is measured from its 10th trial: the first ones warm caches
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
BACKENDS = ("sqlite", "postgresql")
PG_URL_ENVVAR = "SEARCH_TEST_PG_URL"


def main() -> None:
    args = _parse_args()
    if args.against is not None:
        compare(args)
        return
    print(machine_line(), flush=True)
    try:
        definition = with_overrides(load_definition(args.study), epochs=args.epochs)
    except SearchError as error:
        raise SystemExit(str(error)) from None
    seed = definition.seed if args.seed is None else args.seed
    chosen = study_layout(definition).layout  # what `search run` uses when given neither --workers nor --threads
    default_layout = chosen.label()
    notes: list[str] = []
    fidelity_note = "" if args.epochs is None else f"at --epochs {args.epochs}, not the study's fidelity"

    layouts = []
    for workers, threads in args.layouts:
        print(
            f"layout {workers}x{threads}: {args.trials} trials of {definition.name} ({_fidelity(definition)})",
            flush=True,
        )
        layouts.append(
            _in_fresh_process(
                _measure_run,
                definition=definition,
                url=None,
                workers=workers,
                threads=threads,
                n_trials=args.trials,
                seed=seed,
                data_dir=args.data_dir,
            )
        )
    storage = []
    for backend in args.storage_check:
        url = args.pg_url if backend == "postgresql" else None
        if backend == "postgresql" and not url:
            notes.append(f"postgresql skipped: no --pg-url and ${PG_URL_ENVVAR} is not set")
            print(notes[-1], flush=True)
            continue
        print(f"storage {backend}: {args.overhead_trials} trials, layout {default_layout}", flush=True)
        run = _in_fresh_process(
            _measure_run,
            definition=definition,
            url=url,
            workers=chosen.workers,
            threads=chosen.threads,
            n_trials=args.overhead_trials,
            seed=seed,
            data_dir=args.data_dir,
        )
        storage.append({"backend": backend, **{k: run[k] for k in _STORAGE_KEYS}})

    fastest = max(layouts, key=lambda r: r["trials_per_minute"])["layout"] if layouts else None
    default_rate = next((r["trials_per_minute"] for r in layouts if r["layout"] == default_layout), None)
    for run in layouts:
        run["vs_default"] = round(run["trials_per_minute"] / default_rate, 3) if default_rate else None
    result = {
        "study": definition.name,
        "epochs": definition.epochs,
        "n_folds": definition.n_folds,
        "n_pairs": definition.n_pairs,
        "seed": seed,
        "trials": args.trials,
        "overhead_trials": args.overhead_trials,
        "default_layout": default_layout,
        "fastest_layout": fastest,
        "machine": f"{machine_line().removeprefix('machine: ')}, optuna {optuna.__version__}",
        "machine_info": machine_info(),
        "layouts": layouts,
        "storage": storage,
        "checks": _checks(layouts, storage, default_layout, fastest, fidelity_note=fidelity_note),
        "notes": notes,
    }
    _print_summary(result)
    text = json.dumps(result)
    if args.out is not None:
        args.out.write_text(text + "\n")
    if args.json:
        print(text)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="siamese", help="a study name from studies/ or a TOML path")
    parser.add_argument("--trials", type=int, default=TARGET_TRIALS, help="finished trials per layout run")
    parser.add_argument(
        "--layouts",
        type=_layouts,
        default=",".join(layout.label() for layout in layout_candidates(usable_cores())),
        help="WORKERSxTHREADS,... or none (default: every layout that fills the usable cores)",
    )
    parser.add_argument("--storage-check", type=_backends, default=",".join(BACKENDS), help="sqlite,postgresql or none")
    parser.add_argument("--pg-url", default=os.environ.get(PG_URL_ENVVAR), help=f"default ${PG_URL_ENVVAR}")
    parser.add_argument("--overhead-trials", type=int, default=20, help="finished trials per storage-overhead run")
    parser.add_argument("--epochs", type=int, default=None, help="override the study's epochs (quick runs)")
    parser.add_argument("--seed", type=int, default=None, help="sampler seed (default: the study's seed)")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON object to this file")
    parser.add_argument("--against", metavar="REF", help="also run the layouts at commit REF, in turns with this one")
    parser.add_argument("--rounds", type=int, default=1, help="with --against: runs of each commit, in turns")
    args = parser.parse_args()
    for flag in ("trials", "overhead_trials"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1, but got {getattr(args, flag)}.")
    return args


def _layouts(text: str) -> list[tuple[int, int]]:
    layouts = []
    for item in _items(text):
        workers, _, threads = item.partition("x")
        if not (workers.isdigit() and threads.isdigit() and int(workers) >= 1 and int(threads) >= 1):
            raise argparse.ArgumentTypeError(
                f"a layout is WORKERSxTHREADS with both at least 1, e.g. 2x1, but got {item!r}"
            )
        layouts.append((int(workers), int(threads)))
    return layouts


def _backends(text: str) -> list[str]:
    backends = _items(text)
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise argparse.ArgumentTypeError(f"backends are {', '.join(BACKENDS)} or none, but got {', '.join(unknown)}")
    return backends


def _items(text: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    return [] if items == ["none"] else items


def _fidelity(definition: StudyDefinition) -> str:
    return f"{definition.n_folds} folds x {definition.epochs} epochs, {definition.n_pairs} pairs"


# ---------------------------------------------------------------------------------------------------
# One measured run, in a fresh interpreter.

_STORAGE_KEYS = ("storage", "layout", "trials", "n_complete", "n_pruned", "n_failed", "wall_seconds", "overhead")


def _measure_run(
    *,
    definition: StudyDefinition,
    url: str | None,
    workers: int,
    threads: int,
    n_trials: int,
    seed: int,
    data_dir: Path | None,
) -> dict[str, Any]:
    """Run a fresh study (a temporary SQLite file when `url` is None, else a uniquely named study at `url`,
    deleted afterwards) and measure it from its stored trials."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        if url is None:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        else:  # a shared server: a name no other study has
            definition = dataclasses.replace(definition, name=f"{definition.name}-bench-{secrets.token_hex(4)}")
        progress = _ProgressLine(n_trials)
        started = time.perf_counter()
        try:
            summary = run_study(
                definition,
                storage_url=url,
                n_trials=n_trials,
                n_workers=workers,
                data_dir=data_dir,
                seed=seed,
                threads=threads,
                on_progress=progress,
            )
            wall = time.perf_counter() - started
            trials = optuna.load_study(study_name=definition.name, storage=open_storage(url)).get_trials(deepcopy=False)
        finally:
            if not url.startswith("sqlite"):
                with contextlib.suppress(KeyError):  # KeyError: the run failed before it created the study
                    optuna.delete_study(study_name=definition.name, storage=open_storage(url))
    memory = _worker_memory(trials)
    n_finished = summary.n_complete + summary.n_pruned
    per_minute = n_finished / (wall / 60)
    if n_trials == TARGET_TRIALS:
        minutes_for_target: float | None = wall / 60
    else:
        minutes_for_target = TARGET_TRIALS / per_minute if per_minute else None
    return {
        "layout": f"{workers}x{threads}",
        "workers": workers,
        "threads": threads,
        "storage": mask_url(url),
        "trials": n_trials,
        "n_complete": summary.n_complete,
        "n_pruned": summary.n_pruned,
        "n_failed": summary.n_failed,
        "interrupted": summary.interrupted,
        "wall_seconds": round(wall, 1),
        "trials_per_minute": round(per_minute, 2),
        "minutes_for_200": None if minutes_for_target is None else round(minutes_for_target, 1),
        "minutes_projected": n_trials != TARGET_TRIALS,
        "best_value": summary.best_value,
        "overhead": _trial_costs(trials),
        "workers_memory": memory,
        "peak_rss_mib": max((m["peak_rss_mib"] for m in memory), default=None),
        "max_rss_growth_pct": max((m["rss_growth_pct"] for m in memory), default=None),
        "max_retained_growth_pct": max(
            (m["retained_growth_pct"] for m in memory if m["retained_growth_pct"] is not None), default=None
        ),
    }


class _ProgressLine:
    """Prints a line at every tenth of the run (a 200-trial run lasts a while)."""

    def __init__(self, n_trials: int) -> None:
        self.step = max(1, n_trials // 10)
        self.shown = 0

    def __call__(self, progress: RunProgress) -> None:
        if progress.n_done >= self.shown + self.step or (progress.n_done == progress.n_trials > self.shown):
            self.shown = progress.n_done
            best = "-" if progress.best_value is None else f"{progress.best_value:.4f}"
            print(
                f"  {progress.n_done}/{progress.n_trials} trials, best {best}, {progress.elapsed / 60:.1f} min",
                flush=True,
            )


def _in_fresh_process(target: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """target(**kwargs) in a new interpreter; its result. Ctrl-C reaches the run there, which stops cleanly."""
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    process = ctx.Process(target=_child, args=(results, target, kwargs), name="bench-run")
    process.start()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # after start(): the child keeps Python's handler
    try:
        while True:
            try:
                kind, payload = results.get(timeout=1.0)
                break
            except queue.Empty:
                if not process.is_alive() and results.empty():
                    raise SystemExit(f"the measured run exited with code {process.exitcode} and no result") from None
    finally:
        signal.signal(signal.SIGINT, previous)
        process.join()
    if kind == "error":
        raise SystemExit(f"the measured run failed: {payload}")
    return payload


def _child(results: Any, target: Callable[..., dict[str, Any]], kwargs: dict[str, Any]) -> None:
    try:
        results.put(("result", target(**kwargs)))
    except BaseException as error:  # the parent prints it as one line
        results.put(("error", f"{type(error).__name__}: {error}"))
        raise


# ---------------------------------------------------------------------------------------------------
# Measures from the stored trials.


def _by_worker(trials: list[FrozenTrial]) -> dict[int, list[FrozenTrial]]:
    """Finished trials that recorded their worker, per worker pid, in the order they ran."""
    runs: dict[int, list[FrozenTrial]] = defaultdict(list)
    for trial in sorted(trials, key=lambda t: t.datetime_start):
        pid = TrialRecord.from_trial(trial).worker_pid
        if trial.state in FINISHED and pid is not None:
            runs[pid].append(trial)
    return runs


def _trial_costs(trials: list[FrozenTrial]) -> dict[str, Any]:
    """Time outside training per trial (storage, plus the sampler), and between a worker's trials."""
    finished = [(t, TrialRecord.from_trial(t)) for t in trials if t.state in FINISHED and t.datetime_complete]
    timed = [t for t, record in finished if record.train_seconds is not None]
    records = [record for _, record in finished if record.train_seconds is not None]
    if not timed:
        return {"n_trials": 0}
    durations = [(t.datetime_complete - t.datetime_start).total_seconds() for t in timed]
    reports = [r.report_seconds if r.report_seconds is not None else 0.0 for r in records]
    training = [r.train_seconds - report for r, report in zip(records, reports, strict=True)]
    overhead = [d - f for d, f in zip(durations, training, strict=True)]
    gaps = [
        (after.datetime_start - before.datetime_complete).total_seconds()
        for runs in _by_worker(timed).values()
        for before, after in zip(runs, runs[1:], strict=False)
    ]
    return {
        "n_trials": len(timed),
        "trial_seconds_mean": round(statistics.mean(durations), 3),
        "training_seconds_mean": round(statistics.mean(training), 3),
        "report_seconds_mean": round(statistics.mean(reports), 4),
        "overhead_seconds_mean": round(statistics.mean(overhead), 4),
        "overhead_pct": round(100 * sum(overhead) / sum(durations), 2),
        "gap_seconds_mean": round(statistics.mean(gaps), 4) if gaps else None,
        "overhead_with_gaps_pct": round(100 * (sum(overhead) + sum(gaps)) / (sum(durations) + sum(gaps)), 2),
    }


def _worker_memory(trials: list[FrozenTrial]) -> list[dict[str, Any]]:
    """Each worker's peak RSS, and its growth from its RSS_REFERENCE_TRIAL-th trial (or its middle one) to its last."""
    memory = []
    for pid, runs in sorted(_by_worker(trials).items()):
        records = [TrialRecord.from_trial(t) for t in runs]
        rss = [r.worker_rss_mib for r in records]
        reference = min(RSS_REFERENCE_TRIAL - 1, (len(rss) - 1) // 2)
        growth = rss[-1] - rss[reference]
        retained = [r.worker_rss_start_mib for r in records]
        retained_growth = (
            round(100 * (retained[-1] - retained[reference]) / retained[reference], 2)
            if None not in (retained[-1], retained[reference])
            else None
        )
        memory.append(
            {
                "pid": pid,
                "n_trials": len(rss),
                "peak_rss_mib": max(rss),
                "reference_trial": reference + 1,
                "reference_rss_mib": rss[reference],
                "rss_growth_mib": round(growth, 1),
                "rss_growth_pct": round(100 * growth / rss[reference], 2),
                "retained_reference_mib": retained[reference],
                "retained_last_mib": retained[-1],
                "retained_growth_pct": retained_growth,
            }
        )
    return memory


# ---------------------------------------------------------------------------------------------------
# Targets and the printed summary.


def _checks(
    layouts: list[dict[str, Any]],
    storage: list[dict[str, Any]],
    default_layout: str,
    fastest: str | None,
    *,
    fidelity_note: str,
) -> list[dict[str, Any]]:
    """One entry per target: what was measured against it, PASS (passed) or MISS."""
    checks = []

    def check(name: str, target: str, value: Any, unit: str, passed: bool | None, note: str = "") -> None:
        checks.append({"name": name, "target": target, "value": value, "unit": unit, "passed": passed, "note": note})

    for run in layouts:
        layout = run["layout"]
        projected = f"projected from {run['trials']} trials" if run["minutes_projected"] else ""
        minutes = run["minutes_for_200"]
        check(
            f"{layout} time for 200 trials",
            f"<= {TARGET_MINUTES:g}",
            minutes,
            "min",
            minutes is not None and minutes <= TARGET_MINUTES,
            projected,
        )
        best = run["best_value"]
        check(
            f"{layout} best mean CV accuracy",
            f">= {TARGET_ACCURACY:g}",
            best,
            "",
            best is not None and best >= TARGET_ACCURACY,
            fidelity_note,
        )
        if run["peak_rss_mib"] is not None:
            few = min(m["n_trials"] for m in run["workers_memory"]) <= RSS_REFERENCE_TRIAL
            check(
                f"{layout} peak RSS per worker",
                f"<= {TARGET_RSS_MIB:g}",
                run["peak_rss_mib"],
                "MiB",
                run["peak_rss_mib"] <= TARGET_RSS_MIB,
            )
            growth = run["max_retained_growth_pct"]
            check(
                f"{layout} retained RSS growth per worker",
                f"< {FLAT_GROWTH_PCT:g}",
                growth,
                "%",
                growth is not None and growth < FLAT_GROWTH_PCT,
                "few trials per worker" if few else "",
            )
    if len(layouts) > 1:
        check(
            "fastest layout", default_layout, fastest, "", fastest == default_layout, "the target is the default layout"
        )
    for run in storage:
        pct = run["overhead"].get("overhead_pct")
        check(
            f"{run['backend']} storage overhead",
            f"< {TARGET_OVERHEAD_PCT:g}",
            pct,
            "% of trial time",
            pct is not None and pct < TARGET_OVERHEAD_PCT,
        )
    return checks


def _print_summary(result: dict[str, Any]) -> None:
    print(
        f"\n{result['study']}: {result['n_folds']} folds x {result['epochs']} epochs, {result['n_pairs']} pairs; "
        f"{result['machine']}"
    )
    for run in result["layouts"]:
        best = "-" if run["best_value"] is None else f"{run['best_value']:.4f}"
        stopped = " (interrupted)" if run["interrupted"] else ""
        print(
            f"layout {run['layout']}: {run['n_complete']} complete, {run['n_pruned']} pruned, {run['n_failed']} failed "
            f"in {run['wall_seconds'] / 60:.1f} min{stopped} = {run['trials_per_minute']:.2f} trials/min "
            f"({_fmt_ratio(run.get('vs_default'))} the default layout); best {best}"
        )
        print(f"  outside training: {_describe_costs(run['overhead'])}")
        for m in run["workers_memory"]:
            retained = (
                f"; at trial start {m['retained_reference_mib']:.0f} -> {m['retained_last_mib']:.0f} MiB "
                f"({m['retained_growth_pct']:+.1f} %)"
                if m["retained_growth_pct"] is not None
                else ""
            )
            print(
                f"  worker {m['pid']}: {m['n_trials']} trials, peak RSS {m['peak_rss_mib']:.0f} MiB, "
                f"{m['rss_growth_mib']:+.1f} MiB ({m['rss_growth_pct']:+.1f} %) since its trial {m['reference_trial']}"
                f"{retained}"
            )
    for run in result["storage"]:
        print(
            f"storage {run['backend']} ({run['layout']}, {run['n_complete'] + run['n_pruned']} trials): "
            f"{_describe_costs(run['overhead'])}"
        )
    print("targets:")
    for c in result["checks"]:
        value = c["value"] if isinstance(c["value"], str) or c["value"] is None else f"{c['value']:g}"
        verdict = "PASS" if c["passed"] else "MISS"
        note = f" ({c['note']})" if c["note"] else ""
        unit = f" {c['unit']}" if c["unit"] else ""
        print(f"  {verdict}  {c['name']}: {value}{unit} (target {c['target']}{unit}){note}")
    for line in result["notes"]:
        print(f"note: {line}")


def _fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def compare(args: argparse.Namespace) -> None:
    """--against REF: the layout runs at this commit and at REF, in turns; trials per minute this/REF."""
    passed = ["--study", args.study, "--trials", str(args.trials), "--storage-check", "none"]
    passed += ["--layouts", ",".join(f"{w}x{t}" for w, t in args.layouts) or "none"]
    passed += ["--epochs", str(args.epochs)] if args.epochs is not None else []
    passed += ["--seed", str(args.seed)] if args.seed is not None else []
    passed += ["--data-dir", str(args.data_dir)] if args.data_dir is not None else []
    print(machine_line(), flush=True)
    ours, theirs = against(args.against, "benchmarks/bench_search.py", passed, rounds=args.rounds)

    def rates(results: list[dict], layout: str) -> list[float]:
        return [run["trials_per_minute"] for result in results for run in result["layouts"] if run["layout"] == layout]

    layouts = [run["layout"] for run in ours[0]["layouts"]]
    summary = {
        "ref": args.against,
        "rounds": args.rounds,
        "machine_info": machine_info(),
        "ratios": {
            layout: round(ratio(rates(ours, layout), rates(theirs, layout)), 3)
            for layout in layouts
            if rates(theirs, layout)
        },
        "this": ours,
        "against": theirs,
    }
    for layout, value in summary["ratios"].items():
        print(
            f"layout {layout}: this commit {statistics.median(rates(ours, layout)):.2f} trials/min, {args.against} "
            f"{statistics.median(rates(theirs, layout)):.2f}: {value:.2f}x ({args.rounds} round(s), {machine_line()})"
        )
    text = json.dumps(summary)
    if args.out is not None:
        args.out.write_text(text + "\n")
    if args.json:
        print(text)


def _describe_costs(costs: dict[str, Any]) -> str:
    if not costs["n_trials"]:
        return "no finished trial"
    gap = "-" if costs["gap_seconds_mean"] is None else f"{costs['gap_seconds_mean']:.3f} s"
    return (
        f"{costs['overhead_seconds_mean']:.3f} s of a {costs['trial_seconds_mean']:.2f} s trial = {costs['overhead_pct']:.2f} % "
        f"(pruner reports {costs['report_seconds_mean']:.3f} s); gap between trials {gap}, "
        f"{costs['overhead_with_gaps_pct']:.2f} % with gaps"
    )


if __name__ == "__main__":
    main()
