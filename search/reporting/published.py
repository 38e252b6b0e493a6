"""The five source reports, reproduced: one table and one plot per report, from the presets' stored draws.

Each row puts a report's printed figure beside ours (mean ± std over fresh draws, its 95 % t interval,
the gap, and whether the published mean lies inside our interval), and the choices we made where the
report is silent are listed under its table, so that no number is read without them.

A report whose printed stds are too small for runs scored on fresh pairs (`fresh_pairs_pvalue`) shared
one scored set across its runs: its means then carry that set's own sampling error, which neither its
std nor our interval holds, and its table gets one more column, each gap over its standard error with
that error counted.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from models.data.idx import describe_source
from search.describe import TextTable, percent
from search.evaluation.results import ConfigurationResult, EvaluationSummary
from search.evaluation.stats import Summary, fresh_pairs_pvalue, gap_in_standard_errors, sampling_floor
from search.evaluation.store import load_evaluations
from search.reporting.tables import confidence, draw_count, mean_std, setting_note
from search.reproduction.presets import FIGURES, PRESETS, REPORTS, Preset
from search.variants import base_name, order_key, varied_fields

REPORT_PAIRS = 1000  # pairs a run of the reports scores at most: a test set (report 001: its 4 folds together)
REPORT_POOL_FRACTION = 0.2  # 1,000 test pairs take 2,000 of MNIST's 10,000 test digits (lowers the floor)
SCORED_ON_A_RUNS_PAIRS = ("test", "validation", "max_over_epochs")  # figures whose std has the sampling floor
SHARED_PAIRS_LEVEL = 0.01  # below this fresh_pairs_pvalue, a report's runs are taken to have shared their pairs


def load_results(storage_url: str | None, *, study_name: str | None = None) -> list[EvaluationSummary]:
    """`load_evaluations`, each preset's candidate with its report's published figure beside it."""
    return [
        dataclasses.replace(summary, configurations=tuple(_with_published(r) for r in summary.configurations))
        for summary in load_evaluations(storage_url, study_name=study_name)
    ]


def _with_published(result: ConfigurationResult) -> ConfigurationResult:
    preset = PRESETS.get(base_name(result.candidate.preset)) if result.candidate.preset is not None else None
    if preset is None:
        return result
    candidate = dataclasses.replace(
        result.candidate, published_mean=preset.published_mean, published_std=preset.published_std
    )
    return dataclasses.replace(result, candidate=candidate)


def set_error(preset: Preset) -> float:
    """The sampling error of one scored set of the report's size at the published accuracy."""
    return sampling_floor(preset.published.mean, REPORT_PAIRS, pool_fraction=REPORT_POOL_FRACTION)


def published_error(preset: Preset) -> float:
    """The published mean's standard error over its own runs (its printed std over sqrt(runs)); 0 without a std."""
    std = preset.published.std
    return 0.0 if std is None else std / math.sqrt(preset.runs)


def shared_pairs_pvalue(presets: Sequence[Preset]) -> float:
    """`fresh_pairs_pvalue` of the rows' printed stds (test, validation and max-over-epochs figures), nan
    without any. A maximum over epochs scored on a run's own pairs keeps that set's luck, which every epoch
    shares, so its std has the same floor: ours, best over epochs on the full MNIST's fresh pairs, are all at
    or above it (docs/reproduction.md, report 004)."""
    figures = [
        (p.published.mean, p.published.std, p.runs)
        for p in presets
        if p.published.std is not None and p.published.figure in SCORED_ON_A_RUNS_PAIRS
    ]
    return fresh_pairs_pvalue(figures, REPORT_PAIRS, pool_fraction=REPORT_POOL_FRACTION)


def like_the_report(preset: Preset, result: ConfigurationResult) -> Summary | None:
    """Ours on the report's own figure: best over epochs where it printed a maximum over epochs, else final."""
    return result.best_epoch_accuracy if preset.best_over_epochs else result.accuracy


def per_draw_like_the_report(preset: Preset, result: ConfigurationResult) -> dict[int, float]:
    """Ours draw by draw (seed -> accuracy) on the report's own figure, as `like_the_report` summarises it."""
    return result.best_epoch_accuracies if preset.best_over_epochs else result.accuracies


def counted_gap(preset: Preset, ours: Summary) -> float:
    """The gap to the published mean in standard errors, with every error of both means counted (the last
    column of a report's table whose runs shared their scored pairs)."""
    value = preset.published.mean
    return gap_in_standard_errors(ours, value, published_error=published_error(preset), set_error=set_error(preset))


def published_figure(preset: Preset) -> str:
    """The published mean ± std in percent of accuracy, marked where it is not a plain test mean."""
    p = preset.published
    text = f"{percent(p.mean)} %" if p.std is None else f"{percent(p.mean)} ± {percent(p.std)} %"
    return text if p.figure == "test" else f"{text} ({p.figure.replace('_', ' ')})"


def in_ci_cell(summary: Summary | None, value: float) -> str:
    """Whether `value` lies inside the summary's 95 % interval: yes / no / - (fewer than 2 draws)."""
    if summary is None or summary.n < 2:
        return "-"
    return "yes" if summary.ci_low <= value <= summary.ci_high else "no"


def gap_cell(summary: Summary | None, value: float) -> str:
    return "-" if summary is None or summary.n == 0 else f"{100 * (summary.mean - value):+.2f}"


def report_tables(summary: EvaluationSummary) -> list[TextTable]:
    """One table per report that has reproduced rows in `summary`, in the report's own row order."""
    return [table for _, table in _keyed_tables(summary)]


def with_stored_rows(summary: EvaluationSummary, storage_url: str | None) -> EvaluationSummary:
    """`summary` with the stored rows of its presets beside the ones it trained: the preset and each
    variant (`name [field=value]`) measured before, as `reproduce --vary` leaves them. A report's table
    then holds every experiment on its rows, as docs/reproduction.md shows it, and a rerun of the preset prints
    its variants again. Only rows of the same data setting (digits, pairs per draw) and, but for a
    variant that changed them itself, the same epochs: one name at two lengths would read as one row."""
    epochs = {
        base_name(r.candidate.preset): r.candidate.train.epochs
        for r in summary.configurations
        if r.candidate.preset is not None
    }
    trained = {r.candidate.preset for r in summary.configurations}
    stored = [
        result
        for other in load_results(storage_url)
        if (other.data_source, other.n_pairs) == (summary.data_source, summary.n_pairs)
        for result in other.configurations
        if (name := result.candidate.preset) is not None
        and name not in trained
        and base_name(name) in epochs
        and (result.candidate.train.epochs == epochs[base_name(name)] or "epochs" in varied_fields(name))
    ]
    seeds = sorted({*summary.draw_seeds, *(seed for r in stored for seed in r.accuracies)})
    return dataclasses.replace(summary, draw_seeds=tuple(seeds), configurations=(*summary.configurations, *stored))


def current(summary: EvaluationSummary) -> EvaluationSummary:
    """The summary without the rows of presets as they were defined before: a preset whose reading was
    corrected keeps its old draws in the database (under its old configuration), and they must not stand
    beside, or instead of, the preset as it is now."""
    return dataclasses.replace(summary, configurations=tuple(r for r in summary.configurations if is_current(r)))


def is_current(result: ConfigurationResult) -> bool:
    """Whether a stored preset result is of the preset as defined now: the same configuration, or for a
    variant (`name [field=value, ...]`) one that differs from it in the named fields only (and in one at
    least: a variant whose change the preset itself has taken since is a copy of its rows). The epochs are
    not compared: `reproduce --epochs` trains a preset for other epochs under its own name."""
    name = result.candidate.preset
    preset = PRESETS.get(base_name(name)) if name is not None else None
    if preset is None:
        return False
    named = varied_fields(name)
    changed = {
        field
        for ours, stored in (
            (preset.net.to_dict(), result.candidate.net.to_dict()),
            (preset.train.to_dict(), result.candidate.train.to_dict()),
        )
        for field in ours.keys() | stored.keys()
        if ours.get(field) != stored.get(field) and field != "epochs"
    }
    return changed <= named and (bool(changed) or not named)  # a variant equal to the preset is not one


def _grouped(summary: EvaluationSummary) -> dict[str, list[ConfigurationResult]]:
    """Each preset's results as defined now: its own first, then its variants' (`name [field=value]`)."""
    ours: dict[str, list[ConfigurationResult]] = {}
    for result in current(summary).configurations:
        if result.candidate.preset is not None:
            ours.setdefault(base_name(result.candidate.preset), []).append(result)
    for results in ours.values():
        results.sort(key=lambda r: order_key(r.candidate.preset))
    return ours


def _keyed_tables(summary: EvaluationSummary) -> list[tuple[str, TextTable]]:
    ours = _grouped(summary)
    tables = []
    for key, title in REPORTS.items():
        presets = [p for p in PRESETS.values() if p.report == key and p.name in ours]
        if not presets:
            continue
        best_over_epochs = any(p.best_over_epochs for p in presets)
        shared = shared_pairs_pvalue([p for p in PRESETS.values() if p.report == key])
        counted = shared < SHARED_PAIRS_LEVEL
        rows = [_row(p, result, best_over_epochs, counted) for p in presets for result in ours[p.name]]
        headers = (
            "row",
            "preset",
            "params",
            "published",
            "reproduced",
            "95 % CI",
            "R",
            "gap (points)",
            "published in CI",
        )
        if best_over_epochs:
            headers += ("reproduced, best over epochs", "its gap", "in its CI")
        if counted:
            headers += ("gap / s.e., set counted",)
        notes = [setting_note(summary), *_figure_notes(presets)]
        notes += [_shared_pairs_note(key, presets, shared)] if counted else []
        notes += _choice_notes(presets)
        tables.append((key, TextTable(f"report {key}: {title}", headers, rows, notes)))
    return tables


def _row(preset: Preset, result: ConfigurationResult, best_over_epochs: bool, counted: bool) -> tuple[str, ...]:
    """A preset's row, or one of its variants' (`name [field=value]`: one factor changed)."""
    value, accuracy = preset.published.mean, result.accuracy
    name = result.candidate.preset or preset.name
    row = (
        preset.row if name == preset.name else "↳ variant",
        name,
        f"{result.n_params:,}",
        published_figure(preset),
        mean_std(accuracy),
        confidence(accuracy),
        draw_count(result),
        gap_cell(accuracy, value),
        in_ci_cell(accuracy, value),
    )
    if best_over_epochs:
        best = result.best_epoch_accuracy
        row += (mean_std(best) if best else "-", gap_cell(best, value), in_ci_cell(best, value))
    if counted:
        like = like_the_report(preset, result)
        z = counted_gap(preset, like) if like else math.nan
        row += ("-" if math.isnan(z) else f"{z:+.1f}",)
    return row


def _shared_pairs_note(key: str, presets: Sequence[Preset], pvalue: float) -> str:
    errors = [100 * set_error(p) for p in presets]
    return (
        f"Report {key}'s printed stds are too small for runs that each scored fresh pairs: over its rows (Fisher), "
        f"P = {pvalue:.1g} that stds this small come from {REPORT_PAIRS:,} fresh pairs a run (each std's floor: "
        f"sqrt(p(1-p)/{REPORT_PAIRS:,}), the finite test pool counted). Its runs shared their scored pairs, so each "
        f"mean carries that one set's sampling error ({min(errors):.2f}-{max(errors):.2f} points here), which "
        "neither its std nor our interval holds; the last column counts it, with the published mean's own error "
        "over its runs and ours: within ±2 the gap is what those errors explain."
        + (
            " A maximum over epochs is compared with ours, best over epochs."
            if any(p.best_over_epochs for p in presets)
            else ""
        )
    )


def _figure_notes(presets: Sequence[Preset]) -> list[str]:
    kinds = sorted({p.published.figure for p in presets} - {"test"})
    return [f"{kind.replace('_', ' ')}: {FIGURES[kind]}." for kind in kinds]


def _choice_notes(presets: Sequence[Preset]) -> list[str]:
    """The report's unstated details we chose: those of every row once, then each row's own."""
    common = set.intersection(*(set(p.unstated) for p in presets))
    notes = []
    if common:
        ordered = [c for c in presets[0].unstated if c in common]
        notes.append("Unstated in the report, chosen here for every row: " + "; ".join(ordered) + ".")
    rows_by_choices: dict[tuple[str, ...], list[str]] = {}
    for p in presets:
        own = tuple(c for c in p.unstated if c not in common)
        if own:
            rows_by_choices.setdefault(own, []).append(p.name)
    for own, names in rows_by_choices.items():  # rows that share their choices share a line
        notes.append(f"{', '.join(names)}, chosen here: " + "; ".join(own) + ".")
    return notes


def plot_report(summary: EvaluationSummary, key: str) -> Figure | str:
    """Published figure against ours (mean and 95 % interval) for each reproduced row of report `key`."""
    ours = {name: results[0] for name, results in _grouped(summary).items() if results[0].candidate.preset == name}
    presets = [p for p in PRESETS.values() if p.report == key and p.name in ours]  # variants are not drawn
    if not presets:
        return f"no row of report {key} reproduced yet: run `search reproduce --report {key}`."
    figure = Figure(figsize=(7.5, 0.38 * len(presets) + 1.4))
    axes = figure.subplots()
    ys = list(range(len(presets)))[::-1]
    for y, preset in zip(ys, presets, strict=True):
        acc = ours[preset.name].accuracy
        if acc.n:
            low = acc.ci_low if acc.n > 1 else acc.mean
            high = acc.ci_high if acc.n > 1 else acc.mean
            axes.errorbar(
                100 * acc.mean,
                y,
                xerr=[[100 * (acc.mean - low)], [100 * (high - acc.mean)]],
                fmt="o",
                color="tab:blue",
                capsize=3,
                label="reproduced (95 % CI)" if y == ys[0] else None,
            )
        axes.plot(
            100 * preset.published.mean,
            y,
            "x",
            color="tab:red",
            markersize=8,
            label="published" if y == ys[0] else None,
        )
    axes.set_yticks(ys, [p.name.split("/", 1)[1] for p in presets], fontsize=8)
    axes.set_xlabel("pair accuracy (%)")
    axes.set_title(f"report {key}: published vs reproduced ({describe_source(summary.data_source)})", fontsize=10)
    axes.grid(axis="x", alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    return figure


def published_sections(reproduced: Sequence[EvaluationSummary], out_dir: Path) -> list[str]:
    """The report's 'Published models' part: per data setting and report, its table and its plot."""
    lines = ["## Published models, reproduced", ""]
    if not reproduced:
        return lines + ["_No preset reproduced yet: run `search reproduce --report all`._", ""]
    for index, summary in enumerate(reproduced):
        for key, table in _keyed_tables(summary):
            filename = f"published_{key}.png" if index == 0 else f"published_{key}_{index}.png"
            lines += [f"### {table.title}", "", table.markdown(), ""]
            outcome = plot_report(summary, key)
            if isinstance(outcome, str):
                lines += [f"_Not drawn: {outcome}_", ""]
                continue
            outcome.savefig(out_dir / filename, dpi=110, bbox_inches="tight")
            lines += [f"![report {key}: published vs reproduced]({filename})", ""]
    return lines
