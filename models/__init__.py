"""The learning core: digit-pair data draws, the network families, and training (plain PyTorch)."""

from models.data.draws import Draw, Normalisation, PairSet, PixelNormalisation, make_draw
from models.data.pools import DigitPools, Digits, load_pools
from models.errors import ConfigError, DataError, DigitPairError, ModelsError
from models.nets.configs import NetConfig, TrainConfig, check_compatible
from models.nets.families import FAMILIES, build_net, count_parameters
from models.training.fast import fit_many
from models.training.speed import SpeedChoice, choose_speed, measured_speed
from models.training.train import EpochStats, TrainResult, fit

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
