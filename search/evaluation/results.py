"""What an evaluation reports: the configurations evaluated, their results over the draws, and paired tests.

Plain frozen data, shared by the evaluation (search.evaluation.evaluate), the `evaluations` table
(search.evaluation.store), the draw-training pool (search.evaluation.draw_training) and the report.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from models.nets.configs import NetConfig, TrainConfig
from search.describe import describe
from search.evaluation.ranking import Selection
from search.evaluation.stats import PairedTests, Summary, paired_tests

__all__ = [
    "Candidate",
    "Comparison",
    "ConfigurationResult",
    "DrawResult",
    "EvaluationSummary",
    "compare_all",
    "config_json",
    "config_key",
]


def config_key(net: NetConfig, train: TrainConfig) -> str:
    """A hash of the fields set away from their defaults: equal configurations share their evaluation
    rows, and a field added later with a default that keeps the old behaviour leaves every key as it was."""
    changed = {"net": _non_defaults(net), "train": _non_defaults(train)}
    return hashlib.sha256(json.dumps(changed, sort_keys=True).encode()).hexdigest()[:24]


def _non_defaults(config: NetConfig | TrainConfig) -> dict[str, Any]:
    defaults = type(config)().to_dict()
    return {name: value for name, value in config.to_dict().items() if defaults.get(name) != value}


def config_json(net: NetConfig, train: TrainConfig) -> str:
    return json.dumps({"net": net.to_dict(), "train": train.to_dict()}, sort_keys=True)


@dataclass(frozen=True)
class Candidate:
    """A configuration to evaluate, and where it came from."""

    label: str  # "trial 12", a cell such as "weight_sharing=True, aux_loss=alpha", or a preset name
    net: NetConfig
    train: TrainConfig
    trial_number: int | None = None
    trial_value: float | None = None  # the trial's cross-validation value (first objective)
    preset: str | None = None
    cell: Mapping[str, Any] | None = None
    published_mean: float | None = None  # presets: the published accuracy (fraction)
    published_std: float | None = None
    score_every_epoch: bool = False  # also keep the best test accuracy over epochs (report 004's figure)

    @property
    def key(self) -> str:
        return config_key(self.net, self.train)


@dataclass(frozen=True)
class ConfigurationResult:
    """One configuration's results over the draws of an evaluation."""

    candidate: Candidate
    n_params: int
    accuracies: dict[int, float]  # draw seed -> test accuracy, completed draws only
    digit_accuracies: dict[int, float]  # draw seed -> test digit accuracy, where the network has digit outputs
    n_diverged: int  # draws that diverged: stored, but excluded from the statistics
    train_seconds: float  # mean per draw
    accuracy: Summary
    digit_accuracy: Summary | None
    best_epoch_accuracies: dict[int, float] = dataclasses.field(default_factory=dict)  # draw seed -> max over epochs
    best_epoch_accuracy: Summary | None = None  # where every epoch was scored

    @property
    def difference(self) -> float | None:
        """Mean accuracy minus the published one (presets), None where either is missing."""
        if self.candidate.published_mean is None or self.accuracy.n == 0:
            return None
        return self.accuracy.mean - self.candidate.published_mean

    def to_dict(self) -> dict[str, Any]:
        c = self.candidate
        return {
            "label": c.label,
            "description": describe(c.net, c.train),
            "trial_number": c.trial_number,
            "trial_value": c.trial_value,
            "preset": c.preset,
            "cell": dict(c.cell) if c.cell is not None else None,
            "published_mean": c.published_mean,
            "published_std": c.published_std,
            "difference": self.difference,
            "config_key": c.key,
            "net_config": c.net.to_dict(),
            "train_config": c.train.to_dict(),
            "n_params": self.n_params,
            "accuracy": self.accuracy.to_dict(),
            "digit_accuracy": None if self.digit_accuracy is None else self.digit_accuracy.to_dict(),
            "best_epoch_accuracy": None if self.best_epoch_accuracy is None else self.best_epoch_accuracy.to_dict(),
            "n_diverged": self.n_diverged,
            "train_seconds": self.train_seconds,
            "per_draw": {str(seed): acc for seed, acc in sorted(self.accuracies.items())},
        }


@dataclass(frozen=True)
class Comparison:
    """Paired tests of configuration `a` against `b` over the draws both completed."""

    a: str
    b: str
    tests: PairedTests

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, **self.tests.to_dict()}


@dataclass(frozen=True)
class EvaluationSummary:
    """What `evaluate_best` and `reproduce` return, and what the CLI prints (as a table or JSON)."""

    study_name: str | None  # None for `reproduce`
    data_source: str
    n_pairs: int
    draw_seeds: tuple[int, ...]
    configurations: tuple[ConfigurationResult, ...]
    comparisons: tuple[Comparison, ...] = ()  # between the cells of a study with cells
    n_trained: int = 0  # draws trained by this call (the others were already stored)
    selection: Selection | None = None  # how evaluate_best chose what it evaluated (None: the search's ranking)

    def to_dict(self) -> dict[str, Any]:
        return {
            "study_name": self.study_name,
            "selection": None if self.selection is None else self.selection.to_dict(),
            "data_source": self.data_source,
            "n_pairs": self.n_pairs,
            "draws": len(self.draw_seeds),
            "draw_seeds": list(self.draw_seeds),
            "n_trained": self.n_trained,
            "configurations": [r.to_dict() for r in self.configurations],
            "comparisons": [c.to_dict() for c in self.comparisons],
        }


def compare_all(results: Sequence[ConfigurationResult]) -> tuple[Comparison, ...]:
    """Paired tests between every two configurations, over the draws both completed."""
    comparisons = []
    for a, b in itertools.combinations(results, 2):
        seeds = sorted(a.accuracies.keys() & b.accuracies.keys())
        tests = paired_tests([a.accuracies[s] for s in seeds], [b.accuracies[s] for s in seeds])
        comparisons.append(Comparison(a=a.candidate.label, b=b.candidate.label, tests=tests))
    return tuple(comparisons)


@dataclass(frozen=True)
class DrawResult:
    """What one draw's training gives back (picklable, to return from a worker process)."""

    seed: int
    status: str
    message: str
    accuracy: float | None
    digit_accuracy: float | None
    best_epoch_accuracy: float | None
    seconds: float
    n_params: int
    model: Any = None  # the trained network (a TrainedModel) when the caller keeps it; never stored in the table
