"""The result tables, built once as `TextTable`s: shown as Markdown in reports and as rich tables by
the CLI."""

from __future__ import annotations

import math

from models.data.idx import describe_source
from search.describe import TextTable, describe, describe_fields, percent
from search.evaluation.ranking import Selection
from search.evaluation.results import ConfigurationResult, EvaluationSummary
from search.evaluation.stats import SIGNIFICANCE, Summary


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


def configuration_table(
    summary: EvaluationSummary, *, title: str = "fresh-draw test accuracy", compact: bool = False
) -> TextTable:
    """Configuration summary, parameters, mean ± std test accuracy, 95 % t interval and R, per configuration.

    `compact` (for a terminal): the configuration's label and settings share the first column.
    """
    rows = []
    for result in summary.configurations:
        c = result.candidate
        fields = describe_fields(c.net, c.train)
        numbers = (f"{result.n_params:,}", mean_std(result.accuracy), confidence(result.accuracy), draw_count(result))
        if compact:
            rows.append((f"{c.label}\n{describe(c.net, c.train)}", *numbers))
            continue
        trial = "-" if c.trial_number is None else str(c.trial_number)
        rows.append(
            (c.label, trial, fields["family"], fields["ws"], fields["aux"], fields["head"], fields["details"], *numbers)
        )
    headers = ("params", "test accuracy", "95 % CI", "R")
    headers = (
        ("configuration", *headers)
        if compact
        else ("configuration", "trial", "family", "WS", "aux", "head", "settings", *headers)
    )
    return TextTable(title, headers, rows, [setting_note(summary)])


def comparison_table(summary: EvaluationSummary) -> TextTable:
    """Paired tests between configurations: which accuracy differences are real."""
    rows = []
    for comparison in summary.comparisons:
        t = comparison.tests
        rows.append(
            (
                comparison.a,
                comparison.b,
                "-" if not math.isfinite(t.mean_difference) else f"{100 * t.mean_difference:+.2f}",
                _p(t.t_pvalue),
                _p(t.wilcoxon_pvalue),
                str(t.n),
                "yes" if t.significant() else "no",
            )
        )
    headers = ("a", "b", "a - b (points)", "p (paired t)", "p (Wilcoxon)", "draws", f"significant at {SIGNIFICANCE:g}")
    note = (
        f"Paired over the same draws. A difference is called real when both the paired t test and the Wilcoxon "
        f"signed-rank test (zero differences split between the signs) give p < {SIGNIFICANCE:g}."
    )
    return TextTable("paired significance tests between cells", headers, rows, [note])


def _p(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.3g}"


# ---------------------------------------------------------------------------------------------------
# The report.
