"""A trained network as a file: its configurations, the normalisation fitted on its training pairs and its
weights, enough to answer "is the first digit <= the second?" for new pairs without the training data.

    model = TrainedModel.load("model.pt")
    answer = model.predict(images)  # images: (N, 2, 14, 14) raw pixels, as the draws give them (0..255)
    answer.first_le_second, answer.probability, answer.digits
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from models.data.draws import NORMALISATIONS, PairSet
from models.errors import DataError
from models.nets.configs import NetConfig, TrainConfig
from models.nets.families import build_net
from models.training.train import EVAL_CHUNK, scoring_mode, view_probabilities

__all__ = ["Prediction", "TrainedModel"]

FORMAT = "digit-pair-model/1"  # the file's own version: a reader refuses a format it does not know


@dataclass(frozen=True)
class Prediction:
    """The answers for N pairs."""

    probability: Tensor  # (N,): P(first digit <= second digit)
    digit_probabilities: Tensor | None  # (N, 2, 10): each image's class probabilities; None without digit outputs

    @property
    def first_le_second(self) -> Tensor:
        """(N,) bool: the answer, P >= 0.5 as the test accuracy scores it."""
        return self.probability >= 0.5

    @property
    def digits(self) -> Tensor | None:
        """(N, 2): each image's most probable class."""
        return None if self.digit_probabilities is None else self.digit_probabilities.argmax(-1)

    @classmethod
    def mean(cls, predictions: list[Prediction]) -> Prediction:
        """The ensemble's answer: every model's probabilities averaged."""
        digits = [p.digit_probabilities for p in predictions]
        return cls(
            probability=torch.stack([p.probability for p in predictions]).mean(0),
            digit_probabilities=None if any(d is None for d in digits) else torch.stack(digits).mean(0),
        )


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """A trained network and what it needs to score pairs it never saw (tensors on the CPU)."""

    net: NetConfig
    train: TrainConfig
    normalisation: Any  # the fitted models.data.draws normalisation of its training pairs
    state_dict: dict[str, Tensor]

    @classmethod
    def of(cls, net: NetConfig, train: TrainConfig, normalisation: Any, model: torch.nn.Module) -> TrainedModel:
        """A copy of `model`'s current weights, detached and on the CPU."""
        state = {name: value.detach().to("cpu", copy=True) for name, value in model.state_dict().items()}
        return cls(net=net, train=train, normalisation=normalisation, state_dict=state)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        fields = {f.name: getattr(self.normalisation, f.name) for f in dataclasses.fields(self.normalisation)}
        torch.save(
            {
                "format": FORMAT,
                "net": self.net.to_dict(),
                "train": self.train.to_dict(),
                "normalisation": {"kind": self.train.normalisation, "fields": fields},
                "state_dict": self.state_dict,
            },
            path,
        )
        return path

    @classmethod
    def load(cls, path: str | Path) -> TrainedModel:
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: no such model file.")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # a truncated file, or not a torch file at all
            raise DataError(f"{path}: not a model file written by `search evaluate-best --save` ({error}).") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise DataError(f"{path}: not a model file of format {FORMAT!r}.")
        train = TrainConfig.from_dict(data["train"])
        norm = data["normalisation"]
        return cls(
            net=NetConfig.from_dict(data["net"]),
            train=train,
            normalisation=NORMALISATIONS[norm["kind"]](**norm["fields"]),
            state_dict=data["state_dict"],
        )

    def module(self) -> torch.nn.Module:
        """The network with these weights, in its scoring mode."""
        model = build_net(self.net)
        model.load_state_dict(self.state_dict)
        scoring_mode(model, self.train.bn_scoring)
        return model

    @torch.no_grad()
    def predict(self, images: Tensor) -> Prediction:
        """Score pairs of raw 14x14 images, (N, 2, 14, 14), as evaluation scores its test pairs."""
        if images.ndim != 4 or tuple(images.shape[1:]) != (2, 14, 14):
            raise DataError(
                f"predict needs pairs of 14x14 images, shape (N, 2, 14, 14), but got {tuple(images.shape)}."
            )
        n = images.shape[0]
        pairs = PairSet(
            input=images.float(), target=torch.zeros(n, dtype=torch.long), classes=torch.zeros(n, 2, dtype=torch.long)
        )
        inputs = self.normalisation.apply(pairs).input
        model = self.module()
        pair_parts, digit_parts = [], []
        for start in range(0, n, EVAL_CHUNK):
            pair_probs, digit_probs = view_probabilities(
                model, inputs[start : start + EVAL_CHUNK], self.train.tta, fill=self.normalisation.fill
            )
            pair_parts.append(pair_probs / pair_probs.sum(-1, keepdim=True))
            if digit_probs is not None:
                digit_parts.append(digit_probs / digit_probs.sum(-1, keepdim=True))
        probability = torch.cat(pair_parts)[:, 1]
        return Prediction(probability=probability, digit_probabilities=torch.cat(digit_parts) if digit_parts else None)
