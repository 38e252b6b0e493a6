"""The selection stage: name a study's best configuration on less noise than its search saw.

A search ranks trials by one draw's K-fold CV at the search's fidelity (`siamese`: 20 epochs). The
fold std there (0.2-0.6 points) is larger than the differences between the finalists, and the best at
20 epochs need not be the best at the evaluation length. So before any test pair is touched, the
stage retrains the `finalists` best trials at the evaluation length on repeated K-fold: `repeats` fresh
draws of training pairs, each from the training pool only and split by its own shuffle. The finalists
are ranked by their mean validation accuracy over all those folds; `evaluate-best` evaluates in that order.

Every (finalist, repeat) is stored in the study as soon as it is trained, so an interrupted stage
loses nothing and a rerun trains only what is missing; the ranking, and how it was made, is stored
as the study's `selection` attribute.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from models.data.pools import load_pools
from models.nets.configs import NetConfig, TrainConfig
from search.defaults import DEFAULT_REPEATS
from search.errors import EvaluationError
from search.evaluation.claims import Claims
from search.evaluation.ranking import RACE_SIGNIFICANCE, SELECTION_ATTR, FinalistScore, Selection
from search.evaluation.stats import behind_pvalue
from search.run.folds import fold_seeds, split_folds
from search.run.process_pool import JobPool, own_pool
from search.study.record import TrialRecord

logger = logging.getLogger(__name__)

SELECTION_SEED_BASE = 500_000  # repeat r draws its training pairs with seed 500,000 + r: apart from
# the studies' data seeds and the evaluation draws (search.evaluation.evaluate.DRAW_SEED_BASE + r)
# DEFAULT_FINALISTS is 10, not 5: on 200-trial runs the search's top 5 can all come from the one region its
# sampler converged on; in 2 of 3 runs the selection's own CV rated a trial ranked 6th-10th highest
# (docs/results.md).
MIN_REPEATS = 2  # the floor: the race ends early only once its last finalist has run this many repeats
_RUN_ATTR = (
    "selection_run"  # one study attribute per (trial, draw seed, epochs, folds, pairs, digits): its fold accuracies
)

Progress = Callable[[int, int], None]


def select_finalists(
    study: optuna.Study,
    ranked: Sequence[FrozenTrial],
    *,
    repeats: int = DEFAULT_REPEATS,
    race: bool = True,
    epochs: int | None,
    n_pairs: int,
    data_dir: Path | None = None,
    workers: int = 1,
    threads: int | None = None,
    progress: Progress | None = None,
    claims: Claims | None = None,
    poll: float = 5.0,
    pool: JobPool | None = None,
) -> Selection:
    """Rank `ranked` (the finalists: complete trials with stored configurations) by repeated K-fold.

    Repeat by repeat: every finalist still in the race trains that repeat (only the runs not already
    stored in `study`, each stored as it ends). With `race`, after each repeat but the last a finalist
    whose folds so far put it behind the leader's (`behind_pvalue` below RACE_SIGNIFICANCE) drops out,
    and the race ends once one finalist is left with MIN_REPEATS repeats. Every decision is read from
    the stored runs alone, so a rerun, or another process, makes the same ones. Stores and returns the
    ranking: the survivors first, then the finalists in the order they dropped out, latest first.

    With `claims`, the stage is shared: each (finalist, repeat) run is claimed before it is trained, runs
    claimed by other processes are waited for (their results land in the study), and every process takes
    the same racing decisions from the same stored runs. `pool` is a caller's worker processes, kept for
    its next stage; without it the stage starts its own.
    """
    if repeats < 1:
        raise EvaluationError(f"repeats must be at least 1, but got {repeats=}.")
    if not ranked:
        raise EvaluationError("select_finalists needs at least one finalist.")
    n_folds = int(study.user_attrs.get("n_folds", 4))
    source = load_pools(data_dir).source  # "embedded" or "idx:<dir>": runs on other digits are other runs
    seeds = tuple(range(SELECTION_SEED_BASE, SELECTION_SEED_BASE + repeats))
    configs = {t.number: _configs(t, epochs) for t in ranked}

    def key(number: int, seed: int) -> str:
        return _run_key(number, seed, configs[number][1], n_folds, n_pairs, source)

    runs = {k: v for k, v in study.user_attrs.items() if k.startswith(_RUN_ATTR + "/")}
    alive = [t.number for t in ranked]
    rounds = dict.fromkeys(alive, 0)  # repeats each finalist has run in this race
    dropped: dict[int, int] = {}  # finalist -> the repeats it had when it dropped out
    done, shown = 0, (-1, -1)
    with own_pool(pool, workers=workers, threads=threads) as pool:  # one set of processes for every round
        for index, seed in enumerate(seeds):
            missing = [(number, seed) for number in alive if key(number, seed) not in runs]
            planned = done + sum(key(n, s) not in runs for n in alive for s in seeds[index:])
            if progress is not None and (done, planned) != shown:  # the plan shrinks as finalists drop out
                progress(done, planned)
                shown = (done, planned)
            while missing:  # with other processes on the stage: train what this one claims, wait for the rest
                mine = (
                    missing if claims is None else _claim_up_to(claims, study, [(r, key(*r)) for r in missing], workers)
                )
                for (number, run_seed), accuracies in _train_runs(
                    mine, configs, n_folds=n_folds, n_pairs=n_pairs, data_dir=data_dir, pool=pool
                ):
                    study.set_user_attr(key(number, run_seed), accuracies)
                    runs[key(number, run_seed)] = accuracies
                    done += 1
                    if claims is not None:
                        claims.release([_claim(study, key(number, run_seed))])
                    if progress is not None:
                        progress(done, planned)
                        shown = (done, planned)
                if not mine and claims is not None:
                    lost = claims.lost([_claim(study, key(*r)) for r in missing])
                    if lost:
                        raise EvaluationError(
                            f"{len(lost)} selection run(s) were claimed by processes that died, twice each; "
                            "run the command again to train them."
                        )
                    time.sleep(poll)
                stored = study.user_attrs  # what every process has stored so far
                runs.update({k: v for k, v in stored.items() if k.startswith(_RUN_ATTR + "/")})
                missing = [r for r in missing if key(*r) not in runs]
            for number in alive:
                rounds[number] = index + 1
            if not race or index + 1 == repeats:
                continue
            behind = behind_the_leader([_score(n, ranked, seeds[: index + 1], runs, key) for n in alive])
            dropped.update(dict.fromkeys(behind, index + 1))
            alive = [n for n in alive if n not in behind]
            if len(alive) == 1 and index + 1 >= MIN_REPEATS:
                break
    finalists = [
        dataclasses.replace(
            _score(t.number, ranked, seeds[: rounds[t.number]], runs, key), dropped_after=dropped.get(t.number)
        )
        for t in ranked
    ]
    finalists.sort(key=lambda f: (f.dropped_after is not None, -(f.dropped_after or 0), *f.rank_key))
    selection = Selection(
        study_name=study.study_name,
        epochs=epochs,
        n_folds=n_folds,
        draw_seeds=seeds[: max(rounds.values())],
        finalists=tuple(finalists),
        n_trained=done,
        n_runs_saved=len(ranked) * repeats - sum(rounds.values()),
        raced=race,
    )
    study.set_user_attr(SELECTION_ATTR, {k: v for k, v in selection.to_dict().items() if k != "n_trained"})
    logger.info(
        "selection: trial %d of %d finalists (%s); %d fold models trained, %d saved by the race",
        selection.chosen.trial_number,
        len(finalists),
        selection.method,
        selection.n_trained * n_folds,
        selection.n_runs_saved * n_folds,
    )
    return selection


def _claim_up_to(
    claims: Claims, study: optuna.Study, runs: list[tuple[tuple[int, int], str]], workers: int
) -> list[tuple[int, int]]:
    """Claim as many runs as this process trains at once (one per worker): the rest stay free for others."""

    def still_to_do(taken: Sequence[str]) -> list[str]:  # a run another process stored since `runs` was read
        stored = study.user_attrs
        return [claim for claim in taken if claim.removeprefix(_claim(study, "")) not in stored]

    mine = []
    for run, run_key in runs:
        if len(mine) == workers:
            break
        if claims.take([_claim(study, run_key)], still_to_do=still_to_do):
            mine.append(run)
    return mine


def _claim(study: optuna.Study, run_key: str) -> str:
    return f"selection|{study.study_name}|{run_key}"


def _score(
    number: int,
    ranked: Sequence[FrozenTrial],
    seeds: Sequence[int],
    runs: dict[str, Any],
    key: Callable[[int, int], str],
) -> FinalistScore:
    trial = next(t for t in ranked if t.number == number)
    return FinalistScore(
        trial_number=number,
        search_value=float(trial.values[0]),
        fold_accuracies=tuple(a for seed in seeds for a in runs[key(number, seed)]),
    )


def behind_the_leader(scores: Sequence[FinalistScore]) -> set[int]:
    """The racing rule: the trial numbers of the finalists that a one-sided paired t test over the same folds
    puts behind the leader (the best by `FinalistScore.rank_key`). The leader itself is never among them."""
    leader = min(scores, key=lambda s: s.rank_key)
    return {
        s.trial_number
        for s in scores
        if s is not leader and behind_pvalue(leader.fold_scores, s.fold_scores) < RACE_SIGNIFICANCE
    }


def _configs(trial: FrozenTrial, epochs: int | None) -> tuple[NetConfig, TrainConfig]:
    net, train = TrialRecord.from_trial(trial).configs()
    return net, train if epochs is None else dataclasses.replace(train, epochs=epochs)


def _run_key(number: int, seed: int, train: TrainConfig, n_folds: int, n_pairs: int, source: str) -> str:
    """The study attribute of one run: everything its fold accuracies depend on besides the trial's configuration."""
    return f"{_RUN_ATTR}/trial {number}/draw {seed}/{train.epochs} epochs/{n_folds} folds/{n_pairs} pairs/{source}"


def _train_runs(
    runs: list[tuple[int, int]],
    configs: dict[int, tuple[NetConfig, TrainConfig]],
    *,
    n_folds: int,
    n_pairs: int,
    data_dir: Path | None,
    pool: JobPool,
) -> Iterator[tuple[tuple[int, int], list[float | None]]]:
    """Yield each (trial, draw seed) run's fold accuracies as soon as it is trained.

    The folds are split here, so that the worker processes never import scikit-learn (seconds each).
    """
    folds = {seed: split_folds(n_pairs, n_folds=n_folds, seed=seed) for seed in {seed for _, seed in runs}}
    options = {"n_pairs": n_pairs, "data_dir": data_dir}
    jobs = [
        (
            (number, seed),
            {"net": configs[number][0], "train": configs[number][1], "seed": seed, "folds": folds[seed], **options},
        )
        for number, seed in runs
    ]
    yield from pool.run(train_repeat, jobs)


def train_repeat(
    *,
    net: NetConfig,
    train: TrainConfig,
    seed: int,
    n_pairs: int,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    data_dir: Path | None,
    threads: int | None,
) -> list[float | None]:
    """One repeat: fresh training pairs (draw `seed`, training pool only), every fold of `folds`
    (`split_folds` of the draw) trained.

    Returns each fold's validation accuracy (None where the model diverged).
    """
    import torch

    from models.data.draws import draw_training_pairs
    from models.data.pools import load_pools
    from models.training.fast import fit_many

    if threads is not None:
        torch.set_num_threads(threads)
    pairs = draw_training_pairs(load_pools(data_dir), seed=seed, n_pairs=n_pairs)
    jobs = [(pairs.subset(fit), pairs.subset(validation)) for fit, validation in folds]
    results = fit_many(net, train, jobs, seeds=fold_seeds(seed, len(jobs)))
    return [r.accuracy if r.status == "completed" else None for r in results]
