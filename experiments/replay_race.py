"""Replay a racing rule on a study's stored selection runs: how many fold models would it train, and whom would it choose?

The selection stage stores every (finalist, repeat) run it trains as a study attribute. After a stage
that trained them all (`search evaluate-best --no-race`), any race over the same finalists can be replayed
without training: it reads the fold accuracies in the order the race would have trained them and drops a
finalist where the rule says so. The rules:

- `paired`: the product's rule (a one-sided paired t test against the leader over the folds so far,
  `search.evaluation.stats.behind_pvalue`), decided after every `--chunk` folds; `--chunk` equal to the
  study's K is the stage as it runs (a decision after each repeat);
- `pooled`: the same test with the variance of the fold differences pooled over every finalist still in
  the race, which has more degrees of freedom than one pair's few folds.

As in the stage, the race ends once one finalist is left and it has run `--floor` repeats' worth of folds.

    python -m experiments.replay_race --storage sqlite:///study.db --study siamese --epochs 20 \
        --rule pooled --chunk 2 --significance 0.05
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Sequence

import numpy as np
import optuna
from scipy import stats

from experiments.output import print_result
from search.evaluation.ranking import RACE_SIGNIFICANCE, FinalistScore
from search.evaluation.selection import MIN_REPEATS
from search.evaluation.stats import behind_pvalue

RUN_KEY = re.compile(r"^selection_run/trial (\d+)/draw (\d+)/(\d+) epochs/(\d+) folds/")


def stored_runs(study: optuna.Study, epochs: int) -> dict[tuple[int, int], list[float | None]]:
    """(trial number, draw seed) -> fold accuracies, for the selection runs stored at `epochs`."""
    runs = {}
    for key, value in study.user_attrs.items():
        match = RUN_KEY.match(key)
        if match and int(match[3]) == epochs:
            runs[int(match[1]), int(match[2])] = value
    return runs


def pooled_pvalues(leader: Sequence[float], others: dict[int, Sequence[float]]) -> dict[int, float]:
    """One-sided p that each of `others` is behind `leader`, with the variance of the fold differences pooled
    over all of them (each pair's own mean removed)."""
    differences = {n: np.asarray(leader, dtype=float) - np.asarray(o, dtype=float) for n, o in others.items()}
    dof = sum(len(d) - 1 for d in differences.values())
    spread = sum(float(((d - d.mean()) ** 2).sum()) for d in differences.values())
    if dof < 1:  # one fold each proves nothing, as for the paired test
        return dict.fromkeys(differences, 1.0)
    if spread == 0.0:  # every pair's differences constant: behind where the leader is ahead on every fold
        return {n: 0.0 if d.mean() > 0 else 1.0 for n, d in differences.items()}
    variance = spread / dof
    return {n: float(stats.t.sf(d.mean() / math.sqrt(variance / len(d)), dof)) for n, d in differences.items()}


def race(
    runs: dict[tuple[int, int], list[float | None]],
    finalists: Sequence[int],
    seeds: Sequence[int],
    *,
    rule: str,
    chunk: int,
    significance: float,
    floor: int,
) -> dict[str, object]:
    """The replayed race: fold models trained, the finalists left and the one chosen."""
    n_folds = len(runs[finalists[0], seeds[0]])
    order = [(seed, fold) for seed in seeds for fold in range(n_folds)]  # the order the stage trains folds in

    def score(number: int, n: int) -> FinalistScore:
        return FinalistScore(number, 0.0, tuple(runs[number, seed][fold] for seed, fold in order[:n]))

    alive, seen, trained = list(finalists), dict.fromkeys(finalists, 0), 0
    for start in range(0, len(order), chunk):
        end = min(start + chunk, len(order))
        trained += len(alive) * (end - start)
        seen.update(dict.fromkeys(alive, end))
        if end == len(order):
            break
        scores = {n: score(n, end) for n in alive}
        leader = min(scores.values(), key=lambda s: s.rank_key)
        others = {n: s.fold_scores for n, s in scores.items() if n != leader.trial_number}
        if rule == "pooled":
            pvalues = pooled_pvalues(leader.fold_scores, others)
        else:
            pvalues = {n: behind_pvalue(leader.fold_scores, o) for n, o in others.items()}
        alive = [n for n in alive if pvalues.get(n, 1.0) >= significance]
        if len(alive) == 1 and end >= floor * n_folds:
            break
    chosen = min((score(n, seen[n]) for n in alive), key=lambda s: s.rank_key)
    full = min((score(n, len(order)) for n in finalists), key=lambda s: s.rank_key)
    return {
        "fold_models": trained,
        "of": len(finalists) * len(order),
        "left": alive,
        "chosen": chosen.trial_number,
        "chosen_unraced": full.trial_number,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True)
    parser.add_argument("--study", default="siamese")
    parser.add_argument("--epochs", type=int, required=True, help="the length the selection runs were trained at")
    parser.add_argument("--finalists", type=int, default=0, help="the best this many by search CV; 0: every one stored")
    parser.add_argument("--repeats", type=int, default=0, help="the first this many draws; 0: every one stored")
    parser.add_argument("--rule", choices=("paired", "pooled"), default="paired")
    parser.add_argument("--chunk", type=int, default=0, help="folds between decisions; 0: the study's K (per repeat)")
    parser.add_argument("--significance", type=float, default=RACE_SIGNIFICANCE)
    parser.add_argument("--floor", type=int, default=MIN_REPEATS, help="repeats the last finalist must have run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=args.study, storage=args.storage)
    runs = stored_runs(study, args.epochs)
    if not runs:
        raise SystemExit(f"--epochs {args.epochs}: study {args.study!r} stores no selection run at that length")
    seeds = sorted({seed for _, seed in runs})[: args.repeats or None]
    values = {t.number: t.value for t in study.get_trials(deepcopy=False) if t.value is not None}
    complete = [n for n in sorted({n for n, _ in runs}) if all((n, s) in runs for s in seeds)]
    finalists = sorted(complete, key=lambda n: (-values[n], n))[: args.finalists or None]
    if not finalists:
        raise SystemExit(
            f"no finalist of study {args.study!r} has all {len(seeds)} repeats stored at {args.epochs} epochs"
        )
    n_folds = len(runs[finalists[0], seeds[0]])
    result = {"rule": args.rule, "chunk": args.chunk or n_folds, "significance": args.significance}
    result |= {"finalists": finalists, "repeats": len(seeds)}
    result |= race(
        runs,
        finalists,
        seeds,
        rule=args.rule,
        chunk=args.chunk or n_folds,
        significance=args.significance,
        floor=args.floor,
    )
    print_result(result, as_json=args.json)


if __name__ == "__main__":
    main()
