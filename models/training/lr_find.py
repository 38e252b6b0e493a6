"""The learning-rate range test of report 003: raise the learning rate exponentially over a short run
and take the rate at which the (smoothed) training loss is lowest; the report averages that rate
over 10 rounds and trains with it.

Each round is a fresh model and batch order (seed), trained by the same `ModelTrainer` the real
training uses, so the loss is exactly the one the configuration trains on.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass

import torch

from models.data.draws import PairSet
from models.errors import ConfigError
from models.nets.configs import NetConfig, TrainConfig
from models.training.losses import loss_terms
from models.training.train import ModelTrainer

SMOOTHING = 0.9  # exponential moving average of the loss: single batches are too noisy to take a minimum of
DIVERGED = 4.0  # stop once the smoothed loss exceeds this multiple of its minimum


@dataclass(frozen=True)
class LRRound:
    seed: int
    lrs: tuple[float, ...]  # the learning rate of each step taken
    losses: tuple[float, ...]  # the smoothed loss after each step
    best_lr: float  # the learning rate at the lowest smoothed loss


@dataclass(frozen=True)
class LRFinding:
    rounds: tuple[LRRound, ...]

    @property
    def mean_lr(self) -> float:
        """Report 003's estimate: the mean over rounds of the learning rate at the loss minimum."""
        return statistics.fmean(r.best_lr for r in self.rounds)


@dataclass(frozen=True)
class LRRange:
    """The learning rates one range test sweeps: `steps` batches, geometrically from `lr_min` to `lr_max`."""

    lr_min: float = 1e-4
    lr_max: float = 1.0
    steps: int = 100

    def __post_init__(self) -> None:
        if not 0 < self.lr_min < self.lr_max:
            raise ConfigError(
                f"the range test needs 0 < lr_min < lr_max, but got lr_min={self.lr_min}, lr_max={self.lr_max}."
            )
        if self.steps < 5:
            raise ConfigError(f"the range test needs at least 5 steps, but got steps={self.steps}.")

    def lr(self, step: int) -> float:
        return self.lr_min * (self.lr_max / self.lr_min) ** (step / (self.steps - 1))


def lr_range_test(
    net: NetConfig, train: TrainConfig, pairs: PairSet, *, seed: int = 0, span: LRRange = LRRange()
) -> LRRound:
    """One round: a fresh model (seed) trained for `span.steps` batches with the learning rate rising."""
    trainer = ModelTrainer(
        net, dataclasses.replace(train, lr=span.lr_min, schedule="exponential", gamma=1.0), pairs, seed=seed
    )
    data = trainer.train_set
    n = len(data.target)
    order = torch.cat(
        [torch.randperm(n, generator=trainer.batch_rng) for _ in range(span.steps * train.batch_size // n + 1)]
    )
    lrs, losses = [], []
    smoothed, best = 0.0, math.inf
    trainer.model.train()
    with trainer.own_rng():
        for step in range(span.steps):
            lr = span.lr(step)
            for group in trainer.optimizer.param_groups:
                group["lr"] = lr
            batch = order[step * train.batch_size : (step + 1) * train.batch_size]
            out = trainer.model(trainer.prepare(data.input[batch]))
            loss = trainer.weighting(
                *loss_terms(out, data.target[batch], data.classes[batch]), epoch=train.staged_epochs
            )
            if not torch.isfinite(loss):
                break
            trainer.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            trainer.optimizer.step()
            smoothed = SMOOTHING * smoothed + (1 - SMOOTHING) * loss.item()
            value = smoothed / (1 - SMOOTHING ** (step + 1))  # bias-corrected
            lrs.append(lr)
            losses.append(value)
            best = min(best, value)
            if value > DIVERGED * best:
                break
    if not losses:
        raise ConfigError(f"the loss was not finite at lr_min={span.lr_min}; start the range lower.")
    at = min(range(len(losses)), key=losses.__getitem__)
    return LRRound(seed=seed, lrs=tuple(lrs), losses=tuple(losses), best_lr=lrs[at])


def find_lr(
    net: NetConfig, train: TrainConfig, pairs: PairSet, *, rounds: int = 10, span: LRRange = LRRange()
) -> LRFinding:
    """`rounds` range tests with seeds 0, 1, ...; their mean best learning rate is the estimate."""
    if rounds < 1:
        raise ConfigError(f"rounds must be at least 1, but got rounds={rounds}.")
    return LRFinding(tuple(lr_range_test(net, train, pairs, seed=s, span=span) for s in range(rounds)))
