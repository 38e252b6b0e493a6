"""Report 002's published rows as presets. Its recipe: lr and batch size per model (Table I), 45 epochs, 15
runs; the optimizer is unstated.
"""

from __future__ import annotations

import dataclasses

from models.nets.configs import NetConfig, TrainConfig
from search.reproduction.preset import Preset, pct

_SGD_002 = TrainConfig(optimizer="sgd", lr=0.01, momentum=0.0, batch_size=100, epochs=45)
_COMMON_002 = (
    "optimizer: SGD (unstated; the learning rates 0.01-0.05 point to it), momentum 0 (PyTorch's default)",
    "no learning-rate decay, no batch norm ('some models' / 'specific layers' unstated)",
    "runs: 10 draws (the report: 15)",
)
_CNN_002 = dict(conv_channels=(32, 64), kernel_size=3, fc_width=128)
_CNN_002_NOTE = "convs 32-64, 3x3, same padding, a max-pool after each, Linear 128 (Fig. 2 is not in the text)"


def presets() -> list[Preset]:
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
    made = []
    for name, row, net, lr, batch, mean, std, printed, what, unstated in rows:
        aux = dict(aux_loss="alpha", alpha=1.0) if name.endswith("al") else {}
        train = dataclasses.replace(_SGD_002, lr=lr, batch_size=batch, **aux)
        made.append(
            Preset(
                f"seed002/{name}",
                "002",
                f"Tables I-II, {row}",
                what,
                net,
                train,
                pct(mean, std, printed),
                _COMMON_002 + unstated,
            )
        )
    return made
