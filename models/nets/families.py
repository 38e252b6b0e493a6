"""The network families: one builder per family, selected from the FAMILIES registry.

Every network maps a (B, 2, 14, 14) pair batch to a `NetOutput`: log-probabilities of
the pair target (B, 2) and, for networks that classify the digits, digit logits (B, 2, 10).
Using log-probabilities everywhere lets the learned heads (two logits, or one logit as the
reports' BCE) and the parameter-free `prob` head share one loss (negative log-likelihood).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn

from models.errors import ConfigError
from models.nets.activations import make_activation
from models.nets.configs import NetConfig
from models.nets.heads import HEADS, as_log_probs, pair_width

IMAGE_SIZE = 14
N_DIGITS = 10


class NetOutput(NamedTuple):
    pair_log_probs: Tensor  # (B, 2): log P(target = 0), log P(target = 1)
    digit_logits: (
        Tensor | None
    )  # (B, 2, 10) for networks that classify each digit (digit_output 'softmax': their softmax)
    extra_log_probs: Tensor | None  # (B, 2) from an intermediate pair head (cnn2ch, GoogLeNet-style)


def _conv(in_channels: int, out_channels: int, kernel: int, padding: str) -> list[nn.Module]:
    """A stride-1 convolution; 'same' padding of an even kernel is explicit (one more pixel after than
    before, as torch pads it), which spares torch's warning about copying the input on every call."""
    if padding == "valid" or kernel % 2:
        return [nn.Conv2d(in_channels, out_channels, kernel, padding=padding)]
    before = (kernel - 1) // 2
    after = kernel - 1 - before
    return [nn.ZeroPad2d((before, after, before, after)), nn.Conv2d(in_channels, out_channels, kernel)]


class ConvStack(nn.Module):
    """2-4 convolutions, each a block: conv -> [BatchNorm] -> [2x2 max-pool] -> activation -> [dropout], or with
    batch_norm_at="activation" conv -> [2x2 max-pool] -> activation -> [BatchNorm] -> [dropout].

    Padding ('same' or 'valid'), kernels and pool positions come from the config; `shapes[i]` is
    the (channels, side) of block i's output, which the intermediate head and the classifier need.
    With `output_layer` the last convolution gives the output maps: no batch norm, activation or pool."""

    def __init__(self, in_channels: int, cfg: NetConfig, *, output_layer: bool = False) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        self.shapes: list[tuple[int, int]] = []
        size, channels = IMAGE_SIZE, in_channels
        last = len(cfg.conv_channels)
        for i, (out, kernel) in enumerate(zip(cfg.conv_channels, cfg.kernels, strict=True), start=1):
            layers = _conv(channels, out, kernel, cfg.padding)
            size = size if cfg.padding == "same" else size - kernel + 1
            if output_layer and i == last:
                blocks.append(nn.Sequential(*layers))
                self.shapes.append((out, size))
                break
            if cfg.batch_norm and cfg.batch_norm_at == "conv":
                layers.append(nn.BatchNorm2d(out))
            if i in cfg.pool_after:
                # Pooling before the activation computes the activation on a quarter of the pixels (an
                # epoch 1.05-1.09x faster); the result is the same, since every activation is non-decreasing.
                layers.append(nn.MaxPool2d(2))
                size //= 2
            layers.append(make_activation(cfg.activation, cfg.activation_alpha))
            if cfg.batch_norm and cfg.batch_norm_at == "activation":
                layers.append(nn.BatchNorm2d(out))
            if i == last and cfg.dropout_at == "last_conv" and cfg.dropout > 0:
                layers.append(nn.Dropout(cfg.dropout))
            if size < 1:
                raise ConfigError(f"conv {i} leaves no pixels of the 14x14 digit; use fewer valid convs or pools.")
            blocks.append(nn.Sequential(*layers))
            self.shapes.append((out, size))
            channels = out
        self.blocks = nn.Sequential(*blocks)

    @property
    def n_features(self) -> int:
        channels, size = self.shapes[-1]
        return channels * size * size

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(x)


def dense_stack(
    in_features: int, widths: tuple[int, ...], out_features: int, cfg: NetConfig, *, dropout: bool = True
) -> nn.Sequential:
    """Hidden Linear layers (dropout -> Linear -> [BatchNorm] -> activation), then an output Linear.

    Dropout sits before every Linear when the config places it in dense stacks (and `dropout`)."""
    layers: list[nn.Module] = [nn.Flatten()]
    drop = dropout and cfg.dropout > 0 and cfg.dropout_at == "dense"
    features = in_features
    for width in widths:
        if drop:
            layers.append(nn.Dropout(cfg.dropout))
        layers.append(nn.Linear(features, width))
        if cfg.batch_norm and cfg.batch_norm_dense:
            layers.append(nn.BatchNorm1d(width))
        layers.append(make_activation(cfg.activation, cfg.activation_alpha))
        features = width
    if drop:
        layers.append(nn.Dropout(cfg.dropout))
    layers.append(nn.Linear(features, out_features))
    return nn.Sequential(*layers)


class MLPNet(nn.Module):
    """The flattened 2x14x14 pair through fully connected layers (the reports' first baseline)."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.body = dense_stack(2 * IMAGE_SIZE * IMAGE_SIZE, cfg.hidden, pair_width(cfg), cfg)

    def forward(self, x: Tensor) -> NetOutput:
        return NetOutput(as_log_probs(self.body(x)), None, None)


class TwoChannelCNN(nn.Module):
    """The two digits as two channels of one CNN; optionally pure-conv, optionally an intermediate head.

    With `predict_digits` the classifier ends in both digits' 10 logits and a comparison head compares
    them: one network for the pair, yet with digit outputs for the auxiliary loss (report 002's CNN_AL,
    read as its basic CNN with the auxiliary losses added)."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        channels = cfg.conv_channels[-1]
        maps_are_output = cfg.pure_conv and channels <= 2  # report 001's conv nets: the last conv gives the logit map
        self.features = ConvStack(2, cfg, output_layer=maps_are_output)
        if maps_are_output:
            # (B, 1 or 2, H, W) -> average over space -> one logit (BCE) or two
            self.classifier: nn.Module = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        elif cfg.pure_conv:
            # (B, C, H, W) -> 1x1 conv to 2 maps -> global average -> (B, 2)
            self.classifier = nn.Sequential(nn.Conv2d(channels, 2, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        else:
            width = 2 * N_DIGITS if cfg.predict_digits else pair_width(cfg)
            self.classifier = dense_stack(self.features.n_features, cfg.fc_widths, width, cfg)
        self.head = HEADS[cfg.head](cfg) if cfg.predict_digits else None
        self.split = cfg.intermediate_after if cfg.intermediate_head else len(cfg.conv_channels)
        self.intermediate = None
        if cfg.intermediate_head:
            channels, size = self.features.shapes[self.split - 1]
            pool: list[nn.Module] = [nn.MaxPool2d(2)] if cfg.intermediate_pool else []
            n = channels * (size // 2 if cfg.intermediate_pool else size) ** 2
            head = dense_stack(n, cfg.intermediate_hidden, pair_width(cfg), cfg, dropout=False)
            self.intermediate = nn.Sequential(*pool, *head)

    def forward(self, x: Tensor) -> NetOutput:
        blocks = self.features.blocks
        early = blocks[: self.split](x)
        extra = as_log_probs(self.intermediate(early)) if self.intermediate is not None else None
        out = self.classifier(blocks[self.split :](early))
        if self.head is not None:
            digits = out.view(-1, 2, N_DIGITS)
            return NetOutput(self.head(digits), digits, extra)
        return NetOutput(as_log_probs(out), None, extra)


def digit_tower(cfg: NetConfig) -> nn.Module:
    """One digit (B, 1, 14, 14) -> 10 digit logits (fusion 'digits'), or -> flattened features ('features')."""
    if cfg.fusion == "features":
        return nn.Sequential(ConvStack(1, cfg), nn.Flatten())
    last: list[nn.Module] = [make_activation(cfg.activation, cfg.activation_alpha)] if cfg.digit_activation else []
    if cfg.tower == "conv":
        convs = ConvStack(1, cfg)
        return nn.Sequential(convs, dense_stack(convs.n_features, cfg.fc_widths, N_DIGITS, cfg), *last)
    return nn.Sequential(*dense_stack(IMAGE_SIZE * IMAGE_SIZE, cfg.hidden, N_DIGITS, cfg), *last)


class SiameseNet(nn.Module):
    """A digit tower per image (one shared, or two of the same shape) and a comparison.

    fusion 'digits': each tower ends in 10 digit logits and the head compares the two.
    fusion 'features' (report 001): the towers' features, concatenated, go through a classifier;
    one separate digit classifier (the same for both images, with or without weight sharing, as
    the report has it) reads each digit's features for the auxiliary loss and plays no part in the
    pair output."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        n_towers = 1 if cfg.weight_sharing else 2
        self.towers = nn.ModuleList([digit_tower(cfg) for _ in range(n_towers)])
        self.fuse_features = cfg.fusion == "features"
        self.digit_softmax = cfg.digit_output == "softmax"
        self.digit_classifier = None
        if self.fuse_features:
            n_features = self.towers[0][0].n_features
            self.head: nn.Module = dense_stack(2 * n_features, cfg.fc_widths, pair_width(cfg), cfg)
            if cfg.aux_classifier:
                self.digit_classifier = dense_stack(n_features, cfg.aux_hidden, N_DIGITS, cfg)
        else:
            self.head = HEADS[cfg.head](cfg)

    @staticmethod
    def _per_digit(modules: nn.ModuleList | list[nn.Module], x: Tensor) -> Tensor:
        """(B, 2, ...) -> (B, 2, F): each digit through its module (one module for both, or one each)."""
        b = x.shape[0]
        if len(modules) == 1:
            # (B, 2, ...) -> (2B, ...): both digits in one pass, so batch norm sees both
            out = modules[0](x.transpose(0, 1).reshape(2 * b, *x.shape[2:]))
            return out.view(2, b, -1).transpose(0, 1)
        return torch.stack([module(x[:, i]) for i, module in enumerate(modules)], dim=1)

    def forward(self, x: Tensor) -> NetOutput:
        per_digit = self._per_digit(self.towers, x[:, :, None])  # (B, 2, 10) logits or (B, 2, F) features
        if not self.fuse_features:
            digits = per_digit.softmax(-1) if self.digit_softmax else per_digit  # what the digit loss reads
            return NetOutput(self.head(per_digit), digits, None)  # the heads give log-probabilities
        digits = self._per_digit([self.digit_classifier], per_digit) if self.digit_classifier is not None else None
        return NetOutput(as_log_probs(self.head(per_digit)), digits, None)


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
