"""Every family x option builds, reports its parameters and takes a training step."""

from __future__ import annotations

import itertools

import pytest
import torch

from models.activations import ACTIVATIONS
from models.configs import NetConfig, TrainConfig
from models.errors import ConfigError
from models.heads import ProbHead
from models.losses import LossWeighting, loss_terms
from models.nets import FAMILIES, build_net, count_parameters

torch.set_num_threads(1)

SIAMESE = [
    NetConfig(family="siamese", tower=tower, weight_sharing=ws, head=head, batch_norm=bn, dropout=0.2)
    for tower, ws, head, bn in itertools.product(("conv", "fc"), (True, False), ("mlp", "prob"), (True, False))
]
OTHERS = [
    NetConfig(family="mlp", hidden=(64, 32)),
    NetConfig(family="mlp", hidden=(32,), activation="sigmoid", batch_norm=True, dropout=0.1),
    NetConfig(family="cnn2ch", conv_channels=(8, 16)),
    NetConfig(family="cnn2ch", conv_channels=(8, 8, 16, 16), kernel_size=5, batch_norm=True),
    NetConfig(family="cnn2ch", conv_channels=(8, 16, 16), pure_conv=True),
    NetConfig(family="cnn2ch", conv_channels=(8, 16), intermediate_head=True),
]


def _train_step(cfg: NetConfig, train: TrainConfig) -> torch.Tensor:
    torch.manual_seed(0)
    net = build_net(cfg)
    x, classes = torch.randn(6, 2, 14, 14), torch.randint(0, 10, (6, 2))
    target = (classes[:, 0] <= classes[:, 1]).long()
    out = net(x)
    loss = LossWeighting(train)(*loss_terms(out, target, classes), epoch=0)
    loss.backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad and p.numel() > 0) or cfg.family != "mlp"
    return out.pair_log_probs


@pytest.mark.parametrize("cfg", SIAMESE + OTHERS, ids=lambda c: f"{c.family}-{c.tower}-ws{c.weight_sharing:d}-{c.head}-bn{c.batch_norm:d}")
def test_every_family_option_builds_and_steps(cfg):
    train = TrainConfig(aux_loss="alpha") if cfg.has_digit_outputs or cfg.intermediate_head else TrainConfig()
    log_probs = _train_step(cfg, train)
    assert log_probs.shape == (6, 2)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(6), atol=1e-5)
    n = count_parameters(cfg)
    assert n == sum(p.numel() for p in build_net(cfg).parameters())
    assert n > 0


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_trains(activation):
    _train_step(NetConfig(activation=activation, conv_channels=(4, 8), fc_width=16), TrainConfig(aux_loss="alpha"))


def test_weight_sharing_halves_the_tower_parameters():
    shared, separate = NetConfig(weight_sharing=True, head="prob"), NetConfig(weight_sharing=False, head="prob")
    assert count_parameters(separate) == 2 * count_parameters(shared)


def test_prob_head_is_the_probability_that_the_first_digit_is_not_larger():
    big = 50.0  # near one-hot digit distributions
    logits = torch.full((3, 2, 10), -big)
    for row, (d1, d2) in enumerate([(2, 7), (7, 2), (4, 4)]):
        logits[row, 0, d1] = big
        logits[row, 1, d2] = big
    p_le = ProbHead()(logits).exp()[:, 1]
    assert torch.allclose(p_le, torch.tensor([1.0, 0.0, 1.0]), atol=1e-6)
    uniform = ProbHead()(torch.zeros(1, 2, 10)).exp()[0, 1]
    assert uniform.item() == pytest.approx(55 / 100)  # 55 of the 100 (i, j) pairs have i <= j


def test_families_registry_and_config_validation():
    assert set(FAMILIES) == {"mlp", "cnn2ch", "siamese"}
    with pytest.raises(ConfigError, match="family must be one of"):
        NetConfig(family="resnet")
    with pytest.raises(ConfigError, match="conv_channels"):
        NetConfig(conv_channels=(8,))
    with pytest.raises(ConfigError, match="dropout"):
        NetConfig(dropout=1.0)
    with pytest.raises(ConfigError, match="unknown NetConfig field"):
        NetConfig.from_dict({"familly": "mlp"})
    cfg = NetConfig(hidden=(64, 32), head="prob")
    assert NetConfig.from_dict(cfg.to_dict() | {"hidden": [64, 32]}) == cfg
