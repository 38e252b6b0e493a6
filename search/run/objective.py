"""The K-fold cross-validation objective: one trial = one configuration trained on K folds at once.

Every trial of a study sees the same training pairs (the draw `data_seed` of `n_pairs`), the same
folds and the same fold models' seeds (`search.run.folds`, seeded with `data_seed` and `seed`), so trials
differ only by their configuration. The test pairs of the draw are never touched while searching. The
K fold models train together (`models.training.fast.fit_many`); after each epoch their mean validation accuracy
is reported so the pruner can stop a bad trial early. With `screen_folds` (S of the K folds) only the first S
train while the pruner may stop the trial, and their mean is reported; the other K - S folds train only for a
trial that reaches the last epoch, so a pruned trial costs S/K of its epochs. A finished trial's value is the
mean over all K folds either way: the same models, trained with the same seeds. With `scored_folds` (S of
the K folds) a trial trains and scores only the first S, each with the K-fold sizes (750/250 of 1,000
pairs at K = 4): the search only nominates finalists, and `search evaluate-best` selects among them on all K.

Besides its scores a trial records how it ran, for benchmarks/bench_search.py: its training and
reporting time and its worker's pid and memory (the fields of `search.study.record.TrialRecord`).
"""

from __future__ import annotations

import logging
import math
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import psutil
import torch

from models.errors import ModelsError
from models.nets.configs import NetConfig, TrainConfig
from models.training.fast import fit_many
from models.training.train import EpochStats, Speed, TrainResult
from search.describe import fmt_number
from search.run.folds import fold_seeds
from search.run.study_data import StudyData, load_study_data
from search.study.definition import StudyDefinition
from search.study.record import TrialRecord
from search.study.space import suggest_configs

logger = logging.getLogger(__name__)


class TrialInterrupted(Exception):
    """The run was asked to stop (Ctrl-C) while this trial trained; the trial ends as failed."""


class Objective:
    """Callable(trial) -> mean validation pair accuracy (and the parameter count for two objectives).

    `data`: the study's training pairs and folds (search.run.study_data), as a run's parent loads them
    once for all its workers; without it they are loaded on the first trial, from `data_dir`. `speed`: the
    compute settings (default: `models.training.speed`'s measured choice). `should_stop` is polled after
    every epoch: when it says so, training stops and the trial fails with `TrialInterrupted`.
    """

    def __init__(
        self,
        definition: StudyDefinition,
        *,
        data_dir: Path | None = None,
        threads: int | None = None,
        speed: Speed | None = None,
        should_stop: Callable[[], bool] | None = None,
        data: StudyData | None = None,
    ) -> None:
        self.definition = definition
        self.data_dir = data_dir
        self.threads = threads
        self.speed = speed  # None: models.training.speed's measured choice
        self.should_stop = should_stop or (lambda: False)
        self._data = data

    @property
    def n_objectives(self) -> int:
        return len(self.definition.directions)

    @property
    def data(self) -> StudyData:
        """The study's training pairs and folds (loaded on first use when not given)."""
        if self._data is None:
            self._data = load_study_data(self.definition, self.data_dir)
        return self._data

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        try:
            return self._evaluate(trial)
        except ModelsError as error:  # e.g. a configuration the network cannot train with: this trial fails
            TrialRecord(failure_reason=f"{type(error).__name__}: {error}").write(trial)
            raise

    def _evaluate(self, trial: optuna.Trial) -> float | tuple[float, float]:
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        rss_at_start = _current_rss_mib()
        net, train = suggest_configs(trial, self.definition)
        pairs = self.data.pairs
        scored = self.data.folds[: self.definition.search_folds]  # `scored_folds`: the first S of the K folds
        jobs = [(pairs.subset(fit_index), pairs.subset(val_index)) for fit_index, val_index in scored]
        # The same model seeds for every trial: configurations are compared on equal terms.
        seeds = fold_seeds(self.definition.seed, len(jobs))
        can_prune = self.n_objectives == 1  # Optuna cannot prune multi-objective trials
        stop_reason: str | None = None
        report_seconds = 0.0

        def on_epoch(epoch: int, stats: list[EpochStats]) -> bool:
            nonlocal stop_reason, report_seconds
            accuracies = [s.eval_accuracy for s in stats if s.eval_accuracy is not None]
            if accuracies and can_prune:
                reported = time.perf_counter()
                trial.report(float(np.mean(accuracies)), epoch)
                if trial.should_prune():
                    stop_reason = "pruned"
                report_seconds += time.perf_counter() - reported
            if self.should_stop():
                stop_reason = "interrupted"
            return stop_reason is not None

        def on_epoch_unpruned(epoch: int, stats: list[EpochStats]) -> bool:
            nonlocal stop_reason
            if self.should_stop():
                stop_reason = "interrupted"
            return stop_reason is not None

        screen = self.definition.screen_folds if can_prune else None
        started = time.perf_counter()
        results = fit_many(net, train, jobs[:screen], seeds=seeds[:screen], on_epoch=on_epoch, speed=self.speed)
        if screen is not None and stop_reason is None and all(r.status != "diverged" for r in results):
            results += fit_many(
                net, train, jobs[screen:], seeds=seeds[screen:], on_epoch=on_epoch_unpruned, speed=self.speed
            )
        seconds = time.perf_counter() - started

        self._record(
            trial, net, train, results, seconds=seconds, report_seconds=report_seconds, rss_at_start=rss_at_start
        )
        diverged = [(k, r) for k, r in enumerate(results) if r.status == "diverged"]
        if diverged:
            fold, result = diverged[0]
            reason = f"diverged: fold {fold} of {len(results)}: {result.message}"
            TrialRecord(failure_reason=reason).write(trial)
            raise optuna.TrialPruned(reason)
        if stop_reason == "interrupted":
            TrialRecord(failure_reason="interrupted: the run was stopped while this trial trained").write(trial)
            raise TrialInterrupted(f"trial {trial.number} interrupted")
        if stop_reason == "pruned":
            raise optuna.TrialPruned(f"pruned after {len(results[0].curves)} epochs of {len(results)} fold(s)")
        accuracy = float(np.mean([r.accuracy for r in results]))
        if not math.isfinite(accuracy):
            raise optuna.TrialPruned("validation accuracy is not a number")
        if self.n_objectives == 2:
            return accuracy, float(results[0].n_params)
        return accuracy

    def _record(
        self,
        trial: optuna.Trial,
        net: NetConfig,
        train: TrainConfig,
        results: list[TrainResult],
        *,
        seconds: float,
        report_seconds: float,
        rss_at_start: float,
    ) -> None:
        """Write the trial's record (search.study.record) and log each fold's outcome."""
        fold_accuracies = [r.accuracy for r in results]
        digit = [r.digit_accuracy for r in results if r.digit_accuracy is not None]
        known = [a for a in fold_accuracies if a is not None]
        TrialRecord(
            fold_accuracies=tuple(fold_accuracies),
            fold_std=float(np.std(known)) if known else None,
            digit_accuracy=float(np.mean(digit)) if digit else None,
            n_params=int(results[0].n_params),
            train_seconds=round(seconds, 3),
            report_seconds=round(report_seconds, 3),
            worker_pid=os.getpid(),
            worker_rss_mib=round(
                max(_peak_rss_mib(), rss_at_start), 1
            ),  # two sources: the peak is never below the start
            net_config=net.to_dict(),
            train_config=train.to_dict(),
            worker_rss_start_mib=round(rss_at_start, 1),
        ).write(trial)
        for fold, result in enumerate(results):
            logger.info(
                "trial %d fold %d/%d: %s, accuracy %s, digit accuracy %s, %d epochs",
                trial.number,
                fold + 1,
                len(results),
                result.status,
                fmt_number(result.accuracy),
                fmt_number(result.digit_accuracy),
                len(result.curves),
            )


def _peak_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB (ru_maxrss counts KiB on Linux; psutil has no peak there)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mib() -> float:
    """This process's resident set size now, in MiB."""
    return psutil.Process().memory_info().rss / 2**20
