"""The fast path: K models of one configuration (the K folds of a trial, or R evaluation draws).

Measured on the 2-core CPU machine (see README, benchmarks/bench_training.py): stacking the
K models into one computation (torch.func vmap, grouped convolutions) was no faster, and
vmap twice as slow, while the NHWC memory format alone made each model ~1.7x faster.
So on the CPU the fast path trains the K models in lockstep, an epoch each in turn, in
channels_last (bfloat16 autocast is available as an option). Lockstep lets a caller see
all K validation curves after every epoch and stop them together (pruning).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from models.configs import NetConfig, TrainConfig
from models.draws import PairSet
from models.errors import ConfigError
from models.train import EpochStats, ModelTrainer, Speed, TrainResult, resolve_device

FAST = Speed(channels_last=True, bf16=False)


def fit_many(
    net: NetConfig,
    train: TrainConfig,
    jobs: Sequence[tuple[PairSet, PairSet | None]],
    *,
    seeds: Sequence[int],
    device: str | torch.device | None = None,
    on_epoch: Callable[[int, list[EpochStats]], bool] | None = None,
    speed: Speed = FAST,
) -> list[TrainResult]:
    """Train one model per job (train pairs, eval pairs), each normalised by its own training pairs.

    `on_epoch(epoch, stats)` sees every model's statistics after each epoch (a diverged
    model's eval_accuracy is None); returning True stops all models."""
    if len(jobs) != len(seeds):
        raise ConfigError(f"fit_many needs one seed per job, but got {len(jobs)} jobs and {len(seeds)} seeds.")
    if not jobs:
        return []
    device = resolve_device(device)
    trainers = [
        ModelTrainer(net, train, pairs, eval_pairs=eval_pairs, seed=seed, device=device, speed=speed)
        for (pairs, eval_pairs), seed in zip(jobs, seeds)
    ]
    for epoch in range(train.epochs):
        stats = [t.run_epoch() if t.running else t.curves[-1] for t in trainers]
        if not any(t.running for t in trainers):
            if on_epoch is not None:
                on_epoch(epoch, stats)
            break
        if on_epoch is not None and on_epoch(epoch, stats):
            for t in trainers:
                t.stop(f"stopped by the caller after epoch {epoch}")
            break
    return [t.result() for t in trainers]
