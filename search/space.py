"""Search space: a trial's parameter values -> (NetConfig, TrainConfig).

`suggest_configs` is the only place in the service that calls `trial.suggest_*`. Everything a
parameter may name lives here too: the NetConfig/TrainConfig fields (`FIELDS`) and the derived
parameters that stand for a tuple field (`DERIVED`), because tuples cannot be Optuna parameters:

    n_conv, conv_width   -> conv_channels = (conv_width, 2*conv_width, ...), n_conv layers
    n_hidden, hidden_width -> hidden = (hidden_width,) * n_hidden

Doubling channels per conv layer (as LeNet/VGG do) and equal hidden widths keep the space two
ordered integers per tower, which TPE models far better than a categorical over named shapes.
A derived parameter left out (or not suggested in a trial) takes its value from the default shape.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from models.configs import NetConfig, TrainConfig, check_compatible
from models.errors import ConfigError
from search.errors import DefinitionError

if TYPE_CHECKING:
    import optuna

    from search.definitions import ParamSpec, StudyDefinition

__all__ = ["DERIVED", "FIELDS", "build_configs", "coerce", "make_configs", "suggest_configs", "suggest_values", "type_name", "value_type"]

# field name -> (config class, value type); epochs is absent on purpose: it comes from [search].
FIELDS: dict[str, tuple[type, Any]] = {
    f.name: (cls, typing.get_type_hints(cls)[f.name])
    for cls in (NetConfig, TrainConfig)
    for f in dataclasses.fields(cls)
    if f.name != "epochs"
}
# derived parameter -> the tuple field it builds
DERIVED: dict[str, str] = {"n_conv": "conv_channels", "conv_width": "conv_channels", "n_hidden": "hidden", "hidden_width": "hidden"}
_DEFAULT_NET = NetConfig()


def value_type(name: str) -> Any:
    """The Python type a field or derived parameter takes: bool, int, float, str or tuple[int, ...]."""
    return int if name in DERIVED else FIELDS[name][1]


def searchable_type(name: str) -> Any:
    """The scalar type Optuna can search for a field: bool, int, float or str (for `int | tuple[int, ...]`,
    int; for `float | None`, float), or None for a tuple field, which only derived parameters can set."""
    scalars = [kind for kind in (_union_members(value_type(name)) or (value_type(name),)) if kind in (bool, int, float, str)]
    return scalars[0] if scalars else None


def type_name(kind: Any) -> str:
    """'a bool', 'an integer', 'a number', 'a string', 'a list of integers' or 'an integer or a list of integers'."""
    members = _union_members(kind)
    if members:
        return " or ".join(type_name(member) for member in members)
    return {bool: "a bool", int: "an integer", float: "a number", str: "a string"}.get(kind, "a list of integers")


def _union_members(kind: Any) -> tuple[Any, ...]:
    """The non-None members of a union type (`int | tuple[int, ...]`, `float | None`); () for a plain type."""
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        return tuple(member for member in typing.get_args(kind) if member is not type(None))
    return ()


def coerce(name: str, value: Any) -> Any:
    """Check `value` against the type of field/derived parameter `name`; lists become tuples, ints floats.

    Raises ValueError with the rule and the value (the configs compare without type checks, so a
    string dropout would otherwise surface as a TypeError deep inside a trial).
    """
    kind = value_type(name)
    for member in _union_members(kind) or (kind,):
        ok, coerced = _coerced(member, value)
        if ok:
            return coerced
    raise ValueError(f"{name} takes {type_name(kind)}, but got {value!r}")


def _coerced(kind: Any, value: Any) -> tuple[bool, Any]:
    if kind is bool:
        return isinstance(value, bool), value
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if kind is str:
        return isinstance(value, str), value
    # tuple[int, ...]
    ok = isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    return ok, tuple(value) if ok else value


def build_configs(definition: StudyDefinition, values: Mapping[str, Any]) -> tuple[NetConfig, TrainConfig]:
    """The configs for one point: [fixed], then `values` (Optuna name -> value), epochs from [search].

    Raises ConfigError when the point is invalid (definitions checks every corner of the space on load).
    """
    settings = dict(definition.fixed)
    by_name = {spec.name: spec for spec in definition.params}
    for name, value in values.items():
        settings[by_name[name].field] = value
    return make_configs(settings, epochs=definition.epochs)


def make_configs(settings: Mapping[str, Any], *, epochs: int) -> tuple[NetConfig, TrainConfig]:
    """Configs from field (or derived parameter) -> value; the rest keep their defaults. Raises ConfigError."""
    settings = dict(settings)
    if "n_conv" in settings or "conv_width" in settings:
        n = settings.pop("n_conv", len(_DEFAULT_NET.conv_channels))
        width = settings.pop("conv_width", _DEFAULT_NET.conv_channels[0])
        settings["conv_channels"] = tuple(width * 2**i for i in range(n))
    if "n_hidden" in settings or "hidden_width" in settings:
        n = settings.pop("n_hidden", len(_DEFAULT_NET.hidden))
        width = settings.pop("hidden_width", _DEFAULT_NET.hidden[0])
        settings["hidden"] = (width,) * n
    net = NetConfig(**{k: v for k, v in settings.items() if FIELDS[k][0] is NetConfig})
    train = TrainConfig(epochs=epochs, **{k: v for k, v in settings.items() if FIELDS[k][0] is TrainConfig})
    check_compatible(net, train)
    return net, train


def suggest_values(trial: optuna.trial.BaseTrial, definition: StudyDefinition) -> dict[str, Any]:
    """Suggest every parameter whose `when` holds, in file order; returns Optuna name -> value."""
    values: dict[str, Any] = {}
    for spec in definition.params:
        if spec.is_active(values):
            values[spec.name] = _suggest(trial, spec)
    return values


def suggest_configs(trial: optuna.trial.BaseTrial, definition: StudyDefinition) -> tuple[NetConfig, TrainConfig]:
    """Suggest one point of the definition's space and return its configs (epochs = definition.epochs)."""
    values = suggest_values(trial, definition)
    try:
        return build_configs(definition, values)
    except ConfigError as exc:  # unreachable for a loaded definition: its space was checked corner by corner
        raise DefinitionError(f"{definition.source}: the point {values} gives invalid configs: {exc}") from exc


def _suggest(trial: optuna.trial.BaseTrial, spec: ParamSpec) -> Any:
    if spec.type == "categorical":
        return trial.suggest_categorical(spec.name, list(spec.choices))
    if spec.type == "int":
        return trial.suggest_int(spec.name, spec.low, spec.high, step=spec.step, log=spec.log)
    return trial.suggest_float(spec.name, spec.low, spec.high, step=spec.step, log=spec.log)
