"""The learning core: digit-pair data draws, the network families, and training (plain PyTorch)."""

from models.configs import NetConfig, TrainConfig, check_compatible
from models.draws import Draw, Normalisation, PairSet, PixelNormalisation, make_draw
from models.errors import ConfigError, DataError, ModelsError
from models.fast import fit_many
from models.nets import FAMILIES, build_net, count_parameters
from models.pools import DigitPools, Digits, load_pools
from models.presets import PRESETS, Preset
from models.speed import SpeedChoice, choose_speed, measured_speed
from models.train import EpochStats, TrainResult, fit

__all__ = [
    "ConfigError",
    "DataError",
    "DigitPools",
    "Digits",
    "Draw",
    "EpochStats",
    "FAMILIES",
    "ModelsError",
    "NetConfig",
    "Normalisation",
    "PRESETS",
    "PairSet",
    "PixelNormalisation",
    "Preset",
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
