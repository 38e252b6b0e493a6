"""Every family x option builds, reports its parameters, gets a gradient everywhere and learns."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from models.errors import ConfigError
from models.nets.activations import ACTIVATIONS, make_activation
from models.nets.configs import NetConfig, TrainConfig, check_compatible
from models.nets.families import FAMILIES, build_net, count_parameters
from models.nets.heads import DigitSoftmax, ProbHead, as_log_probs
from models.training.losses import LossWeighting, loss_terms

torch.set_num_threads(1)

SIAMESE = [
    NetConfig(family="siamese", tower=tower, weight_sharing=ws, head=head, batch_norm=bn, dropout=0.2)
    for tower, ws, head, bn in itertools.product(
        ("conv", "fc"), (True, False), ("mlp", "linear", "prob"), (True, False)
    )
]
VOCABULARY = [  # what the five reports' models need
    NetConfig(
        family="siamese",
        fusion="features",
        aux_classifier=True,
        aux_hidden=(16,),
        fc_width=(16, 8),
        pair_output="logit",
    ),
    NetConfig(family="siamese", fusion="features", weight_sharing=False, conv_channels=(4, 8, 8), pool_after=(1, 2, 3)),
    NetConfig(
        family="siamese", conv_channels=(4, 8), batch_norm=True, batch_norm_dense=False, batch_norm_at="activation"
    ),
    NetConfig(
        family="siamese",
        conv_channels=(8, 8, 16),
        padding="valid",
        pool_after=(3,),
        head="linear",
        batch_norm=True,
        batch_norm_dense=False,
    ),
    NetConfig(family="siamese", dropout=0.4, dropout_at="last_conv", activation="elu", activation_alpha=0.5),
    NetConfig(family="siamese", conv_channels=(8, 16), head="linear", head_input="softmax"),
    NetConfig(family="siamese", conv_channels=(8, 16), head="linear", head_input="softmax", digit_output="softmax"),
    NetConfig(family="siamese", tower="fc", hidden=(32,), head="mlp", head_input="softmax", weight_sharing=False),
    NetConfig(
        family="cnn2ch",
        conv_channels=(8, 16, 16),
        padding="valid",
        pool_after=(3,),
        intermediate_head=True,
        intermediate_after=2,
        intermediate_pool=True,
        intermediate_hidden=(16,),
    ),
    NetConfig(family="cnn2ch", conv_channels=(4, 8, 8, 1), kernel_size=(3, 3, 3, 2), pool_after=(1,), pure_conv=True),
    NetConfig(family="cnn2ch", conv_channels=(8, 16, 16), pool_after=(1, 2, 3), fc_width=(16, 16), pair_output="logit"),
    NetConfig(family="mlp", hidden=(32, 16), pair_output="logit", activation="leaky_relu", activation_alpha=0.2),
    NetConfig(family="cnn2ch", conv_channels=(8, 16), fc_width=32, predict_digits=True),
    NetConfig(
        family="cnn2ch", conv_channels=(8, 16), fc_width=(), predict_digits=True, head="linear", pair_output="logit"
    ),
]  # fmt: skip (a table: one configuration per line)
OTHERS = [
    NetConfig(family="mlp", hidden=(64, 32)),
    NetConfig(family="mlp", hidden=(32,), activation="sigmoid", batch_norm=True, dropout=0.1),
    NetConfig(family="cnn2ch", conv_channels=(8, 16)),
    NetConfig(family="cnn2ch", conv_channels=(8, 8, 16, 16), kernel_size=5, batch_norm=True),
    NetConfig(family="cnn2ch", conv_channels=(8, 16, 16), pure_conv=True),
    NetConfig(family="cnn2ch", conv_channels=(8, 16), intermediate_head=True),
]


def _batch(n: int = 16):
    generator = torch.Generator().manual_seed(0)
    x, classes = torch.randn(n, 2, 14, 14, generator=generator), torch.randint(0, 10, (n, 2), generator=generator)
    return x, (classes[:, 0] <= classes[:, 1]).long(), classes


def _train_config(cfg: NetConfig) -> TrainConfig:
    aux = cfg.has_digit_outputs or (cfg.family == "cnn2ch" and cfg.intermediate_head)
    return TrainConfig(optimizer="adam", lr=3e-3, aux_loss="alpha" if aux else "none")


def _steps(cfg: NetConfig, n_steps: int) -> tuple[torch.nn.Module, list[float]]:
    """A few Adam steps on one batch: every parameter must get a finite, nonzero gradient at every step (a
    parameter the loss never reaches has none; one it reaches through a dead path gets zeros), and the
    loss must fall. Every configuration here trains all its parameters: `_train_config` turns the
    auxiliary loss on wherever the network has digit outputs or an intermediate head, which only it trains."""
    torch.manual_seed(0)
    net, train = build_net(cfg), _train_config(cfg)
    optimizer = torch.optim.Adam(net.parameters(), lr=train.lr)
    x, target, classes = _batch()
    weighting, losses = LossWeighting(train), []
    for _ in range(n_steps):
        loss = weighting(*loss_terms(net(x), target, classes), epoch=0)
        optimizer.zero_grad()
        loss.backward()
        missing = [
            name
            for name, p in net.named_parameters()
            if p.grad is None or not torch.isfinite(p.grad).all() or not p.grad.any()
        ]
        assert not missing, f"no (finite, nonzero) gradient for {missing}"
        optimizer.step()
        losses.append(loss.item())
    return net, losses


def _ids(c: NetConfig) -> str:
    return f"{c.family}-{c.tower}-{c.fusion}-ws{c.weight_sharing:d}-{c.head}-bn{c.batch_norm:d}-{c.padding}-{len(c.conv_channels)}"


@pytest.mark.parametrize("cfg", SIAMESE + VOCABULARY + OTHERS, ids=_ids)
def test_every_family_option_builds_gets_gradients_and_learns(cfg):
    net, losses = _steps(cfg, 8)
    out = net.eval()(_batch()[0])
    assert out.pair_log_probs.shape == (16, 2)
    assert torch.allclose(out.pair_log_probs.exp().sum(-1), torch.ones(16), atol=1e-5)
    assert (out.digit_logits is not None) == cfg.has_digit_outputs
    assert losses[-1] < losses[0], losses
    assert count_parameters(cfg) == sum(p.numel() for p in build_net(cfg).parameters()) > 0


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_learns(activation):
    _, losses = _steps(NetConfig(activation=activation, conv_channels=(4, 8), fc_width=16), 8)
    assert losses[-1] < losses[0]


def test_the_gradient_check_catches_a_part_the_loss_does_not_train():
    """Without the auxiliary loss a separate digit classifier learns nothing: `_steps` would name it."""
    cfg = NetConfig(fusion="features", weight_sharing=False, aux_classifier=True, aux_hidden=(8,), conv_channels=(4, 8))
    net = build_net(cfg)
    x, target, classes = _batch()
    LossWeighting(TrainConfig(aux_loss="none"))(*loss_terms(net(x), target, classes), epoch=0).backward()
    untrained = {name for name, p in net.named_parameters() if p.grad is None or not p.grad.any()}
    assert untrained == {f"digit_classifier.{name}" for name, _ in net.digit_classifier.named_parameters()}


def test_valid_convolutions_and_pool_positions_give_the_reports_sizes():
    # report 000's baseline: Conv(2,32,3) Conv(32,64,3) max-pool Linear(1600,128) Linear(128,2)
    baseline = NetConfig(family="cnn2ch", conv_channels=(32, 64), padding="valid", pool_after=(2,))
    assert count_parameters(baseline) == (2 * 9 * 32 + 32) + (32 * 9 * 64 + 64) + (1600 * 128 + 128) + (128 * 2 + 2)
    # its 3-conv net with the GoogLeNet-style head after conv 2: max-pool, Linear(1600,128), Linear(128,2)
    deep = NetConfig(family="cnn2ch", conv_channels=(32, 64, 128), padding="valid", pool_after=(3,))
    branched = NetConfig(
        **{
            **deep.to_dict(),
            "intermediate_head": True,
            "intermediate_after": 2,
            "intermediate_pool": True,
            "intermediate_hidden": (128,),
        }
    )
    assert count_parameters(branched) - count_parameters(deep) == (1600 * 128 + 128) + (128 * 2 + 2)
    assert count_parameters(deep) == 355_490
    with pytest.raises(ConfigError, match="leaves no pixels"):
        build_net(
            NetConfig(family="cnn2ch", conv_channels=(8, 8, 8, 8), padding="valid", kernel_size=5, pool_after=(1, 2))
        )


def test_an_alpha_for_an_activation_without_one_is_a_config_error():
    assert make_activation("elu", 0.5).alpha == 0.5
    with pytest.raises(ConfigError, match="activation 'relu' takes no alpha, but got alpha=0.5"):
        make_activation("relu", 0.5)


def test_batch_norm_on_convolutions_only_and_dropout_once():
    convs_only = NetConfig(conv_channels=(4, 8), fc_width=16, batch_norm=True, batch_norm_dense=False)
    kinds = [type(m).__name__ for m in build_net(convs_only).modules()]
    assert kinds.count("BatchNorm2d") == 2 and kinds.count("BatchNorm1d") == 0
    once = NetConfig(conv_channels=(4, 8), fc_width=16, dropout=0.4, dropout_at="last_conv")
    assert [type(m).__name__ for m in build_net(once).modules()].count("Dropout") == 1
    everywhere = NetConfig(conv_channels=(4, 8), fc_width=16, dropout=0.4)
    assert [type(m).__name__ for m in build_net(everywhere).modules()].count("Dropout") == 2


def test_batch_norm_after_the_activation_moves_it_and_keeps_the_parameters():
    at_conv = NetConfig(conv_channels=(4, 8), fc_width=16, batch_norm=True, batch_norm_dense=False)
    after = NetConfig(**{**at_conv.to_dict(), "batch_norm_at": "activation"})
    order = [[type(m).__name__ for m in block] for block in build_net(after).towers[0][0].blocks]
    assert order == [["Conv2d", "MaxPool2d", "ReLU", "BatchNorm2d"]] * 2
    assert [[type(m).__name__ for m in block] for block in build_net(at_conv).towers[0][0].blocks] == [
        ["Conv2d", "BatchNorm2d", "MaxPool2d", "ReLU"]
    ] * 2
    assert count_parameters(after) == count_parameters(at_conv)
    # each block's output is batch-normalised in training: mean 0 per channel, negative values and all
    tower = build_net(after).towers[0][0].train()
    first = tower.blocks[0](torch.rand(32, 1, 14, 14))
    assert first.min() < 0 and first.mean(dim=(0, 2, 3)).abs().max() < 1e-5
    with pytest.raises(ConfigError, match="batch_norm_at"):
        NetConfig(batch_norm_at="pool")


def test_activation_alpha_reaches_every_activation():
    net = build_net(NetConfig(activation="elu", activation_alpha=0.5, conv_channels=(4, 8), fc_width=16))
    elus = [m for m in net.modules() if isinstance(m, torch.nn.ELU)]
    assert elus and all(m.alpha == 0.5 for m in elus)
    with pytest.raises(ConfigError, match="activation_alpha applies to elu and leaky_relu"):
        NetConfig(activation="relu", activation_alpha=0.5)


def test_features_fusion_digit_classifier_is_shared_and_plays_no_part_in_the_pair_output():
    cfg = NetConfig(fusion="features", weight_sharing=False, aux_classifier=True, aux_hidden=(8,), conv_channels=(4, 8))
    net = build_net(cfg).eval()
    x = _batch()[0]
    before = net(x).pair_log_probs
    with torch.no_grad():
        for p in net.digit_classifier.parameters():
            p.add_(1.0)
    assert torch.equal(net(x).pair_log_probs, before)
    without = NetConfig(**{**cfg.to_dict(), "aux_classifier": False})
    n_classifier = sum(p.numel() for p in net.digit_classifier.parameters())
    assert count_parameters(cfg) - count_parameters(without) == n_classifier == (8 * 3 * 3 * 8 + 8) + (8 * 10 + 10)


def test_one_logit_output_is_binary_cross_entropy():
    z = torch.tensor([[-2.0], [0.3], [4.0]])
    target = torch.tensor([0, 1, 1])
    nll = F.nll_loss(as_log_probs(z), target)
    assert nll.item() == pytest.approx(
        F.binary_cross_entropy_with_logits(z.squeeze(1), target.float()).item(), rel=1e-6
    )


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


def test_a_linear_head_on_the_digit_softmaxes_can_compare_exactly():
    """On the digit predictions a single Linear layer can express "first <= second" exactly:
    sum_k k (p2(k) - p1(k)) + 1/2 is positive where d1 <= d2 (report 000's comparison layer). On the
    logits it reads each digit's raw scores, which a linear map compares only as far as their scales allow."""
    net = build_net(NetConfig(head="linear", head_input="softmax", pair_output="logit", conv_channels=(4, 8)))
    linear = net.head.body[-1]
    with torch.no_grad():
        k = torch.arange(10.0)
        linear.weight.copy_(100 * torch.cat([-k, k])[None])
        linear.bias.fill_(50.0)
    big, pairs = 50.0, list(itertools.product(range(10), repeat=2))
    logits = torch.full((len(pairs), 2, 10), -big)
    for row, (d1, d2) in enumerate(pairs):
        logits[row, 0, d1] = logits[row, 1, d2] = big
    predicted = net.head(logits).argmax(-1)
    assert predicted.tolist() == [int(d1 <= d2) for d1, d2 in pairs]
    logit_head = build_net(NetConfig(head="linear", pair_output="logit", conv_channels=(4, 8))).head
    assert any(isinstance(m, DigitSoftmax) for m in net.head.modules())
    assert not any(isinstance(m, DigitSoftmax) for m in logit_head.modules())
    shifted = logits + torch.randn(len(pairs), 2, 1)  # a softmax ignores a shift of each digit's logits
    assert torch.allclose(net.head(shifted), net.head(logits), atol=1e-5)
    assert not torch.allclose(logit_head(shifted), logit_head(logits), atol=1e-5)


def test_a_softmax_digit_output_is_what_the_digit_loss_reads():
    """digit_output='softmax': the digit outputs are the towers' softmax, which the loss's CrossEntropyLoss
    softmaxes again (a tower listed as ending '-> softmax' under CrossEntropyLoss); the pair output is unchanged."""
    torch.manual_seed(0)
    logits_net = build_net(NetConfig(head="linear", head_input="softmax", conv_channels=(4, 8)))
    softmax_net = build_net(
        NetConfig(head="linear", head_input="softmax", digit_output="softmax", conv_channels=(4, 8))
    )
    softmax_net.load_state_dict(logits_net.state_dict())
    x, target, classes = _batch()
    plain, double = logits_net.eval()(x), softmax_net.eval()(x)
    assert torch.equal(plain.pair_log_probs, double.pair_log_probs)
    assert torch.allclose(double.digit_logits, plain.digit_logits.softmax(-1))
    _, aux = loss_terms(double, target, classes)
    assert aux.item() == pytest.approx(
        2 * F.cross_entropy(plain.digit_logits.softmax(-1).flatten(0, 1), classes.flatten()).item()
    )
    # probabilities read as logits never give a CE below log(1 + 9/e) ~ 1.46 a digit: what a second softmax costs
    assert aux.item() > 2 * math.log(1 + 9 / math.e)
    with pytest.raises(ConfigError, match="digit_output 'softmax' is for siamese towers"):
        NetConfig(family="cnn2ch", digit_output="softmax")


def test_a_two_channel_cnn_predicting_the_digits_reads_both_channels_for_each_digit():
    """predict_digits: one network for the pair (no tower per digit), its last Linear the two digits' 20 logits,
    compared by the head; report 002's CNN_AL read as its basic CNN with the auxiliary losses (97,014
    parameters at that report's sizes: convs 32-64, Linear 128 -> 20, head 20-64-2)."""
    torch.manual_seed(0)
    cfg = NetConfig(family="cnn2ch", conv_channels=(4, 8), fc_width=16, predict_digits=True)
    net = build_net(cfg).eval()
    x = _batch()[0]
    out = net(x)
    assert out.digit_logits.shape == (16, 2, 10)
    assert torch.equal(out.pair_log_probs, net.head(out.digit_logits))
    changed = x.clone()
    changed[:, 1] = 0  # the second channel only: the first digit's logits move too, as no tower sees one digit
    assert not torch.allclose(net(changed).digit_logits[:, 0], out.digit_logits[:, 0])
    report_002 = dict(family="cnn2ch", conv_channels=(32, 64), fc_width=128, predict_digits=True)
    assert count_parameters(NetConfig(**report_002)) == 97_014
    assert NetConfig(**report_002).has_learned_head and not NetConfig(**report_002, head="prob").has_learned_head
    check_compatible(NetConfig(**report_002), TrainConfig(aux_loss="alpha"))
    with pytest.raises(ConfigError, match="needs digit outputs"):
        check_compatible(NetConfig(family="cnn2ch"), TrainConfig(aux_loss="alpha"))
    for wrong in (
        dict(family="siamese"),
        dict(family="cnn2ch", pure_conv=True),
        dict(family="cnn2ch", intermediate_head=True),
    ):
        with pytest.raises(ConfigError, match="predict_digits is for a cnn2ch"):
            NetConfig(**wrong, predict_digits=True)


def test_families_registry_and_config_validation():
    assert set(FAMILIES) == {"mlp", "cnn2ch", "siamese"}
    with pytest.raises(ConfigError, match="family must be one of"):
        NetConfig(family="resnet")
    with pytest.raises(ConfigError, match="conv_channels"):
        NetConfig(conv_channels=(8,))
    with pytest.raises(ConfigError, match="dropout"):
        NetConfig(dropout=1.0)
    with pytest.raises(ConfigError, match="kernel_size must be a tuple of 2 to 2"):
        NetConfig(kernel_size=(3, 3, 3))
    with pytest.raises(ConfigError, match="pool_after must name convolutions 1 to 2"):
        NetConfig(pool_after=(3,))
    with pytest.raises(ConfigError, match="intermediate_after must name a convolution before the last"):
        NetConfig(family="cnn2ch", intermediate_head=True, intermediate_after=2)
    with pytest.raises(ConfigError, match="aux_classifier belongs to fusion 'features'"):
        NetConfig(aux_classifier=True)
    with pytest.raises(ConfigError, match="head_input 'softmax' is for a learned head") as refused:
        NetConfig(head="prob", head_input="softmax")
    assert "got head='prob', fusion='digits'" in str(refused.value) and "set head_input='logits'" in str(refused.value)
    with pytest.raises(ConfigError, match="head_input must be one of logits, softmax"):
        NetConfig(head_input="probs")
    with pytest.raises(ConfigError, match="unknown NetConfig field"):
        NetConfig.from_dict({"familly": "mlp"})
    cfg = NetConfig(hidden=(64, 32), head="prob", kernel_size=(3, 5), fc_width=(16, 8))
    assert NetConfig.from_dict(cfg.to_dict() | {"hidden": [64, 32], "kernel_size": [3, 5], "fc_width": [16, 8]}) == cfg


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_pooling_before_the_activation_changes_nothing(activation):
    """The conv blocks pool before activating (less work); every activation is non-decreasing, so
    max-pooling commutes with it exactly."""
    x = torch.randn(64, 8, 6, 6)
    act = ACTIVATIONS[activation]()
    assert torch.equal(torch.nn.functional.max_pool2d(act(x), 2), act(torch.nn.functional.max_pool2d(x, 2)))


@pytest.mark.parametrize("tower", ["conv", "fc"])
def test_an_activated_digit_output_is_what_both_the_head_and_the_digit_loss_read(tower):
    """digit_activation: the tower's activation after its last Linear too (report 004's "all with ReLU"):
    the same parameters, every digit output rectified, and the head reading exactly those outputs."""
    torch.manual_seed(0)
    cfg = NetConfig(tower=tower, hidden=(32,), conv_channels=(4, 8), head="linear", pair_output="logit")
    plain, rectified = build_net(cfg), build_net(dataclasses.replace(cfg, digit_activation=True))
    rectified.load_state_dict(plain.state_dict())  # the same parameters under the same names
    assert count_parameters(cfg) == count_parameters(dataclasses.replace(cfg, digit_activation=True))
    x, _, _ = _batch()
    before, after = plain.eval()(x), rectified.eval()(x)
    assert (before.digit_logits < 0).any() and torch.equal(after.digit_logits, before.digit_logits.relu())
    assert torch.allclose(after.pair_log_probs, rectified.head(before.digit_logits.relu()))
    with pytest.raises(ConfigError, match="digit_activation is for siamese towers"):
        NetConfig(family="cnn2ch", digit_activation=True)
