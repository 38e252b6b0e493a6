"""The auxiliary loss weightings the reports used."""

from __future__ import annotations

import pytest
import torch

from models.errors import ConfigError
from models.nets.configs import NetConfig, TrainConfig, check_compatible
from models.nets.families import build_net
from models.training.losses import LossWeighting, loss_terms

MAIN, AUX = torch.tensor(0.6), torch.tensor(4.0)


@pytest.mark.parametrize(
    "cfg, expected",
    [
        (TrainConfig(aux_loss="none"), 0.6),
        (TrainConfig(aux_loss="alpha", alpha=0.5), 0.6 + 0.5 * 4.0),
        (TrainConfig(aux_loss="ratio", ratio=3.0), 3.0 * 0.6 + 4.0),
        (TrainConfig(aux_loss="normalized", alpha=1.0), 2.0),  # both at their initial values
        (TrainConfig(aux_loss="alpha", alpha=0.5, digit_loss="mean"), 0.6 + 0.5 * 4.0 / 2),  # the two CEs' mean
        (TrainConfig(aux_loss="ratio", ratio=3.0, digit_loss="mean"), 3.0 * 0.6 + 4.0 / 2),
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
    mean = LossWeighting(TrainConfig(aux_loss="alpha", staged_epochs=2, epochs=5, digit_loss="mean"))
    assert mean(MAIN, AUX, epoch=1).item() == pytest.approx(2.0)  # the staged epochs train the mean too


def test_the_mean_digit_loss_is_one_cross_entropy_over_both_digits():
    """digit_loss='mean' is what one CrossEntropyLoss call on the two digits' stacked logits gives."""
    torch.manual_seed(0)
    net = build_net(NetConfig(head="prob", conv_channels=(4, 8)))
    x, classes = torch.randn(6, 2, 14, 14), torch.randint(0, 10, (6, 2))
    out = net(x)
    main, aux = loss_terms(out, (classes[:, 0] <= classes[:, 1]).long(), classes)
    weighting = LossWeighting(TrainConfig(aux_loss="alpha", alpha=1.0, digit_loss="mean"))
    one_call = torch.nn.CrossEntropyLoss()(out.digit_logits.reshape(12, 10), classes.reshape(12))
    assert weighting(main, aux, epoch=0).item() == pytest.approx((main + one_call).item(), rel=1e-6)


def test_aux_loss_needs_digit_outputs():
    with pytest.raises(ConfigError, match="needs digit outputs"):
        check_compatible(NetConfig(family="mlp"), TrainConfig(aux_loss="alpha"))
    check_compatible(NetConfig(family="cnn2ch", intermediate_head=True), TrainConfig(aux_loss="alpha"))
    with pytest.raises(ConfigError, match="staged_epochs"):
        TrainConfig(epochs=3, staged_epochs=3)
    with pytest.raises(ConfigError, match="digit_loss='mean' averages the two digits"):
        check_compatible(
            NetConfig(family="cnn2ch", intermediate_head=True), TrainConfig(aux_loss="alpha", digit_loss="mean")
        )
    with pytest.raises(ConfigError, match="digit_loss must be one of sum, mean"):
        TrainConfig(digit_loss="max")
