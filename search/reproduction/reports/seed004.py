"""Report 004's published rows as presets. Its recipe: per image an "architecture" block ending in the 10-way
auxiliary output, the two flattened and concatenated into one last Linear layer; BCE; AL = main/main0 +
aux/aux0; ~95,000 parameters; the figure is the mean over 10 trainings of the maximum accuracy over epochs.
The recipe is unstated.
"""

from __future__ import annotations

import dataclasses

from models.nets.configs import NetConfig, TrainConfig
from search.reproduction.preset import Preset, pct

_RECIPE_004 = TrainConfig(optimizer="adam", lr=1e-3, batch_size=100, epochs=30)
_COMMON_004 = (
    "recipe: Adam lr 1e-3, batch 100, 30 epochs (all unstated; Fig. 2's axis residue '15 / 30' suggests 30 epochs)",
    "about 95,000 parameters counted with weight sharing (the report does not say which variant)",
    "every layer of a tower activated, its last too ('all with ReLU activation functions'; sigmoid for "
    "'deep with sigmoids'): the comparison Linear and the auxiliary loss read the activated digit outputs",
)
_DEEP_004 = dict(tower="conv", conv_channels=(16, 32), kernel_size=3, fc_width=(200, 150))
_FC_004 = dict(tower="fc", hidden=(300, 100, 50))


def presets() -> list[Preset]:
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
    made = []
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
            made.append(
                Preset(
                    name,
                    "004",
                    f"Table 4, {label} / AL {al} / WS {ws}",
                    f"{label} per image, {'shared' if ws else 'not shared'}, {'normalised auxiliary loss' if al else 'main loss only'}, one Linear comparing",
                    net,
                    train,
                    pct(mean, std, f"{mean}% ± {std}%", "max_over_epochs"),
                    _COMMON_004 + (notes["fc" if key == "fc" else "deep"],),
                    scoring="max_over_epochs",
                )
            )
    return made
