"""The network families: one builder per family, selected from the FAMILIES registry.

Every network maps a (B, 2, 14, 14) pair batch to a `NetOutput`: log-probabilities of
the pair target (B, 2) and, for families that classify the digits, digit logits (B, 2, 10).
Using log-probabilities everywhere lets the learned heads and the parameter-free `prob`
head share one loss (negative log-likelihood).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
from torch import Tensor, nn

from models.activations import ACTIVATIONS
from models.configs import NetConfig
from models.heads import HEADS

IMAGE_SIZE = 14
N_DIGITS = 10


class NetOutput(NamedTuple):
    pair_log_probs: Tensor  # (B, 2): log P(target = 0), log P(target = 1)
    digit_logits: Tensor | None  # (B, 2, 10) for families that classify each digit
    extra_log_probs: Tensor | None  # (B, 2) from an intermediate pair head (cnn2ch, GoogLeNet-style)


def conv_stack(in_channels: int, cfg: NetConfig) -> tuple[nn.Sequential, int]:
    """2-4 'same' convolutions; a 2x2 max-pool after each of the first two (14 -> 7 -> 3).

    Returns the stack and its flattened output size."""
    layers: list[nn.Module] = []
    size, channels = IMAGE_SIZE, in_channels
    for i, out in enumerate(cfg.conv_channels):
        layers.append(nn.Conv2d(channels, out, cfg.kernel_size, padding=cfg.kernel_size // 2))
        if cfg.batch_norm:
            layers.append(nn.BatchNorm2d(out))
        layers.append(ACTIVATIONS[cfg.activation]())
        if i < 2:
            layers.append(nn.MaxPool2d(2))
            size //= 2
        channels = out
    return nn.Sequential(*layers), channels * size * size


def dense_stack(in_features: int, widths: tuple[int, ...], out_features: int, cfg: NetConfig) -> nn.Sequential:
    """Hidden Linear layers (dropout -> Linear -> [BatchNorm] -> activation), then an output Linear."""
    layers: list[nn.Module] = [nn.Flatten()]
    features = in_features
    for width in widths:
        if cfg.dropout > 0:
            layers.append(nn.Dropout(cfg.dropout))
        layers.append(nn.Linear(features, width))
        if cfg.batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(ACTIVATIONS[cfg.activation]())
        features = width
    if cfg.dropout > 0:
        layers.append(nn.Dropout(cfg.dropout))
    layers.append(nn.Linear(features, out_features))
    return nn.Sequential(*layers)


class MLPNet(nn.Module):
    """The flattened 2x14x14 pair through fully connected layers (the reports' first baseline)."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.body = dense_stack(2 * IMAGE_SIZE * IMAGE_SIZE, cfg.hidden, 2, cfg)

    def forward(self, x: Tensor) -> NetOutput:
        return NetOutput(self.body(x).log_softmax(-1), None, None)


class TwoChannelCNN(nn.Module):
    """The two digits as two channels of one CNN; optionally pure-conv, optionally an intermediate head."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.features, n_features = conv_stack(2, cfg)
        if cfg.pure_conv:
            # (B, C, 3, 3) -> 1x1 conv to 2 maps -> global average -> (B, 2)
            self.classifier: nn.Module = nn.Sequential(
                nn.Conv2d(cfg.conv_channels[-1], 2, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten()
            )
        else:
            self.classifier = dense_stack(n_features, (cfg.fc_width,), 2, cfg)
        self.n_first_block = 4 if cfg.batch_norm else 3  # conv, [bn], act, pool
        self.intermediate = None
        if cfg.intermediate_head:
            first = cfg.conv_channels[0] * (IMAGE_SIZE // 2) ** 2
            self.intermediate = nn.Sequential(nn.Flatten(), nn.Linear(first, 2))

    def forward(self, x: Tensor) -> NetOutput:
        first = self.features[: self.n_first_block](x)
        extra = self.intermediate(first).log_softmax(-1) if self.intermediate is not None else None
        out = self.classifier(self.features[self.n_first_block :](first))
        return NetOutput(out.log_softmax(-1), None, extra)


def digit_tower(cfg: NetConfig) -> nn.Sequential:
    """One digit (B, 1, 14, 14) -> 10 digit logits, by a CNN or an MLP."""
    if cfg.tower == "conv":
        convs, n_features = conv_stack(1, cfg)
        return nn.Sequential(*convs, *dense_stack(n_features, (cfg.fc_width,), N_DIGITS, cfg))
    return dense_stack(IMAGE_SIZE * IMAGE_SIZE, cfg.hidden, N_DIGITS, cfg)


class SiameseNet(nn.Module):
    """A digit tower per image (one shared, or two of the same shape) and a comparison head."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.weight_sharing = cfg.weight_sharing
        self.towers = nn.ModuleList([digit_tower(cfg)] if cfg.weight_sharing else [digit_tower(cfg), digit_tower(cfg)])
        self.head = HEADS[cfg.head](cfg)

    def forward(self, x: Tensor) -> NetOutput:
        b = x.shape[0]
        if self.weight_sharing:
            # (B, 2, 14, 14) -> (2B, 1, 14, 14): both digits in one pass, so batch norm sees both
            digits = self.towers[0](x.transpose(0, 1).reshape(2 * b, 1, IMAGE_SIZE, IMAGE_SIZE))
            digits = digits.view(2, b, N_DIGITS).transpose(0, 1)
        else:
            digits = torch.stack([tower(x[:, i : i + 1]) for i, tower in enumerate(self.towers)], dim=1)
        return NetOutput(self.head(digits), digits, None)


FAMILIES: dict[str, Callable[[NetConfig], nn.Module]] = {
    "mlp": MLPNet,
    "cnn2ch": TwoChannelCNN,
    "siamese": SiameseNet,
}


def build_net(cfg: NetConfig) -> nn.Module:
    return FAMILIES[cfg.family](cfg)


def count_parameters(cfg: NetConfig) -> int:
    """Trainable parameters of the network `cfg` describes (the reports' 'parameters' column)."""
    return sum(p.numel() for p in build_net(cfg).parameters() if p.requires_grad)
