"""Tiny studies for the evaluation, report and CLI tests: trials added directly, as `search run` would leave them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution

from models.nets.configs import NetConfig, TrainConfig
from search.run.runner import prepare_study
from search.storage.studies import open_storage
from search.study.definition import StudyDefinition
from search.study.record import TrialRecord

N_PAIRS = 100  # pairs per draw in the library tests (the CLI always uses 1,000)


def tiny_configs(
    *,
    weight_sharing: bool = True,
    aux_loss: str = "alpha",
    alpha: float = 1.0,
    lr: float = 0.05,
    epochs: int = 1,
    batch_size: int = 100,
):
    """A siamese net of a few thousand parameters that trains an epoch on 100 pairs in a blink."""
    net = NetConfig(conv_channels=(4, 8), fc_width=16, head_hidden=8, weight_sharing=weight_sharing)
    train = TrainConfig(lr=lr, epochs=epochs, aux_loss=aux_loss, alpha=alpha, batch_size=batch_size)
    return net, train


def add_trials(
    storage_url: str,
    study_name: str,
    trials: Iterable[Mapping[str, Any]],
    *,
    directions=("maximize",),
    definition: StudyDefinition | None = None,
) -> optuna.Study:
    """Create the study and add one COMPLETE trial per entry: params (weight_sharing, aux_loss, alpha, lr), value
    (or values), and optionally the configuration's epochs and batch_size and the trial's curve.

    With `definition` (named `study_name`) the study is created as `search run` creates it, keeping the
    definition; without, it is a study that keeps none (as studies created before they kept it).
    """
    if definition is not None:
        assert definition.name == study_name and tuple(directions) == definition.directions
        study = prepare_study(open_storage(storage_url), definition)
    else:
        study = optuna.create_study(study_name=study_name, storage=storage_url, directions=list(directions))
    for spec in trials:
        params = {key: spec[key] for key in ("weight_sharing", "aux_loss", "alpha", "lr") if key in spec}
        net, train = tiny_configs(**params, epochs=spec.get("epochs", 1), batch_size=spec.get("batch_size", 100))
        distributions = {
            "weight_sharing": CategoricalDistribution([True, False]),
            "aux_loss": CategoricalDistribution(["none", "alpha"]),
            "alpha": FloatDistribution(0.1, 10.0, log=True),
            "lr": FloatDistribution(1e-6, 1.0, log=True),
        }
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions={key: distributions[key] for key in params},
                values=spec["values"] if "values" in spec else None,
                value=spec.get("value"),
                user_attrs=TrialRecord(
                    n_params=1000, net_config=net.to_dict(), train_config=train.to_dict()
                ).to_user_attrs(),
                intermediate_values=spec.get("curve"),
            )
        )
    return study


def own_ablation(directory: Path) -> StudyDefinition:
    """The user's own definition under a shipped name: `smoke` renamed "ablation", with two cells of its own
    (weight sharing on and off, where studies/ablation.toml has four) and evaluate_epochs = 2 (none there)."""
    from search.study.loader import STUDIES_DIR, load_definition

    text = (STUDIES_DIR / "smoke.toml").read_text()
    searched = '[params.weight_sharing]\ntype = "categorical"\nchoices = [true, false]\n'
    assert searched in text and "evaluate_epochs = 3" in text
    text = text.replace('name = "smoke"', 'name = "ablation"').replace("evaluate_epochs = 3", "evaluate_epochs = 2")
    path = directory / "my.toml"
    path.write_text(text.replace(searched, "[[cells]]\nweight_sharing = true\n\n[[cells]]\nweight_sharing = false\n"))
    definition = load_definition(path)
    assert definition.name == "ablation" and definition.cells == ({"weight_sharing": True}, {"weight_sharing": False})
    return definition


OWN_ABLATION_TRIALS = [  # trials of `own_ablation`'s study: the best of cell weight_sharing=True is trial 2
    {"weight_sharing": ws, "aux_loss": "alpha", "lr": lr, "value": value}
    for ws, lr, value in ((True, 0.05, 0.7), (False, 0.06, 0.6), (True, 0.07, 0.8))
]


def claims_of(url: str, pid: int) -> int:
    """How many units of work (chunks of draws, selection runs) the process `pid` holds a claim on."""
    import sqlalchemy

    from search.evaluation.claims import ClaimRow

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            holders = connection.execute(sqlalchemy.select(ClaimRow.holder)).scalars().all()
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.ProgrammingError):  # no table yet (SQLite, PostgreSQL)
        return 0
    finally:
        engine.dispose()
    return sum(holder.split("|")[1] == str(pid) for holder in holders)


PROBED_MODULES = ("torch", "torch._dynamo", "sklearn")


def train_repeat_and_list_modules(**kwargs: Any) -> tuple[list[str], list[float | None], list[str]]:
    """A selection repeat run as a pool's job, with which of PROBED_MODULES the process had loaded before
    and after it: (before, fold accuracies, after)."""
    import sys

    from search.evaluation.selection import train_repeat

    before = [name for name in PROBED_MODULES if name in sys.modules]
    accuracies = train_repeat(**kwargs)
    return before, accuracies, [name for name in PROBED_MODULES if name in sys.modules]
