"""The fast path: K models of one configuration (the K folds of a trial, or R evaluation draws).

Two strategies, both checked against the plain one-by-one loop in tests/unit/models/training/test_fast.py:
- "lockstep": the K models take turns, an epoch each, in the compute settings measured fastest
  on this machine (`models.training.speed`: channels_last and bf16 autocast, each only where it is faster).
  On the 2-core CPU machines channels_last made a training step ~1.6x faster; bf16 another ~1.3x
  where the CPU has it natively, and 6x slower where it is emulated.
- "stacked": the K models as ONE batched computation (torch.func.stack_module_state + vmap),
  one optimizer step for all. Fewer, larger kernels: what a GPU wants. On the CPU it measured
  ~2x slower than lockstep (vmap turns convolutions into grouped ones), so "auto" picks it on
  CUDA only.
Either way the caller sees all K validation curves after every epoch and can stop them
together (pruning).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torch.func import functional_call, stack_module_state, vmap

from models.data.augment import tta_views
from models.data.draws import PairSet
from models.errors import ConfigError
from models.nets.configs import NetConfig, TrainConfig
from models.training.losses import LossWeighting, loss_terms
from models.training.speed import measured_speed
from models.training.train import (
    EVAL_CHUNK,
    OPTIMIZERS,
    EpochStats,
    ModelTrainer,
    Speed,
    TrainResult,
    make_scheduler,
    resolve_device,
    scoring_mode,
)
from models.training.trained import TrainedModel

STRATEGIES = ("auto", "lockstep", "stacked")


def fit_many(
    net: NetConfig,
    train: TrainConfig,
    jobs: Sequence[tuple[PairSet, PairSet | None]],
    *,
    seeds: Sequence[int],
    device: str | torch.device | None = None,
    on_epoch: Callable[[int, list[EpochStats]], bool] | None = None,
    speed: Speed | None = None,
    strategy: str = "auto",
    score_every_epoch: bool = False,
    keep_models: bool = False,
) -> list[TrainResult]:
    """Train one model per job (train pairs, eval pairs), each normalised by its own training pairs.

    `on_epoch(epoch, stats)` sees every model's statistics after each epoch (a diverged
    model's eval_accuracy is None); returning True stops all models. `strategy`: auto
    (stacked on CUDA, lockstep on the CPU), lockstep or stacked; stacked needs training
    sets of one size and falls back to lockstep otherwise (and for staged head-only training, which
    freezes parameters). `speed`: the compute settings of the lockstep models; default the ones
    measured fastest on this CPU (`models.training.speed.measured_speed`). `score_every_epoch` scores the
    evaluation pairs after every epoch even without `on_epoch` (for the best-over-epochs figure).
    `keep_models` returns each trained network with its result (`TrainResult.model`, a `TrainedModel`)."""
    if len(jobs) != len(seeds):
        raise ConfigError(f"fit_many needs one seed per job, but got {len(jobs)} jobs and {len(seeds)} seeds.")
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy must be one of {', '.join(STRATEGIES)}, but got {strategy!r}.")
    if not jobs:
        return []
    device = resolve_device(device)
    if strategy == "auto":
        strategy = "stacked" if device.type == "cuda" else "lockstep"
    evaluate = on_epoch is not None or score_every_epoch
    if strategy == "stacked" and _uniform(jobs) and train.staged_second != "head":
        stacked = StackedTrainer(net, train, jobs, seeds=seeds, device=device)
        results = stacked.run(on_epoch, evaluate=evaluate)
        if keep_models:
            stacked.unstack()
        return _with_models(net, train, stacked.members, results) if keep_models else results
    if speed is None:
        speed = measured_speed() if device.type == "cpu" else Speed(channels_last=True)
    trainers = [
        ModelTrainer(net, train, pairs, eval_pairs=eval_pairs, seed=seed, device=device, speed=speed)
        for (pairs, eval_pairs), seed in zip(jobs, seeds, strict=True)
    ]
    for epoch in range(train.epochs):
        stats = [t.run_epoch(evaluate=evaluate) if t.running else t.curves[-1] for t in trainers]
        if not any(t.running for t in trainers):
            if on_epoch is not None:
                on_epoch(epoch, stats)
            break
        if on_epoch is not None and on_epoch(epoch, stats):
            for t in trainers:
                t.stop(f"stopped by the caller after epoch {epoch}")
            break
    results = [t.result() for t in trainers]
    return _with_models(net, train, trainers, results) if keep_models else results


def _with_models(
    net: NetConfig, train: TrainConfig, trainers: Sequence[ModelTrainer], results: list[TrainResult]
) -> list[TrainResult]:
    return [
        dataclasses.replace(result, model=TrainedModel.of(net, train, trainer.normalisation, trainer.model))
        for trainer, result in zip(trainers, results, strict=True)
    ]


def _uniform(jobs: Sequence[tuple[PairSet, PairSet | None]]) -> bool:
    """Whether the jobs stack: training sets of one size, evaluation sets all present and of one size."""
    train_sizes = {len(pairs) for pairs, _ in jobs}
    eval_sizes = {len(e) if e is not None else None for _, e in jobs}
    return len(train_sizes) == 1 and len(eval_sizes) == 1 and None not in eval_sizes


class StackedTrainer:
    """K models of one configuration trained as one vmapped computation.

    Each model keeps what makes it independent: its own initial weights, normalisation,
    batch order and augmentation stream (taken from a plain `ModelTrainer` per job, so
    they match the reference loop draw for draw); the optimizers' updates are elementwise,
    so one optimizer over the stacked parameters is K independent optimizers. Only dropout
    masks come from a different random stream than in the reference loop."""

    def __init__(
        self,
        net: NetConfig,
        train: TrainConfig,
        jobs: Sequence[tuple[PairSet, PairSet | None]],
        *,
        seeds: Sequence[int],
        device: torch.device,
    ) -> None:
        self.cfg, self.has_digits = train, net.has_digit_outputs
        self.has_aux = net.has_digit_outputs or (net.family == "cnn2ch" and net.intermediate_head)
        self.members = [
            ModelTrainer(net, train, pairs, eval_pairs=eval_pairs, seed=seed, device=device)
            for (pairs, eval_pairs), seed in zip(jobs, seeds, strict=True)
        ]
        params, self.buffers = stack_module_state([m.model for m in self.members])
        self.params = {name: p.detach().requires_grad_() for name, p in params.items()}
        self.base = copy.deepcopy(self.members[0].model).to("meta")  # the code, without weights
        self.optimizer = OPTIMIZERS[train.optimizer](list(self.params.values()), train)
        self.scheduler = make_scheduler(self.optimizer, train)
        self.weighting = LossWeighting(train)
        self.alive = torch.ones(len(self.members), dtype=torch.bool, device=device)
        self.seconds = 0.0

    def _losses(self, params: dict, buffers: dict, x: Tensor, target: Tensor, classes: Tensor):
        out = functional_call(self.base, (params, buffers), (x,))
        main, aux = loss_terms(out, target, classes)
        return main, (aux if aux is not None else torch.zeros_like(main)), out.pair_log_probs

    def _outputs(self, params: dict, buffers: dict, x: Tensor):
        out = functional_call(self.base, (params, buffers), (x,))
        digits = out.digit_logits if out.digit_logits is not None else torch.zeros(x.shape[0], 2, 10, device=x.device)
        return out.pair_log_probs, digits

    def run_epoch(self, epoch: int, *, evaluate: bool = True) -> list[EpochStats]:
        start = time.perf_counter()
        k, members = len(self.members), self.members
        lr = self.optimizer.param_groups[0]["lr"]
        n = len(members[0].train_set.target)
        orders = [torch.randperm(n, generator=m.batch_rng).to(self.alive.device) for m in members]
        loss_sum = torch.zeros(k, device=self.alive.device)
        hits = torch.zeros(k, device=self.alive.device)
        self.base.train()
        step = vmap(self._losses, randomness="different")
        for begin in range(0, n, self.cfg.batch_size):
            index = [order[begin : begin + self.cfg.batch_size] for order in orders]
            x = torch.stack([m.prepare(m.train_set.input[i]) for m, i in zip(members, index, strict=True)])
            target = torch.stack([m.train_set.target[i] for m, i in zip(members, index, strict=True)])
            classes = torch.stack([m.train_set.classes[i] for m, i in zip(members, index, strict=True)])
            main, aux, log_probs = step(self.params, self.buffers, x, target, classes)
            loss = self.weighting(main, aux if self.has_aux else None, epoch=epoch)  # (K,)
            finite = torch.isfinite(loss)
            for i in torch.nonzero(self.alive & ~finite).flatten().tolist():
                members[i].status = "diverged"
                members[i].message = (
                    f"loss became {loss[i].item()} in epoch {epoch} at lr={lr:.3g}; "
                    "lower the learning rate or enable batch norm"
                )
            self.alive &= finite
            if not bool(self.alive.any()):
                break
            self.optimizer.zero_grad(set_to_none=True)
            torch.where(self.alive, loss, torch.zeros_like(loss)).sum().backward()
            self.optimizer.step()
            loss_sum += loss.detach().nan_to_num() * target.shape[1]
            hits += (log_probs.argmax(-1) == target).sum(1)
        self.scheduler.step()
        last = epoch + 1 == self.cfg.epochs
        evaluated = self.evaluate(final=last) if evaluate or last else [(None, None)] * k
        stats = []
        for i, m in enumerate(members):
            if m.status == "diverged":
                s = EpochStats(epoch, math.nan, math.nan, None, None, lr)
            else:
                accuracy, digit_accuracy = evaluated[i]
                s = EpochStats(epoch, loss_sum[i].item() / n, hits[i].item() / n, accuracy, digit_accuracy, lr)
                if last:
                    m.status, m.message = "completed", f"trained {self.cfg.epochs} epochs"
            m.curves.append(s)
            stats.append(s)
        elapsed = time.perf_counter() - start
        for m in members:
            m.seconds += elapsed / k
        return stats

    @torch.no_grad()
    def evaluate(self, *, final: bool = True) -> list[tuple[float, float | None]]:
        """(pair accuracy, digit accuracy or None) of every model on its evaluation pairs (as
        `ModelTrainer.evaluate`: the final score averages over the test-time views)."""
        members = self.members
        scoring_mode(self.base, self.cfg.bn_scoring)
        n = len(members[0].eval_set.target)
        tta = self.cfg.tta if final else "none"
        pair_hits = torch.zeros(len(members), device=self.alive.device)
        digit_hits = torch.zeros(len(members), device=self.alive.device)
        forward = vmap(self._outputs)
        for begin in range(0, n, EVAL_CHUNK):
            part = slice(begin, begin + EVAL_CHUNK)
            per_member = [tta_views(m.eval_set.input[part], tta, fill=m.fill) for m in members]
            pair_probs, digit_probs = 0.0, 0.0
            for views in zip(*per_member, strict=True):
                log_probs, digits = forward(self.params, self.buffers, torch.stack(views))
                pair_probs = pair_probs + log_probs.float().exp()
                digit_probs = digit_probs + digits.float().softmax(-1)
            target = torch.stack([m.eval_set.target[part] for m in members])
            classes = torch.stack([m.eval_set.classes[part] for m in members])
            pair_hits += (pair_probs.argmax(-1) == target).sum(1)
            digit_hits += (digit_probs.argmax(-1) == classes).sum((1, 2))
        return [
            (p / n, (d / (2 * n) if self.has_digits else None))
            for p, d in zip(pair_hits.tolist(), digit_hits.tolist(), strict=True)
        ]

    def unstack(self) -> None:
        """Copy each model's trained weights and buffers back into its member's module."""
        with torch.no_grad():
            for i, member in enumerate(self.members):
                state = {name: value[i] for name, value in {**self.params, **self.buffers}.items()}
                member.model.load_state_dict(state)

    def run(self, on_epoch: Callable[[int, list[EpochStats]], bool] | None, *, evaluate: bool) -> list[TrainResult]:
        for epoch in range(self.cfg.epochs):
            stats = self.run_epoch(epoch, evaluate=evaluate)
            if not any(m.running for m in self.members):
                if on_epoch is not None:
                    on_epoch(epoch, stats)
                break
            if on_epoch is not None and on_epoch(epoch, stats):
                for m in self.members:
                    m.stop(f"stopped by the caller after epoch {epoch}")
                break
        return [m.result() for m in self.members]
