"""Replay a pruner on a finished study's per-epoch values: which trials would it have kept, and for how much training?

Each stored trial is asked anew of an in-memory study with the pruner under test and fed the values it
reported, epoch by epoch, until that pruner stops it. A trial the original run stopped earlier (its median
pruner) is censored there: its later values are unknown, so it counts as stopped. The sampler's own
adaptation to the pruned trials cannot be replayed; the trials are the original run's.

    python -m experiments.replay_rungs --storage sqlite:///study.db --study siamese \
        --pruner successive_halving --min-resource 2 --reduction-factor 3
"""

from __future__ import annotations

import argparse

import optuna
from optuna.trial import TrialState

from experiments.output import print_result


class TightenedAfter(optuna.pruners.BasePruner):
    """`before` for the first `after` trials, then `later`: a search that explores widely at first and,
    once it knows what a good curve looks like, stops the rest sooner."""

    def __init__(self, before: optuna.pruners.BasePruner, later: optuna.pruners.BasePruner, after: int) -> None:
        self.before, self.later, self.after = before, later, after

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return (self.before if trial.number < self.after else self.later).prune(study, trial)


def make_pruner(
    name: str, min_resource: int, reduction_factor: int, max_resource: int, percentile: float = 50.0
) -> optuna.pruners.BasePruner:
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=min_resource, reduction_factor=reduction_factor)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=min_resource, max_resource=max_resource, reduction_factor=reduction_factor
        )
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=10, n_warmup_steps=6)
    if name == "percentile":  # the study's median pruner with another cut: --percentile 25 keeps the top quarter
        return optuna.pruners.PercentilePruner(percentile, n_startup_trials=10, n_warmup_steps=6)
    raise SystemExit(f"--pruner: unknown {name!r}; choose successive_halving, hyperband, median or percentile")


def replay(trials: list[optuna.trial.FrozenTrial], pruner: optuna.pruners.BasePruner) -> dict[int, int]:
    """Trial number -> epochs the replayed pruner lets it train (the full length for a survivor)."""
    study = optuna.create_study(direction="maximize", pruner=pruner, sampler=optuna.samplers.RandomSampler(0))
    trained: dict[int, int] = {}
    for original in trials:
        trial = study.ask()
        steps = sorted(original.intermediate_values)
        stopped = False
        for step in steps:
            trial.report(original.intermediate_values[step], step)
            if trial.should_prune():
                trained[original.number] = step + 1
                study.tell(trial, state=TrialState.PRUNED)
                stopped = True
                break
        if not stopped:
            trained[original.number] = len(steps)
            if original.state == TrialState.COMPLETE:
                study.tell(trial, original.value)
            else:
                study.tell(trial, state=TrialState.PRUNED)
    return trained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True)
    parser.add_argument("--study", default="siamese")
    parser.add_argument("--pruner", default="successive_halving")
    parser.add_argument("--min-resource", type=int, default=2)
    parser.add_argument("--reduction-factor", type=int, default=3)
    parser.add_argument("--percentile", type=float, default=50.0, help="--pruner percentile: the share kept")
    parser.add_argument(
        "--after", type=int, default=0, help="the study's median pruner for the first AFTER trials, then --pruner"
    )
    parser.add_argument("--top", type=int, default=10, help="finalists: the best completed trials")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=args.study, storage=args.storage)
    trials = [t for t in study.get_trials(deepcopy=False) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    epochs = int(study.user_attrs.get("epochs", max(len(t.intermediate_values) for t in trials)))
    original = {t.number: len(t.intermediate_values) for t in trials}
    pruner = make_pruner(args.pruner, args.min_resource, args.reduction_factor, epochs, args.percentile)
    if args.after > 0:
        pruner = TightenedAfter(make_pruner("median", 0, 0, epochs), pruner, args.after)
    trained = replay(trials, pruner)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    survivors = sorted((t for t in complete if trained[t.number] == epochs), key=lambda t: -t.value)
    originally_best = sorted(complete, key=lambda t: -t.value)[: args.top]
    selection = study.user_attrs.get("selection", {})
    chosen = selection.get("chosen_trial") if isinstance(selection, dict) else None
    result = {
        "pruner": args.pruner,
        "min_resource": args.min_resource,
        "reduction_factor": args.reduction_factor,
        "percentile": args.percentile,
        "after": args.after,
        "trials": len(trials),
        "epochs_original": sum(original.values()),
        "epochs_replayed": sum(trained.values()),
        "ratio": sum(original.values()) / sum(trained.values()),
        "survivors": len(survivors),
        "original_top_kept": [t.number for t in originally_best if trained[t.number] == epochs],
        "original_top": [t.number for t in originally_best],
        "replayed_top": [t.number for t in survivors[: args.top]],
        "chosen_trial": chosen,
        "chosen_kept": chosen is not None and trained.get(chosen) == epochs,
    }
    print_result(result, as_json=args.json)


if __name__ == "__main__":
    main()
