"""The fast path trains K models and matches the one-by-one reference loop."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from models.data.draws import make_draw
from models.data.pools import load_pools
from models.errors import ConfigError
from models.nets.configs import NetConfig, TrainConfig
from models.training.fast import fit_many
from models.training.train import Speed, fit

torch.set_num_threads(1)
NET = NetConfig(head="prob", batch_norm=True, activation="leaky_relu", conv_channels=(8, 16), fc_width=32)
TRAIN = TrainConfig(
    lr=0.1, epochs=2, aux_loss="alpha", batch_size=50, shift=1, rotate=10.0, scale=0.1, schedule="cosine", tta="shift"
)


@pytest.fixture(scope="module")
def draws():
    pools = load_pools(None)
    return [make_draw(pools, seed=s, n_pairs=200) for s in (1, 2, 3)]


def test_plain_speed_matches_the_reference_exactly(draws):
    jobs = [(d.train, d.test) for d in draws]
    many = fit_many(NET, TRAIN, jobs, seeds=[10, 11, 12], speed=Speed())
    one_by_one = [fit(NET, TRAIN, d.train, eval_pairs=d.test, seed=s) for d, s in zip(draws, (10, 11, 12), strict=True)]
    for a, b in zip(many, one_by_one, strict=True):
        assert [c.train_loss for c in a.curves] == [c.train_loss for c in b.curves]
        assert a.accuracy == b.accuracy and a.digit_accuracy == b.digit_accuracy


def test_fast_speed_matches_the_reference_within_tolerance(draws):
    d = draws[0]
    fast = fit_many(NET, TRAIN, [(d.train, d.test)], seeds=[5])[0]
    ref = fit(NET, TRAIN, d.train, eval_pairs=d.test, seed=5)
    assert fast.curves[0].train_loss == pytest.approx(ref.curves[0].train_loss, rel=2e-3)
    assert abs(fast.accuracy - ref.accuracy) <= 0.03


def test_on_epoch_sees_every_model_and_can_stop_all(draws):
    calls = []

    def on_epoch(epoch, stats):
        calls.append((epoch, [s.eval_accuracy for s in stats]))
        return True

    results = fit_many(NET, TRAIN, [(d.train, d.test) for d in draws], seeds=[0, 1, 2], on_epoch=on_epoch)
    assert len(calls) == 1 and calls[0][0] == 0 and len(calls[0][1]) == 3
    assert all(0 <= a <= 1 for a in calls[0][1])
    assert [r.status for r in results] == ["stopped"] * 3


def test_one_seed_per_job(draws):
    with pytest.raises(ConfigError, match="one seed per job"):
        fit_many(NET, TRAIN, [(draws[0].train, None)], seeds=[1, 2])


def test_stacked_batched_models_match_the_reference(draws):
    """One vmapped computation for K models: same init, batches and augmentation as the reference loop."""
    jobs = [(d.train, d.test) for d in draws]
    stacked = fit_many(NET, TRAIN, jobs, seeds=[10, 11, 12], strategy="stacked")
    one_by_one = [fit(NET, TRAIN, d.train, eval_pairs=d.test, seed=s) for d, s in zip(draws, (10, 11, 12), strict=True)]
    for a, b in zip(stacked, one_by_one, strict=True):
        assert a.status == "completed" and len(a.curves) == TRAIN.epochs
        assert a.curves[0].train_loss == pytest.approx(b.curves[0].train_loss, rel=1e-3)
        assert a.curves[-1].train_loss == pytest.approx(b.curves[-1].train_loss, rel=5e-2)
        assert abs(a.accuracy - b.accuracy) <= 0.03 and abs(a.digit_accuracy - b.digit_accuracy) <= 0.03


@pytest.mark.parametrize("strategy", ["lockstep", "stacked"])
def test_batch_statistics_scoring_matches_the_reference(draws, strategy):
    train = dataclasses.replace(TRAIN, tta="none", bn_scoring="batch")
    jobs = [(d.train, d.test) for d in draws[:2]]
    many = fit_many(NET, train, jobs, seeds=[10, 11], strategy=strategy, speed=Speed())
    one_by_one = [fit(NET, train, d.train, eval_pairs=d.test, seed=s) for d, s in zip(draws[:2], (10, 11), strict=True)]
    running = fit(
        NET, dataclasses.replace(train, bn_scoring="running"), draws[0].train, eval_pairs=draws[0].test, seed=10
    )
    # the mode is what is compared: the per-epoch scores differ (one final accuracy can agree by chance)
    scores = [(c.eval_accuracy, c.eval_digit_accuracy) for c in one_by_one[0].curves]
    assert scores != [(c.eval_accuracy, c.eval_digit_accuracy) for c in running.curves]
    for a, b in zip(many, one_by_one, strict=True):
        assert abs(a.accuracy - b.accuracy) <= (0 if strategy == "lockstep" else 0.03)


def test_stacked_stops_a_diverging_model_without_an_exception(draws):
    wild = TrainConfig(lr=1e6, epochs=2, aux_loss="alpha")
    results = fit_many(NET, wild, [(d.train, d.test) for d in draws[:2]], seeds=[0, 1], strategy="stacked")
    assert [r.status for r in results] == ["diverged", "diverged"]
    assert all("lower the learning rate" in r.message and r.accuracy is None for r in results)


def test_unknown_strategy_is_rejected(draws):
    with pytest.raises(ConfigError, match="strategy must be one of"):
        fit_many(NET, TRAIN, [(draws[0].train, None)], seeds=[1], strategy="parallel")
