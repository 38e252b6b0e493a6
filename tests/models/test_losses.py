"""The auxiliary loss weightings the reports used."""

from __future__ import annotations

import pytest
import torch

from models.configs import NetConfig, TrainConfig, check_compatible
from models.errors import ConfigError
from models.losses import LossWeighting

MAIN, AUX = torch.tensor(0.6), torch.tensor(4.0)


@pytest.mark.parametrize(
    "cfg, expected",
    [
        (TrainConfig(aux_loss="none"), 0.6),
        (TrainConfig(aux_loss="alpha", alpha=0.5), 0.6 + 0.5 * 4.0),
        (TrainConfig(aux_loss="ratio", ratio=3.0), 3.0 * 0.6 + 4.0),
        (TrainConfig(aux_loss="normalized", alpha=1.0), 2.0),  # both at their initial values
    ],
)
def test_weightings(cfg, expected):
    assert LossWeighting(cfg)(MAIN, AUX, epoch=0).item() == pytest.approx(expected)


def test_normalized_divides_by_the_first_values():
    weighting = LossWeighting(TrainConfig(aux_loss="normalized", alpha=2.0))
    weighting(MAIN, AUX, epoch=0)
    later = weighting(torch.tensor(0.3), torch.tensor(1.0), epoch=1)
    assert later.item() == pytest.approx(0.3 / 0.6 + 2.0 * 1.0 / 4.0)


def test_staged_scheme_trains_digits_first():
    weighting = LossWeighting(TrainConfig(aux_loss="alpha", alpha=1.0, staged_epochs=2, epochs=5))
    assert weighting(MAIN, AUX, epoch=1).item() == pytest.approx(4.0)
    assert weighting(MAIN, AUX, epoch=2).item() == pytest.approx(4.6)


def test_aux_loss_needs_digit_outputs():
    with pytest.raises(ConfigError, match="needs digit outputs"):
        check_compatible(NetConfig(family="mlp"), TrainConfig(aux_loss="alpha"))
    check_compatible(NetConfig(family="cnn2ch", intermediate_head=True), TrainConfig(aux_loss="alpha"))
    with pytest.raises(ConfigError, match="staged_epochs"):
        TrainConfig(epochs=3, staged_epochs=3)
