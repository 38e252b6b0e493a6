"""The reference training loop: results, curves, early stop, divergence, no normalisation leakage."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from models.data.augment import random_shift, tta_views
from models.data.draws import PairSet, make_draw
from models.data.pools import load_pools
from models.errors import ConfigError
from models.nets.configs import NetConfig, TrainConfig
from models.training.fast import fit_many
from models.training.lr_find import LRRange, find_lr
from models.training.train import EVAL_CHUNK, ModelTrainer, Speed, fit, view_probabilities

torch.set_num_threads(1)
NET = NetConfig(head="prob", batch_norm=True, activation="leaky_relu", conv_channels=(8, 16), fc_width=32)
TRAIN = TrainConfig(lr=0.1, epochs=3, aux_loss="alpha", batch_size=50)


@pytest.fixture(scope="module")
def draw():
    return make_draw(load_pools(None), seed=7, n_pairs=300)


def test_fit_learns_and_records_curves(draw):
    result = fit(NET, TRAIN, draw.train, eval_pairs=draw.test, seed=0)
    assert result.status == "completed"
    assert len(result.curves) == 3 and [c.epoch for c in result.curves] == [0, 1, 2]
    assert result.curves[-1].train_loss < result.curves[0].train_loss
    assert 0.75 < result.accuracy <= 1.0  # far above the 0.55 a constant guess gets
    assert 0.5 < result.digit_accuracy <= 1.0
    assert result.n_params > 0 and result.seconds > 0


def test_same_seed_same_result(draw):
    cfg = dataclasses.replace(TRAIN, epochs=1, shift=1)
    net = dataclasses.replace(NET, dropout=0.3)
    a = fit(net, cfg, draw.train, eval_pairs=draw.test, seed=3)
    b = fit(net, cfg, draw.train, eval_pairs=draw.test, seed=3)
    c = fit(net, cfg, draw.train, eval_pairs=draw.test, seed=4)
    assert a.curves[0].train_loss == b.curves[0].train_loss and a.accuracy == b.accuracy
    assert a.curves[0].train_loss != c.curves[0].train_loss


def test_on_epoch_can_stop_training(draw):
    seen = []
    result = fit(NET, TRAIN, draw.train, eval_pairs=draw.test, on_epoch=lambda s: seen.append(s.epoch) or True)
    assert result.status == "stopped" and seen == [0] and len(result.curves) == 1


def test_divergence_is_a_status_not_an_exception(draw):
    wild = TrainConfig(optimizer="sgd", lr=1e6, epochs=2, aux_loss="alpha")
    result = fit(NetConfig(family="siamese", conv_channels=(4, 8), fc_width=16), wild, draw.train, eval_pairs=draw.test)
    assert result.status == "diverged"
    assert "lower the learning rate" in result.message and result.accuracy is None


def test_evaluation_pairs_do_not_leak_into_training(draw):
    """Normalisation comes from the training pairs: rescaling the test inputs changes no training step."""
    scaled = PairSet(draw.test.input * 100 + 5, draw.test.target, draw.test.classes)
    cfg = dataclasses.replace(TRAIN, epochs=2)
    a = fit(NET, cfg, draw.train, eval_pairs=draw.test, seed=1)
    b = fit(NET, cfg, draw.train, eval_pairs=scaled, seed=1)
    assert [c.train_loss for c in a.curves] == [c.train_loss for c in b.curves]
    assert a.accuracy != b.accuracy  # the test inputs were seen only when scoring


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop"])
def test_each_optimizer_with_decay_and_staging(draw, optimizer):
    lr = {"sgd": 0.05, "adam": 1e-3, "rmsprop": 1e-3}[optimizer]
    cfg = TrainConfig(optimizer=optimizer, lr=lr, gamma=0.5, epochs=2, staged_epochs=1, aux_loss="normalized")
    result = fit(NET, cfg, draw.train, eval_pairs=draw.test)
    assert result.status == "completed"
    assert result.curves[1].lr == pytest.approx(lr * 0.5)


def test_random_shift_moves_digits_within_bounds():
    x = torch.zeros(4, 2, 14, 14)
    x[:, :, 7, 7] = 1.0
    shifted = random_shift(x, 2, generator=torch.Generator().manual_seed(0), fill=0.0)
    assert shifted.shape == x.shape and torch.equal(shifted.sum((2, 3)), x.sum((2, 3)))
    rows, cols = shifted.nonzero()[:, 2], shifted.nonzero()[:, 3]
    assert rows.min() >= 5 and rows.max() <= 9 and cols.min() >= 5 and cols.max() <= 9
    assert not torch.equal(shifted, x)


def test_cosine_schedule_anneals_to_zero_on_the_last_epoch(draw):
    cfg = dataclasses.replace(TRAIN, epochs=4, schedule="cosine", gamma=0.5, rotate=10.0, scale=0.1)
    result = fit(NET, cfg, draw.train, eval_pairs=draw.test, seed=0)
    lrs = [c.lr for c in result.curves]
    expected = [0.1 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]  # gamma is not used
    assert lrs == pytest.approx(expected) and result.status == "completed"
    assert result.accuracy > 0.75


def test_geometric_schedule_falls_by_decay_to_over_any_length(draw):
    """A run of 2 epochs is a compressed run of 4: the lr at the same fraction of training is the same."""
    runs = {}
    for epochs in (2, 4):
        cfg = dataclasses.replace(TRAIN, epochs=epochs, schedule="geometric", decay_to=0.01, gamma=0.5)
        runs[epochs] = [c.lr for c in fit(NET, cfg, draw.train, eval_pairs=draw.test, seed=0).curves]
    assert runs[4] == pytest.approx([0.1 * 0.01 ** (e / 4) for e in range(4)])  # gamma is not used
    assert runs[2] == pytest.approx(runs[4][::2])
    with pytest.raises(ConfigError, match="decay_to"):
        TrainConfig(schedule="geometric", decay_to=0.0)


def test_test_time_views_change_only_the_final_score(draw):
    plain = fit(NET, TRAIN, draw.train, eval_pairs=draw.test, seed=2)
    views = fit(NET, dataclasses.replace(TRAIN, tta="shift"), draw.train, eval_pairs=draw.test, seed=2)
    assert [c.train_loss for c in plain.curves] == [c.train_loss for c in views.curves]  # training is untouched
    assert [c.eval_accuracy for c in plain.curves[:-1]] == [c.eval_accuracy for c in views.curves[:-1]]
    assert views.curves[-1].eval_accuracy == views.accuracy
    assert abs(views.accuracy - plain.accuracy) < 0.05


def test_the_final_score_sums_the_probabilities_of_five_shifted_views(draw):
    """Compared as probabilities, not accuracies: two scores can agree on 600 pairs by chance (a CI CPU did)."""
    trainer = ModelTrainer(NET, dataclasses.replace(TRAIN, epochs=1, tta="shift"), draw.train, eval_pairs=draw.test)
    trainer.run_epoch(evaluate=False)
    trainer.model.eval()
    inputs = trainer.eval_set.input[:64]
    with torch.no_grad():
        one, _ = view_probabilities(trainer.model, inputs, "none", fill=trainer.fill)
        five, digits = view_probabilities(trainer.model, inputs, "shift", fill=trainer.fill)
        by_hand = sum(trainer.model(x).pair_log_probs.exp() for x in tta_views(inputs, "shift", fill=trainer.fill))
    assert torch.allclose(five.sum(-1), torch.full((64,), 5.0)) and torch.allclose(one.sum(-1), torch.ones(64))
    assert torch.allclose(five, by_hand) and not torch.allclose(five, 5 * one)
    assert digits is not None and torch.allclose(digits.sum(-1), torch.full((64, 2), 5.0))


def test_the_final_score_is_float32_even_when_training_uses_bfloat16(draw):
    trainer = ModelTrainer(
        NET, dataclasses.replace(TRAIN, epochs=1), draw.train, eval_pairs=draw.test, speed=Speed(bf16=True)
    )
    trainer.run_epoch(evaluate=False)
    trainer.model.eval()
    with torch.no_grad():
        out = trainer.model(trainer.eval_set.input)  # float32: no autocast here
    hits = int((out.pair_log_probs.argmax(-1) == trainer.eval_set.target).sum())
    assert trainer.evaluate(final=True)[0] == hits / len(trainer.eval_set.target)


def test_batch_statistics_scoring_changes_the_scores_only_and_keeps_dropout_off(draw):
    """bn_scoring='batch': batch norm normalises each scored chunk by its own statistics (a loop that never
    calls model.eval()); training is untouched, dropout stays off, and each chunk is scored as by hand."""
    net = dataclasses.replace(NET, dropout=0.5)
    batch = dataclasses.replace(TRAIN, bn_scoring="batch")
    running = fit(net, TRAIN, draw.train, eval_pairs=draw.test, seed=4, on_epoch=lambda s: False)
    scored = fit(net, batch, draw.train, eval_pairs=draw.test, seed=4, on_epoch=lambda s: False)
    assert [c.train_loss for c in running.curves] == [c.train_loss for c in scored.curves]
    assert [c.eval_accuracy for c in running.curves] != [c.eval_accuracy for c in scored.curves]

    trainer = ModelTrainer(net, batch, draw.train, eval_pairs=draw.test, seed=4)
    trainer.run_epoch(evaluate=False)
    first, second = trainer.evaluate(final=True), trainer.evaluate(final=True)
    assert first == second  # no dropout: the same score twice
    model, data, hits = trainer.model, trainer.eval_set, 0
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.eval()
    with torch.no_grad():
        for start in range(0, len(data.target), EVAL_CHUNK):
            out = model(data.input[start : start + EVAL_CHUNK])
            hits += int((out.pair_log_probs.argmax(-1) == data.target[start : start + EVAL_CHUNK]).sum())
    assert first[0] == hits / len(data.target)
    with pytest.raises(ConfigError, match="bn_scoring must be one of running, batch"):
        TrainConfig(bn_scoring="eval")


def test_pixel_normalisation_trains_on_its_own_inputs_and_refuses_augmentation(draw):
    """normalisation='pixel' (report 001's "subtracting its mean and dividing by its standard deviation", read
    per pixel) feeds the network each pixel standardised; with shifts or test-time views it is refused."""
    mlp = NetConfig(family="mlp", hidden=(32,))
    cfg = dataclasses.replace(TRAIN, aux_loss="none", epochs=2, normalisation="pixel")
    trainer = ModelTrainer(mlp, cfg, draw.train, eval_pairs=draw.test, seed=2)
    inputs = trainer.train_set.input.double()
    assert inputs.mean(0).abs().max() < 1e-4 and inputs.std(0).max() == pytest.approx(1.0, abs=1e-4)
    pixel = fit(mlp, cfg, draw.train, eval_pairs=draw.test, seed=2)
    scalar = fit(mlp, dataclasses.replace(cfg, normalisation="scalar"), draw.train, eval_pairs=draw.test, seed=2)
    assert pixel.status == scalar.status == "completed"
    assert pixel.curves[0].train_loss != scalar.curves[0].train_loss
    for augmentation in ({"shift": 1}, {"rotate": 5.0}, {"tta": "shift"}):
        with pytest.raises(ConfigError, match="normalisation='pixel' does not have"):
            fit(NET, dataclasses.replace(cfg, **augmentation), draw.train)
    with pytest.raises(ConfigError, match="normalisation must be one of scalar, pixel, none"):
        TrainConfig(normalisation="feature")


def test_no_normalisation_feeds_the_raw_pixels_and_shifts_in_blank_ones(draw):
    """normalisation='none' (a report that states no normalisation, on the course's 0..255 generator) trains
    on the pixels themselves, scores the test pairs unchanged, and augmentation fills borders with 0."""
    mlp = NetConfig(family="mlp", hidden=(32,))
    cfg = dataclasses.replace(TRAIN, aux_loss="none", epochs=2, normalisation="none")
    trainer = ModelTrainer(mlp, cfg, draw.train, eval_pairs=draw.test, seed=2)
    assert torch.equal(trainer.train_set.input, draw.train.input) and float(draw.train.input.max()) > 200
    assert torch.equal(trainer.eval_set.input, draw.test.input) and trainer.fill == 0.0
    raw = fit(mlp, cfg, draw.train, eval_pairs=draw.test, seed=2)
    scalar = fit(mlp, dataclasses.replace(cfg, normalisation="scalar"), draw.train, eval_pairs=draw.test, seed=2)
    assert raw.status == scalar.status == "completed"
    assert raw.curves[0].train_loss != scalar.curves[0].train_loss
    shifted = fit(mlp, dataclasses.replace(cfg, shift=1), draw.train, eval_pairs=draw.test, seed=2)
    assert shifted.status == "completed" and shifted.curves[-1].train_loss != raw.curves[-1].train_loss


def test_staged_head_training_freezes_the_towers(draw):
    """Report 000's first scheme: digits alone first, then the comparison head alone (towers frozen)."""
    net = dataclasses.replace(NET, head="linear")
    cfg = dataclasses.replace(TRAIN, epochs=5, alpha=0.4, staged_epochs=3, staged_second="head")
    trainer = ModelTrainer(net, cfg, draw.train, eval_pairs=draw.test, seed=0)
    for _ in range(3):
        trainer.run_epoch()
    towers = [p.detach().clone() for p in trainer.model.towers.parameters()]
    head = [p.detach().clone() for p in trainer.model.head.parameters()]
    trainer.run_epoch()
    trainer.run_epoch()
    assert all(
        torch.equal(a, b) for a, b in zip(towers, trainer.model.towers.parameters(), strict=True)
    )  # batch norm's running
    # statistics still move: requires_grad=False, as the report froze them, does not touch buffers
    assert not any(torch.equal(a, b) for a, b in zip(head, trainer.model.head.parameters(), strict=True))
    result = trainer.result()
    assert trainer.status == "completed" and result.digit_accuracy > 0.5 and result.accuracy > 0.6
    with pytest.raises(ConfigError, match="staged_second='head'"):
        fit(net, dataclasses.replace(cfg, staged_epochs=0), draw.train)
    with pytest.raises(ConfigError, match="staged_second='head'"):
        fit(dataclasses.replace(net, head="prob"), cfg, draw.train)


def test_best_epoch_accuracy_is_the_maximum_of_the_scored_epochs(draw):
    scored = fit_many(NET, TRAIN, [(draw.train, draw.test)], seeds=[0], score_every_epoch=True)[0]
    accuracies = [c.eval_accuracy for c in scored.curves]
    assert None not in accuracies and scored.best_epoch_accuracy == max(accuracies) >= scored.accuracy
    final_only = fit(NET, TRAIN, draw.train, eval_pairs=draw.test, seed=0)
    assert [c.eval_accuracy is None for c in final_only.curves] == [True, True, False]
    assert final_only.best_epoch_accuracy == final_only.accuracy


def test_the_lr_range_test_finds_the_rate_of_the_lowest_loss(draw):
    net = NetConfig(conv_channels=(4, 8), fc_width=16, batch_norm=True)
    cfg = TrainConfig(optimizer="sgd", momentum=0.0, aux_loss="alpha", batch_size=50)
    finding = find_lr(net, cfg, draw.train, rounds=2, span=LRRange(lr_min=1e-3, lr_max=10.0, steps=30))
    for r in finding.rounds:
        assert r.lrs[0] == pytest.approx(1e-3) and all(b > a for a, b in zip(r.lrs, r.lrs[1:], strict=False))
        assert r.best_lr == r.lrs[r.losses.index(min(r.losses))]
        assert 1e-3 < r.best_lr < 10.0 and min(r.losses) < r.losses[0]  # the loss fell, then rose (or ran out)
    assert finding.mean_lr == pytest.approx(sum(r.best_lr for r in finding.rounds) / 2)
    with pytest.raises(ConfigError, match="lr_min < lr_max"):
        LRRange(lr_min=1.0, lr_max=0.1)
