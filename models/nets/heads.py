"""Comparison heads: from the two digits' logits (B, 2, 10) to pair log-probabilities (B, 2)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.nets.activations import make_activation
from models.nets.configs import NetConfig

N_DIGITS = 10
# LESS_EQUAL[i, j] is True where digit i <= digit j: the pairs whose target is 1. Built from a list, not
# with a tensor op: an op at import time starts torch's OpenMP thread pool, and a process forked after
# that (the search's fork server forks every worker) hangs in its first multi-threaded op.
LESS_EQUAL = torch.tensor([[i <= j for j in range(N_DIGITS)] for i in range(N_DIGITS)])


def pair_width(cfg: NetConfig) -> int:
    """Outputs of a learned pair classifier: 2 logits (softmax) or 1 logit (sigmoid, the reports' BCE)."""
    return 1 if cfg.pair_output == "logit" else 2


def as_log_probs(logits: Tensor) -> Tensor:
    """(B, 2) logits -> log-softmax; (B, 1) logit z -> (log sigmoid(-z), log sigmoid(z)), so that the
    negative log-likelihood of the result is exactly binary cross-entropy on z."""
    if logits.shape[-1] == 1:
        return torch.cat([F.logsigmoid(-logits), F.logsigmoid(logits)], dim=-1)
    return logits.log_softmax(-1)


class DigitSoftmax(nn.Module):
    """The digit logits (B, 2, 10) as each digit's class probabilities: what a learned head reads when a
    report's tower ends in a softmax (report 000's nets end '-> softmax', and its comparison layer sits
    'at the place where the digits are predicted')."""

    def forward(self, digits: Tensor) -> Tensor:
        return digits.softmax(-1)


def _head_input(cfg: NetConfig) -> list[nn.Module]:
    """(B, 2, 10) digit logits -> (B, 20): the logits themselves, or their per-digit softmax."""
    return [DigitSoftmax(), nn.Flatten()] if cfg.head_input == "softmax" else [nn.Flatten()]


class MLPHead(nn.Module):
    """A learned head: the two 10-logit outputs (or their softmaxes), concatenated, through one hidden layer."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_head_input(cfg),  # (B, 2, 10) -> (B, 20)
            nn.Linear(2 * N_DIGITS, cfg.head_hidden),
            make_activation(cfg.activation, cfg.activation_alpha),
            nn.Linear(cfg.head_hidden, pair_width(cfg)),
        )

    def forward(self, digits: Tensor) -> Tensor:
        return as_log_probs(self.body(digits))


class LinearHead(nn.Module):
    """A single Linear layer on the two 10-logit outputs, or their softmaxes (reports 000 and 004)."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.body = nn.Sequential(*_head_input(cfg), nn.Linear(2 * N_DIGITS, pair_width(cfg)))

    def forward(self, digits: Tensor) -> Tensor:
        return as_log_probs(self.body(digits))


class ProbHead(nn.Module):
    """No parameters: P(d1 <= d2) = sum over i <= j of p1(i) p2(j), from the digit softmaxes.

    The comparison is then exactly as good as the digit classifiers, which is why it
    lifts accuracy: nothing has to be learned about ordering from 1,000 pairs."""

    def forward(self, digits: Tensor) -> Tensor:
        log_p = digits.log_softmax(-1)
        joint = log_p[:, 0, :, None] + log_p[:, 1, None, :]  # (B, 10, 10): log p1(i) p2(j)
        mask = LESS_EQUAL.to(joint.device)
        neg_inf = torch.finfo(joint.dtype).min
        log_le = joint.masked_fill(~mask, neg_inf).flatten(1).logsumexp(-1)
        log_gt = joint.masked_fill(mask, neg_inf).flatten(1).logsumexp(-1)
        return torch.stack([log_gt, log_le], dim=-1)


HEADS: dict[str, Callable[[NetConfig], nn.Module]] = {
    "mlp": MLPHead,
    "linear": LinearHead,
    "prob": lambda cfg: ProbHead(),
}
