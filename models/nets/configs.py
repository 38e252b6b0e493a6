"""Frozen, hashable configurations: what network to build and how to train it.

A configuration is plain data so it can be stored as JSON beside a trial, compared,
and rebuilt later into the very same model. Each field is checked when the object is
built; combinations that only make sense together are checked by `check_compatible`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from models.errors import ConfigError

FAMILY_NAMES = ("mlp", "cnn2ch", "siamese")
ACTIVATION_NAMES = ("relu", "leaky_relu", "elu", "selu", "sigmoid", "tanh", "identity")
TOWER_NAMES = ("conv", "fc")
HEAD_NAMES = ("mlp", "linear", "prob")
HEAD_INPUT_NAMES = ("logits", "softmax")
DIGIT_OUTPUT_NAMES = ("logits", "softmax")
FUSION_NAMES = ("digits", "features")
PADDING_NAMES = ("same", "valid")
DROPOUT_PLACES = ("dense", "last_conv")
PAIR_OUTPUT_NAMES = ("two", "logit")
STAGED_SECOND_NAMES = ("all", "head")
OPTIMIZER_NAMES = ("sgd", "adam", "rmsprop")
SCHEDULE_NAMES = ("exponential", "cosine", "geometric")
TTA_NAMES = ("none", "shift")  # models.data.augment.tta_views
BN_SCORING_NAMES = ("running", "batch")  # models.training.train.scoring_mode
AUX_LOSS_NAMES = ("none", "alpha", "ratio", "normalized")
DIGIT_LOSS_NAMES = ("sum", "mean")
NORMALISATION_NAMES = ("scalar", "pixel", "none")  # models.data.draws.NORMALISATIONS
BATCH_NORM_PLACES = ("conv", "activation")  # models.nets.families.ConvStack


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _choice(field: str, value: str, allowed: tuple[str, ...]) -> None:
    _require(value in allowed, f"{field} must be one of {', '.join(allowed)}, but got {value!r}.")


def _widths(field: str, value: tuple[int, ...], *, min_len: int, max_len: int) -> None:
    """A tuple of positive integer widths (or kernel sizes) of an allowed length."""
    _require(
        isinstance(value, tuple) and min_len <= len(value) <= max_len,
        f"{field} must be a tuple of {min_len} to {max_len} widths, but got {value!r}.",
    )
    _require(
        all(isinstance(w, int) and w >= 1 for w in value), f"{field} widths must be integers >= 1, but got {value!r}."
    )


@dataclass(frozen=True)
class NetConfig:
    """The network: one family from the registry in `models.nets.families`, with its options.

    The defaults are the product's own networks; the other values exist so that every published
    model of the five source reports can be written down as it was described (search.reproduction.presets)."""

    family: str = "siamese"  # mlp | cnn2ch | siamese
    activation: str = "relu"  # relu | leaky_relu | elu | selu | sigmoid | tanh
    activation_alpha: float | None = None  # ELU alpha / LeakyReLU negative slope; None: torch's default (1.0 / 0.01)
    batch_norm: bool = False  # BatchNorm after every conv (and every hidden Linear, see batch_norm_dense)
    batch_norm_dense: bool = True  # with batch_norm: also after hidden Linear layers (False: convolutions only)
    # with batch_norm, where a conv block's BatchNorm sits: conv (conv -> BN -> pool -> act) | activation (conv ->
    # pool -> act -> BN); the same parameters either way
    batch_norm_at: str = "conv"
    dropout: float = 0.0  # dropout rate, in [0, 1), placed by dropout_at
    dropout_at: str = "dense"  # dense: before every Linear of a dense stack | last_conv: once, after the last conv
    hidden: tuple[int, ...] = (128,)  # mlp family: hidden widths; siamese fc tower: its hidden widths
    tower: str = "conv"  # siamese: conv (CNN per digit) | fc (MLP per digit)
    conv_channels: tuple[int, ...] = (32, 64)  # cnn2ch and conv towers: 2-4 conv layers, their channels
    kernel_size: int | tuple[int, ...] = 3  # conv kernel: one size for all, or one per conv (2-7)
    padding: str = "same"  # same: size-preserving convolutions | valid: unpadded (each conv shrinks the map)
    pool_after: tuple[int, ...] = (1, 2)  # a 2x2 max-pool after these convolutions (1-based; () = none)
    fc_width: int | tuple[int, ...] = 128  # conv nets: hidden Linear width(s) after the convs; () = none
    pure_conv: bool = (
        False  # cnn2ch: no Linear; the last conv's maps averaged (1 map: one logit; 2: two; else a 1x1 conv to 2 first)
    )
    intermediate_head: bool = False  # cnn2ch: GoogLeNet-style extra pair head (its loss weighted by alpha)
    intermediate_after: int = 1  # the conv (1-based) whose output (after its pool, if any) the extra head reads
    intermediate_pool: bool = False  # the extra head's own 2x2 max-pool before its Linear layers
    intermediate_hidden: tuple[int, ...] = ()  # the extra head's hidden widths
    # cnn2ch: the classifier ends in 20 logits, both digits' classes read from the two channels together, and
    # the comparison head (head, head_hidden) compares them; the auxiliary loss trains those digits
    predict_digits: bool = False
    weight_sharing: bool = True  # siamese: one tower for both digits (True) or two towers of one shape
    fusion: str = "digits"  # siamese: digits (towers end in 10 logits, the head compares them) | features (see below)
    # fusion = "features" (report 001): the towers are the conv block alone; their flattened features,
    # concatenated, go through a classifier of fc_width hidden Linears; digits come from a separate classifier.
    aux_classifier: bool = False  # features fusion: a 10-way classifier on each digit's features (aux loss only)
    aux_hidden: tuple[int, ...] = ()  # that classifier's hidden widths
    head: str = "mlp"  # siamese comparison head on the digit logits: mlp | linear | prob (P(d1 <= d2))
    head_hidden: int = 64  # siamese mlp head: hidden width
    head_input: str = "logits"  # a learned head (mlp, linear) reads: the digit logits | their softmax
    digit_output: str = "logits"  # the digit loss reads: the logits | their softmax, which CrossEntropyLoss
    # softmaxes again (the literal reading of a tower listed as ending '-> softmax' under CrossEntropyLoss)
    pair_output: str = (
        "two"  # two: 2 logits, softmax | logit: one logit, sigmoid (the reports' BCE); learned outputs only
    )
    # siamese towers that end in the digits: the activation after their last Linear too, so that the head
    # and the digit loss read activated outputs (report 004's towers, "all with ReLU activation functions")
    digit_activation: bool = False

    def __post_init__(self) -> None:
        _choice("family", self.family, FAMILY_NAMES)
        _choice("activation", self.activation, ACTIVATION_NAMES)
        _choice("tower", self.tower, TOWER_NAMES)
        _choice("head", self.head, HEAD_NAMES)
        _choice("head_input", self.head_input, HEAD_INPUT_NAMES)
        _choice("digit_output", self.digit_output, DIGIT_OUTPUT_NAMES)
        _choice("fusion", self.fusion, FUSION_NAMES)
        _choice("padding", self.padding, PADDING_NAMES)
        _choice("dropout_at", self.dropout_at, DROPOUT_PLACES)
        _choice("pair_output", self.pair_output, PAIR_OUTPUT_NAMES)
        _choice("batch_norm_at", self.batch_norm_at, BATCH_NORM_PLACES)
        _require(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), but got {self.dropout!r}.")
        _require(
            self.activation_alpha is None or (self.activation in ("elu", "leaky_relu") and self.activation_alpha > 0),
            f"activation_alpha applies to elu and leaky_relu and must be > 0, but got {self.activation_alpha!r} "
            f"with activation {self.activation!r}.",
        )
        _widths("hidden", self.hidden, min_len=1, max_len=6)
        _widths("conv_channels", self.conv_channels, min_len=2, max_len=4)
        _widths("kernel_size", self.kernels, min_len=len(self.conv_channels), max_len=len(self.conv_channels))
        _require(
            all(2 <= k <= 7 for k in self.kernels),
            f"kernel_size must be between 2 and 7, but got {self.kernel_size!r}.",
        )
        n_convs = len(self.conv_channels)
        _require(
            all(isinstance(i, int) and 1 <= i <= n_convs for i in self.pool_after),
            f"pool_after must name convolutions 1 to {n_convs}, but got {self.pool_after!r}.",
        )
        _widths("fc_width", self.fc_widths, min_len=0, max_len=4)
        _widths("intermediate_hidden", self.intermediate_hidden, min_len=0, max_len=3)
        _widths("aux_hidden", self.aux_hidden, min_len=0, max_len=3)
        _require(
            1 <= self.intermediate_after < n_convs,
            f"intermediate_after must name a convolution before the last (1 to {n_convs - 1}), "
            f"but got {self.intermediate_after!r}.",
        )
        _require(
            self.head_input == "logits" or (self.fusion == "digits" and self.head in ("mlp", "linear")),
            "head_input 'softmax' is for a learned head (mlp, linear) on the digit logits (fusion 'digits'); "
            f"the prob head reads the softmax already, but got head={self.head!r}, fusion={self.fusion!r} "
            "with head_input='softmax': set head_input='logits' with it.",
        )
        _require(
            self.digit_output == "logits" or (self.family == "siamese" and self.fusion == "digits"),
            "digit_output 'softmax' is for siamese towers that end in the digits (fusion 'digits').",
        )
        _require(
            not self.digit_activation or (self.family == "siamese" and self.fusion == "digits"),
            "digit_activation is for siamese towers that end in the digits (fusion 'digits').",
        )
        _require(
            not self.predict_digits or (self.family == "cnn2ch" and not self.pure_conv and not self.intermediate_head),
            "predict_digits is for a cnn2ch with Linear layers (not pure_conv) and no intermediate_head.",
        )
        _require(self.head_hidden >= 1, f"head_hidden must be >= 1, but got {self.head_hidden!r}.")
        _require(
            not (self.fusion == "features" and self.tower != "conv"),
            "fusion 'features' needs tower 'conv' (its towers are the conv block alone).",
        )
        _require(
            not (self.aux_classifier and self.fusion != "features"),
            "aux_classifier belongs to fusion 'features'; with fusion 'digits' the towers' own logits are the digits.",
        )

    @property
    def kernels(self) -> tuple[int, ...]:
        """The kernel size of each convolution."""
        if isinstance(self.kernel_size, tuple):
            return self.kernel_size
        return (self.kernel_size,) * len(self.conv_channels)

    @property
    def fc_widths(self) -> tuple[int, ...]:
        """The hidden Linear widths after the convolutions."""
        return self.fc_width if isinstance(self.fc_width, tuple) else (self.fc_width,)

    @property
    def has_digit_outputs(self) -> bool:
        """Whether the network predicts the two digit classes (what the auxiliary loss trains)."""
        if self.family == "cnn2ch":
            return self.predict_digits
        return self.family == "siamese" and (self.fusion == "digits" or self.aux_classifier)

    @property
    def has_learned_head(self) -> bool:
        """Whether a siamese network has comparison parameters of its own (what staged 'head' training trains)."""
        if self.family == "cnn2ch":
            return self.predict_digits and self.head != "prob"
        return self.family == "siamese" and (self.fusion == "features" or self.head != "prob")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetConfig:
        return _from_dict(cls, data)


@dataclass(frozen=True)
class TrainConfig:
    """How a network is trained: optimizer, schedule, losses, augmentation."""

    optimizer: str = "sgd"  # sgd (with momentum) | adam | rmsprop
    lr: float = 0.1  # learning rate at epoch 0
    momentum: float = 0.9  # sgd and rmsprop momentum
    weight_decay: float = 0.0  # L2 penalty in the optimizer
    gamma: float = 1.0  # per-epoch exponential learning-rate decay, in (0, 1]
    schedule: str = "exponential"  # exponential: lr * gamma**epoch | cosine: lr annealed to 0 over the epochs | geometric: lr * decay_to**(epoch/epochs)
    decay_to: float = 0.01  # geometric schedule: the factor the lr falls by over the whole run, whatever its length
    batch_size: int = 100  # pairs per step
    epochs: int = 25  # passes over the training pairs
    aux_loss: str = "none"  # none | alpha: main + alpha*(CE(d1)+CE(d2)) | ratio: ratio*main + aux | normalized: each loss / its initial value
    alpha: float = 1.0  # weight of the auxiliary loss (alpha scheme; also the cnn2ch intermediate head's weight)
    digit_loss: str = "sum"  # sum: CE(d1) + CE(d2) | mean: their mean, one CrossEntropyLoss over both digits
    ratio: float = 1.0  # weight of the main loss in the ratio scheme
    shift: int = 0  # augmentation: random shift of each digit by up to this many pixels (0 = off)
    rotate: float = 0.0  # augmentation: random rotation of each digit by up to this many degrees (0 = off)
    scale: float = 0.0  # augmentation: random zoom of each digit by a factor in [1 - scale, 1 + scale] (0 = off)
    staged_epochs: int = 0  # staged scheme: train on the digit loss alone for this many epochs first
    staged_second: str = (
        "all"  # after the staged epochs: all parameters | head: the comparison head alone (towers frozen)
    )
    tta: str = "none"  # test-time augmentation of the final score: none | shift (mean over the pairs and their 4 one-pixel shifts)
    normalisation: str = "scalar"  # scalar: one mean/std over all pixels | pixel: each its own | none: raw
    bn_scoring: str = "running"  # batch norm when scoring: running (the averages kept in training, model.eval()) | batch (each chunk of scored pairs by its own statistics, as a loop that never calls model.eval() scores)

    def __post_init__(self) -> None:
        _choice("optimizer", self.optimizer, OPTIMIZER_NAMES)
        _choice("aux_loss", self.aux_loss, AUX_LOSS_NAMES)
        _choice("digit_loss", self.digit_loss, DIGIT_LOSS_NAMES)
        _choice("schedule", self.schedule, SCHEDULE_NAMES)
        _choice("tta", self.tta, TTA_NAMES)
        _choice("bn_scoring", self.bn_scoring, BN_SCORING_NAMES)
        _choice("normalisation", self.normalisation, NORMALISATION_NAMES)
        _choice("staged_second", self.staged_second, STAGED_SECOND_NAMES)
        _require(math.isfinite(self.lr) and self.lr > 0, f"lr must be a positive number, but got {self.lr!r}.")
        _require(0.0 <= self.momentum < 1.0, f"momentum must be in [0, 1), but got {self.momentum!r}.")
        _require(self.weight_decay >= 0, f"weight_decay must be >= 0, but got {self.weight_decay!r}.")
        _require(0.0 < self.gamma <= 1.0, f"gamma must be in (0, 1], but got {self.gamma!r}.")
        _require(0.0 < self.decay_to <= 1.0, f"decay_to must be in (0, 1], but got {self.decay_to!r}.")
        _require(self.batch_size >= 1, f"batch_size must be >= 1, but got {self.batch_size!r}.")
        _require(self.epochs >= 1, f"epochs must be >= 1, but got {self.epochs!r}.")
        _require(self.alpha >= 0, f"alpha must be >= 0, but got {self.alpha!r}.")
        _require(self.ratio > 0, f"ratio must be > 0, but got {self.ratio!r}.")
        _require(0 <= self.shift <= 3, f"shift must be between 0 and 3 pixels, but got {self.shift!r}.")
        _require(0.0 <= self.rotate <= 45.0, f"rotate must be between 0 and 45 degrees, but got {self.rotate!r}.")
        _require(0.0 <= self.scale < 0.5, f"scale must be in [0, 0.5), but got {self.scale!r}.")
        _require(
            0 <= self.staged_epochs < self.epochs,
            f"staged_epochs must be >= 0 and below epochs ({self.epochs}), but got {self.staged_epochs!r}.",
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return _from_dict(cls, data)


def check_compatible(net: NetConfig, train: TrainConfig) -> None:
    """Reject combinations the network cannot train with, before any work is done."""
    trains_digits = train.aux_loss != "none" or train.staged_epochs > 0
    if trains_digits and not net.has_digit_outputs:
        wanted = f"aux_loss={train.aux_loss!r}" if train.aux_loss != "none" else f"staged_epochs={train.staged_epochs}"
        if not (net.family == "cnn2ch" and net.intermediate_head and train.staged_epochs == 0):
            raise ConfigError(
                f"{wanted} needs digit outputs, which this {net.family!r} network does not have; "
                "use family 'siamese' (with fusion 'features': aux_classifier) "
                "or a cnn2ch with predict_digits (or intermediate_head for an auxiliary pair loss)."
            )
    if train.digit_loss == "mean" and not net.has_digit_outputs:
        raise ConfigError(
            f"digit_loss='mean' averages the two digits' cross-entropies, which this {net.family!r} network does not "
            "have: it needs digit outputs (family 'siamese')."
        )
    augments = [f"{name}={getattr(train, name)!r}" for name in ("shift", "rotate", "scale") if getattr(train, name)]
    augments += [f"tta={train.tta!r}"] if train.tta != "none" else []
    if train.normalisation == "pixel" and augments:
        raise ConfigError(
            f"{', '.join(augments)} fills shifted-in borders with one blank value, which normalisation='pixel' "
            "does not have (each pixel has its own): use normalisation='scalar' with augmentation."
        )
    if train.staged_second == "head" and not (train.staged_epochs > 0 and net.has_learned_head):
        raise ConfigError(
            "staged_second='head' trains the comparison head alone after the staged epochs: it needs "
            f"staged_epochs > 0 (got {train.staged_epochs}) and a siamese network with a learned head."
        )


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} field(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}.")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**values)
