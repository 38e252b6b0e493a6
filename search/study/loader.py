"""Study definitions: studies/*.toml -> a validated, frozen StudyDefinition.

One file per named study; every key is optional unless marked:

    name = "siamese"                  # default: the file's stem
    description = "..."

    [search]
    n_folds = 5                       # required: K of the K-fold cross-validation, 2 to 20
    epochs = 20                       # required: training epochs of every fold
    n_pairs = 500                     # training pairs, drawn once per study with data_seed (default
                                      # models.data.sizes.DEFAULT_N_PAIRS)
    data_seed = 0
    seed = 0                          # sampler seed (and the objective's training seeds)
    directions = ["maximize"]         # or ["maximize", "minimize"]: accuracy, then parameter count
    evaluate_epochs = 40              # `search evaluate-best` retrains for this long (default: the trial's epochs)
    screen_folds = 1                  # folds trained while the pruner may stop a trial; the other folds are
                                      # trained only for a trial that survives (default: all folds at once)
    scored_folds = 2                  # the search trains and scores the first 2 of the K folds (each keeps
                                      # the K-fold sizes); evaluate-best selects on all K (default: all K)

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

Every key with its type, default and allowed values: docs/study-definition.md, which
search.study.reference renders from this code (`search studies --reference`).

Every error is one line naming the file, the key, what was received and what is allowed. On load
the space is checked corner by corner (`space.check_space`) so that a trial can never be handed
configs the models reject. The definition's data lives in `search.study.definition`; this module reads files.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import studies
from models.data.sizes import DEFAULT_N_PAIRS
from search.errors import DefinitionError
from search.study import sampling, space, toml_tables
from search.study.definition import ParamSpec, StudyDefinition, display_path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "DIRECTIONS",
    "NAME_PATTERN",
    "SEARCH_INTEGERS",
    "STUDIES_DIR",
    "TOP_KEYS",
    "ParamSpec",
    "SearchInteger",
    "StudyDefinition",
    "available_definitions",
    "load_definition",
    "with_overrides",
]

logger = logging.getLogger(__name__)

# The `studies` package holds the shipped definitions: the checkout's studies/ folder, and the same files
# inside an installed wheel (package data), so `--study siamese` resolves either way.
STUDIES_DIR = Path(studies.__file__).resolve().parent
DIRECTIONS = (("maximize",), ("maximize", "minimize"))  # [search] directions: accuracy, then parameter count
TOP_KEYS = ("name", "description", "search", "sampler", "pruner", "fixed", "params", "cells", "enqueue")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class SearchInteger:
    """An integer key of [search]: the loader takes its default and bounds from here, the reference its meaning."""

    name: str
    meaning: str
    minimum: int
    maximum: int | None = None
    default: int | None = None  # None: required, or left unset when not `required`
    required: bool = False


SEARCH_INTEGERS = (
    SearchInteger("n_folds", "K of the K-fold cross-validation", minimum=2, maximum=20, required=True),
    SearchInteger("epochs", "training epochs of every fold", minimum=1, required=True),
    SearchInteger(
        "n_pairs",
        "training pairs, drawn once per study with data_seed; at least 10 per fold",
        minimum=1,
        default=DEFAULT_N_PAIRS,
    ),
    SearchInteger("data_seed", "seed of the draw of training pairs", minimum=0, default=0),
    SearchInteger("seed", "sampler seed (and the objective's training seeds)", minimum=0, default=0),
    SearchInteger(
        "evaluate_epochs", "`search evaluate-best` retrains this long; unset: each trial's own epochs", minimum=1
    ),
    SearchInteger(
        "screen_folds",
        "folds trained while the pruner may stop a trial, below n_folds; the other folds train only for a trial "
        "that survives every rung. Unset: every fold from the first epoch. Not with two directions",
        minimum=1,
    ),
    SearchInteger(
        "scored_folds",
        "the search trains and scores only the first this many of the K folds (each keeps its K-fold training and "
        "validation sizes), at most n_folds; `evaluate-best` still selects on all K. Unset: all K",
        minimum=1,
    ),
)
_SEARCH_KEYS = (*(key.name for key in SEARCH_INTEGERS), "directions")


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


def with_overrides(
    definition: StudyDefinition, *, epochs: int | None = None, n_folds: int | None = None
) -> StudyDefinition:
    """A copy at another fidelity (e.g. `--epochs 2` for a quick look), validated again; new fingerprint.
    Fewer folds than the definition scores are all scored; fewer than it screens train every fold at once."""
    if epochs is None and n_folds is None:
        return definition
    folds = definition.n_folds if n_folds is None else n_folds
    scored = (
        definition.scored_folds if definition.scored_folds is not None and definition.scored_folds < folds else None
    )
    screen = definition.screen_folds
    changed = dataclasses.replace(
        definition,
        epochs=definition.epochs if epochs is None else epochs,
        n_folds=folds,
        scored_folds=scored,
        screen_folds=screen if screen is not None and screen < (folds if scored is None else scored) else None,
    )
    _check(changed, f"{definition.source} (with epochs={changed.epochs}, n_folds={changed.n_folds})")
    return changed


def _parse(data: dict[str, Any], path: Path, src: str) -> StudyDefinition:
    toml_tables.check_keys(src, "top level:", data, TOP_KEYS)
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise toml_tables.fail(src, f"name must be letters, digits, '_', '-' or '.', but got {name!r}.")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise toml_tables.fail(src, f"description must be a string, but got {description!r}.")

    search = toml_tables.as_table(src, "search", data.get("search", {}))
    toml_tables.check_keys(src, "[search]", search, _SEARCH_KEYS)
    for key in SEARCH_INTEGERS:
        if key.required and key.name not in search:
            raise toml_tables.fail(src, f"[search] {key.name} is required.")
    directions = search.get("directions", list(DIRECTIONS[0]))
    if not isinstance(directions, list) or tuple(directions) not in DIRECTIONS:
        raise toml_tables.fail(
            src,
            f'[search] directions must be ["maximize"] or ["maximize", "minimize"] (accuracy, parameter count), but got {directions!r}.',
        )

    fixed = toml_tables.parse_fixed(src, toml_tables.as_table(src, "fixed", data.get("fixed", {})))
    cells = toml_tables.parse_cells(src, data.get("cells", []), fixed)
    specs = toml_tables.cell_specs(cells)
    params = toml_tables.as_table(src, "params", data.get("params", {}))
    for pname, table in params.items():
        specs.append(
            toml_tables.parse_param(
                src,
                pname,
                toml_tables.as_table(src, f"params.{pname}", table),
                specs,
                fixed,
                list(cells[0]) if cells else [],
            )
        )

    sampler, sampler_options = toml_tables.parse_choice(
        src, "sampler", data.get("sampler", {}), sampling.SAMPLER_OPTIONS, sampling.DEFAULT_SAMPLER
    )
    pruner, pruner_options = toml_tables.parse_choice(
        src, "pruner", data.get("pruner", {}), sampling.PRUNER_OPTIONS, sampling.default_pruner(len(directions))
    )
    return StudyDefinition(
        name=name,
        path=path,
        description=description.strip(),
        **{key.name: search.get(key.name, key.default) for key in SEARCH_INTEGERS},
        directions=tuple(directions),
        sampler=sampler,
        sampler_options=sampler_options,
        pruner=pruner,
        pruner_options=pruner_options,
        params=tuple(specs),
        fixed=fixed,
        cells=tuple(cells),
        enqueue=toml_tables.parse_enqueue(src, data.get("enqueue", []), specs, cells),
    )


def _check(definition: StudyDefinition, src: str) -> None:
    """Rules that need the whole definition: fidelity, sampler/pruner fit, and every corner of the space."""
    d = definition
    for key in SEARCH_INTEGERS:
        if (value := getattr(d, key.name)) is not None:
            toml_tables.integer(src, key.name, value, minimum=key.minimum, maximum=key.maximum)
    if d.n_pairs < 10 * d.n_folds:
        raise toml_tables.fail(
            src,
            f"[search] n_pairs={d.n_pairs} leaves fewer than 10 pairs per fold with n_folds={d.n_folds}; use n_pairs >= {10 * d.n_folds}.",
        )
    if len(d.directions) > 1:
        if d.sampler not in sampling.MULTI_OBJECTIVE_SAMPLERS:
            allowed = ", ".join(sampling.MULTI_OBJECTIVE_SAMPLERS)
            raise toml_tables.fail(
                src, f"[sampler] type {d.sampler!r} handles one objective; with two directions use {allowed}."
            )
        if d.pruner != "none":
            raise toml_tables.fail(
                src, f'[pruner] type {d.pruner!r}: Optuna cannot prune trials with two objectives; use type = "none".'
            )
    if d.scored_folds is not None and d.scored_folds > d.n_folds:
        raise toml_tables.fail(
            src,
            f"[search] scored_folds={d.scored_folds} must be at most n_folds={d.n_folds}: it is how many of the "
            "K folds the search trains; leave it out to score every fold.",
        )
    if d.screen_folds is not None and d.screen_folds >= d.search_folds:
        limit = f"n_folds={d.n_folds}" if d.scored_folds is None else f"scored_folds={d.scored_folds}"
        raise toml_tables.fail(
            src,
            f"[search] screen_folds={d.screen_folds} must be below {limit}: it is how many folds train "
            "while the pruner may stop a trial; leave it out to train every fold at once.",
        )
    if d.screen_folds is not None and len(d.directions) > 1:
        raise toml_tables.fail(
            src,
            "[search] screen_folds needs a pruner, and Optuna cannot prune trials with two objectives; leave it out.",
        )
    if d.cells and d.pruner == "hyperband":
        raise toml_tables.fail(
            src,
            "[pruner] hyperband keeps brackets of its own and cannot prune per cell; with [[cells]] use median, successive_halving or none.",
        )
    for section, build in (
        ("sampler", lambda: sampling.plain_sampler(d, d.seed)),
        ("pruner", lambda: sampling.study_pruner(d)),
    ):
        try:
            build()
        except (ValueError, TypeError) as exc:
            raise toml_tables.fail(src, f"[{section}] Optuna rejects these options: {exc}") from None
    space.check_space(d, src)
