"""The activation registry shared by every network part."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from models.errors import ConfigError

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "identity": nn.Identity,  # no nonlinearity: a linear network, for testing whether a row's figure needed a nonlinearity
}


def make_activation(name: str, alpha: float | None = None) -> nn.Module:
    """An activation module; `alpha` is ELU's alpha or LeakyReLU's negative slope (None: torch's default)."""
    if alpha is None:
        return ACTIVATIONS[name]()
    if name == "elu":
        return nn.ELU(alpha=alpha)
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope=alpha)
    raise ConfigError(f"activation {name!r} takes no alpha, but got alpha={alpha!r}.")
