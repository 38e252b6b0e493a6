"""Samplers and pruners named in a study definition, and the cell wrappers of an ablation.

Every sampler is seeded: from `definition.seed`, or from the `seed` a worker passes. The option
tables below list what a definition's [sampler] and [pruner] tables may hold beside `type`;
definitions checks names and types against them on load.
"""

from __future__ import annotations

import warnings
from collections.abc import Container, Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.exceptions import ExperimentalWarning
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from search.errors import DefinitionError
from search.study.cells import cell_index
from search.study.definition import StudyDefinition
from search.study.record import enqueued_params

__all__ = [
    "DEFAULT_SAMPLER",
    "MULTI_OBJECTIVE_SAMPLERS",
    "PRUNER_OPTIONS",
    "SAMPLER_OPTIONS",
    "CellPruner",
    "CellSampler",
    "default_pruner",
    "grid_search_space",
    "plain_sampler",
    "study_pruner",
    "study_sampler",
]

# type -> {option: accepted TOML types}; a str option accepts only the string "auto".
SAMPLER_OPTIONS: dict[str, dict[str, tuple[type, ...]]] = {
    "tpe": {
        "multivariate": (bool,),  # default true: model parameters jointly
        "group": (bool,),  # default: true when a parameter has `when` (conditional spaces need it)
        "n_startup_trials": (int,),
        "n_ei_candidates": (int,),
        "constant_liar": (bool,),
        "consider_endpoints": (bool,),
        "prior_weight": (float, int),
    },
    "random": {},
    "cmaes": {
        "n_startup_trials": (int,),
        "sigma0": (float, int),
        "popsize": (int,),
        "use_separable_cma": (bool,),
        "with_margin": (bool,),
        "lr_adapt": (bool,),
        "consider_pruned_trials": (bool,),
    },
    "grid": {},
    "nsga2": {
        "population_size": (int,),
        "mutation_prob": (float, int),
        "crossover_prob": (float, int),
        "swapping_prob": (float, int),
    },
}
DEFAULT_SAMPLER = "tpe"
MULTI_OBJECTIVE_SAMPLERS = ("tpe", "random", "grid", "nsga2")
PRUNER_OPTIONS: dict[str, dict[str, tuple[type, ...]]] = {
    "median": {"n_startup_trials": (int,), "n_warmup_steps": (int,), "interval_steps": (int,), "n_min_trials": (int,)},
    "successive_halving": {
        "min_resource": (int, str),
        "reduction_factor": (int,),
        "min_early_stopping_rate": (int,),
        "bootstrap_count": (int,),
    },
    "hyperband": {
        "min_resource": (int,),
        "max_resource": (int, str),
        "reduction_factor": (int,),
        "bootstrap_count": (int,),
    },
    "none": {},
}
_MAX_GRID = 1_000_000


def default_pruner(n_directions: int) -> str:
    """The pruner of a definition without a [pruner] type: median, or none where Optuna cannot prune (two objectives)."""
    return "median" if n_directions == 1 else "none"


def study_sampler(definition: StudyDefinition, *, seed: int | None = None) -> BaseSampler:
    """The sampler a study samples with, seeded with `seed` (default `definition.seed`; workers pass their own):
    the definition's `plain_sampler`, or with [[cells]] a `CellSampler` holding one plain sampler per cell.
    """
    seed = definition.seed if seed is None else seed
    if not definition.cells:
        return plain_sampler(definition, seed)
    # one independent stream per cell, stable for a given seed
    seeds = [int(s) for s in np.random.SeedSequence(seed).generate_state(len(definition.cells))]
    return CellSampler(definition.cells, [plain_sampler(definition, s) for s in seeds])


def plain_sampler(definition: StudyDefinition, seed: int) -> BaseSampler:
    """One sampler of the definition's type and options, without the cell wrapper."""
    options = dict(definition.sampler_options)
    kind = definition.sampler
    if kind == "tpe":
        options.setdefault("multivariate", True)
        options.setdefault("group", options["multivariate"] and any(spec.when for spec in definition.params))
        with warnings.catch_warnings():  # multivariate/group are chosen on purpose, not by accident
            warnings.simplefilter("ignore", ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, **options)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "cmaes":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            return optuna.samplers.CmaEsSampler(seed=seed, **options)
    if kind == "grid":
        return optuna.samplers.GridSampler(grid_search_space(definition), seed=seed)
    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, **options)
    raise DefinitionError(f"{definition.source}: unknown sampler {kind!r}; choose one of {', '.join(SAMPLER_OPTIONS)}.")


def study_pruner(definition: StudyDefinition) -> BasePruner:
    """The definition's pruner; hyperband's max_resource defaults to the epochs. Per cell with [[cells]]."""
    options = dict(definition.pruner_options)
    kind = definition.pruner
    if kind == "median":
        pruner: BasePruner = optuna.pruners.MedianPruner(**options)
    elif kind == "successive_halving":
        pruner = optuna.pruners.SuccessiveHalvingPruner(**options)
    elif kind == "hyperband":
        options.setdefault("max_resource", definition.epochs)
        pruner = optuna.pruners.HyperbandPruner(**options)
    elif kind == "none":
        return optuna.pruners.NopPruner()
    else:
        raise DefinitionError(
            f"{definition.source}: unknown pruner {kind!r}; choose one of {', '.join(PRUNER_OPTIONS)}."
        )
    return CellPruner(pruner, definition.cells) if definition.cells else pruner


def grid_search_space(definition: StudyDefinition) -> dict[str, list[Any]]:
    """Every value of every searched parameter (cell parameters excepted) for `GridSampler`.

    Categorical and int parameters enumerate themselves; a float needs a `step`. Conditional
    parameters stay in the grid (Optuna needs a value for each), so a grid repeats the points
    where they are inactive: keep grids small and unconditional.
    """
    cell_names = set(definition.cells[0]) if definition.cells else set()
    space: dict[str, list[Any]] = {}
    for spec in definition.params:
        if spec.name in cell_names:
            continue
        if spec.type == "categorical":
            space[spec.name] = list(spec.choices)
        elif spec.type == "int":
            space[spec.name] = list(range(spec.low, spec.high + 1, spec.step))
        elif spec.step is not None:
            n = int(round((spec.high - spec.low) / spec.step))
            space[spec.name] = [round(spec.low + i * spec.step, 12) for i in range(n + 1)]
        else:
            raise DefinitionError(
                f"{definition.source}: [params.{spec.name}] is a continuous float, which the grid sampler cannot enumerate; "
                "give it a step or make it categorical."
            )
    size = int(np.prod([len(v) for v in space.values()], dtype=float))
    if size > _MAX_GRID:
        raise DefinitionError(
            f"{definition.source}: [sampler] the grid has {size} points, more than {_MAX_GRID}; shrink the ranges or raise their steps."
        )
    return space


class _Cells:
    """Which cell a trial belongs to: the one its cell parameters name, else trial.number % n_cells.

    A fresh trial has no parameters yet and is dealt round-robin by number. A retry of a failed
    trial is enqueued with that trial's parameters (Optuna's fixed_params) and so stays in the
    cell it was dealt to, whatever number it gets.
    """

    def __init__(self, cells: Sequence[Mapping[str, Any]]) -> None:
        self.cells = [dict(cell) for cell in cells]
        self.names = set(self.cells[0]) if self.cells else set()

    def index(self, trial: FrozenTrial) -> int:
        params = {**enqueued_params(trial), **trial.params}
        index = cell_index(self.cells, params)
        return trial.number % len(self.cells) if index is None else index


class _CellStudy:
    """A view of a study that holds only the trials of one cell.

    Samplers and pruners read the history through get_trials/_get_trials; everything else
    (storage, directions, stop) goes to the real study. Optuna's own HyperbandPruner filters
    its brackets the same way.
    """

    def __init__(self, study: optuna.Study, cells: _Cells, cell: int) -> None:
        self._cell_study, self._cells, self._cell = study, cells, cell

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cell_study, name)

    def _mine(self, trials: list[FrozenTrial]) -> list[FrozenTrial]:
        return [t for t in trials if self._cells.index(t) == self._cell]

    def get_trials(self, deepcopy: bool = True, states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        return self._mine(self._cell_study.get_trials(deepcopy=deepcopy, states=states))

    def _get_trials(
        self, deepcopy: bool = True, states: Container[TrialState] | None = None, use_cache: bool = False
    ) -> list[FrozenTrial]:
        return self._mine(self._cell_study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache))

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()


class CellSampler(BaseSampler):
    """Interleave the cells of an ablation as equal, independent sub-studies of one study.

    Trial n belongs to cell n % len(cells): its cell parameters take that cell's values (they are
    ordinary trial params, so reports group by them), and the remaining parameters come from that
    cell's own sampler, which sees only the trials of its cell. So each cell gets exactly one trial
    in len(cells), also with concurrent workers (trial numbers are handed out by the storage; a
    retried trial keeps the cell of the trial it repeats, see `_Cells`), and
    is tuned as if it had a study of its own: a shared TPE would model the best cell's trials and
    tune the others toward that cell's optimum instead of theirs. A GridSampler over the cell
    parameters would give equal shares only for complete grid passes and could not keep the
    tuning of the cells apart.
    """

    def __init__(self, cells: Sequence[Mapping[str, Any]], samplers: Sequence[BaseSampler]) -> None:
        if len(cells) < 2 or len(samplers) != len(cells):
            raise DefinitionError(
                f"CellSampler needs at least 2 cells and one sampler per cell, but got {len(cells)} cells and {len(samplers)} samplers."
            )
        self._cells = _Cells(cells)
        self._samplers = list(samplers)

    def _route(self, study: optuna.Study, trial: FrozenTrial) -> tuple[BaseSampler, _CellStudy, dict[str, Any]]:
        cell = self._cells.index(trial)
        return self._samplers[cell], _CellStudy(study, self._cells, cell), self._cells.cells[cell]

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        sampler, view, _ = self._route(study, trial)
        space = sampler.infer_relative_search_space(view, trial)  # type: ignore[arg-type]
        return {name: dist for name, dist in space.items() if name not in self._cells.names}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        sampler, view, _ = self._route(study, trial)
        return sampler.sample_relative(view, trial, search_space)  # type: ignore[arg-type]

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        sampler, view, cell = self._route(study, trial)
        if param_name in cell:
            return cell[param_name]
        return sampler.sample_independent(view, trial, param_name, param_distribution)  # type: ignore[arg-type]

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        sampler, view, _ = self._route(study, trial)
        sampler.before_trial(view, trial)  # type: ignore[arg-type]

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        sampler, view, _ = self._route(study, trial)
        sampler.after_trial(view, trial, state, values)  # type: ignore[arg-type]

    def reseed_rng(self) -> None:
        for sampler in self._samplers:
            sampler.reseed_rng()


class CellPruner(BasePruner):
    """Prune a trial against the trials of its own cell only (see `CellSampler`).

    Against the whole study, a weaker cell's trials would be pruned more often and so tuned with
    less training than the others: the ablation would no longer give every cell the same budget.
    """

    def __init__(self, pruner: BasePruner, cells: Sequence[Mapping[str, Any]]) -> None:
        self._pruner, self._cells = pruner, _Cells(cells)

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        view = _CellStudy(study, self._cells, self._cells.index(trial))
        return self._pruner.prune(view, trial)  # type: ignore[arg-type]
