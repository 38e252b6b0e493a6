"""The learning core: digit-pair data draws, the network families, and training (plain PyTorch)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Each public name and the module that defines it, imported on first use (PEP 562): `import models.errors`
# or `models.data.sizes` costs no torch import, so the `search` command starts without one.
_EXPORTS = {
    "ConfigError": "models.errors",
    "DataError": "models.errors",
    "DigitPairError": "models.errors",
    "DigitPools": "models.data.pools",
    "Digits": "models.data.pools",
    "Draw": "models.data.draws",
    "EpochStats": "models.training.train",
    "FAMILIES": "models.nets.families",
    "ModelsError": "models.errors",
    "NetConfig": "models.nets.configs",
    "Normalisation": "models.data.draws",
    "PairSet": "models.data.draws",
    "PixelNormalisation": "models.data.draws",
    "SpeedChoice": "models.training.speed",
    "TrainConfig": "models.nets.configs",
    "TrainResult": "models.training.train",
    "build_net": "models.nets.families",
    "check_compatible": "models.nets.configs",
    "choose_speed": "models.training.speed",
    "count_parameters": "models.nets.families",
    "fit": "models.training.train",
    "fit_many": "models.training.fast",
    "load_pools": "models.data.pools",
    "make_draw": "models.data.draws",
    "measured_speed": "models.training.speed",
}

__all__ = [
    "ConfigError",
    "DataError",
    "DigitPairError",
    "DigitPools",
    "Digits",
    "Draw",
    "EpochStats",
    "FAMILIES",
    "ModelsError",
    "NetConfig",
    "Normalisation",
    "PairSet",
    "PixelNormalisation",
    "SpeedChoice",
    "TrainConfig",
    "TrainResult",
    "build_net",
    "check_compatible",
    "choose_speed",
    "count_parameters",
    "fit",
    "fit_many",
    "load_pools",
    "make_draw",
    "measured_speed",
]


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'models' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)


if TYPE_CHECKING:
    from models.data.draws import Draw, Normalisation, PairSet, PixelNormalisation, make_draw
    from models.data.pools import DigitPools, Digits, load_pools
    from models.errors import ConfigError, DataError, DigitPairError, ModelsError
    from models.nets.configs import NetConfig, TrainConfig, check_compatible
    from models.nets.families import FAMILIES, build_net, count_parameters
    from models.training.fast import fit_many
    from models.training.speed import SpeedChoice, choose_speed, measured_speed
    from models.training.train import EpochStats, TrainResult, fit
