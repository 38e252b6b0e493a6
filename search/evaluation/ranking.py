"""The selection stage's outcome as plain data: each finalist's fold accuracies at the evaluation length,
the ranking and how it was made, and reading it back from the study attribute it is stored in. Results,
tables and reports read it without the training machinery of search.evaluation.selection.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

import optuna

from search.run.folds import fold_score

__all__ = ["RACE_SIGNIFICANCE", "SELECTION_ATTR", "FinalistScore", "Selection", "stored_selection"]

RACE_SIGNIFICANCE = 0.05  # one-sided paired p below which a finalist is behind the leader and drops out
SELECTION_ATTR = "selection"  # the study attribute holding the last selection (Selection.to_dict)


@dataclass(frozen=True)
class FinalistScore:
    """One finalist's validation accuracies over every fold of every repeat, at the evaluation length."""

    trial_number: int
    search_value: float  # the trial's CV accuracy in the search (one draw, the search's epochs)
    fold_accuracies: tuple[float | None, ...]  # None: that fold's model diverged
    dropped_after: int | None = None  # racing: the repeats it had run when it fell behind; None: it survived

    @property
    def fold_scores(self) -> list[float]:
        """The fold accuracies with a diverged fold counted as chance (`search.run.folds.fold_score`)."""
        return [fold_score(a) for a in self.fold_accuracies]

    @property
    def n_diverged(self) -> int:
        return sum(a is None for a in self.fold_accuracies)

    @property
    def mean(self) -> float:
        """Mean over the folds; a diverged fold counts as chance, so a configuration that diverges never wins."""
        return statistics.fmean(self.fold_scores)

    @property
    def rank_key(self) -> tuple[int, float]:
        """Sort key, best first: fewer diverged folds, then the higher mean."""
        return self.n_diverged, -self.mean

    @property
    def std(self) -> float:
        values = self.fold_scores
        return statistics.stdev(values) if len(values) > 1 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial_number": self.trial_number,
            "search_value": self.search_value,
            "mean": self.mean,
            "std": self.std,
            "n_folds": len(self.fold_accuracies),
            "n_diverged": self.n_diverged,
            "fold_accuracies": list(self.fold_accuracies),
            "dropped_after": self.dropped_after,
        }


@dataclass(frozen=True)
class Selection:
    """The finalists ranked by repeated K-fold at the evaluation length, best first."""

    study_name: str
    epochs: int | None  # None: each finalist at its own trial's epochs
    n_folds: int
    draw_seeds: tuple[int, ...]  # the training draws of the repeats (training pool only)
    finalists: tuple[FinalistScore, ...]
    n_trained: int = 0  # (finalist, repeat) runs trained by this call; the others were stored
    n_runs_saved: int = 0  # (finalist, repeat) runs the race left out: finalists behind, or one left
    raced: bool = False  # finalists behind the leader dropped out repeat by repeat

    @property
    def chosen(self) -> FinalistScore:
        return self.finalists[0]

    @property
    def method(self) -> str:
        length = f"{self.epochs} epochs" if self.epochs is not None else "each trial's epochs"
        race = (
            f", raced: a finalist behind the leader by a one-sided paired t test over the folds so far "
            f"(p < {RACE_SIGNIFICANCE}) dropped out after its repeat"
            if self.raced
            else ""
        )
        return (
            f"the {len(self.finalists)} best trials by search CV, retrained at {length} on up to "
            f"{len(self.draw_seeds)} fresh training draws x {self.n_folds}-fold CV, ranked by mean validation "
            f"accuracy{race}; no test pair used"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "epochs": self.epochs,
            "n_folds": self.n_folds,
            "repeats": len(self.draw_seeds),
            "draw_seeds": list(self.draw_seeds),
            "chosen_trial": self.chosen.trial_number,
            "finalists": [f.to_dict() for f in self.finalists],
            "n_trained": self.n_trained,
            "n_runs_saved": self.n_runs_saved,
            "raced": self.raced,
        }


def stored_selection(study: optuna.Study) -> Selection | None:
    """The last selection stored in the study, or None (never made, or unreadable: made by another version)."""
    data = study.user_attrs.get(SELECTION_ATTR)
    try:
        finalists = tuple(
            FinalistScore(
                trial_number=int(f["trial_number"]),
                search_value=float(f["search_value"]),
                fold_accuracies=tuple(f["fold_accuracies"]),
                dropped_after=f.get("dropped_after"),
            )
            for f in data["finalists"]
        )
        return Selection(
            study_name=study.study_name,
            epochs=data["epochs"],
            n_folds=int(data["n_folds"]),
            draw_seeds=tuple(data["draw_seeds"]),
            finalists=finalists,
            n_runs_saved=int(data.get("n_runs_saved", 0)),
            raced=bool(data.get("raced", False)),
        )
    except (KeyError, TypeError, ValueError):
        return None
