"""Every published preset builds, trains a step, and carries its published figure."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from models.configs import check_compatible
from models.draws import make_draw
from models.nets import count_parameters
from models.pools import load_pools
from models.presets import PRESETS
from models.train import fit

torch.set_num_threads(1)


def test_the_best_published_model_is_there_with_its_figure():
    best = PRESETS["seed003-lenet-bn-ws-al"]
    assert best.published_mean == pytest.approx(0.9796) and best.published_std == pytest.approx(0.0027)
    assert best.train.lr == pytest.approx(0.14) and best.train.batch_size == 100 and best.train.epochs == 25
    assert best.net.batch_norm and best.net.weight_sharing and best.net.activation == "leaky_relu"
    for name in ("mlp-baseline", "seed000-siamese-aux", "seed001-a-w-net-dropout", "seed002-cnn-ws-al", "seed004-deep-ws-al"):
        assert name in PRESETS


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_and_trains(name):
    preset = PRESETS[name]
    check_compatible(preset.net, preset.train)
    assert preset.name == name and count_parameters(preset.net) > 1000
    assert preset.published_mean is None or 0.7 < preset.published_mean < 1.0
    draw = make_draw(load_pools(None), seed=0, n_pairs=60)
    result = fit(preset.net, dataclasses.replace(preset.train, epochs=1), draw.train, eval_pairs=draw.test)
    assert result.status == "completed" and 0.0 <= result.accuracy <= 1.0
