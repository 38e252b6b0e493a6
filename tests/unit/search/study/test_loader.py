"""studies/*.toml -> StudyDefinition: every shipped study loads, every rule rejects with file and key."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from search.errors import DefinitionError
from search.study.definition import DEFINITION_ATTR, stored_definition
from search.study.loader import STUDIES_DIR, ParamSpec, available_definitions, load_definition, with_overrides

SHIPPED = ("ablation", "architecture", "baseline", "siamese", "smoke")

BASE = """\
name = "t"
description = "a test study"

[search]
n_folds = 2
epochs = 2
n_pairs = 200

[params.lr]
type = "float"
low = 0.01
high = 0.1
log = true
"""


def write(tmp_path: Path, text: str, name: str = "bad.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load_text(tmp_path: Path, text: str) -> object:
    return load_definition(str(write(tmp_path, text)))


# --- shipped studies ---------------------------------------------------------------------------


def test_shipped_studies_are_listed() -> None:
    assert available_definitions() == list(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_study_loads_by_name(name: str) -> None:
    definition = load_definition(name)
    assert definition.name == name
    assert definition.path == STUDIES_DIR / f"{name}.toml"
    assert definition.description
    assert definition.directions == ("maximize",)
    assert len(definition.fingerprint()) == 64


def test_siamese_fidelity_fits_the_time_budget() -> None:
    definition = load_definition("siamese")
    assert definition.n_folds == 4 and 12 <= definition.epochs <= 25 and definition.n_pairs == 1000
    assert (definition.sampler, definition.sampler_options["multivariate"]) == ("tpe", True)
    assert (definition.pruner, definition.screen_folds, definition.scored_folds) == ("median", 1, 2)
    assert definition.pruner_options == {"n_startup_trials": 10, "n_warmup_steps": 6}
    assert definition.fixed["family"] == "siamese"


def test_evaluate_epochs_is_read_validated_and_outside_the_fingerprint(tmp_path: Path) -> None:
    siamese = load_definition("siamese")
    assert siamese.evaluate_epochs is not None and siamese.evaluate_epochs > siamese.epochs
    assert load_definition("baseline").evaluate_epochs is None
    text = (STUDIES_DIR / "siamese.toml").read_text()
    longer = tmp_path / "longer.toml"
    longer.write_text(re.sub(r"evaluate_epochs = \d+", f"evaluate_epochs = {siamese.evaluate_epochs + 20}", text))
    assert load_definition(longer).evaluate_epochs == siamese.evaluate_epochs + 20
    assert load_definition(longer).fingerprint() == siamese.fingerprint()
    zero = tmp_path / "zero.toml"
    zero.write_text(re.sub(r"evaluate_epochs = \d+", "evaluate_epochs = 0", text))
    with pytest.raises(
        DefinitionError, match=r"zero.toml: \[search\] evaluate_epochs must be an integer >= 1, but got 0."
    ):
        load_definition(zero)


def test_smoke_is_tiny() -> None:
    definition = load_definition("smoke")
    assert (definition.n_folds, definition.n_pairs) == (2, 200) and definition.epochs <= 2


def test_ablation_cells_are_the_four_switch_combinations() -> None:
    definition = load_definition("ablation")
    combos = {(c["weight_sharing"], c["aux_loss"]) for c in definition.cells}
    assert combos == {(False, "none"), (True, "none"), (False, "alpha"), (True, "alpha")}
    first = definition.params[:2]
    assert [(p.name, p.type, set(p.choices)) for p in first] == [
        ("weight_sharing", "categorical", {False, True}),
        ("aux_loss", "categorical", {"none", "alpha"}),
    ]


# --- names and paths ---------------------------------------------------------------------------


def test_user_path_loads(tmp_path: Path) -> None:
    definition = load_text(tmp_path, BASE)
    assert definition.name == "t" and definition.n_folds == 2 and definition.n_pairs == 200
    assert definition.params == (ParamSpec(name="lr", field="lr", type="float", low=0.01, high=0.1, log=True),)
    assert (definition.sampler, definition.pruner, definition.seed, definition.data_seed) == ("tpe", "median", 0, 0)


def test_name_defaults_to_the_file_stem(tmp_path: Path) -> None:
    definition = load_definition(str(write(tmp_path, BASE.replace('name = "t"\n', ""), "mine.toml")))
    assert definition.name == "mine"


def test_unknown_name_lists_known_studies() -> None:
    with pytest.raises(
        DefinitionError, match="unknown study 'nope'; known studies: ablation, architecture, baseline, siamese, smoke"
    ):
        load_definition("nope")


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="no such study file"):
        load_definition(str(tmp_path / "absent.toml"))


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match=r"bad\.toml: TOML syntax error: .*at line 7"):
        load_text(tmp_path, BASE.replace("n_pairs = 200", "n_pairs = "))


# --- one reject per rule -----------------------------------------------------------------------

REJECTS = {
    "unknown top-level key": (
        "colour = 1\n" + BASE,
        r"bad\.toml: top level: unknown key 'colour'; allowed: name, description",
    ),
    "unknown search key": (
        BASE.replace("n_pairs = 200", "n_pairs = 200\nfolds = 3"),
        r"\[search\] unknown key 'folds'",
    ),
    "missing epochs": (BASE.replace("epochs = 2\n", ""), r"\[search\] epochs is required"),
    "bad n_folds": (
        BASE.replace("n_folds = 2", "n_folds = 1"),
        r"\[search\] n_folds must be an integer between 2 and 20, but got 1",
    ),
    "bool epochs": (BASE.replace("epochs = 2", "epochs = true"), r"\[search\] epochs must be an integer >= 1"),
    "too few pairs": (BASE.replace("n_pairs = 200", "n_pairs = 15"), r"n_pairs=15 leaves fewer than 10 pairs per fold"),
    "bad directions": (
        BASE.replace("n_pairs = 200", 'n_pairs = 200\ndirections = ["minimize"]'),
        r"directions must be \[\"maximize\"\]",
    ),
    "unknown parameter": (
        BASE.replace("[params.lr]", "[params.lrr]"),
        r"\[params\.lrr\] unknown parameter 'lrr'.*add field",
    ),
    "unknown field": (
        BASE.replace('type = "float"', 'field = "rate"\ntype = "float"'),
        r"\[params\.lr\] field: unknown parameter 'rate'",
    ),
    "inverted range": (
        BASE.replace("high = 0.1", "high = 0.001"),
        r"bad\.toml: \[params\.lr\] low=0\.01 must be below high=0\.001\.",
    ),
    "empty range": (BASE.replace("high = 0.1", "high = 0.01"), r"\[params\.lr\] low=0\.01 must be below high=0\.01"),
    "log range from zero": (
        BASE.replace("low = 0.01", "low = 0.0"),
        r"\[params\.lr\] log = true needs low > 0, but got low=0\.0",
    ),
    "string bound": (BASE.replace("low = 0.01", 'low = "a"'), r"\[params\.lr\] low must be a number, but got 'a'"),
    "missing bound": (BASE.replace("high = 0.1\n", ""), r"\[params\.lr\] high is required"),
    "unknown param type": (
        BASE.replace('type = "float"', 'type = "real"'),
        r"type must be one of float, int, categorical, but got 'real'",
    ),
    "key of another type": (
        BASE.replace("log = true", "log = true\nchoices = [1]"),
        r"\[params\.lr\] unknown key 'choices'; allowed: type, field, when, low",
    ),
    "float for an int field": (
        BASE + '[params.batch_size]\ntype = "float"\nlow = 10\nhigh = 20\n',
        r"batch_size takes an integer, so type must be int or categorical",
    ),
    "range not a whole number of steps": (
        BASE + '[params.batch_size]\ntype = "int"\nlow = 25\nhigh = 110\nstep = 25\n',
        r"\[params\.batch_size\] high - low = 85 must be a whole number of steps of 25",
    ),
    "step with log": (BASE.replace("log = true", "log = true\nstep = 0.01"), r"step and log = true cannot be combined"),
    "empty choices": (
        BASE + '[params.activation]\ntype = "categorical"\nchoices = []\n',
        r"\[params\.activation\] choices must be a non-empty list",
    ),
    "bad choice type": (
        BASE + '[params.batch_norm]\ntype = "categorical"\nchoices = [true, "no"]\n',
        r"\[params\.batch_norm\] choices: batch_norm takes a bool, but got 'no'",
    ),
    "bad choice value": (
        BASE + '[params.activation]\ntype = "categorical"\nchoices = ["relu", "swish"]\n',
        r"\[params\.activation\] choice 'swish': activation must be one of",
    ),
    "repeated choice": (
        BASE + '[params.head]\ntype = "categorical"\nchoices = ["mlp", "mlp"]\n',
        r"choices repeat a value",
    ),
    "tuple field searched": (
        BASE + '[params.hidden]\ntype = "int"\nlow = 1\nhigh = 3\n',
        r"hidden is a tuple field and cannot be searched directly; search n_hidden, hidden_width",
    ),
    "range the config rejects": (
        BASE + '[params.dropout]\ntype = "float"\nlow = 0.0\nhigh = 1.0\n',
        r"\[params\.dropout\] high 1\.0: dropout must be in \[0, 1\)",
    ),
    "unknown sampler": (
        BASE + '[sampler]\ntype = "bayes"\n',
        r"\[sampler\] unknown type 'bayes'; choose one of tpe, random, cmaes, grid, nsga2",
    ),
    "unknown pruner": (
        BASE + '[pruner]\ntype = "patient"\n',
        r"\[pruner\] unknown type 'patient'; choose one of median, successive_halving, hyperband, none",
    ),
    "sampler seed option": (
        BASE + '[sampler]\ntype = "tpe"\nseed = 3\n',
        r"unknown option 'seed' for type 'tpe'.*the seed is set in \[search\]",
    ),
    "option of a wrong type": (
        BASE + '[sampler]\nn_startup_trials = "many"\n',
        r"\[sampler\] n_startup_trials must be int, but got 'many'",
    ),
    "option Optuna rejects": (
        BASE + '[pruner]\ntype = "successive_halving"\nreduction_factor = 1\n',
        r"\[pruner\] Optuna rejects these options",
    ),
    "unknown when reference": (
        BASE + '[params.alpha]\ntype = "float"\nlow = 0.1\nhigh = 2.0\nwhen = {aux_loss = "alpha"}\n',
        r"\[params\.alpha\] when refers to 'aux_loss', which is not a categorical parameter defined above \(defined: none\)",
    ),
    "when value not a choice": (
        BASE
        + '[params.aux_loss]\ntype = "categorical"\nchoices = ["none", "alpha"]\n[params.alpha]\ntype = "float"\nlow = 0.1\nhigh = 2.0\nwhen = {aux_loss = "ratio"}\n',
        r"when aux_loss = 'ratio', but aux_loss takes only 'none', 'alpha'",
    ),
    "fixed value the config rejects": (
        BASE + "[fixed]\ndropout = 1.5\n",
        r"bad\.toml: \[fixed\] dropout = 1\.5: dropout must be in \[0, 1\)",
    ),
    "fixed value of a wrong type": (
        BASE + '[fixed]\nbatch_norm = "yes"\n',
        r"\[fixed\] batch_norm: batch_norm takes a bool, but got 'yes'",
    ),
    "fixed unknown field": (BASE + "[fixed]\nwidth = 3\n", r"\[fixed\] unknown parameter 'width'"),
    "fixed epochs": (BASE + "[fixed]\nepochs = 3\n", r"\[fixed\] epochs is set in \[search\]"),
    "fixed staged_epochs beyond epochs": (
        BASE + "[fixed]\nstaged_epochs = 2\n",
        r"\[fixed\] staged_epochs = 2: staged_epochs must be >= 0 and below epochs \(2\)",
    ),
    "fixed values invalid together": (
        BASE + '[fixed]\nfamily = "mlp"\naux_loss = "alpha"\n',
        r"bad\.toml: \[fixed\] the values together give invalid configs: aux_loss='alpha' needs digit outputs",
    ),
    "fixed and searched": (
        BASE + "[fixed]\nlr = 0.1\n",
        r"\[params\.lr\] sets lr, which \[fixed\] lr also sets; search it or fix it, not both",
    ),
    "fixed tuple and its derived param": (
        BASE + '[fixed]\nconv_channels = [8, 16]\n[params.n_conv]\ntype = "int"\nlow = 2\nhigh = 3\n',
        r"\[params\.n_conv\] sets conv_channels, which \[fixed\] conv_channels also sets",
    ),
    "incompatible combination": (
        BASE
        + '[params.family]\ntype = "categorical"\nchoices = ["mlp", "siamese"]\n[params.aux_loss]\ntype = "categorical"\nchoices = ["none", "alpha"]\n',
        r"the space allows family='mlp', aux_loss='alpha' .*needs digit outputs.*Add a `when` condition",
    ),
    "one field set twice": (
        BASE
        + '[params.optimizer]\ntype = "categorical"\nchoices = ["sgd", "adam"]\n[params.lr_adam]\nfield = "lr"\ntype = "float"\nlow = 0.001\nhigh = 0.01\nwhen = {optimizer = "adam"}\n',
        r"\[params\.lr\] and \[params\.lr_adam\] both set lr when optimizer='adam'; make their `when` conditions exclusive",
    ),
    "never suggested": (
        BASE + '[params.family]\ntype = "categorical"\nchoices = ["mlp", "cnn2ch", "siamese"]\n'
        '[params.tower]\ntype = "categorical"\nchoices = ["conv", "fc"]\nwhen = {family = "siamese"}\n'
        '[params.pure_conv]\ntype = "categorical"\nchoices = [true, false]\nwhen = {family = "cnn2ch", tower = "conv"}\n',
        r"\[params\.pure_conv\] is never suggested",
    ),
    "two objectives with cma-es": (
        BASE.replace("n_pairs = 200", 'n_pairs = 200\ndirections = ["maximize", "minimize"]')
        + '[sampler]\ntype = "cmaes"\n',
        r"\[sampler\] type 'cmaes' handles one objective",
    ),
    "two objectives with a pruner": (
        BASE.replace("n_pairs = 200", 'n_pairs = 200\ndirections = ["maximize", "minimize"]')
        + '[pruner]\ntype = "median"\n',
        r"Optuna cannot prune trials with two objectives",
    ),
    "grid over a continuous float": (
        BASE + '[sampler]\ntype = "grid"\n',
        r"\[params\.lr\] is a continuous float, which the grid sampler cannot enumerate",
    ),
    "one cell": (BASE + "[[cells]]\nweight_sharing = true\n", r"\[\[cells\]\] must be at least two tables"),
    "cells with other keys": (
        BASE + '[[cells]]\nweight_sharing = true\n[[cells]]\naux_loss = "alpha"\n',
        r"cell 2 sets \['aux_loss'\], but cell 1 sets \['weight_sharing'\]",
    ),
    "repeated cell": (
        BASE + "[[cells]]\nweight_sharing = true\n[[cells]]\nweight_sharing = true\n",
        r"cell 2 repeats cell 1",
    ),
    "cell parameter searched": (
        BASE
        + '[[cells]]\nweight_sharing = true\n[[cells]]\nweight_sharing = false\n[params.weight_sharing]\ntype = "categorical"\nchoices = [true]\n',
        r"\[params\.weight_sharing\] weight_sharing is already a \[\[cells\]\] parameter",
    ),
    "cell parameter fixed": (
        BASE + "[fixed]\nweight_sharing = true\n[[cells]]\nweight_sharing = true\n[[cells]]\nweight_sharing = false\n",
        r"\[\[cells\]\] set weight_sharing, which \[fixed\] weight_sharing also sets",
    ),
    "cells with hyperband": (
        BASE + '[pruner]\ntype = "hyperband"\n[[cells]]\nweight_sharing = true\n[[cells]]\nweight_sharing = false\n',
        r"hyperband keeps brackets of its own",
    ),
    "enqueue an unknown param": (
        BASE + "[[enqueue]]\nlrr = 0.05\n",
        r"\[\[enqueue\]\] point 1: 'lrr' is not a searched parameter; searched: lr",
    ),
    "enqueue out of range": (
        BASE + "[[enqueue]]\nlr = 0.5\n",
        r"\[\[enqueue\]\] point 1: lr=0\.5 must be a float in \[0\.01, 0\.1\]",
    ),
    "enqueue not a choice": (
        BASE + '[params.head]\ntype = "categorical"\nchoices = ["mlp", "prob"]\n[[enqueue]]\nhead = "max"\n',
        r"point 1: head='max' is not one of its choices",
    ),
    "enqueue an inactive param": (
        BASE
        + '[params.aux_loss]\ntype = "categorical"\nchoices = ["none", "alpha"]\n[params.alpha]\ntype = "float"\nlow = 0.1\nhigh = 2.0\nwhen = {aux_loss = "alpha"}\n'
        '[[enqueue]]\naux_loss = "none"\nalpha = 1.0\n',
        r"point 1: alpha would not be suggested with the other values given",
    ),
    "enqueue with cells": (
        BASE + "[[cells]]\nweight_sharing = true\n[[cells]]\nweight_sharing = false\n[[enqueue]]\nlr = 0.05\n",
        r"\[\[enqueue\]\] cannot be combined with \[\[cells\]\]",
    ),
}


@pytest.mark.parametrize("case", REJECTS, ids=list(REJECTS))
def test_reject(tmp_path: Path, case: str) -> None:
    text, message = REJECTS[case]
    with pytest.raises(DefinitionError, match=message) as info:
        load_text(tmp_path, text)
    assert "\n" not in str(info.value)  # one line


ACCEPTS = {
    "conditional alpha": BASE
    + '[params.aux_loss]\ntype = "categorical"\nchoices = ["none", "alpha"]\n[params.alpha]\ntype = "float"\nlow = 0.1\nhigh = 2.0\nwhen = {aux_loss = "alpha"}\n',
    "aux loss only where there are digit outputs": (
        BASE + '[params.family]\ntype = "categorical"\nchoices = ["mlp", "siamese"]\n'
        '[params.aux_loss]\ntype = "categorical"\nchoices = ["none", "alpha"]\nwhen = {family = "siamese"}\n'
    ),
    "exclusive learning rates": (
        BASE.replace(
            "[params.lr]", '[params.optimizer]\ntype = "categorical"\nchoices = ["sgd", "adam"]\n\n[params.lr]'
        ).replace("log = true", 'log = true\nwhen = {optimizer = "sgd"}')
        + '[params.lr_adam]\nfield = "lr"\ntype = "float"\nlow = 0.001\nhigh = 0.01\nwhen = {optimizer = ["adam"]}\n'
    ),
    "derived tower params": BASE
    + '[fixed]\nn_conv = 3\n[params.conv_width]\ntype = "int"\nlow = 8\nhigh = 32\nlog = true\n',
    "int choices for a float field": BASE + '[params.alpha]\ntype = "categorical"\nchoices = [1, 2.5]\n',
    "grid over finite values": BASE.replace("log = true", "step = 0.03") + '[sampler]\ntype = "grid"\n',
    "two objectives": BASE.replace("n_pairs = 200", 'n_pairs = 200\ndirections = ["maximize", "minimize"]')
    + '[sampler]\ntype = "nsga2"\npopulation_size = 8\n',
    "staged epochs below epochs": BASE + "[fixed]\nstaged_epochs = 1\n",
    "a fixed value beside the fixed field it needs": BASE + '[fixed]\nfamily = "cnn2ch"\npredict_digits = true\n',
    "a searched value beside the fixed field it needs": BASE
    + '[fixed]\nfamily = "cnn2ch"\n[params.predict_digits]\ntype = "categorical"\nchoices = [true, false]\n',
    "auto min_resource": BASE + '[pruner]\ntype = "successive_halving"\nmin_resource = "auto"\nreduction_factor = 3\n',
    "starting points": BASE + "[[enqueue]]\nlr = 0.05\n[[enqueue]]\nlr = 0.02\n",
}


@pytest.mark.parametrize("case", ACCEPTS, ids=list(ACCEPTS))
def test_accept(tmp_path: Path, case: str) -> None:
    definition = load_text(tmp_path, ACCEPTS[case])
    assert definition.params


def test_accepted_values_are_normalised(tmp_path: Path) -> None:
    definition = load_text(tmp_path, ACCEPTS["int choices for a float field"] + "[fixed]\nconv_channels = [8, 16]\n")
    alpha = next(p for p in definition.params if p.name == "alpha")
    assert alpha.choices == (1.0, 2.5) and all(type(c) is float for c in alpha.choices)
    assert definition.fixed == {"conv_channels": (8, 16)}


def test_two_objectives_default_to_no_pruner(tmp_path: Path) -> None:
    definition = load_text(
        tmp_path, BASE.replace("n_pairs = 200", 'n_pairs = 200\ndirections = ["maximize", "minimize"]')
    )
    assert definition.directions == ("maximize", "minimize") and definition.pruner == "none"


# --- overrides and fingerprint -----------------------------------------------------------------


def test_with_overrides_changes_fidelity_and_revalidates(tmp_path: Path) -> None:
    definition = load_definition("siamese")
    quick = with_overrides(definition, epochs=2, n_folds=2)
    assert (quick.epochs, quick.n_folds, quick.params) == (2, 2, definition.params)
    assert with_overrides(definition) is definition
    staged = load_text(tmp_path, BASE.replace("epochs = 2", "epochs = 5") + "[fixed]\nstaged_epochs = 3\n")
    with pytest.raises(DefinitionError, match=r"with epochs=2, n_folds=2\): \[fixed\] staged_epochs = 3"):
        with_overrides(staged, epochs=2)
    with pytest.raises(DefinitionError, match="n_folds must be an integer between 2 and 20"):
        with_overrides(definition, n_folds=1)


def test_fingerprint_is_stable() -> None:
    assert load_definition("siamese").fingerprint() == load_definition("siamese").fingerprint()
    assert len({load_definition(name).fingerprint() for name in SHIPPED}) == len(SHIPPED)


def test_fingerprint_ignores_labels_order_and_seed(tmp_path: Path) -> None:
    extra = '[params.dropout]\ntype = "float"\nlow = 0.0\nhigh = 0.5\n'
    reference = load_text(tmp_path, BASE + extra).fingerprint()
    relabelled = BASE.replace('name = "t"', 'name = "u"').replace("a test study", "another text") + extra
    reordered = BASE.replace("[params.lr]", extra + "\n[params.lr]").replace(
        "low = 0.01\nhigh = 0.1", "high = 0.1\nlow = 0.01"
    )
    reseeded = BASE.replace("n_pairs = 200", "n_pairs = 200\nseed = 7") + extra + '[sampler]\ntype = "random"\n'
    for text in (relabelled, reordered, reseeded):
        assert load_text(tmp_path, text).fingerprint() == reference


def test_fingerprint_follows_what_a_trial_scores(tmp_path: Path) -> None:
    reference = load_text(tmp_path, BASE)
    changed = [
        BASE.replace("high = 0.1", "high = 0.2"),
        BASE.replace("log = true", "log = false"),
        BASE + '[params.dropout]\ntype = "float"\nlow = 0.0\nhigh = 0.5\n',
        BASE + "[fixed]\nbatch_norm = true\n",
        BASE.replace("n_pairs = 200", "n_pairs = 300"),
        BASE.replace("n_pairs = 200", "n_pairs = 200\ndata_seed = 1"),
        BASE.replace("n_pairs = 200", 'n_pairs = 200\ndirections = ["maximize", "minimize"]'),
    ]
    prints = {load_text(tmp_path, text).fingerprint() for text in changed}
    prints |= {with_overrides(reference, epochs=1).fingerprint(), with_overrides(reference, n_folds=3).fingerprint()}
    assert reference.fingerprint() not in prints and len(prints) == len(changed) + 2


def test_error_names_a_relative_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "studies").mkdir()
    write(tmp_path / "studies", BASE.replace("high = 0.1", "high = 0.001"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        DefinitionError, match=re.escape("studies/bad.toml: [params.lr] low=0.01 must be below high=0.001.")
    ):
        load_definition("studies/bad.toml")


def test_siamese_starts_from_the_known_good_recipe() -> None:
    first = load_definition("siamese").enqueue[0]
    assert first["weight_sharing"] is True and first["aux_loss"] == "alpha" and first["head"] == "prob"
    assert first["optimizer"] == "sgd" and first["batch_norm"] is True and first["shift"] == 1
    augmented = load_definition("siamese").enqueue[1]
    assert {k: augmented[k] for k in ("schedule", "rotate", "scale", "weight_decay")} == {
        "schedule": "cosine",
        "rotate": 10.0,
        "scale": 0.1,
        "weight_decay": 5e-4,
    }
    assert "gamma" not in augmented  # a cosine schedule does not use it


@pytest.mark.parametrize("name", available_definitions())
def test_a_definition_comes_back_whole_from_its_stored_form(name: str) -> None:
    """What `prepare_study` stores in a study (JSON) gives back the very definition: equal, same fingerprint."""
    definition = load_definition(name)
    stored = json.loads(json.dumps(definition.to_stored()))  # as the storage keeps a user attr

    back = stored_definition({DEFINITION_ATTR: stored})

    assert back == definition and back.fingerprint() == definition.fingerprint()
    assert stored_definition({}) is None  # a study created before studies kept their definition
