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
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from models.data.pools import load_pools
from models.nets.configs import NetConfig, TrainConfig
from search.defaults import DEFAULT_REPEATS
from search.errors import EvaluationError
from search.evaluation.claims import Claims
from search.evaluation.stats import behind_pvalue
from search.run.folds import fold_score, fold_seeds, split_folds
from search.run.process_pool import run_jobs
from search.study.record import TrialRecord

logger = logging.getLogger(__name__)

SELECTION_SEED_BASE = 500_000  # repeat r draws its training pairs with seed 500,000 + r: apart from
# the studies' data seeds and the evaluation draws (search.evaluation.evaluate.DRAW_SEED_BASE + r)
# DEFAULT_FINALISTS is 10, not 5: on 200-trial runs the search's top 5 can all come from the one region its
# sampler converged on; in 2 of 3 runs the selection's own CV rated a trial ranked 6th-10th highest
# (docs/results.md).
RACE_SIGNIFICANCE = 0.05  # one-sided paired p below which a finalist is behind the leader and drops out
MIN_REPEATS = 2  # the floor: the race ends early only once its last finalist has run this many repeats
SELECTION_ATTR = "selection"
_RUN_ATTR = (
    "selection_run"  # one study attribute per (trial, draw seed, epochs, folds, pairs, digits): its fold accuracies
)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class FinalistScore:
    """One finalist's validation accuracies over every fold of every repeat, at the evaluation length."""

    trial_number: int
    search_value: float  # the trial's CV accuracy in the search (one draw, the search's epochs)
    fold_accuracies: tuple[float | None, ...]  # None: that fold's model diverged
    dropped_after: int | None = None  # racing: the repeats it had run when it fell behind; None: it survived

    @property
    def scored_folds(self) -> list[float]:
        """The fold accuracies with a diverged fold counted as chance (`search.run.folds.fold_score`)."""
        return [fold_score(a) for a in self.fold_accuracies]

    @property
    def n_diverged(self) -> int:
        return sum(a is None for a in self.fold_accuracies)

    @property
    def mean(self) -> float:
        """Mean over the folds; a diverged fold counts as chance, so a configuration that diverges never wins."""
        return statistics.fmean(self.scored_folds)

    @property
    def std(self) -> float:
        values = self.scored_folds
        return statistics.stdev(values) if len(values) > 1 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial_number": self.trial_number,
            "search_value": self.search_value,
            "mean": self.mean,
            "std": self.std,
            "n_folds": len(self.fold_accuracies),
            "n_diverged": self.n_diverged,
            "fold_accuracies": list(self.fold_accuracies),
            "dropped_after": self.dropped_after,
        }


@dataclass(frozen=True)
class Selection:
    """The finalists ranked by repeated K-fold at the evaluation length, best first."""

    study_name: str
    epochs: int | None  # None: each finalist at its own trial's epochs
    n_folds: int
    draw_seeds: tuple[int, ...]  # the training draws of the repeats (training pool only)
    finalists: tuple[FinalistScore, ...]
    n_trained: int = 0  # (finalist, repeat) runs trained by this call; the others were stored
    n_runs_saved: int = 0  # (finalist, repeat) runs the race left out: finalists behind, or one left
    raced: bool = False  # finalists behind the leader dropped out repeat by repeat

    @property
    def chosen(self) -> FinalistScore:
        return self.finalists[0]

    @property
    def method(self) -> str:
        length = f"{self.epochs} epochs" if self.epochs is not None else "each trial's epochs"
        race = (
            f", raced: a finalist behind the leader by a one-sided paired t test over the folds so far "
            f"(p < {RACE_SIGNIFICANCE}) dropped out after its repeat"
            if self.raced
            else ""
        )
        return (
            f"the {len(self.finalists)} best trials by search CV, retrained at {length} on up to "
            f"{len(self.draw_seeds)} fresh training draws x {self.n_folds}-fold CV, ranked by mean validation "
            f"accuracy{race}; no test pair used"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "epochs": self.epochs,
            "n_folds": self.n_folds,
            "repeats": len(self.draw_seeds),
            "draw_seeds": list(self.draw_seeds),
            "chosen_trial": self.chosen.trial_number,
            "finalists": [f.to_dict() for f in self.finalists],
            "n_trained": self.n_trained,
            "n_runs_saved": self.n_runs_saved,
            "raced": self.raced,
        }


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
    the same racing decisions from the same stored runs.
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
    for index, seed in enumerate(seeds):
        missing = [(number, seed) for number in alive if key(number, seed) not in runs]
        planned = done + sum(key(n, s) not in runs for n in alive for s in seeds[index:])
        if progress is not None and (done, planned) != shown:  # the plan shrinks as finalists drop out
            progress(done, planned)
            shown = (done, planned)
        while missing:  # with other processes on the stage: train what this one claims, wait for the rest
            mine = missing if claims is None else _claim_up_to(claims, study, [(r, key(*r)) for r in missing], workers)
            for (number, run_seed), accuracies in _train_runs(
                mine, configs, n_folds=n_folds, n_pairs=n_pairs, data_dir=data_dir, workers=workers, threads=threads
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
    finalists.sort(key=lambda f: (f.dropped_after is not None, -(f.dropped_after or 0), *_rank(f)))
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
    mine = []
    for run, run_key in runs:
        if len(mine) == workers:
            break
        if claims.take([_claim(study, run_key)]):
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


def _rank(score: FinalistScore) -> tuple[int, float]:
    """Sort key, best first: fewer diverged folds, then the higher mean."""
    return score.n_diverged, -score.mean


def behind_the_leader(scores: Sequence[FinalistScore]) -> set[int]:
    """The racing rule: the trial numbers of the finalists that a one-sided paired t test over the same folds
    puts behind the leader (the best by `_rank`). The leader itself is never among them."""
    leader = min(scores, key=_rank)
    return {
        s.trial_number
        for s in scores
        if s is not leader and behind_pvalue(leader.scored_folds, s.scored_folds) < RACE_SIGNIFICANCE
    }


def stored_selection(study: optuna.Study) -> Selection | None:
    """The last selection stored in the study, or None (never made, or unreadable: made by another version)."""
    data = study.user_attrs.get(SELECTION_ATTR)
    try:
        finalists = tuple(
            FinalistScore(
                trial_number=int(f["trial_number"]),
                search_value=float(f["search_value"]),
                fold_accuracies=tuple(f["fold_accuracies"]),
                dropped_after=f.get("dropped_after"),
            )
            for f in data["finalists"]
        )
        return Selection(
            study_name=study.study_name,
            epochs=data["epochs"],
            n_folds=int(data["n_folds"]),
            draw_seeds=tuple(data["draw_seeds"]),
            finalists=finalists,
            n_runs_saved=int(data.get("n_runs_saved", 0)),
            raced=bool(data.get("raced", False)),
        )
    except (KeyError, TypeError, ValueError):
        return None


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
    workers: int,
    threads: int | None,
) -> Iterator[tuple[tuple[int, int], list[float | None]]]:
    """Yield each (trial, draw seed) run's fold accuracies as soon as it is trained."""
    options = {"n_folds": n_folds, "n_pairs": n_pairs, "data_dir": data_dir}
    jobs = [
        ((number, seed), {"net": configs[number][0], "train": configs[number][1], "seed": seed, **options})
        for number, seed in runs
    ]
    yield from run_jobs(train_repeat, jobs, workers=workers, threads=threads)


def train_repeat(
    *,
    net: NetConfig,
    train: TrainConfig,
    seed: int,
    n_folds: int,
    n_pairs: int,
    data_dir: Path | None,
    threads: int | None,
) -> list[float | None]:
    """One repeat: fresh training pairs (draw `seed`, training pool only), shuffled K-fold, every fold trained.

    Returns each fold's validation accuracy (None where the model diverged).
    """
    import torch

    from models.data.draws import draw_training_pairs
    from models.data.pools import load_pools
    from models.training.fast import fit_many

    if threads is not None:
        torch.set_num_threads(threads)
    pairs = draw_training_pairs(load_pools(data_dir), seed=seed, n_pairs=n_pairs)
    folds = split_folds(len(pairs), n_folds=n_folds, seed=seed)
    jobs = [(pairs.subset(fit), pairs.subset(validation)) for fit, validation in folds]
    results = fit_many(net, train, jobs, seeds=fold_seeds(seed, len(jobs)))
    return [r.accuracy if r.status == "completed" else None for r in results]
