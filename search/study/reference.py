"""The study-definition reference: every key a definition file accepts, with its type, default, allowed values
and meaning, rendered as Markdown from the tables the loader checks against.

The keys, defaults and bounds come from search.study (loader, toml_tables, sampling, space), the fields'
rules from the CHOICES, INTERVALS and WIDTHS of models.nets.configs, and their meanings from the comment beside
each field. What this module writes itself is prose: what each table is for. `render_reference` fails when a
key has no prose here, so a new key cannot go undocumented, and tests/unit/search/study/test_definition_reference.py fails
when docs/study-definition.md is not the rendering of the code as it is.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import re
import textwrap
import tokenize
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from models.nets.configs import CHOICES, INTERVALS, WIDTHS, NetConfig, TrainConfig
from search.study import loader, sampling, space, toml_tables
from search.study.definition import StudyDefinition

__all__ = ["COMMAND", "PAGE", "field_comments", "render_reference", "toml_value"]

PAGE = "docs/study-definition.md"
COMMAND = f"search studies --reference > {PAGE}"
_UNSET = "unset"

# What each top-level key holds; the keys must be exactly loader.TOP_KEYS.
_TOP_LEVEL = {
    "name": ("string", "the file's name without `.toml`", "the Optuna study name; a study stores and resumes under it"),
    "description": ("string", '`""`', "what the study searches, for people"),
    "search": ("table", "required", "fidelity, data and seeds: [`[search]`](#search)"),
    "sampler": ("table", f'`type = "{sampling.DEFAULT_SAMPLER}"`', "how trials are picked: [`[sampler]`](#sampler)"),
    "pruner": (
        "table",
        f'`type = "{sampling.default_pruner(1)}"` (`"{sampling.default_pruner(2)}"` with two directions)',
        "which trials stop early: [`[pruner]`](#pruner)",
    ),
    "fixed": ("table", "`{}`", "fields held constant: `field = value` for any of [the fields](#fields)"),
    "params": ("table of tables", "`{}`", "one [`[params.NAME]`](#paramsname) table per searched parameter"),
    "cells": ("array of tables", "`[]`", "an ablation's fixed combinations: [`[[cells]]`](#cells)"),
    "enqueue": ("array of tables", "`[]`", "starting points run first: [`[[enqueue]]`](#enqueue)"),
}

# The keys of a [params.NAME] table beside those of toml_tables.PARAM_KEYS' types: type -> default, meaning.
_PARAM_TABLE = {
    "type": ("required", "how the parameter is sampled"),
    "field": (
        "the table's NAME",
        "the [field or derived parameter](#fields) it sets; several parameters may set one field under "
        "exclusive `when` conditions",
    ),
    "when": (
        "`{}`: always",
        'suggested only when categorical parameters defined above took these values: `{optimizer = "sgd"}`, '
        '`{optimizer = ["adam", "rmsprop"]}` (any of them); all must hold',
    ),
    "low": ("required", "inclusive lower bound"),
    "high": ("required", "inclusive upper bound, above low"),
    "log": ("`false`", "sample on a log scale; needs low > 0"),
    "step": ("`1` for int, none for float", "spacing of the values; high - low a whole number of steps; not with log"),
    "choices": ("required", "the values, each one the field takes, none twice"),
}
_PARAM_KEY_TYPES = {
    "type": "string",
    "field": "string",
    "when": "table",
    "low": "number",
    "high": "number",
    "log": "bool",
    "step": "number",
    "choices": "array",
}

# Defaults plain_sampler and study_pruner set in place of Optuna's: (type, option) -> the default.
_OWN_DEFAULTS = {
    ("tpe", "multivariate"): "`true`",
    ("tpe", "group"): "`true` when multivariate and a parameter has `when`",
    ("hyperband", "max_resource"): "`[search] epochs`",
}
# The derived parameters of space.DERIVED: name -> (whether it counts the tuple's elements, what it means).
_DERIVED = {
    "n_conv": (True, "how many convolutions: conv_channels = (conv_width, 2·conv_width, 4·conv_width, ...)"),
    "conv_width": (False, "the first convolution's channels; each further one doubles them"),
    "n_hidden": (True, "how many hidden layers: hidden = (hidden_width,) × n_hidden"),
    "hidden_width": (False, "the width of every hidden layer"),
}


def render_reference() -> str:
    """The whole page, as `search studies --reference` prints it and docs/study-definition.md holds it."""
    parts = [
        "# Study definition reference",
        f"Generated from the code by `{COMMAND}`; edit the code (search/study/, models/nets/configs.py) and run "
        "that again rather than editing this page, which a unit test compares with the code.",
        "A study definition is a TOML file in [`studies/`](../studies/) (`--study NAME`) or anywhere "
        "(`--study path/to/file.toml`); [`studies/smoke.toml`](../studies/smoke.toml) is a small complete one. "
        "Every key is checked when the file loads, and every error is one line that names the file, the key, "
        "what it received and what it allows. Then every corner of the space (each combination of categorical "
        "choices, the numbers at both ends) is built into configs, so a trial can never be handed settings the "
        "models reject.",
        "## Top level",
        _table(("key", "type", "default", "meaning"), _top_level_rows()),
        "## `[search]`",
        "How each trial is scored. The fidelity keys (folds, epochs, pairs, data seed, `screen_folds`, `scored_folds`) are part of "
        "the study's fingerprint: a stored study is resumed only with the same values.",
        _table(("key", "type", "default", "allowed", "meaning"), _search_rows()),
        "## `[sampler]`",
        f"`type` picks the sampler (default `{sampling.DEFAULT_SAMPLER}`); the other keys are options of its Optuna "
        "class, with Optuna's defaults unless the table says otherwise. Every sampler is seeded from "
        f"`[search] seed`, so `seed` is not an option. With two directions: "
        f"{_codes(sampling.MULTI_OBJECTIVE_SAMPLERS)}. The grid sampler enumerates every value, so a float "
        "parameter needs a `step`.",
        _table(("type", "option", "type of value", "default"), _option_rows(sampling.SAMPLER_OPTIONS)),
        "## `[pruner]`",
        f"`type` picks the pruner (default `{sampling.default_pruner(1)}`, and `{sampling.default_pruner(2)}` with "
        "two directions, which Optuna cannot prune); the other keys are options of its Optuna class, with "
        "Optuna's defaults unless the table says otherwise. With `[[cells]]` each cell is pruned against its own "
        "trials, which hyperband's brackets cannot do.",
        _table(("type", "option", "type of value", "default"), _option_rows(sampling.PRUNER_OPTIONS)),
        "## `[params.NAME]`",
        "One table per searched parameter, in the order they are suggested. NAME is the Optuna parameter name "
        "(a Python identifier); it sets the field of the same name unless `field` names another.",
        _table(("key", "type", "default", "allowed", "meaning"), _param_rows()),
        "## `[[cells]]`",
        "An ablation: at least two tables that set the same [fields or derived parameters](#fields) (not tuple "
        "fields), each combination once. Their keys become categorical parameters; trial n runs cell n mod the "
        "number of cells, and each cell has a sampler and pruner of its own, so each is tuned with the same "
        "budget. A cell key cannot also be fixed or searched, and cells cannot be combined with `[[enqueue]]`.",
        "## `[[enqueue]]`",
        "Starting points: each table gives searched parameters (by their NAME) values inside their ranges or "
        "choices; a trial runs each point first, sampling the parameters it leaves out. A parameter whose `when` "
        "would not hold with the other values given is refused.",
        "## Fields",
        "What `[fixed]`, `[[cells]]` and `[params.NAME]` set: the fields of `NetConfig` (the network) and "
        "`TrainConfig` (its training), and the derived parameters that stand for a tuple field. *allowed* is the "
        "rule a value must meet on its own; rules between fields (a kernel size per convolution, the auxiliary "
        "loss only where there are digit outputs, staged epochs below `[search] epochs`) are checked on load at "
        "every corner of the space. *search as* lists the `[params.NAME]` types that can search the field. "
        "`epochs` is set in `[search]`.",
        "### Network (`NetConfig`)",
        _table(_FIELD_COLUMNS, _field_rows(NetConfig)),
        "### Training (`TrainConfig`)",
        _table(_FIELD_COLUMNS, _field_rows(TrainConfig)),
        "### Derived parameters",
        "A tuple cannot be an Optuna parameter, so these integers build the tuple fields; one left out keeps "
        "its part of the default shape.",
        _table(("parameter", "sets", "type", "default", "allowed", "search as", "meaning"), _derived_rows()),
    ]
    return "\n\n".join(parts) + "\n"


_FIELD_COLUMNS = ("field", "type", "default", "allowed", "search as", "meaning")


def _top_level_rows() -> list[tuple[str, ...]]:
    _require_described("top-level key", loader.TOP_KEYS, _TOP_LEVEL)
    rows = []
    for key in loader.TOP_KEYS:
        kind, default, meaning = _TOP_LEVEL[key]
        if key == "name":
            meaning += f"; matches `{loader.NAME_PATTERN.pattern}`"
        rows.append((f"`{key}`", kind, default, meaning))
    return rows


def _search_rows() -> list[tuple[str, ...]]:
    rows = []
    for key in loader.SEARCH_INTEGERS:
        default = "required" if key.required else _UNSET if key.default is None else f"`{key.default}`"
        allowed = f">= {key.minimum}" if key.maximum is None else f"between {key.minimum} and {key.maximum}"
        rows.append((f"`{key.name}`", "integer", default, allowed, key.meaning))
    directions = " or ".join(f"`{toml_value(list(d))}`" for d in loader.DIRECTIONS)
    rows.append(
        (
            "`directions`",
            "array of strings",
            f"`{toml_value(list(loader.DIRECTIONS[0]))}`",
            directions,
            "what a trial's values mean: the mean validation accuracy, then the parameter count; "
            "two directions search the trade-off and cannot prune",
        )
    )
    return rows


def _option_rows(registry: Mapping[str, Mapping[str, tuple[type, ...]]]) -> list[tuple[str, ...]]:
    unknown = [key for key in _OWN_DEFAULTS if key[0] in registry and key[1] not in registry[key[0]]]
    if unknown:
        raise ValueError(f"search/study/reference.py states defaults of options the code does not have: {unknown}.")
    rows = []
    for kind, options in registry.items():
        head = f"`{kind}` (`{_optuna_class(registry, kind)}`)"
        if not options:
            rows.append((head, "none", "", ""))
        for option, types in options.items():
            default = _OWN_DEFAULTS.get((kind, option), "Optuna's")
            rows.append((head, f"`{option}`", _option_type(types), default))
    return rows


def _optuna_class(registry: Mapping[str, Any], kind: str) -> str:
    """The Optuna class a sampler or pruner type builds, asked of sampling itself (a one-objective definition
    with no parameters, not a copy of its branches), by its public name: optuna.samplers.TPESampler."""
    is_sampler = registry is sampling.SAMPLER_OPTIONS
    definition = StudyDefinition(
        name="reference",
        path=Path("reference.toml"),
        description="",
        n_folds=2,
        epochs=1,
        n_pairs=1000,
        data_seed=0,
        seed=0,
        directions=loader.DIRECTIONS[0],
        sampler=kind if is_sampler else sampling.DEFAULT_SAMPLER,
        sampler_options={},
        pruner="none" if is_sampler else kind,
        pruner_options={},
        params=(),
        fixed={},
    )
    built = sampling.plain_sampler(definition, 0) if is_sampler else sampling.study_pruner(definition)
    return f"{'optuna.samplers' if is_sampler else 'optuna.pruners'}.{type(built).__name__}"


def _option_type(types: tuple[type, ...]) -> str:
    """The TOML type of an option as toml_tables.parse_choice accepts it: a str option takes only "auto"."""
    names = {bool: "bool", int: "integer", float: "number", str: '`"auto"`'}
    if float in types:
        types = tuple(t for t in types if t is not int)  # a number: an integer is one too
    return " or ".join(names[t] for t in types)


def _param_rows() -> list[tuple[str, ...]]:
    typed = {
        key: [kind for kind in toml_tables.PARAM_TYPES if key in toml_tables.PARAM_KEYS[kind]]
        for keys in toml_tables.PARAM_KEYS.values()
        for key in keys
    }
    _require_described("[params.NAME] key", ("type", "field", "when", *typed), _PARAM_TABLE)
    rows = []
    for key, (default, meaning) in _PARAM_TABLE.items():
        allowed = _codes(toml_tables.PARAM_TYPES) if key == "type" else ""
        if key in typed:
            meaning = f"{' and '.join(typed[key])}: {meaning}"
        rows.append((f"`{key}`", _PARAM_KEY_TYPES[key], default, allowed, meaning))
    return rows


def _field_rows(config: type) -> list[tuple[str, ...]]:
    """One row per field of a config class (NetConfig or TrainConfig) that a definition can set."""
    comments = field_comments(config)
    defaults = config()
    rows = []
    for field in dataclasses.fields(config):
        if field.name not in space.FIELDS:
            continue  # epochs: set in [search]
        name, default = field.name, getattr(defaults, field.name)
        rows.append(
            (
                f"`{name}`",
                _type_name(space.value_type(name)),
                _UNSET if default is None else f"`{toml_value(default)}`",
                _allowed(name),
                _search_as(name),
                _escape(comments.get(name, "")),
            )
        )
    return rows


def _derived_rows() -> list[tuple[str, ...]]:
    _require_described("derived parameter", space.DERIVED, _DERIVED)
    rows = []
    for name, target in space.DERIVED.items():
        counts, meaning = _DERIVED[name]
        widths = WIDTHS[target]
        rows.append(
            (
                f"`{name}`",
                f"`{target}`",
                _type_name(space.value_type(name)),
                f"`{space.DERIVED_DEFAULTS[name]}`",
                f"between {widths.min_len} and {widths.max_len}" if counts else ">= 1",
                _search_as(name),
                meaning,
            )
        )
    return rows


def _allowed(name: str) -> str:
    """A field's own rule, from models.nets.configs; '' for a field whose rule involves other fields."""
    kind = space.value_type(name)
    if name in CHOICES:
        return ", ".join(f"`{toml_value(choice)}`" for choice in CHOICES[name])
    if kind is bool:
        return "`true`, `false`"
    if name in WIDTHS:
        return WIDTHS[name].describe()
    if name in INTERVALS:
        return INTERVALS[name].describe() + (", each" if _takes_tuple(kind) else "")
    return ""


def _takes_tuple(kind: Any) -> bool:
    return any(typing.get_origin(member) is tuple for member in (kind, *typing.get_args(kind)))


def _search_as(name: str) -> str:
    kinds = toml_tables.search_types(name)
    if kinds:
        return ", ".join(kinds)
    derived = [d for d, target in space.DERIVED.items() if target == name]
    return f"through {_codes(derived)}" if derived else "fixed only"


def _type_name(kind: Any) -> str:
    """space.type_name without its articles: 'integer or list of integers'."""
    return re.sub(r"\b(?:a|an) ", "", space.type_name(kind))


def field_comments(config: type) -> dict[str, str]:
    """Each dataclass field's comment in the source, joined into one line.

    A field's comment is the one on its own lines, else the block of comment lines just above it. A block
    between two fields continues the field above when the field below has a comment of its own.
    """
    source = textwrap.dedent(inspect.getsource(config))
    comments = {
        token.start[0]: token.string.lstrip("#").strip()
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    }
    lines = source.splitlines()
    body = ast.parse(source).body[0]
    assert isinstance(body, ast.ClassDef)
    nodes = [n for n in body.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)]
    found: dict[str, list[str]] = {}
    for index, node in enumerate(nodes):
        name = node.target.id  # type: ignore[union-attr]
        own = [comments[n] for n in range(node.lineno, (node.end_lineno or node.lineno) + 1) if n in comments]
        above = []
        line = node.lineno - 1
        while line >= 1 and lines[line - 1].lstrip().startswith("#"):
            above.insert(0, comments[line])
            line -= 1
        if own and above and index:
            found[nodes[index - 1].target.id].extend(above)  # type: ignore[union-attr]
        found[name] = own or above
    return {name: " ".join(parts) for name, parts in found.items()}


def _require_described(what: str, keys: Iterable[str], described: Mapping[str, Any]) -> None:
    """The code's keys and this module's prose name the same keys, so the page has a line for each."""
    keys = list(keys)
    missing = [key for key in keys if key not in described]
    extra = [key for key in described if key not in keys]
    if missing or extra:
        raise ValueError(
            f"search/study/reference.py describes the {what}s {sorted(described)}, but the code has {keys}: "
            f"describe {missing} and drop {extra} there."
        )


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell or "—" for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _escape(text: str) -> str:
    """A comment as a table cell: '|' would end the cell and '*' start emphasis."""
    return text.replace("|", "\\|").replace("*", "\\*")


def _codes(names: Iterable[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def toml_value(value: Any) -> str:
    """A value as a TOML file writes it: true, "siamese", [32, 64]."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)
