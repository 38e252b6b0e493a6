"""A trained model kept, saved and loaded scores new pairs exactly as its evaluation scored its test pairs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from models.data.draws import make_draw
from models.data.pools import load_pools
from models.errors import DataError
from models.nets.configs import NetConfig, TrainConfig
from models.training.fast import fit_many
from models.training.train import Speed
from models.training.trained import TrainedModel

torch.set_num_threads(1)
NET = NetConfig(head="prob", batch_norm=True, activation="leaky_relu", conv_channels=(8, 16), fc_width=32)
TRAIN = TrainConfig(lr=0.1, epochs=2, aux_loss="alpha", batch_size=50, shift=1, schedule="cosine", tta="shift")


@pytest.fixture(scope="module")
def draw():
    return make_draw(load_pools(None), seed=3, n_pairs=200)


def _accuracy(model: TrainedModel, pairs) -> tuple[float, float]:
    answer = model.predict(pairs.input)
    n = len(pairs.target)
    pair = int((answer.first_le_second.long() == pairs.target).sum()) / n
    digits = int((answer.digits == pairs.classes).sum()) / (2 * n)
    return pair, digits


@pytest.mark.parametrize("strategy", ["lockstep", "stacked"])
@pytest.mark.parametrize("normalisation", ["scalar", "pixel"])
def test_a_saved_model_predicts_its_test_pairs_as_evaluation_scored_them(draw, tmp_path: Path, strategy, normalisation):
    plain = {"shift": 0, "tta": "none"} if normalisation == "pixel" else {}  # pixel: no augmentation
    train = dataclasses.replace(TRAIN, normalisation=normalisation, **plain)
    (result,) = fit_many(
        NET, train, [(draw.train, draw.test)], seeds=[7], keep_models=True, strategy=strategy, speed=Speed()
    )
    assert isinstance(result.model, TrainedModel)

    loaded = TrainedModel.load(result.model.save(tmp_path / "model.pt"))

    assert loaded.net == NET and loaded.train == train
    pair, digits = _accuracy(loaded, draw.test)
    assert pair == pytest.approx(result.accuracy, abs=1e-9)
    assert digits == pytest.approx(result.digit_accuracy, abs=1e-9)
    assert 0.0 <= loaded.predict(draw.test.input[:5]).probability.min() <= 1.0


def test_without_keep_models_nothing_is_kept(draw):
    (result,) = fit_many(NET, TRAIN, [(draw.train, draw.test)], seeds=[7])
    assert result.model is None


def test_loading_refuses_what_is_not_a_model(tmp_path: Path):
    with pytest.raises(DataError, match="no such model file"):
        TrainedModel.load(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="not a model file"):
        TrainedModel.load(tmp_path / "junk.pt")
    torch.save({"format": "other/9"}, tmp_path / "other.pt")
    with pytest.raises(DataError, match="not a model file of format"):
        TrainedModel.load(tmp_path / "other.pt")


def test_predict_refuses_images_of_another_shape(draw, tmp_path: Path):
    (result,) = fit_many(NET, TRAIN, [(draw.train, draw.test)], seeds=[7], keep_models=True)
    with pytest.raises(DataError, match=r"shape \(N, 2, 14, 14\)"):
        result.model.predict(torch.zeros(3, 2, 28, 28))
