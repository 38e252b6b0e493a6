"""The published models as named presets: configuration, training recipe, published accuracy.

The five source reports (seed000-seed004) trained on the full MNIST and give mean test
accuracy over 10-25 fresh draws; their figures are recorded here so the product can train
each preset on its own draws and print its number beside theirs. Architectures are our
reading of each report in this package's vocabulary (families, towers, heads, losses).
"""

from __future__ import annotations

from dataclasses import dataclass

from models.configs import NetConfig, TrainConfig


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    net: NetConfig
    train: TrainConfig
    published_mean: float | None  # mean test accuracy as published (fraction), None where the report gives none
    published_std: float | None  # its standard deviation over draws, where published
    source: str  # which report, and on what data


_FULL_MNIST = "published on full MNIST"

_LENET = dict(conv_channels=(32, 64), kernel_size=5, fc_width=128)
_ADAM = TrainConfig(optimizer="adam", lr=1e-3, epochs=25, batch_size=100)
_ADAM_AUX = TrainConfig(optimizer="adam", lr=1e-3, epochs=25, batch_size=100, aux_loss="alpha", alpha=1.0)

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "mlp-baseline",
            "MLP on the flattened pair (2x14x14 -> 256 -> 128 -> 2), ReLU",
            NetConfig(family="mlp", hidden=(256, 128)),
            _ADAM,
            0.765,
            None,
            f"seed002 report, baseline; {_FULL_MNIST}",
        ),
        Preset(
            "cnn2ch-baseline",
            "2-channel CNN: both digits as channels of one CNN, no weight sharing, no auxiliary loss",
            NetConfig(family="cnn2ch", **_LENET),
            _ADAM,
            0.816,
            None,
            f"seed002 report, CNN; {_FULL_MNIST}",
        ),
        Preset(
            "seed002-cnn-ws",
            "Siamese CNN with weight sharing, learned head, no auxiliary loss",
            NetConfig(family="siamese", weight_sharing=True, head="mlp", **_LENET),
            _ADAM,
            0.842,
            None,
            f"seed002 report, CNN+WS; {_FULL_MNIST}",
        ),
        Preset(
            "seed002-cnn-al",
            "Two CNN towers without weight sharing, learned head, auxiliary digit loss",
            NetConfig(family="siamese", weight_sharing=False, head="mlp", **_LENET),
            _ADAM_AUX,
            0.867,
            None,
            f"seed002 report, CNN+AL; {_FULL_MNIST}",
        ),
        Preset(
            "seed002-cnn-ws-al",
            "Siamese CNN with weight sharing and auxiliary digit loss, learned head",
            NetConfig(family="siamese", weight_sharing=True, head="mlp", **_LENET),
            _ADAM_AUX,
            0.924,
            None,
            f"seed002 report, CNN+WS+AL; {_FULL_MNIST}",
        ),
        Preset(
            "seed000-siamese-aux",
            "Siamese CNN, weight sharing, auxiliary loss weighted by a main-loss ratio",
            NetConfig(family="siamese", weight_sharing=True, head="mlp", conv_channels=(32, 64), fc_width=256),
            TrainConfig(optimizer="adam", lr=1e-3, epochs=25, batch_size=100, aux_loss="ratio", ratio=0.5),
            0.954,
            None,
            f"seed000 report, Siamese+AL; {_FULL_MNIST}",
        ),
        Preset(
            "seed001-a-w-net-dropout",
            "a_w_net: siamese, weight sharing, auxiliary loss, dropout 0.25",
            NetConfig(family="siamese", weight_sharing=True, head="mlp", dropout=0.25, **_LENET),
            _ADAM_AUX,
            0.952,
            None,
            f"seed001 report, a_w_net+dropout; {_FULL_MNIST}",
        ),
        Preset(
            "seed003-lenet-bn-ws-al",
            "LeNet-like siamese, batch norm, LeakyReLU, weight sharing + auxiliary loss, SGD lr 0.14",
            NetConfig(
                family="siamese", weight_sharing=True, head="mlp", batch_norm=True, activation="leaky_relu", **_LENET
            ),
            TrainConfig(optimizer="sgd", lr=0.14, momentum=0.9, epochs=25, batch_size=100, aux_loss="alpha", alpha=1.0),
            0.9796,
            0.0027,
            f"seed003 report, LeNet-like+BN+WS+AL (the best); {_FULL_MNIST}",
        ),
        Preset(
            "seed004-deep-ws-al",
            "Deeper siamese (4 convs), weight sharing, auxiliary loss normalised by initial values",
            NetConfig(
                family="siamese", weight_sharing=True, head="mlp", batch_norm=True, conv_channels=(32, 32, 64, 64)
            ),
            TrainConfig(optimizer="adam", lr=1e-3, epochs=25, batch_size=100, aux_loss="normalized", alpha=1.0),
            None,
            None,
            f"seed004 report, deep WS+AL (no single figure recorded); {_FULL_MNIST}",
        ),
    )
}
