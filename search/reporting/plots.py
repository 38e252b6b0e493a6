"""The report's plots, drawn on bare matplotlib `Figure`s (the Agg canvas, no pyplot state), so writing a
report never needs a display. Each returns a Figure, or a string saying why there is nothing to draw (too
few trials, no evaluation yet), which the report prints in its place."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from optuna.trial import FrozenTrial

from models.data.idx import describe_source
from search.evaluation.results import EvaluationSummary
from search.storage.studies import maximizes
from search.study.record import TrialRecord

MAX_CURVES = 6  # learning curves drawn in one plot


def figure(width: float = 7.0, height: float = 4.0) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height))
    return fig, fig.add_subplot()


def plot_history(study: optuna.Study, complete: Sequence[FrozenTrial]) -> Figure | str:
    if not complete:
        return "the study has no complete trial yet."
    ordered = sorted(complete, key=lambda t: t.number)
    numbers = [t.number for t in ordered]
    values = np.array([t.values[0] for t in ordered])
    best = np.maximum.accumulate(values) if maximizes(study.directions) else np.minimum.accumulate(values)
    fig, ax = figure()
    ax.scatter(numbers, 100 * values, s=14, alpha=0.6, label="complete trial")
    ax.step(numbers, 100 * best, where="post", color="C3", label="best so far")
    ax.set(xlabel="trial", ylabel="CV pair accuracy (%)", title="optimization history")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def plot_importances(study: optuna.Study, complete: Sequence[FrozenTrial]) -> Figure | str:
    if len(complete) < 2:
        return f"parameter importances need at least 2 complete trials, and the study has {len(complete)}."
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    try:
        importances = optuna.importance.get_param_importances(study, evaluator=evaluator, target=lambda t: t.values[0])
    except (RuntimeError, ValueError) as error:  # e.g. no parameter common to all trials, or a constant one
        return f"Optuna could not compute parameter importances ({' '.join(str(error).split())})."
    if not importances:
        return "no searched parameter varies across the complete trials."
    names = list(importances)[::-1]
    fig, ax = figure(7.0, max(2.5, 0.35 * len(names) + 1))
    ax.barh(names, [importances[n] for n in names], color="C0")
    ax.set(xlabel="importance (fANOVA, normalised)", title="parameter importances")
    ax.grid(axis="x", alpha=0.3)
    return fig


def plot_alpha(complete: Sequence[FrozenTrial]) -> Figure | str:
    records = [(t, TrialRecord.from_trial(t)) for t in complete]
    points = [
        (r.train_config["alpha"], t.values[0], (r.net_config or {}).get("weight_sharing"))
        for t, r in records
        if r.train_config is not None and r.train_config.get("aux_loss") == "alpha"
    ]
    if not points:
        return "no complete trial trained with the alpha-weighted auxiliary loss."
    fig, ax = figure()
    for sharing, color in ((True, "C0"), (False, "C1"), (None, "C2")):
        chosen = [(a, v) for a, v, ws in points if ws == sharing]
        if chosen:
            label = {True: "weight sharing", False: "no weight sharing", None: "not siamese"}[sharing]
            ax.scatter([a for a, _ in chosen], [100 * v for _, v in chosen], s=16, alpha=0.7, color=color, label=label)
    alphas = [a for a, _, _ in points]
    if min(alphas) > 0 and max(alphas) / min(alphas) > 10:
        ax.set_xscale("log")
    ax.set(
        xlabel="alpha (weight of the auxiliary digit loss)",
        ylabel="CV pair accuracy (%)",
        title="accuracy against alpha",
    )
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def plot_curves(
    study: optuna.Study,
    complete: Sequence[FrozenTrial],
    evaluated: Sequence[EvaluationSummary],
    trials: Mapping[int, FrozenTrial],
) -> Figure | str:
    """Mean validation accuracy per epoch (the intermediate values the objective reports) of the best
    trial and of every evaluated trial."""
    numbers: list[int] = []
    if complete:
        numbers.append((max if maximizes(study.directions) else min)(complete, key=lambda t: t.values[0]).number)
    numbers += [
        r.candidate.trial_number for s in evaluated for r in s.configurations if r.candidate.trial_number is not None
    ]
    numbers = [n for n in dict.fromkeys(numbers) if trials[n].intermediate_values][:MAX_CURVES]
    if not numbers:
        return "neither the best nor an evaluated trial has per-epoch validation accuracies (multi-objective studies report none)."
    fig, ax = figure()
    for number in numbers:
        curve = sorted(trials[number].intermediate_values.items())
        ax.plot(
            [e + 1 for e, _ in curve], [100 * v for _, v in curve], marker="o", markersize=3, label=f"trial {number}"
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="epoch", ylabel="mean validation pair accuracy (%)", title="learning curves (cross-validation folds)")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def plot_distribution(summaries: Sequence[EvaluationSummary], what: str) -> Figure | str:
    results = [(s, r) for s in summaries for r in s.configurations if r.accuracies]
    if not results:
        command = "search reproduce" if what == "preset" else "search evaluate-best"
        return f"no {what} has stored per-draw accuracies yet: run `{command}` first."
    fig, ax = figure(max(6.0, 1.1 * len(results) + 2), 4.5)
    data = [100 * np.array(list(r.accuracies.values())) for _, r in results]
    ax.boxplot(data, showfliers=False, widths=0.5)
    rng = np.random.default_rng(0)  # jitter only; fixed so the same data draws the same picture
    label = "published (full MNIST)"
    for i, values in enumerate(data, start=1):
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(values)), values, s=12, alpha=0.7, color="C0", zorder=3)
        published = results[i - 1][1].candidate.published_mean
        if published is not None:
            ax.scatter([i], [100 * published], marker="x", s=60, color="C3", zorder=4, label=label)
            label = None  # one legend entry
    labels = [
        r.candidate.label
        if len(summaries) == 1
        else f"{r.candidate.label}\n{describe_source(s.data_source)}, {s.n_pairs} pairs"
        for s, r in results
    ]
    ax.set_xticks(range(1, len(results) + 1), labels, rotation=20, ha="right", fontsize=8)
    ax.set(ylabel="test pair accuracy (%)", title=f"per-draw test accuracy of each {what}")
    if any(r.candidate.published_mean is not None for _, r in results):
        ax.legend(loc="best")
    ax.grid(axis="y", alpha=0.3)
    return fig
