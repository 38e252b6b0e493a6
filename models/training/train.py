"""Training one model: `ModelTrainer` holds its state and advances an epoch at a time.

`fit` is the plain reference loop (eager, fp32, contiguous tensors, one model); the fast
path in `models.training.fast` drives several trainers with other `Speed` settings, so both paths
share every line of the learning logic below.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from models.data.augment import random_affine, random_shift, tta_views
from models.data.draws import NORMALISATIONS, PairSet
from models.nets.configs import NetConfig, TrainConfig, check_compatible
from models.nets.families import build_net
from models.training.losses import LossWeighting, is_finite, loss_terms

log = logging.getLogger(__name__)

OPTIMIZERS = {
    "sgd": lambda params, cfg: torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay),
    "adam": lambda params, cfg: torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay),
    "rmsprop": lambda params, cfg: torch.optim.RMSprop(
        params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    ),
}


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """The per-epoch learning-rate schedule.

    Cosine and geometric are functions of the fraction of training done: a run of 20 epochs is a
    complete, compressed run of 40, so a search at few epochs ranks configurations as the evaluation
    length would. Exponential (lr * gamma**epoch, as the reports state their decay) is not: a gamma
    tuned at 20 epochs leaves the lr near 0 for the second half of a 40-epoch run.
    """
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    if cfg.schedule == "geometric":
        epochs, decay_to = cfg.epochs, cfg.decay_to
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: decay_to ** (epoch / epochs))
    return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=cfg.gamma)


EVAL_CHUNK = 250  # pairs per forward pass when scoring: larger chunks fall out of the CPU caches (2x slower at 2000)


@dataclass
class EpochStats:
    epoch: int  # 0-based
    train_loss: float  # mean combined loss over the epoch's batches (nan once diverged)
    train_accuracy: float  # pair accuracy on the training batches, as seen while training
    eval_accuracy: float | None  # pair accuracy on the evaluation pairs after the epoch
    eval_digit_accuracy: float | None  # digit accuracy on the evaluation pairs (siamese only)
    lr: float  # learning rate used during the epoch


@dataclass
class TrainResult:
    status: str  # "completed" | "diverged" | "stopped" (a caller's on_epoch asked to stop)
    message: str  # why it ended, for people
    accuracy: float | None  # final pair accuracy on the evaluation pairs
    digit_accuracy: float | None  # final digit accuracy on the evaluation pairs
    curves: list[EpochStats] = field(default_factory=list)
    n_params: int = 0
    seconds: float = 0.0  # wall time spent training and scoring this model
    model: Any = None  # the trained network (models.training.trained.TrainedModel) when its caller keeps it

    @property
    def best_epoch_accuracy(self) -> float | None:
        """The highest evaluation accuracy of any scored epoch: report 004's figure (max over epochs), an
        optimistic one, shown beside the final accuracy and never instead of it. None where no epoch was scored."""
        scored = [c.eval_accuracy for c in self.curves if c.eval_accuracy is not None]
        return max(scored, default=None) if self.status != "diverged" else None


@dataclass(frozen=True)
class Speed:
    """How a model is computed, never what it learns (results match up to float rounding)."""

    channels_last: bool = False  # NHWC memory format: faster convolutions on CPU
    bf16: bool = False  # bfloat16 autocast for convolutions and matmuls


def freeze_all_but_head(model: torch.nn.Module) -> None:
    """Report 000's first scheme, second stage: only the comparison head learns (requires_grad=False on the
    rest; the optimizer skips parameters without gradients, so their momentum does not move them)."""
    for p in model.parameters():
        p.requires_grad_(False)
    for p in model.head.parameters():
        p.requires_grad_(True)


def scoring_mode(model: torch.nn.Module, bn_scoring: str) -> None:
    """Put a model in its scoring mode: eval mode, with its batch norm layers left in training mode
    (normalising by the scored chunk's own statistics) when `bn_scoring` is 'batch'. Dropout stays off
    either way. The running averages such a layer updates meanwhile are never read in this mode."""
    model.eval()
    if bn_scoring == "batch":
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.train()


def view_probabilities(
    model: torch.nn.Module, inputs: Tensor, tta: str, *, fill: float | None, channels_last: bool = False
) -> tuple[Tensor, Tensor | None]:
    """Pair probabilities (N, 2) and digit probabilities (N, 2, 10) or None, each summed over the test-time
    views of `inputs` (normalised, (N, 2, 14, 14)): the one scoring rule of evaluation and prediction."""
    pair_probs: Tensor | float = 0.0
    digit_probs: Tensor | None = None
    for x in tta_views(inputs, tta, fill=fill):
        out = model(x.contiguous(memory_format=torch.channels_last) if channels_last else x)
        pair_probs = pair_probs + out.pair_log_probs.float().exp()
        if out.digit_logits is not None:
            digits = out.digit_logits.float().softmax(-1)
            digit_probs = digits if digit_probs is None else digit_probs + digits
    assert isinstance(pair_probs, Tensor)
    return pair_probs, digit_probs


def resolve_device(device: str | torch.device | None) -> torch.device:
    """None means CUDA when present, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class ModelTrainer:
    """One model, its data (normalised with its own training statistics), optimizer and RNGs."""

    def __init__(
        self,
        net: NetConfig,
        train: TrainConfig,
        pairs: PairSet,
        *,
        eval_pairs: PairSet | None = None,
        seed: int = 0,
        device: str | torch.device | None = None,
        speed: Speed = Speed(),
    ) -> None:
        check_compatible(net, train)
        self.cfg, self.speed = train, speed
        self.device = resolve_device(device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = build_net(net)
            self._cpu_rng_state = torch.get_rng_state()
        self.n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        memory = torch.channels_last if speed.channels_last else torch.contiguous_format
        self.model = model.to(self.device, memory_format=memory)
        self.batch_rng = torch.Generator().manual_seed(seed)  # batch order and augmentation

        # Statistics from the training pairs only; evaluation pairs get them unchanged.
        norm = NORMALISATIONS[train.normalisation].fit(pairs)
        self.normalisation = norm  # kept: a saved model scores new pairs with it
        self.fill = norm.fill  # a blank pixel after normalisation (None per pixel: augmentation is refused)
        self.train_set = self._to_device(norm.apply(pairs))
        self.eval_set = self._to_device(norm.apply(eval_pairs)) if eval_pairs is not None else None

        self.optimizer = OPTIMIZERS[train.optimizer](self.model.parameters(), train)
        self.scheduler = make_scheduler(self.optimizer, train)
        self.weighting = LossWeighting(train)
        self.curves: list[EpochStats] = []
        self.status, self.message = "running", ""
        self.seconds = 0.0

    def _to_device(self, pairs: PairSet) -> PairSet:
        return PairSet(pairs.input.to(self.device), pairs.target.to(self.device), pairs.classes.to(self.device))

    @property
    def running(self) -> bool:
        return self.status == "running"

    @contextlib.contextmanager
    def own_rng(self) -> Iterator[None]:
        """Dropout draws from torch's global RNG: give each model its own stream of it."""
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self._cpu_rng_state)
            yield
            self._cpu_rng_state = torch.get_rng_state()

    def _autocast(self, enabled: bool = True) -> contextlib.AbstractContextManager:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.speed.bf16 and enabled)

    def prepare(self, x: Tensor) -> Tensor:
        x = random_affine(x, self.cfg.rotate, self.cfg.scale, generator=self.batch_rng, fill=self.fill)
        x = random_shift(x, self.cfg.shift, generator=self.batch_rng, fill=self.fill)
        return x.contiguous(memory_format=torch.channels_last) if self.speed.channels_last else x

    def run_epoch(self, *, evaluate: bool = True) -> EpochStats:
        """Train one epoch, then score the evaluation pairs (always after the last epoch, else
        when `evaluate`: scoring costs up to a third of an epoch); marks divergence instead of raising."""
        start = time.perf_counter()
        epoch = len(self.curves)
        if epoch == self.cfg.staged_epochs and self.cfg.staged_second == "head":
            freeze_all_but_head(self.model)
        lr = self.optimizer.param_groups[0]["lr"]
        data = self.train_set
        order = torch.randperm(len(data.target), generator=self.batch_rng).to(self.device)
        total_loss, correct, seen = 0.0, 0, 0
        self.model.train()
        with self.own_rng():
            for batch in order.split(self.cfg.batch_size):
                target, classes = data.target[batch], data.classes[batch]
                with self._autocast():
                    out = self.model(self.prepare(data.input[batch]))
                main, aux = loss_terms(out, target, classes)
                loss = self.weighting(main, aux, epoch=epoch)
                if not is_finite(loss):
                    self.status = "diverged"
                    self.message = (
                        f"loss became {loss.item()} in epoch {epoch} at lr={lr:.3g}; "
                        "lower the learning rate or enable batch norm"
                    )
                    break
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                total_loss += loss.item() * len(batch)
                correct += int((out.pair_log_probs.argmax(-1) == target).sum())
                seen += len(batch)
        self.scheduler.step()
        if not self.running:
            stats = EpochStats(epoch, math.nan, math.nan, None, None, lr)
        else:
            last = epoch + 1 == self.cfg.epochs
            score = self.eval_set is not None and (evaluate or last)
            accuracy, digit_accuracy = self.evaluate(final=last) if score else (None, None)
            stats = EpochStats(epoch, total_loss / seen, correct / seen, accuracy, digit_accuracy, lr)
            if last:
                self.status, self.message = "completed", f"trained {self.cfg.epochs} epochs"
        self.curves.append(stats)
        self.seconds += time.perf_counter() - start
        return stats

    @torch.no_grad()
    def evaluate(self, *, final: bool = True) -> tuple[float, float | None]:
        """(pair accuracy, digit accuracy or None) on the evaluation pairs. The final score is computed
        in float32 and averages the probabilities over the configured test-time views; per-epoch scores
        stay one cheap pass (in bfloat16 where training uses it)."""
        assert self.eval_set is not None
        data = self.eval_set
        scoring_mode(self.model, self.cfg.bn_scoring)
        tta = self.cfg.tta if final else "none"
        pair_hits, digit_hits, has_digits = 0, 0, False
        for start in range(0, len(data.target), EVAL_CHUNK):
            part = slice(start, start + EVAL_CHUNK)
            with self._autocast(enabled=not final):
                pair_probs, digit_probs = view_probabilities(
                    self.model, data.input[part], tta, fill=self.fill, channels_last=self.speed.channels_last
                )
            pair_hits += int((pair_probs.argmax(-1) == data.target[part]).sum())
            if digit_probs is not None:
                has_digits = True
                digit_hits += int((digit_probs.argmax(-1) == data.classes[part]).sum())
        n = len(data.target)
        return pair_hits / n, (digit_hits / (2 * n) if has_digits else None)

    def stop(self, reason: str) -> None:
        if self.running:
            self.status, self.message = "stopped", reason

    def result(self) -> TrainResult:
        last = self.curves[-1] if self.curves and self.status != "diverged" else None
        return TrainResult(
            status=self.status,
            message=self.message,
            accuracy=last.eval_accuracy if last else None,
            digit_accuracy=last.eval_digit_accuracy if last else None,
            curves=list(self.curves),
            n_params=self.n_params,
            seconds=self.seconds,
        )


def fit(
    net: NetConfig,
    train: TrainConfig,
    pairs: PairSet,
    *,
    eval_pairs: PairSet | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    on_epoch: Callable[[EpochStats], bool] | None = None,
) -> TrainResult:
    """Train one model the plain way (the reference every faster path is checked against).

    `on_epoch` sees each epoch's statistics; returning True stops training early. Without it
    the evaluation pairs are scored after the last epoch only."""
    trainer = ModelTrainer(net, train, pairs, eval_pairs=eval_pairs, seed=seed, device=device)
    while trainer.running:
        stats = trainer.run_epoch(evaluate=on_epoch is not None)
        if on_epoch is not None and trainer.status != "diverged" and on_epoch(stats) and trainer.running:
            trainer.stop(f"stopped by the caller after epoch {stats.epoch}")
    if trainer.status == "diverged":
        log.warning("training diverged: %s", trainer.message)
    return trainer.result()
