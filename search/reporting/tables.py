"""The result tables, built once as `TextTable`s: shown as Markdown in reports and as rich tables by
the CLI."""

from __future__ import annotations

from models.data.pools import describe_source
from search.describe import TextTable, percent
from search.evaluation.results import ConfigurationResult, EvaluationSummary
from search.evaluation.selection import Selection
from search.evaluation.stats import Summary


def mean_std(summary: Summary) -> str:
    if summary.n == 0:
        return "-"
    return f"{percent(summary.mean)} %" if summary.n < 2 else f"{percent(summary.mean)} ± {percent(summary.std)} %"


def confidence(summary: Summary) -> str:
    return "-" if summary.n < 2 else f"[{percent(summary.ci_low)}, {percent(summary.ci_high)}] %"


def draw_count(result: ConfigurationResult) -> str:
    return str(result.accuracy.n) + (f" (+{result.n_diverged} diverged)" if result.n_diverged else "")


def setting_note(summary: EvaluationSummary) -> str:
    seeds = summary.draw_seeds
    span = f"{seeds[0]}-{seeds[-1]}" if seeds else "none"
    return (
        f"Each draw: {summary.n_pairs} fresh training pairs (all used for training) and {summary.n_pairs} test pairs "
        f"from {describe_source(summary.data_source)}, draw seeds {span}, the same for every configuration; "
        "diverged draws are stored but left out of the statistics."
    )


def selection_table(selection: Selection) -> TextTable:
    """The selection stage's finalists, best first: search CV beside the repeated K-fold score that ranked them."""
    rows = [
        (
            f"trial {f.trial_number}" + (" (chosen)" if index == 0 else ""),
            percent(f.search_value),
            f"{percent(f.mean)} ± {percent(f.std)}",
            str(len(f.fold_accuracies)) + (f" ({f.n_diverged} diverged)" if f.n_diverged else ""),
            "" if f.dropped_after is None else f"behind after {f.dropped_after}",
        )
        for index, f in enumerate(selection.finalists)
    ]
    headers = ("finalist", "search CV %", "selection CV % (mean ± std)", "folds", "race")
    notes = [f"Ranked by {selection.method}."]
    if selection.raced:
        trained = sum(len(f.fold_accuracies) for f in selection.finalists)
        saved = selection.n_runs_saved * selection.n_folds
        notes.append(f"{trained} fold models trained at the evaluation length, {saved} saved by the race.")
    return TextTable(f"{selection.study_name}: selection stage", headers, rows, notes)
