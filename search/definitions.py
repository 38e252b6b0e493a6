"""Study definitions: studies/*.toml -> a validated, frozen StudyDefinition.

One file per named study; every key is optional unless marked:

    name = "siamese"                  # default: the file's stem
    description = "..."

    [search]
    n_folds = 5                       # required: K of the K-fold cross-validation, 2 to 20
    epochs = 20                       # required: training epochs of every fold
    n_pairs = 1000                    # training pairs, drawn once per study with data_seed
    data_seed = 0
    seed = 0                          # sampler seed (and the objective's training seeds)
    directions = ["maximize"]         # or ["maximize", "minimize"]: accuracy, then parameter count
    evaluate_epochs = 40              # `search evaluate-best` retrains for this long (default: the trial's epochs)

    [sampler]                         # default type "tpe"
    type = "tpe"                      # tpe | random | cmaes | grid | nsga2, plus its options (sampling.SAMPLER_OPTIONS)
    [pruner]                          # default "median" ("none" with two directions)
    type = "median"                   # median | successive_halving | hyperband | none, plus options

    [fixed]                           # NetConfig/TrainConfig fields (or derived params) held constant
    family = "siamese"

    [params.lr_sgd]                   # one table per searched parameter; its name is the Optuna name
    field = "lr"                      # the field it sets (default: its name); see space.DERIVED
    type = "float"                    # float | int | categorical
    low = 0.01                        # float/int: low, high, log = true (low > 0), step (not with log)
    high = 0.5                        # categorical: choices = [...]
    log = true
    when = {optimizer = "sgd"}        # only when categorical params above took these values (a list: any of them)

    [[cells]]                         # ablation: fixed combinations, each tuned with the same budget
    weight_sharing = true             # (see sampling.CellSampler); their keys become categorical params
    aux_loss = "none"

    [[enqueue]]                       # starting points: trials run first with these param values (the rest
    conv_width = 32                   # sampled); not with [[cells]], which decide each trial's cell values

Every error is one line naming the file, the key, what was received and what is allowed. On load
the space is checked corner by corner (`space.check_space`) so that a trial can never be handed
configs the models reject. The definition's data lives in `search.specs`; this module reads files.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from search import sampling, space
from search.errors import DefinitionError
from search.specs import ParamSpec, StudyDefinition, display_path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["STUDIES_DIR", "ParamSpec", "StudyDefinition", "available_definitions", "load_definition", "with_overrides"]

logger = logging.getLogger(__name__)

STUDIES_DIR = Path(__file__).resolve().parents[1] / "studies"
DIRECTIONS = (("maximize",), ("maximize", "minimize"))
PARAM_TYPES = ("float", "int", "categorical")
_TOP_KEYS = ("name", "description", "search", "sampler", "pruner", "fixed", "params", "cells", "enqueue")
_SEARCH_KEYS = ("n_folds", "epochs", "n_pairs", "data_seed", "seed", "directions", "evaluate_epochs")
_PARAM_KEYS = {"float": ("low", "high", "log", "step"), "int": ("low", "high", "log", "step"), "categorical": ("choices",)}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def available_definitions() -> list[str]:
    """The names of the studies shipped in STUDIES_DIR."""
    return sorted(path.stem for path in STUDIES_DIR.glob("*.toml"))


def load_definition(name_or_path: str | Path) -> StudyDefinition:
    """Load and validate a study: a name looks in STUDIES_DIR; a path (has a '/' or ends in .toml) is read as given."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or os.sep in text or text.endswith(".toml"):
        path = Path(text).expanduser()
        if not path.is_file():
            raise DefinitionError(f"{text}: no such study file.")
    else:
        path = STUDIES_DIR / f"{text}.toml"
        if not path.is_file():
            known = ", ".join(available_definitions()) or "none"
            raise DefinitionError(f"unknown study {text!r}; known studies: {known} (or give the path of a .toml file).")
    src = display_path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError(f"{src}: TOML syntax error: {exc}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError(f"{src}: cannot read the file: {exc}.") from None
    definition = _parse(data, path.resolve(), src)
    _check(definition, src)
    return definition


def with_overrides(definition: StudyDefinition, *, epochs: int | None = None, n_folds: int | None = None) -> StudyDefinition:
    """A copy at another fidelity (e.g. `--epochs 2` for a quick look), validated again; new fingerprint."""
    if epochs is None and n_folds is None:
        return definition
    changed = dataclasses.replace(
        definition,
        epochs=definition.epochs if epochs is None else epochs,
        n_folds=definition.n_folds if n_folds is None else n_folds,
    )
    _check(changed, f"{definition.source} (with epochs={changed.epochs}, n_folds={changed.n_folds})")
    return changed


def _fail(src: str, message: str) -> DefinitionError:
    return DefinitionError(f"{src}: {message}")


def _table(src: str, key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(src, f"[{key}] must be a table, but got {value!r}.")
    return value


def _keys(src: str, where: str, table: Mapping[str, Any], allowed: tuple[str, ...] | list[str]) -> None:
    for key in table:
        if key not in allowed:
            raise _fail(src, f"{where} unknown key {key!r}; allowed: {', '.join(allowed) or 'none'}.")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _int(src: str, key: str, value: Any, *, minimum: int, maximum: int | None = None) -> int:
    if not _is_int(value) or value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise _fail(src, f"[search] {key} must be an integer {bound}, but got {value!r}.")
    return value


def _parse(data: dict[str, Any], path: Path, src: str) -> StudyDefinition:
    _keys(src, "top level:", data, _TOP_KEYS)
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(src, f"name must be letters, digits, '_', '-' or '.', but got {name!r}.")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise _fail(src, f"description must be a string, but got {description!r}.")

    search = _table(src, "search", data.get("search", {}))
    _keys(src, "[search]", search, _SEARCH_KEYS)
    for key in ("n_folds", "epochs"):
        if key not in search:
            raise _fail(src, f"[search] {key} is required.")
    directions = search.get("directions", ["maximize"])
    if not isinstance(directions, list) or tuple(directions) not in DIRECTIONS:
        raise _fail(
            src, f'[search] directions must be ["maximize"] or ["maximize", "minimize"] (accuracy, parameter count), but got {directions!r}.'
        )

    fixed = _parse_fixed(src, _table(src, "fixed", data.get("fixed", {})))
    cells = _parse_cells(src, data.get("cells", []), fixed)
    specs = _cell_specs(cells)
    params = _table(src, "params", data.get("params", {}))
    for pname, table in params.items():
        specs.append(_parse_param(src, pname, _table(src, f"params.{pname}", table), specs, fixed, list(cells[0]) if cells else []))

    sampler, sampler_options = _parse_choice(src, "sampler", data.get("sampler", {}), sampling.SAMPLER_OPTIONS, "tpe")
    default_pruner = "median" if len(directions) == 1 else "none"
    pruner, pruner_options = _parse_choice(src, "pruner", data.get("pruner", {}), sampling.PRUNER_OPTIONS, default_pruner)
    return StudyDefinition(
        name=name,
        path=path,
        description=description.strip(),
        n_folds=search["n_folds"],
        epochs=search["epochs"],
        n_pairs=search.get("n_pairs", 1000),
        data_seed=_int(src, "data_seed", search.get("data_seed", 0), minimum=0),
        seed=_int(src, "seed", search.get("seed", 0), minimum=0),
        directions=tuple(directions),
        sampler=sampler,
        sampler_options=sampler_options,
        pruner=pruner,
        pruner_options=pruner_options,
        params=tuple(specs),
        fixed=fixed,
        cells=tuple(cells),
        enqueue=_parse_enqueue(src, data.get("enqueue", []), specs, cells),
        evaluate_epochs=_int(src, "evaluate_epochs", search["evaluate_epochs"], minimum=1) if "evaluate_epochs" in search else None,
    )


def _parse_enqueue(src: str, points: Any, specs: list[ParamSpec], cells: list[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    """[[enqueue]]: known-good starting points (e.g. a published recipe), each a table of searched params."""
    if points == []:
        return ()
    if not isinstance(points, list) or not all(isinstance(p, dict) and p for p in points):
        raise _fail(src, f"[[enqueue]] must be tables of parameter values, but got {points!r}.")
    if cells:
        raise _fail(src, "[[enqueue]] cannot be combined with [[cells]]: the cells decide each trial's cell parameters.")
    by_name = {spec.name: spec for spec in specs}
    parsed = []
    for number, point in enumerate(points, start=1):
        where = f"[[enqueue]] point {number}:"
        values: dict[str, Any] = {}
        for name, value in point.items():
            spec = by_name.get(name)
            if spec is None:
                raise _fail(src, f"{where} {name!r} is not a searched parameter; searched: {', '.join(by_name)}.")
            if spec.type == "categorical":
                if value not in spec.choices or (isinstance(value, bool) != any(isinstance(c, bool) for c in spec.choices)):
                    raise _fail(src, f"{where} {name}={value!r} is not one of its choices {list(spec.choices)}.")
            elif not _is_number(value) or (spec.type == "int" and not _is_int(value)) or not spec.low <= value <= spec.high:
                raise _fail(src, f"{where} {name}={value!r} must be a {spec.type} in [{spec.low}, {spec.high}].")
            values[name] = value
        inactive = [n for n in values if not by_name[n].is_active(values)]
        if inactive:
            raise _fail(src, f"{where} {', '.join(inactive)} would not be suggested with the other values given (see their `when`).")
        parsed.append(values)
    return tuple(parsed)


def _settable(src: str, where: str, key: str) -> None:
    """`key` may be set by [fixed], [[cells]] or a param's field."""
    if key == "epochs":
        raise _fail(src, f"{where} epochs is set in [search] (epochs = ...), not here.")
    if key not in space.FIELDS and key not in space.DERIVED:
        allowed = ", ".join([*space.FIELDS, *space.DERIVED])
        raise _fail(src, f"{where} unknown parameter {key!r}: not a NetConfig/TrainConfig field nor a derived parameter; allowed: {allowed}.")


def _coerce(src: str, where: str, key: str, value: Any) -> Any:
    try:
        return space.coerce(key, value)
    except ValueError as exc:
        raise _fail(src, f"{where} {exc}.") from None


def _parse_fixed(src: str, table: dict[str, Any]) -> dict[str, Any]:
    fixed: dict[str, Any] = {}
    for key, value in table.items():
        _settable(src, "[fixed]", key)
        value = _coerce(src, f"[fixed] {key}:", key, value)
        for other in fixed:
            if space.clash(key, other):
                raise _fail(src, f"[fixed] {key} and {other} both set {space.DERIVED.get(key, key)}; keep one.")
        fixed[key] = value
    return fixed


def _parse_cells(src: str, cells: Any, fixed: dict[str, Any]) -> list[dict[str, Any]]:
    if cells == []:
        return []
    if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells) or len(cells) < 2:
        raise _fail(src, f"[[cells]] must be at least two tables of parameter values, but got {cells!r}.")
    keys = list(cells[0])
    if not keys:
        raise _fail(src, "[[cells]] a cell must set at least one parameter.")
    parsed: list[dict[str, Any]] = []
    for number, cell in enumerate(cells, start=1):
        if set(cell) != set(keys):
            raise _fail(src, f"[[cells]] cell {number} sets {sorted(cell)}, but cell 1 sets {sorted(keys)}; every cell sets the same keys.")
        values = {}
        for key in keys:
            _settable(src, f"[[cells]] cell {number}:", key)
            if space.searchable_type(key) is None:
                raise _fail(src, f"[[cells]] {key} is a tuple field; use its derived parameters ({_derived_of(key)}).")
            values[key] = _coerce(src, f"[[cells]] cell {number} {key}:", key, cell[key])
        if values in parsed:
            raise _fail(src, f"[[cells]] cell {number} repeats cell {parsed.index(values) + 1}: {values}.")
        parsed.append(values)
    for key in keys:
        for other in fixed:
            if space.clash(key, other):
                raise _fail(src, f"[[cells]] set {key}, which [fixed] {other} also sets; a cell parameter cannot be fixed.")
    return parsed


def _cell_specs(cells: list[dict[str, Any]]) -> list[ParamSpec]:
    if not cells:
        return []
    return [ParamSpec(name=key, field=key, type="categorical", choices=tuple(dict.fromkeys(c[key] for c in cells))) for key in cells[0]]


def _derived_of(field: str) -> str:
    return ", ".join(name for name, target in space.DERIVED.items() if target == field)


def _parse_param(
    src: str, name: str, table: dict[str, Any], earlier: list[ParamSpec], fixed: dict[str, Any], cell_keys: list[str]
) -> ParamSpec:
    where = f"[params.{name}]"
    if not _PARAM_NAME.match(name):
        raise _fail(src, f"{where} a parameter name must be a Python identifier.")
    if any(spec.name == name for spec in earlier):
        raise _fail(src, f"{where} {name} is already a [[cells]] parameter; the cells set it.")
    kind = table.get("type")
    if kind not in PARAM_TYPES:
        raise _fail(src, f"{where} type must be one of {', '.join(PARAM_TYPES)}, but got {kind!r}.")
    _keys(src, where, table, ("type", "field", "when", *_PARAM_KEYS[kind]))
    field = table.get("field", name)
    if not isinstance(field, str):
        raise _fail(src, f"{where} field must be a string, but got {field!r}.")
    if "field" in table:
        _settable(src, f"{where} field:", field)
    elif name not in space.FIELDS and name not in space.DERIVED and name != "epochs":
        allowed = ", ".join([*space.FIELDS, *space.DERIVED])
        raise _fail(src, f"{where} unknown parameter {name!r}: not a NetConfig/TrainConfig field nor a derived parameter "
                    f"(allowed: {allowed}); to search a field under another name, add field = \"...\".")
    else:
        _settable(src, where, field)
    for other in fixed:
        if space.clash(field, other):
            raise _fail(src, f"{where} sets {space.DERIVED.get(field, field)}, which [fixed] {other} also sets; search it or fix it, not both.")
    for key in cell_keys:
        if space.clash(field, key):
            raise _fail(src, f"{where} sets {field}, which the [[cells]] set; a cell parameter cannot also be searched.")
    value_type = space.searchable_type(field)
    if value_type is None:
        raise _fail(
            src, f"{where} {field} is a tuple field and cannot be searched directly; search {_derived_of(field)} instead, or fix it in [fixed]."
        )
    allowed_kinds = {bool: ("categorical",), str: ("categorical",), int: ("int", "categorical"), float: ("float", "categorical")}[value_type]
    if kind not in allowed_kinds:
        raise _fail(src, f"{where} {field} takes {space.type_name(value_type)}, so type must be {' or '.join(allowed_kinds)}, not {kind!r}.")
    when = _parse_when(src, where, table.get("when", {}), earlier)
    if kind == "categorical":
        choices = table.get("choices")
        if not isinstance(choices, list) or not choices:
            raise _fail(src, f"{where} choices must be a non-empty list, but got {choices!r}.")
        coerced = tuple(_coerce(src, f"{where} choices:", field, c) for c in choices)
        if len(set(coerced)) != len(coerced):
            raise _fail(src, f"{where} choices repeat a value: {choices!r}.")
        return ParamSpec(name=name, field=field, type=kind, choices=coerced, when=when)
    return _parse_range(src, where, name, field, kind, table, when)


def _parse_range(src: str, where: str, name: str, field: str, kind: str, table: dict[str, Any], when: tuple) -> ParamSpec:
    check = _is_int if kind == "int" else _is_number
    wanted = "an integer" if kind == "int" else "a number"
    for key in ("low", "high"):
        if key not in table:
            raise _fail(src, f"{where} {key} is required for type {kind!r}.")
        if not check(table[key]):
            raise _fail(src, f"{where} {key} must be {wanted}, but got {table[key]!r}.")
    low, high = table["low"], table["high"]
    if kind == "float":
        low, high = float(low), float(high)
    if low >= high:
        raise _fail(src, f"{where} low={low} must be below high={high}.")
    log = table.get("log", False)
    if not isinstance(log, bool):
        raise _fail(src, f"{where} log must be true or false, but got {log!r}.")
    if log and low <= 0:
        raise _fail(src, f"{where} log = true needs low > 0, but got low={low}.")
    step = table.get("step", 1 if kind == "int" else None)
    if step is not None:
        if not check(step) or step <= 0:
            raise _fail(src, f"{where} step must be {wanted} > 0, but got {step!r}.")
        if log and not (kind == "int" and step == 1):
            raise _fail(src, f"{where} step and log = true cannot be combined; drop one.")
        n_steps = (high - low) / step
        if abs(n_steps - round(n_steps)) > 1e-9:
            raise _fail(src, f"{where} high - low = {high - low} must be a whole number of steps of {step}.")
        step = float(step) if kind == "float" else step
    return ParamSpec(name=name, field=field, type=kind, low=low, high=high, log=log, step=step, when=when)


def _parse_when(src: str, where: str, when: Any, earlier: list[ParamSpec]) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    if not isinstance(when, dict):
        raise _fail(src, f"{where} when must be a table like {{family = \"siamese\"}}, but got {when!r}.")
    categorical = {spec.name: spec for spec in earlier if spec.type == "categorical"}
    parsed = []
    for ref, wanted in when.items():
        if ref not in categorical:
            known = ", ".join(categorical) or "none"
            raise _fail(src, f"{where} when refers to {ref!r}, which is not a categorical parameter defined above (defined: {known}).")
        values = wanted if isinstance(wanted, list) else [wanted]
        choices = categorical[ref].choices
        if not values:
            raise _fail(src, f"{where} when {ref} = [] can never hold; give at least one value.")
        coerced = []
        for value in values:
            try:
                value = space.coerce(categorical[ref].field, value)
            except ValueError:
                pass  # reported just below, with the values that would do
            if not any(type(value) is type(c) and value == c for c in choices):
                raise _fail(src, f"{where} when {ref} = {value!r}, but {ref} takes only {', '.join(map(repr, choices))}.")
            coerced.append(value)
        parsed.append((ref, tuple(coerced)))
    return tuple(parsed)


def _parse_choice(src: str, key: str, table: Any, registry: dict[str, dict[str, tuple[type, ...]]], default: str) -> tuple[str, dict[str, Any]]:
    table = dict(_table(src, key, table))
    kind = table.pop("type", default)
    if kind not in registry:
        raise _fail(src, f"[{key}] unknown type {kind!r}; choose one of {', '.join(registry)}.")
    allowed = registry[kind]
    for option, value in table.items():
        if option not in allowed:
            hint = " (the seed is set in [search])" if option == "seed" else ""
            raise _fail(src, f"[{key}] unknown option {option!r} for type {kind!r}; allowed: {', '.join(allowed) or 'none'}{hint}.")
        types = allowed[option]
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        ok = ok and (not isinstance(value, str) or value == "auto")
        if not ok:
            names = " or ".join('"auto"' if t is str else t.__name__ for t in types)
            raise _fail(src, f"[{key}] {option} must be {names}, but got {value!r}.")
    return kind, table


def _check(definition: StudyDefinition, src: str) -> None:
    """Rules that need the whole definition: fidelity, sampler/pruner fit, and every corner of the space."""
    d = definition
    _int(src, "n_folds", d.n_folds, minimum=2, maximum=20)
    _int(src, "epochs", d.epochs, minimum=1)
    _int(src, "n_pairs", d.n_pairs, minimum=1)
    if d.n_pairs < 10 * d.n_folds:
        raise _fail(
            src, f"[search] n_pairs={d.n_pairs} leaves fewer than 10 pairs per fold with n_folds={d.n_folds}; use n_pairs >= {10 * d.n_folds}."
        )
    if len(d.directions) > 1:
        if d.sampler not in sampling.MULTI_OBJECTIVE_SAMPLERS:
            allowed = ", ".join(sampling.MULTI_OBJECTIVE_SAMPLERS)
            raise _fail(src, f"[sampler] type {d.sampler!r} handles one objective; with two directions use {allowed}.")
        if d.pruner != "none":
            raise _fail(src, f"[pruner] type {d.pruner!r}: Optuna cannot prune trials with two objectives; use type = \"none\".")
    if d.cells and d.pruner == "hyperband":
        raise _fail(
            src, "[pruner] hyperband keeps brackets of its own and cannot prune per cell; with [[cells]] use median, successive_halving or none."
        )
    for section, build in (("sampler", lambda: sampling.plain_sampler(d, d.seed)), ("pruner", lambda: sampling.study_pruner(d))):
        try:
            build()
        except (ValueError, TypeError) as exc:
            raise _fail(src, f"[{section}] Optuna rejects these options: {exc}") from None
    space.check_space(d, src)
