"""A published row as the product keeps it: the figure as printed, and the preset that reproduces it
(network, the report's recipe, and our choices where the report is silent)."""

from __future__ import annotations

from dataclasses import dataclass

from models.nets.configs import NetConfig, TrainConfig

__all__ = ["FIGURES", "REPORTS", "REPORT_RUNS", "Preset", "Published", "error_pct", "pct"]

FIGURES = {
    "test": "mean test accuracy over fresh draws",
    "validation": "validation accuracy (the report's columns say 'validation'; its text says test)",
    "holdout": "accuracy on a 20 % hold-out of the training pairs, one run, no std",
    "max_over_epochs": "mean over runs of the maximum test accuracy over epochs",
    "approximate": "approximate ('close to 95%'), no exact figure",
    "unstated_runs": "test accuracy, number of runs unstated",
}


@dataclass(frozen=True)
class Published:
    """A figure as the report printed it."""

    mean: float  # accuracy as a fraction (report 003 prints error: 100 - error)
    std: float | None  # standard deviation over runs as a fraction, where printed
    printed: str  # the figure exactly as printed
    figure: str = "test"  # what it measures: a key of FIGURES
    runs: int | None = None  # runs its std is over where it differs from the report's REPORT_RUNS


@dataclass(frozen=True)
class Preset:
    name: str  # seedNNN/row
    report: str  # "000" ... "004"
    row: str  # the report's own label for the row (table and line)
    description: str  # the network and recipe in a line
    net: NetConfig
    train: TrainConfig
    published: Published
    unstated: tuple[str, ...] = ()  # our choices where the report is silent (shown with the results)
    scoring: str = "final"  # final | max_over_epochs: every epoch is scored and the best shown beside the final

    @property
    def published_mean(self) -> float:
        return self.published.mean

    @property
    def published_std(self) -> float | None:
        return self.published.std

    @property
    def runs(self) -> int:
        """The number of runs its printed std is over, as the report states it."""
        return self.published.runs or REPORT_RUNS[self.report]

    @property
    def source(self) -> str:
        return f"report {self.report}, {self.row}; published on full MNIST"

    @property
    def best_over_epochs(self) -> bool:
        """Whether its figure is a maximum over epochs, so that ours is scored every epoch and compared so."""
        return self.scoring == "max_over_epochs"


REPORTS = {
    "000": "Project 1 - Classification, weight sharing, auxiliary losses (Jouve, Griesser, Rey)",
    "001": "EE559 Project 1: Classification, Weight Sharing, Auxiliary Losses (Kong, Wu, Phan)",
    "002": "EE590: Deep Learning - Mini-project1 (Zhou, Li, Luo)",
    "003": "Project 1 Classification, Weight Sharing, Auxiliary Loss (Anselmet, Monnet, Nguyen Duc)",
    "004": "Mini-project 1 Report (Larraz Giro, Rocchi, Trichilo)",
}
# Runs each report's stds are over, as it says: 000 "at least 10 different training and test sets"
# (its final model: 25), 001 "run by 10 times", 002 "15 iterations", 003 "10 rounds", 004 "10 times".
REPORT_RUNS = {"000": 10, "001": 10, "002": 15, "003": 10, "004": 10}


def pct(mean: float, std: float | None, printed: str, figure: str = "test") -> Published:
    """A figure printed in percent of accuracy."""
    return Published(round(mean / 100, 6), None if std is None else round(std / 100, 6), printed, figure)


def error_pct(mean: float, std: float, printed: str) -> Published:
    """Report 003 prints the error in percent."""
    return Published(round(1 - mean / 100, 6), round(std / 100, 6), printed)
