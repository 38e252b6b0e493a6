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
    [[enqueue]]                       # starting points: trials run first with these param values (the rest sampled)
    weight_sharing = true             # (see sampling.CellSampler); their keys become categorical params
    aux_loss = "none"

Every error is one line naming the file, the key, what was received and what is allowed. On load
the space is checked corner by corner (every combination of categorical choices, numbers at their
low and at their high ends) so that a trial can never be handed configs the models reject.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.errors import ConfigError
from search import sampling, space
from search.errors import DefinitionError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["STUDIES_DIR", "ParamSpec", "StudyDefinition", "available_definitions", "load_definition"]

logger = logging.getLogger(__name__)

STUDIES_DIR = Path(__file__).resolve().parents[1] / "studies"
DIRECTIONS = (("maximize",), ("maximize", "minimize"))
PARAM_TYPES = ("float", "int", "categorical")
_TOP_KEYS = ("name", "description", "search", "sampler", "pruner", "fixed", "params", "cells", "enqueue")
_SEARCH_KEYS = ("n_folds", "epochs", "n_pairs", "data_seed", "seed", "directions", "evaluate_epochs")
_PARAM_KEYS = {"float": ("low", "high", "log", "step"), "int": ("low", "high", "log", "step"), "categorical": ("choices",)}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_CORNERS = 200_000  # categorical combinations checked on load; beyond that the check is skipped


@dataclass(frozen=True)
class ParamSpec:
    """One searched parameter: its Optuna name, the field it sets, its range and its condition."""

    name: str  # the Optuna parameter name (a key of trial.params)
    field: str  # the NetConfig/TrainConfig field or derived parameter (space.DERIVED) it sets
    type: str  # float | int | categorical
    low: float | int | None = None  # float/int: inclusive bounds
    high: float | int | None = None
    log: bool = False  # float/int: sample on a log scale
    step: float | int | None = None  # float/int: spacing of the values (int: 1 unless given)
    choices: tuple[Any, ...] = ()  # categorical: the values
    when: tuple[tuple[str, tuple[Any, ...]], ...] = ()  # (param name, allowed values): all must hold

    def is_active(self, values: Mapping[str, Any]) -> bool:
        """Whether this parameter is suggested, given the values of the parameters suggested before it."""
        return all(name in values and values[name] in allowed for name, allowed in self.when)


@dataclass(frozen=True)
class StudyDefinition:
    """A validated study file. `params` lists the [[cells]] parameters first, then [params] in file order."""

    name: str
    path: Path
    description: str
    n_folds: int
    epochs: int
    n_pairs: int
    data_seed: int
    seed: int
    directions: tuple[str, ...]
    sampler: str
    sampler_options: dict[str, Any]
    pruner: str
    pruner_options: dict[str, Any]
    params: tuple[ParamSpec, ...]
    fixed: dict[str, Any]  # field or derived parameter -> value (lists as tuples)
    cells: tuple[dict[str, Any], ...] = ()  # each: cell parameter -> value
    enqueue: tuple[dict[str, Any], ...] = ()  # starting points run first: param name -> value (others sampled)
    evaluate_epochs: int | None = None  # `search evaluate-best` trains this long unless --epochs; None: as searched

    @property
    def source(self) -> str:
        """The file as error messages name it (relative to the working directory when inside it)."""
        return _display(self.path)

    def fingerprint(self) -> str:
        """sha256 of what decides the value a trial gets: space, fixed, cells, directions, data and fidelity.

        Included: params (order-free), fixed, cells (in order: it assigns trials to cells),
        directions, n_pairs, data_seed, epochs and n_folds. Trials scored with other epochs or folds
        measure something else, so `with_overrides` changes the fingerprint and a stored study whose
        fingerprint differs is not resumed: give a quick run its own study name. Left out: name and
        description (labels), seed (another seed adds samples of the same experiment), sampler,
        pruner and enqueue (how points are picked, not what a point scores; switching them on resume is
        fine), evaluate_epochs (what happens after the search).
        """
        content = {
            "version": 1,
            "params": sorted((dataclasses.asdict(p) for p in self.params), key=lambda p: p["name"]),
            "fixed": self.fixed,
            "cells": list(self.cells),
            "directions": list(self.directions),
            "n_pairs": self.n_pairs,
            "data_seed": self.data_seed,
            "epochs": self.epochs,
            "n_folds": self.n_folds,
        }
        text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def with_overrides(self, *, epochs: int | None = None, n_folds: int | None = None) -> StudyDefinition:
        """A copy at another fidelity (e.g. `--epochs 2` for a quick look), validated again; new fingerprint."""
        if epochs is None and n_folds is None:
            return self
        changed = dataclasses.replace(
            self, epochs=self.epochs if epochs is None else epochs, n_folds=self.n_folds if n_folds is None else n_folds
        )
        _check(changed, f"{self.source} (with epochs={changed.epochs}, n_folds={changed.n_folds})")
        return changed


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
    src = _display(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError(f"{src}: TOML syntax error: {exc}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError(f"{src}: cannot read the file: {exc}.") from None
    definition = _parse(data, path.resolve(), src)
    _check(definition, src)
    return definition


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


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


def _clash(a: str, b: str) -> bool:
    """Whether two settable names set the same field (n_conv and conv_width complete each other)."""
    return a == b or space.DERIVED.get(a) == b or space.DERIVED.get(b) == a


def _parse_fixed(src: str, table: dict[str, Any]) -> dict[str, Any]:
    fixed: dict[str, Any] = {}
    for key, value in table.items():
        _settable(src, "[fixed]", key)
        value = _coerce(src, f"[fixed] {key}:", key, value)
        for other in fixed:
            if _clash(key, other):
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
            if _clash(key, other):
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
        if _clash(field, other):
            raise _fail(src, f"{where} sets {space.DERIVED.get(field, field)}, which [fixed] {other} also sets; search it or fix it, not both.")
    for key in cell_keys:
        if _clash(field, key):
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
    for section, build in (("sampler", lambda: sampling.make_sampler(d, d.seed)), ("pruner", lambda: sampling.build_pruner(d))):
        try:
            build()
        except (ValueError, TypeError) as exc:
            raise _fail(src, f"[{section}] Optuna rejects these options: {exc}") from None
    _check_space(d, src)


def _check_space(d: StudyDefinition, src: str) -> None:
    # each value on its own, so that a bad bound is reported with its key
    for spec in d.params:
        probes = [("choice", c) for c in spec.choices] if spec.type == "categorical" else [("low", spec.low), ("high", spec.high)]
        for which, value in probes:
            try:
                space.make_configs({spec.field: value}, epochs=d.epochs)
            except ConfigError as exc:
                raise _fail(src, f"[params.{spec.name}] {which} {value!r}: {exc}") from None
    for key, value in d.fixed.items():
        try:
            space.make_configs({key: value}, epochs=d.epochs)
        except ConfigError as exc:
            raise _fail(src, f"[fixed] {key} = {value!r}: {exc}") from None
    # then every combination of categorical choices, with the numbers at both ends
    field_of = {spec.name: spec.field for spec in d.params}
    active: set[str] = set()
    for n, corner in enumerate(_corners(d)):
        if n == _MAX_CORNERS:
            logger.warning("%s: more than %d categorical combinations; checked the first %d only.", src, _MAX_CORNERS, _MAX_CORNERS)
            break
        numeric = [s for s in d.params if s.type != "categorical" and s.is_active(corner)]
        names = [*corner, *(s.name for s in numeric)]
        active.update(names)
        fields: dict[str, str] = {}
        for name in names:
            field = field_of[name]
            for other_field, other in fields.items():
                if _clash(field, other_field):
                    raise _fail(
                        src, f"[params.{other}] and [params.{name}] both set {field} when {_describe(corner)}; make their `when` conditions exclusive."
                    )
            fields[field] = name
        for end in ("low", "high"):
            values = {**corner, **{s.name: getattr(s, end) for s in numeric}}
            try:
                space.build_configs(d, values)
            except ConfigError as exc:
                raise _fail(src, f"the space allows {_describe(corner)} (numbers at their {end} ends), which gives invalid configs: {exc} "
                            "Add a `when` condition so that this combination cannot be sampled.") from None
    for spec in d.params:
        if spec.name not in active:
            condition = ", ".join(f"{k}={v[0]!r}" if len(v) == 1 else f"{k} in {list(v)!r}" for k, v in spec.when)
            raise _fail(src, f"[params.{spec.name}] is never suggested: its condition {condition} cannot hold.")


def _corners(d: StudyDefinition) -> Iterator[dict[str, Any]]:
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


def _describe(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in values.items()) or "(no categorical parameters)"
