"""The study report: Markdown tables and PNG plots, from the storage and the `evaluations` table.

The tables are built once here as plain text (`TextTable`), and shown twice: as Markdown in the
report and, by the CLI, as rich tables. Plots are drawn on bare matplotlib `Figure`s (the Agg
canvas, no pyplot state), so writing a report never needs a display. A plot that has nothing to
show (too few trials, no evaluation yet) is left out with a note saying why.
"""

from __future__ import annotations

import datetime
import logging
import math
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from optuna.trial import FrozenTrial, TrialState

from models.data.pools import describe_source
from models.nets.configs import NetConfig, TrainConfig
from search.describe import TextTable, describe, describe_fields, percent
from search.errors import EvaluationError, SearchError
from search.evaluation.results import EvaluationSummary, compare_all
from search.evaluation.selection import stored_selection
from search.evaluation.stats import SIGNIFICANCE
from search.evaluation.store import database_url
from search.reporting.published import current, load_results, published_sections
from search.reporting.tables import confidence, draw_count, mean_std, selection_table, setting_note
from search.storage.artifacts import upload_files
from search.storage.studies import best_trials, load_study, mask_url, maximizes, resolve_storage_url
from search.study.cells import cell_label, cell_of, same_cell
from search.study.specs import stored_definition

logger = logging.getLogger(__name__)

TOP_TRIALS = 5  # cross-validation leaders listed in the report
MAX_CURVES = 6  # learning curves drawn in one plot


# ---------------------------------------------------------------------------------------------------
# Tables, shared with the CLI.


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


def write_report(
    study_name: str | None,
    *,
    storage_url: str | None = None,
    out_dir: Path,
    with_published: bool = False,
) -> Path:
    """Write `out_dir`/report.md and its PNG plots for a study (with `with_published`, the reproduced presets
    beside it), or for the presets alone; returns the Markdown file's path.

    Reads the study (with the definition it keeps: its cells) and the stored evaluations only (nothing
    is trained): run `search evaluate-best` and `search reproduce` first for the fresh-draw tables and plots.
    Without a study (`study_name` None) it reports the reproduced presets alone, which need no search run.
    """
    database_url(storage_url)  # the evaluations are read from the database itself, not through a gRPC proxy
    reproduced = [current(summary) for summary in load_results(storage_url)]
    if study_name is None:
        if not reproduced:
            raise EvaluationError(
                f"{_source(storage_url)} holds no reproduced presets: "
                "run `search reproduce` first, or give --study for a study's report."
            )
        out_dir = _writable_dir(Path(out_dir))
        lines = ["# The published models, reproduced", "", f"Written {_now()} from `{_source(storage_url)}`.", ""]
        lines += published_sections(reproduced, out_dir)
        plots = [_preset_plot(reproduced)]
    else:
        study = load_study(storage_url, study_name)
        out_dir = _writable_dir(Path(out_dir))
        lines, plots = _study_parts(study, study_name, storage_url)
        if with_published:
            lines += published_sections(reproduced, out_dir)
            plots.append(_preset_plot(reproduced))

    lines += ["## Plots", ""]
    drawn: list[Path] = []
    for title, filename, draw in plots:
        outcome = draw()
        if isinstance(outcome, str):
            (out_dir / filename).unlink(missing_ok=True)  # an earlier report's picture would no longer match
            lines += [f"### {title}", "", f"_Not drawn: {outcome}_", ""]
            continue
        with _cannot_write(out_dir):
            outcome.savefig(out_dir / filename, dpi=110, bbox_inches="tight")
        drawn.append(out_dir / filename)
        lines += [f"### {title}", "", f"![{title}]({filename})", ""]

    path = out_dir / "report.md"
    with _cannot_write(out_dir):
        path.write_text("\n".join(lines))
    if study_name is not None:
        _attach(storage_url, study_name, [path, *drawn])
    return path


def _attach(storage_url: str | None, study_name: str, paths: list[Path]) -> None:
    """The report and its plots as the study's artifacts, shown in the dashboard; a storage this process may
    only read (a read-only SQLite file) keeps the report on disk alone."""
    try:
        upload_files(storage_url, study_name, paths)
    except (SearchError, OSError) as error:
        logger.warning("the report's plots were not attached to the study as artifacts: %s", error)


Plot = tuple[str, str, Callable[[], Figure | str]]  # title, file name, drawing (or why not drawn)


def _study_parts(study: optuna.Study, study_name: str, storage_url: str | None) -> tuple[list[str], list[Plot]]:
    """A study's sections (overview, leaders, selection, fresh-draw evaluations) and its plots."""
    definition = stored_definition(study.user_attrs)  # None for a study created before studies kept it: no cells
    cells = definition.cells if definition is not None else ()
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    complete = [t for t in trials.values() if t.state == TrialState.COMPLETE and t.values]
    evaluated = [_with_trial_info(s, trials, cells) for s in load_results(storage_url, study_name=study_name)]

    lines = [f"# Study `{study_name}`", ""]
    lines += _overview(study, trials, storage_url)
    leaders = best_trials(storage_url, study_name, top=TOP_TRIALS)
    if leaders:
        lines += ["## Best trials by cross-validation", "", _leaders_table(leaders).markdown(), ""]
    if (selection := stored_selection(study)) is not None:
        lines += ["## Selection stage", "", selection_table(selection).markdown(), ""]

    lines += ["## Fresh-draw evaluation", ""]
    if not evaluated:
        lines += [f"_No evaluation stored yet: run `search evaluate-best --study {study_name}`._", ""]
    for summary in evaluated:
        lines += [configuration_table(summary).markdown(), ""]
        if cells:
            compared = _cell_comparisons(summary, cells)
            lines += (
                [comparison_table(compared).markdown(), ""]
                if compared.comparisons
                else [
                    "_Fewer than two cells have an evaluated configuration: no paired tests._",
                    "",
                ]
            )

    plots: list[Plot] = [
        ("optimization history", "optimization_history.png", lambda: _plot_history(study, complete)),
        ("parameter importances", "param_importances.png", lambda: _plot_importances(study, complete)),
        ("accuracy against alpha", "accuracy_vs_alpha.png", lambda: _plot_alpha(complete)),
        ("learning curves", "learning_curves.png", lambda: _plot_curves(study, complete, evaluated, trials)),
        ("per-draw test accuracy", "accuracy_distribution.png", lambda: _plot_distribution(evaluated, "configuration")),
    ]
    return lines, plots


def _preset_plot(reproduced: Sequence[EvaluationSummary]) -> Plot:
    return (
        "per-draw test accuracy of the presets",
        "preset_distribution.png",
        lambda: _plot_distribution(reproduced, "preset"),
    )


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _source(storage_url: str | None) -> str:
    return mask_url(resolve_storage_url(storage_url))


def _writable_dir(out_dir: Path) -> Path:
    """`out_dir`, created if missing, once a file could be written in it: checked before any work is done."""
    if out_dir.exists() and not out_dir.is_dir():
        raise SearchError(
            f"--out {out_dir} is a file, but the report needs a directory: name a new or existing directory."
        )
    with _cannot_write(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out_dir).close()  # os.access says yes to root on read-only mounts and /proc
    return out_dir


@contextmanager
def _cannot_write(out_dir: Path) -> Iterator[None]:
    try:
        yield
    except OSError as error:
        raise SearchError(
            f"Cannot write the report to {out_dir}: {error.strerror or error}. Choose a writable directory with --out."
        ) from error


def _overview(study: optuna.Study, trials: Mapping[int, FrozenTrial], storage_url: str | None) -> list[str]:
    counts = {state: sum(t.state == state for t in trials.values()) for state in TrialState}
    attrs = study.user_attrs
    search = ", ".join(f"{key} {attrs[key]}" for key in ("n_folds", "epochs", "n_pairs", "data_seed") if key in attrs)
    return [
        f"Written {_now()} from `{_source(storage_url)}`.",
        "",
        f"- objectives: {', '.join(d.name.lower() for d in study.directions)} (first: mean cross-validation pair accuracy)",
        f"- trials: {counts[TrialState.COMPLETE]} complete, {counts[TrialState.PRUNED]} pruned, "
        f"{counts[TrialState.FAIL]} failed, {counts[TrialState.RUNNING]} running",
        *([f"- search fidelity: {search}"] if search else []),
        "",
    ]


def _leaders_table(leaders: Sequence[FrozenTrial]) -> TextTable:
    rows = []
    for trial in leaders:
        rows.append(
            (
                str(trial.number),
                ", ".join(percent(v) if i == 0 else f"{v:g}" for i, v in enumerate(trial.values)),
                percent(trial.user_attrs.get("fold_std")),
                f"{trial.user_attrs['n_params']:,}" if "n_params" in trial.user_attrs else "-",
                "-" if "net_config" not in trial.user_attrs else describe(*_configs(trial)),
            )
        )
    headers = ("trial", "CV accuracy (%)", "fold std (points)", "params", "configuration")
    return TextTable("cross-validation leaders (training pairs of the study's draw)", headers, rows)


def _configs(trial: FrozenTrial) -> tuple[NetConfig, TrainConfig]:
    return NetConfig.from_dict(trial.user_attrs["net_config"]), TrainConfig.from_dict(trial.user_attrs["train_config"])


def _with_trial_info(
    summary: EvaluationSummary, trials: Mapping[int, FrozenTrial], cells: Sequence[Mapping[str, Any]]
) -> EvaluationSummary:
    """Stored results know their trial number only: add the trial's value and cell, best trial first."""
    results = []
    for result in summary.configurations:
        trial = trials.get(result.candidate.trial_number) if result.candidate.trial_number is not None else None
        if trial is None:
            results.append(result)
            continue
        cell = cell_of(trial, cells)
        label = result.candidate.label if cell is None else f"{result.candidate.label} ({cell_label(cell)})"
        candidate = replace(
            result.candidate, label=label, trial_value=trial.values[0] if trial.values else None, cell=cell
        )
        results.append(replace(result, candidate=candidate))
    # Best cross-validation value first (the first objective is accuracy, maximised); presets have none.
    results.sort(key=lambda r: -math.inf if r.candidate.trial_value is None else r.candidate.trial_value, reverse=True)
    return replace(summary, configurations=tuple(results))


def _cell_comparisons(summary: EvaluationSummary, cells: Sequence[Mapping[str, Any]]) -> EvaluationSummary:
    """The best evaluated configuration of each cell (by cross-validation value), compared pair by pair."""
    chosen = []
    for cell in cells:
        members = [r for r in summary.configurations if same_cell(r.candidate.cell, cell)]  # best trial value first
        if members:
            chosen.append(replace(members[0], candidate=replace(members[0].candidate, label=cell_label(cell))))
    return replace(summary, configurations=tuple(chosen), comparisons=compare_all(chosen))


# ---------------------------------------------------------------------------------------------------
# Plots: each returns a Figure, or a string saying why there is nothing to draw.


def _figure(width: float = 7.0, height: float = 4.0) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height))
    return fig, fig.add_subplot()


def _plot_history(study: optuna.Study, complete: Sequence[FrozenTrial]) -> Figure | str:
    if not complete:
        return "the study has no complete trial yet."
    ordered = sorted(complete, key=lambda t: t.number)
    numbers = [t.number for t in ordered]
    values = np.array([t.values[0] for t in ordered])
    best = np.maximum.accumulate(values) if maximizes(study.directions) else np.minimum.accumulate(values)
    fig, ax = _figure()
    ax.scatter(numbers, 100 * values, s=14, alpha=0.6, label="complete trial")
    ax.step(numbers, 100 * best, where="post", color="C3", label="best so far")
    ax.set(xlabel="trial", ylabel="CV pair accuracy (%)", title="optimization history")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def _plot_importances(study: optuna.Study, complete: Sequence[FrozenTrial]) -> Figure | str:
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
    fig, ax = _figure(7.0, max(2.5, 0.35 * len(names) + 1))
    ax.barh(names, [importances[n] for n in names], color="C0")
    ax.set(xlabel="importance (fANOVA, normalised)", title="parameter importances")
    ax.grid(axis="x", alpha=0.3)
    return fig


def _plot_alpha(complete: Sequence[FrozenTrial]) -> Figure | str:
    points = [
        (t.user_attrs["train_config"]["alpha"], t.values[0], t.user_attrs.get("net_config", {}).get("weight_sharing"))
        for t in complete
        if t.user_attrs.get("train_config", {}).get("aux_loss") == "alpha"
    ]
    if not points:
        return "no complete trial trained with the alpha-weighted auxiliary loss."
    fig, ax = _figure()
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


def _plot_curves(
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
    fig, ax = _figure()
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


def _plot_distribution(summaries: Sequence[EvaluationSummary], what: str) -> Figure | str:
    results = [(s, r) for s in summaries for r in s.configurations if r.accuracies]
    if not results:
        command = "search reproduce" if what == "preset" else "search evaluate-best"
        return f"no {what} has stored per-draw accuracies yet: run `{command}` first."
    fig, ax = _figure(max(6.0, 1.1 * len(results) + 2), 4.5)
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
