"""trial -> (NetConfig, TrainConfig): every point of every shipped space builds valid configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from models.errors import ConfigError
from models.nets.configs import NetConfig, TrainConfig, check_compatible
from search.study.loader import ParamSpec, StudyDefinition, load_definition, with_overrides
from search.study.space import DERIVED, coerce, configs_for_point, suggest_configs

optuna.logging.set_verbosity(optuna.logging.WARNING)

N_ASKS = {"smoke": 40, "siamese": 150, "baseline": 150, "architecture": 300, "ablation": 80}


def ask_many(
    definition: StudyDefinition, n: int, seed: int = 0
) -> list[tuple[optuna.trial.Trial, NetConfig, TrainConfig]]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    points = []
    for _ in range(n):
        trial = study.ask()
        net, train = suggest_configs(trial, definition)
        points.append((trial, net, train))
    return points


def expected_value(definition: StudyDefinition, params: dict[str, Any], field: str) -> Any:
    """What a field should hold for these trial params: the param that set it, else fixed, else None."""
    for spec in definition.params:
        if spec.field == field and spec.name in params:
            return params[spec.name]
    return definition.fixed.get(field)


@pytest.mark.parametrize("name", list(N_ASKS))
def test_every_suggested_point_builds_valid_configs(name: str) -> None:
    definition = load_definition(name)
    specs = {spec.name: spec for spec in definition.params}
    points = ask_many(definition, N_ASKS[name])
    for trial, net, train in points:
        assert isinstance(net, NetConfig) and isinstance(train, TrainConfig)
        check_compatible(net, train)
        assert train.epochs == definition.epochs
        # a parameter is suggested exactly when its condition holds
        for spec in definition.params:
            assert (spec.name in trial.params) == spec.is_active(trial.params), (spec.name, trial.params)
        assert set(trial.params) <= set(specs)
        # each suggested value reaches its field; fixed values are kept
        for field in {spec.field for spec in definition.params} | set(definition.fixed):
            want = expected_value(definition, trial.params, field)
            if want is None or field in DERIVED:
                continue
            assert getattr(net if hasattr(net, field) else train, field) == want, field
    # the conditional parameters do get suggested somewhere, and values vary
    seen = {name for trial, _, _ in points for name in trial.params}
    assert seen == set(specs)
    assert len({(net, train) for _, net, train in points}) == len(points)


def test_conditions_of_the_siamese_space() -> None:
    definition = load_definition("siamese")
    for trial, net, train in ask_many(definition, 120, seed=1):
        assert net.family == "siamese" and net.tower == "conv"
        assert ("alpha" in trial.params) == (
            train.aux_loss in ("alpha", "normalized")
        )  # both weight the digit loss by alpha
        assert ("lr_sgd" in trial.params) == (train.optimizer == "sgd") != ("lr_adaptive" in trial.params)
        assert ("rmsprop_momentum" in trial.params) == (train.optimizer == "rmsprop")
        assert ("head_hidden" in trial.params) == (net.head == "mlp")
        assert 2 <= len(net.conv_channels) <= 3 and 0 <= train.shift <= 2
        assert ("gamma" in trial.params) == (train.schedule == "exponential")
        assert 0 <= train.rotate <= 20 and 0 <= train.scale <= 0.2


def test_architecture_suggests_only_what_the_family_uses() -> None:
    definition = load_definition("architecture")
    families = set()
    for trial, net, train in ask_many(definition, 200, seed=2):
        families.add((net.family, net.tower if net.family == "siamese" else None))
        uses_hidden = net.family == "mlp" or (net.family == "siamese" and net.tower == "fc")
        uses_conv = net.family == "cnn2ch" or (net.family == "siamese" and net.tower == "conv")
        assert any(p.startswith("n_hidden") for p in trial.params) == uses_hidden
        assert any(p.startswith("n_conv") for p in trial.params) == uses_conv
        assert ("weight_sharing" in trial.params) == (net.family == "siamese")
        assert ("pure_conv" in trial.params) == (net.family == "cnn2ch")
        if train.aux_loss != "none":
            assert net.family == "siamese" or net.intermediate_head
    assert families == {("mlp", None), ("cnn2ch", None), ("siamese", "conv"), ("siamese", "fc")}


def test_baseline_covers_the_published_starting_points() -> None:
    definition = load_definition("baseline")
    points = ask_many(definition, 200, seed=3)
    assert {net.family for _, net, _ in points} == {"mlp", "cnn2ch"}
    assert "sigmoid" in {net.activation for _, net, _ in points}
    cnn = [(trial, net, train) for trial, net, train in points if net.family == "cnn2ch"]
    assert {len(net.conv_channels) for _, net, _ in cnn} == {2, 3, 4}
    assert any(net.pure_conv for _, net, _ in cnn) and any(net.intermediate_head for _, net, _ in cnn)
    for trial, net, train in cnn:
        assert (train.aux_loss == "alpha") == net.intermediate_head == ("alpha" in trial.params)


def in_range(spec: ParamSpec, value: Any) -> bool:
    if spec.type == "categorical":
        return value in spec.choices
    return spec.low <= value <= spec.high


@pytest.mark.parametrize("name", ["siamese", "ablation"])
def test_known_good_region_is_inside_the_space(name: str) -> None:
    """SGD lr 0.05-0.3 with momentum, batch 50-200, batch norm, leaky_relu, prob head, alpha 0.5-2, shift 1."""
    definition = load_definition(name)
    specs = {spec.name: spec for spec in definition.params}
    for lr in (0.05, 0.3):
        for batch_size, alpha in ((50, 0.5), (200, 2.0)):
            point = {
                "weight_sharing": True,
                "aux_loss": "alpha",
                "alpha": alpha,
                "optimizer": "sgd",
                "lr_sgd": lr,
                "momentum": 0.9,
                "batch_size": batch_size,
                "gamma": 0.95,
                "activation": "leaky_relu",
                "batch_norm": True,
                "dropout": 0.0,
                "head": "prob",
                "n_conv": 2,
                "conv_width": 32,
                "fc_width": 128,
                "shift": 1,
            }  # fmt: skip (one point, several parameters to a line)
            if "weight_decay" in specs:  # siamese searches it and the augmentation; the ablation does not
                del point["gamma"]  # siamese's schedules follow the fraction of training done: no per-epoch gamma
                point.update(weight_decay=5e-4, schedule="geometric", decay_to=0.3, rotate=10.0, scale=0.1)
            assert set(point) == {s.name for s in definition.params if s.is_active(point)}
            assert all(in_range(specs[k], v) for k, v in point.items()), point
            net, train = configs_for_point(definition, point)
            assert (net.conv_channels, train.lr, train.aux_loss, net.head) == ((32, 64), lr, "alpha", "prob")


def test_derived_parameters_build_tuple_fields(tmp_path: Path) -> None:
    path = tmp_path / "derived.toml"
    path.write_text(
        '[search]\nn_folds = 2\nepochs = 2\nn_pairs = 200\n[fixed]\nfamily = "mlp"\nn_conv = 3\n'
        '[params.conv_width]\ntype = "int"\nlow = 8\nhigh = 16\n[params.n_hidden]\ntype = "int"\nlow = 1\nhigh = 3\n'
        '[params.hidden_width]\ntype = "int"\nlow = 20\nhigh = 40\n'
    )
    definition = load_definition(str(path))
    net, _ = configs_for_point(definition, {"conv_width": 10, "n_hidden": 3, "hidden_width": 25})
    assert net.conv_channels == (10, 20, 40) and net.hidden == (25, 25, 25)
    net, _ = configs_for_point(definition, {"conv_width": 8, "n_hidden": 1, "hidden_width": 20})
    assert net.conv_channels == (8, 16, 32) and net.hidden == (20,)


def test_epochs_override_reaches_the_train_config() -> None:
    quick = with_overrides(load_definition("smoke"), epochs=1)
    ((_, _, train),) = ask_many(quick, 1)
    assert train.epochs == 1


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("lr", 1, 1.0),
        ("batch_norm", True, True),
        ("hidden", [8, 4], (8, 4)),
        ("n_conv", 3, 3),
        ("activation", "elu", "elu"),
    ],
)
def test_coerce_accepts(name: str, value: Any, expected: Any) -> None:
    result = coerce(name, value)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("lr", "0.1", "lr takes a number"),
        ("batch_size", 1.5, "batch_size takes an integer"),
        ("batch_size", True, "batch_size takes an integer"),
        ("batch_norm", 1, "batch_norm takes a bool"),
        ("hidden", [8, "4"], "hidden takes a list of integers"),
    ],
)  # fmt: skip (a table of cases, several to a line)
def test_coerce_rejects(name: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        coerce(name, value)
