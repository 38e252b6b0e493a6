"""The tables of a definition file, each parsed into plain specs: [fixed], [[cells]], [params.NAME],
[[enqueue]], [sampler] and [pruner] (search.study.loader reads the file and checks the whole).

Every error is one line naming the file (`src`), the key, what was received and what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from models.errors import ConfigError
from search.errors import DefinitionError
from search.study import space
from search.study.definition import ParamSpec

__all__ = [
    "PARAM_KEYS",
    "PARAM_TYPES",
    "cell_specs",
    "check_keys",
    "fail",
    "integer",
    "parse_cells",
    "parse_choice",
    "parse_enqueue",
    "parse_fixed",
    "parse_param",
    "as_table",
    "search_types",
]

PARAM_TYPES = ("float", "int", "categorical")
PARAM_KEYS = {  # type -> the keys a [params.NAME] table of that type holds beside type, field and when
    "float": ("low", "high", "log", "step"),
    "int": ("low", "high", "log", "step"),
    "categorical": ("choices",),
}
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def fail(src: str, message: str) -> DefinitionError:
    return DefinitionError(f"{src}: {message}")


def as_table(src: str, key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(src, f"[{key}] must be a table, but got {value!r}.")
    return value


def check_keys(src: str, where: str, table: Mapping[str, Any], allowed: tuple[str, ...] | list[str]) -> None:
    for key in table:
        if key not in allowed:
            raise fail(src, f"{where} unknown key {key!r}; allowed: {', '.join(allowed) or 'none'}.")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def integer(src: str, key: str, value: Any, *, minimum: int, maximum: int | None = None) -> int:
    if not _is_int(value) or value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise fail(src, f"[search] {key} must be an integer {bound}, but got {value!r}.")
    return value


def parse_enqueue(
    src: str, points: Any, specs: list[ParamSpec], cells: list[dict[str, Any]]
) -> tuple[dict[str, Any], ...]:
    """[[enqueue]]: known-good starting points (e.g. a published recipe), each a table of searched params."""
    if points == []:
        return ()
    if not isinstance(points, list) or not all(isinstance(p, dict) and p for p in points):
        raise fail(src, f"[[enqueue]] must be tables of parameter values, but got {points!r}.")
    if cells:
        raise fail(src, "[[enqueue]] cannot be combined with [[cells]]: the cells decide each trial's cell parameters.")
    by_name = {spec.name: spec for spec in specs}
    parsed = []
    for number, point in enumerate(points, start=1):
        where = f"[[enqueue]] point {number}:"
        values: dict[str, Any] = {}
        for name, value in point.items():
            spec = by_name.get(name)
            if spec is None:
                raise fail(src, f"{where} {name!r} is not a searched parameter; searched: {', '.join(by_name)}.")
            if spec.type == "categorical":
                if value not in spec.choices or (
                    isinstance(value, bool) != any(isinstance(c, bool) for c in spec.choices)
                ):
                    raise fail(src, f"{where} {name}={value!r} is not one of its choices {list(spec.choices)}.")
            elif (
                not _is_number(value)
                or (spec.type == "int" and not _is_int(value))
                or not spec.low <= value <= spec.high
            ):
                raise fail(src, f"{where} {name}={value!r} must be a {spec.type} in [{spec.low}, {spec.high}].")
            values[name] = value
        inactive = [n for n in values if not by_name[n].is_active(values)]
        if inactive:
            raise fail(
                src,
                f"{where} {', '.join(inactive)} would not be suggested with the other values given (see their `when`).",
            )
        parsed.append(values)
    return tuple(parsed)


def _settable(src: str, where: str, key: str) -> None:
    """`key` may be set by [fixed], [[cells]] or a param's field."""
    if key == "epochs":
        raise fail(src, f"{where} epochs is set in [search] (epochs = ...), not here.")
    if key not in space.FIELDS and key not in space.DERIVED:
        allowed = ", ".join([*space.FIELDS, *space.DERIVED])
        raise fail(
            src,
            f"{where} unknown parameter {key!r}: not a NetConfig/TrainConfig field nor a derived parameter; allowed: {allowed}.",
        )


def _coerce(src: str, where: str, key: str, value: Any) -> Any:
    try:
        return space.coerce(key, value)
    except ConfigError as exc:
        raise fail(src, f"{where} {exc}.") from None


def parse_fixed(src: str, table: dict[str, Any]) -> dict[str, Any]:
    fixed: dict[str, Any] = {}
    for key, value in table.items():
        _settable(src, "[fixed]", key)
        value = _coerce(src, f"[fixed] {key}:", key, value)
        for other in fixed:
            if space.clash(key, other):
                raise fail(src, f"[fixed] {key} and {other} both set {space.DERIVED.get(key, key)}; keep one.")
        fixed[key] = value
    return fixed


def parse_cells(src: str, cells: Any, fixed: dict[str, Any]) -> list[dict[str, Any]]:
    if cells == []:
        return []
    if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells) or len(cells) < 2:
        raise fail(src, f"[[cells]] must be at least two tables of parameter values, but got {cells!r}.")
    keys = list(cells[0])
    if not keys:
        raise fail(src, "[[cells]] a cell must set at least one parameter.")
    parsed: list[dict[str, Any]] = []
    for number, cell in enumerate(cells, start=1):
        if set(cell) != set(keys):
            raise fail(
                src,
                f"[[cells]] cell {number} sets {sorted(cell)}, but cell 1 sets {sorted(keys)}; every cell sets the same keys.",
            )
        values = {}
        for key in keys:
            _settable(src, f"[[cells]] cell {number}:", key)
            if space.searchable_type(key) is None:
                raise fail(src, f"[[cells]] {key} is a tuple field; use its derived parameters ({_derived_of(key)}).")
            values[key] = _coerce(src, f"[[cells]] cell {number} {key}:", key, cell[key])
        if values in parsed:
            raise fail(src, f"[[cells]] cell {number} repeats cell {parsed.index(values) + 1}: {values}.")
        parsed.append(values)
    for key in keys:
        for other in fixed:
            if space.clash(key, other):
                raise fail(
                    src, f"[[cells]] set {key}, which [fixed] {other} also sets; a cell parameter cannot be fixed."
                )
    return parsed


def cell_specs(cells: list[dict[str, Any]]) -> list[ParamSpec]:
    if not cells:
        return []
    return [
        ParamSpec(name=key, field=key, type="categorical", choices=tuple(dict.fromkeys(c[key] for c in cells)))
        for key in cells[0]
    ]


def search_types(field: str) -> tuple[str, ...]:
    """The [params.NAME] types that can search a field or derived parameter: () for a tuple field."""
    value_type = space.searchable_type(field)
    if value_type is None:
        return ()
    return {
        bool: ("categorical",),
        str: ("categorical",),
        int: ("int", "categorical"),
        float: ("float", "categorical"),
    }[value_type]


def _derived_of(field: str) -> str:
    return ", ".join(name for name, target in space.DERIVED.items() if target == field)


def parse_param(
    src: str, name: str, table: dict[str, Any], earlier: list[ParamSpec], fixed: dict[str, Any], cell_keys: list[str]
) -> ParamSpec:
    where = f"[params.{name}]"
    if not _PARAM_NAME.match(name):
        raise fail(src, f"{where} a parameter name must be a Python identifier.")
    if any(spec.name == name for spec in earlier):
        raise fail(src, f"{where} {name} is already a [[cells]] parameter; the cells set it.")
    kind = table.get("type")
    if kind not in PARAM_TYPES:
        raise fail(src, f"{where} type must be one of {', '.join(PARAM_TYPES)}, but got {kind!r}.")
    check_keys(src, where, table, ("type", "field", "when", *PARAM_KEYS[kind]))
    field = table.get("field", name)
    if not isinstance(field, str):
        raise fail(src, f"{where} field must be a string, but got {field!r}.")
    if "field" in table:
        _settable(src, f"{where} field:", field)
    elif name not in space.FIELDS and name not in space.DERIVED and name != "epochs":
        allowed = ", ".join([*space.FIELDS, *space.DERIVED])
        raise fail(
            src,
            f"{where} unknown parameter {name!r}: not a NetConfig/TrainConfig field nor a derived parameter "
            f'(allowed: {allowed}); to search a field under another name, add field = "...".',
        )
    else:
        _settable(src, where, field)
    for other in fixed:
        if space.clash(field, other):
            raise fail(
                src,
                f"{where} sets {space.DERIVED.get(field, field)}, which [fixed] {other} also sets; search it or fix it, not both.",
            )
    for key in cell_keys:
        if space.clash(field, key):
            raise fail(src, f"{where} sets {field}, which the [[cells]] set; a cell parameter cannot also be searched.")
    value_type = space.searchable_type(field)
    if value_type is None:
        raise fail(
            src,
            f"{where} {field} is a tuple field and cannot be searched directly; search {_derived_of(field)} instead, or fix it in [fixed].",
        )
    allowed_kinds = search_types(field)
    if kind not in allowed_kinds:
        raise fail(
            src,
            f"{where} {field} takes {space.type_name(value_type)}, so type must be {' or '.join(allowed_kinds)}, not {kind!r}.",
        )
    when = _parse_when(src, where, table.get("when", {}), earlier)
    if kind == "categorical":
        choices = table.get("choices")
        if not isinstance(choices, list) or not choices:
            raise fail(src, f"{where} choices must be a non-empty list, but got {choices!r}.")
        coerced = tuple(_coerce(src, f"{where} choices:", field, c) for c in choices)
        if len(set(coerced)) != len(coerced):
            raise fail(src, f"{where} choices repeat a value: {choices!r}.")
        return ParamSpec(name=name, field=field, type=kind, choices=coerced, when=when)
    return _parse_range(src, where, name, field, kind, table, when)


def _parse_range(
    src: str, where: str, name: str, field: str, kind: str, table: dict[str, Any], when: tuple
) -> ParamSpec:
    check = _is_int if kind == "int" else _is_number
    wanted = "an integer" if kind == "int" else "a number"
    for key in ("low", "high"):
        if key not in table:
            raise fail(src, f"{where} {key} is required for type {kind!r}.")
        if not check(table[key]):
            raise fail(src, f"{where} {key} must be {wanted}, but got {table[key]!r}.")
    low, high = table["low"], table["high"]
    if kind == "float":
        low, high = float(low), float(high)
    if low >= high:
        raise fail(src, f"{where} low={low} must be below high={high}.")
    log = table.get("log", False)
    if not isinstance(log, bool):
        raise fail(src, f"{where} log must be true or false, but got {log!r}.")
    if log and low <= 0:
        raise fail(src, f"{where} log = true needs low > 0, but got low={low}.")
    step = table.get("step", 1 if kind == "int" else None)
    if step is not None:
        if not check(step) or step <= 0:
            raise fail(src, f"{where} step must be {wanted} > 0, but got {step!r}.")
        if log and not (kind == "int" and step == 1):
            raise fail(src, f"{where} step and log = true cannot be combined; drop one.")
        n_steps = (high - low) / step
        if abs(n_steps - round(n_steps)) > 1e-9:
            raise fail(src, f"{where} high - low = {high - low} must be a whole number of steps of {step}.")
        step = float(step) if kind == "float" else step
    return ParamSpec(name=name, field=field, type=kind, low=low, high=high, log=log, step=step, when=when)


def _parse_when(src: str, where: str, when: Any, earlier: list[ParamSpec]) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    if not isinstance(when, dict):
        raise fail(src, f'{where} when must be a table like {{family = "siamese"}}, but got {when!r}.')
    categorical = {spec.name: spec for spec in earlier if spec.type == "categorical"}
    parsed = []
    for ref, wanted in when.items():
        if ref not in categorical:
            known = ", ".join(categorical) or "none"
            raise fail(
                src,
                f"{where} when refers to {ref!r}, which is not a categorical parameter defined above (defined: {known}).",
            )
        values = wanted if isinstance(wanted, list) else [wanted]
        choices = categorical[ref].choices
        if not values:
            raise fail(src, f"{where} when {ref} = [] can never hold; give at least one value.")
        coerced = []
        for value in values:
            try:
                value = space.coerce(categorical[ref].field, value)
            except ConfigError:
                pass  # reported just below, with the values that would do
            if not any(type(value) is type(c) and value == c for c in choices):
                raise fail(
                    src, f"{where} when {ref} = {value!r}, but {ref} takes only {', '.join(map(repr, choices))}."
                )
            coerced.append(value)
        parsed.append((ref, tuple(coerced)))
    return tuple(parsed)


def parse_choice(
    src: str, key: str, table: Any, registry: dict[str, dict[str, tuple[type, ...]]], default: str
) -> tuple[str, dict[str, Any]]:
    table = dict(as_table(src, key, table))
    kind = table.pop("type", default)
    if kind not in registry:
        raise fail(src, f"[{key}] unknown type {kind!r}; choose one of {', '.join(registry)}.")
    allowed = registry[kind]
    for option, value in table.items():
        if option not in allowed:
            hint = " (the seed is set in [search])" if option == "seed" else ""
            raise fail(
                src,
                f"[{key}] unknown option {option!r} for type {kind!r}; allowed: {', '.join(allowed) or 'none'}{hint}.",
            )
        types = allowed[option]
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        ok = ok and (not isinstance(value, str) or value == "auto")
        if not ok:
            names = " or ".join('"auto"' if t is str else t.__name__ for t in types)
            raise fail(src, f"[{key}] {option} must be {names}, but got {value!r}.")
    return kind, table
