"""models/nets/configs.py: the names a config accepts are exactly the names the builders know.

The configs name their choices in plain tuples (so that models/nets/configs.py imports no torch); the
builders hold registries (dict literals) or branch on the name. These tests keep the two in step: a
name added to one side only fails here, not deep inside a trial.
"""

from __future__ import annotations

import pytest
import torch

from models.data.augment import tta_views
from models.nets.activations import ACTIVATIONS
from models.nets.configs import (
    ACTIVATION_NAMES,
    AUX_LOSS_NAMES,
    FAMILY_NAMES,
    HEAD_NAMES,
    OPTIMIZER_NAMES,
    SCHEDULE_NAMES,
    TTA_NAMES,
    TrainConfig,
)
from models.nets.families import FAMILIES
from models.nets.heads import HEADS
from models.training.losses import LossWeighting
from models.training.train import OPTIMIZERS, make_scheduler


@pytest.mark.parametrize(
    ("names", "registry"),
    [(ACTIVATION_NAMES, ACTIVATIONS), (FAMILY_NAMES, FAMILIES), (HEAD_NAMES, HEADS), (OPTIMIZER_NAMES, OPTIMIZERS)],
    ids=["activations", "families", "heads", "optimizers"],
)
def test_the_names_a_config_accepts_are_the_registry_keys(names: tuple[str, ...], registry: dict) -> None:
    assert sorted(names) == sorted(registry)


def test_every_schedule_name_has_a_schedule_of_its_own() -> None:
    """A name the scheduler does not know would fall to the default schedule: every curve must differ."""
    curves = {}
    for schedule in SCHEDULE_NAMES:
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        scheduler = make_scheduler(optimizer, TrainConfig(schedule=schedule, gamma=0.5, epochs=4))
        lrs = []
        for _ in range(4):
            lrs.append(round(optimizer.param_groups[0]["lr"], 8))
            optimizer.step()
            scheduler.step()
        curves[schedule] = tuple(lrs)
    assert len(set(curves.values())) == len(SCHEDULE_NAMES), curves


def test_every_test_time_augmentation_name_gives_its_own_views() -> None:
    x = torch.rand(3, 2, 14, 14)
    counts = {tta: len(tta_views(x, tta, fill=0.0)) for tta in TTA_NAMES}
    assert counts == {"none": 1, "shift": 5}


def test_every_auxiliary_loss_name_weights_the_losses_its_own_way() -> None:
    main, aux = torch.tensor(0.7), torch.tensor(1.3)
    combined = {
        name: round(LossWeighting(TrainConfig(aux_loss=name, alpha=0.5, ratio=2.0))(main, aux, epoch=0).item(), 6)
        for name in AUX_LOSS_NAMES
    }
    assert combined == {"none": 0.7, "alpha": 1.35, "ratio": 2.7, "normalized": 1.5}
