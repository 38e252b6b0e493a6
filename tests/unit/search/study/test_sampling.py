"""Samplers, pruners and the ablation's cell wrappers, on in-memory studies (no training)."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from search.errors import DefinitionError
from search.study.cells import cell_index
from search.study.loader import StudyDefinition, load_definition
from search.study.sampling import CellPruner, CellSampler, grid_search_space, study_pruner, study_sampler
from search.study.space import suggest_configs

optuna.logging.set_verbosity(optuna.logging.WARNING)

HEAD = "[search]\nn_folds = 2\nepochs = 4\nn_pairs = 200\n{search}\n[sampler]\n{sampler}\n[pruner]\n{pruner}\n"
SPACE = (
    '[params.aux_loss]\ntype = "categorical"\nchoices = ["none", "alpha"]\n'
    '[params.alpha]\ntype = "float"\nlow = 0.5\nhigh = 2.0\nstep = 0.5\nwhen = {aux_loss = "alpha"}\n'
    '[params.batch_size]\ntype = "int"\nlow = 50\nhigh = 100\nstep = 25\n'
)


def definition(
    tmp_path: Path, *, sampler: str = 'type = "tpe"', pruner: str = 'type = "median"', search: str = "", extra: str = ""
) -> StudyDefinition:
    path = tmp_path / "study.toml"
    path.write_text(HEAD.format(search=search, sampler=sampler, pruner=pruner) + SPACE + extra)
    return load_definition(str(path))


def first_params(sampler: optuna.samplers.BaseSampler, d: StudyDefinition, n: int = 3) -> list[dict[str, Any]]:
    study = optuna.create_study(sampler=sampler, directions=list(d.directions))
    params = []
    for _ in range(n):
        trial = study.ask()
        suggest_configs(trial, d)
        params.append(trial.params)
    return params


# --- samplers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sampler", "search", "cls"),
    [
        ('type = "tpe"', "", optuna.samplers.TPESampler),
        ('type = "random"', "", optuna.samplers.RandomSampler),
        ('type = "grid"', "", optuna.samplers.GridSampler),
        ('type = "nsga2"\npopulation_size = 4', 'directions = ["maximize", "minimize"]', optuna.samplers.NSGAIISampler),
        ('type = "tpe"', 'directions = ["maximize", "minimize"]', optuna.samplers.TPESampler),
    ],
)
def test_every_sampler_builds_and_is_seeded(tmp_path: Path, sampler: str, search: str, cls: type) -> None:
    pruner = 'type = "none"' if "minimize" in search else 'type = "median"'
    d = definition(tmp_path, sampler=sampler, search=search, pruner=pruner)
    assert type(study_sampler(d)) is cls
    assert first_params(study_sampler(d), d) == first_params(study_sampler(d), d)
    assert first_params(study_sampler(d, seed=d.seed), d) == first_params(study_sampler(d), d)


def test_a_worker_seed_changes_the_stream(tmp_path: Path) -> None:
    d = definition(tmp_path, sampler='type = "random"')
    streams = {str(first_params(study_sampler(d, seed=seed), d, n=6)) for seed in range(4)}
    assert len(streams) == 4


def _joint_space(sampler: optuna.samplers.BaseSampler, d: StudyDefinition) -> set[str]:
    """The parameters TPE models jointly once trials with and without the conditional `alpha` are complete."""
    study = optuna.create_study(sampler=sampler, direction="maximize")
    for aux_loss in ("none", "alpha", "none", "alpha"):
        study.enqueue_trial({"aux_loss": aux_loss})
        trial = study.ask()
        suggest_configs(trial, d)
        study.tell(trial, 0.5)
    study.ask()
    return set(sampler.infer_relative_search_space(study, study.get_trials(deepcopy=False)[-1]))


def test_tpe_defaults_to_multivariate_grouped_for_conditional_spaces(tmp_path: Path) -> None:
    """Multivariate: the parameters are modelled jointly. Grouped: the conditional alpha too, where a
    plain multivariate TPE models only the parameters every trial has, and a univariate one none."""
    assert _joint_space(study_sampler(definition(tmp_path)), definition(tmp_path)) == {
        "aux_loss",
        "alpha",
        "batch_size",
    }
    ungrouped = definition(tmp_path, sampler='type = "tpe"\ngroup = false')
    assert _joint_space(study_sampler(ungrouped), ungrouped) == {"aux_loss", "batch_size"}
    univariate = definition(tmp_path, sampler='type = "tpe"\nmultivariate = false')
    assert _joint_space(study_sampler(univariate), univariate) == set()


def test_cmaes_builds(tmp_path: Path) -> None:  # cmaes is a dependency of the project
    d = definition(tmp_path, sampler='type = "cmaes"\nn_startup_trials = 2', extra="")
    assert isinstance(study_sampler(d), optuna.samplers.CmaEsSampler)


def test_grid_enumerates_finite_params_and_covers_the_grid(tmp_path: Path) -> None:
    d = definition(tmp_path, sampler='type = "grid"')
    space = grid_search_space(d)
    assert space == {"aux_loss": ["none", "alpha"], "alpha": [0.5, 1.0, 1.5, 2.0], "batch_size": [50, 75, 100]}
    seen = {(p["aux_loss"], p.get("alpha"), p["batch_size"]) for p in first_params(study_sampler(d), d, n=24)}
    wanted = {("none", None, b) for b in (50, 75, 100)} | {
        ("alpha", a, b) for a in (0.5, 1.0, 1.5, 2.0) for b in (50, 75, 100)
    }
    assert seen == wanted


# --- pruners -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pruner", "cls"),
    [
        ('type = "median"\nn_startup_trials = 2\nn_warmup_steps = 1', optuna.pruners.MedianPruner),
        ('type = "successive_halving"\nreduction_factor = 2', optuna.pruners.SuccessiveHalvingPruner),
        ('type = "hyperband"\nmin_resource = 1', optuna.pruners.HyperbandPruner),
        ('type = "none"', optuna.pruners.NopPruner),
    ],
)
def test_every_pruner_builds(tmp_path: Path, pruner: str, cls: type) -> None:
    assert type(study_pruner(definition(tmp_path, pruner=pruner))) is cls


def _prune_decisions(pruner: optuna.pruners.BasePruner) -> list[bool]:
    """Whether each of 24 trials (seeded curves over 4 epochs, as a definition with epochs = 4 trains) is pruned."""
    rng = np.random.default_rng(0)
    study = optuna.create_study(study_name="brackets", pruner=pruner, direction="maximize")
    decisions = []
    for _ in range(24):
        trial, pruned = study.ask(), False
        for step, value in enumerate(np.cumsum(rng.uniform(0.0, 0.2, 4))):
            trial.report(float(value), step)
            if trial.should_prune():
                pruned = True
                break
        study.tell(trial, state=TrialState.PRUNED) if pruned else study.tell(trial, float(value))
        decisions.append(pruned)
    return decisions


def test_hyperband_runs_to_the_epochs(tmp_path: Path) -> None:
    """Without max_resource, hyperband's brackets end at the definition's epochs (4), not at Optuna's guess."""
    ours = _prune_decisions(
        study_pruner(definition(tmp_path, pruner='type = "hyperband"\nmin_resource = 1\nreduction_factor = 2'))
    )
    assert ours == _prune_decisions(optuna.pruners.HyperbandPruner(min_resource=1, max_resource=4, reduction_factor=2))
    assert ours != _prune_decisions(optuna.pruners.HyperbandPruner(min_resource=1, max_resource=16, reduction_factor=2))
    assert any(ours) and not all(ours)


# --- the ablation's cells ----------------------------------------------------------------------


def cell_of(trial: optuna.trial.BaseTrial) -> tuple[bool, str]:
    return trial.params["weight_sharing"], trial.params["aux_loss"]


def test_ablation_cells_get_equal_shares_of_concurrent_trials() -> None:
    d = load_definition("ablation")
    study = optuna.create_study(sampler=study_sampler(d), pruner=study_pruner(d), direction="maximize")
    trials = [study.ask() for _ in range(40)]  # all running at once, as with 40 workers
    points = [suggest_configs(trial, d) for trial in trials]
    counts = Counter(cell_of(trial) for trial in trials)
    assert counts == {(False, "none"): 10, (True, "none"): 10, (False, "alpha"): 10, (True, "alpha"): 10}
    for trial, (net, train) in zip(trials, points, strict=True):
        assert (net.weight_sharing, train.aux_loss) == cell_of(trial) == tuple(d.cells[trial.number % 4].values())
        assert ("alpha" in trial.params) == (train.aux_loss == "alpha")
    for cell in counts:  # the remaining parameters vary within every cell
        members = [trial.params for trial in trials if cell_of(trial) == cell]
        assert len({p["dropout"] for p in members}) == 10 and len({p["optimizer"] for p in members}) > 1


def test_ablation_cells_stay_equal_when_trials_finish() -> None:
    d = load_definition("ablation")
    study = optuna.create_study(sampler=study_sampler(d), pruner=study_pruner(d), direction="maximize")
    for i in range(60):
        trial = study.ask()
        _, train = suggest_configs(trial, d)
        if i % 7 == 3:
            study.tell(trial, state=TrialState.FAIL)
        else:  # a made-up score, so that each cell's TPE leaves its startup phase
            study.tell(trial, train.lr * (2 if train.aux_loss == "alpha" else 1))
    assert set(Counter(cell_of(t) for t in study.trials).values()) == {15}
    assert len({t.params["lr_sgd"] for t in study.trials if "lr_sgd" in t.params}) > 10


def test_a_retried_trial_stays_in_its_cell() -> None:
    """The runner re-enqueues an abandoned trial with its params; the retry must not join another cell."""
    d = load_definition("ablation")
    sampler = study_sampler(d)
    study = optuna.create_study(sampler=sampler, pruner=study_pruner(d), direction="maximize")
    first = study.ask()  # number 0 -> cell 0
    suggest_configs(first, d)
    study.tell(first, state=TrialState.FAIL)
    study.enqueue_trial(first.params)
    retry = study.ask()  # number 1, which would be cell 1
    suggest_configs(retry, d)
    assert retry.number == 1 and retry.params == first.params
    assert cell_of(retry) == tuple(d.cells[0].values())
    assert cell_index(d.cells, study.trials[1].params) == 0
    fresh = study.ask()  # number 2 -> cell 2 as usual
    suggest_configs(fresh, d)
    assert cell_of(fresh) == tuple(d.cells[2].values())


class RecordingSampler(optuna.samplers.RandomSampler):
    """Records which trials it was shown."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed=seed)
        self.seen: set[int] = set()

    def sample_independent(self, study: Any, trial: Any, name: str, dist: Any) -> Any:
        self.seen |= {t.number for t in study.get_trials(deepcopy=False)} | {
            t.number for t in study._get_trials(deepcopy=False)
        }
        return super().sample_independent(study, trial, name, dist)


def test_each_cell_sampler_sees_only_its_cell() -> None:
    cells = [{"weight_sharing": True}, {"weight_sharing": False}, {"weight_sharing": None}]
    samplers = [RecordingSampler(seed=i) for i in range(3)]
    study = optuna.create_study(sampler=CellSampler(cells, samplers))
    for _ in range(12):
        trial = study.ask()
        assert (
            trial.suggest_categorical("weight_sharing", [True, False, None])
            == cells[trial.number % 3]["weight_sharing"]
        )
        trial.suggest_float("x", 0.0, 1.0)
        study.tell(trial, 0.0)
    for cell, sampler in enumerate(samplers):
        assert sampler.seen and {n % 3 for n in sampler.seen} == {cell}
    with pytest.raises(DefinitionError, match="one sampler per cell"):
        CellSampler(cells, samplers[:2])


def test_cell_pruner_compares_within_the_cell() -> None:
    """Cell 0 scores low, cell 1 high: a middling cell-0 trial is not pruned by cell 1's median."""
    cells = [{"weight_sharing": True}, {"weight_sharing": False}]  # trials without these params go by number
    pruner = CellPruner(optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0), cells)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for number in range(6):
        trial = study.ask()
        trial.report(0.2 if number % 2 == 0 else 0.9, step=0)
        study.tell(trial, 0.2 if number % 2 == 0 else 0.9)
    middling = study.ask()  # number 6 -> cell 0
    middling.report(0.5, step=0)
    assert not middling.should_prune()
    study.tell(middling, 0.5)
    low = study.ask()  # number 7 -> cell 1, below its cell's median
    low.report(0.5, step=0)
    assert low.should_prune()
    study.tell(low, state=TrialState.PRUNED)
    plain = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=2))
    for number, value in zip(range(7), itertools.chain([0.2, 0.9] * 3, [0.5]), strict=True):
        trial = plain.ask()
        trial.report(value, step=0)
        if number < 6:
            plain.tell(trial, value)
    assert trial.should_prune()  # against the whole study the same trial is pruned


def test_cells_get_cell_wrappers(tmp_path: Path) -> None:
    cells = "[[cells]]\nweight_sharing = true\n[[cells]]\nweight_sharing = false\n"
    d = definition(tmp_path, extra=cells)
    assert isinstance(study_sampler(d), CellSampler) and isinstance(study_pruner(d), CellPruner)
    grid = definition(tmp_path, sampler='type = "grid"', extra=cells)
    assert "weight_sharing" not in grid_search_space(grid)
    counts = Counter(p["weight_sharing"] for p in first_params(study_sampler(grid), grid, n=8))
    assert counts == {True: 4, False: 4}


def _run_to_the_end(study: optuna.Study, curve: list[float]) -> int:
    """Report `curve` epoch by epoch until the study's pruner stops the trial: the epochs it trained."""
    trial = study.ask()
    for step, value in enumerate(curve):
        trial.report(value, step)
        if trial.should_prune():
            study.tell(trial, state=TrialState.PRUNED)
            return step + 1
    study.tell(trial, curve[-1])
    return len(curve)


RUNGS = """
[search]
n_folds = 4
epochs = 20
screen_folds = 1
[pruner]
type = "successive_halving"
min_resource = 2
reduction_factor = 3
[fixed]
family = "siamese"
"""


def _rung_definition(tmp_path: Path) -> StudyDefinition:
    path = tmp_path / "rungs.toml"
    path.write_text(RUNGS)
    return load_definition(str(path))


def test_successive_halving_stops_trials_after_epochs_3_7_and_19_and_keeps_the_best_third(tmp_path):
    d = _rung_definition(tmp_path)
    assert (d.pruner, d.screen_folds) == ("successive_halving", 1)
    study = optuna.create_study(direction="maximize", pruner=study_pruner(d))
    rng = np.random.default_rng(0)
    levels = rng.permutation(np.linspace(0.80, 0.99, 90))  # each trial's own level, flat over its epochs
    trained = [_run_to_the_end(study, [float(level)] * d.epochs) for level in levels]

    assert set(trained) <= {3, 7, 19, d.epochs}  # stopped at a rung or finished, never elsewhere
    counts = Counter(trained)
    assert counts[d.epochs] < len(levels) / 3  # about one in nine finishes, the early trials more often
    finished = [level for level, epochs in zip(levels, trained, strict=True) if epochs == d.epochs]
    late = [level for level, epochs in zip(levels[45:], trained[45:], strict=True) if epochs == d.epochs]
    assert min(late) > np.quantile(levels[:45], 0.5)  # once the rungs are full, only the better half goes through
    assert max(levels) in finished  # the best trial is never stopped


def test_a_slow_starter_in_the_best_third_at_each_rung_is_not_stopped(tmp_path):
    """What the low rungs may do to an augmented configuration: it is compared with the others at the same
    epoch only, so a slow start costs it nothing while it stays in the best third there."""
    d = _rung_definition(tmp_path)
    study = optuna.create_study(direction="maximize", pruner=study_pruner(d))
    for level in np.linspace(0.70, 0.90, 30):  # fast learners: flat curves
        _run_to_the_end(study, [float(level)] * d.epochs)
    slow = [0.86, 0.87, 0.88] + [0.89] * 4 + [0.95] * (d.epochs - 7)  # behind the best early, best at the end
    assert _run_to_the_end(study, slow) == d.epochs
