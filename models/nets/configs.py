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


@dataclass(frozen=True)
class Interval:
    """The numbers a field accepts. `describe` words the rule once, for the error a config raises and for the
    study-definition reference (docs/study-definition.md), so the two cannot say different things."""

    low: float
    high: float | None = None  # None: no upper bound
    open_low: bool = False  # low itself is excluded
    open_high: bool = False  # high itself is excluded
    unit: str = ""  # said after a closed range: "between 0 and 3 pixels"

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            return False
        above = value > self.low if self.open_low else value >= self.low
        below = self.high is None or (value < self.high if self.open_high else value <= self.high)
        return above and below

    def describe(self) -> str:
        """'>= 1', '> 0', 'in [0, 1)', 'in (0, 1]' or 'between 0 and 45 degrees'."""
        if self.high is None:
            return f"{'>' if self.open_low else '>='} {self.low:g}"
        if not (self.open_low or self.open_high):
            return f"between {self.low:g} and {self.high:g}" + (f" {self.unit}" if self.unit else "")
        return f"in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}{')' if self.open_high else ']'}"


@dataclass(frozen=True)
class Widths:
    """A tuple field's lengths: min_len to max_len integers >= 1 (layer widths, kernel sizes)."""

    min_len: int
    max_len: int
    single: bool = False  # a bare integer stands for a one-element tuple (fc_width = 128)

    def describe(self) -> str:
        """'1 to 6 integers >= 1', with ', or one integer' where a bare integer is accepted."""
        return f"{self.min_len} to {self.max_len} integers >= 1" + (", or one integer" if self.single else "")


# The rules of single fields, checked by both configs' __post_init__ (`_check_fields`) and listed by the
# study-definition reference. Rules that involve another field (a kernel size per convolution, staged
# epochs below epochs) stay in __post_init__ and `check_compatible`.
CHOICES: dict[str, tuple[str, ...]] = {
    "family": FAMILY_NAMES,
    "activation": ACTIVATION_NAMES,
    "batch_norm_at": BATCH_NORM_PLACES,
    "dropout_at": DROPOUT_PLACES,
    "tower": TOWER_NAMES,
    "padding": PADDING_NAMES,
    "fusion": FUSION_NAMES,
    "head": HEAD_NAMES,
    "head_input": HEAD_INPUT_NAMES,
    "digit_output": DIGIT_OUTPUT_NAMES,
    "pair_output": PAIR_OUTPUT_NAMES,
    "optimizer": OPTIMIZER_NAMES,
    "schedule": SCHEDULE_NAMES,
    "aux_loss": AUX_LOSS_NAMES,
    "digit_loss": DIGIT_LOSS_NAMES,
    "staged_second": STAGED_SECOND_NAMES,
    "tta": TTA_NAMES,
    "normalisation": NORMALISATION_NAMES,
    "bn_scoring": BN_SCORING_NAMES,
}
INTERVALS: dict[str, Interval] = {  # a tuple's every element; None (unset) passes
    "activation_alpha": Interval(0.0, open_low=True),
    "dropout": Interval(0.0, 1.0, open_high=True),
    "kernel_size": Interval(2, 7),
    "intermediate_after": Interval(1),
    "head_hidden": Interval(1),
    "lr": Interval(0.0, open_low=True),
    "momentum": Interval(0.0, 1.0, open_high=True),
    "weight_decay": Interval(0.0),
    "gamma": Interval(0.0, 1.0, open_low=True),
    "decay_to": Interval(0.0, 1.0, open_low=True),
    "batch_size": Interval(1),
    "epochs": Interval(1),
    "alpha": Interval(0.0),
    "ratio": Interval(0.0, open_low=True),
    "shift": Interval(0, 3, unit="pixels"),
    "rotate": Interval(0.0, 45.0, unit="degrees"),
    "scale": Interval(0.0, 0.5, open_high=True),
    "staged_epochs": Interval(0),
}
WIDTHS: dict[str, Widths] = {
    "hidden": Widths(1, 6),
    "conv_channels": Widths(2, 4),
    "fc_width": Widths(0, 4, single=True),
    "intermediate_hidden": Widths(0, 3),
    "aux_hidden": Widths(0, 3),
}


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


def _check_fields(config: NetConfig | TrainConfig) -> None:
    """Each field against its rule in CHOICES, WIDTHS and INTERVALS, in field order."""
    for field in dataclasses.fields(config):
        name, value = field.name, getattr(config, field.name)
        if name in CHOICES:
            _choice(name, value, CHOICES[name])
        if name in WIDTHS:
            widths = WIDTHS[name]
            single = widths.single and isinstance(value, int) and not isinstance(value, bool)
            _widths(name, (value,) if single else value, min_len=widths.min_len, max_len=widths.max_len)
        if name in INTERVALS and value is not None:
            interval = INTERVALS[name]
            _require(
                all(v in interval for v in (value if isinstance(value, tuple) else (value,))),
                f"{name} must be {interval.describe()}, but got {value!r}.",
            )


@dataclass(frozen=True)
class NetConfig:
    """The network: one family from the registry in `models.nets.families`, with its options.

    The defaults are the product's own networks; the other values exist so that every published
    model of the five source reports can be written down as it was described (search.reproduction.presets)."""

    family: str = (
        "siamese"  # mlp: both digits flattened | cnn2ch: the digits as two channels | siamese: a tower per digit
    )
    activation: str = "relu"  # the nonlinearity after every hidden layer (identity: none)
    activation_alpha: float | None = None  # ELU alpha / LeakyReLU negative slope; unset: torch's default (1.0 / 0.01)
    batch_norm: bool = False  # BatchNorm after every conv (and every hidden Linear, see batch_norm_dense)
    batch_norm_dense: bool = True  # with batch_norm: also after hidden Linear layers (False: convolutions only)
    # with batch_norm, where a conv block's BatchNorm sits: conv (conv -> BN -> pool -> act) | activation (conv ->
    # pool -> act -> BN); the same parameters either way
    batch_norm_at: str = "conv"
    dropout: float = 0.0  # dropout rate, placed by dropout_at
    dropout_at: str = "dense"  # dense: before every Linear of a dense stack | last_conv: once, after the last conv
    hidden: tuple[int, ...] = (128,)  # mlp family: hidden widths; siamese fc tower: its hidden widths
    tower: str = "conv"  # siamese: conv (CNN per digit) | fc (MLP per digit)
    conv_channels: tuple[int, ...] = (32, 64)  # cnn2ch and conv towers: the channels of each conv layer
    kernel_size: int | tuple[int, ...] = 3  # conv kernel: one size for all, or one per conv
    padding: str = "same"  # same: size-preserving convolutions | valid: unpadded (each conv shrinks the map)
    pool_after: tuple[int, ...] = (1, 2)  # a 2x2 max-pool after these convolutions (1-based; () = none)
    fc_width: int | tuple[int, ...] = 128  # conv nets: hidden Linear width(s) after the convs; () = none
    pure_conv: bool = (
        False  # cnn2ch: no Linear; the last conv's maps averaged (1 map: one logit; 2: two; else a 1x1 conv to 2 first)
    )
    intermediate_head: bool = False  # cnn2ch: GoogLeNet-style extra pair head (its loss weighted by alpha)
    intermediate_after: int = (
        1  # the conv (1-based, before the last) whose output (after its pool, if any) the extra head reads
    )
    intermediate_pool: bool = False  # the extra head's own 2x2 max-pool before its Linear layers
    intermediate_hidden: tuple[int, ...] = ()  # the extra head's hidden widths
    # cnn2ch: the classifier ends in 20 logits, both digits' classes read from the two channels together, and
    # the comparison head (head, head_hidden) compares them; the auxiliary loss trains those digits
    predict_digits: bool = False
    weight_sharing: bool = True  # siamese: one tower for both digits (True) or two towers of one shape
    # siamese: digits (towers end in 10 logits, the head compares them) | features (report 001: the towers are the
    # conv block alone; their flattened features, concatenated, go through a classifier of fc_width hidden
    # Linears, and the digits come from a separate classifier)
    fusion: str = "digits"
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
        _check_fields(self)
        _require(
            self.activation_alpha is None or self.activation in ("elu", "leaky_relu"),
            f"activation_alpha applies to elu and leaky_relu, but got {self.activation_alpha!r} "
            f"with activation {self.activation!r}.",
        )
        _widths("kernel_size", self.kernels, min_len=len(self.conv_channels), max_len=len(self.conv_channels))
        n_convs = len(self.conv_channels)
        _require(
            all(isinstance(i, int) and 1 <= i <= n_convs for i in self.pool_after),
            f"pool_after must name convolutions 1 to {n_convs}, but got {self.pool_after!r}.",
        )
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
    gamma: float = 1.0  # exponential schedule: the factor the lr falls by per epoch
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
    staged_epochs: int = 0  # staged scheme: train on the digit loss alone for this many epochs first (below epochs)
    staged_second: str = (
        "all"  # after the staged epochs: all parameters | head: the comparison head alone (towers frozen)
    )
    tta: str = "none"  # test-time augmentation of the final score: none | shift (mean over the pairs and their 4 one-pixel shifts)
    normalisation: str = "scalar"  # scalar: one mean/std over all pixels | pixel: each its own | none: raw
    bn_scoring: str = "running"  # batch norm when scoring: running (the averages kept in training, model.eval()) | batch (each chunk of scored pairs by its own statistics, as a loop that never calls model.eval() scores)

    def __post_init__(self) -> None:
        _check_fields(self)
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
