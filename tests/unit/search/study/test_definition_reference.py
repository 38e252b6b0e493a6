"""docs/study-definition.md is the code rendered, and what it documents is what a definition file accepts:
a non-default value of every field, key and option loads, and a value outside its rule gets the code's one line."""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from pathlib import Path
from typing import Any

import pytest

from models.nets.configs import CHOICES, INTERVALS, WIDTHS, NetConfig, TrainConfig
from search.errors import DefinitionError
from search.study import loader, sampling, space, toml_tables
from search.study import reference as reference_module
from search.study.loader import SEARCH_INTEGERS, load_definition
from search.study.reference import COMMAND, PAGE, field_comments, render_reference, toml_value

ROOT = Path(__file__).resolve().parents[4]

BASE = """\
name = "t"

[search]
n_folds = 2
epochs = 2
n_pairs = 200
"""
DEFAULTS = {**dataclasses.asdict(NetConfig()), **dataclasses.asdict(TrainConfig())}
FIELDS = list(space.FIELDS)
# What a value needs beside it in [fixed], by the rules between fields that the reference names in prose.
COMPANIONS: dict[str, dict[str, Any]] = {
    "activation_alpha": {"activation": "elu"},
    "intermediate_after": {"conv_channels": [8, 16, 32]},
    "predict_digits": {"family": "cnn2ch"},
    "aux_classifier": {"fusion": "features"},
    "staged_second": {"staged_epochs": 1},
}


def load(tmp_path: Path, text: str) -> loader.StudyDefinition:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return load_definition(path)


def fixed(settings: dict[str, Any]) -> str:
    return BASE + "[fixed]\n" + "".join(f"{key} = {toml_value(value)}\n" for key, value in settings.items())


def _integer_field(kind: Any) -> bool:
    return kind is int or int in typing.get_args(kind)


def other_value(field: str) -> Any:
    """A value the field's documented rule allows, other than its default."""
    default, kind = DEFAULTS[field], space.value_type(field)
    if field in CHOICES:
        return next(choice for choice in CHOICES[field] if choice != default)
    if kind is bool:
        return not default
    if field in WIDTHS:
        return [16] * WIDTHS[field].max_len
    if field in INTERVALS:
        rule = INTERVALS[field]
        ends = [] if rule.high is None else [rule.high, (rule.low + rule.high) / 2]
        cast = int if _integer_field(kind) else float
        candidates = [cast(v) for v in (rule.low, *ends, rule.low + 1, rule.low + 2)]
        return next(v for v in candidates if v in rule and v != default)
    return []  # pool_after: no pools


def wrong_type(field: str) -> Any:
    kind = space.value_type(field)
    return 1 if kind is str else "yes"


# --- the page ----------------------------------------------------------------------------------


def test_the_page_is_the_code_rendered() -> None:
    page = (ROOT / PAGE).read_text(encoding="utf-8")
    rendered = render_reference()
    diff = list(difflib.unified_diff(page.splitlines(), rendered.splitlines(), PAGE, "the code", lineterm="", n=0))
    assert page == rendered, f"{PAGE} is not the code's reference; regenerate it with `{COMMAND}`:\n" + "\n".join(
        diff[:20]
    )


def test_the_page_names_the_command_that_writes_it() -> None:
    assert COMMAND in render_reference().split("\n\n")[1]


def test_every_key_of_the_code_is_on_the_page() -> None:
    page = render_reference()
    keys = [
        *loader.TOP_KEYS,
        *(key.name for key in SEARCH_INTEGERS),
        "directions",
        *space.FIELDS,
        *space.DERIVED,
        *(key for keys in toml_tables.PARAM_KEYS.values() for key in keys),
        *sampling.SAMPLER_OPTIONS,
        *sampling.PRUNER_OPTIONS,
        *(option for options in sampling.SAMPLER_OPTIONS.values() for option in options),
        *(option for options in sampling.PRUNER_OPTIONS.values() for option in options),
    ]
    assert [key for key in keys if f"| `{key}`" not in page] == []


def test_a_key_the_reference_has_no_prose_for_fails_the_rendering(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "TOP_KEYS", (*loader.TOP_KEYS, "colour"))
    with pytest.raises(ValueError, match=r"describe \['colour'\]"):
        render_reference()
    monkeypatch.undo()
    monkeypatch.setattr(reference_module, "_DERIVED", {**reference_module._DERIVED, "n_towers": (True, "gone")})
    with pytest.raises(ValueError, match=r"drop \['n_towers'\]"):
        render_reference()


@pytest.mark.parametrize("config", [NetConfig, TrainConfig], ids=["NetConfig", "TrainConfig"])
def test_every_field_has_a_comment_for_its_meaning(config: type) -> None:
    comments = field_comments(config)
    assert [f.name for f in dataclasses.fields(config) if not comments.get(f.name)] == []


def test_a_comment_is_the_one_beside_the_field_else_the_block_above() -> None:
    comments = field_comments(NetConfig)
    assert comments["pure_conv"].startswith("cnn2ch: no Linear")  # inside the field's parentheses
    assert comments["predict_digits"].startswith("cnn2ch: the classifier ends in 20 logits")  # the block above
    assert comments["fusion"].startswith("siamese: digits") and comments["fusion"].endswith("separate classifier)")
    assert comments["digit_output"].endswith("under CrossEntropyLoss)")  # its continuation below, not pair_output's
    assert comments["pair_output"].startswith("two: 2 logits")


# --- each documented field round-trips ------------------------------------------------------------


@pytest.mark.parametrize("field", FIELDS)
def test_a_fixed_field_takes_a_documented_value(tmp_path: Path, field: str) -> None:
    value = other_value(field)
    definition = load(tmp_path, fixed({**COMPANIONS.get(field, {}), field: value}))
    assert definition.fixed[field] == space.coerce(field, value) != DEFAULTS[field]


@pytest.mark.parametrize("field", [f for f in FIELDS if f in CHOICES or f in INTERVALS or f in WIDTHS])
def test_a_fixed_field_outside_its_rule_gets_the_codes_line(tmp_path: Path, field: str) -> None:
    if field in CHOICES:
        value: Any = "nope"
        rule = f"must be one of {', '.join(CHOICES[field])}"
    elif field in WIDTHS:
        widths = WIDTHS[field]
        value = [16] * (widths.max_len + 1)
        rule = f"must be a tuple of {widths.min_len} to {widths.max_len} widths"
    else:
        interval = INTERVALS[field]
        value = interval.low if interval.open_low else interval.low - 1
        value = int(value) if _integer_field(space.value_type(field)) else float(value)
        rule = f"must be {interval.describe()}"
    with pytest.raises(DefinitionError) as info:
        load(tmp_path, fixed({**COMPANIONS.get(field, {}), field: value}))
    assert re.fullmatch(
        r".*" + re.escape(f"bad.toml: [fixed] {field} = ") + ".*" + re.escape(f": {field} {rule}, but got ") + r".*\.",
        str(info.value),
    ), str(info.value)


@pytest.mark.parametrize("field", FIELDS)
def test_a_fixed_field_of_another_type_gets_the_codes_line(tmp_path: Path, field: str) -> None:
    value = wrong_type(field)
    expected = (
        f"bad.toml: [fixed] {field}: {field} takes {space.type_name(space.value_type(field))}, but got {value!r}."
    )
    with pytest.raises(DefinitionError, match=re.escape(expected) + "$"):
        load(tmp_path, fixed({field: value}))


@pytest.mark.parametrize("field", [*FIELDS, *space.DERIVED])
def test_a_field_is_searched_as_documented(tmp_path: Path, field: str) -> None:
    """A field takes its documented value as a categorical choice, and the other types are refused."""
    kinds = toml_tables.search_types(field)
    value = 3 if field in space.DERIVED else other_value(field)
    categorical = f'\n[params.{field}]\ntype = "categorical"\nchoices = [{toml_value(value)}]\n'
    companions = fixed(COMPANIONS[field]) if field in COMPANIONS else BASE
    if not kinds:
        with pytest.raises(DefinitionError, match=rf"\[params\.{field}\] {field} is a tuple field"):
            load(tmp_path, companions + categorical)
        return
    assert load(tmp_path, companions + categorical).params[-1].choices == (space.coerce(field, value),)
    for kind in set(toml_tables.PARAM_TYPES) - set(kinds):
        numeric = f'\n[params.{field}]\ntype = "{kind}"\nlow = 1\nhigh = 2\n'
        with pytest.raises(DefinitionError, match=rf"\[params\.{field}\] {field} takes .*, so type must be"):
            load(tmp_path, companions + numeric)


@pytest.mark.parametrize("key", SEARCH_INTEGERS, ids=lambda key: key.name)
def test_a_search_integer_takes_a_documented_value_and_refuses_one_below_its_minimum(
    tmp_path: Path, key: loader.SearchInteger
) -> None:
    value = key.minimum if key.minimum != key.default else key.minimum + 1
    if key.name == "n_pairs":
        value = 20  # 10 pairs per fold
    text = re.sub(rf"(?m)^{key.name} = .*\n", "", BASE).replace("[search]\n", f"[search]\n{key.name} = {value}\n")
    assert getattr(load(tmp_path, text), key.name) == value
    too_small = text.replace(f"{key.name} = {value}", f"{key.name} = {key.minimum - 1}")
    bound = f"between {key.minimum} and {key.maximum}" if key.maximum is not None else f">= {key.minimum}"
    with pytest.raises(DefinitionError, match=re.escape(f"[search] {key.name} must be an integer {bound}, but got")):
        load(tmp_path, too_small)


def test_the_documented_directions_load(tmp_path: Path) -> None:
    for directions in loader.DIRECTIONS:
        text = BASE.replace("[search]\n", f"[search]\ndirections = {toml_value(list(directions))}\n")
        loaded = load(tmp_path, text)
        assert loaded.directions == directions
        assert loaded.pruner == sampling.default_pruner(len(directions))


OPTION_VALUES = {bool: True, int: 2, float: 0.5}
# What an option needs beside it for Optuna to take it.
OPTION_COMPANIONS = {("successive_halving", "bootstrap_count"): {"min_resource": 1}}


@pytest.mark.filterwarnings("ignore:`.*` has been deprecated:FutureWarning")  # Optuna 5 still takes them
@pytest.mark.parametrize(
    ("table", "kind", "option"),
    [
        (table, kind, option)
        for table, registry in (("sampler", sampling.SAMPLER_OPTIONS), ("pruner", sampling.PRUNER_OPTIONS))
        for kind, options in registry.items()
        for option in (*options, None)
    ],
    ids=lambda part: str(part),
)
def test_a_sampler_or_pruner_option_takes_its_documented_type(
    tmp_path: Path, table: str, kind: str, option: str | None
) -> None:
    base = BASE.replace("[search]", '[params.lr]\ntype = "float"\nlow = 0.01\nhigh = 0.1\nstep = 0.01\n\n[search]')
    text = base + f'[{table}]\ntype = "{kind}"\n'
    if option is None:
        assert getattr(load(tmp_path, text), table) == kind
        return
    types = (sampling.SAMPLER_OPTIONS if table == "sampler" else sampling.PRUNER_OPTIONS)[kind][option]
    options = {**OPTION_COMPANIONS.get((kind, option), {}), option: OPTION_VALUES[types[0]]}
    loaded = load(tmp_path, text + "".join(f"{key} = {toml_value(value)}\n" for key, value in options.items()))
    assert getattr(loaded, f"{table}_options") == options
    with pytest.raises(DefinitionError, match=re.escape(f"[{table}] {option} must be ") + ".*but got 'many'"):
        load(tmp_path, text + f'{option} = "many"\n')
