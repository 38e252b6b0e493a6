"""The study report: Markdown tables (search.reporting.tables) and PNG plots (search.reporting.plots), from
the storage and the `evaluations` table. A plot that has nothing to show (too few trials, no evaluation
yet) is left out with a note saying why.
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

import optuna
from matplotlib.figure import Figure
from optuna.trial import FrozenTrial, TrialState

from search.describe import TextTable, describe, percent
from search.errors import EvaluationError, SearchError
from search.evaluation.ranking import stored_selection
from search.evaluation.results import EvaluationSummary, compare_all
from search.evaluation.store import database_url
from search.reporting.plots import plot_alpha, plot_curves, plot_distribution, plot_history, plot_importances
from search.reporting.published import current, load_results, published_sections
from search.reporting.tables import comparison_table, configuration_table, selection_table
from search.storage.artifacts import upload_files
from search.storage.studies import best_trials, load_study, mask_url, resolve_storage_url
from search.study.cells import cell_label, cell_of, same_cell
from search.study.definition import stored_definition
from search.study.record import TrialRecord

logger = logging.getLogger(__name__)

TOP_TRIALS = 5  # cross-validation leaders listed in the report


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
        ("optimization history", "optimization_history.png", lambda: plot_history(study, complete)),
        ("parameter importances", "param_importances.png", lambda: plot_importances(study, complete)),
        ("accuracy against alpha", "accuracy_vs_alpha.png", lambda: plot_alpha(complete)),
        ("learning curves", "learning_curves.png", lambda: plot_curves(study, complete, evaluated, trials)),
        ("per-draw test accuracy", "accuracy_distribution.png", lambda: plot_distribution(evaluated, "configuration")),
    ]
    return lines, plots


def _preset_plot(reproduced: Sequence[EvaluationSummary]) -> Plot:
    return (
        "per-draw test accuracy of the presets",
        "preset_distribution.png",
        lambda: plot_distribution(reproduced, "preset"),
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
        record = TrialRecord.from_trial(trial)
        rows.append(
            (
                str(trial.number),
                ", ".join(percent(v) if i == 0 else f"{v:g}" for i, v in enumerate(trial.values)),
                percent(record.fold_std),
                f"{record.n_params:,}" if record.n_params is not None else "-",
                describe(*record.configs()) if record.has_configs else "-",
            )
        )
    headers = ("trial", "CV accuracy (%)", "fold std (points)", "params", "configuration")
    return TextTable("cross-validation leaders (training pairs of the study's draw)", headers, rows)


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
