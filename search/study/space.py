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
import logging
import types
import typing
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from models.errors import ConfigError
from models.nets.configs import NetConfig, TrainConfig, check_compatible
from search.errors import DefinitionError
from search.study.definition import ParamSpec, StudyDefinition

if TYPE_CHECKING:
    import optuna

__all__ = [
    "DERIVED",
    "DERIVED_DEFAULTS",
    "FIELDS",
    "check_space",
    "clash",
    "coerce",
    "configs_for_point",
    "configs_from_settings",
    "corners",
    "suggest_configs",
    "suggest_values",
    "type_name",
    "value_type",
]

logger = logging.getLogger(__name__)

# field name -> (config class, value type); epochs is absent on purpose: it comes from [search].
FIELDS: dict[str, tuple[type, Any]] = {
    f.name: (cls, typing.get_type_hints(cls)[f.name])
    for cls in (NetConfig, TrainConfig)
    for f in dataclasses.fields(cls)
    if f.name != "epochs"
}
# derived parameter -> the tuple field it builds
DERIVED: dict[str, str] = {
    "n_conv": "conv_channels",
    "conv_width": "conv_channels",
    "n_hidden": "hidden",
    "hidden_width": "hidden",
}
_DEFAULT_NET = NetConfig()
# derived parameter -> its value when left out: its part of NetConfig's default shape
DERIVED_DEFAULTS: dict[str, int] = {
    "n_conv": len(_DEFAULT_NET.conv_channels),
    "conv_width": _DEFAULT_NET.conv_channels[0],
    "n_hidden": len(_DEFAULT_NET.hidden),
    "hidden_width": _DEFAULT_NET.hidden[0],
}
_MAX_CORNERS = 200_000  # categorical combinations checked on load; beyond that the check is skipped


def value_type(name: str) -> Any:
    """The Python type a field or derived parameter takes: bool, int, float, str or tuple[int, ...]."""
    return int if name in DERIVED else FIELDS[name][1]


def searchable_type(name: str) -> Any:
    """The scalar type Optuna can search for a field: bool, int, float or str (for `int | tuple[int, ...]`,
    int; for `float | None`, float), or None for a tuple field, which only derived parameters can set."""
    scalars = [
        kind for kind in (_union_members(value_type(name)) or (value_type(name),)) if kind in (bool, int, float, str)
    ]
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

    Raises ConfigError with the rule and the value (the configs compare without type checks, so a
    string dropout would otherwise surface as a TypeError deep inside a trial).
    """
    kind = value_type(name)
    for member in _union_members(kind) or (kind,):
        ok, coerced = _coerced(member, value)
        if ok:
            return coerced
    raise ConfigError(f"{name} takes {type_name(kind)}, but got {value!r}")


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


def configs_for_point(definition: StudyDefinition, values: Mapping[str, Any]) -> tuple[NetConfig, TrainConfig]:
    """The configs for one point of the definition's space: [fixed], then `values` (Optuna name -> value), epochs from [search].

    Raises ConfigError when the point is invalid (definitions checks every corner of the space on load).
    """
    settings = dict(definition.fixed)
    by_name = {spec.name: spec for spec in definition.params}
    for name, value in values.items():
        settings[by_name[name].field] = value
    return configs_from_settings(settings, epochs=definition.epochs)


def configs_from_settings(settings: Mapping[str, Any], *, epochs: int) -> tuple[NetConfig, TrainConfig]:
    """Configs from plain field (or derived parameter) -> value; the rest keep their defaults. Raises ConfigError."""
    settings = dict(settings)
    if "n_conv" in settings or "conv_width" in settings:
        n = settings.pop("n_conv", DERIVED_DEFAULTS["n_conv"])
        width = settings.pop("conv_width", DERIVED_DEFAULTS["conv_width"])
        settings["conv_channels"] = tuple(width * 2**i for i in range(n))
    if "n_hidden" in settings or "hidden_width" in settings:
        n = settings.pop("n_hidden", DERIVED_DEFAULTS["n_hidden"])
        width = settings.pop("hidden_width", DERIVED_DEFAULTS["hidden_width"])
        settings["hidden"] = (width,) * n
    net = NetConfig(**{k: v for k, v in settings.items() if FIELDS[k][0] is NetConfig})
    train = TrainConfig(epochs=epochs, **{k: v for k, v in settings.items() if FIELDS[k][0] is TrainConfig})
    check_compatible(net, train)
    return net, train


def clash(a: str, b: str) -> bool:
    """Whether two settable names set the same field (n_conv and conv_width complete each other)."""
    return a == b or DERIVED.get(a) == b or DERIVED.get(b) == a


def check_space(d: StudyDefinition, src: str) -> None:
    """Every value of the space on its own, then every corner (each combination of categorical choices, the
    numbers at their low and at their high ends) builds valid configs; DefinitionError naming `src` if not.

    "On its own" means beside [fixed]: a value that needs another field (predict_digits needs family "cnn2ch")
    is valid when [fixed] sets that field, and an error names the key that is wrong on its own where there is one.
    """
    together = _config_error(d.fixed, d.epochs)
    for key, value in d.fixed.items():
        alone = _config_error({key: value}, d.epochs)
        if alone is not None and together is not None:
            raise _fail(src, f"[fixed] {key} = {value!r}: {alone}")
    if together is not None:
        raise _fail(src, f"[fixed] the values together give invalid configs: {together}")
    # each value of [params] beside [fixed], so that a bad bound is reported with its key
    for spec in d.params:
        probes = (
            [("choice", c) for c in spec.choices]
            if spec.type == "categorical"
            else [("low", spec.low), ("high", spec.high)]
        )
        for which, value in probes:
            error = _config_error({**d.fixed, spec.field: value}, d.epochs)
            if error is not None:
                raise _fail(src, f"[params.{spec.name}] {which} {value!r}: {error}")
    # then every combination of categorical choices, with the numbers at both ends
    field_of = {spec.name: spec.field for spec in d.params}
    active: set[str] = set()
    for n, corner in enumerate(corners(d)):
        if n == _MAX_CORNERS:
            logger.warning(
                "%s: more than %d categorical combinations; checked the first %d only.", src, _MAX_CORNERS, _MAX_CORNERS
            )
            break
        numeric = [s for s in d.params if s.type != "categorical" and s.is_active(corner)]
        names = [*corner, *(s.name for s in numeric)]
        active.update(names)
        fields: dict[str, str] = {}
        for name in names:
            field = field_of[name]
            for other_field, other in fields.items():
                if clash(field, other_field):
                    raise _fail(
                        src,
                        f"[params.{other}] and [params.{name}] both set {field} when {_describe_corner(corner)}; make their `when` conditions exclusive.",
                    )
            fields[field] = name
        for end in ("low", "high"):
            values = {**corner, **{s.name: getattr(s, end) for s in numeric}}
            try:
                configs_for_point(d, values)
            except ConfigError as exc:
                raise _fail(
                    src,
                    f"the space allows {_describe_corner(corner)} (numbers at their {end} ends), which gives invalid configs: {exc} "
                    "Add a `when` condition so that this combination cannot be sampled.",
                ) from None
    for spec in d.params:
        if spec.name not in active:
            condition = ", ".join(f"{k}={v[0]!r}" if len(v) == 1 else f"{k} in {list(v)!r}" for k, v in spec.when)
            raise _fail(src, f"[params.{spec.name}] is never suggested: its condition {condition} cannot hold.")


def corners(d: StudyDefinition) -> Iterator[dict[str, Any]]:
    """Every reachable assignment of the categorical parameters (per cell when there are cells)."""
    cell_names = set(d.cells[0]) if d.cells else set()
    categorical = [s for s in d.params if s.type == "categorical" and s.name not in cell_names]

    def walk(i: int, values: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if i == len(categorical):
            yield values
            return
        spec = categorical[i]
        if not spec.is_active(values):
            yield from walk(i + 1, values)
            return
        for choice in spec.choices:
            yield from walk(i + 1, {**values, spec.name: choice})

    for cell in d.cells or ({},):
        yield from walk(0, dict(cell))


def _config_error(settings: Mapping[str, Any], epochs: int) -> ConfigError | None:
    """Why `settings` give no valid configs, or None when they do."""
    try:
        configs_from_settings(settings, epochs=epochs)
    except ConfigError as exc:
        return exc
    return None


def _describe_corner(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in values.items()) or "(no categorical parameters)"


def _fail(src: str, message: str) -> DefinitionError:
    return DefinitionError(f"{src}: {message}")


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
        return configs_for_point(definition, values)
    except ConfigError as exc:  # unreachable for a loaded definition: its space was checked corner by corner
        raise DefinitionError(f"{definition.source}: the point {values} gives invalid configs: {exc}") from exc


def _suggest(trial: optuna.trial.BaseTrial, spec: ParamSpec) -> Any:
    if spec.type == "categorical":
        return trial.suggest_categorical(spec.name, list(spec.choices))
    if spec.type == "int":
        return trial.suggest_int(spec.name, spec.low, spec.high, step=spec.step, log=spec.log)
    return trial.suggest_float(spec.name, spec.low, spec.high, step=spec.step, log=spec.log)
