"""Every published row of the five source reports as a named preset: network, that report's own
training recipe, the figure it printed, and the choices we had to make where it is silent.

The reports are in the repository's shared material (seeds 000-004); each preset is named
`seedNNN/row`. Where a report leaves a detail unstated we choose a value and say so in the
preset's `unstated`, so that it is shown beside every number. Rules for those choices, in order:
the report's own other rows; PyTorch's default (an unstated momentum is 0); the closest common
practice. Published figures are copied as printed (error converted to accuracy) with what they
measure: a test mean over fresh draws, a validation figure, a maximum over epochs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from models.errors import ConfigError
from models.nets.configs import NetConfig, TrainConfig
from search import variants

FIGURES = {
    "test": "mean test accuracy over fresh draws",
    "validation": "validation accuracy (the report's columns say 'validation'; its text says test)",
    "holdout": "accuracy on a 20 % hold-out of the training pairs, one run, no std",
    "max_over_epochs": "mean over runs of the maximum test accuracy over epochs",
    "approximate": "approximate ('close to 95%'), no exact figure",
    "unstated_runs": "test accuracy, number of runs unstated",
}
SCORINGS = ("final", "max_over_epochs")


@dataclass(frozen=True)
class Published:
    """A figure as the report printed it."""

    mean: float  # accuracy as a fraction (report 003 prints error: 100 - error)
    std: float | None  # standard deviation over runs as a fraction, where printed
    printed: str  # the figure exactly as printed
    figure: str = "test"  # what it measures: a key of FIGURES
    runs: int | None = None  # runs its std is over where it differs from the report's REPORT_RUNS


@dataclass(frozen=True)
class Preset:
    name: str  # seedNNN/row
    report: str  # "000" ... "004"
    row: str  # the report's own label for the row (table and line)
    description: str  # the network and recipe in a line
    net: NetConfig
    train: TrainConfig
    published: Published
    unstated: tuple[str, ...] = ()  # our choices where the report is silent (shown with the results)
    scoring: str = "final"  # final | max_over_epochs: every epoch is scored and the best shown beside the final

    @property
    def published_mean(self) -> float:
        return self.published.mean

    @property
    def published_std(self) -> float | None:
        return self.published.std

    @property
    def runs(self) -> int:
        """The number of runs its printed std is over, as the report states it."""
        return self.published.runs or REPORT_RUNS[self.report]

    @property
    def source(self) -> str:
        return f"report {self.report}, {self.row}; published on full MNIST"

    @property
    def best_over_epochs(self) -> bool:
        """Whether its figure is a maximum over epochs, so that ours is scored every epoch and compared so."""
        return self.scoring == "max_over_epochs"


REPORTS = {
    "000": "Project 1 - Classification, weight sharing, auxiliary losses (Jouve, Griesser, Rey)",
    "001": "EE559 Project 1: Classification, Weight Sharing, Auxiliary Losses (Kong, Wu, Phan)",
    "002": "EE590: Deep Learning - Mini-project1 (Zhou, Li, Luo)",
    "003": "Project 1 Classification, Weight Sharing, Auxiliary Loss (Anselmet, Monnet, Nguyen Duc)",
    "004": "Mini-project 1 Report (Larraz Giro, Rocchi, Trichilo)",
}
# Runs each report's stds are over, as it says: 000 "at least 10 different training and test sets"
# (its final model: 25), 001 "run by 10 times", 002 "15 iterations", 003 "10 rounds", 004 "10 times".
REPORT_RUNS = {"000": 10, "001": 10, "002": 15, "003": 10, "004": 10}


def _pct(mean: float, std: float | None, printed: str, figure: str = "test") -> Published:
    """A figure printed in percent of accuracy."""
    return Published(round(mean / 100, 6), None if std is None else round(std / 100, 6), printed, figure)


def _error(mean: float, std: float, printed: str) -> Published:
    """Report 003 prints the error in percent."""
    return Published(round(1 - mean / 100, 6), round(std / 100, 6), printed)


# ---------------------------------------------------------------------------------------------------
# Report 000: SGD 0.1, momentum 0.9, lr x0.97 per epoch, batch 64, for all models (§I.B); unpadded 3x3
# convolutions and one max-pool at the end (the Linear input sizes 1600/2048/1152/800 say so).

_SGD_000 = TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9, gamma=0.97, batch_size=64, epochs=25)
_EPOCHS_000 = "epochs: 25 (unstated but for the final test's 100; the report saw convergence after 15-25)"
_NORM_000 = "test pairs normalised with the training statistics (the report normalises each set with its own)"
_COMMON_000 = (_EPOCHS_000, _NORM_000)
_SOFTMAX_000 = "the listed final softmax read as CrossEntropyLoss's own (a second softmax would be a bug)"
_VALID = dict(padding="valid", kernel_size=3, fc_width=128)
_TOWER_000 = "Siamese tower: the report's 3-conv net of §II (32-64-128, unpadded 3x3, one max-pool, Linear 128) ending in the 10 digit logits (Fig. 2 is not in the text)"
_READS_000 = (
    "the comparison Linear reads the towers' softmax, their digit predictions (the auxiliary loss sits 'at the place "
    "where the digits are predicted', and the report's nets end '-> softmax'); the digit loss is CrossEntropyLoss on "
    "the logits before it"
)
_DIGIT_CE = (
    "auxiliary loss: the mean of CE(digit 1) and CE(digit 2), one CrossEntropyLoss over both digits (sum or mean "
    "unstated; on Table II's 800 training pairs the mean lands within 0.9 points of 4 of its 5 figures, the sum of 2)"
)


def _siamese_000(convs: tuple[int, ...], alpha: float, **train) -> tuple[NetConfig, TrainConfig]:
    net = NetConfig(
        family="siamese",
        weight_sharing=True,
        head="linear",
        head_input="softmax",
        conv_channels=convs,
        pool_after=(len(convs),),
        **_VALID,
    )
    aux = dict(aux_loss="alpha", alpha=alpha) if alpha > 0 else {}
    return net, dataclasses.replace(_SGD_000, digit_loss="mean", **aux, **train)


def _report_000() -> list[Preset]:
    presets = []
    for name, row, convs, at, alpha, printed, mean, std in (
        ("baseline", "Table I, Baseline network", (32, 64), 0, 0.0, "81.64, std 0.8871", 81.64, 0.8871),
        ("conv3", "Table I, 3 conv. layers", (32, 64, 128), 0, 0.0, "81.89, std 1.3781", 81.89, 1.3781),
        (
            "conv3-aux",
            "Table I, 3 conv. layers + auxiliary loss",
            (32, 64, 128),
            2,
            0.5,
            "82.38, std 0.7033",
            82.38,
            0.7033,
        ),
        ("conv4", "Table I, 4 conv. layers", (32, 32, 64, 128), 0, 0.0, "81.33, std 1.8208", 81.33, 1.8208),
        (
            "conv4-aux",
            "Table I, 4 conv. layers + auxiliary loss",
            (32, 32, 64, 128),
            2,
            0.9,
            "81.83, std 1.0411",
            81.83,
            1.0411,
        ),
    ):
        extra = (
            dict(intermediate_head=True, intermediate_after=at, intermediate_pool=True, intermediate_hidden=(128,))
            if at
            else {}
        )
        net = NetConfig(family="cnn2ch", conv_channels=convs, pool_after=(len(convs),), **_VALID, **extra)
        train = dataclasses.replace(_SGD_000, aux_loss="alpha", alpha=alpha) if at else _SGD_000
        what = f"2-channel CNN, {len(convs)} unpadded convs {'-'.join(map(str, convs))}, max-pool, Linear 128"
        what += f", GoogLeNet-style pair head after conv {at} (pool, Linear 128), weight {alpha}" if at else ""
        unstated = _COMMON_000 + ((_SOFTMAX_000,) if len(convs) > 2 else ())
        presets.append(Preset(f"seed000/{name}", "000", row, what, net, train, _pct(mean, std, printed), unstated))

    for alpha, value in ((0.0, 79.0), (0.1, 90.7), (0.2, 92.9), (0.3, 91.6), (0.35, 94.1), (0.4, 95.1)):
        net, train = _siamese_000((32, 64, 128), alpha)
        what = f"Siamese CNN (3 convs), weight sharing, one Linear comparing the digits, auxiliary loss x{alpha}"
        presets.append(
            Preset(
                f"seed000/siamese-alpha{alpha:g}",
                "000",
                f"Table II, alpha = {alpha:g}",
                what,
                net,
                train,
                _pct(value, None, f"{value}", "holdout"),
                _COMMON_000
                + (_TOWER_000, _READS_000, _DIGIT_CE, "tower depth during the sweep: 3 convs, the chosen one"),
            )
        )

    schemes = (
        (
            "scheme1-freeze",
            "§III.B scheme 1: digits only, then the comparison layer only",
            94.5,
            dict(staged_epochs=12, staged_second="head"),
        ),
        ("scheme2-staged", "§III.B scheme 2: digits only, then everything", 94.8, dict(staged_epochs=12)),
        ("scheme3-joint", "§III.B scheme 3: everything together from the start", 95.6, {}),
    )
    for name, row, value, staging in schemes:
        net, train = _siamese_000((32, 64, 128), 0.4, **staging)
        stages = ["stage lengths: 12 + 13 of 25 epochs"] if staging else []
        presets.append(
            Preset(
                f"seed000/{name}",
                "000",
                row,
                f"Siamese CNN, weight sharing, linear comparison, auxiliary loss x0.4; {row.split(': ')[1]}",
                net,
                train,
                _pct(value, None, f"{value}%", "unstated_runs"),
                _COMMON_000 + (_TOWER_000, _READS_000, _DIGIT_CE, *stages),
            )
        )

    for convs in ((32, 64), (32, 64, 128), (32, 32, 64, 128)):
        net, train = _siamese_000(convs, 0.4)
        presets.append(
            Preset(
                f"seed000/siamese-depth{len(convs)}",
                "000",
                f"§III.C, {len(convs)} convolutional layers in the Siamese tower",
                f"Siamese CNN with {len(convs)} unpadded convs {'-'.join(map(str, convs))}, linear comparison, aux x0.4",
                net,
                train,
                _pct(95.0, None, "close to 95%", "approximate"),
                _COMMON_000 + ("channels: those of the report's §II nets of the same depth", _READS_000, _DIGIT_CE),
            )
        )

    net, train = _siamese_000((32, 64, 128), 0.4, epochs=100, gamma=0.98)
    presets.append(
        Preset(
            "seed000/final",
            "000",
            "§III.D, final testing (25 trainings)",
            "Siamese CNN (3 convs), weight sharing, linear comparison, aux x0.4; 100 epochs, lr x0.98 per epoch",
            net,
            train,
            dataclasses.replace(_pct(95.42, 0.9284, "95.42%, std 0.9284"), runs=25),
            (_NORM_000, _TOWER_000, _READS_000, _DIGIT_CE),
        )
    )
    return presets


# ---------------------------------------------------------------------------------------------------
# Report 001: Adam 1e-3, 25 epochs, ReLU, size-preserving padding, max-pooling, one output with BCE;
# the auxiliary classifier is a separate branch on the conv features (L = ratio * main + aux).

_ADAM_001 = TrainConfig(optimizer="adam", lr=1e-3, batch_size=16, epochs=25)
_BATCH_001 = (
    "batch size: 16 (unstated; of 8, 16 and 100, the one whose figures lie closest to the report's rows over the "
    "whole report: docs/reproduction.md, report 001's batch size)"
)
_BN_001 = dict(batch_norm=True, batch_norm_at="activation")
_BN_PLACE_001 = (
    "batch norm after each conv block's activation (its place is unstated; of right after the conv and after the "
    "activation, the one whose figures lie closer to the report's six batch-norm rows: docs/reproduction.md, report 001's batch norm)"
)
_SAME = dict(padding="same", pair_output="logit")


def _report_001() -> list[Preset]:
    presets = []
    val = "validation"
    for name, hidden, printed, mean, std in (
        ("fc_1", (196, 98), "0.765, 0.007", 76.5, 0.7),
        ("fc_2", (196, 196, 98, 98), "0.763, 0.004", 76.3, 0.4),
        ("fc_3", (784, 784), "0.811, 0.003", 81.1, 0.3),
    ):
        presets.append(
            Preset(
                f"seed001/{name}",
                "001",
                f"Table I, {name}",
                f"MLP on the flattened pair, hidden {'-'.join(map(str, hidden))}, one output (BCE)",
                NetConfig(family="mlp", hidden=hidden, pair_output="logit"),
                _ADAM_001,
                _pct(mean, std, printed, val),
                (_BATCH_001,),
            )
        )
    presets += _conv_nets_001()
    return presets


def _conv_nets_001() -> list[Preset]:
    """conv_1-3, cnn_base and the two-image nets. Their sizes are unstated but for the printed parameter
    counts, which fix them: three 3x3 convs 32-64-128 with a max-pool after each (14 -> 7 -> 3 -> 1: 128
    features per image), an FC block 64-64-1 (cnn_base) or 128-128-1 on the two images' 256 features, and
    one auxiliary classifier 128-64-64-10 for both images. The counts also say which nets have batch norm,
    though the text never names it: conv_1, cnn_base, no_w_net, w_net and a_net, not conv_3 or a_w_net; not
    where in a block it sits (after the activation fits the six rows better than right after the conv).
    The pure-conv nets are unpadded: their listed layers then end in the single output BCE needs (conv_3
    by its 2x2 last kernel; conv_1 by the 5x5 first kernel its count needs; conv_2 built as conv_1)."""
    val = "validation"
    counted = "sizes and batch norm chosen to give the printed parameter count exactly"
    pure = dict(family="cnn2ch", pure_conv=True, pool_after=(1,), **_SAME)
    unpadded = dict(pure, padding="valid")
    block = dict(conv_channels=(32, 64, 128), kernel_size=3, pool_after=(1, 2, 3), batch_norm_dense=False, **_SAME)
    two_images = dict(family="siamese", fusion="features", fc_width=(128, 128), **block)
    aux = dict(aux_classifier=True, aux_hidden=(64, 64))
    rows = (
        (
            "conv_1",
            "Table I, conv_1",
            "conv(2,10,5) P conv(10,20,3) conv(20,1,3), batch norm, unpadded: 14-10-5-3-1, one logit (2,571 exactly)",
            NetConfig(conv_channels=(10, 20, 1), kernel_size=(5, 3, 3), **_BN_001, **unpadded),
            _ADAM_001,
            (0.785, 0.01, "0.785, 0.01"),
            (
                "the printed 2,571 parameters need batch norm and one 5x5 kernel (the listing shows 3x3 only): the first, "
                "which with unpadded convolutions ends the listed layers in exactly one output (14 -> 10 -> P 5 -> 3 -> 1), "
                "as conv_3's do; padded, a 7x7 map is left and its reduction is unstated",
            ),
        ),
        (
            "conv_2",
            "Table I, conv_2",
            "conv(2,32,5) P conv(32,64,3) conv(64,1,3), batch norm, unpadded as conv_1: 14-10-5-3-1, one logit",
            NetConfig(conv_channels=(32, 64, 1), kernel_size=(5, 3, 3), **_BN_001, **unpadded),
            _ADAM_001,
            (0.801, 0.009, "0.801, 0.009"),
            (
                "the printed 48,851 parameters cannot come from any conv stack 2-32-64-1 (its weights are multiples of 64 "
                "and its biases and batch norm leave a remainder the count does not have): conv_1's shape (unpadded, a 5x5 "
                "first kernel, batch norm, one output) with the listed channels is built, 20,897",
            ),
        ),
        (
            "conv_3",
            "Table I, conv_3",
            "conv(2,10,3) P conv(10,20,3) conv(20,40,3) conv(40,1,2), unpadded: 14-12-6-4-2-1, one logit (9,411 exactly)",
            NetConfig(conv_channels=(10, 20, 40, 1), kernel_size=(3, 3, 3, 2), **unpadded),
            _ADAM_001,
            (0.804, 0.006, "0.804, 0.006"),
            (
                "unpadded convolutions, against the report's general 'padding preserves the spatial size': no symmetric "
                "padding preserves it for the 2x2 last kernel, and unpadded the listed layers end in exactly the one output "
                "BCE needs (14 -> 12 -> P 6 -> 4 -> 2 -> 1); padded, a 7x7 map is left and its reduction is unstated",
            ),
        ),
        (
            "cnn_base",
            "Tables I and III, cnn_base",
            "2-channel CNN: convs 32-64-128 with batch norm, a max-pool after each, FC 64-64-1",
            NetConfig(family="cnn2ch", **_BN_001, fc_width=(64, 64), **block),
            _ADAM_001,
            (0.826, 0.011, "0.826, 0.011"),
            (counted,),
        ),
        (
            "no_w_net",
            "Table III, no_w_net",
            "two conv blocks (not shared), features concatenated into FC 128-128-1",
            NetConfig(weight_sharing=False, **_BN_001, **two_images),
            _ADAM_001,
            (0.847, 0.009, "0.847, 0.009"),
            (counted,),
        ),
        (
            "w_net",
            "Table III, w_net",
            "one shared conv block, features concatenated into FC 128-128-1",
            NetConfig(weight_sharing=True, **_BN_001, **two_images),
            _ADAM_001,
            (0.874, 0.006, "0.874, 0.006"),
            (counted + " but one (142,657 against the printed 142,658)",),
        ),
        (
            "a_net",
            "Table III, a_net",
            "no_w_net + one auxiliary digit classifier 128-64-64-10 on the conv features, ratio 1",
            NetConfig(weight_sharing=False, **_BN_001, **two_images, **aux),
            dataclasses.replace(_ADAM_001, aux_loss="ratio", ratio=1.0),
            (0.913, 0.010, "0.913, 0.010"),
            (counted, "loss_ratio 1 (unstated for a_net; the report's initial value)"),
        ),
    )
    presets = []
    for name, row, what, net, train, (mean, std, printed), unstated in rows:
        published = Published(mean, std, printed, val)
        placed = (_BN_PLACE_001,) if net.batch_norm else ()
        presets.append(
            Preset(f"seed001/{name}", "001", row, what, net, train, published, (_BATCH_001, *placed, *unstated))
        )
    a_w_net = NetConfig(weight_sharing=True, **two_images, **aux)
    no_bn = "no batch norm: the printed 155,275 parameters leave no room for it"
    for ratio, mean, std, printed in (
        (2.0, 0.910, 0.005, "0.910, 0.005"),
        (1.5, 0.907, 0.007, "0.907, 0.007"),
        (1.0, 0.913, 0.011, "0.913, 0.011"),
        (0.5, 0.936, 0.0019, "0.936, 0.0019 (Tables II and III)"),
        (0.1, 0.904, 0.009, "0.904, 0.009"),
    ):  # fmt: skip (a table of the report's rows, several to a line)
        presets.append(
            Preset(
                f"seed001/a_w_net-ratio{ratio:g}",
                "001",
                f"Table II, a_w_net, loss_ratio = {ratio:g}",
                f"shared conv block + FC 128-128-1, shared auxiliary classifier, L = {ratio:g} x main + aux",
                a_w_net,
                dataclasses.replace(_ADAM_001, aux_loss="ratio", ratio=ratio),
                Published(mean, std, printed, val),
                (_BATCH_001, counted, no_bn),
            )
        )
    presets.append(
        Preset(
            "seed001/final_model",
            "001",
            "Table III, final_model (a_w_net with dropout)",
            "a_w_net, loss_ratio 0.5, one dropout layer (0.4) after the last conv layer",
            dataclasses.replace(a_w_net, dropout=0.4, dropout_at="last_conv"),
            dataclasses.replace(_ADAM_001, aux_loss="ratio", ratio=0.5),
            Published(0.952, 0.007, "0.952, 0.007; abstract: 'average test accuracy of 95.2%'"),
            (
                _BATCH_001,
                counted,
                no_bn,
                "dropout as nn.Dropout on the last conv block's output (the kind is unstated)",
            ),
        )
    )
    return presets


# ---------------------------------------------------------------------------------------------------
# Report 002: lr and batch size per model (Table I), 45 epochs, 15 runs; the optimizer is unstated.

_SGD_002 = TrainConfig(optimizer="sgd", lr=0.01, momentum=0.0, batch_size=100, epochs=45)
_COMMON_002 = (
    "optimizer: SGD (unstated; the learning rates 0.01-0.05 point to it), momentum 0 (PyTorch's default)",
    "no learning-rate decay, no batch norm ('some models' / 'specific layers' unstated)",
    "runs: 10 draws (the report: 15)",
)
_CNN_002 = dict(conv_channels=(32, 64), kernel_size=3, fc_width=128)
_CNN_002_NOTE = "convs 32-64, 3x3, same padding, a max-pool after each, Linear 128 (Fig. 2 is not in the text)"


def _report_002() -> list[Preset]:
    rows = (
        (
            "mlp",
            "MLP",
            NetConfig(family="mlp", hidden=(256, 128)),
            0.01,
            100,
            76.5,
            None,
            "76.5%",
            "MLP on the flattened pair, 3 Linear layers (392-256-128-2)",
            ("widths 256-128 (Fig. 1 is not in the text)",),
        ),
        (
            "cnn",
            "CNN",
            NetConfig(family="cnn2ch", **_CNN_002),
            0.01,
            50,
            81.62,
            1.38,
            "81.62% ± 1.38%",
            "2-channel CNN: 2 convs, 2 max-pools, 2 Linear layers",
            (_CNN_002_NOTE,),
        ),
        (
            "cnn-ws",
            "CNN_WS",
            NetConfig(family="siamese", weight_sharing=True, head="mlp", **_CNN_002),
            0.05,
            50,
            84.16,
            0.86,
            "84.16% ± 0.86%",
            "Siamese CNN, weight sharing, outputs concatenated into a learned head",
            (_CNN_002_NOTE + ", per digit, ending in 10 outputs", "head: Linear 20-64-2 (Fig. 3 is not in the text)"),
        ),
        (
            "cnn-al",
            "CNN_AL",
            NetConfig(family="siamese", weight_sharing=False, head="mlp", **_CNN_002),
            0.05,
            50,
            86.71,
            1.29,
            "86.71% ± 1.29%",
            "two CNN towers (no sharing) predicting the digits, auxiliary losses, learned head",
            (
                _CNN_002_NOTE + ", per digit",
                "head: Linear 20-64-2",
                "loss weights: main + CE(d1) + CE(d2), equal (unstated)",
            ),
        ),
        (
            "cnn-ws-al",
            "CNN_WS_AL",
            NetConfig(family="siamese", weight_sharing=True, head="mlp", **_CNN_002),
            0.05,
            100,
            92.42,
            1.07,
            "92.42% ± 1.07%",
            "Siamese CNN, weight sharing (convs and per-digit MLP), auxiliary losses, learned head",
            (
                _CNN_002_NOTE + ", per digit",
                "head: Linear 20-64-2",
                "loss weights: main + CE(d1) + CE(d2), equal (unstated)",
            ),
        ),
    )
    presets = []
    for name, row, net, lr, batch, mean, std, printed, what, unstated in rows:
        aux = dict(aux_loss="alpha", alpha=1.0) if name.endswith("al") else {}
        train = dataclasses.replace(_SGD_002, lr=lr, batch_size=batch, **aux)
        presets.append(
            Preset(
                f"seed002/{name}",
                "002",
                f"Tables I-II, {row}",
                what,
                net,
                train,
                _pct(mean, std, printed),
                _COMMON_002 + unstated,
            )
        )
    return presets


# ---------------------------------------------------------------------------------------------------
# Report 003: SGD lr 0.1, batch 100, 25 epochs, cross-entropy; digit recognition by 3 Linear layers (FNN)
# or 2 convs 3x3 + 2 Linear layers (LeNet-like), comparison by 2 Linear layers after the concatenation.
# The comparison reads the two digit softmaxes: the reading under which the nets without the auxiliary
# loss fail, as the report's do, and its CNNs with it land within 1.5 points of its figures (docs/reproduction.md).

_SGD_003 = TrainConfig(optimizer="sgd", lr=0.1, momentum=0.0, batch_size=100, epochs=25)
_COMMON_003 = (
    "momentum 0 (unstated; PyTorch's default)",
    "comparison: Linear 20-64-2 (widths unstated) on the two digit softmaxes, the recognition task's output "
    "(its input unstated; Fig. 3 is not in the text): on the logits the nets without the auxiliary loss learn "
    "(78-84 %), where the report's fail, and those with it lie 4.5-8.4 points below theirs",
    "auxiliary loss: main + CE(d1) + CE(d2), equal weights (unstated)",
)
# Every row: a digit tower per image, its two softmaxes compared by Linear 20-64-2; batch norm, where a row
# has it, on the convolutions only.
_PAIR_003 = dict(family="siamese", head="mlp", head_input="softmax", batch_norm_dense=False)
_FNN_003 = dict(tower="fc", hidden=(128, 64))
_LENET_003 = dict(tower="conv", conv_channels=(32, 64), kernel_size=3, fc_width=128)
_LENET_NOTE = (
    "LeNet-like tower: convs 32-64, same padding, a max-pool after each, Linear 128 (Fig. 3 is not in the text)"
)


def _report_003() -> list[Preset]:
    presets = []
    tables = (
        ("fnn", "Table I, FNN", _FNN_003, False, "per-digit MLP 196-128-64-10", ("FNN widths 128-64 (unstated)",)),
        ("cnn", "Table II, CNN", _LENET_003, False, "LeNet-like CNN per digit", (_LENET_NOTE,)),
        (
            "cnn-bn",
            "Table III, CNN + BN",
            _LENET_003,
            True,
            "LeNet-like CNN per digit, batch norm after each conv",
            (_LENET_NOTE,),
        ),
    )
    figures = {
        "fnn": ((52.99, 11.88), (43.52, 16.07), (7.93, 0.65), (6.44, 0.71)),
        "cnn": ((49.46, 15.66), (45.31, 17.70), (5.79, 4.66), (3.98, 1.22)),
        "cnn-bn": ((49.38, 15.02), (47.16, 18.97), (3.21, 0.50), (2.31, 0.36)),
    }
    for key, row, tower, bn, what, notes in tables:
        for (ws, al, suffix), (error, std) in zip(
            ((False, False, ""), (True, False, "-ws"), (False, True, "-al"), (True, True, "-ws-al")),
            figures[key],
            strict=True,
        ):
            label = row + "".join([" + WS" if ws else "", " + AL" if al else ""])
            net = NetConfig(**_PAIR_003, weight_sharing=ws, batch_norm=bn, **tower)
            train = dataclasses.replace(_SGD_003, aux_loss="alpha", alpha=1.0) if al else _SGD_003
            printed = f"error {error} ± {std} %"
            if key == "cnn-bn" and ws and al:
                printed += "; Table IV rerun (ReLU): 2.30 ± 0.26"
            presets.append(
                Preset(
                    f"seed003/{key}{suffix}",
                    "003",
                    label,
                    f"{what}, {'shared' if ws else 'two towers'}, {'auxiliary loss' if al else 'no auxiliary loss'}",
                    net,
                    train,
                    _error(error, std, printed),
                    _COMMON_003 + notes,
                )
            )

    best = NetConfig(**_PAIR_003, weight_sharing=True, batch_norm=True, **_LENET_003)
    aux = dataclasses.replace(_SGD_003, aux_loss="alpha", alpha=1.0)
    for name, activation, alpha, error, std in (
        ("leaky-relu", "leaky_relu", None, 2.12, 0.29),
        ("elu-0.5", "elu", 0.5, 2.20, 0.35),
        ("elu-1", "elu", None, 2.36, 0.46),
        ("selu", "selu", None, 2.71, 0.44),
    ):
        net = dataclasses.replace(best, activation=activation, activation_alpha=alpha)
        presets.append(
            Preset(
                f"seed003/{name}",
                "003",
                f"Table IV, {activation}{f' (alpha = {alpha})' if alpha else ''}",
                f"CNN + BN + WS + AL with {activation}" + (f" alpha {alpha}" if alpha else ""),
                net,
                aux,
                _error(error, std, f"error {error} ± {std} %"),
                _COMMON_003 + (_LENET_NOTE, "the activation of the comparison layers changes too (unstated)"),
            )
        )

    final = dataclasses.replace(best, activation="leaky_relu")
    for name, optimizer, lr, error, std in (
        ("sgd", "sgd", 0.1383, 2.04, 0.27),
        ("rmsprop", "rmsprop", 0.0115, 3.10, 0.46),
        ("adam", "adam", 0.0117, 2.45, 0.50),
    ):
        presets.append(
            Preset(
                f"seed003/{name}",
                "003",
                f"Table V, {optimizer} (lr {lr} from the LR finder)",
                f"CNN + BN + WS + AL, Leaky ReLU, {optimizer} lr {lr}"
                + (" (the report's final model)" if name == "sgd" else ""),
                final,
                dataclasses.replace(aux, optimizer=optimizer, lr=lr),
                _error(error, std, f"error {error} % ± {std} %"),
                _COMMON_003
                + (_LENET_NOTE, "lr: the report's LR-finder value, hard-coded (`search lr-find` repeats the procedure)")
                + (
                    ("RMSprop: momentum 0, alpha 0.99 (PyTorch's defaults; unstated)",)
                    if optimizer == "rmsprop"
                    else ()
                ),
            )
        )
    return presets


# ---------------------------------------------------------------------------------------------------
# Report 004: per image an "architecture" block ending in the 10-way auxiliary output, the two flattened
# and concatenated into one last Linear layer; BCE; AL = main/main0 + aux/aux0; ~95,000 parameters;
# the figure is the mean over 10 trainings of the maximum accuracy over epochs. The recipe is unstated.

_RECIPE_004 = TrainConfig(optimizer="adam", lr=1e-3, batch_size=100, epochs=30)
_COMMON_004 = (
    "recipe: Adam lr 1e-3, batch 100, 30 epochs (all unstated; Fig. 2's axis residue '15 / 30' suggests 30 epochs)",
    "about 95,000 parameters counted with weight sharing (the report does not say which variant)",
    "every layer of a tower activated, its last too ('all with ReLU activation functions'; sigmoid for "
    "'deep with sigmoids'): the comparison Linear and the auxiliary loss read the activated digit outputs",
)
_DEEP_004 = dict(tower="conv", conv_channels=(16, 32), kernel_size=3, fc_width=(200, 150))
_FC_004 = dict(tower="fc", hidden=(300, 100, 50))


def _report_004() -> list[Preset]:
    table = (
        (
            "deep",
            "Deep",
            _DEEP_004,
            "relu",
            (
                (True, True, 81.91, 1.21),
                (False, True, 80.62, 0.44),
                (True, False, 79.43, 1.34),
                (False, False, 78.84, 0.72),
            ),
        ),
        (
            "deep-sigmoid",
            "Deep with sigmoids",
            _DEEP_004,
            "sigmoid",
            (
                (True, True, 78.03, 0.60),
                (False, True, 76.64, 1.08),
                (True, False, 75.91, 0.70),
                (False, False, 75.56, 1.05),
            ),
        ),
        (
            "fc",
            "Fully connected",
            _FC_004,
            "relu",
            (
                (False, True, 76.71, 1.06),
                (False, False, 74.58, 0.49),
                (True, False, 73.55, 3.77),
                (True, True, 70.31, 12.40),
            ),
        ),
    )
    notes = {
        "deep": "Deep: convs 16-32 3x3, same padding, a max-pool after each, Linear 288-200-150-10 (sizes unstated)",
        "fc": "Fully connected: Linear 196-300-100-50-10 (sizes unstated)",
    }
    presets = []
    for key, label, arch, activation, rows in table:
        for al, ws, mean, std in rows:
            name = f"seed004/{key}{'-al' if al else ''}{'-ws' if ws else ''}"
            net = NetConfig(
                family="siamese",
                weight_sharing=ws,
                head="linear",
                pair_output="logit",
                activation=activation,
                digit_activation=True,
                **arch,
            )
            train = dataclasses.replace(_RECIPE_004, aux_loss="normalized", alpha=1.0) if al else _RECIPE_004
            presets.append(
                Preset(
                    name,
                    "004",
                    f"Table 4, {label} / AL {al} / WS {ws}",
                    f"{label} per image, {'shared' if ws else 'not shared'}, {'normalised auxiliary loss' if al else 'main loss only'}, one Linear comparing",
                    net,
                    train,
                    _pct(mean, std, f"{mean}% ± {std}%", "max_over_epochs"),
                    _COMMON_004 + (notes["fc" if key == "fc" else "deep"],),
                    scoring="max_over_epochs",
                )
            )
    return presets


PRESETS: dict[str, Preset] = {
    p.name: p for p in (*_report_000(), *_report_001(), *_report_002(), *_report_003(), *_report_004())
}


def report_key(report: str) -> str:
    """'3', '03', '003' or 'seed003' -> '003'; an unknown report is a ConfigError naming the known ones."""
    key = report.strip().lower().removeprefix("seed")
    key = key.zfill(3) if key.isdigit() else key
    if key not in REPORTS:
        raise ConfigError(f"Unknown report {report!r}; the reports are {', '.join(REPORTS)} (or 'all').")
    return key


def select_presets(names: Sequence[str] | None = None, *, report: str | None = None) -> list[Preset]:
    """The presets named, or those of one report ('all': every report), or all of them, in report order."""
    if names is not None and report is not None:
        raise ConfigError("Give preset names or a report, not both.")
    if report is not None:
        if report.strip().lower() == "all":
            return list(PRESETS.values())
        key = report_key(report)
        return [p for p in PRESETS.values() if p.report == key]
    if names is None:
        return list(PRESETS.values())
    chosen = list(dict.fromkeys(names))
    unknown = [name for name in chosen if name not in PRESETS]
    if unknown or not chosen:
        raise ConfigError(
            f"Unknown preset(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"the presets are seedNNN/row, e.g. {', '.join(list(PRESETS)[:3])}; `search presets` lists them."
        )
    return [PRESETS[name] for name in chosen]


def vary(preset: Preset, changes: Mapping[str, Any]) -> Preset:
    """The preset with some of its NetConfig/TrainConfig fields changed: one factor at a time, to test
    what explains a gap to the published figure. The variant is named `name [field=value, ...]` and
    keeps the published figure it is compared with (search.variants writes and reads the name)."""
    if not changes:
        return preset
    net_fields = {f.name for f in dataclasses.fields(NetConfig)}
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(changes) - net_fields - train_fields)
    if unknown:
        raise ConfigError(
            f"Unknown field(s) {', '.join(unknown)} to vary; a NetConfig or TrainConfig field is needed, e.g. momentum=0.9."
        )
    net = NetConfig.from_dict({**preset.net.to_dict(), **{k: v for k, v in changes.items() if k in net_fields}})
    train = TrainConfig.from_dict({**preset.train.to_dict(), **{k: v for k, v in changes.items() if k in train_fields}})
    name = variants.format(preset.name, changes)
    return dataclasses.replace(preset, name=name, net=net, train=train)
