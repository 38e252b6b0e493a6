"""The training objective: the pair loss plus an optional auxiliary loss, weighted as the reports did.

The auxiliary loss is the digit classification of both images (CE(d1) + CE(d2)) for
networks with digit outputs, or the intermediate pair head's loss for a cnn2ch with one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from models.nets.configs import TrainConfig
from models.nets.families import NetOutput


def loss_terms(out: NetOutput, target: Tensor, classes: Tensor) -> tuple[Tensor, Tensor | None]:
    """(main, aux): mean pair NLL and, where the network has one, the mean auxiliary loss."""
    main = F.nll_loss(out.pair_log_probs.float(), target)
    if out.digit_logits is not None:
        # (B, 2, 10) vs (B, 2): CE(d1) + CE(d2), each a mean over the batch
        aux = 2 * F.cross_entropy(out.digit_logits.float().flatten(0, 1), classes.flatten())
    elif out.extra_log_probs is not None:
        aux = F.nll_loss(out.extra_log_probs.float(), target)
    else:
        aux = None
    return main, aux


class LossWeighting:
    """Combines main and auxiliary losses by the configured scheme; remembers initial values.

    Schemes: none -> main; alpha -> main + alpha*aux; ratio -> ratio*main + aux (aux the digits' summed
    cross-entropies, or with digit_loss 'mean' their mean);
    normalized -> main/main0 + alpha*aux/aux0 with main0, aux0 the first batch's losses,
    so that neither loss dominates just because of its scale. During the staged scheme's
    first epochs only the digit loss trains."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.initial: tuple[Tensor, Tensor] | None = None

    def __call__(self, main: Tensor, aux: Tensor | None, *, epoch: int) -> Tensor:
        cfg = self.cfg
        if aux is None or (cfg.aux_loss == "none" and epoch >= cfg.staged_epochs):
            return main
        if cfg.digit_loss == "mean":  # check_compatible: only networks whose aux is the digit loss get here
            aux = aux / 2
        if epoch < cfg.staged_epochs:
            return aux
        if cfg.aux_loss == "alpha":
            return main + cfg.alpha * aux
        if cfg.aux_loss == "ratio":
            return cfg.ratio * main + aux
        if self.initial is None:
            self.initial = (main.detach().clamp_min(1e-8), aux.detach().clamp_min(1e-8))
        main0, aux0 = self.initial
        return main / main0 + cfg.alpha * aux / aux0


def is_finite(loss: Tensor) -> bool:
    return bool(torch.isfinite(loss).all())
